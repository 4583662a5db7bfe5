"""The verbs of the pipeline. They check, change rows, audit and flush; they never commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from crm.auth.models import StaffUser
from crm.catalogue.queries import procedure_by_code
from crm.core import audit
from crm.core.actors import Actor
from crm.core.cache import NEW_REFERRALS, transaction_notes
from crm.core.db import utcnow
from crm.core.errors import Conflict, GuardFailed, NotFound, ValidationFailed
from crm.core.events import publish
from crm.extensions import db
from crm.patients.operations import create_patient, update_contact
from crm.referrals.events import ReferralSubmitted, StageEntered
from crm.referrals.guards import registry
from crm.referrals.models import Referral, ReferralNote, StageTransition
from crm.referrals.search import refresh_for_patient, refresh_search_text
from crm.referrals.stages import (
    IllegalTransition,
    Stage,
    TransitionRefused,
    TransitionRequest,
    allowed_targets,
    plan_transition,
)


def submit_referral(data: dict[str, Any], actor: Actor) -> Referral:
    """A new referral from an agency (its own) or from staff (a direct enquiry)."""
    try:
        procedure = procedure_by_code(data["procedure"])
    except NotFound as exc:
        raise ValidationFailed({"procedure": f"unknown procedure {data['procedure']!r}"}) from exc
    agency_id = actor.agency_id if actor.is_agency else None
    reference = data.get("agency_reference")
    intake = data.get("intake") or {}
    referral = Referral(
        patient=create_patient(data["patient"], actor, agency_id),
        agency_id=agency_id,
        # the submitting agency until crm/duplicates decides otherwise (no UPDATE when it
        # agrees, which is the common case)
        attributed_agency_id=agency_id,
        procedure=procedure,
        agency_reference=reference,
        stage=Stage.ENQUIRY,
        stage_entered_at=utcnow(),
        complaints=intake.get("complaints", []),
        symptom_duration_weeks=intake.get("symptom_duration_weeks"),
        treatments_tried=intake.get("treatments_tried", []),
        pain_score=intake.get("pain_score"),
        intake_notes=intake.get("notes", ""),
    )
    refresh_search_text(referral)
    db.session.add(referral)
    _record_move(referral, None, Stage.ENQUIRY, actor, note="referral submitted")
    _flush_new_referral(reference)
    transaction_notes(NEW_REFERRALS).add(referral.id)
    audit.record(actor, "referral.create", referral.id, procedure=procedure.code)
    publish(ReferralSubmitted(referral, actor))
    return referral


def _flush_new_referral(reference: str | None) -> None:
    """The UNIQUE (agency_id, agency_reference) constraint is the check: no racy pre-read.

    A failed flush leaves the transaction unusable, which is fine: the 409 rolls it back.
    """
    try:
        db.session.flush()
    except IntegrityError as exc:
        if "agency_reference" in str(exc.orig):
            raise Conflict(
                f"agency_reference {reference!r} is already used by another of your referrals",
                field="agency_reference",
            ) from exc
        raise Conflict("the change conflicts with data already stored") from exc


def move_to_stage(
    referral: Referral,
    target: str,
    actor: Actor,
    reason: str | None = None,
    note: str | None = None,
) -> StageTransition:
    guards = registry()
    request = TransitionRequest(
        current=Stage(referral.stage),
        target=Stage(target),
        held_from=Stage(referral.held_from_stage) if referral.held_from_stage else None,
        reason=reason,
        note=note,
        facts=guards.facts_for(referral, Stage(target)),
    )
    try:
        plan = plan_transition(request, guards.active())
    except IllegalTransition as exc:
        allowed = sorted(allowed_targets(request.current, request.held_from))
        raise GuardFailed(str(exc), guard="allowed_transition", allowed=allowed) from exc
    except TransitionRefused as exc:
        raise GuardFailed(
            str(exc), guards=[{"guard": f.guard, "reason": f.message} for f in exc.failures]
        ) from exc
    referral.stage = plan.to_stage
    referral.held_from_stage = plan.held_from
    referral.lost_reason = plan.reason if plan.to_stage is Stage.LOST else None
    referral.stage_entered_at = utcnow()
    transition = _record_move(referral, plan.from_stage, plan.to_stage, actor, plan.reason, note)
    db.session.flush()
    audit.record(
        actor, "referral.transition", referral.id, from_stage=plan.from_stage, to=plan.to_stage
    )
    publish(StageEntered(referral, plan.from_stage, plan.to_stage, actor, plan.reason, note))
    return transition


def _record_move(
    referral: Referral,
    from_stage: str | None,
    to_stage: str,
    actor: Actor,
    reason: str | None = None,
    note: str | None = None,
) -> StageTransition:
    transition = StageTransition(
        from_stage=from_stage,
        to_stage=to_stage,
        actor_type=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label,
        reason=reason,
        note=note,
        occurred_at=referral.stage_entered_at,
    )
    referral.history.append(transition)
    return transition


def assign_owner(referral: Referral, owner_id: int | None, actor: Actor) -> Referral:
    if owner_id is not None:
        owner = db.session.get(StaffUser, owner_id)
        if owner is None or not owner.active:
            raise ValidationFailed({"owner_id": "no active staff user with this id"})
        if owner.role not in {"coordinator", "manager", "admin"}:
            raise ValidationFailed({"owner_id": f"a {owner.role} cannot own referrals"})
    previous = referral.owner_id
    referral.owner_id = owner_id
    referral.updated_at = utcnow()
    db.session.flush()
    audit.record(actor, "referral.assign", referral.id, previous=previous, owner_id=owner_id)
    return referral


def add_note(referral: Referral, body: str, actor: Actor) -> ReferralNote:
    note = ReferralNote(author_id=actor.id, author_label=actor.label, body=body)
    referral.notes.append(note)
    referral.updated_at = utcnow()
    db.session.flush()
    audit.record(actor, "referral.note", referral.id, note_id=note.id)
    return note


def update_patient_contact(referral: Referral, data: dict[str, Any], actor: Actor) -> Referral:
    update_contact(referral.patient, data, actor, referral.id)
    refresh_for_patient(referral.patient_id)
    referral.updated_at = utcnow()
    db.session.flush()
    return referral
