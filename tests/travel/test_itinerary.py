"""The stay derived from the catalogue, and every way a proposed trip can contradict it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from crm.travel.itinerary import (
    DISCHARGE_TO_AIRPORT,
    FlightLeg,
    LocalTimeError,
    ProposedTrip,
    StayRules,
    check_trip,
    derive_plan,
    local,
    to_utc,
)
from tests.travel.support import utc

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")

MICRODISCECTOMY = StayRules(
    arrive_days_before_admission=1,
    hospital_nights_min=1,
    hospital_nights_max=2,
    nights_in_city_after_discharge=3,
)
IST = "Europe/Istanbul"
ADMISSION = utc(2030, 4, 2, 5)  # 08:00 in Istanbul
INBOUND = FlightLeg(utc(2030, 3, 31, 8), utc(2030, 3, 31, 11, 10))
OUTBOUND = FlightLeg(utc(2030, 4, 7, 13), utc(2030, 4, 7, 16, 10))


def _trip(**changes) -> ProposedTrip:
    values = {
        "admission_at": ADMISSION,
        "time_zone": IST,
        "hospital_nights": None,
        "inbound": INBOUND,
        "outbound": OUTBOUND,
        **changes,
    }
    return ProposedTrip(**values)


def test_the_plan_follows_the_catalogue_row():
    plan = derive_plan(MICRODISCECTOMY, ADMISSION, IST)
    assert plan.latest_arrival_date == date(2030, 4, 1)
    assert plan.hospital_nights == 2  # the catalogue's maximum unless told otherwise
    assert local(plan.discharge_at, IST) == datetime(
        2030, 4, 4, 8, tzinfo=local(ADMISSION, IST).tzinfo
    )
    assert plan.nights_in_city == 3
    assert plan.earliest_return_date == date(2030, 4, 7)


def test_fewer_hospital_nights_bring_the_earliest_return_forward():
    plan = derive_plan(MICRODISCECTOMY, ADMISSION, IST, hospital_nights=1)
    assert local(plan.discharge_at, IST).date() == date(2030, 4, 3)
    assert plan.earliest_return_date == date(2030, 4, 6)


def test_a_day_case_is_discharged_the_same_day():
    day_case = StayRules(0, 0, 0, 0)
    plan = derive_plan(day_case, ADMISSION, IST)
    assert plan.discharge_at == ADMISSION + timedelta(hours=8)
    assert plan.latest_arrival_date == date(2030, 4, 2)
    assert plan.earliest_return_at == plan.discharge_at + DISCHARGE_TO_AIRPORT


def test_a_stay_across_a_dst_change_keeps_its_local_hours():
    admission = to_utc(datetime(2030, 3, 30, 8), "Europe/Berlin")  # CET, UTC+1
    plan = derive_plan(MICRODISCECTOMY, admission, "Europe/Berlin")
    discharge = local(plan.discharge_at, "Europe/Berlin")
    assert (discharge.date(), discharge.hour) == (date(2030, 4, 1), 8)  # CEST, UTC+2
    assert plan.discharge_at - admission == timedelta(hours=47)


def test_a_consistent_trip_has_no_problems():
    assert check_trip(MICRODISCECTOMY, _trip()) == {}
    assert check_trip(MICRODISCECTOMY, _trip(outbound=None)) == {}


def test_arriving_on_the_day_of_admission_is_too_late():
    inbound = FlightLeg(utc(2030, 4, 1, 22), utc(2030, 4, 2, 1))  # 04:00 on admission day
    problems = check_trip(MICRODISCECTOMY, _trip(inbound=inbound))
    assert "arrival too late" in problems["flights.inbound.arrives_at"]
    assert "2030-04-01" in problems["flights.inbound.arrives_at"]


def test_an_inbound_flight_landing_after_admission_is_refused():
    inbound = FlightLeg(utc(2030, 4, 2, 4), utc(2030, 4, 2, 7))
    problems = check_trip(MICRODISCECTOMY, _trip(inbound=inbound))
    assert (
        problems["flights.inbound.arrives_at"] == "the inbound flight arrives after the admission"
    )


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_a_flight_arriving_before_it_departs_is_refused(direction):
    leg = INBOUND if direction == "inbound" else OUTBOUND
    backwards = FlightLeg(leg.arrives_at, leg.departs_at)
    problems = check_trip(MICRODISCECTOMY, _trip(**{direction: backwards}))
    assert problems[f"flights.{direction}.arrives_at"] == "the flight arrives before it departs"


def test_a_return_before_discharge_plus_the_nights_in_the_city_is_refused():
    early = FlightLeg(utc(2030, 4, 6, 13), utc(2030, 4, 6, 16))  # one night short
    problems = check_trip(MICRODISCECTOMY, _trip(outbound=early))
    reason = problems["flights.outbound.departs_at"]
    assert reason.startswith("return flight before discharge plus the minimum stay")
    assert "2030-04-07" in reason


def test_the_same_return_fits_a_shorter_hospital_stay():
    early = FlightLeg(utc(2030, 4, 6, 13), utc(2030, 4, 6, 16))
    assert check_trip(MICRODISCECTOMY, _trip(outbound=early, hospital_nights=1)) == {}


def test_a_return_before_the_inbound_arrival_is_refused():
    problems = check_trip(
        MICRODISCECTOMY, _trip(outbound=FlightLeg(utc(2030, 3, 31, 9), utc(2030, 3, 31, 12)))
    )
    assert "before the inbound flight arrives" in problems["flights.outbound.departs_at"]


def test_hospital_nights_outside_the_catalogue_range_are_refused():
    problems = check_trip(MICRODISCECTOMY, _trip(hospital_nights=5))
    assert problems == {"hospital_nights": "the catalogue says 1 to 2 nights"}


def test_an_aware_time_is_taken_as_the_instant_it_names():
    assert to_utc(datetime.fromisoformat("2030-03-31T10:00:00+02:00"), IST) == utc(2030, 3, 31, 8)


def test_a_local_time_is_read_in_its_zone_on_either_side_of_a_dst_change():
    assert to_utc(datetime(2030, 3, 30, 10), "Europe/Berlin") == utc(2030, 3, 30, 9)
    assert to_utc(datetime(2030, 3, 31, 10), "Europe/Berlin") == utc(2030, 3, 31, 8)


def test_a_local_time_skipped_by_dst_is_refused():
    with pytest.raises(LocalTimeError, match="does not exist"):
        to_utc(datetime(2030, 3, 31, 2, 30), "Europe/Berlin")


def test_a_local_time_that_happens_twice_needs_an_offset():
    with pytest.raises(LocalTimeError, match="happens twice"):
        to_utc(datetime(2030, 10, 27, 2, 30), "Europe/Berlin")


def test_an_unknown_zone_is_refused():
    with pytest.raises(LocalTimeError, match="unknown IANA time zone"):
        to_utc(datetime(2030, 1, 1), "Mars/Olympus_Mons")
