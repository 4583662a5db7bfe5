"""Travel input (`...Args`) and output (`...Schema`).

Times come in as ISO 8601 with an offset, or as a local date-time read in the zone named
beside it; they are stored in UTC and shown both in UTC and in local time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate

from crm.core.schemas import Args
from crm.travel.itinerary import LocalTimeError, local, to_utc, zone

DEFAULT_TRIP_ZONE = "Europe/Istanbul"


def _valid_zone(name: str) -> None:
    try:
        zone(name)
    except LocalTimeError as exc:
        raise ValidationError(str(exc)) from exc


TIME_ZONE_DOC = {"description": "IANA time zone", "example": "Europe/Istanbul"}


class LocalOrAwareDateTime(fields.Field):
    """ISO 8601; with an offset it is an instant, without one a wall time in a named zone."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise ValidationError("an ISO 8601 date-time string")
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError("an ISO 8601 date-time, e.g. 2025-05-12T08:00:00+03:00") from exc


def _resolve(data: dict[str, Any], pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Turn each time field into UTC using its zone field; all errors at once."""
    errors: dict[str, str] = {}
    for time_field, zone_field in pairs:
        if data.get(time_field) is None:
            continue
        try:
            data[time_field] = to_utc(data[time_field], data[zone_field])
        except LocalTimeError as exc:
            errors[time_field] = str(exc)
    if errors:
        raise ValidationError(errors)  # type: ignore[arg-type]
    return data


IATA = validate.Regexp(r"^[A-Z]{3}$", error="a 3-letter IATA airport code")


class FlightArgs(Args):
    flight_number = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z0-9]{2}[A-Z]?[0-9]{1,4}[A-Z]?$", error="e.g. TK1524"),
        metadata={"example": "TK1524"},
    )
    departure_airport = fields.String(required=True, validate=IATA, metadata={"example": "FRA"})
    departure_time_zone = fields.String(
        required=True, validate=_valid_zone, metadata={**TIME_ZONE_DOC, "example": "Europe/Berlin"}
    )
    departs_at = LocalOrAwareDateTime(
        required=True,
        metadata={"description": "ISO 8601; without an offset, local to departure_time_zone"},
    )
    arrival_airport = fields.String(required=True, validate=IATA, metadata={"example": "IST"})
    arrival_time_zone = fields.String(required=True, validate=_valid_zone, metadata=TIME_ZONE_DOC)
    arrives_at = LocalOrAwareDateTime(
        required=True,
        metadata={"description": "ISO 8601; without an offset, local to arrival_time_zone"},
    )

    @pre_load
    def normalise(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in ("flight_number", "departure_airport", "arrival_airport"):
            if isinstance(data.get(name), str):
                data[name] = data[name].replace(" ", "").upper()
        return data

    @post_load
    def in_utc(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return _resolve(
            data, (("departs_at", "departure_time_zone"), ("arrives_at", "arrival_time_zone"))
        )


class FlightsArgs(Args):
    inbound = fields.Nested(FlightArgs, required=True)
    outbound = fields.Nested(
        FlightArgs,
        allow_none=True,
        load_default=None,
        metadata={"description": "the return; until booked, the plan's earliest return is used"},
    )


class HotelArgs(Args):
    name = fields.String(load_default="", validate=validate.Length(max=200))
    address = fields.String(load_default="", validate=validate.Length(max=500))


class CompanionArgs(Args):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    passport_country = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{2}$", error="an ISO 3166-1 alpha-2 country code"),
        metadata={"example": "DE"},
    )

    @pre_load
    def upper_country(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("passport_country"), str):
            return {**data, "passport_country": data["passport_country"].upper()}
        return data


class TripArgs(Args):
    admission_at = LocalOrAwareDateTime(
        required=True,
        metadata={"description": "ISO 8601; without an offset, local to time_zone"},
    )
    time_zone = fields.String(
        load_default=DEFAULT_TRIP_ZONE,
        validate=_valid_zone,
        metadata={**TIME_ZONE_DOC, "description": "the hospital's zone: the stay's local time"},
    )
    hospital_nights = fields.Integer(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, max=365),
        metadata={"description": "within the catalogue's range; default its maximum"},
    )
    flights = fields.Nested(FlightsArgs, required=True)
    hotel = fields.Nested(HotelArgs, load_default=dict)
    transfers = fields.String(load_default="", validate=validate.Length(max=2000))
    companion = fields.Nested(CompanionArgs, allow_none=True, load_default=None)
    visa_letter_needed = fields.Boolean(load_default=False)

    @post_load
    def in_utc(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return _resolve(data, (("admission_at", "time_zone"),))


class MomentArgs(Args):
    at = LocalOrAwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "when it happened (default now); without an offset, local to "
            "the trip's zone"
        },
    )


def _local_time(attribute: str, zone_attribute: str) -> fields.Function:
    def show(obj: Any) -> str | None:
        moment = getattr(obj, attribute)
        return None if moment is None else local(moment, getattr(obj, zone_attribute)).isoformat()

    return fields.Function(show, metadata={"description": f"{attribute} in local time"})


class FlightSchema(Schema):
    flight_number = fields.String()
    departure_airport = fields.String()
    departure_time_zone = fields.String()
    departs_at = fields.DateTime(metadata={"description": "UTC"})
    departs_at_local = _local_time("departs_at", "departure_time_zone")
    arrival_airport = fields.String()
    arrival_time_zone = fields.String()
    arrives_at = fields.DateTime(metadata={"description": "UTC"})
    arrives_at_local = _local_time("arrives_at", "arrival_time_zone")


class FlightsSchema(Schema):
    inbound = fields.Nested(FlightSchema, allow_none=True)
    outbound = fields.Nested(FlightSchema, allow_none=True)


class PlanSchema(Schema):
    latest_arrival_date = fields.Date()
    hospital_nights = fields.Integer()
    nights_in_city = fields.Integer()
    earliest_return_date = fields.Date()


class HotelSchema(Schema):
    name = fields.String()
    address = fields.String()


class CompanionSchema(Schema):
    name = fields.String()
    passport_country = fields.String()


class TripSchema(Schema):
    referral_id = fields.Integer()
    stage = fields.String()
    time_zone = fields.String()
    arrival_at = fields.DateTime()
    arrival_at_local = _local_time("arrival_at", "time_zone")
    admission_at = fields.DateTime()
    admission_at_local = _local_time("admission_at", "time_zone")
    discharge_at = fields.DateTime(metadata={"description": "planned discharge"})
    discharge_at_local = _local_time("discharge_at", "time_zone")
    departure_at = fields.DateTime()
    departure_at_local = _local_time("departure_at", "time_zone")
    admitted_at = fields.DateTime(allow_none=True)
    admitted_at_local = _local_time("admitted_at", "time_zone")
    discharged_at = fields.DateTime(allow_none=True)
    discharged_at_local = _local_time("discharged_at", "time_zone")
    departed_at = fields.DateTime(allow_none=True)
    departed_at_local = _local_time("departed_at", "time_zone")
    plan = fields.Nested(PlanSchema)
    flights = fields.Nested(FlightsSchema)
    hotel = fields.Nested(HotelSchema)
    transfers = fields.String()
    companion = fields.Nested(CompanionSchema, allow_none=True)
    visa_letter_needed = fields.Boolean()
    updated_at = fields.DateTime()
