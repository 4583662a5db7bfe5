"""Reads for the privacy rights: who the person is (every patient row linked as the same
person), whether a hold or an open treatment stands in the way, and what retention would
erase and when.

A person may have several patient rows: one per agency that sent them, joined by a
coordinator's (or an exact) duplicate link (`crm/duplicates`, status `linked`). Export and
erasure act on the whole person: every row linked to the one asked for, transitively.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from crm.core.actors import Actor
from crm.core.errors import NotFound
from crm.duplicates.models import DuplicateMatch
from crm.extensions import db
from crm.patients.models import Patient
from crm.privacy.models import LegalHold, PatientErasure
from crm.referrals.models import Referral
from crm.referrals.references import MAX_ROW_ID
from crm.referrals.stages import Stage

# An open treatment: from the accepted plan until the follow-up window ends (the referral
# is completed). A referral on hold from one of these stages is still open.
OPEN_TREATMENT = frozenset(
    {Stage.PLAN_ACCEPTED, Stage.TRAVEL_BOOKED, Stage.IN_TREATMENT, Stage.POST_OP, Stage.FOLLOW_UP}
)
# Still in the pipeline before any treatment was agreed: closed (marked lost, reason
# patient_withdrew) before the erasure, so the reports count it as what it was.
BEFORE_TREATMENT = frozenset(
    {Stage.ENQUIRY, Stage.AWAITING_MRI, Stage.MRI_REVIEW, Stage.PLAN_OFFERED}
)


def patient_for(actor: Actor, patient_id: int) -> Patient:
    """The patient for a staff caller; 404 for a missing id (agencies never get here). A
    merged patient's id (a tombstone, `crm/merges`) answers the survivor."""
    patient = db.session.get(Patient, patient_id) if 0 < patient_id <= MAX_ROW_ID else None
    if patient is None or not actor.is_staff:
        raise NotFound(f"no patient {patient_id}")
    if patient.merged_into_id is not None:  # a merged row's id: the patient it became
        patient = db.session.get(Patient, patient.merged_into_id) or patient
    return patient


def person_ids(patient_id: int) -> list[int]:
    """The patient and every patient row linked to it as the same person, transitively,
    a merged one's tombstone included (its match is `merged`)."""
    found, frontier = {patient_id}, {patient_id}
    while frontier:
        rows = db.session.execute(
            select(DuplicateMatch.patient_id, DuplicateMatch.matched_patient_id).where(
                DuplicateMatch.status.in_(("linked", "merged")),
                or_(
                    DuplicateMatch.patient_id.in_(frontier),
                    DuplicateMatch.matched_patient_id.in_(frontier),
                ),
            )
        ).all()
        linked = {pid for row in rows for pid in row} - found
        found |= linked
        frontier = linked
    return sorted(found)


def referrals_of(patient_ids: list[int]) -> list[Referral]:
    return list(
        db.session.scalars(
            select(Referral).where(Referral.patient_id.in_(patient_ids)).order_by(Referral.id)
        )
    )


def holds_in_force(patient_ids: list[int]) -> list[LegalHold]:
    return list(
        db.session.scalars(
            select(LegalHold)
            .where(LegalHold.patient_id.in_(patient_ids), LegalHold.lifted_at.is_(None))
            .order_by(LegalHold.set_at)
        )
    )


def holds_of(patient_ids: list[int]) -> list[LegalHold]:
    """Every hold, lifted or not, newest first."""
    return list(
        db.session.scalars(
            select(LegalHold)
            .where(LegalHold.patient_id.in_(patient_ids))
            .order_by(LegalHold.set_at.desc(), LegalHold.id.desc())
        )
    )


def erasure_of(patient_id: int) -> PatientErasure | None:
    return db.session.get(PatientErasure, patient_id)


def effective_stage(referral: Referral) -> str:
    """The stage that counts for a hold: where an on-hold referral stopped."""
    return referral.held_from_stage if referral.stage == Stage.ON_HOLD else referral.stage


@dataclass(frozen=True)
class Refusal:
    code: str  # legal_hold, open_treatment, active_referral
    detail: str
    referral_ids: list[int]


def refusal_of(patient_ids: list[int], referrals: list[Referral]) -> Refusal | None:
    """Why this person may not be erased now, in words, or None."""
    holds = holds_in_force(patient_ids)
    if holds:
        hold = holds[0]
        return Refusal(
            "legal_hold",
            f"a legal hold applies (set by {hold.set_by_label} on {hold.set_at:%Y-%m-%d}:"
            f" {hold.reason}); lift it first",
            [],
        )
    open_ = [r for r in referrals if effective_stage(r) in OPEN_TREATMENT]
    if open_:
        return Refusal(
            "open_treatment",
            f"treatment is open on {', '.join(r.reference for r in open_)}"
            f" ({', '.join(effective_stage(r) for r in open_)}): erase once it is completed",
            [r.id for r in open_],
        )
    active = [r for r in referrals if effective_stage(r) in BEFORE_TREATMENT]
    if active:
        return Refusal(
            "active_referral",
            f"{', '.join(r.reference for r in active)} is still in the pipeline: mark it lost"
            " (reason patient_withdrew) first, so the reports count it as it ended",
            [r.id for r in active],
        )
    return None


@dataclass(frozen=True)
class PrivacyStatus:
    patient_ids: list[int]
    referral_ids: list[int]
    erased_at: datetime | None
    holds: list[LegalHold]
    erasable: bool
    refusal: str | None


def status_of(actor: Actor, patient_id: int) -> PrivacyStatus:
    patient = patient_for(actor, patient_id)
    ids = person_ids(patient.id)
    referrals = referrals_of(ids)
    refused = refusal_of(ids, referrals)
    erasure = erasure_of(patient.id)
    return PrivacyStatus(
        ids,
        [r.id for r in referrals],
        erasure.erased_at if erasure else None,
        holds_of(ids),
        refused is None,
        refused.detail if refused else None,
    )


@dataclass(frozen=True)
class RetentionDue:
    patient_id: int
    basis: str  # "completed" or "lost"
    ended_at: datetime
    due_at: datetime
    held: bool


def _ending(referrals: list[Referral]) -> tuple[str, datetime] | None:
    """Every referral ended: the basis (completed wins over lost) and the last ending."""
    if not referrals or any(r.stage not in (Stage.COMPLETED, Stage.LOST) for r in referrals):
        return None
    completed = [r.stage_entered_at for r in referrals if r.stage == Stage.COMPLETED]
    if completed:
        return "completed", max(completed)
    return "lost", max(r.stage_entered_at for r in referrals)


def retention_schedule(
    settings: Mapping[str, Any], now: datetime, horizon_days: int = 0
) -> list[RetentionDue]:
    """Patients not yet erased whose referrals all ended, due for erasure by `now` plus
    `horizon_days` under the configured periods (0 days: that basis is never erased).
    Ordered by when they fall due. Linked rows are judged together."""
    periods = {
        "completed": settings["RETENTION_DAYS_AFTER_COMPLETED"],
        "lost": settings["RETENTION_DAYS_AFTER_LOST"],
    }
    if not any(periods.values()):
        return []
    until = now + timedelta(days=horizon_days)
    erased = select(PatientErasure.patient_id)
    candidates = db.session.scalars(
        select(Patient.id)
        .where(Patient.id.not_in(erased))
        .where(Patient.id.in_(select(Referral.patient_id)))
        .where(
            Patient.id.not_in(
                select(Referral.patient_id).where(
                    Referral.stage.not_in([Stage.COMPLETED, Stage.LOST])
                )
            )
        )
        .order_by(Patient.id)
    ).all()
    due: list[RetentionDue] = []
    seen: set[int] = set()
    for patient_id in candidates:
        if patient_id in seen:
            continue
        ids = person_ids(patient_id)
        seen |= set(ids)
        ending = _ending(referrals_of(ids))
        if ending is None or not periods[ending[0]]:
            continue
        at = ending[1] + timedelta(days=periods[ending[0]])
        if at <= until:
            held = bool(holds_in_force(ids))
            due.append(RetentionDue(min(ids), ending[0], ending[1], at, held))
    return sorted(due, key=lambda d: (d.due_at, d.patient_id))
