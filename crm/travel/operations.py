"""Booking travel and recording the stay: admission, discharge, departure.

Booking moves a referral with an accepted plan to `travel_booked`, schedules the
pre-travel nudges on the inbound flight's departure and tells the patient; a changed
booking reschedules them and tells the patient again (an identical one does not).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, ValidationFailed
from crm.core.events import publish
from crm.extensions import db
from crm.messaging.composing.outbox import enqueue
from crm.referrals.events import MilestoneDated
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from crm.referrals.stages import Stage
from crm.travel.events import StayRecorded, TripBooked
from crm.travel.itinerary import (
    FlightLeg,
    LocalTimeError,
    ProposedTrip,
    StayRules,
    check_trip,
    derive_plan,
    to_utc,
)
from crm.travel.models import Flight, Trip
from crm.travel.queries import booked_trip, trip_of

# A booked trip may still change (a return flight moved) until the patient has gone home.
CHANGEABLE_STAGES = frozenset(
    {Stage.TRAVEL_BOOKED, Stage.IN_TREATMENT, Stage.POST_OP, Stage.ON_HOLD}
)
CLOCK_SKEW = timedelta(minutes=5)
STEP_COLUMNS = {
    "admission": "admitted_at",
    "discharge": "discharged_at",
    "departure": "departed_at",
}
# A return flight may leave late; a departure later than this after the booked one means
# the patient is on another flight: change the trip first.
RETURN_DELAY_TOLERANCE = timedelta(hours=24)
FLIGHT_FIELDS = (
    "flight_number",
    "departure_airport",
    "departure_time_zone",
    "departs_at",
    "arrival_airport",
    "arrival_time_zone",
    "arrives_at",
)


def _leg(flight: dict[str, Any] | None) -> FlightLeg | None:
    return None if flight is None else FlightLeg(flight["departs_at"], flight["arrives_at"])


def _checked(referral: Referral, data: dict[str, Any]):
    inbound = _leg(data["flights"]["inbound"])
    assert inbound is not None
    proposal = ProposedTrip(
        admission_at=data["admission_at"],
        time_zone=data["time_zone"],
        hospital_nights=data.get("hospital_nights"),
        inbound=inbound,
        outbound=_leg(data["flights"].get("outbound")),
    )
    rules = StayRules.of(referral.procedure)
    if problems := check_trip(rules, proposal):
        raise ValidationFailed(problems)
    return derive_plan(rules, proposal.admission_at, proposal.time_zone, proposal.hospital_nights)


def book_trip(referral: Referral, data: dict[str, Any], actor: Actor) -> Trip:
    """Create or replace the trip (`data` as loaded by `TripArgs`)."""
    plan = _checked(referral, data)
    trip = trip_of(referral, for_update=True)
    if trip is not None and referral.stage not in CHANGEABLE_STAGES:
        raise Conflict(f"the trip can no longer change: the referral is {referral.stage}")
    created = trip is None
    if trip is None:
        trip = Trip(referral_id=referral.id)
        db.session.add(trip)
    inbound, outbound = data["flights"]["inbound"], data["flights"].get("outbound")
    trip.local_time_zone = data["time_zone"]
    trip.arrival_at = inbound["arrives_at"]
    trip.admission_at = plan.admission_at
    trip.discharge_at = plan.discharge_at
    trip.departure_at = outbound["departs_at"] if outbound else plan.earliest_return_at
    trip.hotel_name = data["hotel"].get("name", "")
    trip.hotel_address = data["hotel"].get("address", "")
    trip.transfers = data["transfers"]
    companion = data.get("companion")
    trip.companion_name = companion["name"] if companion else None
    trip.companion_passport_country = companion["passport_country"] if companion else None
    trip.visa_letter_needed = data["visa_letter_needed"]
    _set_flights(trip, {"inbound": inbound, "outbound": outbound})
    referral.updated_at = utcnow()
    db.session.flush()
    if created and referral.stage != Stage.TRAVEL_BOOKED:
        # The trip is recorded first: the `trip_booked` guard reads it.
        move_to_stage(referral, Stage.TRAVEL_BOOKED, actor, note="travel booked")
    audit.record(actor, "trip.book" if created else "trip.update", referral.id)
    publish(MilestoneDated(referral, "travel_date", inbound["departs_at"]))
    publish(TripBooked(referral, trip, actor, created))
    _tell_patient(referral, trip)
    return trip


def _set_flights(trip: Trip, flights: dict[str, dict[str, Any] | None]) -> None:
    """Update flights in place by direction (a delete and insert would trip the unique key)."""
    current = {flight.direction: flight for flight in trip.flights}
    for direction, values in flights.items():
        flight = current.get(direction)
        if values is None:
            if flight is not None:
                trip.flights.remove(flight)
            continue
        if flight is None:
            flight = Flight(direction=direction)
            trip.flights.append(flight)
        for name in FLIGHT_FIELDS:
            setattr(flight, name, values[name])


def _fingerprint(trip: Trip) -> str:
    """What the patient is told about: times and flights. The same booking, the same key."""
    parts = [trip.arrival_at, trip.admission_at, trip.departure_at, trip.hotel_name]
    for flight in sorted(trip.flights, key=lambda f: f.direction):
        parts += [flight.direction, flight.flight_number, flight.departs_at, flight.arrives_at]
    text = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _tell_patient(referral: Referral, trip: Trip) -> None:
    enqueue(
        referral,
        kind="travel_booked_patient",
        audience="patient",
        channels=["sms", "email"],
        key=f"travel-booked:{referral.id}:{_fingerprint(trip)}",
        fallback=False,
        extra={"visa_letter_needed": trip.visa_letter_needed},
    )


def _moment(trip: Trip, at: datetime | None) -> datetime:
    if at is None:
        return utcnow()
    try:
        moment = to_utc(at, trip.local_time_zone)
    except LocalTimeError as exc:
        raise ValidationFailed({"at": str(exc)}) from exc
    if moment > utcnow() + CLOCK_SKEW:
        raise ValidationFailed({"at": "is in the future: record what has happened"})
    return moment


def _check_against_trip(trip: Trip, column: str, moment: datetime) -> None:
    """A step of the stay fits the booked trip and the steps before it, or 422 on `at`.

    Admission: not before the inbound flight lands. Discharge: after the admission.
    Departure: after the discharge, and not long after the booked return flight leaves.
    """
    inbound = next((f for f in trip.flights if f.direction == "inbound"), None)
    outbound = next((f for f in trip.flights if f.direction == "outbound"), None)
    if column == "admitted_at":
        landed = inbound.arrives_at if inbound else trip.arrival_at
        _refuse_unless(moment >= landed, "may not be before the inbound flight lands", landed)
    elif column == "discharged_at" and trip.admitted_at is not None:
        _refuse_unless(moment > trip.admitted_at, "must be after the admission", trip.admitted_at)
    elif column == "departed_at":
        if trip.discharged_at is not None:
            when = trip.discharged_at
            _refuse_unless(moment > when, "must be after the discharge", when)
        if outbound is not None:
            latest = outbound.departs_at + RETURN_DELAY_TOLERANCE
            _refuse_unless(
                moment <= latest,
                "is more than a day after the booked return flight; change the trip first",
                outbound.departs_at,
            )


def _refuse_unless(holds: bool, reason: str, reference: datetime) -> None:
    if not holds:
        raise ValidationFailed({"at": f"{reason} ({reference.isoformat()})"})


def _stay_event(
    referral: Referral,
    at: datetime | None,
    actor: Actor,
    *,
    step: str,
    stage: Stage,
    note: str,
) -> Trip:
    """Record one step of the stay on the trip and move the referral to its stage.

    The step is checked against the trip, recorded and published before the move: the
    stage's guard reads it, and what follows from it (the check-ins after a discharge)
    counts from `at`, not from the moment of the move.
    """
    trip = booked_trip(referral, for_update=True)
    moment = _moment(trip, at)
    column = STEP_COLUMNS[step]
    _check_against_trip(trip, column, moment)
    setattr(trip, column, moment)
    db.session.flush()
    publish(StayRecorded(referral, step, moment, actor))
    move_to_stage(referral, stage, actor, note=note)
    audit.record(actor, f"trip.{step}", referral.id)
    return trip


def record_admission(referral: Referral, at: datetime | None, actor: Actor) -> Trip:
    return _stay_event(
        referral,
        at,
        actor,
        step="admission",
        stage=Stage.IN_TREATMENT,
        note="admitted",
    )


def record_discharge(referral: Referral, at: datetime | None, actor: Actor) -> Trip:
    """Discharged: post-op, and the follow-up check-ins are counted from the discharge."""
    return _stay_event(
        referral,
        at,
        actor,
        step="discharge",
        stage=Stage.POST_OP,
        note="discharged",
    )


def record_departure(referral: Referral, at: datetime | None, actor: Actor) -> Trip:
    return _stay_event(
        referral,
        at,
        actor,
        step="departure",
        stage=Stage.FOLLOW_UP,
        note="went home",
    )
