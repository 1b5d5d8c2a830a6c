"""Working-time calendars: deadlines and escalations count only the desk's opening hours.

Hours are wall-clock hours in the desk's zone, so each day's window is converted to UTC on its
own with zoneinfo: a 09:00-17:00 day stays 09:00-17:00 on the clock across DST changes, and a
day that spans a change (a 24-hour Sunday, say) is 23 or 25 real hours long. Arithmetic walks
whole days, never minutes, so a deadline months away costs a few hundred cheap steps.

Wall times that do not exist (the hour skipped in spring) are read as the moment the clock
passes them; wall times that happen twice (the hour repeated in autumn) as their first
occurrence. Both readings only move forward as the wall time does, so a window never inverts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A stop of 00:00 means midnight at the end of the day ("24:00"), since a window never ends
# before it starts; always() and hours of "24:00" use it.
END_OF_DAY = time(0, 0)
# With no working moment in this many days in a row the calendar is taken to be closed for
# good: that can only be a calendar whose every day is a holiday, and searching on would loop.
MAX_CLOSED_DAYS = 3 * 366

_CLOCK = re.compile(r"(\d{1,2}):(\d\d)")
_HOLIDAY = re.compile(r"(\d\d)/(\d\d)(?:/(\d{4}))?")
_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Holiday:
    """A closed day: every year on day/month when year is None, else that one date."""

    day: int
    month: int
    year: int | None = None

    def __post_init__(self) -> None:
        # 2000 is a leap year, so 29/02 is a valid yearly holiday (it applies in leap years).
        date(self.year or 2000, self.month, self.day)

    @classmethod
    def parse(cls, text: str) -> Holiday:
        """Read "dd/mm" (every year) or "dd/mm/yyyy" (once)."""
        m = _HOLIDAY.fullmatch(text.strip())
        if m is not None:
            try:
                return cls(int(m[1]), int(m[2]), int(m[3]) if m[3] else None)
            except ValueError:
                pass
        raise ValueError(f'{text!r} is not a date "dd/mm" or "dd/mm/yyyy"')

    def matches(self, d: date) -> bool:
        same_day = d.day == self.day and d.month == self.month
        return same_day and (self.year is None or d.year == self.year)


@dataclass(frozen=True)
class WorkCalendar:
    """When the desk works: weekly wall-clock hours in a zone, minus holidays."""

    tz: ZoneInfo
    hours: Mapping[str, tuple[time, time]]
    """Weekday ("mon".."sun") -> (start, stop); a missing weekday is closed; stop 00:00 = 24:00."""
    holidays: tuple[Holiday, ...] = ()

    def __post_init__(self) -> None:
        for day, (start, stop) in self.hours.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
            if stop != END_OF_DAY and start >= stop:
                raise ValueError(f"{day}: start {start:%H:%M} must be before stop {stop:%H:%M}")
        # Read-only: a hashable calendar must not change while a dict or cache holds it.
        object.__setattr__(self, "hours", MappingProxyType(dict(self.hours)))

    def __hash__(self) -> int:
        return hash((self.tz, tuple(sorted(self.hours.items())), self.holidays))

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_settings(
        cls, tz_name: str, hours: Mapping[str, Sequence[str]], holidays: Sequence[str]
    ) -> WorkCalendar:
        """Build from settings as stored: "HH:MM" pairs, "dd/mm[/yyyy]" holidays.

        No hours at all means around the clock (the settings' own rule), still minus holidays.
        Errors name the entry, e.g. 'hours.mon: start 17:00 must be before stop 09:00'.
        """
        tz = _zone(tz_name)
        parsed: dict[str, tuple[time, time]] = {}
        for day, span in hours.items():
            key = f"hours.{day}"
            if day not in WEEKDAYS:
                raise ValueError(f"{key}: unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
            if isinstance(span, str) or len(span) != 2:
                raise ValueError(f'{key}: expected ["HH:MM", "HH:MM"], got {span!r}')
            start, stop = _minutes(key, span[0], end=False), _minutes(key, span[1], end=True)
            if start >= stop:
                raise ValueError(f"{key}: start {span[0]} must be before stop {span[1]}")
            parsed[day] = (_time(start), _time(stop))
        if not parsed:
            parsed = dict.fromkeys(WEEKDAYS, (time(0, 0), END_OF_DAY))
        closed: list[Holiday] = []
        for i, text in enumerate(holidays, 1):
            try:
                closed.append(Holiday.parse(text))
            except ValueError as exc:
                raise ValueError(f"holidays[{i}]: {exc}") from None
        return cls(tz, parsed, tuple(closed))

    @classmethod
    def always(cls, tz_name: str = "UTC") -> WorkCalendar:
        """Around the clock, every day: working time equals wall time."""
        return cls(_zone(tz_name), dict.fromkeys(WEEKDAYS, (time(0, 0), END_OF_DAY)), ())

    @property
    def around_the_clock(self) -> bool:
        """True when every moment is working time, so arithmetic can skip the calendar."""
        return not self.holidays and all(
            self.hours.get(day) == (time(0, 0), END_OF_DAY) for day in WEEKDAYS
        )

    # ------------------------------------------------------------------ queries

    def is_working(self, at: datetime) -> bool:
        """Whether `at` lies inside a working window (start included, stop excluded)."""
        at = _utc(at)
        if self.around_the_clock:
            return True
        first = at.astimezone(self.tz).date() - _ONE_DAY
        for d in (first, first + _ONE_DAY):
            window = self._window(d)
            if window is not None and window[0] <= at < window[1]:
                return True
        return False

    def next_working_moment(self, at: datetime) -> datetime:
        """`at` itself when inside hours, else the start of the next working window."""
        at = _utc(at)
        if self.around_the_clock:
            return at
        for start, stop in self._windows_from(at):
            if stop > at:
                return max(start, at)
        raise AssertionError("unreachable: _windows_from never ends normally")  # pragma: no cover

    def add_working(self, start: datetime, seconds: float) -> datetime:
        """The moment `seconds` of working time after `start` (0 gives `start` itself).

        A span that fills a window exactly ends at the window's stop (Friday 17:00), not at the
        next opening. Raises ValueError when the calendar never opens (see MAX_CLOSED_DAYS).
        """
        at = _utc(start)
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError(f"working seconds must be finite and not negative, got {seconds}")
        left = timedelta(seconds=seconds)
        if self.around_the_clock or not left:
            return at + left
        for open_at, close_at in self._windows_from(at):
            if close_at <= at:
                continue
            begin = max(open_at, at)
            if left <= close_at - begin:
                return begin + left
            left -= close_at - begin
        raise AssertionError("unreachable: _windows_from never ends normally")  # pragma: no cover

    def working_seconds(self, a: datetime, b: datetime) -> int:
        """Whole working seconds in [a, b); 0 when b <= a."""
        a, b = _utc(a), _utc(b)
        if b <= a:
            return 0
        if self.around_the_clock:
            return (b - a) // _ONE_SECOND
        total = timedelta(0)
        d = a.astimezone(self.tz).date() - _ONE_DAY
        last = b.astimezone(self.tz).date()
        while d <= last:
            window = self._window(d)
            if window is not None:
                lo, hi = max(window[0], a), min(window[1], b)
                if hi > lo:
                    total += hi - lo
            d += _ONE_DAY
        return total // _ONE_SECOND

    # ------------------------------------------------------------------ days

    def is_holiday(self, d: date) -> bool:
        return any(h.matches(d) for h in self.holidays)

    def _window(self, d: date) -> tuple[datetime, datetime] | None:
        """Day d's working window in UTC, or None when closed (or squeezed out by DST)."""
        span = self.hours.get(WEEKDAYS[d.weekday()])
        if span is None or self.is_holiday(d):
            return None
        start, stop = span
        open_at = _wall_to_utc(d, start, self.tz)
        close_at = _wall_to_utc(d + _ONE_DAY if stop == END_OF_DAY else d, stop, self.tz)
        return (open_at, close_at) if close_at > open_at else None

    def _windows_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Windows in order from the day before `at`'s local date; raises if none will come."""
        if not self.hours:
            raise ValueError("the calendar has no working hours on any weekday")
        d = at.astimezone(self.tz).date() - _ONE_DAY
        closed = 0
        while True:
            window = self._window(d)
            if window is not None:
                closed = 0
                yield window
            else:
                closed += 1
                if closed > MAX_CLOSED_DAYS:
                    since = d - (closed - 1) * _ONE_DAY
                    raise ValueError(
                        f"no working hours in {MAX_CLOSED_DAYS} days from {since}: "
                        "every day is closed by holidays"
                    )
            d += _ONE_DAY


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r} (e.g. Europe/Oslo, UTC)") from None


def _minutes(key: str, text: str, *, end: bool) -> int:
    """ "HH:MM" as minutes since midnight; a stop may be "24:00" (1440)."""
    m = _CLOCK.fullmatch(str(text).strip())
    if m is not None:
        minutes = int(m[1]) * 60 + int(m[2])
        if int(m[2]) <= 59 and (minutes < 24 * 60 or (end and minutes == 24 * 60)):
            return minutes
    upper = "24:00" if end else "23:59"
    raise ValueError(f'{key}: {text!r} is not a time "HH:MM" (00:00 to {upper})')


def _time(minutes: int) -> time:
    return END_OF_DAY if minutes == 24 * 60 else time(minutes // 60, minutes % 60)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a tz-aware datetime is needed, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def _wall_to_utc(d: date, t: time, tz: ZoneInfo) -> datetime:
    """The first moment the wall clock in tz shows d t or later."""
    naive = datetime.combine(d, t)
    first = naive.replace(tzinfo=tz)  # fold=0: the first of two readings of a repeated time
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc
    # A skipped time: the two folds straddle the jump; find it to the second (a dozen steps).
    other = first.replace(fold=1).astimezone(UTC)
    lo, hi = int(min(utc, other).timestamp()), int(max(utc, other).timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)
