"""Domain events become webhook events and deliveries, in the same transaction, for the
referral's agency only, to its enabled endpoints subscribed to the type; the payloads carry
no patient contact details and no clinical text."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from crm.core.actors import SYSTEM
from crm.core.events import publish
from crm.followup.events import AlertRaised
from crm.plans.events import PlanAccepted, PlanOffered
from crm.referrals.operations import move_to_stage
from crm.reviews.events import ReviewDecided
from crm.travel.events import TripBooked
from crm.webhooks import operations
from tests.webhooks.support import deliveries_of, endpoint_of, events_of, referral_of

pytestmark = pytest.mark.usefixtures("dns")

WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
PLAN = SimpleNamespace(
    id=7,
    version=2,
    total_minor=850000,
    deposit_minor=100000,
    currency="EUR",
    valid_until=date(2026, 4, 30),
    accepted_at=WHEN,
)


@pytest.fixture
def wired(without_clinical_guards):
    """Every feature but the clinical guards' (webhooks among them): the pipeline walks by
    the state machine alone."""
    return without_clinical_guards


def test_a_stage_move_writes_one_event_and_a_pending_delivery(wired, factory, agency, session):
    endpoint = endpoint_of(agency, ["referral.stage_changed"]).endpoint
    referral = referral_of(factory, agency)
    move_to_stage(referral, "mri_review", SYSTEM)
    [event] = events_of(agency.actor.agency_id)
    assert event.type == "referral.stage_changed"
    assert event.public_id.startswith("msg_")
    assert event.payload["version"] == 1
    assert event.payload["data"]["from_stage"] == "enquiry"
    assert event.payload["data"]["to_stage"] == "mri_review"
    assert event.payload["data"]["referral"]["reference"] == referral.reference
    [delivery] = deliveries_of(endpoint.id)
    assert (delivery.status, delivery.attempts, delivery.event_id) == ("pending", 0, event.id)
    assert delivery.ordering_key == f"referral:{referral.id}"


def test_an_endpoint_not_subscribed_to_the_type_gets_no_delivery(wired, factory, agency):
    subscribed = endpoint_of(agency, ["referral.stage_changed"]).endpoint
    other = endpoint_of(agency, ["plan.accepted"]).endpoint
    move_to_stage(referral_of(factory, agency), "mri_review", SYSTEM)
    assert len(deliveries_of(subscribed.id)) == 1
    assert deliveries_of(other.id) == []


def test_a_disabled_endpoint_keeps_the_event_but_gets_no_delivery(wired, factory, agency):
    endpoint = endpoint_of(agency, ["referral.stage_changed"]).endpoint
    operations.disable_endpoint(endpoint, agency.actor)
    move_to_stage(referral_of(factory, agency), "mri_review", SYSTEM)
    assert len(events_of(agency.actor.agency_id)) == 1
    assert deliveries_of(endpoint.id) == []


def test_another_agencys_endpoints_hear_nothing(wired, factory, agency):
    other = factory.agency()
    theirs = endpoint_of(other).endpoint
    move_to_stage(referral_of(factory, agency), "mri_review", SYSTEM)
    assert deliveries_of(theirs.id) == []
    assert events_of(other.actor.agency_id) == []


def test_an_agency_without_endpoints_gets_no_event_rows(wired, factory, agency):
    move_to_stage(referral_of(factory, agency), "mri_review", SYSTEM)
    assert events_of(agency.actor.agency_id) == []


def test_a_direct_enquiry_produces_no_webhook(wired, factory, agency, coordinator, session):
    endpoint = endpoint_of(agency).endpoint
    direct = referral_of(factory, coordinator)
    move_to_stage(direct, "mri_review", SYSTEM)
    assert deliveries_of(endpoint.id) == []


def test_awaiting_the_mri_is_a_document_request(wired, factory, agency):
    endpoint_of(agency, ["document.requested"])
    referral = referral_of(factory, agency)
    move_to_stage(referral, "awaiting_mri", SYSTEM)
    [event] = events_of(agency.actor.agency_id, "document.requested")
    assert event.payload["data"]["document"] == "mri_study"
    assert event.payload["data"]["referral"]["id"] == referral.id


def test_the_event_is_rolled_back_with_the_change_that_caused_it(wired, factory, agency, session):
    endpoint = endpoint_of(agency, ["referral.stage_changed"]).endpoint
    referral = referral_of(factory, agency)
    savepoint = session.begin_nested()
    move_to_stage(referral, "mri_review", SYSTEM)
    savepoint.rollback()
    assert deliveries_of(endpoint.id) == []


def test_a_review_decision_tells_the_decision_and_not_the_findings(wired, factory, agency):
    endpoint_of(agency, ["review.decided"])
    referral = referral_of(factory, agency)
    review = SimpleNamespace(decision="candidate", created_at=WHEN, findings="L4-L5 extrusion")
    publish(ReviewDecided(referral, review, SYSTEM))
    [event] = events_of(agency.actor.agency_id, "review.decided")
    assert event.payload["data"]["decision"] == "candidate"
    assert event.payload["data"]["decided_at"] == "2026-03-01T09:30:00Z"
    assert "L4-L5" not in json.dumps(event.payload)


def test_a_plan_offer_carries_its_total_and_currency(wired, factory, agency):
    endpoint_of(agency, ["plan.offered"])
    referral = referral_of(factory, agency)
    publish(PlanOffered(referral, PLAN, SYSTEM, previous_version=1))
    [event] = events_of(agency.actor.agency_id, "plan.offered")
    plan = event.payload["data"]["plan"]
    assert (plan["total_minor"], plan["currency"], plan["version"]) == (850000, "EUR", 2)
    assert event.payload["data"]["previous_version"] == 1


def test_a_plan_acceptance_is_told(wired, factory, agency):
    endpoint_of(agency, ["plan.accepted"])
    publish(PlanAccepted(referral_of(factory, agency), PLAN, SYSTEM))
    [event] = events_of(agency.actor.agency_id, "plan.accepted")
    assert event.payload["data"]["accepted_at"] == "2026-03-01T09:30:00Z"


def test_a_booked_trip_tells_its_dates_only(wired, factory, agency):
    endpoint_of(agency, ["travel.booked"])
    trip = SimpleNamespace(
        arrival_at=WHEN, departure_at=WHEN, hotel_name="Hotel Secret", companion_name="Eva"
    )
    publish(TripBooked(referral_of(factory, agency), trip, SYSTEM, created=True))
    [event] = events_of(agency.actor.agency_id, "travel.booked")
    assert event.payload["data"]["created"] is True
    text = json.dumps(event.payload)
    assert "Hotel Secret" not in text and "Eva" not in text


def test_a_check_in_alert_says_only_how_urgent(wired, factory, agency):
    endpoint_of(agency, ["checkin.alert"])
    referral = referral_of(factory, agency)
    summary = "red flag at the 6-week check-in: numbness in the saddle area"
    publish(AlertRaised(referral, SimpleNamespace(id=1, label="6w"), "red_flag", summary, WHEN))
    [event] = events_of(agency.actor.agency_id, "checkin.alert")
    assert set(event.payload["data"]) == {"referral", "urgency", "raised_at"}
    assert event.payload["data"]["urgency"] == "urgent"
    assert "numbness" not in json.dumps(event.payload)


def test_no_payload_carries_the_patients_contact_details_or_intake(wired, factory, agency):
    endpoint_of(agency)
    referral = referral_of(factory, agency)
    patient = referral.patient
    move_to_stage(referral, "awaiting_mri", SYSTEM)
    publish(ReviewDecided(referral, SimpleNamespace(decision="candidate", created_at=WHEN), SYSTEM))
    publish(PlanOffered(referral, PLAN, SYSTEM))
    publish(AlertRaised(referral, SimpleNamespace(id=1, label="6w"), "high_score", "pain 9", WHEN))
    events = events_of(agency.actor.agency_id)
    assert len(events) == 5
    text = json.dumps([event.payload for event in events])
    for private in (
        patient.phone,
        patient.email,
        patient.given_name,
        patient.family_name,
        "pain worse when sitting",
        "radiating_leg_pain",
    ):
        assert private not in text


def test_the_agency_whose_patient_is_already_in_care_hears_only_the_neutral_status(
    wired, factory, session
):
    owner, late = factory.agency(), factory.agency()
    endpoint_of(owner)
    endpoint_of(late)
    same = {"phone": "+4915177770042", "date_of_birth": "1971-02-03"}
    referral_of(factory, owner, **same)
    lost_one = referral_of(factory, late, **same)
    assert lost_one.attributed_agency_id == owner.actor.agency_id
    move_to_stage(lost_one, "awaiting_mri", SYSTEM)
    publish(PlanOffered(lost_one, PLAN, SYSTEM))
    [event] = events_of(late.actor.agency_id)
    assert event.type == "referral.stage_changed"
    assert event.payload["data"]["referral"]["attribution"] == "already_in_care"
    data = event.payload["data"]
    assert set(data) == {"referral", "from_stage", "to_stage", "stage_entered_at", "reason"}
    assert set(data["referral"]) == {"id", "reference", "agency_reference", "attribution"}
    assert owner.actor.label not in json.dumps(event.payload)
    assert events_of(owner.actor.agency_id) == []


def test_the_owning_agency_sees_attributed_in_its_payloads(wired, factory, agency):
    endpoint_of(agency, ["referral.stage_changed"])
    move_to_stage(referral_of(factory, agency), "mri_review", SYSTEM)
    [event] = events_of(agency.actor.agency_id)
    assert event.payload["data"]["referral"]["attribution"] == "attributed"


def test_a_linked_duplicate_tells_the_submitting_agency_it_is_now_already_in_care(
    wired, factory, session
):
    from sqlalchemy import select

    from crm.duplicates.models import DuplicateMatch
    from crm.duplicates.operations import link

    owner, late = factory.agency(), factory.agency()
    endpoint = endpoint_of(late, ["referral.attribution_changed"])
    referral_of(factory, owner, phone="+4915177770051", date_of_birth="1980-05-06")
    second = referral_of(factory, late, phone="+4915177770052", date_of_birth="1980-05-06")
    assert second.attributed_agency_id == late.actor.agency_id  # no exact match: its own
    match = session.scalars(
        select(DuplicateMatch).where(DuplicateMatch.referral_id == second.id)
    ).one()  # the same name and birth date: a likely match, waiting for a coordinator
    assert match.status == "open"
    link(match, SYSTEM)
    [event] = events_of(late.actor.agency_id)
    assert event.type == "referral.attribution_changed"
    assert event.payload["data"]["referral"]["attribution"] == "already_in_care"
    assert set(event.payload["data"]) == {"referral", "changed_at"}
    assert owner.actor.label not in json.dumps(event.payload)
    assert len(deliveries_of(endpoint.id)) == 1
