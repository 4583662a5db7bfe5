"""Retention's inputs written straight as rows (patients, referrals at a stage since some
days, duplicate links, erasures, holds), and the schedule as it was computed before it
read set-wise: one person at a time, a read per link hop, per referral list and per hold
check. The reference the set-wise schedule must equal (tests/privacy/test_retention_*).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from crm.catalogue.models import Procedure
from crm.duplicates.models import DuplicateMatch
from crm.extensions import db
from crm.patients.models import Patient
from crm.privacy.models import LegalHold, PatientErasure
from crm.privacy.queries import RetentionDue, holds_in_force, person_ids, referrals_of
from crm.referrals.models import Referral
from crm.referrals.stages import Stage

_names = itertools.count(1)


class Rows:
    """Writes the rows retention reads, every time relative to `now`."""

    def __init__(self, session, now: datetime) -> None:
        self.session = session
        self.now = now
        self._procedure_id = session.scalars(select(Procedure.id).limit(1)).one()

    def patient(self) -> Patient:
        patient = Patient(given_name="Rita", family_name=f"Retention{next(_names)}", country="DE")
        self.session.add(patient)
        self.session.flush()
        return patient

    def referral(self, patient: Patient, stage: str, days_ago: int) -> Referral:
        """A referral of `patient` that entered `stage` that many days before `now`."""
        referral = Referral(
            patient_id=patient.id,
            procedure_id=self._procedure_id,
            stage=stage,
            stage_entered_at=self.now - timedelta(days=days_ago),
            held_from_stage=Stage.FOLLOW_UP if stage == Stage.ON_HOLD else None,
            lost_reason="price" if stage == Stage.LOST else None,
        )
        self.session.add(referral)
        self.session.flush()
        return referral

    def link(self, one: Patient, other: Patient, status: str = "linked") -> DuplicateMatch:
        """A duplicate match of `one` to `other`; its referral is any one there is."""
        referral_id = self.session.scalars(select(Referral.id).limit(1)).one()
        match = DuplicateMatch(
            referral_id=referral_id,
            patient_id=one.id,
            matched_patient_id=other.id,
            kind="exact",
            status=status,
            evidence={},
        )
        self.session.add(match)
        self.session.flush()
        return match

    def merged_into(self, tombstone: Patient, survivor: Patient) -> None:
        """`tombstone` was merged into `survivor` (crm/merges): it keeps no referral."""
        tombstone.merged_into_id, tombstone.merged_at = survivor.id, self.now
        self.link(tombstone, survivor, status="merged")

    def erased(self, patient: Patient) -> None:
        self.session.add(
            PatientErasure(
                patient_id=patient.id, source="request", reason="asked", erased_by_label="M"
            )
        )
        self.session.flush()

    def hold(self, patient: Patient, lifted: bool = False) -> None:
        self.session.add(
            LegalHold(
                patient_id=patient.id,
                reason="a claim",
                set_by_label="M",
                lifted_at=self.now if lifted else None,
                lifted_by_label="M" if lifted else None,
            )
        )
        self.session.flush()


def periods(completed: int, lost: int) -> dict[str, int]:
    return {"RETENTION_DAYS_AFTER_COMPLETED": completed, "RETENTION_DAYS_AFTER_LOST": lost}


def schedule_one_person_at_a_time(
    settings: Mapping[str, Any], now: datetime, horizon_days: int = 0
) -> list[RetentionDue]:
    """The schedule before it read set-wise (commit c68469e), word for word."""
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


def _ending(referrals: list[Referral]) -> tuple[str, datetime] | None:
    if not referrals or any(r.stage not in (Stage.COMPLETED, Stage.LOST) for r in referrals):
        return None
    completed = [r.stage_entered_at for r in referrals if r.stage == Stage.COMPLETED]
    if completed:
        return "completed", max(completed)
    return "lost", max(r.stage_entered_at for r in referrals)
