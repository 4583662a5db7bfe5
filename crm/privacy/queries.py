"""Reads for the privacy rights: who the person is (every patient row linked as the same
person), whether a hold or an open treatment stands in the way, and what retention would
erase and when.

A person may have several patient rows: one per agency that sent them, joined by a
coordinator's (or an exact) duplicate link (`crm/duplicates`, status `linked`). Export and
erasure act on the whole person: every row linked to the one asked for, transitively.
`person_ids` walks the links from one row, a read per hop, which is right for one person.

The retention schedule judges every person at once, so it reads set-wise: all the links
in one read, joined into persons in Python (a union-find, `_Persons`), the referrals'
endings per patient row in one GROUP BY, then the holds in force. Three reads, however
many patients there are (bench/retention.py measures it against the per-person walk).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Result, Row, case, func, or_, select

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
# Ended for good: what retention waits for on every referral of a person.
ENDED = (Stage.COMPLETED, Stage.LOST)


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


class _Persons:
    """The duplicate links as a union-find: `key(id)` is the lowest patient id of the
    person the row belongs to (every row linked to it, transitively, tombstones
    included), as `person_ids` would find one link hop at a time."""

    def __init__(self, links: Iterable[tuple[int, int]]) -> None:
        self._parent: dict[int, int] = {}
        for one, other in links:
            self._join(one, other)

    def key(self, patient_id: int) -> int:
        parent = self._parent
        if patient_id not in parent:
            return patient_id  # linked to nobody: a person of one row
        while parent[patient_id] != patient_id:
            parent[patient_id] = parent[parent[patient_id]]  # path halving
            patient_id = parent[patient_id]
        return patient_id

    def _join(self, one: int, other: int) -> None:
        for patient_id in (one, other):
            self._parent.setdefault(patient_id, patient_id)
        one, other = self.key(one), self.key(other)
        if one != other:  # the lower root stays the root: it is the person's lowest id
            self._parent[max(one, other)] = min(one, other)


def _link_edges() -> list[tuple[int, int]]:
    """Every `linked` or `merged` duplicate match, as the pair of rows it joins."""
    rows = db.session.execute(
        select(DuplicateMatch.patient_id, DuplicateMatch.matched_patient_id).where(
            DuplicateMatch.status.in_(("linked", "merged"))
        )
    )
    return [(one, other) for one, other in rows]


@dataclass
class _PersonEndings:
    """What one person's referrals add up to, over every row of theirs."""

    open_referrals: int = 0  # neither completed nor lost
    last_completed: datetime | None = None
    last_lost: datetime | None = None
    has_kept_row: bool = False  # a row with referrals that is not erased yet

    def add(self, row: Row[Any]) -> None:
        self.open_referrals += row.open_referrals
        self.last_completed = _latest(self.last_completed, row.last_completed)
        self.last_lost = _latest(self.last_lost, row.last_lost)
        self.has_kept_row = self.has_kept_row or row.erased_id is None

    def ending(self) -> tuple[str, datetime] | None:
        """Every referral ended and someone is left to erase: the basis (completed wins
        over lost) and the last ending of that basis."""
        if self.open_referrals or not self.has_kept_row:
            return None
        if self.last_completed is not None:
            return "completed", self.last_completed
        if self.last_lost is not None:  # always, here: every referral ended, none completed
            return "lost", self.last_lost
        return None


def _latest(one: datetime | None, other: datetime | None) -> datetime | None:
    if one is None:
        return other
    if other is None:
        return one
    return max(one, other)


def _endings_per_row() -> Result[Any]:
    """One row per patient with referrals: how many are still open, the last completion,
    the last loss, and the erasure if there is one. Plain CASE, so SQLite runs it too."""
    ended_at = Referral.stage_entered_at
    return db.session.execute(
        select(
            Referral.patient_id,
            func.sum(case((Referral.stage.in_(ENDED), 0), else_=1)).label("open_referrals"),
            func.max(case((Referral.stage == Stage.COMPLETED, ended_at))).label("last_completed"),
            func.max(case((Referral.stage == Stage.LOST, ended_at))).label("last_lost"),
            PatientErasure.patient_id.label("erased_id"),
        )
        .outerjoin(PatientErasure, PatientErasure.patient_id == Referral.patient_id)
        .group_by(Referral.patient_id, PatientErasure.patient_id)
    )


def _endings_per_person(persons: _Persons) -> dict[int, _PersonEndings]:
    endings: dict[int, _PersonEndings] = defaultdict(_PersonEndings)
    for row in _endings_per_row():
        endings[persons.key(row.patient_id)].add(row)
    return endings


def _held_persons(persons: _Persons) -> set[int]:
    """The persons with a hold in force on any of their rows. Holds in force are few (a
    dispute, a claim): all of them in one read, no list of ids to send."""
    held = db.session.scalars(
        select(LegalHold.patient_id).where(LegalHold.lifted_at.is_(None)).distinct()
    )
    return {persons.key(patient_id) for patient_id in held}


def retention_schedule(
    settings: Mapping[str, Any], now: datetime, horizon_days: int = 0
) -> list[RetentionDue]:
    """Persons not yet erased whose referrals all ended, due for erasure by `now` plus
    `horizon_days` under the configured periods (0 days: that basis is never erased).
    Ordered by when they fall due. Linked rows are judged together, as one person named by
    their lowest patient id; a row erased already still counts its referrals.

    Three reads whatever the number of patients: the links (joined into persons here),
    the referrals' endings per patient row (one GROUP BY) and the holds in force."""
    periods = {
        "completed": settings["RETENTION_DAYS_AFTER_COMPLETED"],
        "lost": settings["RETENTION_DAYS_AFTER_LOST"],
    }
    if not any(periods.values()):
        return []
    until = now + timedelta(days=horizon_days)
    persons = _Persons(_link_edges())
    endings = _endings_per_person(persons)
    held = _held_persons(persons)
    due: list[RetentionDue] = []
    for person, person_endings in endings.items():
        ending = person_endings.ending()
        if ending is None or not periods[ending[0]]:
            continue
        basis, ended_at = ending
        at = ended_at + timedelta(days=periods[basis])
        if at <= until:
            due.append(RetentionDue(person, basis, ended_at, at, person in held))
    return sorted(due, key=lambda d: (d.due_at, d.patient_id))
