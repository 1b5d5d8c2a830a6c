"""The escalation engine on a real store: policies, the worker's tick, scripts, the timeline."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import (
    DEFAULT_POLICIES,
    CategoryConfig,
    LevelConfig,
    PriorityConfig,
    default_config,
)
from helpdesk_tui.desk import escalation
from helpdesk_tui.desk.errors import InvalidAction, NotFound
from helpdesk_tui.desk.escalation_plan import POLICIES
from helpdesk_tui.desk.service import Desk, DeskOptions
from helpdesk_tui.desk.setup import apply_config
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store, open_store
from tests.conftest import T0

OFFICE = {d: ("09:00", "17:00") for d in ("mon", "tue", "wed", "thu", "fri")}
LEVELS = (
    LevelConfig(1, 60, ("notify_owner",)),
    LevelConfig(2, 120, ("notify_category", "raise_priority")),
)
OSLO = ZoneInfo("Europe/Oslo")
CUSTOMER = "carla@customer.example"


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, sec, tzinfo=UTC)


def oslo(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=OSLO).astimezone(UTC)


def prio(
    name: str = "Normal",
    rank: int = 1,
    deadline: int = 120,
    levels: tuple[LevelConfig, ...] = LEVELS,
    *,
    on: dict[str, str] | None = None,
    hours: dict[str, tuple[str, str]] | None = None,
    holidays: tuple[str, ...] = (),
    only_in_hours: bool = True,
) -> PriorityConfig:
    return PriorityConfig(
        name,
        rank,
        deadline,
        hours=OFFICE if hours is None else hours,
        holidays=holidays,
        escalate_only_in_hours=only_in_hours,
        on={**DEFAULT_POLICIES, **(on or {})},
        levels=levels,
    )


def configure(store: Store, *priorities: PriorityConfig, members: tuple[str, ...] = ()) -> None:
    """The default desk with some priorities replaced (by name) and Support's agents set."""
    base = default_config()
    mine = {p.name: p for p in priorities}
    merged = tuple(mine.pop(p.name, p) for p in base.priorities) + tuple(mine.values())
    support = CategoryConfig("Support", default_priority="Normal", agents=members)
    apply_config(store, replace(base, priorities=merged, categories=(support,)))


def system(store: Store, clock: FixedClock, tz: str = "UTC") -> Desk:
    return Desk(store, clock, None, os_user="worker", options=DeskOptions(timezone=tz))


def tick(store: Store, clock: FixedClock, tz: str = "UTC", **kw: Any) -> escalation.TickReport:
    return escalation.tick(system(store, clock, tz), worker_id=kw.pop("worker_id", "w1"), **kw)


def register(desk: Desk, owner: str | None = "bob", priority: str | None = None) -> int:
    d = desk.register(customer_email=CUSTOMER, subject="Printer on fire", owner=owner,
                      priority=priority)  # fmt: skip
    return d.number


def ticket(store: Store, number: int) -> M.Ticket:
    with store.read() as s:
        t = s.get(M.Ticket, number)
        assert t is not None
        s.expunge(t)  # detached with its values, before the read's rollback expires them
        return t


def events(store: Store, action: str, number: int | None = None) -> list[M.TicketEvent]:
    with store.read() as s:
        q = select(M.TicketEvent).where(M.TicketEvent.action == action)
        if number is not None:
            q = q.where(M.TicketEvent.ticket_id == number)
        rows = list(s.exec(q.order_by(col(M.TicketEvent.id))).all())
        s.expunge_all()
        return rows


def alerts(store: Store, kind: str = "escalation") -> list[tuple[str, int | None, int]]:
    with store.read() as s:
        rows = s.exec(
            select(M.Agent.login, M.Alert.ticket_id, M.Alert.level)
            .join(M.Agent, col(M.Agent.id) == col(M.Alert.agent_id))
            .where(M.Alert.kind == kind)
            .order_by(col(M.Alert.id))
        ).all()
        return [(login, t, lv) for login, t, lv in rows]


def fired(report: escalation.TickReport) -> list[tuple[int, int]]:
    return [(f.ticket, f.level) for f in report.fired]


# ---------------------------------------------------------------------- the Friday example


def test_friday_example_through_register_and_tick(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    configure(store, prio(), members=("lead",))
    clock.set(utc(2026, 11, 27, 16, 0))  # Friday 16:00
    n = register(desk)
    t = ticket(store, n)
    assert t.deadline_at == utc(2026, 11, 30, 10, 0) == t.next_alert_at  # Monday 10:00
    clock.set(utc(2026, 11, 30, 9, 59, 59))
    assert tick(store, clock).fired == ()
    clock.set(utc(2026, 11, 30, 10, 0))
    report = tick(store, clock)
    assert fired(report) == [(n, 1)]
    assert report.fired[0].notified == ("bob",)
    assert alerts(store) == [("bob", n, 1)]
    assert ticket(store, n).next_alert_at == utc(2026, 11, 30, 11, 0)
    assert tick(store, clock).fired == ()  # the same moment again: nothing twice
    clock.set(utc(2026, 11, 30, 11, 0))
    report = tick(store, clock)
    assert fired(report) == [(n, 2)]
    assert alerts(store)[1:] == [("lead", n, 2)]
    t = ticket(store, n)
    with store.read() as s:
        assert s.get(M.Priority, t.priority_id).name == "High"  # type: ignore[union-attr]
    # High's priority_changed policy is restart: its own chain from level 0, a 60-minute deadline.
    assert (t.alert_level, t.next_alert_at, t.deadline_at) == (
        0,
        utc(2026, 11, 30, 12, 0),
        utc(2026, 11, 30, 12, 0),
    )
    escalate = events(store, "escalate", n)
    assert [e.after["alert_level"] for e in escalate] == [1, 2]
    assert escalate[1].after["next_alert_at"] == "2026-11-30T12:00:00+00:00"
    assert events(store, "priority", n)[0].after["by"] == "escalation"


# ---------------------------------------------------------------------- calendars


@pytest.mark.parametrize(
    ("only_in_hours", "level_2_at"),
    [(True, utc(2026, 11, 30, 9, 30)), (False, utc(2026, 11, 27, 17, 30))],
)
def test_weekend_between_levels(
    desk: Desk, store: Store, clock: FixedClock, only_in_hours: bool, level_2_at: datetime
) -> None:
    configure(store, prio(only_in_hours=only_in_hours))
    clock.set(utc(2026, 11, 27, 14, 30))  # Friday; the deadline is 16:30
    n = register(desk)
    clock.set(utc(2026, 11, 27, 16, 30))
    assert fired(tick(store, clock)) == [(n, 1)]
    # Level 1's 60 minutes count in hours (Monday 09:30) or on the wall clock (Friday 17:30).
    assert ticket(store, n).next_alert_at == level_2_at
    clock.set(level_2_at - timedelta(seconds=1))
    assert tick(store, clock).fired == ()
    clock.set(level_2_at)
    assert fired(tick(store, clock)) == [(n, 2)]


def test_holidays_skip_days(desk: Desk, store: Store, clock: FixedClock) -> None:
    configure(store, prio(holidays=("25/12", "28/12/2026")))
    clock.set(utc(2026, 12, 24, 16, 0))  # Thursday; Friday 25 yearly, Monday 28 this year only
    n = register(desk)
    assert ticket(store, n).deadline_at == utc(2026, 12, 29, 10, 0)
    clock.set(utc(2026, 12, 29, 10, 0))
    assert fired(tick(store, clock)) == [(n, 1)]


def oslo_desk(store: Store, clock: FixedClock) -> Desk:
    return Desk(store, clock, "alice", os_user="tester",
                options=DeskOptions(timezone="Europe/Oslo", domain="desk.example"))  # fmt: skip


@pytest.mark.parametrize(
    ("registered", "due"),
    [
        # Spring forward (Sunday 28 March 2027): Monday 10:00 is 08:00 UTC, not 09:00.
        (oslo(2027, 3, 26, 16, 0), oslo(2027, 3, 29, 10, 0)),
        # Fall back (Sunday 25 October 2026): Monday 10:00 is 09:00 UTC, not 08:00.
        (oslo(2026, 10, 23, 16, 0), oslo(2026, 10, 26, 10, 0)),
    ],
    ids=["spring", "autumn"],
)
def test_dst_both_ways(
    desk: Desk, store: Store, clock: FixedClock, registered: datetime, due: datetime
) -> None:
    configure(store, prio())
    clock.set(registered)
    n = register(oslo_desk(store, clock))
    assert ticket(store, n).next_alert_at == due
    assert due.astimezone(OSLO).hour == 10
    clock.set(due - timedelta(seconds=1))
    assert tick(store, clock, "Europe/Oslo").fired == ()
    clock.set(due)
    assert fired(tick(store, clock, "Europe/Oslo")) == [(n, 1)]
    # Level 2 one working hour later, at 11:00 on the wall clock.
    assert ticket(store, n).next_alert_at == due + timedelta(hours=1)


def test_wall_clock_wait_across_the_spring_gap(desk: Desk, store: Store, clock: FixedClock) -> None:
    """Around the clock, 60 minutes are 60 real minutes even when the clock jumps an hour."""
    configure(store, prio("Urgent", 3, 30, hours={}, only_in_hours=False))
    clock.set(oslo(2027, 3, 28, 1, 0))  # 01:00; the deadline is 01:30, level 2 at 02:30 real time
    n = register(oslo_desk(store, clock), priority="Urgent")
    clock.set(oslo(2027, 3, 28, 1, 30))
    assert fired(tick(store, clock, "Europe/Oslo")) == [(n, 1)]
    nxt = ticket(store, n).next_alert_at
    assert nxt == oslo(2027, 3, 28, 1, 30) + timedelta(hours=1)
    assert nxt is not None and nxt.astimezone(OSLO).hour == 3  # 02:xx never happens that night


# ---------------------------------------------------------------------- event policies


def _do(event: str, desk: Desk, store: Store, clock: FixedClock, n: int) -> None:
    if event == "read":
        desk.read(n)
    elif event == "reassigned":
        desk.assign(n, "bob")
    elif event == "new_info":
        store.write(lambda s: escalation.apply_event(desk, s, desk._ticket(s, n), "new_info"))
    elif event == "closed":
        desk.close(n)
    elif event == "priority_changed":
        desk.set_priority(n, "High")
    else:  # pragma: no cover
        raise AssertionError(event)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("event", escalation.EVENTS)
def test_every_event_policy(
    desk: Desk, store: Store, clock: FixedClock, event: str, policy: str
) -> None:
    on = {event: policy}
    configure(store, prio(on=on), prio("High", 2, 60, on=on))
    n = register(desk, owner="alice")  # alice owns it and has not read it
    if event == "new":
        t = ticket(store, n)
        assert t.deadline_at == T0 + timedelta(hours=2)
        if policy == "stop":  # created paused, the whole deadline kept
            assert (t.escalation_running, t.next_alert_at, t.escalation_seconds_left) == (
                False,
                None,
                7200,
            )
        else:
            assert t.escalation_running and t.next_alert_at == T0 + timedelta(hours=2)
        return
    clock.advance(minutes=30)
    _do(event, desk, store, clock, n)
    t = ticket(store, n)
    now = T0 + timedelta(minutes=30)
    restart_wait = timedelta(minutes=60 if event == "priority_changed" else 120)
    paused = event == "closed"  # a closed ticket keeps its chain paused whatever the policy
    if policy == "stop" or (paused and policy == "continue"):
        assert (t.escalation_running, t.next_alert_at, t.escalation_seconds_left) == (
            False,
            None,
            90 * 60,
        )
        assert t.deadline_at == T0 + timedelta(hours=2)
    elif policy == "continue":
        assert t.escalation_running and t.next_alert_at == T0 + timedelta(hours=2)
        assert t.escalation_seconds_left is None
    elif paused:  # restart on close: a fresh chain, kept paused until the ticket is reopened
        assert (t.escalation_running, t.escalation_seconds_left, t.alert_level) == (False, 7200, 0)
        assert t.deadline_at == now + restart_wait
    else:
        assert t.escalation_running and t.alert_level == 0
        assert t.next_alert_at == t.deadline_at == now + restart_wait


def test_customer_mail_applies_new_info(
    desk: Desk, store: Store, clock: FixedClock, tmp_path: Path
) -> None:
    try:
        from helpdesk_tui.desk.intake import Intake
    except ImportError as exc:  # another part of the desk is still being written
        pytest.skip(f"intake is not importable yet: {exc}")
    configure(store, prio(on={"new_info": "restart"}))
    n = register(desk)
    clock.advance(minutes=30)
    m = EmailMessage()
    m["From"] = f"Carla <{CUSTOMER}>"
    m["To"] = "support@desk.example"
    m["Subject"] = f"Re: [#{n}] Printer on fire"
    m["Message-ID"] = "<more-info@customer.example>"
    m.set_content("It still smokes.")
    intake = Intake(desk, mailbox=None, attachments_dir=tmp_path, own_addresses=[])
    assert intake.ingest(m.as_bytes()).ticket == n
    assert ticket(store, n).next_alert_at == T0 + timedelta(minutes=150)


def test_stop_then_resume_spends_what_was_left(desk: Desk, store: Store, clock: FixedClock) -> None:
    configure(store, prio(on={"read": "stop", "reassigned": "continue"}))
    n = register(desk, owner="alice")  # Monday 10:00, due 12:00
    clock.advance(minutes=30)
    desk.read(n)  # stops with 90 minutes left
    assert ticket(store, n).escalation_seconds_left == 5400
    clock.set(utc(2026, 11, 23, 16, 30))
    assert tick(store, clock).due == 0  # a stopped chain is not in the due set
    desk.assign(n, "bob")  # continues: 30 minutes today, 60 tomorrow
    t = ticket(store, n)
    assert (t.next_alert_at, t.escalation_seconds_left) == (utc(2026, 11, 24, 10, 0), None)
    clock.set(utc(2026, 11, 24, 10, 0))
    assert fired(tick(store, clock)) == [(n, 1)]
    assert alerts(store) == [("bob", n, 1)]


def test_close_and_reopen_continue_the_chain(desk: Desk, store: Store, clock: FixedClock) -> None:
    configure(store, prio())
    n = register(desk)
    clock.advance(minutes=30)
    desk.close(n)
    clock.set(utc(2026, 11, 24, 9, 0))
    desk.reopen(n)
    assert ticket(store, n).next_alert_at == utc(2026, 11, 24, 10, 30)


# ---------------------------------------------------------------------- actions


def test_delegate_moves_the_ticket_and_tells_the_delegate(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    levels = (
        LevelConfig(1, 60, ("notify_owner", "delegate"), delegate_to="lead"),
        LevelConfig(2, 60, ("notify_owner",)),
    )
    configure(store, prio(levels=levels, on={"reassigned": "continue"}))
    n = register(desk)
    clock.set(T0 + timedelta(hours=2))
    report = tick(store, clock)
    assert report.fired[0].notified == ("bob", "lead")
    t = ticket(store, n)
    with store.read() as s:
        assert s.get(M.Agent, t.owner_id).login == "lead"  # type: ignore[union-attr]
    assert (t.alert_level, t.next_alert_at) == (1, T0 + timedelta(hours=3))
    assert events(store, "assign", n)[-1].after["owner"] == "lead"
    assert ("lead", n, 1) in alerts(store)
    clock.set(T0 + timedelta(hours=3))
    tick(store, clock)
    assert alerts(store)[-1] == ("lead", n, 2)  # the new owner gets level 2


def test_notices_and_named_agents(desk: Desk, store: Store, clock: FixedClock) -> None:
    actions = ("notify_agents", "email_owner", "email_customer", "email_address")
    level = LevelConfig(
        1, 60, actions, notify_agents=("lead", "ghost"), email_to="oncall@x.example"
    )
    configure(store, prio(levels=(level,)))
    n = register(desk)
    clock.set(T0 + timedelta(hours=2))
    report = tick(store, clock)
    assert report.fired[0].notified == ("lead",)
    assert report.fired[0].skipped == ("notify_agents: no active agent 'ghost'",)
    with store.read() as s:
        out = s.exec(select(M.Outbox).order_by(col(M.Outbox.id))).all()
        assert [(o.kind, o.recipients) for o in out] == [
            ("notice", ["bob@desk.example"]),
            ("notice", [CUSTOMER]),
            ("notice", ["oncall@x.example"]),
        ]
        msgs = s.exec(select(M.Message).where(M.Message.kind == "notice")).all()
        assert [m.visibility for m in msgs] == ["internal", "external", "internal"]
    t = ticket(store, n)
    assert (t.alert_level, t.escalation_running) == (1, False)  # the last level: chain spent


def test_raise_priority_at_the_top_is_noted(desk: Desk, store: Store, clock: FixedClock) -> None:
    configure(store, prio("Urgent", 3, 30, (LevelConfig(1, 15, ("raise_priority",)),)))
    n = register(desk, priority="Urgent")
    clock.set(T0 + timedelta(minutes=30))
    report = tick(store, clock)
    assert report.fired[0].skipped == ("raise_priority: already the most urgent priority",)
    assert events(store, "priority", n) == []


# ---------------------------------------------------------------------- scripts


def script_level(code: str) -> tuple[LevelConfig, ...]:
    return (LevelConfig(1, 60, ("script",), script=(sys.executable, "-c", code)),)


def test_script_gets_the_ticket_and_its_result_is_an_event(
    desk: Desk, store: Store, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAP_PASSWORD", "hunter2")
    code = (
        "import json, os, sys; d = json.load(sys.stdin); "
        "print(d['number'], d['level'], d['owner'], os.environ['HELPDESK_TICKET'], "
        "os.environ['HELPDESK_LEVEL'], os.environ['HELPDESK_PRIORITY'], "
        "os.environ['HELPDESK_OWNER'], os.environ['HELPDESK_SUBJECT'], "
        "'IMAP_PASSWORD' in os.environ)"
    )
    configure(store, prio(levels=script_level(code)))
    n = register(desk)
    clock.set(T0 + timedelta(hours=2))
    report = tick(store, clock)
    (res,) = report.scripts
    assert res.ok and not res.timed_out
    assert res.output.strip() == f"{n} 1 bob {n} 1 Normal bob Printer on fire False"
    (ev,) = events(store, "script", n)
    assert ev.before["level"] == 1 and ev.before["command"][0] == sys.executable
    assert ev.after["exit_code"] == 0 and "Printer on fire" in ev.after["output"]


def test_failing_script_is_recorded_and_the_level_stands(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    code = "import sys; sys.stderr.write('pager down\\n' + 'x' * 9000); sys.exit(3)"
    configure(store, prio(levels=script_level(code)))
    n = register(desk)
    clock.set(T0 + timedelta(hours=2))
    report = tick(store, clock)
    assert fired(report) == [(n, 1)]
    (ev,) = events(store, "script", n)
    assert ev.after["exit_code"] == 3
    assert ev.after["output"].startswith("pager down")
    assert len(ev.after["output"]) < escalation.SCRIPT_OUTPUT_LIMIT + 100  # truncated


def test_missing_script_command_is_recorded(desk: Desk, store: Store, clock: FixedClock) -> None:
    level = LevelConfig(1, 60, ("script",), script=("/nonexistent/page-oncall", "--ticket"))
    configure(store, prio(levels=(level,)))
    n = register(desk)
    clock.set(T0 + timedelta(hours=2))
    report = tick(store, clock)
    assert report.scripts[0].exit_code is None and report.scripts[0].error
    assert events(store, "script", n)[0].after["error"]


def test_hanging_script_is_killed(desk: Desk, store: Store, clock: FixedClock) -> None:
    # The script starts a grandchild too: the whole process group goes on timeout.
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print('started', flush=True); time.sleep(30)"
    )
    configure(store, prio(levels=script_level(code)))
    n = register(desk)
    clock.set(T0 + timedelta(hours=2))
    started = time.monotonic()
    report = tick(store, clock, script_timeout=0.5)
    assert time.monotonic() - started < 10
    (res,) = report.scripts
    assert res.timed_out and res.exit_code is None and "started" in res.output
    ev = events(store, "script", n)[0]
    assert ev.after["timed_out"] is True and "killed" in ev.after["error"]


# ---------------------------------------------------------------------- at most once, at least once


def test_restart_neither_refires_nor_loses_a_level(
    desk: Desk, store: Store, clock: FixedClock, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(store, prio())
    a, b = register(desk), register(desk)
    clock.set(T0 + timedelta(hours=2))
    # A worker dies in the middle of its transaction: nothing of it is left...
    real_fire = escalation._fire
    calls = 0

    def dying(*args: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("killed")
        return real_fire(*args, **kw)

    monkeypatch.setattr(escalation, "_fire", dying)
    with pytest.raises(RuntimeError):
        tick(store, clock)
    monkeypatch.setattr(escalation, "_fire", real_fire)
    assert events(store, "escalate") == [] and alerts(store) == []
    assert ticket(store, a).alert_level == 0
    # ...so the next worker, in a new process with its own store, fires both, once.
    again = open_store(db_url, migrate=False)
    try:
        assert sorted(fired(tick(again, clock))) == [(a, 1), (b, 1)]
        assert tick(again, clock).fired == ()
        assert tick(store, clock).fired == ()
    finally:
        again.dispose()
    assert len(events(store, "escalate")) == 2


def test_a_stale_claim_wins_nothing(desk: Desk, store: Store, clock: FixedClock) -> None:
    """The conditional UPDATE is the guard when two workers saw the same due row."""
    configure(store, prio())
    n = register(desk)
    now = T0 + timedelta(hours=2)
    values = {"alert_level": 1, "next_alert_at": now + timedelta(hours=1)}

    def claim(s: Session) -> list[int]:
        return escalation._conditional_update(s, [n], 0, now, values)

    assert store.write(claim) == [n]
    assert store.write(claim) == []


def test_two_workers_fire_each_level_once(
    desk: Desk, store: Store, clock: FixedClock, db_url: str
) -> None:
    configure(store, prio())
    numbers = [register(desk) for _ in range(60)]
    clock.set(T0 + timedelta(hours=2))
    stores = [open_store(db_url, migrate=False) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    reports: list[escalation.TickReport] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                reports.append(tick(stores[i], clock, worker_id=f"w{i}", limit=25))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    for st in stores:
        st.dispose()
    assert errors == []
    fired_all = sorted(pair for r in reports for pair in fired(r))
    assert fired_all == [(n, 1) for n in numbers]
    per_ticket = [e.ticket_id or 0 for e in events(store, "escalate")]
    assert sorted(per_ticket) == numbers
    assert len({e.after["worker"] for e in events(store, "escalate")}) >= 1


# ---------------------------------------------------------------------- postponed tickets


@pytest.mark.parametrize(
    ("new_info", "due"),
    [("restart", utc(2026, 11, 24, 11, 0)), ("continue", utc(2026, 11, 24, 10, 0)),
     ("stop", utc(2026, 11, 24, 10, 0))],
)  # fmt: skip
def test_postponed_ticket_sleeps_then_wakes(
    desk: Desk, store: Store, clock: FixedClock, new_info: str, due: datetime
) -> None:
    configure(store, prio(on={"new_info": new_info}))
    n = register(desk)  # Monday 10:00, due 12:00
    clock.advance(hours=1)
    desk.postpone(n, until=utc(2026, 11, 24, 9, 0))
    t = ticket(store, n)
    assert (t.escalation_running, t.escalation_seconds_left) == (False, 3600)
    clock.set(utc(2026, 11, 23, 16, 0))
    assert tick(store, clock).due == 0
    clock.set(utc(2026, 11, 24, 9, 0))
    assert system(store, clock).reactivate_due() == [n]
    assert alerts(store, "reactivated") == [("bob", n, 0)]
    assert ticket(store, n).next_alert_at == due
    clock.set(due)
    assert fired(tick(store, clock)) == [(n, 1)]


def test_worker_duty_runs_the_tick(store: Store, clock: FixedClock, desk: Desk) -> None:
    try:
        from helpdesk_tui.desk.session import DeskHandle
        from helpdesk_tui.worker import Worker
    except ImportError as exc:  # another part of the worker is still being written
        pytest.skip(f"the worker is not importable yet: {exc}")
    configure(store, prio())
    n = register(desk)
    clock.set(T0 + timedelta(hours=2))
    worker = Worker(DeskHandle(system(store, clock), default_config(), store), parse_processes=1)
    try:
        report = worker.run_once().escalation
    finally:
        worker.close()
    assert isinstance(report, escalation.TickReport)
    assert fired(report) == [(n, 1)] and report.worker_id == worker.worker_id


# ---------------------------------------------------------------------- timeline


def test_timeline_follows_raises_as_the_worker_does(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    configure(store, members=("lead",))  # the default priorities: Normal, High, Urgent
    n = register(desk)
    tl = escalation.timeline(desk, n)
    plan = [(lv.priority, lv.alert_level, lv.at) for lv in tl.levels]
    h = timedelta(hours=1)
    assert plan == [
        ("Normal", 1, T0 + 2 * h),
        ("Normal", 2, T0 + 3 * h),
        ("High", 1, T0 + 4 * h),
        ("High", 2, T0 + 4.5 * h),
        ("Urgent", 1, T0 + 5 * h),
        ("Urgent", 2, T0 + 5.25 * h),
    ]
    version = ticket(store, n).version
    # The worker, ticking at each planned moment, does exactly that.
    for _, level, at in plan:
        clock.set(at)
        assert fired(tick(store, clock)) == [(n, level)]
    assert escalation.timeline(desk, n).levels == ()
    assert ticket(store, n).version > version


def test_timeline_what_ifs_write_nothing(desk: Desk, store: Store, clock: FixedClock) -> None:
    configure(store, prio(), prio("High", 2, 60))
    n = register(desk)
    clock.advance(minutes=30)
    before = ticket(store, n)
    base = escalation.timeline(desk, n)
    assert base.levels[0].at == T0 + timedelta(hours=2)
    assert base.levels[0].actions == ("notify_owner",)
    prio_high = escalation.timeline(desk, n, if_priority="High")
    assert prio_high.priority == "High" and prio_high.assuming == ("priority High",)
    assert prio_high.levels[0].at == T0 + timedelta(minutes=90)  # restart, 60-minute deadline
    assigned = escalation.timeline(desk, n, if_assign="lead")
    assert assigned.owner == "lead" and assigned.levels[0].at == T0 + timedelta(minutes=150)
    later = escalation.timeline(desk, n, if_postpone=timedelta(days=2))
    assert later.levels[0].at == utc(2026, 11, 25, 12, 30)  # wakes Wed 10:30, restarts
    after = ticket(store, n)
    assert (after.version, after.next_alert_at) == (before.version, before.next_alert_at)
    with pytest.raises(NotFound):
        escalation.timeline(desk, n, if_assign="nobody")
    with pytest.raises(InvalidAction):
        escalation.timeline(desk, n, if_postpone=timedelta(0))


def test_timeline_of_sleeping_and_closed_tickets(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    configure(store, prio(on={"new_info": "continue"}))
    n = register(desk)
    clock.advance(hours=1)
    desk.postpone(n, until=utc(2026, 11, 24, 9, 0))
    tl = escalation.timeline(desk, n)
    assert tl.base_status == "postponed" and tl.note.startswith("wakes up")
    local = utc(2026, 11, 24, 9, 0).astimezone(desk.tz).strftime("%Y-%m-%d %H:%M")
    assert local in tl.note and "T09:00:00" not in tl.note  # the desk's time, not ISO
    assert tl.levels[0].at == utc(2026, 11, 24, 10, 0)
    m = register(desk)
    desk.close(m)
    closed = escalation.timeline(desk, m)
    assert closed.levels == () and "paused" in closed.note
