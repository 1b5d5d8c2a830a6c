"""Working-time arithmetic: office hours, weekends, holidays, DST both ways, closed calendars."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpdesk_tui.desk.worktime import MAX_CLOSED_DAYS, WEEKDAYS, Holiday, WorkCalendar

OSLO = ZoneInfo("Europe/Oslo")
OFFICE = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
HOUR = 3600


def oslo(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    """A wall time in Oslo as tz-aware UTC, the form the calendar takes and gives."""
    return datetime(year, month, day, hour, minute, sec, tzinfo=OSLO).astimezone(UTC)


def office(*holidays: str) -> WorkCalendar:
    return WorkCalendar.from_settings("Europe/Oslo", OFFICE, holidays)


# ---------------------------------------------------------------------- the documented example


def test_friday_afternoon_plus_two_hours_is_monday_ten() -> None:
    cal = office()
    friday = oslo(2026, 1, 9, 16, 0)
    assert friday.astimezone(OSLO).weekday() == 4
    due = cal.add_working(friday, 120 * 60)
    assert due == oslo(2026, 1, 12, 10, 0)
    assert due.tzinfo is UTC
    assert cal.working_seconds(friday, due) == 2 * HOUR


def test_a_span_that_fills_the_day_ends_at_closing_not_next_opening() -> None:
    assert office().add_working(oslo(2026, 1, 9, 16, 0), HOUR) == oslo(2026, 1, 9, 17, 0)


def test_registered_at_night_starts_counting_at_opening() -> None:
    cal = office()
    assert cal.add_working(oslo(2026, 1, 6, 22, 30), 30 * 60) == oslo(2026, 1, 7, 9, 30)
    assert cal.add_working(oslo(2026, 1, 10, 12, 0), 30 * 60) == oslo(2026, 1, 12, 9, 30)  # sat


def test_zero_seconds_is_the_start_itself() -> None:
    at = oslo(2026, 1, 10, 12, 0)
    assert office().add_working(at, 0) == at


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_negative_or_odd_seconds_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="working seconds"):
        office().add_working(oslo(2026, 1, 9, 10, 0), bad)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        office().is_working(datetime(2026, 1, 9, 10, 0))


def test_any_aware_zone_in_utc_out() -> None:
    cal = office()
    local = datetime(2026, 1, 9, 16, 0, tzinfo=OSLO)
    assert cal.add_working(local, 7200) == oslo(2026, 1, 12, 10, 0)
    assert cal.add_working(local, 7200).utcoffset() == timedelta(0)


# ---------------------------------------------------------------------- queries


def test_is_working_includes_opening_and_excludes_closing() -> None:
    cal = office()
    assert cal.is_working(oslo(2026, 1, 9, 9, 0))
    assert cal.is_working(oslo(2026, 1, 9, 16, 59, 59))
    assert not cal.is_working(oslo(2026, 1, 9, 17, 0))
    assert not cal.is_working(oslo(2026, 1, 9, 8, 59))
    assert not cal.is_working(oslo(2026, 1, 10, 12, 0))  # saturday


def test_next_working_moment() -> None:
    cal = office()
    inside = oslo(2026, 1, 9, 10, 15, 7)
    assert cal.next_working_moment(inside) == inside
    assert cal.next_working_moment(oslo(2026, 1, 9, 17, 0)) == oslo(2026, 1, 12, 9, 0)
    assert cal.next_working_moment(oslo(2026, 1, 11, 23, 59)) == oslo(2026, 1, 12, 9, 0)


def test_working_seconds_over_a_week_and_backwards() -> None:
    cal = office()
    monday, next_monday = oslo(2026, 1, 5, 0, 0), oslo(2026, 1, 12, 0, 0)
    assert cal.working_seconds(monday, next_monday) == 5 * 8 * HOUR
    assert cal.working_seconds(next_monday, monday) == 0
    assert cal.working_seconds(monday, monday) == 0
    # partial windows at both ends, whole seconds only
    a = oslo(2026, 1, 9, 16, 30) + timedelta(microseconds=400_000)
    assert cal.working_seconds(a, oslo(2026, 1, 12, 9, 15)) == 30 * 60 + 15 * 60 - 1


def test_add_and_count_agree_from_many_starts() -> None:
    cal = office("25/12", "01/01")
    start = oslo(2026, 12, 20, 0, 0)
    for step in range(0, 14 * 24, 5):
        at = start + timedelta(hours=step, minutes=7 * step)
        for seconds in (1, 59 * 60, 8 * HOUR, 8 * HOUR + 1, 23 * HOUR):
            due = cal.add_working(at, seconds)
            assert cal.working_seconds(at, due) == seconds
            assert cal.working_seconds(at, due - timedelta(seconds=1)) == seconds - 1


# ---------------------------------------------------------------------- holidays


def test_a_yearly_holiday_is_skipped_every_year() -> None:
    cal = office("25/12", "26/12")
    thursday = oslo(2026, 12, 24, 16, 0)
    assert date(2026, 12, 25).weekday() == 4
    assert cal.add_working(thursday, 2 * HOUR) == oslo(2026, 12, 28, 10, 0)
    assert date(2028, 12, 25).weekday() == 0
    assert cal.add_working(oslo(2028, 12, 22, 16, 30), HOUR) == oslo(2028, 12, 27, 9, 30)


def test_a_dated_holiday_is_skipped_only_that_year() -> None:
    once = office("17/05/2027")
    yearly = office("17/05")
    assert date(2027, 5, 17).weekday() == 0
    friday_2027 = oslo(2027, 5, 14, 16, 0)
    assert once.add_working(friday_2027, 2 * HOUR) == oslo(2027, 5, 18, 10, 0)
    assert date(2028, 5, 17).weekday() == 2
    tuesday_2028 = oslo(2028, 5, 16, 16, 0)
    assert once.add_working(tuesday_2028, 2 * HOUR) == oslo(2028, 5, 17, 10, 0)
    assert yearly.add_working(tuesday_2028, 2 * HOUR) == oslo(2028, 5, 18, 10, 0)


def test_leap_day_holiday_applies_in_leap_years() -> None:
    cal = office("29/02")
    assert cal.is_holiday(date(2028, 2, 29))
    assert cal.working_seconds(oslo(2028, 2, 29, 0, 0), oslo(2028, 3, 1, 0, 0)) == 0
    assert cal.working_seconds(oslo(2027, 2, 26, 0, 0), oslo(2027, 3, 1, 0, 0)) == 8 * HOUR


def test_holiday_parsing() -> None:
    assert Holiday.parse("25/12") == Holiday(25, 12, None)
    assert Holiday.parse("17/05/2027") == Holiday(17, 5, 2027)
    for bad in ("31/02", "29/02/2027", "1/1", "25-12", "00/01", "25/13", ""):
        with pytest.raises(ValueError, match="is not a date"):
            Holiday.parse(bad)


# ---------------------------------------------------------------------- DST in Europe/Oslo


def test_dst_days_are_sundays_in_2026() -> None:
    assert date(2026, 3, 29).weekday() == 6
    assert date(2026, 10, 25).weekday() == 6


def test_office_hours_across_spring_forward_weekend() -> None:
    cal = office()
    friday = oslo(2026, 3, 27, 16, 0)  # CET, 15:00 UTC
    due = cal.add_working(friday, 2 * HOUR)
    assert due == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # Monday 10:00 CEST
    assert due.astimezone(OSLO).hour == 10


def test_office_hours_across_fall_back_weekend() -> None:
    cal = office()
    due = cal.add_working(oslo(2026, 10, 23, 16, 0), 2 * HOUR)  # CEST, 14:00 UTC
    assert due == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)  # Monday 10:00 CET


def sunday(start: str, stop: str) -> WorkCalendar:
    return WorkCalendar.from_settings("Europe/Oslo", {"sun": [start, stop]}, [])


def test_whole_sunday_is_23_hours_in_spring_and_25_in_autumn() -> None:
    cal = sunday("00:00", "24:00")
    assert cal.working_seconds(oslo(2026, 3, 28), oslo(2026, 3, 31)) == 23 * HOUR
    assert cal.working_seconds(oslo(2026, 10, 24), oslo(2026, 10, 27)) == 25 * HOUR
    assert cal.working_seconds(oslo(2026, 6, 6), oslo(2026, 6, 9)) == 24 * HOUR


def test_wall_clock_span_over_the_skipped_hour() -> None:
    cal = sunday("01:00", "04:00")  # 02:00-03:00 does not exist on 29 March
    day = oslo(2026, 3, 29, 0, 0)
    assert cal.working_seconds(day, day + timedelta(days=1)) == 2 * HOUR
    assert cal.add_working(day, 90 * 60) == oslo(2026, 3, 29, 3, 30)
    assert cal.add_working(day, 2 * HOUR) == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)  # 04:00


def test_opening_in_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    cal = sunday("02:30", "05:00")
    day = oslo(2026, 3, 29, 0, 0)
    # the clock goes 01:59:59 CET -> 03:00 CEST at 01:00 UTC; 02:30 is passed at that moment
    assert cal.next_working_moment(day) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert cal.working_seconds(day, day + timedelta(days=1)) == 2 * HOUR
    assert not cal.is_working(datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC))
    assert cal.is_working(datetime(2026, 3, 29, 1, 0, tzinfo=UTC))


def test_a_window_inside_the_skipped_hour_is_closed_that_day() -> None:
    cal = sunday("02:10", "02:50")
    day = oslo(2026, 3, 29, 0, 0)
    assert cal.working_seconds(day, day + timedelta(days=1)) == 0
    assert cal.next_working_moment(day) == oslo(2026, 4, 5, 2, 10)


def test_wall_clock_span_over_the_repeated_hour() -> None:
    cal = sunday("01:00", "04:00")  # 02:00-03:00 happens twice on 25 October
    day = oslo(2026, 10, 25, 0, 0)
    assert cal.working_seconds(day, day + timedelta(days=1)) == 4 * HOUR
    assert cal.add_working(day, 4 * HOUR) == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)  # 04:00 CET


def test_repeated_times_are_read_as_their_first_occurrence() -> None:
    cal = sunday("02:30", "03:30")
    day = oslo(2026, 10, 25, 0, 0)
    # 02:30 CEST is 00:30 UTC; 03:30 CET is 02:30 UTC
    assert cal.next_working_moment(day) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert cal.working_seconds(day, day + timedelta(days=1)) == 2 * HOUR


def test_working_hours_on_dst_sundays_in_a_24x7_oslo_calendar() -> None:
    cal = WorkCalendar.always("Europe/Oslo")
    a = oslo(2026, 3, 28, 12, 0)
    assert cal.add_working(a, 24 * HOUR) == a + timedelta(hours=24)
    assert cal.working_seconds(a, a + timedelta(days=2)) == 48 * HOUR


def test_dst_does_not_break_round_trips_with_hours_every_day() -> None:
    hours = {day: ["01:30", "03:30"] for day in WEEKDAYS}
    cal = WorkCalendar.from_settings("Europe/Oslo", hours, [])
    for day in (date(2026, 3, 28), date(2026, 10, 24)):
        start = oslo(day.year, day.month, day.day, 0, 0)
        for minutes in range(0, 6 * 60, 13):
            at = start + timedelta(minutes=minutes)
            for seconds in (60, HOUR, 2 * HOUR, 3 * HOUR):
                due = cal.add_working(at, seconds)
                assert cal.working_seconds(at, due) == seconds


# ---------------------------------------------------------------------- 24x7 and closed


def test_always_is_wall_time() -> None:
    cal = WorkCalendar.always()
    at = datetime(2026, 12, 25, 23, 0, tzinfo=UTC)
    assert cal.around_the_clock
    assert cal.is_working(at)
    assert cal.next_working_moment(at) == at
    assert cal.add_working(at, 3 * HOUR) == at + timedelta(hours=3)
    assert cal.working_seconds(at, at + timedelta(days=3)) == 3 * 24 * HOUR


def test_no_hours_in_settings_means_around_the_clock() -> None:
    cal = WorkCalendar.from_settings("Europe/Oslo", {}, [])
    assert cal.around_the_clock
    assert cal == WorkCalendar.always("Europe/Oslo")


def test_no_hours_with_holidays_is_around_the_clock_except_holidays() -> None:
    cal = WorkCalendar.from_settings("Europe/Oslo", {}, ["25/12"])
    assert not cal.around_the_clock
    assert cal.add_working(oslo(2026, 12, 24, 23, 0), 2 * HOUR) == oslo(2026, 12, 26, 1, 0)


def test_a_calendar_without_hours_raises_instead_of_looping() -> None:
    cal = WorkCalendar(OSLO, {}, ())
    with pytest.raises(ValueError, match="no working hours"):
        cal.add_working(oslo(2026, 1, 9, 10, 0), 60)
    with pytest.raises(ValueError, match="no working hours"):
        cal.next_working_moment(oslo(2026, 1, 9, 10, 0))
    assert not cal.is_working(oslo(2026, 1, 9, 10, 0))
    assert cal.working_seconds(oslo(2026, 1, 1), oslo(2027, 1, 1)) == 0


def test_a_calendar_closed_every_day_by_holidays_raises() -> None:
    every_day = [f"{d:%d/%m}" for d in (date(2028, 1, 1) + timedelta(n) for n in range(366))]
    cal = WorkCalendar.from_settings("Europe/Oslo", OFFICE, every_day)
    with pytest.raises(ValueError, match=f"no working hours in {MAX_CLOSED_DAYS} days"):
        cal.add_working(oslo(2026, 1, 9, 10, 0), 60)


def test_a_long_closure_that_ends_is_crossed() -> None:
    closed_2026 = [f"{d:%d/%m/%Y}" for d in (date(2026, 1, 1) + timedelta(n) for n in range(365))]
    cal = WorkCalendar.from_settings("Europe/Oslo", OFFICE, closed_2026)
    assert cal.add_working(oslo(2026, 1, 2, 10, 0), HOUR) == oslo(2027, 1, 1, 10, 0)


# ---------------------------------------------------------------------- efficiency


@pytest.fixture
def window_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[date]]:
    """Records each day the calendar looks at, to prove arithmetic walks days, not minutes."""
    calls: list[date] = []
    original = WorkCalendar._window

    def counting(self: WorkCalendar, d: date) -> tuple[datetime, datetime] | None:
        calls.append(d)
        return original(self, d)

    monkeypatch.setattr(WorkCalendar, "_window", counting)
    yield calls


def test_ten_working_days_walk_about_two_weeks_of_days(window_calls: list[date]) -> None:
    cal = office("25/12", "26/12", "01/01")
    start = oslo(2026, 12, 21, 9, 0)  # Monday, across Christmas and New Year
    due = cal.add_working(start, 10 * 8 * HOUR)
    # 21-24 and 28-31 December, then 4-5 January: Christmas Day and New Year's Day are Fridays
    assert due == oslo(2027, 1, 5, 17, 0)
    assert len(window_calls) < 20


def test_thirty_days_of_working_minutes_walk_days(window_calls: list[date]) -> None:
    cal = office()
    start = oslo(2026, 1, 5, 9, 0)
    due = cal.add_working(start, 30 * 8 * 60 * 60)
    assert due == oslo(2026, 2, 13, 17, 0)  # six weeks of five days
    assert len(window_calls) < 45
    window_calls.clear()
    assert cal.working_seconds(start, due) == 30 * 8 * HOUR
    assert len(window_calls) < 45


# ---------------------------------------------------------------------- settings


def test_from_settings_parses_and_names_the_weekdays() -> None:
    cal = WorkCalendar.from_settings(
        "Europe/Oslo", {"mon": ("8:00", "16:30"), "sat": ["10:00", "24:00"]}, ["25/12"]
    )
    assert cal.tz == OSLO
    assert dict(cal.hours) == {"mon": (time(8, 0), time(16, 30)), "sat": (time(10, 0), time(0))}
    assert cal.holidays == (Holiday(25, 12),)


def test_calendars_compare_and_hash_by_value() -> None:
    assert office("25/12") == office("25/12")
    assert hash(office("25/12")) == hash(office("25/12"))
    assert office("25/12") != office("26/12")
    assert len({office(), office(), WorkCalendar.always()}) == 2


@pytest.mark.parametrize(
    ("tz", "hours", "holidays", "message"),
    [
        ("Mars/Olympus", {}, [], "unknown time zone 'Mars/Olympus'"),
        ("", {}, [], "unknown time zone ''"),
        ("UTC", {"monday": ["09:00", "17:00"]}, [], "hours.monday: unknown weekday 'monday'"),
        ("UTC", {"mon": ["09:00"]}, [], r'hours.mon: expected \["HH:MM", "HH:MM"\]'),
        ("UTC", {"mon": "09:00-17:00"}, [], r'hours.mon: expected \["HH:MM", "HH:MM"\]'),
        ("UTC", {"tue": ["9am", "17:00"]}, [], "hours.tue: '9am' is not a time"),
        ("UTC", {"tue": ["09:00", "25:00"]}, [], "hours.tue: '25:00' is not a time"),
        ("UTC", {"tue": ["24:00", "24:00"]}, [], r"hours.tue: '24:00' is not a time .*23:59"),
        ("UTC", {"wed": ["17:00", "09:00"]}, [], "hours.wed: start 17:00 must be before stop"),
        ("UTC", {"wed": ["09:00", "09:00"]}, [], "hours.wed: start 09:00 must be before stop"),
        ("UTC", {"wed": ["09:00", "00:00"]}, [], "hours.wed: start 09:00 must be before stop"),
        ("UTC", OFFICE, ["25/12", "31/11"], r"holidays\[2\]: '31/11' is not a date"),
        ("UTC", OFFICE, ["2026-12-25"], r"holidays\[1\]: '2026-12-25' is not a date"),
    ],
)
def test_from_settings_errors_are_precise(
    tz: str, hours: dict[str, list[str]], holidays: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WorkCalendar.from_settings(tz, hours, holidays)


def test_direct_construction_checks_hours() -> None:
    with pytest.raises(ValueError, match="unknown weekday"):
        WorkCalendar(OSLO, {"xyz": (time(9), time(17))})
    with pytest.raises(ValueError, match="before stop"):
        WorkCalendar(OSLO, {"mon": (time(17), time(9))})
