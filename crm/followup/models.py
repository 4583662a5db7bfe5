from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import utcnow
from crm.extensions import db


class CheckIn(db.Model):
    """One follow-up point of the catalogue's schedule and, once answered, the answers."""

    __tablename__ = "check_ins"
    __table_args__ = (
        UniqueConstraint("referral_id", "label"),
        CheckConstraint("alert IN ('none','high_score','rising','red_flag')", name="alert"),
        Index("ix_check_ins_due", "referral_id", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(64))
    position: Mapped[int]
    due_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    # Keyed by the catalogue's question codes (crm.catalogue.check_in), checked against the
    # procedure's questions when answered; kept as asked if the catalogue changes later.
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    free_text: Mapped[str | None] = mapped_column(Text)
    alert: Mapped[str] = mapped_column(String(12), default="none")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
