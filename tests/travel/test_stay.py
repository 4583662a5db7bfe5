"""Admission, discharge and departure: the times recorded and the moves they make."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm.core.db import utcnow
from crm.followup.models import CheckIn
from crm.travel.models import Trip
from tests.helpers import API, assert_problem, field_errors
from tests.travel.support import accepted_referral, trip_around, trip_payload

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")


@pytest.fixture
def booked(client, factory, agency, coordinator):
    """A trip whose inbound flight landed four days ago, admission the next day."""
    referral = accepted_referral(factory, agency, coordinator)
    payload = trip_around(utcnow() - timedelta(days=4))
    response = client.put(
        f"{API}/referrals/{referral.id}/trip", json=payload, headers=coordinator.headers()
    )
    assert response.status_code == 200, response.json
    return referral


def _post(client, caller, referral_id, step, **body):
    return client.post(f"{API}/referrals/{referral_id}/{step}", json=body, headers=caller.headers())


def test_admission_discharge_and_departure_move_the_referral(client, session, booked, coordinator):
    admitted = utcnow() - timedelta(days=3)
    discharged = admitted + timedelta(days=2)
    stages = []
    for step, at in (
        ("admission", admitted),
        ("discharge", discharged),
        ("departure", discharged + timedelta(hours=20)),
    ):
        response = _post(client, coordinator, booked.id, step, at=at.isoformat())
        assert response.status_code == 200, response.json
        stages.append(response.json["stage"])
    assert stages == ["in_treatment", "post_op", "follow_up"]
    trip = session.scalar(select(Trip).where(Trip.referral_id == booked.id))
    assert trip.admitted_at == admitted
    assert trip.discharged_at == discharged
    assert trip.departed_at == discharged + timedelta(hours=20)


def test_a_local_time_without_offset_is_read_in_the_trips_zone(client, booked, coordinator):
    now_local = utcnow().astimezone(ZoneInfo("Europe/Istanbul"))
    wall = (now_local - timedelta(hours=2)).replace(tzinfo=None, microsecond=0)
    response = _post(client, coordinator, booked.id, "admission", at=wall.isoformat())
    assert response.status_code == 200, response.json
    assert response.json["admitted_at_local"] == f"{wall.isoformat()}+03:00"


def test_admission_defaults_to_now(client, booked, coordinator):
    response = _post(client, coordinator, booked.id, "admission")
    assert response.status_code == 200
    assert response.json["admitted_at"] is not None


def test_discharge_creates_the_check_ins_of_the_catalogue(client, session, booked, coordinator):
    _post(
        client, coordinator, booked.id, "admission", at=(utcnow() - timedelta(days=2)).isoformat()
    )
    discharged = utcnow() - timedelta(hours=1)
    assert (
        _post(client, coordinator, booked.id, "discharge", at=discharged.isoformat()).status_code
        == 200
    )
    check_ins = session.scalars(
        select(CheckIn).where(CheckIn.referral_id == booked.id).order_by(CheckIn.position)
    ).all()
    assert [(c.label, c.due_at - discharged) for c in check_ins] == [
        ("day_1", timedelta(days=1)),
        ("week_2", timedelta(days=14)),
        ("week_6_return_to_activity", timedelta(days=42)),
        ("month_3", timedelta(days=90)),
    ]


def test_a_future_time_is_refused(client, booked, coordinator):
    later = (utcnow() + timedelta(hours=2)).isoformat()
    body = assert_problem(
        _post(client, coordinator, booked.id, "admission", at=later), 422, "validation-failed"
    )
    assert "future" in field_errors(body)["at"]


def test_discharge_before_admission_is_refused(client, booked, coordinator):
    admitted = utcnow() - timedelta(days=1)
    _post(client, coordinator, booked.id, "admission", at=admitted.isoformat())
    earlier = (admitted - timedelta(hours=1)).isoformat()
    body = assert_problem(
        _post(client, coordinator, booked.id, "discharge", at=earlier), 422, "validation-failed"
    )
    assert "after the admission" in field_errors(body)["at"]


def test_discharge_before_admission_is_recorded_is_409(client, booked, coordinator):
    assert_problem(_post(client, coordinator, booked.id, "discharge"), 409, "guard-failed")


def test_no_trip_no_admission(client, factory, agency, coordinator):
    referral = accepted_referral(factory, agency, coordinator)
    assert_problem(_post(client, coordinator, referral.id, "admission"), 404, "not-found")


@pytest.mark.parametrize("role", ["specialist", "agency"])
def test_only_coordinators_record_the_stay(client, factory, booked, agency, role):
    caller = agency if role == "agency" else factory.staff(role)
    assert_problem(_post(client, caller, booked.id, "admission"), 403, "forbidden")


def test_the_trip_may_still_change_in_treatment_but_not_after_going_home(
    client, booked, coordinator
):
    for step in ("admission", "discharge"):
        _post(client, coordinator, booked.id, step)
    put = client.put(
        f"{API}/referrals/{booked.id}/trip", json=trip_payload(), headers=coordinator.headers()
    )
    assert put.status_code == 200, put.json
    _post(client, coordinator, booked.id, "departure")
    put = client.put(
        f"{API}/referrals/{booked.id}/trip", json=trip_payload(), headers=coordinator.headers()
    )
    assert_problem(put, 409, "conflict")


def test_a_retried_admission_with_the_same_key_replays(client, booked, coordinator):
    headers = coordinator.headers(**{"Idempotency-Key": "admit-1"})
    first = client.post(f"{API}/referrals/{booked.id}/admission", json={}, headers=headers)
    second = client.post(f"{API}/referrals/{booked.id}/admission", json={}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"


def test_an_admission_before_the_inbound_flight_lands_is_refused(client, booked, coordinator):
    landed = client.get(f"{API}/referrals/{booked.id}/trip", headers=coordinator.headers())
    arrival = datetime.fromisoformat(landed.json["flights"]["inbound"]["arrives_at"])
    early = (arrival - timedelta(days=12)).isoformat()
    body = assert_problem(
        _post(client, coordinator, booked.id, "admission", at=early), 422, "validation-failed"
    )
    assert "before the inbound flight lands" in field_errors(body)["at"]


def test_an_admission_after_the_inbound_flight_lands_is_recorded(client, booked, coordinator):
    landed = client.get(f"{API}/referrals/{booked.id}/trip", headers=coordinator.headers())
    arrival = datetime.fromisoformat(landed.json["flights"]["inbound"]["arrives_at"])
    at = (arrival + timedelta(hours=2)).isoformat()
    assert _post(client, coordinator, booked.id, "admission", at=at).status_code == 200


def test_a_departure_before_the_discharge_is_refused(client, booked, coordinator):
    admitted = utcnow() - timedelta(days=3)
    _post(client, coordinator, booked.id, "admission", at=admitted.isoformat())
    discharged = admitted + timedelta(days=2)
    _post(client, coordinator, booked.id, "discharge", at=discharged.isoformat())
    early = (discharged - timedelta(hours=1)).isoformat()
    body = assert_problem(
        _post(client, coordinator, booked.id, "departure", at=early), 422, "validation-failed"
    )
    assert "after the discharge" in field_errors(body)["at"]


def test_a_departure_long_after_the_booked_return_flight_is_refused(
    client, factory, agency, coordinator
):
    referral = accepted_referral(factory, agency, coordinator)
    admission = utcnow() - timedelta(days=20)  # the return flight left 14 days ago
    put = client.put(
        f"{API}/referrals/{referral.id}/trip",
        json=trip_around(admission),
        headers=coordinator.headers(),
    )
    assert put.status_code == 200, put.json
    _post(client, coordinator, referral.id, "admission", at=admission.isoformat())
    discharged = (admission + timedelta(days=2)).isoformat()
    _post(client, coordinator, referral.id, "discharge", at=discharged)
    body = assert_problem(
        _post(client, coordinator, referral.id, "departure"), 422, "validation-failed"
    )
    assert "after the booked return flight" in field_errors(body)["at"]
