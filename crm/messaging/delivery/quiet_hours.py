"""Quiet hours: no message reaches a patient at night in the patient's own time zone.

``next_allowed_send(due_utc, zone, window)`` answers "when may a message that is due
at ``due_utc`` go out?": the due time itself when the patient's local wall clock is
outside the quiet window, otherwise the first instant the window is over.

Daylight-saving time, with ``zoneinfo``:
- a window ending inside a spring-forward gap (e.g. 02:30 on a night when clocks jump
  from 02:00 to 03:00) ends at the transition itself: from that instant the wall
  clock reads 03:00, already past 02:30;
- a window ending inside a fall-back overlap (02:30 happens twice) ends at the first
  02:30 at or after the due time, so a message due during the repeated hour waits
  for the second 02:30 rather than being sent "in the past".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-\u2013]\s*(\d{1,2}):(\d{2})\s*$")


class InvalidTimeZone(ValueError):
    """The zone name is not a known IANA time zone."""


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """Local wall-clock hours in which nothing is sent: ``start`` inclusive, ``end``
    exclusive. ``start > end`` crosses midnight; ``start == end`` means no quiet hours.
    """

    start: time = time(21, 0)
    end: time = time(8, 30)

    def contains(self, local: time) -> bool:
        """True when the wall-clock time ``local`` falls inside the window."""
        local = local.replace(tzinfo=None, fold=0)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end


DEFAULT_WINDOW = QuietWindow()


def parse_window(text: str) -> QuietWindow:
    """Parse ``"21:00-08:30"`` (a configuration value) into a :class:`QuietWindow`."""
    match = _WINDOW_RE.match(text)
    if not match:
        raise ValueError(f"quiet window must look like 21:00-08:30, got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return QuietWindow(time(h1, m1), time(h2, m2))


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or :class:`InvalidTimeZone`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidTimeZone(f"unknown time zone {name!r}") from exc


def is_quiet(at_utc: datetime, zone: str | ZoneInfo, window: QuietWindow = DEFAULT_WINDOW) -> bool:
    """True when ``at_utc`` falls inside the quiet window in ``zone``."""
    tz = zone if isinstance(zone, ZoneInfo) else load_zone(zone)
    return window.contains(_require_aware(at_utc).astimezone(tz).time())


def next_allowed_send(
    due_utc: datetime, zone: str | ZoneInfo, window: QuietWindow = DEFAULT_WINDOW
) -> datetime:
    """Earliest UTC instant at or after ``due_utc`` outside the quiet window in ``zone``."""
    tz = zone if isinstance(zone, ZoneInfo) else load_zone(zone)
    due = _require_aware(due_utc).astimezone(UTC)
    local = due.astimezone(tz)
    if not window.contains(local.time()):
        return due
    end_date = local.date()
    if window.crosses_midnight and local.time().replace(fold=0) >= window.start:
        end_date += timedelta(days=1)
    return _first_instant_at(datetime.combine(end_date, window.end), tz, not_before=due)


def _first_instant_at(wall: datetime, tz: ZoneInfo, not_before: datetime) -> datetime:
    """First UTC instant >= ``not_before`` at which the wall clock in ``tz`` reads
    ``wall`` or, when ``wall`` falls in a DST gap, has just jumped past it."""
    early = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    late = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if late < early:  # a gap: neither reading exists; the transition is between them
        return max(_transition_between(late, early, tz), not_before)
    for candidate in sorted({early, late}):
        if candidate >= not_before:
            return candidate
    return max(early, late, not_before)


def _transition_between(lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime:
    """The first whole UTC second in (lo, hi] whose UTC offset differs from ``lo``'s."""
    before = lo.astimezone(tz).utcoffset()
    low, high = int(lo.timestamp()), int(hi.timestamp()) + 1
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            low = mid
        else:
            high = mid
    return datetime.fromtimestamp(high, UTC)


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required (store UTC)")
    return value
