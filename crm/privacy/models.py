"""Privacy rights' own rows: legal holds on a patient and the record of an erasure."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.core.db import utcnow
from crm.extensions import db


class LegalHold(db.Model):
    """A manager's hold on a patient's data (a dispute, a claim, an authority's request):
    while one is in force (`lifted_at` empty) the patient is neither erased on request nor
    by retention. Lifting keeps the row: who set it, why, when, and who lifted it."""

    __tablename__ = "legal_holds"
    __table_args__ = (Index("ix_legal_holds_patient", "patient_id", "lifted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    set_by_label: Mapped[str] = mapped_column(String(200))
    lifted_at: Mapped[datetime | None]
    lifted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    lifted_by_label: Mapped[str | None] = mapped_column(String(200))
    lift_reason: Mapped[str | None] = mapped_column(Text)


class PatientErasure(db.Model):
    """A patient was pseudonymised: when, why (a request or retention) and by whom. One row
    a patient: erasing again changes nothing and keeps the first record."""

    __tablename__ = "patient_erasures"
    __table_args__ = (CheckConstraint("source IN ('request','retention')", name="source"),)

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(10))  # "request" or "retention"
    reason: Mapped[str] = mapped_column(Text)
    erased_by_label: Mapped[str] = mapped_column(String(200))
    documents_removed: Mapped[int] = mapped_column(default=0)
