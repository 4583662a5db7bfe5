"""Finding a new referral's patient among the patients already known, and attribution.

Runs inside the submit transaction (a subscriber of ReferralSubmitted). On PostgreSQL an
advisory transaction lock keyed by the normalised phone and email serialises two
submissions of the same person, so the second sees the first (committed) and exactly one
agency owns the patient. SQLite has no advisory locks: there the lock is a no-op (its
writes are serialised by the database file lock anyway).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from rapidfuzz import fuzz
from sqlalchemy import text

from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict
from crm.core.events import publish
from crm.duplicates import queries
from crm.duplicates.events import DuplicateDecided, ReferralReattributed, task_key
from crm.duplicates.models import DuplicateMatch
from crm.extensions import db
from crm.patients.models import Patient
from crm.referrals.events import AttentionNeeded
from crm.referrals.models import Referral
from crm.referrals.search import fold

TASK_TITLE = "Possible duplicate patient: link, merge or dismiss"


@dataclass
class Evidence:
    fields: list[str] = field(default_factory=list)
    name_score: int = 0

    def as_json(self) -> dict:
        return {"fields": self.fields, "name_score": self.name_score}


def folded_name(patient: Patient) -> str:
    return fold(f"{patient.given_name} {patient.family_name}")


def name_score(one: Patient, other: Patient) -> int:
    """0-100, word order ignored, accents and case folded as the search folds them."""
    return round(fuzz.token_sort_ratio(folded_name(one), folded_name(other)))


def evidence_of(new: Patient, known: Patient) -> Evidence:
    evidence = Evidence(name_score=name_score(new, known))
    if new.phone and new.phone == known.phone:
        evidence.fields.append("phone")
    if new.email and known.email and new.email.lower() == known.email.lower():
        evidence.fields.append("email")
    if new.date_of_birth and new.date_of_birth == known.date_of_birth:
        evidence.fields.append("date_of_birth")
    if evidence.name_score == 100:
        evidence.fields.append("name")
    return evidence


def classify(evidence: Evidence, threshold: int) -> str | None:
    """`exact` (same phone or email, and same birth date or name), `likely`, or None."""
    contact = {"phone", "email"} & set(evidence.fields)
    person = {"date_of_birth", "name"} & set(evidence.fields)
    if contact and person:
        return "exact"
    if contact:
        return "likely"
    if "date_of_birth" in evidence.fields and evidence.name_score >= threshold:
        return "likely"
    return None


def lock_keys(patient: Patient) -> list[int]:
    keys = []
    for value in (patient.phone, (patient.email or "").lower()):
        if value:
            digest = hashlib.blake2b(f"patient:{value}".encode(), digest_size=8).digest()
            keys.append(int.from_bytes(digest, "big", signed=True))
    return sorted(keys)  # one global order: two submissions never wait on each other


def lock_contacts(patient: Patient) -> None:
    if db.session.get_bind().dialect.name != "postgresql":
        return  # SQLite: no advisory locks; its single writer serialises submissions
    keys = lock_keys(patient)
    if keys:  # one round trip; the locks are taken left to right, in lock_keys' order
        locks = ", ".join(f"pg_advisory_xact_lock(:key{n})" for n in range(len(keys)))
        db.session.execute(text(f"SELECT {locks}"), {f"key{n}": k for n, k in enumerate(keys)})


def check_new_referral(referral: Referral, actor: Actor) -> list[DuplicateMatch]:
    """Match the new referral's patient against those known; link exact matches, open a
    task for likely ones, then decide who owns the patient."""
    settings = current_app.config["CRM"]
    patient = referral.patient
    lock_contacts(patient)
    matches = []
    for known in queries.candidates(patient):
        evidence = evidence_of(patient, known)
        kind = classify(evidence, settings["DUPLICATE_NAME_THRESHOLD"])
        if kind is None:
            continue
        match = DuplicateMatch(
            referral_id=referral.id,
            patient_id=patient.id,
            matched_patient_id=known.id,
            kind=kind,
            status="linked" if kind == "exact" else "open",
            evidence=evidence.as_json(),
        )
        db.session.add(match)
        matches.append(match)
    if not matches:
        attribute(referral, [])
        return matches
    db.session.flush()
    for match in matches:
        audit.record(
            actor,
            "duplicate.found",
            referral.id,
            match_id=match.id,
            kind=match.kind,
            status=match.status,
            matched_patient_id=match.matched_patient_id,
        )
        if match.status == "open":
            publish(
                AttentionNeeded(
                    referral,
                    TASK_TITLE,
                    "system",
                    detail=describe(match),
                    dedupe_key=task_key(match.id),
                )
            )
    attribute(referral, [m.matched_patient_id for m in matches if m.status == "linked"])
    return matches


def describe(match: DuplicateMatch) -> str:
    fields = ", ".join(match.evidence.get("fields", [])) or "none"
    return (
        f"Patient #{match.patient_id} may be patient #{match.matched_patient_id}: "
        f"matching {fields}; name similarity {match.evidence.get('name_score', 0)}/100. "
        f"Compare and decide on the console's Duplicates page (/console/duplicates), or "
        f"POST /api/v1/duplicates/{match.id}/link, /merge or /dismiss."
    )


def attribute(
    referral: Referral, linked_patient_ids: list[int], *, earlier_only: bool = False
) -> None:
    """The rule: the first agency with a complete (submitted, not lost) referral of the
    same patient within CRM_ATTRIBUTION_WINDOW_DAYS owns the patient. `earlier_only`: only
    referrals that came before this one count (a merge deciding an older referral again;
    a new referral is the latest anyway)."""
    if referral.agency_id is None:
        return
    window = timedelta(days=current_app.config["CRM"]["ATTRIBUTION_WINDOW_DAYS"])
    arrived = referral.created_at or utcnow()
    first = queries.first_referral_in_window(
        linked_patient_ids, arrived - window, referral.id, arrived if earlier_only else None
    )
    referral.attributed_agency_id = first.agency_id if first is not None else referral.agency_id
    db.session.flush()


def _decide(match: DuplicateMatch, status: str, actor: Actor) -> DuplicateMatch:
    if match.status != "open":
        raise Conflict(f"this match is already {match.status}", field="status")
    match.status = status
    match.decided_at = utcnow()
    match.decided_by_id = actor.id
    match.decided_by_label = actor.label
    db.session.flush()
    audit.record(actor, f"duplicate.{status}", match.referral_id, match_id=match.id)
    publish(DuplicateDecided(match, status, actor))
    return match


def reattribute(
    referral: Referral,
    patient_ids: list[int],
    cause: str,
    actor: Actor,
    *,
    earlier_only: bool = False,
) -> None:
    """Decide the referral's owner again by the rule; a change is audited and published
    as `ReferralReattributed` (`cause` keys it: webhooks and commission react once)."""
    previous = referral.attributed_agency_id
    attribute(referral, patient_ids, earlier_only=earlier_only)
    if referral.attributed_agency_id == previous:
        return
    audit.record(
        actor,
        "referral.attribution",
        referral.id,
        previous=previous,
        attributed_agency_id=referral.attributed_agency_id,
    )
    publish(ReferralReattributed(referral, previous, referral.attributed_agency_id, cause, actor))


def link(match: DuplicateMatch, actor: Actor) -> DuplicateMatch:
    """The same person: the rows stay, the link is recorded and attribution decided again."""
    _decide(match, "linked", actor)
    referral = match.referral
    reattribute(referral, queries.linked_patient_ids(referral.id), f"match:{match.id}", actor)
    return match


def dismiss(match: DuplicateMatch, actor: Actor) -> DuplicateMatch:
    return _decide(match, "dismissed", actor)
