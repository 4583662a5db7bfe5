"""The audit log: every read of a patient's data and every write, by whom, on what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import JSON, CheckConstraint, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.extensions import db


class AuditEvent(db.Model):
    """Append-only. `referral_id` is deliberately not a foreign key: the trail outlives rows."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("actor_type IN ('agency','staff','patient','system')", name="actor_type"),
        Index("ix_audit_events_referral", "referral_id", "occurred_at"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[int | None]
    actor_label: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    referral_id: Mapped[int | None]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))


def record(actor: Actor, action: str, referral_id: int | None = None, **detail: Any) -> AuditEvent:
    event = AuditEvent(
        actor_type=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        referral_id=referral_id,
        detail=detail,
    )
    if has_request_context():
        event.request_id = request.environ.get("crm.request_id")
        event.remote_addr = request.remote_addr
    db.session.add(event)
    return event


def trail_of(referral_id: int, limit: int = 200) -> list[AuditEvent]:
    """The newest `limit` audit events about one referral (who read or changed it), newest
    first. The caller has checked that its reader may see the referral."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.referral_id == referral_id)
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )
