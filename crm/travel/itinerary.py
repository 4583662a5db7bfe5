"""The patient's stay as pure arithmetic: no Flask, no database.

`derive_plan` turns a catalogue row and an admission time into the dates the stay must
respect; `check_trip` lists every way a proposed trip breaks them, each naming the field.
Days are counted in the hospital's local calendar (arriving "a day before" a 08:00
admission means arriving on the previous local date, at any hour), and the clock
arithmetic is done on local wall time, so a stay across a DST change keeps its hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_CASE_HOURS = 8  # a procedure with no hospital night: discharged the same day
DISCHARGE_TO_AIRPORT = timedelta(hours=3)  # no return flight sooner after discharge


class LocalTimeError(ValueError):
    """A local wall time that does not exist (DST gap) or happens twice (DST overlap)."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LocalTimeError(f"unknown IANA time zone {name!r}") from exc


def to_utc(value: datetime, zone_name: str) -> datetime:
    """An aware time as it is; a naive one read as wall time in `zone_name`.

    A wall time skipped by a DST change, or one that happens twice, is refused: the
    caller must then say which instant is meant by giving an offset.
    """
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(UTC)
    tz = zone(zone_name)
    first, second = value.replace(tzinfo=tz, fold=0), value.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        # Either a gap (the wall time never happens) or an overlap (it happens twice).
        round_trip = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        if round_trip != value:
            raise LocalTimeError(f"{value:%Y-%m-%d %H:%M} does not exist in {zone_name} (DST)")
        raise LocalTimeError(
            f"{value:%Y-%m-%d %H:%M} happens twice in {zone_name} (DST); give an offset"
        )
    return first.astimezone(UTC)


def local(moment: datetime, zone_name: str) -> datetime:
    return moment.astimezone(zone(zone_name))


def _add_local_days(moment: datetime, days: int, zone_name: str) -> datetime:
    """`days` calendar days later at the same local clock time (DST-safe)."""
    wall = local(moment, zone_name).replace(tzinfo=None) + timedelta(days=days)
    tz = zone(zone_name)
    return wall.replace(tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class StayRules:
    """The catalogue's facts about a stay (see config/procedures.toml)."""

    arrive_days_before_admission: int
    hospital_nights_min: int
    hospital_nights_max: int
    nights_in_city_after_discharge: int

    @classmethod
    def of(cls, procedure: Any) -> StayRules:
        """From a catalogue `Procedure` row (or anything with the same attributes)."""
        return cls(
            procedure.arrive_days_before_admission,
            procedure.hospital_nights_min,
            procedure.hospital_nights_max,
            procedure.nights_in_city_after_discharge,
        )


@dataclass(frozen=True)
class StayPlan:
    """What a stay must look like around one admission, in the hospital's zone."""

    time_zone: str
    admission_at: datetime
    latest_arrival_date: date  # local date; arriving on it or before is in time
    hospital_nights: int
    discharge_at: datetime
    nights_in_city: int
    earliest_return_date: date  # local date; the return flight leaves on it or later

    @property
    def earliest_return_at(self) -> datetime:
        """The start of the earliest return day, but never sooner after discharge than it
        takes to reach the airport."""
        start = datetime.combine(self.earliest_return_date, datetime.min.time())
        start_utc = start.replace(tzinfo=zone(self.time_zone)).astimezone(UTC)
        return max(start_utc, self.discharge_at + DISCHARGE_TO_AIRPORT)


def derive_plan(
    rules: StayRules, admission_at: datetime, time_zone: str, hospital_nights: int | None = None
) -> StayPlan:
    """The stay around `admission_at`; `hospital_nights` defaults to the catalogue's maximum
    (plan for the longer stay; the return can move earlier, rarely cheaply)."""
    nights = rules.hospital_nights_max if hospital_nights is None else hospital_nights
    admission_local = local(admission_at, time_zone)
    if nights == 0:
        discharge_at = admission_at + timedelta(hours=DAY_CASE_HOURS)
    else:
        discharge_at = _add_local_days(admission_at, nights, time_zone)
    discharge_date = local(discharge_at, time_zone).date()
    return StayPlan(
        time_zone=time_zone,
        admission_at=admission_at.astimezone(UTC),
        latest_arrival_date=admission_local.date()
        - timedelta(days=rules.arrive_days_before_admission),
        hospital_nights=nights,
        discharge_at=discharge_at,
        nights_in_city=rules.nights_in_city_after_discharge,
        earliest_return_date=discharge_date + timedelta(days=rules.nights_in_city_after_discharge),
    )


@dataclass(frozen=True)
class FlightLeg:
    departs_at: datetime  # aware
    arrives_at: datetime  # aware


@dataclass(frozen=True)
class ProposedTrip:
    admission_at: datetime
    time_zone: str
    hospital_nights: int | None
    inbound: FlightLeg
    outbound: FlightLeg | None


def _fmt(day: date) -> str:
    return day.isoformat()


def check_trip(rules: StayRules, trip: ProposedTrip) -> dict[str, str]:
    """Every inconsistency of `trip`, as {field: reason}; empty when it holds together."""
    problems: dict[str, str] = {}
    nights = trip.hospital_nights
    if nights is not None and not rules.hospital_nights_min <= nights <= rules.hospital_nights_max:
        problems["hospital_nights"] = (
            f"the catalogue says {rules.hospital_nights_min} to {rules.hospital_nights_max} nights"
        )
        nights = None
    plan = derive_plan(rules, trip.admission_at, trip.time_zone, nights)
    for name, leg in (("inbound", trip.inbound), ("outbound", trip.outbound)):
        if leg is not None and leg.arrives_at <= leg.departs_at:
            problems[f"flights.{name}.arrives_at"] = "the flight arrives before it departs"
    _check_arrival(plan, trip.inbound, problems)
    if trip.outbound is not None:
        _check_return(plan, trip.inbound, trip.outbound, problems)
    return problems


def _check_arrival(plan: StayPlan, inbound: FlightLeg, problems: dict[str, str]) -> None:
    field = "flights.inbound.arrives_at"
    if field in problems:
        return
    if inbound.arrives_at >= plan.admission_at:
        problems[field] = "the inbound flight arrives after the admission"
    elif local(inbound.arrives_at, plan.time_zone).date() > plan.latest_arrival_date:
        problems[field] = (
            f"arrival too late: the patient must arrive by {_fmt(plan.latest_arrival_date)} "
            f"({plan.time_zone}), the day(s) before admission the procedure needs"
        )


def _check_return(
    plan: StayPlan, inbound: FlightLeg, outbound: FlightLeg, problems: dict[str, str]
) -> None:
    field = "flights.outbound.departs_at"
    if outbound.departs_at <= inbound.arrives_at:
        problems[field] = "the return flight leaves before the inbound flight arrives"
    elif outbound.departs_at < plan.earliest_return_at:
        problems[field] = (
            f"return flight before discharge plus the minimum stay: discharge "
            f"{_fmt(local(plan.discharge_at, plan.time_zone).date())} and "
            f"{plan.nights_in_city} night(s) in the city, so not before "
            f"{_fmt(plan.earliest_return_date)} ({plan.time_zone})"
        )
