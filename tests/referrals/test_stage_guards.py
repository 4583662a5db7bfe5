"""Every guard through the API: a bare move is 409 naming it; once the fact holds, it passes.

The stages that record a fact (plan accepted, travel booked, admitted, discharged, went
home) are entered through the operation that records it; a transition alone is refused.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from crm.catalogue.models import Procedure
from crm.core.db import utcnow
from crm.followup.operations import record_answers
from crm.followup.queries import check_ins_of
from crm.plans.models import TreatmentPlan
from crm.plans.operations import accept_plan
from crm.plans.queries import current_plan
from crm.tasks.models import Task
from tests.helpers import API, assert_problem
from tests.plans.support import CONSENTS, offer, patient_of, reviewed_as_candidate
from tests.travel.support import trip_around


def _move(client, caller, referral, to: str, **body):
    return client.post(
        f"{API}/referrals/{referral.id}/transitions",
        json={"to": to, **body},
        headers=caller.headers(),
    )


def _refused_by(response) -> list[str]:
    body = assert_problem(response, 409, "guard-failed")
    return [guard["guard"] for guard in body["guards"]]


def _post(client, caller, referral, step: str, at):
    return client.post(
        f"{API}/referrals/{referral.id}/{step}",
        json={"at": at.isoformat()},
        headers=caller.headers(),
    )


@pytest.fixture
def offered(client, factory, agency, coordinator):
    referral = reviewed_as_candidate(factory, agency, coordinator)
    assert offer(client, coordinator, referral).status_code == 201
    return referral


@pytest.fixture
def accepted(session, offered):
    accept_plan(current_plan(offered.id), dict(CONSENTS), patient_of(offered))
    session.commit()
    return offered


ADMISSION_AGO = timedelta(days=8)


@pytest.fixture
def booked(client, accepted, coordinator):
    payload = trip_around(utcnow() - ADMISSION_AGO)
    response = client.put(
        f"{API}/referrals/{accepted.id}/trip", json=payload, headers=coordinator.headers()
    )
    assert response.status_code == 200, response.json
    return accepted


def _admitted_at():
    return utcnow() - ADMISSION_AGO


def test_a_bare_move_to_plan_accepted_is_refused_and_the_plan_stays_offered(
    client, session, offered, coordinator
):
    assert _refused_by(_move(client, coordinator, offered, "plan_accepted")) == [
        "plan_acceptance_recorded"
    ]
    assert current_plan(offered.id).status == "offered"


def test_accepting_the_plan_enters_plan_accepted(session, offered):
    accept_plan(current_plan(offered.id), dict(CONSENTS), patient_of(offered))
    assert offered.stage == "plan_accepted"


def test_a_bare_move_to_travel_booked_is_refused_until_a_trip_is_booked(
    client, accepted, coordinator
):
    assert _refused_by(_move(client, coordinator, accepted, "travel_booked")) == ["trip_booked"]
    payload = trip_around(utcnow() + timedelta(days=20))
    response = client.put(
        f"{API}/referrals/{accepted.id}/trip", json=payload, headers=coordinator.headers()
    )
    assert response.status_code == 200, response.json
    assert response.json["stage"] == "travel_booked"


def test_booking_travel_is_refused_while_the_acceptance_lacks_a_recorded_consent(
    client, session, accepted, coordinator
):
    # An acceptance recorded without the consents (as an older record might be): the
    # bulk UPDATE goes around the ORM freeze on purpose.
    session.execute(
        update(TreatmentPlan)
        .where(TreatmentPlan.referral_id == accepted.id, TreatmentPlan.status == "accepted")
        .values(acceptance={"consents": {"data_processing": True}})
    )
    payload = trip_around(utcnow() + timedelta(days=20))
    response = client.put(
        f"{API}/referrals/{accepted.id}/trip", json=payload, headers=coordinator.headers()
    )
    assert _refused_by(response) == ["accepted_plan_and_consent"]


def test_booking_travel_passes_the_consent_guard_once_the_plan_is_accepted_with_consents(
    client, accepted, coordinator
):
    payload = trip_around(utcnow() + timedelta(days=20))
    response = client.put(
        f"{API}/referrals/{accepted.id}/trip", json=payload, headers=coordinator.headers()
    )
    assert response.status_code == 200, response.json


def test_a_bare_move_to_in_treatment_is_refused_until_the_admission_is_recorded(
    client, booked, coordinator
):
    assert _refused_by(_move(client, coordinator, booked, "in_treatment")) == ["admission_recorded"]
    response = _post(client, coordinator, booked, "admission", _admitted_at())
    assert response.status_code == 200, response.json
    assert response.json["stage"] == "in_treatment"


def test_a_bare_move_to_post_op_is_refused_until_the_discharge_is_recorded(
    client, booked, coordinator
):
    _post(client, coordinator, booked, "admission", _admitted_at())
    assert _refused_by(_move(client, coordinator, booked, "post_op")) == ["discharge_recorded"]
    response = _post(client, coordinator, booked, "discharge", _admitted_at() + timedelta(days=2))
    assert response.status_code == 200, response.json
    assert response.json["stage"] == "post_op"


def test_a_bare_move_to_follow_up_is_refused_until_the_departure_is_recorded(
    client, booked, coordinator
):
    _post(client, coordinator, booked, "admission", _admitted_at())
    _post(client, coordinator, booked, "discharge", _admitted_at() + timedelta(days=2))
    assert _refused_by(_move(client, coordinator, booked, "follow_up")) == ["departure_recorded"]
    response = _post(client, coordinator, booked, "departure", _admitted_at() + timedelta(days=6))
    assert response.status_code == 200, response.json
    assert response.json["stage"] == "follow_up"


@pytest.fixture
def home_with_an_alert(client, session, booked, coordinator):
    """Gone home, and the first check-in raised an urgent alert."""
    _post(client, coordinator, booked, "admission", _admitted_at())
    _post(client, coordinator, booked, "discharge", _admitted_at() + timedelta(days=2))
    _post(client, coordinator, booked, "departure", _admitted_at() + timedelta(days=6))
    first = check_ins_of(booked.id)[0]
    answers = {
        "back_pain": 9,
        "leg_pain": 2,
        "numbness": False,
        "weakness": False,
        "wound": "healing_well",
        "bladder_or_bowel_trouble": False,
        "saddle_numbness": False,
        "fever": False,
        "free_text": "",
    }
    record_answers(first, answers, patient_of(booked))
    session.commit()
    return booked


def test_completing_is_refused_while_an_urgent_alert_is_open(
    client, home_with_an_alert, coordinator
):
    response = _move(client, coordinator, home_with_an_alert, "completed")
    assert _refused_by(response) == ["no_open_urgent_alert"]


def test_completing_passes_once_the_alert_task_is_done(
    client, session, home_with_an_alert, coordinator
):
    task = session.scalar(select(Task).where(Task.referral_id == home_with_an_alert.id))
    done = client.patch(
        f"{API}/tasks/{task.id}", json={"status": "done"}, headers=coordinator.headers()
    )
    assert done.status_code == 200, done.json
    response = _move(client, coordinator, home_with_an_alert, "completed")
    assert response.status_code == 201, response.json


@pytest.fixture
def no_mri_procedure(session):
    """A catalogue row like microdiscectomy that needs no MRI."""
    base = session.scalar(select(Procedure).where(Procedure.code == "microdiscectomy"))
    columns = {c.key: getattr(base, c.key) for c in Procedure.__table__.columns if c.key != "id"}
    row = Procedure(**{**columns, "code": "consultation_only", "requires_mri": False})
    session.add(row)
    session.commit()
    return row


def test_a_procedure_that_needs_no_mri_goes_to_review_without_one(
    client, factory, agency, coordinator, no_mri_procedure
):
    referral = factory.referral(agency, procedure="consultation_only")
    response = _move(client, coordinator, referral, "mri_review")
    assert response.status_code == 201, response.json


def test_a_procedure_that_needs_an_mri_does_not_go_to_review_without_one(
    client, factory, agency, coordinator
):
    referral = factory.referral(agency)
    assert _refused_by(_move(client, coordinator, referral, "mri_review")) == [
        "mri_document_present"
    ]
