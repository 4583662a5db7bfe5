"""The privacy verbs: erase a person (pseudonymise them everywhere), set and lift a legal
hold. They flush and never commit; every one is audited.

What an erasure keeps, so the hospital's books and numbers stay right: the referral rows
(stage, procedure, agency, dates), the stage history (who moved it, when; notes blanked),
the commission ledger, the audit trail, the report rollups, the outbox rows' channel,
status and segments, the check-ins' structured answers and alerts, the plans (prices,
versions, the consent text shown), the patient's country, sex, language and time zone.
What it removes: everything that names or reaches the person and every free text that may
(see `_scrub`), and the documents themselves (rows and stored files).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import or_, select, update

from crm.conversation.models import ConversationMessage
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, NotFound, ValidationFailed
from crm.documents.models import Document
from crm.documents.upload import storage
from crm.extensions import db
from crm.followup.models import CheckIn
from crm.messaging.composing.outbox import cancel_queued
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.patients.models import Patient, PatientLink
from crm.privacy import queries
from crm.privacy.models import LegalHold, PatientErasure
from crm.referrals.models import Referral, ReferralNote, StageTransition
from crm.referrals.search import refresh_search_text
from crm.reviews.models import Review
from crm.tasks.models import Task
from crm.travel.models import Trip

log = logging.getLogger(__name__)

ERASED_GIVEN_NAME = "Erased"
ERASED_FAMILY_NAME = "patient"
ERASED_CANCEL_REASON = "patient erased"
MAX_REASON = 2000


class ErasureRefused(Conflict):
    """409: the person may not be erased now; `refusal` says why in one word."""

    code, title = "erasure-refused", "Erasure refused"


@dataclass(frozen=True)
class ErasureResult:
    patient_ids: list[int]
    referral_ids: list[int]
    documents_removed: int
    files_removed: int
    already_erased: bool


def _reason(text: str | None, field: str = "reason") -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        raise ValidationFailed({field: "say why (a request's reference, a policy)"})
    if len(cleaned) > MAX_REASON:
        raise ValidationFailed({field: f"at most {MAX_REASON} characters"})
    return cleaned


def refusal(patient_ids: list[int], referrals: list[Referral]) -> ErasureRefused | None:
    """Why this person may not be erased now, as the 409 to raise, or None."""
    found = queries.refusal_of(patient_ids, referrals)
    if found is None:
        return None
    return ErasureRefused(found.detail, refusal=found.code, referrals=found.referral_ids)


def erase_person(
    patient_id: int, actor: Actor, reason: str | None, source: str = "request"
) -> ErasureResult:
    """Pseudonymise the patient and every row linked as the same person. Refused (409)
    while a legal hold or an open treatment applies. Erasing again is harmless: it scrubs
    anything that arrived since (a late reply) and keeps the first erasure's record."""
    why = _reason(reason)
    if db.session.get(Patient, patient_id) is None:
        raise NotFound(f"no patient {patient_id}")
    ids = queries.person_ids(patient_id)
    db.session.scalars(select(Patient.id).where(Patient.id.in_(ids)).with_for_update()).all()
    referrals = queries.referrals_of(ids)
    refused = refusal(ids, referrals)
    if refused is not None:
        raise refused
    already = all(queries.erasure_of(pid) is not None for pid in ids)
    referral_ids = [r.id for r in referrals]
    documents, files = _remove_documents(referral_ids)
    _scrub(ids, referrals)
    for pid in ids:
        if queries.erasure_of(pid) is None:
            db.session.add(
                PatientErasure(
                    patient_id=pid,
                    source=source,
                    reason=why,
                    erased_by_label=actor.label,
                    documents_removed=documents,
                )
            )
    for referral_id in referral_ids or [None]:
        audit.record(
            actor,
            "privacy.erase",
            referral_id,
            patient_ids=ids,
            source=source,
            reason=why,
            documents_removed=documents,
            already_erased=already,
        )
    db.session.flush()
    return ErasureResult(ids, referral_ids, documents, files, already)


def _scrub(patient_ids: list[int], referrals: list[Referral]) -> None:
    referral_ids = [r.id for r in referrals]
    for patient in db.session.scalars(select(Patient).where(Patient.id.in_(patient_ids))):
        patient.given_name, patient.family_name = ERASED_GIVEN_NAME, ERASED_FAMILY_NAME
        patient.date_of_birth = patient.phone = patient.email = None
    queued = db.session.scalars(
        select(OutboxMessage.idempotency_key).where(
            _about(OutboxMessage, patient_ids, referral_ids), OutboxMessage.status == "queued"
        )
    ).all()
    cancel_queued(list(queued), ERASED_CANCEL_REASON)
    _blank(
        OutboxMessage,
        _about(OutboxMessage, patient_ids, referral_ids),
        to_address="",
        subject=None,
        body_text="",
        body_html=None,
        template_values=None,
        content_variables=None,
        error_message=None,
    )
    _blank(
        InboundMessage,
        _about(InboundMessage, patient_ids, referral_ids),
        body="",
        from_address="",
    )
    if not referral_ids:
        return
    in_referrals = {
        model: model.referral_id.in_(referral_ids)
        for model in (ConversationMessage, CheckIn, ReferralNote, StageTransition, Review, Task)
    }
    _blank(ConversationMessage, in_referrals[ConversationMessage], body="")
    _blank(CheckIn, in_referrals[CheckIn], free_text=None)
    _blank(ReferralNote, in_referrals[ReferralNote], body="")
    _blank(StageTransition, in_referrals[StageTransition], note=None)
    _blank(
        Review,
        in_referrals[Review],
        findings="",
        risks_to_discuss="",
        notes="",
        request_to_patient=None,
    )
    _blank(Task, in_referrals[Task], detail="")
    _blank(
        Trip,
        Trip.referral_id.in_(referral_ids),
        companion_name=None,
        transfers="",
        hotel_address="",
    )
    now = utcnow()
    _blank(
        PatientLink,
        PatientLink.referral_id.in_(referral_ids),
        PatientLink.revoked_at.is_(None),
        revoked_at=now,
    )
    for referral in referrals:
        referral.intake_notes = ""
        refresh_search_text(referral)


def _about(model, patient_ids: list[int], referral_ids: list[int]):
    return or_(model.patient_id.in_(patient_ids), model.referral_id.in_(referral_ids or [-1]))


def _blank(model, *where, **values) -> None:
    db.session.execute(
        update(model).where(*where).values(**values).execution_options(synchronize_session="fetch")
    )


def _remove_documents(referral_ids: list[int]) -> tuple[int, int]:
    """Delete the referrals' document rows, then their stored files unless another
    document (someone else's identical file) still points at the same content.

    The files go last, after every row change of the erasure has been flushed: a failure
    before this point leaves every file in place. Should the transaction still fail to
    commit after it, the rows come back pointing at files that are gone, and erasing
    again (it is idempotent) removes them."""
    if not referral_ids:
        return 0, 0
    documents = db.session.scalars(
        select(Document).where(Document.referral_id.in_(referral_ids))
    ).all()
    hashes = {d.sha256 for d in documents}
    for document in documents:
        db.session.delete(document)
    db.session.flush()
    still_used = set(db.session.scalars(select(Document.sha256).where(Document.sha256.in_(hashes))))
    removed = sum(_delete_stored(sha) for sha in sorted(hashes - still_used))
    return len(documents), removed


def _delete_stored(sha256: str) -> bool:
    """Remove one stored file (local folder or bucket); whether it was there."""
    store = storage()
    if not store.exists(sha256):
        return False
    store.delete(sha256)
    return True


def set_hold(patient_id: int, actor: Actor, reason: str | None) -> LegalHold:
    """Put a legal hold on the person (on the row asked for; it covers linked rows)."""
    why = _reason(reason)
    patient = queries.patient_for(actor, patient_id)
    hold = LegalHold(
        patient_id=patient.id, reason=why, set_by_id=actor.id, set_by_label=actor.label
    )
    db.session.add(hold)
    for referral in queries.referrals_of(queries.person_ids(patient.id)) or [None]:
        audit.record(
            actor,
            "privacy.hold.set",
            referral.id if referral else None,
            patient_id=patient.id,
            reason=why,
        )
    db.session.flush()
    return hold


def lift_holds(patient_id: int, actor: Actor, reason: str | None) -> list[LegalHold]:
    """Lift every hold in force on the person; 409 when there is none."""
    why = _reason(reason)
    patient = queries.patient_for(actor, patient_id)
    ids = queries.person_ids(patient.id)
    holds = queries.holds_in_force(ids)
    if not holds:
        raise Conflict("no legal hold is in force on this patient")
    now = utcnow()
    for hold in holds:
        hold.lifted_at, hold.lifted_by_id, hold.lifted_by_label = now, actor.id, actor.label
        hold.lift_reason = why
    for referral in queries.referrals_of(ids) or [None]:
        audit.record(
            actor,
            "privacy.hold.lift",
            referral.id if referral else None,
            patient_id=patient.id,
            holds=[h.id for h in holds],
            reason=why,
        )
    db.session.flush()
    return holds
