"""The reads of the duplicate check: candidates for a new patient, and the staff's list."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import joinedload, selectinload

from crm.core.errors import NotFound
from crm.duplicates.models import DuplicateMatch
from crm.extensions import db
from crm.patients.models import Patient
from crm.referrals.models import Referral
from crm.referrals.references import MAX_ROW_ID
from crm.referrals.stages import Stage

CANDIDATE_LIMIT = 50


def _contact_condition(patient: Patient) -> ColumnElement[bool] | None:
    """The same phone (E.164) or email (case ignored)."""
    conditions = []
    if patient.phone:
        conditions.append(Patient.phone == patient.phone)
    if patient.email:
        conditions.append(func.lower(Patient.email) == patient.email.lower())
    return or_(*conditions) if conditions else None


def _first_ids(rank: int, condition: ColumnElement[bool], patient: Patient) -> Select:
    """The first CANDIDATE_LIMIT other live patients meeting `condition`, tagged `rank`."""
    first = (
        select(Patient.id)
        .where(condition, Patient.id != patient.id, Patient.merged_into_id.is_(None))
        .order_by(Patient.id)
        .limit(CANDIDATE_LIMIT)
        .subquery()
    )
    return select(first.c.id, literal(rank).label("rank"))


def candidates(patient: Patient) -> list[Patient]:
    """Other patients who may be this one, in one statement: those with the same phone or
    email first (indexed), then those born the same day (for the fuzzy name match), each
    up to CANDIDATE_LIMIT."""
    contact = _contact_condition(patient)
    parts = []
    if contact is not None:
        parts.append(_first_ids(0, contact, patient))
    if patient.date_of_birth is not None:
        born = Patient.date_of_birth == patient.date_of_birth
        if contact is not None:  # a NULL email compares to NULL: not a contact match
            born = and_(born, not_(func.coalesce(contact, false())))
        parts.append(_first_ids(1, born, patient))
    if not parts:
        return []
    ranked = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    statement = (
        select(Patient).join(ranked, ranked.c.id == Patient.id).order_by(ranked.c.rank, Patient.id)
    )
    return list(db.session.scalars(statement))


def first_referral_in_window(
    patient_ids: Iterable[int],
    since: datetime,
    exclude_referral_id: int,
    until: datetime | None = None,
) -> Referral | None:
    """The earliest complete agency referral of these patients since `since` (the rule's
    "complete": submitted and not lost), and not after `until` when given (a merge decides
    an older referral again: only those before it may own the patient)."""
    ids = list(patient_ids)
    if not ids:
        return None
    statement = (
        select(Referral)
        .where(
            Referral.patient_id.in_(ids),
            Referral.agency_id.is_not(None),
            Referral.stage != Stage.LOST,
            Referral.created_at >= since,
            Referral.id != exclude_referral_id,
        )
        .order_by(Referral.created_at, Referral.id)
        .limit(1)
    )
    if until is not None:
        statement = statement.where(Referral.created_at <= until)
    return db.session.scalar(statement)


def linked_patient_ids(referral_id: int) -> list[int]:
    statement = select(DuplicateMatch.matched_patient_id).where(
        DuplicateMatch.referral_id == referral_id, DuplicateMatch.status == "linked"
    )
    return list(db.session.scalars(statement))


def list_matches(status: str | None, limit: int = 100) -> list[DuplicateMatch]:
    statement = select(DuplicateMatch).order_by(
        DuplicateMatch.created_at.desc(), DuplicateMatch.id.desc()
    )
    if status:
        statement = statement.where(DuplicateMatch.status == status)
    return list(db.session.scalars(statement.limit(limit)))


def match_for(match_id: int, *, for_update: bool = False) -> DuplicateMatch:
    if not 0 < match_id <= MAX_ROW_ID:
        raise NotFound(f"no duplicate match {match_id}")
    statement = select(DuplicateMatch).where(DuplicateMatch.id == match_id)
    if for_update:
        statement = statement.with_for_update(of=DuplicateMatch)
    match = db.session.scalar(statement)
    if match is None:
        raise NotFound(f"no duplicate match {match_id}")
    return match


def open_matches_oldest_first(limit: int = 50) -> list[DuplicateMatch]:
    """The coordinators' work, the longest waiting first, with both patients, the new
    referral and its agency loaded (a bounded page, a few queries)."""
    statement = (
        select(DuplicateMatch)
        .where(DuplicateMatch.status == "open")
        .options(
            joinedload(DuplicateMatch.referral).joinedload(Referral.agency),
            selectinload(DuplicateMatch.patient),
            selectinload(DuplicateMatch.matched_patient),
        )
        .order_by(DuplicateMatch.created_at, DuplicateMatch.id)
        .limit(limit)
    )
    return list(db.session.scalars(statement).unique())


def count_open_matches() -> int:
    return db.session.scalar(
        select(func.count()).select_from(DuplicateMatch).where(DuplicateMatch.status == "open")
    )


def referrals_of_patients(patient_ids: Iterable[int]) -> dict[int, list[Referral]]:
    """Each patient's referrals, newest first, with their agency (one query)."""
    ids = sorted(set(patient_ids))
    found: dict[int, list[Referral]] = {patient_id: [] for patient_id in ids}
    if not ids:
        return found
    statement = (
        select(Referral)
        .where(Referral.patient_id.in_(ids))
        .options(joinedload(Referral.agency))
        .order_by(Referral.created_at.desc(), Referral.id.desc())
    )
    for referral in db.session.scalars(statement):
        found[referral.patient_id].append(referral)
    return found


def open_match_ids_of_referral(referral_id: int) -> list[int]:
    """Open matches that concern this referral: as the new one, or as a patient known."""
    referral = db.session.get(Referral, referral_id)
    if referral is None:
        return []
    statement = select(DuplicateMatch.id).where(
        DuplicateMatch.status == "open",
        or_(
            DuplicateMatch.referral_id == referral_id,
            DuplicateMatch.matched_patient_id == referral.patient_id,
        ),
    )
    return list(db.session.scalars(statement.order_by(DuplicateMatch.id)))
