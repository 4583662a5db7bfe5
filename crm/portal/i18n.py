"""Numbers, money, dates, times and phone numbers in the language of the request.

The words themselves are gettext (`_()` in the templates, crm/portal/words.py); this module
formats the values that sit among them, and isolates each one (`<bdi>`, `dir="ltr"`) so that
in a right-to-left page "+90 212 000 00 00", "TK1588" or "7,100.00" read as written and a
full stop after them stays at the end of the Arabic sentence.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton, get_timezone_location
from babel.lists import format_list
from flask_babel import get_locale, gettext
from markupsafe import Markup, escape

from crm.core.i18n import RTL_LANGUAGES, money_text


def locale() -> Locale:
    return get_locale() or Locale.parse("en")


def language() -> str:
    return locale().language


def direction() -> str:
    return "rtl" if language() in RTL_LANGUAGES else "ltr"


def isolated(text: object) -> Markup:
    """A value that keeps its own direction inside the sentence around it."""
    return Markup("<bdi>%s</bdi>") % text


def ltr(text: object) -> Markup:
    """A code, reference or number that always reads left to right (flight, airport, id)."""
    return Markup('<span dir="ltr">%s</span>') % text


def money(minor: int, currency: str) -> Markup:
    """An amount in the locale's digits and grouping. Right-to-left locales name the
    currency in words ("7,100.00 دولار أمريكي") rather than CLDR's "US$" beside the
    digits, which a browser reorders to "$US"; the amount is isolated either way."""
    return isolated(money_text(minor, currency, language()))


def when(moment: datetime, zone: str) -> str:
    """Weekday, date and time (no seconds) as the clock shows them in `zone`."""
    here = _aware(moment).astimezone(ZoneInfo(zone))
    loc = locale()
    day_part = format_skeleton("yMMMEd", here, locale=loc, fuzzy=True)
    time_part = format_datetime(here, loc.time_formats["short"].pattern, locale=loc)
    return loc.datetime_formats["medium"].replace("{1}", day_part).replace("{0}", time_part)


def when_in(moment: datetime, zone: str) -> str:
    """`when` with its zone named: "Sun, Mar 31, 2030, 10:00 AM (Berlin time)"."""
    return gettext("%(time)s (%(city)s time)", time=when(moment, zone), city=city_of(zone))


def city_of(zone: str) -> str:
    """The zone's city in the reader's language ("Istanbul", "إسطنبول", "Стамбул")."""
    return get_timezone_location(ZoneInfo(zone), locale=locale(), return_city=True)


def day(value: date | datetime, zone: str = "UTC") -> str:
    if isinstance(value, datetime):
        value = _aware(value).astimezone(ZoneInfo(zone)).date()
    return format_date(value, "long", locale=locale())


def phone_link(number: str, label: object = None, kind: str = "") -> Markup:
    """A tap-to-call link; the number reads left to right in any page ("+90 212 000 00 00"),
    after its label when it has one."""
    dial = re.sub(r"[^\d+]", "", number)
    if label is None:
        return Markup('<a href="tel:%s" dir="ltr">%s</a>') % (dial, number)
    return Markup(
        '<a class="%s" href="tel:%s"><span class="what">%s</span> <span dir="ltr">%s</span></a>'
    ) % (kind, dial, label, number)


def as_list(items: list[str]) -> Markup:
    """Items joined as the language joins a list ("a, b and c"), each one isolated."""
    marks = [f"\ue000{n}\ue001" for n in range(len(items))]  # placeholders babel won't touch
    joined = str(escape(format_list(marks, locale=locale()))) if items else ""
    for mark, item in zip(marks, items, strict=True):
        joined = joined.replace(mark, str(isolated(item)))
    return Markup(joined)  # noqa: S704 - every piece above is escaped


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


HELPERS = {
    "money": money,
    "when": when,
    "when_in": when_in,
    "day": day,
    "city_of": city_of,
    "phone_link": phone_link,
    "ltr": ltr,
    "isolated": isolated,
    "as_list": as_list,
}
