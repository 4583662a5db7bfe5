"""Nudge rules (data, editable by an admin) and the schedule of nudges falling due."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.core.db import TimestampMixin, utcnow
from crm.extensions import db
from crm.referrals.models import Referral

TRIGGERS = ("stage_entered", "date")


class NudgeRule(TimestampMixin, db.Model):
    """When a referral enters `stage` (or a named date arrives), after `offset_minutes`,
    send `kind` to `audience` on the first permitted channel, up to `max_repeats` more
    times every `repeat_every_minutes`, unless the referral has moved on."""

    __tablename__ = "nudge_rules"
    __table_args__ = (
        CheckConstraint("trigger IN ('stage_entered','date')", name="trigger"),
        CheckConstraint("audience IN ('patient','coordinator','agency')", name="audience"),
        CheckConstraint("max_repeats >= 0", name="max_repeats"),
        CheckConstraint(
            "max_repeats = 0 OR repeat_every_minutes > 0", name="repeat_needs_interval"
        ),
        CheckConstraint(
            "(trigger = 'stage_entered') = (stage IS NOT NULL)", name="stage_trigger_has_stage"
        ),
        CheckConstraint("(trigger = 'date') = (date_name IS NOT NULL)", name="date_trigger_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    trigger: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(20), index=True)
    date_name: Mapped[str | None] = mapped_column(String(40))
    offset_minutes: Mapped[int] = mapped_column(default=0)
    audience: Mapped[str] = mapped_column(String(12))
    channels: Mapped[list[str]] = mapped_column(JSON)
    fallback: Mapped[bool] = mapped_column(default=True)
    kind: Mapped[str] = mapped_column(String(64))
    max_repeats: Mapped[int] = mapped_column(default=0)
    repeat_every_minutes: Mapped[int] = mapped_column(default=0)
    stop_when_stage_changes: Mapped[bool] = mapped_column(default=True)
    task_after_last: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)


class ScheduledNudge(db.Model):
    """One nudge falling due: the sweep reads these by (status, due_at), never all referrals."""

    __tablename__ = "scheduled_nudges"
    __table_args__ = (
        CheckConstraint("status IN ('pending','fired','cancelled')", name="status"),
        UniqueConstraint("rule_id", "referral_id", "trigger_at", "occurrence"),
        Index("ix_scheduled_nudges_due", "status", "due_at"),
        Index("ix_scheduled_nudges_referral", "referral_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("nudge_rules.id", ondelete="CASCADE"))
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    trigger_at: Mapped[datetime]
    occurrence: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # What the feature that set the date lets its messages say (follow-up: time since
    # treatment); the nudges know nothing of where a date comes from.
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    rule: Mapped[NudgeRule] = relationship(lazy="joined")
    referral: Mapped[Referral] = relationship()
