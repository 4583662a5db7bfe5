"""Offering versioned treatment plans and accepting them. An accepted plan is frozen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.engine import Connection

from crm.catalogue.queries import procedure_by_code, procedure_named
from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, NotFound, ValidationFailed
from crm.core.events import publish
from crm.extensions import db
from crm.messaging.composing.outbox import cancel_queued, enqueue
from crm.plans.events import PlanAccepted, PlanOffered
from crm.plans.information import (
    ConsentInformation,
    InformationChanged,
    ShownInformation,
    consent_information,
)
from crm.plans.models import PlanLineItem, TreatmentPlan
from crm.plans.queries import REQUIRED_CONSENTS
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.referrals.stages import Stage

# Where an acceptance came from, by who acted: the patient on the private link, or staff
# recording an acceptance given another way (a signed form, a call).
_SOURCES = {"patient": "patient_link", "staff": "staff"}


class FrozenPlan(Conflict):
    code, title = "plan-frozen", "An accepted plan can never change"


def offer_plan(referral: Referral, data: dict[str, Any], actor: Actor) -> TreatmentPlan:
    """A new version: the first moves the referral to plan_offered (a candidate review is
    required by the guard); a later one supersedes the version the patient has not
    accepted. The patient and the agency are told through the outbox."""
    if referral.stage not in (Stage.MRI_REVIEW, Stage.PLAN_OFFERED):
        raise Conflict(f"a plan is offered from mri_review or plan_offered, not {referral.stage}")
    try:
        procedure_by_code(data["procedure"])
    except NotFound as exc:
        raise ValidationFailed({"procedure": "not in the catalogue"}) from exc
    now = utcnow()
    previous = _latest(referral.id)
    _supersede_offered(referral.id, now)
    plan = TreatmentPlan(
        referral_id=referral.id,
        version=(previous.version if previous else 0) + 1,
        status="offered",
        procedure_code=data["procedure"],
        hospital=data["hospital"],
        surgeon=data["surgeon"],
        currency=data["currency"],
        deposit_minor=data["deposit_minor"],
        valid_until=data["valid_until"],
        inclusions=data["inclusions"],
        exclusions=data["exclusions"],
        notes_for_patient=data["notes_for_patient"],
        created_by_label=actor.label,
        items=[PlanLineItem(position=n, **item) for n, item in enumerate(data["items"])],
    )
    db.session.add(plan)
    db.session.flush()
    audit.record(actor, "plan.offer", referral.id, plan_id=plan.id, version=plan.version)
    if referral.stage == Stage.MRI_REVIEW:
        move_to_stage(referral, Stage.PLAN_OFFERED, actor, note=f"plan v{plan.version}")
    _tell_about_offer(referral, plan, previous)
    publish(PlanOffered(referral, plan, actor, previous.version if previous else None))
    return plan


def _latest(referral_id: int) -> TreatmentPlan | None:
    return db.session.scalar(
        select(TreatmentPlan)
        .where(TreatmentPlan.referral_id == referral_id)
        .order_by(TreatmentPlan.version.desc())
        .limit(1)
    )


def _supersede_offered(referral_id: int, now: datetime) -> None:
    if db.session.scalar(
        select(TreatmentPlan.id).where(
            TreatmentPlan.referral_id == referral_id, TreatmentPlan.status == "accepted"
        )
    ):
        raise Conflict("the patient has accepted a plan; it can no longer be replaced")
    superseded = db.session.scalars(
        update(TreatmentPlan)
        .where(TreatmentPlan.referral_id == referral_id, TreatmentPlan.status == "offered")
        .values(status="superseded", superseded_at=now)
        .returning(TreatmentPlan.id)
        .execution_options(synchronize_session="fetch")
    ).all()
    # A notice about a version that is no longer on offer must not reach the patient.
    keys = [f"plan:{plan_id}:patient:{channel}" for plan_id in superseded for channel in CHANNELS]
    cancel_queued(keys, "superseded")


CHANNELS = ("sms", "email")


def _what_changed(plan: TreatmentPlan, previous: TreatmentPlan) -> dict[str, Any]:
    """For the "plan updated" message: the total and the validity, before and now."""
    return {
        "price_changed": (plan.total_minor, plan.currency)
        != (previous.total_minor, previous.currency),
        "total_minor": plan.total_minor,
        "currency": plan.currency,
        "previous_total_minor": previous.total_minor,
        "previous_currency": previous.currency,
        "valid_until_changed": plan.valid_until != previous.valid_until,
        "previous_valid_until": previous.valid_until,
    }


def _tell_about_offer(
    referral: Referral, plan: TreatmentPlan, previous: TreatmentPlan | None
) -> None:
    """Once per version: the first says the plan is ready, a later one what changed."""
    extra = {"valid_until": plan.valid_until}
    patient_extra = {**extra, **_what_changed(plan, previous)} if previous else extra
    enqueue(
        referral,
        kind="plan_updated_patient" if previous else "plan_offered_patient",
        audience="patient",
        channels=["sms", "email"],
        fallback=False,
        key=f"plan:{plan.id}:patient",
        extra=patient_extra,
    )
    if referral.agency_id is not None:
        enqueue(
            referral,
            kind="plan_offered_agency",
            audience="agency",
            channels=["email"],
            key=f"plan:{plan.id}:agency",
            extra=extra,
        )


def accept_plan(
    plan: TreatmentPlan,
    consents: dict[str, bool],
    actor: Actor,
    *,
    shown: ShownInformation | None = None,
) -> TreatmentPlan:
    """The patient accepts this version, with both consents recorded.

    `shown` is what the patient's page showed (the version and the SHA-256 of the
    information text): the text is built again here and must be the same, else the plan
    or its information changed since the page was read and the acceptance is refused
    (`InformationChanged`). The consent keeps the version, the language and the text.
    Without `shown` (staff recording a consent given on paper) no text is recorded.

    The referral's row lock serialises acceptances and new offers; the plan and the
    referral are re-read under it, so a second click that waited on the lock sees the
    first acceptance instead of the state it loaded before.
    """
    referral = db.session.get(
        Referral, plan.referral_id, with_for_update={"of": Referral}, populate_existing=True
    )
    db.session.refresh(plan)
    if shown is not None and plan.status == "superseded" and referral.stage == Stage.PLAN_OFFERED:
        raise InformationChanged("a newer version of this plan was offered; read it first")
    if plan.status != "offered" or referral.stage != Stage.PLAN_OFFERED:
        raise Conflict("this plan is not open for acceptance", status=plan.status)
    if plan.valid_until < utcnow().date():
        raise Conflict("this plan has expired; ask your coordinator for a new one")
    information = _information_still_shown(plan, shown) if shown is not None else None
    missing = {
        name: "must be given (true) to accept"
        for name in REQUIRED_CONSENTS
        if consents.get(name) is not True
    }
    if missing:
        raise ValidationFailed(missing)
    now = utcnow()
    plan.status, plan.accepted_at = "accepted", now
    plan.acceptance = {
        "consents": {name: True for name in REQUIRED_CONSENTS},
        "accepted_at": now.isoformat(),
        "source": _SOURCES.get(actor.kind, actor.kind),
        "by": actor.label,
    }
    plan.consent_plan_version = plan.version
    if information is not None:
        plan.consent_language = information.language
        plan.consent_information_text = information.text
        plan.consent_information_sha256 = information.sha256
    db.session.flush()
    audit.record(
        actor,
        "plan.accept",
        referral.id,
        plan_id=plan.id,
        consents=REQUIRED_CONSENTS,
        version=plan.version,
        language=plan.consent_language,
        information_sha256=plan.consent_information_sha256,
    )
    move_to_stage(referral, Stage.PLAN_ACCEPTED, actor, note=f"plan v{plan.version} accepted")
    enqueue(
        referral,
        kind="plan_accepted_coordinator",
        audience="coordinator",
        channels=["email"],
        key=f"plan:{plan.id}:accepted",
    )
    publish(PlanAccepted(referral, plan, actor))
    return plan


def _information_still_shown(plan: TreatmentPlan, shown: ShownInformation) -> ConsentInformation:
    """The information as it reads now; refused unless it is what the page showed."""
    procedure = procedure_named(plan.procedure_code)
    information = consent_information(plan, procedure, shown.language)
    if shown.version != plan.version or shown.sha256 != information.sha256:
        raise InformationChanged(
            "the plan or its information changed since the page was shown; read it again",
            version=plan.version,
        )
    return information


# The freeze, below the operations: any ORM flush that would change or delete an accepted
# plan or its items fails. The stored status is read on the flush's own connection, so an
# object loaded before another transaction accepted the plan is caught too. Bulk
# `update()`/`delete()` statements bypass mapper events; a PostgreSQL trigger (a migration)
# would close that gap as well.


def _stored_status(connection: Connection, plan_id: int | None) -> str | None:
    if plan_id is None:
        return None
    return connection.scalar(select(TreatmentPlan.status).where(TreatmentPlan.id == plan_id))


def _was_accepted(plan: TreatmentPlan, connection: Connection) -> bool:
    history = inspect(plan).attrs.status.history
    previous = history.deleted[0] if history.deleted else plan.status
    return previous == "accepted" or _stored_status(connection, plan.id) == "accepted"


@event.listens_for(TreatmentPlan, "before_update")
@event.listens_for(TreatmentPlan, "before_delete")
def _freeze_plan(_mapper, connection: Connection, plan: TreatmentPlan) -> None:
    if _was_accepted(plan, connection):
        raise FrozenPlan(f"plan {plan.id} was accepted and is frozen")


@event.listens_for(PlanLineItem, "before_insert")
@event.listens_for(PlanLineItem, "before_update")
@event.listens_for(PlanLineItem, "before_delete")
def _freeze_items(_mapper, connection: Connection, item: PlanLineItem) -> None:
    if _stored_status(connection, item.plan_id) == "accepted":
        raise FrozenPlan(f"plan {item.plan_id} was accepted and is frozen")
