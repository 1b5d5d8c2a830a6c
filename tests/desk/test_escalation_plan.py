"""Escalation chains planned in working time: levels, stop/continue/restart, DST and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpdesk_tui.desk.escalation_plan import (
    EscalationState,
    LevelSpec,
    PlannedLevel,
    apply_policy,
    counts_in_hours,
    fire_due,
    next_alert_after_fire,
    next_level,
    plan_levels,
    resume_at,
    seconds_left,
    start_chain,
)
from helpdesk_tui.desk.worktime import WorkCalendar

OSLO = ZoneInfo("Europe/Oslo")
OFFICE = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
HOUR = 3600
# The default "Normal" priority: deadline 120 working minutes, then two levels.
LEVELS = (
    LevelSpec(1, 60, ("notify_owner",)),
    LevelSpec(2, 120, ("notify_category", "raise_priority")),
)


def oslo(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=OSLO).astimezone(UTC)


def office(*holidays: str) -> WorkCalendar:
    return WorkCalendar.from_settings("Europe/Oslo", OFFICE, holidays)


# ---------------------------------------------------------------------- planning


def test_friday_ticket_plans_monday_alerts() -> None:
    cal = office()
    created = oslo(2026, 1, 9, 16, 0)  # Friday
    chain = start_chain(created, LEVELS, 120, cal)
    assert chain == EscalationState(0, oslo(2026, 1, 12, 10, 0), None, True)
    assert plan_levels(LEVELS, 0, chain.next_at, cal, only_in_hours=True) == [
        PlannedLevel(1, oslo(2026, 1, 12, 10, 0), ("notify_owner",)),
        PlannedLevel(2, oslo(2026, 1, 12, 11, 0), ("notify_category", "raise_priority")),
    ]


def test_level_minutes_are_the_wait_to_the_next_level() -> None:
    cal = WorkCalendar.always()
    levels = (LevelSpec(1, 15), LevelSpec(2, 30), LevelSpec(3, 999))
    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert [p.at - at for p in plan_levels(levels, 0, at, cal, False)] == [
        timedelta(0),
        timedelta(minutes=15),
        timedelta(minutes=45),
    ]


def test_plan_lists_only_levels_still_to_come() -> None:
    cal = office()
    at = oslo(2026, 1, 12, 10, 0)
    assert plan_levels(LEVELS, 1, at, cal, True) == [
        PlannedLevel(2, at, ("notify_category", "raise_priority"))
    ]
    assert plan_levels(LEVELS, 2, at, cal, True) == []
    assert plan_levels(LEVELS, 0, None, cal, True) == []
    assert plan_levels((), 0, at, cal, True) == []


def test_levels_are_ordered_and_may_skip_numbers() -> None:
    cal = WorkCalendar.always()
    levels = (LevelSpec(5, 10), LevelSpec(1, 20), LevelSpec(3, 30))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    plan = plan_levels(levels, 0, at, cal, False)
    assert [(p.alert_level, p.at - at) for p in plan] == [
        (1, timedelta(0)),
        (3, timedelta(minutes=20)),
        (5, timedelta(minutes=50)),
    ]
    assert next_level(levels, 1) == LevelSpec(3, 30)
    assert next_level(levels, 2) == LevelSpec(3, 30)
    assert next_level(levels, 5) is None


def test_in_hours_or_wall_clock_after_the_first_level() -> None:
    cal = office()
    first = oslo(2026, 1, 9, 16, 30)  # Friday, half an hour before closing
    in_hours = plan_levels(LEVELS, 0, first, cal, only_in_hours=True)
    wall = plan_levels(LEVELS, 0, first, cal, only_in_hours=False)
    assert in_hours[1].at == oslo(2026, 1, 12, 9, 30)
    assert wall[1].at == oslo(2026, 1, 9, 17, 30)


def test_next_alert_after_fire() -> None:
    cal = office()
    fired = oslo(2026, 1, 9, 16, 45)
    assert next_alert_after_fire(LEVELS[0], fired, cal, True) == oslo(2026, 1, 12, 9, 45)
    assert next_alert_after_fire(LEVELS[0], fired, cal, False) == oslo(2026, 1, 9, 17, 45)
    # fired outside hours (the deadline was on the closing bell): counting waits for opening
    closing = oslo(2026, 1, 9, 17, 0)
    assert next_alert_after_fire(LEVELS[0], closing, cal, True) == oslo(2026, 1, 12, 10, 0)


def test_24x7_calendar_plans_in_wall_time() -> None:
    cal = WorkCalendar.always("Europe/Oslo")
    created = oslo(2026, 12, 24, 23, 0)
    chain = start_chain(created, LEVELS, 30, cal)
    assert chain.next_at == oslo(2026, 12, 24, 23, 30)
    plan = plan_levels(LEVELS, 0, chain.next_at, cal, True)
    assert [p.at for p in plan] == [oslo(2026, 12, 24, 23, 30), oslo(2026, 12, 25, 0, 30)]


# ---------------------------------------------------------------------- holidays


def test_yearly_holiday_pushes_the_chain() -> None:
    cal = office("25/12", "26/12")
    created = oslo(2026, 12, 24, 15, 0)  # Thursday; Christmas Day is a Friday
    chain = start_chain(created, LEVELS, 120, cal)
    assert chain.next_at == oslo(2026, 12, 24, 17, 0)
    plan = plan_levels(LEVELS, 0, chain.next_at, cal, True)
    assert plan[1].at == oslo(2026, 12, 28, 10, 0)


def test_dated_holiday_pushes_only_its_year() -> None:
    once = office("17/05/2027")
    assert date(2027, 5, 17).weekday() == 0 and date(2028, 5, 17).weekday() == 2
    assert start_chain(oslo(2027, 5, 14, 16, 0), LEVELS, 120, once).next_at == oslo(
        2027, 5, 18, 10, 0
    )
    assert start_chain(oslo(2028, 5, 16, 16, 0), LEVELS, 120, once).next_at == oslo(
        2028, 5, 17, 10, 0
    )


# ---------------------------------------------------------------------- DST in Europe/Oslo


def test_chain_over_spring_forward_weekend_keeps_wall_clock_hours() -> None:
    cal = office()
    created = oslo(2026, 3, 27, 16, 0)  # Friday CET; clocks go forward on Sunday
    chain = start_chain(created, LEVELS, 120, cal)
    assert chain.next_at == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # Monday 10:00 CEST
    plan = plan_levels(LEVELS, 0, chain.next_at, cal, True)
    assert plan[1].at == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)  # 11:00 CEST


def test_chain_over_fall_back_weekend_keeps_wall_clock_hours() -> None:
    cal = office()
    chain = start_chain(oslo(2026, 10, 23, 16, 30), LEVELS, 120, cal)  # Friday CEST
    assert chain.next_at == datetime(2026, 10, 26, 9, 30, tzinfo=UTC)  # Monday 10:30 CET
    assert chain.next_at.astimezone(OSLO).hour == 10


def test_wall_clock_levels_count_real_time_over_the_repeated_hour() -> None:
    cal = office()
    fired = oslo(2026, 10, 25, 0, 30)  # Sunday 00:30 CEST, before the clocks go back
    due = next_alert_after_fire(LevelSpec(1, 180), fired, cal, only_in_hours=False)
    assert due - fired == timedelta(hours=3)
    assert due.astimezone(OSLO).strftime("%H:%M %Z") == "02:30 CET"  # the second 02:30


def test_24x7_oslo_calendar_over_the_skipped_hour() -> None:
    cal = WorkCalendar.always("Europe/Oslo")
    fired = oslo(2026, 3, 29, 1, 30)
    due = next_alert_after_fire(LevelSpec(1, 60), fired, cal, only_in_hours=True)
    assert due.astimezone(OSLO).strftime("%H:%M %Z") == "03:30 CEST"


def test_round_trips_on_a_calendar_open_on_dst_sundays() -> None:
    hours = {"sun": ["01:00", "04:00"]}
    cal = WorkCalendar.from_settings("Europe/Oslo", hours, [])
    for day in (oslo(2026, 3, 29, 1, 15), oslo(2026, 10, 25, 1, 15)):
        due = resume_at(day, 90 * 60, cal, True)
        assert seconds_left(day, due, cal, True) == 90 * 60


# ---------------------------------------------------------------------- stop and continue


def test_seconds_left_and_resume_round_trip_across_a_weekend() -> None:
    cal = office()
    next_at = oslo(2026, 1, 12, 10, 0)  # Monday 10:00
    stopped = oslo(2026, 1, 9, 16, 30)  # Friday 16:30
    left = seconds_left(stopped, next_at, cal, True)
    assert left == 90 * 60
    assert resume_at(stopped, left, cal, True) == next_at
    # continued on Tuesday morning, the 90 working minutes start again from there
    assert resume_at(oslo(2026, 1, 13, 9, 0), left, cal, True) == oslo(2026, 1, 13, 10, 30)
    # continued on a Sunday: counting starts on Monday's opening
    assert resume_at(oslo(2026, 1, 18, 12, 0), left, cal, True) == oslo(2026, 1, 19, 10, 30)


def test_seconds_left_on_the_wall_clock() -> None:
    cal = office()
    next_at, stopped = oslo(2026, 1, 12, 10, 0), oslo(2026, 1, 9, 16, 30)
    left = seconds_left(stopped, next_at, cal, False)
    assert left == int(65.5 * HOUR)
    assert resume_at(stopped, left, cal, False) == next_at


def test_seconds_left_is_zero_when_already_due() -> None:
    cal = office()
    now = oslo(2026, 1, 12, 12, 0)
    assert seconds_left(now, oslo(2026, 1, 12, 10, 0), cal, True) == 0
    assert seconds_left(now, oslo(2026, 1, 12, 10, 0), cal, False) == 0
    assert resume_at(now, 0, cal, True) == now
    assert resume_at(now, -5, cal, False) == now


def test_the_wait_for_level_one_always_counts_in_hours() -> None:
    assert counts_in_hours(0, only_in_hours=False)
    assert not counts_in_hours(1, only_in_hours=False)
    assert counts_in_hours(1, only_in_hours=True)


def policy(
    name: str, state: EscalationState, now: datetime, *, in_hours: bool = True
) -> EscalationState:
    return apply_policy(
        name,
        state,
        now=now,
        levels=LEVELS,
        deadline_minutes=120,
        calendar=office(),
        only_in_hours=in_hours,
    )


def test_stop_then_continue_spends_the_working_time_kept() -> None:
    running = EscalationState(1, oslo(2026, 1, 12, 10, 0), None, True)
    stopped = policy("stop", running, oslo(2026, 1, 9, 16, 30))
    assert stopped == EscalationState(1, None, 90 * 60, False)
    assert policy("stop", stopped, oslo(2026, 1, 12, 9, 0)) == stopped  # stopping twice
    resumed = policy("continue", stopped, oslo(2026, 1, 13, 9, 0))
    assert resumed == EscalationState(1, oslo(2026, 1, 13, 10, 30), None, True)
    assert policy("continue", resumed, oslo(2026, 1, 13, 9, 30)) == resumed  # already running


def test_before_level_one_the_kept_time_is_working_time_even_on_the_wall_clock() -> None:
    running = EscalationState(0, oslo(2026, 1, 12, 10, 0), None, True)
    stopped = policy("stop", running, oslo(2026, 1, 9, 16, 30), in_hours=False)
    assert stopped.seconds_left == 90 * 60
    # after level one the same stop keeps wall-clock time: Friday 16:30 to Monday 10:00
    after_one = EscalationState(1, oslo(2026, 1, 12, 10, 0), None, True)
    later = policy("stop", after_one, oslo(2026, 1, 9, 16, 30), in_hours=False)
    assert later.seconds_left == int(65.5 * HOUR)


def test_restart_starts_over_with_a_new_deadline() -> None:
    state = EscalationState(2, None, None, False)
    now = oslo(2026, 1, 9, 16, 0)
    assert policy("restart", state, now) == EscalationState(0, oslo(2026, 1, 12, 10, 0), None, True)


def test_restart_without_deadline_or_levels_leaves_no_chain() -> None:
    now = oslo(2026, 1, 9, 16, 0)
    assert start_chain(now, LEVELS, 0, office()) == EscalationState()
    assert start_chain(now, (), 120, office()) == EscalationState()


def test_continue_a_spent_chain_does_nothing() -> None:
    spent = EscalationState(2, None, None, False)
    assert policy("continue", spent, oslo(2026, 1, 13, 9, 0)) == spent
    kept_but_spent = EscalationState(2, None, 600, False)
    assert policy("continue", kept_but_spent, oslo(2026, 1, 13, 9, 0)) == EscalationState(2)


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown escalation policy 'pause'"):
        policy("pause", EscalationState(), oslo(2026, 1, 13, 9, 0))


# ---------------------------------------------------------------------- firing


def test_fire_due_walks_the_chain() -> None:
    cal = office()
    state = start_chain(oslo(2026, 1, 9, 16, 0), LEVELS, 120, cal)
    assert fire_due(state, LEVELS, oslo(2026, 1, 12, 9, 59), cal, True) is None
    fired = fire_due(state, LEVELS, oslo(2026, 1, 12, 10, 0), cal, True)
    assert fired == (LEVELS[0], EscalationState(1, oslo(2026, 1, 12, 11, 0), None, True))
    # a late worker: the next level still gets its full wait from the real firing
    late = fire_due(fired[1], LEVELS, oslo(2026, 1, 12, 16, 30), cal, True)
    assert late == (LEVELS[1], EscalationState(2))
    assert fire_due(late[1], LEVELS, oslo(2026, 1, 20, 12, 0), cal, True) is None


def test_a_stopped_chain_never_fires() -> None:
    cal = office()
    stopped = EscalationState(0, None, 600, False)
    assert fire_due(stopped, LEVELS, oslo(2026, 1, 20, 12, 0), cal, True) is None


# ---------------------------------------------------------------------- long deadlines


def test_ten_working_day_deadline_is_computed_by_days(monkeypatch: pytest.MonkeyPatch) -> None:
    days: list[date] = []
    original = WorkCalendar._window

    def counting(self: WorkCalendar, d: date) -> tuple[datetime, datetime] | None:
        days.append(d)
        return original(self, d)

    monkeypatch.setattr(WorkCalendar, "_window", counting)
    cal = office("25/12", "26/12", "01/01")
    chain = start_chain(oslo(2026, 12, 18, 12, 0), LEVELS, 10 * 8 * 60, cal)
    # Fri 18 Dec 12:00 + 80 working hours: 5h that day, then 21-24 and 28-31 December and
    # Monday 4 January (Christmas Day and New Year's Day are Fridays), leaving 3h on the 5th
    assert chain.next_at == oslo(2027, 1, 5, 12, 0)
    assert len(days) < 25
    plan = plan_levels(LEVELS, 0, chain.next_at, cal, True)
    assert plan[1].at == oslo(2027, 1, 5, 13, 0)
