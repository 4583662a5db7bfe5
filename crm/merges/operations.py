"""The merge: one patient row of a person survives, the other becomes a tombstone.

Called with the match as read (`queries.match_for(id)`, no lock). It locks both patients
(in id order) and their consent rows, *then* the match, re-reads them all, checks the
guards (`plan.py`), and moves every row that names the merged patient onto the survivor.
Patients before matches, always: a merge also updates other matches of the merged
patient, so a second merge that locked a match first and then waited for a patient could
deadlock with it; this way the second waits on the patients holding nothing the first
needs, then sees the first's result (409).

- referrals: `patient_id` moved; their ids do not change, so the API, the console and
  every private link (`/p/...`) and short link (`/s/<code>`) keep working: links hang on
  the referral, not on the patient;
- consents: the rule in `rules.py` decides each channel; the merged row's rows go;
- contact: the survivor's values stay, its empty ones are filled in from the merged row;
  conflicts are named in the audit and stay on the tombstone;
- outbox: `patient_id` moved; a still-queued patient message to an address the survivor
  is not reached at on that channel is cancelled ("patient merged: address changed");
- replies, legal holds: `patient_id` moved (both held or neither: see the guards);
- other matches: moved to the survivor unless that pair exists already; tombstones of the
  merged row point at the survivor.

It flushes and never commits; it is audited (`patient.merge` on every moved referral),
publishes `PatientsMerged`, `DuplicateDecided` (status `merged`: the task closes as for a
link) and a `ReferralReattributed` for each referral whose owner changed under the
attribution rule (`crm.duplicates.operations.attribute`).
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select, update

from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict
from crm.core.events import publish
from crm.duplicates.events import DuplicateDecided
from crm.duplicates.models import DuplicateMatch
from crm.duplicates.operations import reattribute
from crm.extensions import db
from crm.merges import rules
from crm.merges.events import PatientsMerged
from crm.merges.plan import MergePlan, lock_patients, plan
from crm.messaging.composing.outbox import cancel_queued
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.patients.models import Patient, PatientConsent
from crm.privacy.models import LegalHold
from crm.privacy.queries import person_ids
from crm.referrals.models import Referral
from crm.referrals.search import refresh_for_patient

CANCEL_REASON = "patient merged: address changed"
SOURCE_LIMIT = 100


def merge(match: DuplicateMatch, actor: Actor) -> MergePlan:
    """Merge the match's new patient into the patient already known. 409 `merge-refused`
    when a guard says no; the plan applied otherwise."""
    survivor, merged = _lock(match)
    found = plan(match, survivor, merged)
    if found.refusal is not None:
        raise found.refusal
    conflicting = {name: getattr(merged, name) for name in found.conflicts}
    _decide(match, actor)
    _fill_in(found)
    _consents(found)
    _move_rows(found)
    merged.merged_into_id, merged.merged_at = survivor.id, utcnow()
    db.session.flush()
    for referral in found.referrals:
        db.session.expire(referral, ["patient"])  # moved by the bulk update above
    refresh_for_patient(survivor.id)  # the moved referrals, and a filled-in email or phone
    for referral in found.referrals:
        audit.record(actor, "patient.merge", referral.id, **found.as_json())
    if not found.referrals:
        audit.record(actor, "patient.merge", None, **found.as_json())
    publish(PatientsMerged(match, survivor, merged, found.as_json(), conflicting, actor))
    publish(DuplicateDecided(match, "merged", actor))
    _attribute_again(found, actor)
    return found


def _lock(match: DuplicateMatch) -> tuple[Patient, Patient]:
    """Both patients, then the match, locked and fresh; again if another merge moved the
    match to other patients while this one waited."""
    for _attempt in range(3):
        survivor, merged = lock_patients(match)
        db.session.refresh(match, with_for_update=True)
        if (match.matched_patient_id, match.patient_id) == (survivor.id, merged.id):
            return survivor, merged
    raise Conflict("the match changed while this merge waited; try again")


def _decide(match: DuplicateMatch, actor: Actor) -> None:
    match.status = "merged"
    match.decided_at = utcnow()
    match.decided_by_id = actor.id
    match.decided_by_label = actor.label


def _fill_in(found: MergePlan) -> None:
    for name, value in found.filled.items():
        setattr(found.survivor, name, value)


def _source(fact: rules.ConsentFact, merged_id: int) -> str:
    if fact.origin == "survivor":
        return fact.source
    suffix = f" (merged from #{merged_id})"
    return fact.source[: SOURCE_LIMIT - len(suffix)] + suffix


def _consents(found: MergePlan) -> None:
    """Each channel as the rule decided, on the survivor's one row per channel; the merged
    row's consent rows go (the outcome, with both inputs, is in the audit). No
    `ConsentChanged`: nobody changed their mind, and an opt-out was counted (reports) when
    the person gave it."""
    survivor, merged = found.survivor, found.merged
    for outcome in found.consents:
        current = survivor.consent_for(outcome.channel)
        result = outcome.result
        if result is None:  # the survivor had no row either (a row of its own would win)
            continue
        if current is None:
            current = PatientConsent(channel=outcome.channel)
            survivor.consents.append(current)
        current.granted = result.granted
        current.recorded_at = result.recorded_at
        current.source = _source(result, merged.id)
    for consent in list(merged.consents):
        merged.consents.remove(consent)
    db.session.flush()


def _move_rows(found: MergePlan) -> None:
    survivor, merged = found.survivor, found.merged
    _cancel_misaddressed(found)
    for model in (Referral, OutboxMessage, InboundMessage, LegalHold):
        db.session.execute(
            update(model)
            .where(model.patient_id == merged.id)
            .values(patient_id=survivor.id)
            .execution_options(synchronize_session="fetch")
        )
    db.session.execute(  # earlier tombstones of the merged row point at the survivor now
        update(Patient)
        .where(Patient.merged_into_id == merged.id)
        .values(merged_into_id=survivor.id)
        .execution_options(synchronize_session="fetch")
    )
    _move_matches(found)


def _cancel_misaddressed(found: MergePlan) -> None:
    """A queued patient message to an address the survivor is not reached at on that
    channel is cancelled: the survivor's consent is for its own address."""
    keys = []
    rows = db.session.execute(
        select(
            OutboxMessage.idempotency_key, OutboxMessage.channel, OutboxMessage.to_address
        ).where(
            OutboxMessage.patient_id == found.merged.id,
            OutboxMessage.audience == "patient",
            OutboxMessage.status == "queued",
        )
    ).all()
    for key, channel, to_address in rows:
        wanted = rules.address(found.survivor, channel)
        if wanted is None or wanted != (to_address.lower() if channel == "email" else to_address):
            keys.append(key)
    if keys:
        cancel_queued(keys, CANCEL_REASON)


def _move_matches(found: MergePlan) -> None:
    """The merged patient's other matches move to the survivor, unless that would match
    the survivor with itself or repeat a pair that exists: those stay on the tombstone
    (an open one is then refused as `already_merged`, and dismissed by a coordinator)."""
    survivor, merged = found.survivor.id, found.merged.id
    others = db.session.scalars(
        select(DuplicateMatch).where(
            DuplicateMatch.id != found.match.id,
            or_(DuplicateMatch.patient_id == merged, DuplicateMatch.matched_patient_id == merged),
        )
    ).all()
    for other in others:
        pair = (
            survivor if other.patient_id == merged else other.patient_id,
            survivor if other.matched_patient_id == merged else other.matched_patient_id,
        )
        if pair[0] == pair[1] or _pair_exists(*pair):
            continue
        other.patient_id, other.matched_patient_id = pair
        db.session.flush()


def _pair_exists(one: int, other: int) -> bool:
    return (
        db.session.scalar(
            select(DuplicateMatch.id).where(
                or_(
                    and_(
                        DuplicateMatch.patient_id == one, DuplicateMatch.matched_patient_id == other
                    ),
                    and_(
                        DuplicateMatch.patient_id == other, DuplicateMatch.matched_patient_id == one
                    ),
                )
            )
        )
        is not None
    )


def _attribute_again(found: MergePlan, actor: Actor) -> None:
    """The moved referrals are decided again by the one rule, over the whole person; a
    change of owner is published (webhooks and commission react)."""
    person = person_ids(found.survivor.id)
    for referral in found.referrals:
        cause = f"merge:{found.match.id}:{referral.id}"
        reattribute(referral, person, cause, actor, earlier_only=True)
