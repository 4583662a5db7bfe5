from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.messaging.delivery.quiet_hours import (
    DEFAULT_WINDOW,
    InvalidTimeZone,
    QuietWindow,
    is_quiet,
    load_zone,
    next_allowed_send,
    parse_window,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_message_due_in_the_afternoon_goes_out_at_once():
    due = utc(2024, 6, 3, 12, 0)  # 15:00 in Istanbul
    assert next_allowed_send(due, "Europe/Istanbul") == due


def test_a_message_due_in_the_late_evening_waits_for_the_next_morning():
    due = utc(2024, 6, 3, 19, 0)  # 22:00 in Istanbul (UTC+3)
    assert next_allowed_send(due, "Europe/Istanbul") == utc(2024, 6, 4, 5, 30)


def test_a_message_due_after_midnight_waits_for_the_same_morning():
    due = utc(2024, 6, 3, 23, 0)  # 02:00 on the 4th in Istanbul
    assert next_allowed_send(due, "Europe/Istanbul") == utc(2024, 6, 4, 5, 30)


def test_the_window_start_is_quiet_and_its_end_is_allowed():
    zone = "Europe/Istanbul"
    assert is_quiet(utc(2024, 6, 3, 18, 0), zone)  # 21:00 sharp
    assert not is_quiet(utc(2024, 6, 3, 17, 59, 59), zone)
    assert not is_quiet(utc(2024, 6, 4, 5, 30), zone)  # 08:30 sharp
    assert next_allowed_send(utc(2024, 6, 4, 5, 29, 59), zone) == utc(2024, 6, 4, 5, 30)


def test_the_same_instant_is_night_for_one_patient_and_day_for_another():
    due = utc(2024, 6, 3, 20, 0)
    assert next_allowed_send(due, "America/New_York") == due  # 16:00
    assert next_allowed_send(due, "Asia/Dubai") == utc(2024, 6, 4, 4, 30)  # midnight there


def test_a_configured_window_that_does_not_cross_midnight():
    window = QuietWindow(time(13, 0), time(14, 0))  # a siesta
    assert next_allowed_send(utc(2024, 6, 3, 11, 30), "Europe/Madrid", window) == utc(
        2024, 6, 3, 12, 0
    )
    assert next_allowed_send(utc(2024, 6, 3, 20, 0), "Europe/Madrid", window) == utc(
        2024, 6, 3, 20, 0
    )


def test_an_empty_window_means_no_quiet_hours():
    window = QuietWindow(time(0, 0), time(0, 0))
    due = utc(2024, 6, 3, 1, 0)
    assert next_allowed_send(due, "Europe/Berlin", window) == due


def test_the_default_window_survives_a_spring_forward_night():
    # Berlin, 31 March 2024: 02:00 CET -> 03:00 CEST; 08:30 CEST is 06:30 UTC
    assert next_allowed_send(utc(2024, 3, 30, 22, 0), "Europe/Berlin") == utc(2024, 3, 31, 6, 30)


def test_the_default_window_survives_a_fall_back_night():
    # Berlin, 27 October 2024: 03:00 CEST -> 02:00 CET; 08:30 CET is 07:30 UTC
    assert next_allowed_send(utc(2024, 10, 26, 21, 0), "Europe/Berlin") == utc(2024, 10, 27, 7, 30)


def test_a_window_ending_inside_a_dst_gap_ends_at_the_transition():
    window = QuietWindow(time(22, 0), time(2, 30))  # 02:30 does not exist that night
    due = utc(2024, 3, 31, 0, 30)  # 01:30 CET
    assert next_allowed_send(due, "Europe/Berlin", window) == utc(2024, 3, 31, 1, 0)  # 03:00 CEST
    ny = next_allowed_send(utc(2024, 3, 10, 6, 30), "America/New_York", window)
    assert ny == utc(2024, 3, 10, 7, 0)


def test_a_window_ending_in_a_repeated_hour_ends_at_its_first_occurrence():
    window = QuietWindow(time(22, 0), time(2, 30))
    due = utc(2024, 10, 27, 0, 0)  # 02:00 CEST, first pass
    assert next_allowed_send(due, "Europe/Berlin", window) == utc(2024, 10, 27, 0, 30)


def test_a_message_due_in_the_repeated_hour_waits_for_the_second_occurrence():
    window = QuietWindow(time(2, 0), time(2, 30))
    due = utc(2024, 10, 27, 1, 10)  # 02:10 CET, second pass through 02:xx
    assert is_quiet(due, "Europe/Berlin", window)
    assert next_allowed_send(due, "Europe/Berlin", window) == utc(2024, 10, 27, 1, 30)


def test_a_zone_changing_at_midnight_is_handled():
    # Havana, 10 March 2024: 00:00 CST -> 01:00 CDT; window ends at 00:30 that night
    window = QuietWindow(time(22, 0), time(0, 30))
    due = utc(2024, 3, 10, 4, 10)  # 23:10 CST on the 9th
    assert next_allowed_send(due, "America/Havana", window) == utc(2024, 3, 10, 5, 0)


def test_an_unknown_zone_is_refused():
    for name in ("Mars/Olympus", "", "../etc/passwd", "Europe/"):
        with pytest.raises(InvalidTimeZone):
            next_allowed_send(utc(2024, 1, 1), name)


def test_a_naive_due_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_allowed_send(datetime(2024, 1, 1, 12, 0), "Europe/Berlin")


def test_a_due_time_in_another_offset_is_treated_as_the_same_instant():
    due = datetime(2024, 6, 3, 22, 0, tzinfo=ZoneInfo("Europe/Istanbul"))
    assert next_allowed_send(due, "Europe/Istanbul") == utc(2024, 6, 4, 5, 30)


def test_windows_parse_from_configuration_text():
    assert parse_window("21:00-08:30") == DEFAULT_WINDOW
    assert parse_window(" 22:15 \u2013 7:05 ") == QuietWindow(time(22, 15), time(7, 5))
    for bad in ("21-08", "25:00-08:00", "nonsense"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_load_zone_returns_a_zoneinfo():
    assert load_zone("Asia/Riyadh") == ZoneInfo("Asia/Riyadh")


zones = st.sampled_from(
    ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
     "America/Havana", "Europe/Istanbul", "Pacific/Chatham", "America/Santiago"]
)  # fmt: skip
instants = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)
clock = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(instants, zones, clock, clock)
def test_the_answer_is_the_first_allowed_instant(due, zone, start, end):
    window = QuietWindow(start, end)
    result = next_allowed_send(due, zone, window)
    assert result >= due
    assert not is_quiet(result, zone, window)
    assert result - due <= timedelta(days=1, hours=2)
    if result != due:
        assert is_quiet(result - timedelta(seconds=1), zone, window)
        step = (result - due) / 7
        assert all(is_quiet(due + step * i, zone, window) for i in range(7))
