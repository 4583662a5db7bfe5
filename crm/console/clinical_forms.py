"""Turning the clinical forms' text into what the API's `...Args` schemas load, and back.

A form field is named after the schema's path with `-` for `.` and `[n]`
(`flights.inbound.departs_at` is `flights-inbound-departs_at`, `items[0].kind` is
`items-0-kind`), so a field error the schema or the operation names lands next to its
field. Amounts are typed as decimals and become integer minor units of the plan's
currency (ISO 4217 digits, from babel); times are typed as local wall times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_currency, get_currency_precision, list_currencies
from marshmallow import Schema, ValidationError

from crm.core.errors import ValidationFailed, flatten_marshmallow
from crm.travel.itinerary import LocalTimeError, to_utc
from crm.travel.operations import FLIGHT_FIELDS  # the trip schema's flight fields

Errors = dict[str, str]
TIMES = "\u00d7"  # the multiplication sign
AMOUNT = re.compile(r"^\d+(\.\d+)?$")


def field_id(path: str) -> str:
    """`items[0].unit_price_minor` -> `items-0-unit_price_minor`: a schema path as the name
    and id of its form field."""
    return re.sub(r"\[(\d+)\]", r"-\1", path).replace(".", "-")


def errors_by_field(messages: Any, renames: Mapping[str, str] | None = None) -> Errors:
    """Marshmallow's messages (or a ValidationFailed's list) as {form field: reason}; the
    first reason of a field wins. `renames` maps a schema field's last part to the form's
    (`unit_price_minor` is typed as `amount`)."""
    flat = messages if isinstance(messages, list) else flatten_marshmallow(messages)
    errors: Errors = {}
    for error in flat:
        name = field_id(error.get("field") or "form")
        head, _, last = name.rpartition("-")
        if renames and last in renames:
            name = f"{head}-{renames[last]}" if head else renames[last]
        errors.setdefault(name, error["reason"])
    return errors


def load(schema: Schema, data: dict[str, Any], renames: Mapping[str, str] | None = None):
    """`(args, {})` as the API would load them, or `(None, errors by form field)`."""
    try:
        return schema.load(data), {}
    except ValidationError as exc:
        return None, errors_by_field(exc.messages, renames)


def refusal_errors(exc: Exception, zone: str, renames: Mapping[str, str] | None = None) -> Errors:
    """The field errors of an operation's ValidationFailed (none for other refusals), with
    any UTC instant the reason names shown in the viewer's `zone`."""
    if not isinstance(exc, ValidationFailed):
        return {}
    errors = errors_by_field(exc.extensions["errors"], renames)
    return {name: readable(reason, zone) for name, reason in errors.items()}


_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)")


def readable(reason: str, zone: str) -> str:
    """`... lands (2030-03-31T11:10:00+00:00)` -> `... lands (2030-03-31 14:10 +03)`."""

    def local(match: re.Match[str]) -> str:
        moment = datetime.fromisoformat(match.group(0))
        return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")

    return _INSTANT.sub(local, reason)


def text(form: Mapping[str, str], name: str) -> str:
    return (form.get(name) or "").strip()


def optional(form: Mapping[str, str], name: str) -> str | None:
    """A blank field is an absent value (the schemas' `allow_none` fields)."""
    return text(form, name) or None


def lines(form: Mapping[str, str], name: str) -> list[str]:
    return [line.strip() for line in (form.get(name) or "").splitlines() if line.strip()]


# --- money ---------------------------------------------------------------------------


def digits_of(currency: str) -> int:
    """How many decimals the currency has (EUR 2, JPY 0, KWD 3); 2 for an unknown code,
    which the schema refuses by itself."""
    return get_currency_precision(currency) if currency in list_currencies() else 2


def to_minor(typed: str, currency: str) -> int:
    """`"6500.50"` EUR -> 650050. Raises ValueError with the reason in words."""
    cleaned = typed.replace(" ", "")
    if not AMOUNT.match(cleaned):
        raise ValueError("an amount such as 6500 or 6500.50 (a point for decimals, no commas)")
    digits = digits_of(currency)
    decimals = len(cleaned.partition(".")[2])
    if decimals > digits:
        allowed = "no decimals" if digits == 0 else f"at most {digits} decimal(s)"
        raise ValueError(f"has more decimals than {currency} has: {allowed}")
    try:
        return int(Decimal(cleaned).scaleb(digits))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValueError("not an amount") from exc


def from_minor(minor: int, currency: str) -> str:
    """650050 EUR -> `"6500.50"`: an amount as the form shows it for editing."""
    digits = digits_of(currency)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def money(minor: int, currency: str, locale: str = "en_GB") -> str:
    """650050 EUR -> `€6,500.50`."""
    return format_currency(Decimal(minor).scaleb(-digits_of(currency)), currency, locale=locale)


# --- times ---------------------------------------------------------------------------


def wall_time(moment: datetime | None, zone: str) -> str:
    """A stored UTC time as a `datetime-local` input's value in `zone`."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def in_zone(typed: str, zone: str) -> str | None:
    """A typed wall time read in `zone` (the viewer's), as the ISO 8601 instant the
    schemas take; blank stays None. A time a DST change skips or repeats raises ValueError
    in words; text that is no time at all is passed on for the schema to refuse."""
    if not typed:
        return None
    try:
        wall = datetime.fromisoformat(typed)
    except ValueError:
        return typed
    try:
        return to_utc(wall, zone).isoformat()
    except LocalTimeError as exc:
        raise ValueError(str(exc)) from exc


# --- the plan form -------------------------------------------------------------------

ITEM_FIELDS = ("kind", "description", "quantity", "amount")
PLAN_RENAMES = {"unit_price_minor": "amount", "deposit_minor": "deposit"}
_ITEM_NAME = re.compile(r"^items-(\d+)-(\w+)$")


def item_rows(form: Mapping[str, str]) -> list[dict[str, str]]:
    """The line-item rows typed, in order, blank rows dropped (so row n is `items[n]`)."""
    found: dict[int, dict[str, str]] = {}
    for name, value in form.items():
        if (match := _ITEM_NAME.match(name)) and match.group(2) in ITEM_FIELDS:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
    rows = [{f: found[n].get(f, "") for f in ITEM_FIELDS} for n in sorted(found)]
    return [r for r in rows if r["description"] or r["amount"] or r["quantity"] not in ("", "1")]


def plan_data(form: Mapping[str, str], rows: list[dict[str, str]]) -> tuple[dict, Errors]:
    """What `PlanArgs` loads, from the form; amounts that cannot be minor units are errors
    of their own (the schema then has no value to judge there)."""
    currency = text(form, "currency")
    errors: Errors = {}
    items = []
    for n, row in enumerate(rows):
        item: dict[str, Any] = {"kind": row["kind"], "description": row["description"]}
        if row["quantity"]:
            try:
                item["quantity"] = int(row["quantity"])
            except ValueError:
                errors[f"items-{n}-quantity"] = "a whole number, such as 1 or 2"
        try:
            item["unit_price_minor"] = to_minor(row["amount"], currency)
        except ValueError as exc:
            errors[f"items-{n}-amount"] = str(exc) if row["amount"] else "give the amount"
        items.append(item)
    data: dict[str, Any] = {
        "procedure": text(form, "procedure"),
        "hospital": text(form, "hospital"),
        "surgeon": text(form, "surgeon"),
        "currency": currency,
        "items": items,
        "inclusions": lines(form, "inclusions"),
        "exclusions": lines(form, "exclusions"),
        "valid_until": text(form, "valid_until"),
        "notes_for_patient": text(form, "notes_for_patient"),
    }
    if deposit := text(form, "deposit"):
        try:
            data["deposit_minor"] = to_minor(deposit, currency)
        except ValueError as exc:
            errors["deposit"] = str(exc)
    return data, errors


def plan_values(plan: Any) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A stored version as the form's values and rows: the start of the next version."""
    values = {
        "procedure": plan.procedure_code,
        "hospital": plan.hospital,
        "surgeon": plan.surgeon,
        "currency": plan.currency,
        "inclusions": "\n".join(plan.inclusions),
        "exclusions": "\n".join(plan.exclusions),
        "deposit": from_minor(plan.deposit_minor, plan.currency),
        "valid_until": plan.valid_until.isoformat(),
        "notes_for_patient": plan.notes_for_patient,
    }
    rows = [
        {
            "kind": item.kind,
            "description": item.description,
            "quantity": str(item.quantity),
            "amount": from_minor(item.unit_price_minor, plan.currency),
        }
        for item in plan.items
    ]
    return values, rows


def what_changed(plan: Any, previous: Any | None) -> list[str]:
    """A version against the one before it, in words, for the versions table."""
    if previous is None:
        return ["first version"]
    said = []
    for label, name in (("procedure", "procedure_code"), ("hospital", "hospital"),
                        ("surgeon", "surgeon"), ("currency", "currency")):  # fmt: skip
        if getattr(plan, name) != getattr(previous, name):
            said.append(f"{label}: {getattr(previous, name)} → {getattr(plan, name)}")
    said += _items_changed(plan, previous)
    for label, name in (("total", "total_minor"), ("deposit", "deposit_minor")):
        old, new = getattr(previous, name), getattr(plan, name)
        if (old, previous.currency) != (new, plan.currency):
            said.append(f"{label}: {money(old, previous.currency)} → {money(new, plan.currency)}")
    if plan.valid_until != previous.valid_until:
        said.append(f"valid until: {previous.valid_until} → {plan.valid_until}")
    for name in ("inclusions", "exclusions"):
        if getattr(plan, name) != getattr(previous, name):
            said.append(f"{name} changed")
    return said or ["nothing (the same terms again)"]


def _items_changed(plan: Any, previous: Any) -> list[str]:
    """Line by line: `item 1: 1 TIMES €6,500.50 → 1 TIMES €6,000.00`, added, removed."""

    def words(item: Any, currency: str) -> str:
        return f"{item.quantity} {TIMES} {money(item.unit_price_minor, currency)}"

    said = []
    for n in range(max(len(plan.items), len(previous.items))):
        old = previous.items[n] if n < len(previous.items) else None
        new = plan.items[n] if n < len(plan.items) else None
        if old is None:
            said.append(f"item {n + 1} added: {new.description}")
        elif new is None:
            said.append(f"item {n + 1} removed: {old.description}")
        elif (old.kind, old.description) != (new.kind, new.description):
            said.append(f"item {n + 1}: {old.description} → {new.description}")
        elif words(old, previous.currency) != words(new, plan.currency):
            was, now = words(old, previous.currency), words(new, plan.currency)
            said.append(f"item {n + 1}: {was} → {now}")
    return said


# --- the trip form -------------------------------------------------------------------

# Typed by hand: a flight is left out only when none of these is (the zones are prefilled).
FLIGHT_TYPED = ("flight_number", "departure_airport", "departs_at", "arrival_airport", "arrives_at")


def _flight(form: Mapping[str, str], direction: str) -> dict[str, str] | None:
    values = {name: text(form, f"flights-{direction}-{name}") for name in FLIGHT_FIELDS}
    return values if any(values[name] for name in FLIGHT_TYPED) else None


def trip_data(form: Mapping[str, str]) -> tuple[dict[str, Any], Errors]:
    """What `TripArgs` loads, from the form: local times as typed (the schema reads each
    in the zone beside it); an untyped return flight or companion is none."""
    errors: Errors = {}
    data: dict[str, Any] = {
        "admission_at": text(form, "admission_at"),
        "time_zone": text(form, "time_zone"),
        "flights": {"inbound": _flight(form, "inbound") or {}, "outbound": None},
        "hotel": {"name": text(form, "hotel-name"), "address": text(form, "hotel-address")},
        "transfers": text(form, "transfers"),
        "visa_letter_needed": form.get("visa_letter_needed") == "yes",
    }
    if outbound := _flight(form, "outbound"):
        data["flights"]["outbound"] = outbound
    if nights := text(form, "hospital_nights"):
        try:
            data["hospital_nights"] = int(nights)
        except ValueError:
            errors["hospital_nights"] = "a whole number of nights"
    name, country = text(form, "companion-name"), text(form, "companion-passport_country")
    if name or country:
        data["companion"] = {"name": name, "passport_country": country}
    return data, errors


def trip_values(trip: Any) -> dict[str, str]:
    """A booked trip as the form's values: each time in the zone it was typed in."""
    zone = trip.local_time_zone
    values = {
        "admission_at": wall_time(trip.admission_at, zone),
        "time_zone": zone,
        "hotel-name": trip.hotel_name,
        "hotel-address": trip.hotel_address,
        "transfers": trip.transfers,
        "companion-name": trip.companion_name or "",
        "companion-passport_country": trip.companion_passport_country or "",
        "visa_letter_needed": "yes" if trip.visa_letter_needed else "",
    }
    for flight in trip.flights:
        prefix = f"flights-{flight.direction}-"
        for name in FLIGHT_FIELDS:
            values[prefix + name] = getattr(flight, name)
        values[prefix + "departs_at"] = wall_time(flight.departs_at, flight.departure_time_zone)
        values[prefix + "arrives_at"] = wall_time(flight.arrives_at, flight.arrival_time_zone)
    return values
