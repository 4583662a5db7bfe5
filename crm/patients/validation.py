"""Field validators for patient data, built on the libraries that know the rules."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from functools import cache

import phonenumbers
from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email
from marshmallow import ValidationError


@cache
def _countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes with a telephone numbering plan, from phonenumbers' data:
    babel's territory list also holds codes that are no country (ZZ, EU, UN, QO, XA)."""
    return frozenset(phonenumbers.SUPPORTED_REGIONS)


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def normalise_phone(raw: str, country: str | None = None) -> str:
    """E.164 for a valid number; a national number needs the patient's country."""
    try:
        number = phonenumbers.parse(raw, None if raw.strip().startswith("+") else country)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            "not a phone number; use international format, e.g. +905321234567"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(f"not a valid email address: {exc}") from exc


def check_time_zone(value: str) -> None:
    if value not in _time_zones():
        raise ValidationError("not an IANA time zone, e.g. Europe/Berlin")


def normalise_country(value: str) -> str:
    code = value.strip().upper()
    if code not in _countries():
        raise ValidationError("not an ISO 3166-1 alpha-2 country code, e.g. DE")
    return code


_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_](?:[A-Za-z]{2}|[0-9]{3}))?")


def normalise_language(value: str) -> str:
    """A language, optionally with a region (en, pt-BR, es-419), that babel knows as given.

    Nothing is dropped or replaced: a tag babel would read as another (en-ZZ as en-US,
    iw as he, en-xxxx as en) is refused with what to send instead."""
    tag = value.strip()
    if not _LANGUAGE_TAG.fullmatch(tag):
        raise ValidationError(
            "not a language tag: send a language, optionally with a region, e.g. en, pt-BR"
        )
    try:
        locale = Locale.parse(tag.replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError) as exc:
        raise ValidationError("not a known language tag, e.g. en, tr, ar, ru, de") from exc
    canonical = f"{locale.language}-{locale.territory}" if locale.territory else locale.language
    if locale.script or locale.variant or canonical.lower() != tag.replace("_", "-").lower():
        raise ValidationError(f"not a known language tag as given (did you mean {canonical}?)")
    return canonical


def check_date_of_birth(value: date) -> None:
    today = date.today()
    if value > today:
        raise ValidationError("cannot be in the future")
    if value.year < today.year - 120:
        raise ValidationError("more than 120 years ago")
