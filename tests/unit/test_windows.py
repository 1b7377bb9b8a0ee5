"""Maintenance windows: open now, or the next opening, across midnight and time zones."""

from __future__ import annotations

from datetime import UTC, datetime

from certrelay.windows import next_opening

NIGHTS = {"days": ["sat", "sun"], "start": "02:00", "end": "05:00", "timezone": "UTC"}


def test_inside_the_window_it_is_open_now():
    saturday_3am = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)

    assert next_opening(NIGHTS, saturday_3am) is None


def test_before_the_window_it_opens_at_the_next_start():
    friday_noon = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    assert next_opening(NIGHTS, friday_noon) == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def test_after_the_last_window_of_the_week_it_waits_for_next_week():
    sunday_6am = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)

    assert next_opening(NIGHTS, sunday_6am) == datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


def test_a_window_past_midnight_is_still_open_the_next_morning():
    late = {"days": ["fri"], "start": "22:00", "end": "02:00", "timezone": "UTC"}
    saturday_1am = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)

    assert next_opening(late, saturday_1am) is None


def test_the_window_is_read_in_its_own_time_zone():
    berlin = {"days": ["sat"], "start": "02:00", "end": "05:00", "timezone": "Europe/Berlin"}
    friday_noon_utc = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    assert next_opening(berlin, friday_noon_utc) == datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
