"""Reading a trip: scoped by the referral (an agency sees its own), audited."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from flask import current_app
from sqlalchemy import func, select

from crm.core import audit
from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import Conflict, NotFound
from crm.extensions import db
from crm.patients.models import Patient
from crm.referrals.models import Referral
from crm.referrals.queries import referral_for
from crm.referrals.references import hospital_reference
from crm.travel.itinerary import StayPlan, StayRules, derive_plan, local
from crm.travel.letter import VisaLetter, render_visa_letter, unicode_font
from crm.travel.models import Flight, Trip


def trip_of(referral: Referral, *, for_update: bool = False) -> Trip | None:
    statement = select(Trip).where(Trip.referral_id == referral.id)
    if for_update:
        statement = statement.with_for_update()
    return db.session.scalar(statement)


def stay_facts(referral: Referral) -> dict[str, Any]:
    """What the travel stages' guards read: the trip and the steps of the stay recorded."""
    trip = trip_of(referral)
    return {
        "trip_booked": trip is not None,
        "admitted": trip is not None and trip.admitted_at is not None,
        "discharged": trip is not None and trip.discharged_at is not None,
        "departed": trip is not None and trip.departed_at is not None,
    }


def booked_trip(referral: Referral, *, for_update: bool = False) -> Trip:
    trip = trip_of(referral, for_update=for_update)
    if trip is None:
        raise NotFound(f"no trip is booked for referral {referral.id}")
    return trip


def plan_of(referral: Referral, trip: Trip) -> StayPlan:
    """The plan the stored trip was booked against (nights from its planned discharge)."""
    admission = local(trip.admission_at, trip.local_time_zone).date()
    discharge = local(trip.discharge_at, trip.local_time_zone).date()
    return derive_plan(
        StayRules.of(referral.procedure),
        trip.admission_at,
        trip.local_time_zone,
        (discharge - admission).days,
    )


@dataclass
class TripView:
    """A trip as the API shows it; attribute reads fall through to the row."""

    trip: Trip
    referral: Referral
    plan: StayPlan

    def __getattr__(self, name: str) -> Any:
        return getattr(self.trip, name)

    @property
    def stage(self) -> str:
        return self.referral.stage

    @property
    def time_zone(self) -> str:
        return self.trip.local_time_zone

    @property
    def flights(self) -> dict[str, Flight | None]:
        by_direction = {flight.direction: flight for flight in self.trip.flights}
        return {"inbound": by_direction.get("inbound"), "outbound": by_direction.get("outbound")}

    @property
    def hotel(self) -> dict[str, str]:
        return {"name": self.trip.hotel_name, "address": self.trip.hotel_address}

    @property
    def companion(self) -> dict[str, str | None] | None:
        if not self.trip.companion_name:
            return None
        return {
            "name": self.trip.companion_name,
            "passport_country": self.trip.companion_passport_country,
        }


def view_of(referral: Referral, trip: Trip) -> TripView:
    return TripView(trip, referral, plan_of(referral, trip))


def trip_for(actor: Actor, referral_id: int) -> TripView:
    referral = referral_for(actor, referral_id)
    trip = booked_trip(referral)
    audit.record(actor, "trip.read", referral.id)
    return view_of(referral, trip)


def _country(code: str | None) -> str:
    if not code:
        return "-"
    return Locale("en").territories.get(code.upper(), code.upper())


def visa_letter_of(referral: Referral, trip: Trip) -> VisaLetter:
    settings = current_app.config["CRM"]
    patient, zone_name = referral.patient, trip.local_time_zone
    return VisaLetter(
        reference=referral.reference,
        issued_on=local(utcnow(), zone_name).date(),
        patient_name=patient.full_name,
        patient_date_of_birth=patient.date_of_birth,
        passport_country=_country(patient.country),
        arrival_date=local(trip.arrival_at, zone_name).date(),
        departure_date=local(trip.departure_at, zone_name).date(),
        admission_date=local(trip.admission_at, zone_name).date(),
        hospital_name=settings["HOSPITAL_NAME"],
        hospital_phone=settings["HOSPITAL_PHONE"],
        procedure_name=referral.procedure.name,
        companion_name=trip.companion_name,
        companion_passport_country=(
            _country(trip.companion_passport_country) if trip.companion_name else None
        ),
    )


def visa_letter_for(actor: Actor, referral_id: int) -> bytes:
    """The invitation letter as PDF bytes; every download is audited."""
    referral = referral_for(actor, referral_id)
    trip = booked_trip(referral)
    if not trip.visa_letter_needed:
        raise Conflict("this trip does not ask for a visa letter (visa_letter_needed is false)")
    audit.record(actor, "trip.visa_letter", referral.id)
    return render_visa_letter(visa_letter_of(referral, trip), font=unicode_font())


@dataclass(frozen=True)
class StayEvent:
    """One step of a stay on the calendar: planned (from the booking) or recorded."""

    at: datetime  # UTC
    kind: str  # arrival (the inbound flight lands), admission, discharge, departure
    recorded: bool
    referral_id: int
    reference: str
    patient: str
    time_zone: str  # the trip's zone: where the patient is
    detail: str = ""


@dataclass
class CalendarDay:
    day: date
    events: list[StayEvent] = field(default_factory=list)


CALENDAR_LIMIT = 300  # trips in one week: far more than a hospital's international desk has


def _flight_words(flight: Flight | None) -> str:
    if flight is None:
        return ""
    return f"{flight.flight_number} {flight.departure_airport}\u2192{flight.arrival_airport}"


def _events(trip: Trip, reference: str, patient: str) -> list[StayEvent]:
    flights = {flight.direction: flight for flight in trip.flights}
    steps = (
        ("arrival", trip.arrival_at, False, _flight_words(flights.get("inbound"))),
        ("admission", trip.admitted_at or trip.admission_at, trip.admitted_at is not None, ""),
        ("discharge", trip.discharged_at or trip.discharge_at, trip.discharged_at is not None, ""),
        (
            "departure",
            trip.departed_at or trip.departure_at,
            trip.departed_at is not None,
            _flight_words(flights.get("outbound")),
        ),
    )
    return [
        StayEvent(
            at, kind, recorded, trip.referral_id, reference, patient, trip.local_time_zone, detail
        )
        for kind, at, recorded, detail in steps
    ]


def week_calendar(week_start: date, tz: ZoneInfo) -> list[CalendarDay]:
    """Arrivals, admissions, discharges and departures in the seven local days from
    `week_start` in the viewer's zone `tz`, each day's in time order; an event belongs to
    the local day (in `tz`) it happens on. A lost referral's trip is not on it.

    One read of the trips whose stay overlaps the week (and one of their flights)."""
    start = datetime.combine(week_start, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(week_start + timedelta(days=7), time.min, tzinfo=tz).astimezone(UTC)
    rows = db.session.execute(
        select(Trip, Patient.given_name, Patient.family_name)
        .join(Referral, Referral.id == Trip.referral_id)
        .join(Patient, Patient.id == Referral.patient_id)
        .where(
            Referral.stage != "lost",
            Trip.arrival_at < end,
            func.coalesce(Trip.departed_at, Trip.departure_at) >= start,
        )
        .order_by(Trip.arrival_at, Trip.id)
        .limit(CALENDAR_LIMIT)
    ).all()
    days = [CalendarDay(week_start + timedelta(days=n)) for n in range(7)]
    for trip, given, family in rows:
        for event in _events(trip, hospital_reference(trip.referral_id), f"{given} {family}"):
            if start <= event.at < end:
                days[(event.at.astimezone(tz).date() - week_start).days].events.append(event)
    for day in days:
        day.events.sort(key=lambda event: (event.at, event.referral_id))
    return days
