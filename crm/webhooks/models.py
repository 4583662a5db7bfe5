"""Webhooks to partner agencies: endpoints with their signing secrets, the events written
for an agency, one delivery per (event, endpoint) — or more, when redelivery is asked
for — and every attempt of a delivery with its answer.

An event is written in the same transaction as the change it tells of (the outbox); the
webhook dispatcher delivers it afterwards. `WebhookEvent.public_id` is the
`webhook-id` header: the same for every attempt and every redelivery, so a receiver can
drop what it has already seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.core.db import TimestampMixin, utcnow
from crm.extensions import db

DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed", "cancelled")


class WebhookEndpoint(TimestampMixin, db.Model):
    """Where an agency wants events, and which ones. Disabled after repeated failures
    (`disabled_at`, `disabled_reason`) until the agency enables it again."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    # The event type names (crm.webhooks.catalogue.EVENT_TYPES) this endpoint receives.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    consecutive_failures: Mapped[int] = mapped_column(default=0)

    secrets: Mapped[list[WebhookSecret]] = relationship(
        order_by="WebhookSecret.id", passive_deletes=True
    )

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


class WebhookSecret(db.Model):
    """A signing secret (`whsec_` + base64, the Standard Webhooks form). Shown once when
    made. A rotation gives the old one an `expires_at`: until then both sign."""

    __tablename__ = "webhook_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]


class WebhookEvent(db.Model):
    """What happened, as the agency may see it: `payload` is the whole JSON body sent
    (`{"type", "timestamp", "data"}`), fixed when the event is written."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_agency_occurred", "agency_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="SET NULL"))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(db.Model):
    """One event to one endpoint. Deliveries with the same `ordering_key` (the referral)
    to the same endpoint go out in id order: a later one waits while an earlier one is
    pending or sending."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending','sending','delivered','failed','cancelled')", name="status"
        ),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "ordering_key", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    ordering_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set on a redelivery asked for by someone (an agency user, staff, the API).
    requested_by_label: Mapped[str | None] = mapped_column(String(200))

    event: Mapped[WebhookEvent] = relationship()
    endpoint: Mapped[WebhookEndpoint] = relationship()


class WebhookAttempt(db.Model):
    """One POST of a delivery: when, how long, the status code or the error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int] = mapped_column(default=0)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
