"""Likely duplicates of a patient, found when a referral arrives, with their evidence.

A match links the new referral's patient to a patient already known (`linked`), waits for
a coordinator (`open`), was judged to be someone else (`dismissed`), or was merged by a
coordinator into the patient already known (`merged`, see `crm/merges`: the new patient's
row stays as a tombstone pointing at the survivor).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.core.db import utcnow
from crm.extensions import db
from crm.patients.models import Patient
from crm.referrals.models import Referral

KINDS = ("exact", "likely")
STATUSES = ("open", "linked", "dismissed", "merged")

# The submit path's lookups: one by phone or email (both indexed), one by date of birth.
Index("ix_patients_phone", Patient.phone)
Index("ix_patients_email_folded", func.lower(Patient.email))
Index("ix_patients_date_of_birth", Patient.date_of_birth)


class DuplicateMatch(db.Model):
    __tablename__ = "duplicate_matches"
    __table_args__ = (
        UniqueConstraint("patient_id", "matched_patient_id"),
        CheckConstraint("kind IN ('exact','likely')", name="kind"),
        CheckConstraint("status IN ('open','linked','dismissed','merged')", name="status"),
        CheckConstraint("patient_id <> matched_patient_id", name="not_self"),
        Index("ix_duplicate_matches_status_created", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The new referral and its patient ...
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    # ... and the patient already known who is likely the same person.
    matched_patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    # {"fields": ["phone", "date_of_birth", ...], "name_score": 93}
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    decided_by_label: Mapped[str | None] = mapped_column(String(200))

    referral: Mapped[Referral] = relationship()
    patient: Mapped[Patient] = relationship(foreign_keys=[patient_id])
    matched_patient: Mapped[Patient] = relationship(foreign_keys=[matched_patient_id])
