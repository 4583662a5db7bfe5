from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import utcnow
from crm.extensions import db


class CheckIn(db.Model):
    """One follow-up point of the catalogue's schedule and, once answered, the answers."""

    __tablename__ = "check_ins"
    __table_args__ = (
        UniqueConstraint("referral_id", "label"),
        CheckConstraint("back_pain IS NULL OR back_pain BETWEEN 0 AND 10", name="back_pain"),
        CheckConstraint("leg_pain IS NULL OR leg_pain BETWEEN 0 AND 10", name="leg_pain"),
        CheckConstraint(
            "wound IS NULL OR wound IN ('healing_well','red_or_swollen','discharge','opened')",
            name="wound",
        ),
        CheckConstraint("alert IN ('none','high_score','rising','red_flag')", name="alert"),
        Index("ix_check_ins_due", "referral_id", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(64))
    position: Mapped[int]
    due_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    back_pain: Mapped[int | None]
    leg_pain: Mapped[int | None]
    numbness: Mapped[bool | None]
    weakness: Mapped[bool | None]
    wound: Mapped[str | None] = mapped_column(String(20))
    bladder_or_bowel_trouble: Mapped[bool | None]
    saddle_numbness: Mapped[bool | None]
    fever: Mapped[bool | None]
    free_text: Mapped[str | None] = mapped_column(Text)
    alert: Mapped[str] = mapped_column(String(12), default="none")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
