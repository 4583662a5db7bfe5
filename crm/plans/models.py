from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.core.db import utcnow
from crm.extensions import db

PLAN_STATUSES = ("offered", "superseded", "accepted", "withdrawn")
LINE_KINDS = (
    "surgery",
    "hospital_night",
    "implant",
    "transfer",
    "hotel_night",
    "interpreter",
    "consultation",
    "imaging",
    "other",
)


class TreatmentPlan(db.Model):
    """One version of a quote. A new version supersedes the last; an accepted one is frozen."""

    __tablename__ = "treatment_plans"
    __table_args__ = (
        UniqueConstraint("referral_id", "version"),
        CheckConstraint("status IN ('offered','superseded','accepted','withdrawn')", name="status"),
        CheckConstraint("length(currency) = 3", name="currency"),
        CheckConstraint("deposit_minor >= 0", name="deposit"),
        CheckConstraint("(status = 'accepted') = (accepted_at IS NOT NULL)", name="accepted"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    status: Mapped[str] = mapped_column(String(12), default="offered")
    procedure_code: Mapped[str] = mapped_column(String(64))
    hospital: Mapped[str] = mapped_column(String(200))
    surgeon: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    deposit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_until: Mapped[date]
    inclusions: Mapped[list[str]] = mapped_column(JSON, default=list)
    exclusions: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes_for_patient: Mapped[str] = mapped_column(String(5000), default="")
    created_by_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    acceptance: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The informed consent: which version, in which language, and the information text the
    # patient was shown (with its SHA-256, checked against what the page sent back).
    consent_plan_version: Mapped[int | None]
    consent_language: Mapped[str | None] = mapped_column(String(16))
    consent_information_sha256: Mapped[str | None] = mapped_column(String(64))
    consent_information_text: Mapped[str | None] = mapped_column(Text)

    items: Mapped[list[PlanLineItem]] = relationship(
        order_by="PlanLineItem.position", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def total_minor(self) -> int:
        return sum(item.amount_minor for item in self.items)


class PlanLineItem(db.Model):
    __tablename__ = "plan_line_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("unit_price_minor >= 0", name="unit_price"),
        UniqueConstraint("plan_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("treatment_plans.id", ondelete="CASCADE"))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int]
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_price_minor
