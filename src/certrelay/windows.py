"""Maintenance windows: when distribution may touch a profile's servers.

A window opens on each listed weekday at `start` (in the window's time zone) and closes at
`end`; an end before the start runs past midnight into the next day. Pure: `now` is passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def next_opening(window: dict[str, Any], now: datetime) -> datetime | None:
    """None while a window is open at `now`; else when the next one opens (UTC)."""
    zone = ZoneInfo(str(window.get("timezone") or "UTC"))
    local_now = now.astimezone(zone)
    start, end = _clock(window["start"]), _clock(window["end"])
    days = {WEEKDAYS.index(day) for day in window["days"]}
    for offset in range(-1, 8):  # yesterday's window may still be open past midnight
        day = local_now.date() + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens = datetime.combine(day, start, tzinfo=zone)
        closes = datetime.combine(day + timedelta(days=end <= start), end, tzinfo=zone)
        if opens <= local_now < closes:
            return None
        if opens > local_now:
            return opens.astimezone(UTC)
    raise ValueError("a window with at least one weekday opens within a week")


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))
