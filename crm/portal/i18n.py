"""The patient page's words, per language; English is the fallback for anything missing."""

from __future__ import annotations

import tomllib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, get_currency_precision

RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})

_STRINGS_DIR = Path(__file__).resolve().parent / "strings"


def _load_strings() -> dict[str, dict[str, str]]:
    strings = {}
    for path in sorted(_STRINGS_DIR.glob("*.toml")):
        with path.open("rb") as handle:
            strings[path.stem] = tomllib.load(handle)
    return strings


STRINGS: dict[str, dict[str, str]] = _load_strings()


class Words:
    """`words["key"]` in the page's language, falling back to English."""

    def __init__(self, language: str) -> None:
        self.language = language if language in STRINGS else "en"
        self.direction = "rtl" if self.language in RTL_LANGUAGES else "ltr"

    def __getitem__(self, key: str) -> str:
        return STRINGS[self.language].get(key) or STRINGS["en"].get(key, key)

    def money(self, minor: int, currency: str) -> str:
        amount = Decimal(minor).scaleb(-get_currency_precision(currency))
        return format_currency(amount, currency, locale=self.locale)

    def when(self, moment: datetime, zone: str) -> str:
        return format_datetime(moment, "medium", tzinfo=ZoneInfo(zone), locale=self.locale)

    def day(self, value: date) -> str:
        return format_date(value, "long", locale=self.locale)

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.language)
