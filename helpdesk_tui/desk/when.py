"""Time phrases agents type: "monday 9:00", "tomorrow", "in 2 days", "2026-12-01 08:30".

Hand-written because the phrases are few and must resolve in the desk's zone with an injected
clock; dateparser would pull in a large dependency and guesses too freely for deadlines.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_UNITS = {
    "m": "minutes",
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
}
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


def parse_when(
    text: str, now: datetime, tz: ZoneInfo, *, default_time: time = time(9, 0)
) -> datetime:
    """Resolve a phrase to tz-aware UTC, relative to `now`, in the desk's zone."""
    phrase = " ".join(text.strip().lower().split())
    if not phrase:
        raise WhenError("empty time")
    local = now.astimezone(tz)
    m = _REL.match(phrase)
    if m and m[2] in _UNITS:
        delta = timedelta(**{_UNITS[m[2]]: int(m[1])})
        return (now - delta) if m[3] else (now + delta)
    if phrase == "now":
        return now
    words = phrase.split(" ")
    head, rest = words[0], " ".join(words[1:])
    clock = _clock(rest) if rest else default_time
    if head in ("today", "tonight"):
        return _at(local.date(), clock if rest else time(17, 0), tz)
    if head == "tomorrow":
        return _at(local.date() + timedelta(days=1), clock, tz)
    if head == "yesterday":
        return _at(local.date() - timedelta(days=1), clock, tz)
    name = next((d for d in WEEKDAYS if len(head) >= 3 and d.startswith(head)), None)
    if name:
        ahead = (WEEKDAYS.index(name) - local.weekday()) % 7 or 7
        return _at(local.date() + timedelta(days=ahead), clock, tz)
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
        candidate = _at(local.date(), _clock(phrase), tz)
        return candidate if candidate > now else candidate + timedelta(days=1)
    raise WhenError(
        f"cannot read {text!r}: try 'tomorrow 9:00', 'monday', 'in 2 days', '3h', "
        "'2026-12-01 08:30' or '2 days ago'"
    )
