from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.agencies.models import Agency
from crm.auth.models import StaffUser
from crm.catalogue.models import Procedure
from crm.core.db import TimestampMixin, utcnow
from crm.extensions import db
from crm.patients.models import Patient
from crm.referrals.references import hospital_reference
from crm.referrals.stages import ALL_STAGES, LostReason, Stage

_STAGE_LIST = ", ".join(f"'{stage}'" for stage in ALL_STAGES)
_LOST_REASONS = ", ".join(f"'{reason}'" for reason in LostReason)


# crm.core.cache.transaction_notes: the referrals this transaction created (it knows
# everything written about them so far, so later steps need not ask the database).


class Referral(TimestampMixin, db.Model):
    """One patient's case for one procedure, carried through the pipeline."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(f"stage IN ({_STAGE_LIST})", name="stage"),
        CheckConstraint(f"held_from_stage IS NULL OR held_from_stage IN ({_STAGE_LIST})", "held"),
        CheckConstraint("(stage = 'on_hold') = (held_from_stage IS NOT NULL)", name="hold_origin"),
        CheckConstraint(f"lost_reason IS NULL OR lost_reason IN ({_LOST_REASONS})", "lost_reason"),
        CheckConstraint("(stage = 'lost') = (lost_reason IS NOT NULL)", name="lost_has_reason"),
        CheckConstraint("pain_score IS NULL OR pain_score BETWEEN 0 AND 10", name="pain_score"),
        CheckConstraint(
            "symptom_duration_weeks IS NULL OR symptom_duration_weeks >= 0", "symptoms"
        ),
        UniqueConstraint("agency_id", "agency_reference"),
        Index("ix_referrals_updated_at_id", "updated_at", "id"),
        Index("ix_referrals_stage_updated_at", "stage", "updated_at", "id"),
        # The board: the oldest of each stage, a LIMIT walked in this order.
        Index("ix_referrals_stage_entered_at", "stage", "stage_entered_at", "id"),  # board, SLA
        Index("ix_referrals_agency_updated_at", "agency_id", "updated_at", "id"),
        Index("ix_referrals_patient_id", "patient_id"),
        # A pg_trgm GIN index on PostgreSQL (LIKE '%x%' through the index); on SQLite,
        # which has no trigram index, the migration makes it a plain one.
        Index(
            "ix_referrals_search_text",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="RESTRICT"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"))
    # The agency that owns the patient under the attribution rule (crm/duplicates): the
    # referral's own agency, or the one that sent the same patient first. NULL: direct.
    attributed_agency_id: Mapped[int | None] = mapped_column(
        ForeignKey("agencies.id", ondelete="RESTRICT")
    )
    procedure_id: Mapped[int] = mapped_column(
        ForeignKey("procedures.id", ondelete="RESTRICT"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), index=True
    )
    stage: Mapped[str] = mapped_column(String(20), default=Stage.ENQUIRY)
    stage_entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    held_from_stage: Mapped[str | None] = mapped_column(String(20))
    lost_reason: Mapped[str | None] = mapped_column(String(40))
    agency_reference: Mapped[str | None] = mapped_column(String(100))
    complaints: Mapped[list[str]] = mapped_column(JSON, default=list)
    symptom_duration_weeks: Mapped[int | None]
    treatments_tried: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    pain_score: Mapped[int | None]
    intake_notes: Mapped[str] = mapped_column(Text, default="")
    # Kept by the operations that create a referral or change its patient (search.py).
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")

    patient: Mapped[Patient] = relationship(lazy="joined")
    agency: Mapped[Agency | None] = relationship(foreign_keys=[agency_id])
    procedure: Mapped[Procedure] = relationship(lazy="joined")
    owner: Mapped[StaffUser | None] = relationship()
    history: Mapped[list[StageTransition]] = relationship(
        back_populates="referral",
        order_by="StageTransition.occurred_at, StageTransition.id",
        cascade="all, delete-orphan",
    )
    notes: Mapped[list[ReferralNote]] = relationship(
        order_by="ReferralNote.created_at", cascade="all, delete-orphan"
    )

    @property
    def reference(self) -> str:
        """The hospital's reference, `R-000013`: the one patients are told."""
        return hospital_reference(self.id)


class StageTransition(db.Model):
    """One recorded move: who, when, from, to, why. Creation is a move from nothing."""

    __tablename__ = "stage_transitions"
    __table_args__ = (
        CheckConstraint(f"to_stage IN ({_STAGE_LIST})", name="to_stage"),
        CheckConstraint(f"from_stage IS NULL OR from_stage IN ({_STAGE_LIST})", name="from_stage"),
        CheckConstraint("actor_type IN ('agency','staff','patient','system')", name="actor_type"),
        Index("ix_stage_transitions_referral", "referral_id", "occurred_at"),
        # the SLA report's finished breaches, newest first (crm/reports/sla.py)
        Index("ix_stage_transitions_from_stage_occurred", "from_stage", "occurred_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    actor_type: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[int | None]
    actor_label: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="history")


class ReferralNote(db.Model):
    __tablename__ = "referral_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    author_label: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
