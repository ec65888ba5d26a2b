"""Business-hours arithmetic for SLA targets, on an account's own calendar.

A calendar is a time zone, opening hours per weekday (minutes since local midnight,
[start, end)) and holidays (local dates). `add_business_minutes` answers "when are N business
minutes past this instant"; a target of 60 minutes set at 17:30 on a Friday with 9–18 hours
falls due at 09:30 on Monday.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_HOURS: dict[int, tuple[int, int]] = {day: (9 * 60, 18 * 60) for day in range(5)}
MAX_DAYS_AHEAD = 800  # a calendar with no open day at all never falls due


@dataclass(frozen=True, slots=True)
class Calendar:
    time_zone: str = "UTC"
    hours: dict[int, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_HOURS))
    holidays: frozenset[date] = frozenset()

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return ZoneInfo("UTC")

    def opening(self, day: date) -> tuple[int, int] | None:
        if day in self.holidays:
            return None
        window = self.hours.get(day.weekday())
        if window is None or window[0] >= window[1]:
            return None
        return window


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    hours, minutes = divmod(minute, 60)
    if hours >= 24:
        return datetime.combine(day + timedelta(days=1), time(0), zone)
    return datetime.combine(day, time(hours, minutes), zone)


def add_business_minutes(start: datetime, minutes: int, calendar: Calendar) -> datetime | None:
    """The instant `minutes` business minutes after `start` (UTC), or None if the calendar
    never opens."""
    zone = calendar.zone()
    local = start.astimezone(zone)
    day = local.date()
    remaining = timedelta(minutes=minutes)
    for _ in range(MAX_DAYS_AHEAD):
        window = calendar.opening(day)
        if window is not None:
            opens, closes = _at(day, window[0], zone), _at(day, window[1], zone)
            begin = max(opens, local)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(UTC)
                remaining -= available
        day += timedelta(days=1)
    return None


def business_minutes_between(start: datetime, end: datetime, calendar: Calendar) -> int:
    """Whole business minutes in [start, end) on the calendar (0 when end <= start)."""
    if end <= start:
        return 0
    zone = calendar.zone()
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    day, total = local_start.date(), timedelta()
    while day <= local_end.date():
        window = calendar.opening(day)
        if window is not None:
            opens, closes = _at(day, window[0], zone), _at(day, window[1], zone)
            begin, finish = max(opens, local_start), min(closes, local_end)
            if begin < finish:
                total += finish - begin
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)
