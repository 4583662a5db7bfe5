"""The thread between a referral's agency and the hospital's coordinators."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import utcnow
from crm.extensions import db

DIRECTIONS = ("to_agency", "from_agency")


class AgencyMessage(db.Model):
    """One message about one referral: a coordinator's to the agency (`to_agency`) or the
    agency's to the hospital (`from_agency`). `read_at` is when the other side first read
    it (absent: unread). The body is what its author typed, nothing added."""

    __tablename__ = "agency_messages"
    __table_args__ = (
        CheckConstraint("direction IN ('to_agency','from_agency')", name="direction"),
        CheckConstraint("author_type IN ('staff','agency')", name="author_type"),
        Index("ix_agency_messages_referral", "referral_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(12))
    body: Mapped[str] = mapped_column(Text)
    author_type: Mapped[str] = mapped_column(String(10))
    author_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
