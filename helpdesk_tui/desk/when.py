"""Time phrases agents type: "monday 9:00", "tomorrow", "in 2 days", "2026-12-01 08:30".

Hand-written because the phrases are few and must resolve in the desk's zone with an injected
clock; dateparser would pull in a large dependency and guesses too freely for deadlines.

A phrase is read forward (a deadline, a postpone: "monday" is the next one) or, for a search,
looking back (`past=True`: "monday" is the last one and "2 days ago" is that whole day).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_UNITS = {
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
    "w": "weeks",
    "week": "weeks",
    "weeks": "weeks",
    "mo": "months",
    "month": "months",
    "months": "months",
}
# Hours and minutes are spans of the clock; days and longer are days of the calendar.
_CLOCK_UNITS = ("minutes", "hours")
_REL = re.compile(r"^(?:in\s+)?(\d+)\s*([a-z]+)(\s+ago)?$")
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")


class WhenError(ValueError):
    """The phrase was not understood; the message lists what is."""


def _clock(text: str) -> time:
    m = _CLOCK.match(text)
    if not m or int(m[1]) > 23 or int(m[2] or 0) > 59:
        raise WhenError(f"not a time of day: {text!r} (use HH:MM)")
    return time(int(m[1]), int(m[2] or 0))


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def shift_months(day: date, months: int) -> date:
    """The same day of the month `months` later (or earlier), clamped to the month's end."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def add_months(moment: datetime, months: int, tz: ZoneInfo) -> datetime:
    """Same wall-clock time `months` later in the desk's zone, the day clamped to the month."""
    local = moment.astimezone(tz)
    return datetime.combine(shift_months(local.date(), months), local.timetz()).astimezone(UTC)


def _unit(name: str, past: bool) -> str | None:
    if name == "m":
        # A month in a search, as Gmail's newer_than:1m and postpone's 1m preset; a deadline
        # typed as "in 5m" meant five minutes until "m" was a month, so there it is refused.
        if past:
            return "months"
        raise WhenError("'m' could be minutes or months: write 90min, 2h, 30d or 1mo")
    return _UNITS.get(name)


def _relative(
    n: int, unit: str, now: datetime, tz: ZoneInfo, default_time: time, past: bool
) -> datetime:
    if unit in _CLOCK_UNITS:
        return now + timedelta(**{unit: n})
    local = now.astimezone(tz)
    if past:
        # "2 days ago" in a search is that day, from its start in the desk's zone.
        if unit == "months":
            return _at(shift_months(local.date(), n), default_time, tz)
        return _at(local.date() + timedelta(**{unit: n}), default_time, tz)
    if unit == "months":
        return add_months(now, n, tz)
    return now + timedelta(**{unit: n})


def _weekday(
    index: int,
    direction: str,
    clock: time,
    now: datetime,
    tz: ZoneInfo,
    past: bool,
) -> datetime:
    local = now.astimezone(tz)
    today = local.date()
    if direction == "last":  # before today
        return _at(today - timedelta(days=(local.weekday() - index) % 7 or 7), clock, tz)
    if direction == "next" or not past:  # after today
        return _at(today + timedelta(days=(index - local.weekday()) % 7 or 7), clock, tz)
    # Looking back: the most recent one, today's if its time has come.
    day = today - timedelta(days=(local.weekday() - index) % 7)
    moment = _at(day, clock, tz)
    return moment if moment <= now else _at(day - timedelta(days=7), clock, tz)


def parse_when(
    text: str,
    now: datetime,
    tz: ZoneInfo,
    *,
    default_time: time = time(9, 0),
    past: bool = False,
) -> datetime:
    """Resolve a phrase to tz-aware UTC, relative to `now`, in the desk's zone.

    `default_time` is the time of a phrase that names only a day. `past` reads the phrase as a
    search does: "monday" and "9:00" are the last ones, "2 days ago" and "1 month ago" name a
    day (at `default_time`), and "1m" is a month; "3h ago" stays three hours ago.
    """
    phrase = " ".join(text.strip().lower().split())
    if not phrase:
        raise WhenError("empty time")
    local = now.astimezone(tz)
    m = _REL.match(phrase)
    if m:
        unit = _unit(m[2], past)
        if unit is not None:
            n = -int(m[1]) if m[3] else int(m[1])
            return _relative(n, unit, now, tz, default_time, past)
    if phrase == "now":
        return now
    words = phrase.split(" ")
    direction = ""
    if words[0] in ("last", "next") and len(words) > 1:
        direction, words = words[0], words[1:]
    head, rest = words[0], " ".join(words[1:])
    clock = _clock(rest) if rest else default_time
    name = next((d for d in WEEKDAYS if len(head) >= 3 and d.startswith(head)), None)
    if direction and name is None:
        raise WhenError(f"'{direction}' takes a weekday: '{direction} monday', '{direction} fri'")
    if name:
        return _weekday(WEEKDAYS.index(name), direction, clock, now, tz, past)
    if head == "today":
        return _at(local.date(), clock if rest or past else time(17, 0), tz)
    if head == "tonight":
        return _at(local.date(), clock if rest else time(17, 0), tz)
    if head == "tomorrow":
        return _at(local.date() + timedelta(days=1), clock, tz)
    if head == "yesterday":
        return _at(local.date() - timedelta(days=1), clock, tz)
    try:
        parsed = datetime.fromisoformat(
            phrase.replace(" ", "T", 1) if len(words) == 2 and "-" in head else phrase
        )
    except ValueError:
        parsed = None
    if parsed is not None:
        if parsed.tzinfo is None:
            if len(phrase) == 10:
                parsed = datetime.combine(parsed.date(), default_time)
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(UTC)
    if _CLOCK.match(phrase):
        at = _clock(phrase)
        today = _at(local.date(), at, tz)
        if past:  # the last time the clock showed it
            return today if today <= now else _at(local.date() - timedelta(days=1), at, tz)
        return today if today > now else _at(local.date() + timedelta(days=1), at, tz)
    raise WhenError(
        f"cannot read {text!r}: try 'tomorrow 9:00', 'monday', 'in 2 days', '3h', "
        "'2026-12-01 08:30' or '2 days ago'"
    )
