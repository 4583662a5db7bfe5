"""Helpers for the travel, follow-up and task tests: a referral ready for travel, a trip."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.travel import operations as travel
from crm.travel.schemas import TripArgs
from tests.factories import Caller, Factory

TO_PLAN_ACCEPTED = ("awaiting_mri", "mri_review", "plan_offered", "plan_accepted")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def accepted_referral(factory: Factory, agency: Caller, coordinator: Caller) -> Referral:
    """A referral of `agency` whose plan is accepted: travel may be booked."""
    referral = factory.referral(agency)
    for stage in TO_PLAN_ACCEPTED:
        move_to_stage(referral, stage, coordinator.actor)
    factory.session.commit()
    return referral


# Microdiscectomy: arrive 1 day before, 1-2 hospital nights, 3 nights in the city after.
# Admission Tue 2 April 2030 08:00 Istanbul (05:00Z); the inbound flight on Sunday 31 March,
# the day Berlin moves to summer time; the return on Sunday 7 April.
INBOUND = {
    "flight_number": "TK1588",
    "departure_airport": "FRA",
    "departure_time_zone": "Europe/Berlin",
    "departs_at": "2030-03-31T10:00:00",  # CEST, UTC+2 (since 02:00 that morning)
    "arrival_airport": "IST",
    "arrival_time_zone": "Europe/Istanbul",
    "arrives_at": "2030-03-31T14:10:00",  # UTC+3
}
OUTBOUND = {
    "flight_number": "TK1589",
    "departure_airport": "IST",
    "departure_time_zone": "Europe/Istanbul",
    "departs_at": "2030-04-07T16:00:00",
    "arrival_airport": "FRA",
    "arrival_time_zone": "Europe/Berlin",
    "arrives_at": "2030-04-07T18:10:00",
}


def trip_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "admission_at": "2030-04-02T08:00:00",
        "time_zone": "Europe/Istanbul",
        "flights": {"inbound": copy.deepcopy(INBOUND), "outbound": copy.deepcopy(OUTBOUND)},
        "hotel": {"name": "Hotel Bosphorus", "address": "Sisli, Istanbul"},
        "transfers": "Airport pick-up by the hospital's driver",
        "companion": {"name": "Anna Weber", "passport_country": "DE"},
        "visa_letter_needed": True,
    }
    for key, value in overrides.items():
        if key in ("inbound", "outbound"):
            if value is None:
                payload["flights"][key] = None
            else:
                payload["flights"][key].update(value)
        else:
            payload[key] = value
    return payload


def trip_around(admission_at: datetime, **overrides: Any) -> dict[str, Any]:
    """A valid trip for an admission at any moment (past or future): the inbound flight
    lands a day before it, the return leaves six days after it."""

    def at(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat()

    inbound_lands = admission_at - timedelta(days=1)
    outbound_leaves = admission_at + timedelta(days=6)
    flights = {
        "inbound": {
            "departs_at": at(inbound_lands - timedelta(hours=3)),
            "arrives_at": at(inbound_lands),
        },
        "outbound": {
            "departs_at": at(outbound_leaves),
            "arrives_at": at(outbound_leaves + timedelta(hours=3)),
        },
    }
    return trip_payload(admission_at=at(admission_at), **{**flights, **overrides})


def discharged_referral(
    factory: Factory, agency: Caller, coordinator: Caller, discharged_at: datetime
) -> Referral:
    """A referral booked, admitted and discharged at `discharged_at` (check-ins scheduled)."""
    referral = accepted_referral(factory, agency, coordinator)
    payload = trip_around(discharged_at - timedelta(days=2))
    travel.book_trip(referral, TripArgs().load(payload), coordinator.actor)
    travel.record_admission(referral, discharged_at - timedelta(days=2), coordinator.actor)
    travel.record_discharge(referral, discharged_at, coordinator.actor)
    factory.session.commit()
    return referral
