"""Escalation chains as pure arithmetic, so the engine and the timeline agree to the second.

The chain: level 1 fires at the ticket's first alert time (its deadline, counted in working
time); after level k fires, the next level up fires level k's `minutes` later, in working time
when the priority escalates only in hours, else on the wall clock. The last level's minutes
start nothing. Events (read, reassigned, closed...) stop, continue or restart the chain;
stopping keeps the time that was left, and continuing spends it from the moment of resuming.

The wait for level 1 is the deadline itself, which always counts in working time, so a stopped
chain that has not fired yet keeps and spends working seconds whatever `only_in_hours` says
(see counts_in_hours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from helpdesk_tui.desk.worktime import WorkCalendar

POLICIES = ("stop", "continue", "restart")


@dataclass(frozen=True)
class LevelSpec:
    """One escalation level as the planner needs it: when, relative to the last, and what."""

    alert_level: int
    minutes: int
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedLevel:
    """A level still to come and the moment (tz-aware UTC) it is due."""

    alert_level: int
    at: datetime
    actions: tuple[str, ...]


@dataclass(frozen=True)
class EscalationState:
    """The chain as a ticket stores it (alert_level, next_alert_at, seconds_left, running)."""

    alert_level: int = 0
    next_at: datetime | None = None
    seconds_left: int | None = None
    running: bool = False


def counts_in_hours(current_level: int, only_in_hours: bool) -> bool:
    """Whether the wait after `current_level` counts working time: always before level 1."""
    return only_in_hours or current_level == 0


def _after(start: datetime, seconds: float, calendar: WorkCalendar, in_hours: bool) -> datetime:
    if in_hours:
        return calendar.add_working(start, seconds)
    return start + timedelta(seconds=seconds)


def _ordered(levels: Sequence[LevelSpec]) -> list[LevelSpec]:
    return sorted(levels, key=lambda lv: lv.alert_level)


def next_level(levels: Sequence[LevelSpec], current_level: int) -> LevelSpec | None:
    """The lowest level above `current_level`, or None when the chain is spent."""
    return next((lv for lv in _ordered(levels) if lv.alert_level > current_level), None)


def next_alert_after_fire(
    level: LevelSpec, fired_at: datetime, calendar: WorkCalendar, only_in_hours: bool
) -> datetime:
    """When the level above `level` is due, `level` having fired at `fired_at`."""
    return _after(fired_at, level.minutes * 60, calendar, only_in_hours)


def plan_levels(
    levels: Sequence[LevelSpec],
    current_level: int,
    next_at: datetime | None,
    calendar: WorkCalendar,
    only_in_hours: bool,
) -> list[PlannedLevel]:
    """The levels above `current_level` with their due times; none when the chain is stopped.

    Later levels are planned as if each fired on time; a late worker shifts them by its delay.
    """
    if next_at is None:
        return []
    plan: list[PlannedLevel] = []
    at, previous = next_at, None
    for level in (lv for lv in _ordered(levels) if lv.alert_level > current_level):
        if previous is not None:
            at = next_alert_after_fire(previous, at, calendar, only_in_hours)
        plan.append(PlannedLevel(level.alert_level, at, level.actions))
        previous = level
    return plan


def seconds_left(
    now: datetime, next_at: datetime, calendar: WorkCalendar, only_in_hours: bool
) -> int:
    """What remains of the wait when a chain stops at `now` (0 if already due)."""
    if only_in_hours:
        return calendar.working_seconds(now, next_at)
    return max(0, (next_at - now) // timedelta(seconds=1))


def resume_at(
    now: datetime, seconds_left: int, calendar: WorkCalendar, only_in_hours: bool
) -> datetime:
    """When a chain stopped with `seconds_left` to go is due again, continued at `now`."""
    return _after(now, max(0, seconds_left), calendar, only_in_hours)


def start_chain(
    now: datetime, levels: Sequence[LevelSpec], deadline_minutes: int, calendar: WorkCalendar
) -> EscalationState:
    """A fresh chain from `now`: level 1 due at the deadline, if there is a deadline and a level."""
    if deadline_minutes <= 0 or not levels:
        return EscalationState()
    return EscalationState(0, calendar.add_working(now, deadline_minutes * 60), None, True)


def apply_policy(
    policy: str,
    state: EscalationState,
    *,
    now: datetime,
    levels: Sequence[LevelSpec],
    deadline_minutes: int,
    calendar: WorkCalendar,
    only_in_hours: bool,
) -> EscalationState:
    """The chain after an event whose policy is stop, continue or restart.

    stop keeps the time left (a stopped chain stays as it is); continue resumes a stopped
    chain from what it kept (a running or spent chain stays as it is); restart starts over
    from level 0 with a new deadline.
    """
    if policy == "restart":
        return start_chain(now, levels, deadline_minutes, calendar)
    in_hours = counts_in_hours(state.alert_level, only_in_hours)
    if policy == "stop":
        if not state.running or state.next_at is None:
            return replace(state, running=False, next_at=None)
        left = seconds_left(now, state.next_at, calendar, in_hours)
        return EscalationState(state.alert_level, None, left, False)
    if policy == "continue":
        if state.running or state.seconds_left is None:
            return state
        if next_level(levels, state.alert_level) is None:
            return EscalationState(state.alert_level)
        due = resume_at(now, state.seconds_left, calendar, in_hours)
        return EscalationState(state.alert_level, due, None, True)
    raise ValueError(f"unknown escalation policy {policy!r}; use {', '.join(POLICIES)}")


def fire_due(
    state: EscalationState,
    levels: Sequence[LevelSpec],
    now: datetime,
    calendar: WorkCalendar,
    only_in_hours: bool,
) -> tuple[LevelSpec, EscalationState] | None:
    """The level that is due at `now` and the chain after it fires, or None if none is due.

    One level per call: a worker that was away fires overdue levels one tick at a time, and
    each next level waits its full minutes from the real firing, so people get the time the
    settings promise to react to an alert.
    """
    if not state.running or state.next_at is None or now < state.next_at:
        return None
    level = next_level(levels, state.alert_level)
    if level is None:
        return None
    if next_level(levels, level.alert_level) is None:
        return level, EscalationState(level.alert_level)
    due = next_alert_after_fire(level, now, calendar, only_in_hours)
    return level, EscalationState(level.alert_level, due, None, True)
