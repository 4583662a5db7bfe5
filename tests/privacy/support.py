"""A patient with a whole case behind them: documents, messages both ways, the
conversation, a check-in, a plan with consent, a trip, a commission entry; completed."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from crm.conversation.models import ConversationMessage
from crm.core.db import utcnow
from crm.documents.upload import storage
from crm.followup.queries import check_ins_of
from crm.messaging.models import InboundMessage, OutboxMessage
from crm.patients.links import link_for
from crm.plans.models import TreatmentPlan
from crm.plans.operations import accept_plan
from crm.referrals.models import Referral
from crm.referrals.operations import add_note, move_to_stage
from crm.reviews.operations import record_review
from crm.travel.models import Trip
from tests.commission.support import add_contract
from tests.factories import Caller, Factory
from tests.plans.support import CANDIDATE, CONSENTS, offer, patient_of, upload_sample_mri

API = "/api/v1"
_people = itertools.count(1)


def person(**overrides: Any) -> dict[str, Any]:
    """A patient nobody else shares a phone, email or birth date with (the factory's
    default patient is one person: every referral of it is linked as a duplicate)."""
    n = next(_people)
    return {
        "given_name": "Amira",
        "family_name": f"Privacy{n}",
        "phone": f"+4917{n:09d}",
        "email": f"amira{n}@privacy.example",
        "date_of_birth": f"19{60 + n % 30}-0{1 + n % 9}-1{n % 9}",
        **overrides,
    }


def new_referral(factory: Factory, agency: Caller, **patient: Any) -> Referral:
    return factory.referral(agency, patient=person(**patient))


def personal_rows(session, referral: Referral) -> None:
    """What a patient writes and is sent beyond the pipeline's own messages."""
    patient = referral.patient
    session.add(
        InboundMessage(
            provider_id=f"SM-privacy-{referral.id}",
            from_address=patient.phone,
            body=f"It is {patient.given_name}, my back is better",
            classification="reply",
            patient_id=patient.id,
            referral_id=referral.id,
        )
    )
    session.add(
        ConversationMessage(
            referral_id=referral.id, direction="in", channel="page", body="Question from me"
        )
    )
    now = utcnow()
    session.add(
        Trip(
            referral_id=referral.id,
            arrival_at=now - timedelta(days=20),
            admission_at=now - timedelta(days=19),
            discharge_at=now - timedelta(days=15),
            departure_at=now - timedelta(days=12),
            hotel_name="Hotel Example",
            companion_name="Karim Privacy",
        )
    )
    link_for(referral.id)
    session.flush()


def treated(client, factory: Factory, agency: Caller, coordinator: Caller) -> Referral:
    """A person of their own, MRI uploaded, reviewed, plan accepted, now in treatment
    (the `no_stay_guards` fixture: the stay's facts are travel's)."""
    referral = new_referral(factory, agency)
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    upload_sample_mri(referral, agency.actor)
    record_review(referral, dict(CANDIDATE), factory.staff("specialist").actor)
    factory.session.commit()
    assert offer(client, coordinator, referral).status_code == 201
    plan = factory.session.scalars(
        select(TreatmentPlan).where(TreatmentPlan.referral_id == referral.id)
    ).one()
    accept_plan(plan, dict(CONSENTS), patient_of(referral))
    move_to_stage(referral, "travel_booked", coordinator.actor)
    move_to_stage(referral, "in_treatment", coordinator.actor)
    factory.session.commit()
    return referral


def completed_case(client, factory: Factory, agency: Caller, coordinator: Caller, manager):
    """Treated through the real operations (a commission entry accrued), then post-op with
    an answered check-in carrying free text, followed up and completed."""
    add_contract(client, manager, agency)
    referral = treated(client, factory, agency, coordinator)
    move_to_stage(referral, "post_op", coordinator.actor)
    first = check_ins_of(referral.id)[0]
    first.answered_at, first.free_text = utcnow(), "the wound itches at night"
    move_to_stage(referral, "follow_up", coordinator.actor)
    move_to_stage(referral, "completed", coordinator.actor)
    add_note(referral, f"{referral.patient.full_name} called about the invoice", coordinator.actor)
    personal_rows(factory.session, referral)
    factory.session.commit()
    return referral


def stored_files(referral: Referral, session) -> list:
    from crm.documents.models import Document

    hashes = session.scalars(select(Document.sha256).where(Document.referral_id == referral.id))
    return [storage().path(sha) for sha in hashes]


def patient_messages(session, referral: Referral) -> list[OutboxMessage]:
    return list(
        session.scalars(select(OutboxMessage).where(OutboxMessage.referral_id == referral.id))
    )
