from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import utcnow
from crm.extensions import db

DECISIONS = ("candidate", "not_a_candidate", "need_more_information")


class Review(db.Model):
    """A specialist's reading of the MRI and decision. The latest review governs."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(
            "decision IN ('candidate','not_a_candidate','need_more_information')", name="decision"
        ),
        Index("ix_reviews_referral", "referral_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    specialist_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    specialist_label: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(24))
    findings: Mapped[str] = mapped_column(Text, default="")
    # The procedure's own findings (catalogue `review_fields`): disc level; side and grade.
    procedure_fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    recommended_procedure: Mapped[str | None] = mapped_column(String(64))
    risks_to_discuss: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    request_to_patient: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
