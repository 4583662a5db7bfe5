"""Booking travel through the API: validation, time zones, the move, nudges and messages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.nudges.models import NudgeRule, ScheduledNudge
from crm.travel.models import Flight, Trip
from tests.helpers import API, assert_problem, field_errors
from tests.messaging.support import outbox_for
from tests.travel.support import accepted_referral, trip_payload, utc

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")


def _put(client, caller, referral_id, payload):
    return client.put(f"{API}/referrals/{referral_id}/trip", json=payload, headers=caller.headers())


def _travel_nudges(session, referral_id):
    return list(
        session.scalars(
            select(ScheduledNudge)
            .join(NudgeRule)
            .where(ScheduledNudge.referral_id == referral_id, NudgeRule.date_name == "travel_date")
            .order_by(ScheduledNudge.id)
        )
    )


@pytest.fixture
def referral(factory, agency, coordinator):
    return accepted_referral(factory, agency, coordinator)


def test_booking_moves_the_referral_to_travel_booked_and_shows_utc_and_local_times(
    client, referral, coordinator
):
    response = _put(client, coordinator, referral.id, trip_payload())
    assert response.status_code == 200, response.json
    body = response.json
    assert body["stage"] == "travel_booked"
    inbound = body["flights"]["inbound"]
    assert inbound["departs_at"] == "2030-03-31T08:00:00+00:00"
    assert inbound["departs_at_local"] == "2030-03-31T10:00:00+02:00"  # Berlin summer time
    assert inbound["arrives_at_local"] == "2030-03-31T14:10:00+03:00"
    assert body["admission_at"] == "2030-04-02T05:00:00+00:00"
    assert body["admission_at_local"] == "2030-04-02T08:00:00+03:00"
    assert body["discharge_at_local"] == "2030-04-04T08:00:00+03:00"
    assert body["arrival_at"] == inbound["arrives_at"]
    assert body["departure_at"] == body["flights"]["outbound"]["departs_at"]
    assert body["plan"] == {
        "latest_arrival_date": "2030-04-01",
        "hospital_nights": 2,
        "nights_in_city": 3,
        "earliest_return_date": "2030-04-07",
    }
    assert body["companion"] == {"name": "Anna Weber", "passport_country": "DE"}
    assert body["hotel"]["name"] == "Hotel Bosphorus"


def test_times_with_offsets_are_taken_as_given(client, session, referral, coordinator):
    payload = trip_payload(
        admission_at="2030-04-02T05:00:00Z",
        inbound={"departs_at": "2030-03-31T08:00:00+00:00", "arrives_at": "2030-03-31T14:10+03:00"},
    )
    assert _put(client, coordinator, referral.id, payload).status_code == 200
    trip = session.scalar(select(Trip).where(Trip.referral_id == referral.id))
    assert trip.admission_at == utc(2030, 4, 2, 5)
    assert trip.arrival_at == utc(2030, 3, 31, 11, 10)


def test_a_flight_before_the_dst_change_is_read_in_winter_time(
    client, session, referral, coordinator
):
    payload = trip_payload(
        inbound={"departs_at": "2030-03-30T10:00:00", "arrives_at": "2030-03-30T14:10:00"}
    )
    response = _put(client, coordinator, referral.id, payload)
    assert response.status_code == 200, response.json
    flight = session.scalar(select(Flight).where(Flight.direction == "inbound"))
    assert flight.departs_at == utc(2030, 3, 30, 9)  # CET, UTC+1
    assert response.json["flights"]["inbound"]["departs_at_local"].endswith("+01:00")


def test_a_local_time_skipped_by_dst_is_422_naming_the_field(client, referral, coordinator):
    payload = trip_payload(inbound={"departs_at": "2030-03-31T02:30:00"})
    body = assert_problem(_put(client, coordinator, referral.id, payload), 422, "validation-failed")
    assert "does not exist" in field_errors(body)["flights.inbound.departs_at"]


def test_an_ambiguous_local_arrival_needs_an_offset(client, referral, coordinator):
    late_return = {"departs_at": "2030-10-27T01:00:00", "arrives_at": "2030-10-27T02:30:00"}
    body = assert_problem(
        _put(client, coordinator, referral.id, trip_payload(outbound=late_return)),
        422,
        "validation-failed",
    )
    assert "happens twice" in field_errors(body)["flights.outbound.arrives_at"]
    late_return["arrives_at"] = "2030-10-27T02:30:00+01:00"
    assert (
        _put(client, coordinator, referral.id, trip_payload(outbound=late_return)).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        (
            {"inbound": {"arrives_at": "2030-04-02T04:00:00"}},
            "flights.inbound.arrives_at",
            "arrival too late",
        ),
        (
            {"inbound": {"departs_at": "2030-04-02T07:00:00", "arrives_at": "2030-04-02T11:00:00"}},
            "flights.inbound.arrives_at",
            "arrives after the admission",
        ),
        (
            {"inbound": {"arrives_at": "2030-03-31T09:00:00"}},
            "flights.inbound.arrives_at",
            "arrives before it departs",
        ),
        (
            {
                "outbound": {
                    "departs_at": "2030-04-05T16:00:00",
                    "arrives_at": "2030-04-05T18:10:00",
                }
            },
            "flights.outbound.departs_at",
            "return flight before discharge plus the minimum stay",
        ),
        ({"hospital_nights": 4}, "hospital_nights", "the catalogue says 1 to 2 nights"),
        ({"inbound": {"departure_airport": "FRAN"}}, "flights.inbound.departure_airport", "IATA"),
        (
            {"inbound": {"arrival_time_zone": "Europe/Nowhere"}},
            "flights.inbound.arrival_time_zone",
            "unknown",
        ),
        ({"admission_at": "next tuesday"}, "admission_at", "ISO 8601"),
    ],
)
def test_an_inconsistent_trip_is_422_naming_the_field(
    client, referral, coordinator, changes, field, reason
):
    response = _put(client, coordinator, referral.id, trip_payload(**changes))
    body = assert_problem(response, 422, "validation-failed")
    assert reason in field_errors(body)[field]


def test_lower_case_codes_are_normalised(client, referral, coordinator):
    payload = trip_payload(inbound={"departure_airport": "fra", "flight_number": "tk 1588"})
    response = _put(client, coordinator, referral.id, payload)
    assert response.status_code == 200, response.json
    assert response.json["flights"]["inbound"]["flight_number"] == "TK1588"
    assert response.json["flights"]["inbound"]["departure_airport"] == "FRA"


def test_without_a_return_flight_the_plan_gives_the_departure(client, referral, coordinator):
    response = _put(client, coordinator, referral.id, trip_payload(outbound=None))
    assert response.status_code == 200, response.json
    assert response.json["flights"]["outbound"] is None
    assert response.json["departure_at_local"] == "2030-04-07T00:00:00+03:00"


def test_booking_needs_an_accepted_plan(client, factory, agency, coordinator):
    referral = factory.referral(agency)
    response = _put(client, coordinator, referral.id, trip_payload())
    body = assert_problem(response, 409, "guard-failed")
    assert body["guard"] == "allowed_transition"


def test_booking_schedules_the_pre_travel_nudges_on_the_inbound_departure(
    client, session, referral, coordinator
):
    assert _put(client, coordinator, referral.id, trip_payload()).status_code == 200
    nudges = _travel_nudges(session, referral.id)
    assert {(n.rule.code, n.status) for n in nudges} == {
        ("travel_in_7_days", "pending"),
        ("travel_in_1_day", "pending"),
    }
    assert {n.trigger_at for n in nudges} == {utc(2030, 3, 31, 8)}
    assert {n.due_at for n in nudges} == {utc(2030, 3, 24, 8), utc(2030, 3, 30, 8)}


def test_booking_tells_the_patient(client, referral, coordinator):
    assert _put(client, coordinator, referral.id, trip_payload()).status_code == 200
    rows = outbox_for(referral.id, kind="travel_booked_patient")
    assert sorted(m.channel for m in rows) == ["email", "sms"]
    assert {m.audience for m in rows} == {"patient"}


def test_changing_the_flight_reschedules_and_tells_the_patient_again(
    client, session, referral, coordinator
):
    assert _put(client, coordinator, referral.id, trip_payload()).status_code == 200
    assert _put(client, coordinator, referral.id, trip_payload()).status_code == 200
    assert len(outbox_for(referral.id, kind="travel_booked_patient", channel="sms")) == 1
    earlier = trip_payload(
        inbound={"departs_at": "2030-03-30T10:00:00", "arrives_at": "2030-03-30T14:10:00"}
    )
    response = _put(client, coordinator, referral.id, earlier)
    assert response.status_code == 200, response.json
    nudges = _travel_nudges(session, referral.id)
    pending = {n.trigger_at for n in nudges if n.status == "pending"}
    cancelled = {n.trigger_at for n in nudges if n.status == "cancelled"}
    assert pending == {utc(2030, 3, 30, 9)}
    assert cancelled == {utc(2030, 3, 31, 8)}
    assert len(outbox_for(referral.id, kind="travel_booked_patient", channel="sms")) == 2
    assert session.scalar(select(Flight.departs_at).where(Flight.direction == "inbound")) == utc(
        2030, 3, 30, 9
    )


def test_dropping_the_return_flight_removes_it(client, session, referral, coordinator):
    assert _put(client, coordinator, referral.id, trip_payload()).status_code == 200
    assert _put(client, coordinator, referral.id, trip_payload(outbound=None)).status_code == 200
    session.expire_all()
    assert session.scalars(select(Flight.direction)).all() == ["inbound"]


def test_the_agency_reads_its_own_trip_and_not_another_agencys(
    client, factory, referral, agency, coordinator
):
    assert _put(client, coordinator, referral.id, trip_payload()).status_code == 200
    own = client.get(f"{API}/referrals/{referral.id}/trip", headers=agency.headers())
    assert own.status_code == 200
    assert own.json["flights"]["inbound"]["flight_number"] == "TK1588"
    other = factory.agency()
    response = client.get(f"{API}/referrals/{referral.id}/trip", headers=other.headers())
    assert_problem(response, 404, "not-found")


def test_no_trip_yet_is_404(client, referral, coordinator):
    response = client.get(f"{API}/referrals/{referral.id}/trip", headers=coordinator.headers())
    assert_problem(response, 404, "not-found")


def test_reading_a_trip_is_audited(client, session, referral, agency, coordinator):
    assert _put(client, coordinator, referral.id, trip_payload()).status_code == 200
    client.get(f"{API}/referrals/{referral.id}/trip", headers=agency.headers())
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.referral_id == referral.id)
    ).all()
    assert {"trip.book", "trip.read"} <= set(actions)


@pytest.mark.parametrize("role", ["specialist", "agency"])
def test_only_coordinators_and_managers_book_travel(client, factory, referral, role):
    caller = factory.agency() if role == "agency" else factory.staff(role)
    assert_problem(_put(client, caller, referral.id, trip_payload()), 403, "forbidden")


def test_a_manager_may_book(client, factory, referral):
    assert _put(client, factory.staff("manager"), referral.id, trip_payload()).status_code == 200
