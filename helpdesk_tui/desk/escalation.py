"""The escalation engine: event policies on tickets, the worker's tick, and the timeline ahead.

The arithmetic lives in escalation_plan; this module reads and writes the ticket columns
(alert_level, next_alert_at, escalation_seconds_left, escalation_running) and runs the levels.

Choices, so the screens, the worker and the timeline agree:
- Only active tickets run a chain. A ticket that leaves the active base (closed, postponed,
  deleted, merged) keeps its chain paused with the seconds it had left, whatever the event
  policy said; so the due index holds active tickets only. A ticket that becomes active again
  wakes its chain: the agent's reopen, undo, restore and unmerge continue it; a postponed
  ticket that wakes up, or a closed or postponed one that customer mail brings back, applies
  the priority's new_info policy, with "stop" read as "continue" (the pause was ours, and a
  chain paused forever would never escalate again).
- "new" is the moment of creation: continue and restart start the chain at once; stop creates
  it paused, with the whole deadline kept, for a later "continue" event (say, the owner reads).
- Changes the engine itself makes (raise_priority, delegate) are events too: they apply the
  new priority's priority_changed policy and the reassigned policy, as if an agent did them.
- A level is claimed with a conditional UPDATE (level and due time unchanged) in the same
  write transaction as its alerts, mails and events, so it fires at most once per ticket
  across workers and restarts, and at least once: a crash before the commit leaves it due.
  Scripts run after the commit and so run at most once; their result is a "script" event.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from helpdesk_tui.desk.errors import InvalidAction
from helpdesk_tui.desk.escalation_plan import (
    EscalationState,
    LevelSpec,
    apply_policy,
    fire_due,
    next_level,
    start_chain,
)
from helpdesk_tui.desk.worktime import WorkCalendar
from helpdesk_tui.mail.templates import TemplateError, render
from helpdesk_tui.store import models as M

if TYPE_CHECKING:
    from helpdesk_tui.desk.service import Desk

EVENTS = ("read", "reassigned", "new_info", "closed", "priority_changed", "new")
DEFAULT_SCRIPT_TIMEOUT = 30.0
SCRIPT_OUTPUT_LIMIT = 4000  # characters of a script's output kept in its event
CLAIM_CHUNK = 500  # ids per conditional UPDATE; far below SQLite's variable limit
TIMELINE_LIMIT = 50  # levels a timeline lists at most (priority raises can chain)
# Environment a script inherits from the worker; anything else (passwords in the environment
# for IMAP or SMTP, say) stays out.
SCRIPT_ENV_KEEP = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "USER",
    "LOGNAME",
    "TMPDIR",
    "HELPDESK_DB",
    "HELPDESK_CONFIG",
    "HELPDESK_DATA_DIR",
)
# Templates an admin may store (ReplyTemplate rows in folder "escalation", named after the
# value) to word the mails. The outbox adds the [#N] subject tag, so subjects leave it out.
NOTICE_TEMPLATES = {
    "email_owner": "owner",
    "email_customer": "customer",
    "email_address": "address",
}
_DEFAULT_NOTICES: Mapping[str, tuple[str, str]] = {
    "owner": (
        "Escalation level {level}: {title}",
        "Ticket #{number} ({priority}, {status}) reached escalation level {level}.\n"
        "Title: {title}\nCustomer: {customer_email}\nDeadline: {deadline}\n",
    ),
    "address": (
        "Escalation level {level}: {title}",
        "Ticket #{number} ({priority}, {status}) of {desk_name} reached escalation level "
        "{level}.\nTitle: {title}\nOwner: {agent_login}\nCustomer: {customer_email}\n"
        "Deadline: {deadline}\n",
    ),
    "customer": (
        "{title}",
        "Hello,\n\nyour request #{number} ({title}) is taking longer than we promised. It has "
        "been passed on so that it gets the attention it needs; we will answer as soon as we "
        "can.\n\nThis message was sent automatically by {desk_name}.",
    ),
}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FiredLevel:
    """One level the tick fired on one ticket."""

    ticket: int
    level: int
    actions: tuple[str, ...]
    notified: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScriptResult:
    """What a level's script did; exit_code None when it timed out or could not start."""

    ticket: int
    level: int
    command: tuple[str, ...]
    exit_code: int | None
    output: str
    timed_out: bool = False
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class TickReport:
    """One tick: what was due, what fired, what another worker had claimed first."""

    worker_id: str
    at: datetime
    due: int = 0
    fired: tuple[FiredLevel, ...] = ()
    lost: int = 0
    settled: int = 0
    scripts: tuple[ScriptResult, ...] = ()


@dataclass(frozen=True)
class UpcomingLevel:
    """A level still to come: when (tz-aware UTC), under which priority, and what it does."""

    alert_level: int
    at: datetime
    priority: str | None
    actions: tuple[str, ...]
    overdue: bool = False
    delegate_to: str | None = None
    notify_agents: tuple[str, ...] = ()
    email_to: str = ""
    script: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """The chain of one ticket as it stands (or would, under the what-ifs in `assuming`)."""

    number: int
    priority: str | None
    owner: str | None
    base_status: str
    alert_level: int
    running: bool
    next_alert_at: datetime | None
    seconds_left: int | None
    deadline_at: datetime | None
    levels: tuple[UpcomingLevel, ...] = ()
    assuming: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ScriptJob:
    """A script to run after the commit: command, ticket JSON for stdin, environment."""

    ticket: int
    level: int
    command: tuple[str, ...]
    stdin: str
    env: Mapping[str, str]


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class _Rules:
    """A priority as the engine needs it, read once per transaction."""

    id: int
    name: str
    rank: int
    deadline_minutes: int
    only_in_hours: bool
    policies: Mapping[str, str]
    levels: tuple[LevelSpec, ...]
    rows: Mapping[int, M.EscalationLevel]
    calendar: WorkCalendar

    def policy(self, event: str) -> str:
        return self.policies[event]

    def deadline_from(self, now: datetime) -> datetime | None:
        if self.deadline_minutes <= 0:
            return None
        return self.calendar.add_working(now, self.deadline_minutes * 60)


def _rules(desk: Desk, pr: M.Priority, levels: Iterable[M.EscalationLevel]) -> _Rules:
    rows = {lv.alert_level: lv for lv in levels}
    return _Rules(
        id=pr.id or 0,
        name=pr.name,
        rank=pr.rank,
        deadline_minutes=pr.deadline_minutes,
        only_in_hours=pr.escalate_only_in_hours,
        policies={event: getattr(pr, f"on_{event}") for event in EVENTS},
        levels=tuple(LevelSpec(n, lv.minutes, tuple(lv.actions)) for n, lv in sorted(rows.items())),
        rows=rows,
        calendar=desk.calendar_for(pr),
    )


# Session.info key: every escalation level by priority id, for a unit of work that changes none.
LEVELS_BY_PRIORITY = "helpdesk_escalation_levels_by_priority"


def _rules_for(desk: Desk, s: Session, priority_id: int | None) -> _Rules | None:
    if priority_id is None:
        return None
    pr = s.get(M.Priority, priority_id)
    if pr is None:
        return None
    # A unit of work that changes no levels may lend them all, read once (desk/intake.py).
    lent: dict[int, list[M.EscalationLevel]] | None = s.info.get(LEVELS_BY_PRIORITY)
    if lent is not None:
        return _rules(desk, pr, lent.get(pr.id or 0, ()))
    levels = s.exec(select(M.EscalationLevel).where(M.EscalationLevel.priority_id == pr.id)).all()
    return _rules(desk, pr, levels)


class _Context:
    """Priorities, agents and category members, loaded once for a tick or a timeline."""

    def __init__(self, desk: Desk, s: Session) -> None:
        self.desk = desk
        self.s = s
        levels: dict[int, list[M.EscalationLevel]] = defaultdict(list)
        for lv in s.exec(select(M.EscalationLevel)).all():
            levels[lv.priority_id].append(lv)
        self.priorities = {
            p.id: _rules(desk, p, levels.get(p.id or 0, ())) for p in s.exec(select(M.Priority))
        }
        self.agents = {a.id: a for a in s.exec(select(M.Agent)).all()}
        self.logins = {a.login: a for a in self.agents.values()}
        self._members: dict[int | None, list[int]] = {}

    def rules(self, priority_id: int | None) -> _Rules | None:
        return self.priorities.get(priority_id) if priority_id is not None else None

    def higher(self, priority_id: int | None) -> _Rules | None:
        """The next priority up by rank (ties broken by id), if any."""
        current = self.rules(priority_id)
        if current is None:
            return None
        above = [p for p in self.priorities.values() if (p.rank, p.id) > (current.rank, current.id)]
        return min(above, key=lambda p: (p.rank, p.id)) if above else None

    def active_agent(self, agent_id: int | None) -> M.Agent | None:
        agent = self.agents.get(agent_id) if agent_id is not None else None
        return agent if agent is not None and agent.active else None

    def login(self, agent_id: int | None) -> str | None:
        agent = self.agents.get(agent_id) if agent_id is not None else None
        return agent.login if agent is not None else None

    def category_members(self, category_id: int | None) -> list[int]:
        if category_id not in self._members:
            ids = self.s.exec(
                select(M.CategoryAgent.agent_id)
                .where(M.CategoryAgent.category_id == category_id)
                .order_by(col(M.CategoryAgent.agent_id))
            ).all()
            self._members[category_id] = [i for i in ids if self.active_agent(i) is not None]
        return self._members[category_id]


# --------------------------------------------------------------------------- state


def state_of(ticket: M.Ticket) -> EscalationState:
    return EscalationState(
        ticket.alert_level,
        ticket.next_alert_at,
        ticket.escalation_seconds_left,
        ticket.escalation_running,
    )


def _put(ticket: M.Ticket, st: EscalationState) -> None:
    running = st.running and st.next_at is not None
    ticket.alert_level = st.alert_level
    ticket.next_alert_at = st.next_at if running else None
    ticket.escalation_seconds_left = st.seconds_left
    ticket.escalation_running = running


def _transition(
    policy: str,
    st: EscalationState,
    rules: _Rules | None,
    now: datetime,
    *,
    active: bool,
    created: bool = False,
) -> tuple[EscalationState, bool]:
    """The chain after a policy, paused when the ticket is not active; and whether it restarted."""
    if rules is None:
        return EscalationState(st.alert_level), True
    kw: dict[str, Any] = {
        "now": now,
        "levels": rules.levels,
        "deadline_minutes": rules.deadline_minutes,
        "calendar": rules.calendar,
        "only_in_hours": rules.only_in_hours,
    }
    if created:
        new = start_chain(now, rules.levels, rules.deadline_minutes, rules.calendar)
        if policy == "stop":
            new = apply_policy("stop", new, **kw)
    else:
        new = apply_policy(policy, st, **kw)
    if not active and new.running:
        new = apply_policy("stop", new, **kw)
    return new, created or policy == "restart"


def _apply(desk: Desk, s: Session, ticket: M.Ticket, policy: str, *, created: bool = False) -> None:
    now = desk.clock.now()
    rules = _rules_for(desk, s, ticket.priority_id)
    active = desk._base(s, ticket) == "active"
    new, restarted = _transition(
        policy, state_of(ticket), rules, now, active=active, created=created
    )
    if restarted:
        ticket.deadline_at = rules.deadline_from(now) if rules is not None else None
    _put(ticket, new)


def apply_event(desk: Desk, s: Session, ticket: M.Ticket, event: str) -> EscalationState:
    """Stop, continue or restart the ticket's chain as its priority says for `event`.

    Call it after the change (new owner, new priority, new status) is made on the ticket, in
    the same transaction; the policy is the one of the priority the ticket has now.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown escalation event {event!r}; use {', '.join(EVENTS)}")
    pr = s.get(M.Priority, ticket.priority_id) if ticket.priority_id else None
    policy = getattr(pr, f"on_{event}") if pr is not None else "stop"
    _apply(desk, s, ticket, policy, created=event == "new")
    return state_of(ticket)


def pause(desk: Desk, s: Session, ticket: M.Ticket) -> EscalationState:
    """Keep the seconds left and stop (postpone, merge): a sleeping ticket does not escalate."""
    _apply(desk, s, ticket, "stop")
    return state_of(ticket)


def wake_policy(priority: M.Priority | None) -> str:
    """How a chain resumes when the ticket comes back: new_info's policy, stop read as continue."""
    policy = priority.on_new_info if priority is not None else "continue"
    return "continue" if policy == "stop" else policy


def wake(desk: Desk, s: Session, ticket: M.Ticket, *, policy: str | None = None) -> EscalationState:
    """The ticket became active again: resume its chain with `policy`.

    Agents' undo-like actions (reopen, undo, restore, unmerge) pass "continue"; None, for a
    postponed ticket waking up or mail bringing one back, means wake_policy of its priority.
    """
    if policy is None:
        pr = s.get(M.Priority, ticket.priority_id) if ticket.priority_id else None
        policy = wake_policy(pr)
    _apply(desk, s, ticket, policy)
    return state_of(ticket)


# --------------------------------------------------------------------------- the tick


def worker_id() -> str:
    """host:pid, recorded on every escalate event so two workers can be told apart."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class _Claimed:
    fired: list[FiredLevel] = field(default_factory=list)
    jobs: list[ScriptJob] = field(default_factory=list)
    due: int = 0
    lost: int = 0
    settled: int = 0


def tick(
    desk: Desk,
    *,
    worker_id: str,
    limit: int = 500,
    script_timeout: float = DEFAULT_SCRIPT_TIMEOUT,
) -> TickReport:
    """Fire every level that is due (at most `limit` tickets), then run their scripts."""
    now = desk.clock.now()
    with desk.store.read() as s:
        # Most ticks find nothing: look first, so an idle worker never takes the write lock.
        if s.execute(_due_query(s, now).limit(1)).first() is None:
            return TickReport(worker_id=worker_id, at=now)
    claimed = desk.store.write(lambda s: _claim(desk, s, now, worker_id, limit))
    results = tuple(run_script(job, timeout=script_timeout) for job in claimed.jobs)
    if results:
        desk.store.write(lambda s: _record_scripts(desk, s, results, worker_id))
    return TickReport(
        worker_id=worker_id,
        at=now,
        due=claimed.due,
        fired=tuple(claimed.fired),
        lost=claimed.lost,
        settled=claimed.settled,
        scripts=results,
    )


_T = M.Ticket.__table__  # type: ignore[attr-defined]
_ALERT = M.Alert.__table__  # type: ignore[attr-defined]
_EVENT = M.TicketEvent.__table__  # type: ignore[attr-defined]
# Actions that need the ticket as an object; the rest are rows written in bulk.
_PER_TICKET = frozenset(
    {"email_owner", "email_customer", "email_address", "raise_priority", "delegate", "script"}
)
# Bulk rows go in through the driver's own executemany, values already in their stored form:
# SQLAlchemy's per-row parameter handling cost more than SQLite's own work for these rows
# (measured with tests/perf/bench_escalation.py).
_INSERT_ALERT = (
    "INSERT INTO alert (agent_id, ticket_id, kind, level, text, created_at) "
    "VALUES ({0}, {0}, 'escalation', {0}, {0}, {0})"
)
_INSERT_EVENT = (
    "INSERT INTO ticketevent (ticket_id, agent_id, os_user, at, action, before, after, undone) "
    "VALUES ({0}, NULL, {0}, {0}, 'escalate', {0}, {0}, {0})"
)


def _executemany(s: Session, sql: str, rows: list[tuple[Any, ...]]) -> None:
    marker = "?" if s.get_bind().dialect.paramstyle == "qmark" else "%s"
    s.connection().exec_driver_sql(sql.format(marker), rows)


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(ids), CLAIM_CHUNK):
        yield ids[i : i + CLAIM_CHUNK]


def _conditional_update(
    s: Session, ids: Sequence[int], old_level: int, now: datetime, values: Mapping[str, Any]
) -> list[int]:
    """Move the tickets that are still due at `old_level`; the ids this call won.

    The WHERE repeats what made them due, so a ticket another worker claimed (or an agent
    changed) since the scan is left alone: the UPDATE is the claim, on any database.
    """
    guard = (
        _T.c.alert_level == old_level,
        _T.c.escalation_running == sa.true(),
        _T.c.next_alert_at <= now,
    )
    stmt = sa.update(_T).values(**values, version=_T.c.version + 1).returning(_T.c.id)
    if s.get_bind().dialect.name == "sqlite":
        # One JSON parameter instead of an IN list: no per-id binding, no variable limit.
        listed = sa.func.json_each(sa.bindparam("ids", json.dumps(list(ids)))).table_valued("value")
        result = s.execute(stmt.where(_T.c.id.in_(sa.select(listed.c.value)), *guard))
        return list(result.scalars())
    won: list[int] = []
    for chunk in _chunks(ids):
        won.extend(s.execute(stmt.where(_T.c.id.in_(chunk), *guard)).scalars())
    return won


@dataclass(frozen=True)
class _Due:
    """A due ticket as the scan read it: plain values, no ORM object."""

    id: int
    priority_id: int | None
    alert_level: int
    next_alert_at: datetime
    owner_id: int | None
    category_id: int | None
    title: str


def _due_query(s: Session, now: datetime) -> sa.Select[Any]:
    """Active tickets whose next level is due, oldest first, through the next_alert_at index."""
    active = s.exec(select(M.Status.id).where(M.Status.base == "active")).all()
    return (
        sa.select(
            _T.c.id,
            _T.c.priority_id,
            _T.c.alert_level,
            _T.c.next_alert_at,
            _T.c.owner_id,
            _T.c.category_id,
            _T.c.title,
        )
        .where(
            _T.c.escalation_running == sa.true(),
            _T.c.next_alert_at <= now,
            _T.c.status_id.in_(list(active)),
        )
        .order_by(_T.c.next_alert_at, _T.c.id)
    )


def _claim(desk: Desk, s: Session, now: datetime, worker: str, limit: int) -> _Claimed:
    out = _Claimed()
    due = _due_query(s, now).limit(limit)
    if s.get_bind().dialect.name != "sqlite":
        # Row locks: a second worker skips the tickets this one is firing and takes the next
        # due ones, instead of waiting and then losing the race on every row.
        due = due.with_for_update(skip_locked=True, of=_T)
    rows = [_Due(*row) for row in s.execute(due).all()]
    out.due = len(rows)
    if not rows:
        return out
    ctx = _Context(desk, s)
    groups: dict[tuple[int | None, int], list[_Due]] = defaultdict(list)
    for row in rows:
        groups[(row.priority_id, row.alert_level)].append(row)
    alerts: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    dialect = s.get_bind().dialect
    at = _stored(_EVENT.c.at.type, dialect, now)
    # psycopg has no bind processor for JSON (SQLAlchemy wraps values itself), and a raw
    # executemany gets plain values: the text form is what PostgreSQL casts to json.
    to_json = _EVENT.c.after.type.bind_processor(dialect) or json.dumps
    for (priority_id, old_level), members in groups.items():
        rules = ctx.rules(priority_id)
        level = next_level(rules.levels, old_level) if rules is not None else None
        ids = [r.id for r in members]
        if rules is None or level is None:
            # Nothing left to fire (levels taken out of the config): let the chain rest.
            done = _conditional_update(
                s, ids, old_level, now, {"escalation_running": False, "next_alert_at": None}
            )
            out.settled += len(done)
            continue
        fired = fire_due(
            EscalationState(old_level, now, None, True),
            rules.levels,
            now,
            rules.calendar,
            rules.only_in_hours,
        )
        assert fired is not None  # due by construction: next_at == now and a level is above
        _, after = fired
        values = {
            "alert_level": after.alert_level,
            "next_alert_at": after.next_at if after.running else None,
            "escalation_running": after.running,
            "escalation_seconds_left": None,
        }
        won = set(_conditional_update(s, ids, old_level, now, values))
        out.lost += len(ids) - len(won)
        spec = rules.rows[level.alert_level]
        tickets: dict[int, M.Ticket] = {}
        if won and any(a in _PER_TICKET for a in level.actions):
            # Loaded after the UPDATE, so they carry the claimed state.
            tickets = {
                t.id or 0: t
                for t in s.exec(select(M.Ticket).where(col(M.Ticket.id).in_(sorted(won)))).all()
            }
        before_head = f'{{"alert_level": {old_level}, "priority": {json.dumps(rules.name)}, '
        after_json: dict[tuple[Any, ...], str] = {}  # most rows of a group log the same "after"
        for r in members:
            if r.id not in won:
                continue
            ticket = tickets.get(r.id)
            done_level = _fire(desk, s, ctx, r, ticket, spec, now, at, alerts, out.jobs, worker)
            out.fired.append(done_level)
            st = state_of(ticket) if ticket is not None else after
            key = (st.next_at, done_level.notified, done_level.skipped)
            if key not in after_json:
                after_json[key] = to_json(
                    {
                        "alert_level": done_level.level,
                        "next_alert_at": st.next_at.isoformat() if st.next_at else None,
                        "actions": list(done_level.actions),
                        "notified": list(done_level.notified),
                        "skipped": list(done_level.skipped),
                        "worker": worker,
                    }
                )
            # An ISO time needs no escaping, so the per-row part is a plain format.
            before = f'{before_head}"next_alert_at": "{r.next_alert_at.isoformat()}"}}'
            events.append((r.id, desk.os_user, at, before, after_json[key], False))
    if alerts:
        _executemany(s, _INSERT_ALERT, alerts)
    if events:
        _executemany(s, _INSERT_EVENT, events)
    return out


def _stored(type_: Any, dialect: sa.Dialect, value: Any) -> Any:
    """`value` as the column type hands it to the driver (for the plain executemany)."""
    process = type_.bind_processor(dialect)
    return process(value) if process is not None else value


def _fire(
    desk: Desk,
    s: Session,
    ctx: _Context,
    r: _Due,
    ticket: M.Ticket | None,
    spec: M.EscalationLevel,
    now: datetime,
    at: Any,
    alerts: list[tuple[Any, ...]],
    jobs: list[ScriptJob],
    worker: str,
) -> FiredLevel:
    """Apply one level's actions to one claimed ticket, in the order the config lists them."""
    level = spec.alert_level
    notify: dict[int, str] = {}  # agent id -> alert text; one alert per agent and level
    skipped: list[str] = []
    default_text = f"#{r.id} reached escalation level {level}: {r.title}"
    for action in spec.actions:
        owner = ticket.owner_id if ticket is not None else r.owner_id
        if action == "notify_owner":
            if owner is not None and ctx.active_agent(owner) is not None:
                notify.setdefault(owner, default_text)
            else:
                skipped.append("notify_owner: no active owner")
        elif action == "notify_category":
            category = ticket.category_id if ticket is not None else r.category_id
            members = ctx.category_members(category)
            if not members:
                skipped.append("notify_category: the category has no active agents")
            for agent_id in members:
                notify.setdefault(agent_id, default_text)
        elif action == "notify_agents":
            for login in spec.notify_agents:
                agent = ctx.logins.get(login)
                if agent is None or not agent.active:
                    skipped.append(f"notify_agents: no active agent '{login}'")
                else:
                    notify.setdefault(agent.id or 0, default_text)
        elif ticket is None:
            skipped.append(f"{action}: unknown action")
        elif action in NOTICE_TEMPLATES:
            note = _notice_mail(desk, s, ctx, ticket, action, spec)
            if note:
                skipped.append(note)
        elif action == "raise_priority":
            note = _raise_priority(desk, s, ctx, ticket, now)
            if note:
                skipped.append(note)
        elif action == "delegate":
            note = _delegate(desk, s, ctx, ticket, spec, now, notify)
            if note:
                skipped.append(note)
        elif action == "script":
            if spec.script:
                jobs.append(_script_job(desk, s, ctx, ticket, level, tuple(spec.script), worker))
            else:
                skipped.append("script: no command configured")
        else:
            skipped.append(f"{action}: unknown action")
    for agent_id, text in notify.items():
        alerts.append((agent_id, r.id, level, text, at))
    notified = tuple(sorted(ctx.login(a) or str(a) for a in notify))
    return FiredLevel(r.id, level, tuple(spec.actions), notified, tuple(skipped))


def _raise_priority(
    desk: Desk, s: Session, ctx: _Context, ticket: M.Ticket, now: datetime
) -> str | None:
    higher = ctx.higher(ticket.priority_id)
    if higher is None:
        return "raise_priority: already the most urgent priority"
    before = desk._snapshot(ticket)
    desk._accrue(s, ticket, now)  # the time so far counts in the old priority's hours
    ticket.priority_id = higher.id
    apply_event(desk, s, ticket, "priority_changed")
    desk._touch(ticket, now)
    after = {**desk._snapshot(ticket), "priority": higher.name, "by": "escalation"}
    desk._event(s, ticket, "priority", before, after)
    return None


def _delegate(
    desk: Desk,
    s: Session,
    ctx: _Context,
    ticket: M.Ticket,
    spec: M.EscalationLevel,
    now: datetime,
    notify: dict[int, str],
) -> str | None:
    target = ctx.active_agent(spec.delegate_to_id)
    if target is None:
        return "delegate: no active agent to delegate to"
    if ticket.owner_id == target.id:
        return f"delegate: already with {target.login}"
    before = desk._snapshot(ticket)
    ticket.owner_id = target.id
    ticket.read_status = "red"
    apply_event(desk, s, ticket, "reassigned")
    desk._touch(ticket, now)
    after = {**desk._snapshot(ticket), "owner": target.login, "by": "escalation"}
    desk._event(s, ticket, "assign", before, after)
    notify[target.id or 0] = (
        f"#{ticket.id} delegated to you at escalation level {spec.alert_level}: {ticket.title}"
    )
    return None


def _variables(desk: Desk, s: Session, ctx: _Context, ticket: M.Ticket) -> dict[str, str]:
    customers = desk._customer_addresses(s, ticket)
    rules = ctx.rules(ticket.priority_id)
    status = s.get(M.Status, ticket.status_id)
    category = s.get(M.Category, ticket.category_id) if ticket.category_id else None
    owner = ctx.agents.get(ticket.owner_id) if ticket.owner_id else None
    deadline = "-"
    if ticket.deadline_at is not None:
        deadline = ticket.deadline_at.astimezone(desk.tz).strftime("%Y-%m-%d %H:%M")
    return {
        "number": str(ticket.id),
        "title": ticket.title,
        "customer_name": customers[0] if customers else "",
        "customer_email": customers[0] if customers else "",
        "agent_name": owner.name if owner else "",
        "agent_login": owner.login if owner else "",
        "category": category.name if category else "",
        "priority": rules.name if rules else "",
        "deadline": deadline,
        "desk_name": desk.options.name,
        "status": status.name if status else "",
        "level": str(ticket.alert_level),
    }


def _notice_text(s: Session, which: str, variables: Mapping[str, str]) -> tuple[str, str]:
    """The admin's template (folder "escalation", name owner/customer/address) or ours."""
    row = s.exec(
        select(M.ReplyTemplate)
        .where(M.ReplyTemplate.folder == "escalation", M.ReplyTemplate.name == which)
        .order_by(col(M.ReplyTemplate.language) != "en", col(M.ReplyTemplate.id))
    ).first()
    if row is not None:
        try:
            return render(row.subject, variables), render(row.body, variables)
        except TemplateError:
            pass  # a broken template must not stop the level; ours says the same thing
    subject, body = _DEFAULT_NOTICES[which]
    return render(subject, variables), render(body, variables)


def _notice_mail(
    desk: Desk, s: Session, ctx: _Context, ticket: M.Ticket, action: str, spec: M.EscalationLevel
) -> str | None:
    """An automatic notice (Outbox kind "notice") in the same transaction as the level."""
    which = NOTICE_TEMPLATES[action]
    if which == "owner":
        owner = ctx.active_agent(ticket.owner_id)
        if owner is None or not owner.email:
            return f"{action}: the owner has no e-mail address"
        recipients = [owner.email]
    elif which == "customer":
        recipients = desk._customer_addresses(s, ticket)
        if not recipients:
            return f"{action}: the ticket has no customer address"
    else:
        if not spec.email_to:
            return f"{action}: no email_to configured"
        recipients = [spec.email_to]
    variables = _variables(desk, s, ctx, ticket)
    variables["level"] = str(spec.alert_level)
    subject, body = _notice_text(s, which, variables)
    headers: dict[str, str] = {"To": ", ".join(recipients), "Auto-Submitted": "auto-generated"}
    if which == "customer":
        thread, _ = desk._reply_headers(s, ticket)
        headers.update(thread)
    msg = desk._add_message(
        s,
        ticket,
        direction="out",
        visibility="external" if which == "customer" else "internal",
        kind="notice",
        from_addr=desk._from_address(s, ticket),
        from_name=desk.options.name,
        to_addrs=recipients,
        subject=subject,
        body_text=body,
        in_reply_to=headers.get("In-Reply-To", ""),
        references=headers.get("References", ""),
        thread_rule="escalation",
        thread_evidence=f"escalation level {spec.alert_level}: {action}",
    )
    desk._queue_mail(
        s,
        ticket,
        msg,
        kind="notice",
        recipients=recipients,
        subject=subject,
        body=body,
        headers=headers,
    )
    return None


# --------------------------------------------------------------------------- scripts


def _script_job(
    desk: Desk,
    s: Session,
    ctx: _Context,
    ticket: M.Ticket,
    level: int,
    command: tuple[str, ...],
    worker: str,
) -> ScriptJob:
    """The ticket as it stands after the level's other actions, for the script's stdin."""
    v = _variables(desk, s, ctx, ticket)
    data = {
        "number": ticket.id,
        "title": ticket.title,
        "level": level,
        "priority": v["priority"] or None,
        "status": v["status"],
        "owner": v["agent_login"] or None,
        "owner_name": v["agent_name"] or None,
        "category": v["category"] or None,
        "customers": desk._customer_addresses(s, ticket),
        "created": ticket.created_at.isoformat(),
        "deadline": ticket.deadline_at.isoformat() if ticket.deadline_at else None,
        "next_alert_at": ticket.next_alert_at.isoformat() if ticket.next_alert_at else None,
        "desk": desk.options.name,
        "worker": worker,
    }
    env = {k: os.environ[k] for k in SCRIPT_ENV_KEEP if k in os.environ}
    env.update(
        HELPDESK_TICKET=str(ticket.id),
        HELPDESK_LEVEL=str(level),
        HELPDESK_PRIORITY=v["priority"],
        HELPDESK_OWNER=v["agent_login"],
        HELPDESK_SUBJECT=ticket.title,
        HELPDESK_CATEGORY=v["category"],
        HELPDESK_STATUS=v["status"],
        HELPDESK_CUSTOMER=v["customer_email"],
        HELPDESK_DEADLINE=ticket.deadline_at.isoformat() if ticket.deadline_at else "",
        HELPDESK_DESK=desk.options.name,
    )
    # Control characters in a subject are no use to a pager and NUL is refused by execve.
    env = {k: "".join(ch for ch in val if ch >= " " or ch == "\t") for k, val in env.items()}
    return ScriptJob(ticket.id or 0, level, command, json.dumps(data, ensure_ascii=False), env)


def run_script(job: ScriptJob, *, timeout: float = DEFAULT_SCRIPT_TIMEOUT) -> ScriptResult:
    """Run one script; never raises. A script past its timeout is killed with its children."""
    import time

    started = time.monotonic()
    try:
        proc = subprocess.Popen(  # the admin's configured command, no shell
            list(job.command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(job.env),
            start_new_session=True,  # its own process group, so a timeout kills it whole
        )
    except (OSError, ValueError) as exc:
        return ScriptResult(job.ticket, job.level, job.command, None, "", error=str(exc))
    timed_out = False
    try:
        out, _ = proc.communicate(job.stdin.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        try:
            out, _ = proc.communicate(timeout=2)
        except subprocess.TimeoutExpired:  # a grandchild that left the group holds the pipe
            out = b""
            if proc.stdout is not None:
                proc.stdout.close()
            proc.wait()
    text = out.decode("utf-8", errors="replace")
    if len(text) > SCRIPT_OUTPUT_LIMIT:
        text = text[:SCRIPT_OUTPUT_LIMIT] + f"\n[... {len(text) - SCRIPT_OUTPUT_LIMIT} more]"
    return ScriptResult(
        job.ticket,
        job.level,
        job.command,
        None if timed_out else proc.returncode,
        text,
        timed_out=timed_out,
        error=f"killed after {timeout:g} s" if timed_out else "",
        seconds=round(time.monotonic() - started, 3),
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _record_scripts(desk: Desk, s: Session, results: Sequence[ScriptResult], worker: str) -> None:
    now = desk.clock.now()
    for res in results:
        if s.get(M.Ticket, res.ticket) is None:
            continue
        s.add(
            M.TicketEvent(
                ticket_id=res.ticket,
                os_user=desk.os_user,
                at=now,
                action="script",
                before={"level": res.level, "command": list(res.command), "worker": worker},
                after={
                    "exit_code": res.exit_code,
                    "timed_out": res.timed_out,
                    "error": res.error,
                    "output": res.output,
                    "seconds": res.seconds,
                },
            )
        )


# --------------------------------------------------------------------------- timeline


def _local(when: datetime, desk: Desk) -> str:
    """A moment as agents read it: the desk's zone, to the minute (a note, not data)."""
    return when.astimezone(desk.tz).strftime("%Y-%m-%d %H:%M %Z")


def timeline(
    desk: Desk,
    number: int,
    *,
    if_postpone: timedelta | None = None,
    if_priority: str | None = None,
    if_assign: str | None = None,
) -> Timeline:
    """The levels still to come, with their times; the what-ifs are simulated, never written.

    What-ifs apply in this order, all at the present moment: the priority change (its
    priority_changed policy), the new owner (reassigned), then a postponement for the given
    time (the chain pauses now and wakes as a postponed ticket does). Later raises and
    delegations by the levels themselves are followed as the worker would apply them.
    """
    with desk.store.read() as s:
        t = desk._ticket(s, number)
        ctx = _Context(desk, s)
        now = desk.clock.now()
        base = desk._base(s, t)
        priority_id, owner_id = t.priority_id, t.owner_id
        st, deadline = state_of(t), t.deadline_at
        assuming: list[str] = []
        at = now
        active = base == "active"

        def step(policy: str, when: datetime, *, is_active: bool) -> None:
            nonlocal st, deadline
            rules = ctx.rules(priority_id)
            st, restarted = _transition(policy, st, rules, when, active=is_active)
            if restarted:
                deadline = rules.deadline_from(when) if rules is not None else None

        if if_priority is not None:
            pr = desk._priority(s, if_priority)
            assuming.append(f"priority {pr.name}")
            if pr.id != priority_id:
                priority_id = pr.id
                step(ctx.priorities[pr.id].policy("priority_changed"), now, is_active=active)
        if if_assign is not None:
            agent = desk._agent(s, if_assign)
            assuming.append(f"assigned to {agent.login}")
            if agent.id != owner_id:
                owner_id = agent.id
                rules = ctx.rules(priority_id)
                step(rules.policy("reassigned") if rules else "stop", now, is_active=active)
        wake_at: datetime | None = None
        if if_postpone is not None:
            if if_postpone <= timedelta(0):
                raise InvalidAction("a postponement must be longer than zero")
            if base not in ("active", "postponed"):
                raise InvalidAction(f"cannot postpone #{number}: it is {base}")
            step("stop", now, is_active=False)
            wake_at = now + if_postpone
            assuming.append(f"postponed until {_local(wake_at, desk)}")
        elif base == "postponed" and t.activate_at is not None:
            wake_at = max(t.activate_at, now)
        note = ""
        if wake_at is not None:
            rules = ctx.rules(priority_id)
            policy = "continue"
            if rules is not None and rules.policy("new_info") == "restart":
                policy = "restart"
            step(policy, wake_at, is_active=True)
            at = wake_at
            note = f"wakes up {_local(wake_at, desk)}"
        elif not active:
            note = f"the ticket is {base}; its chain is paused"
        levels = _walk(ctx, priority_id, owner_id, st, at, now)
        if not levels and not note:
            note = "no levels to come" if st.running or st.alert_level else "no escalation chain"
        rules = ctx.rules(priority_id)
        return Timeline(
            number=t.id or number,
            priority=rules.name if rules else None,
            owner=ctx.login(owner_id),
            base_status=base,
            alert_level=st.alert_level,
            running=st.running,
            next_alert_at=st.next_at,
            seconds_left=st.seconds_left,
            deadline_at=deadline,
            levels=tuple(levels),
            assuming=tuple(assuming),
            note=note,
        )


def _walk(
    ctx: _Context,
    priority_id: int | None,
    owner_id: int | None,
    st: EscalationState,
    at: datetime,
    now: datetime,
) -> list[UpcomingLevel]:
    """Fire the chain forward on paper: each level when due (or at `at` if overdue by then)."""
    out: list[UpcomingLevel] = []
    while len(out) < TIMELINE_LIMIT:
        rules = ctx.rules(priority_id)
        if rules is None or not st.running or st.next_at is None:
            break
        level = next_level(rules.levels, st.alert_level)
        if level is None:
            break
        spec = rules.rows[level.alert_level]
        fire_at = max(st.next_at, at)
        out.append(
            UpcomingLevel(
                alert_level=level.alert_level,
                at=st.next_at,
                priority=rules.name,
                actions=level.actions,
                overdue=st.next_at < now,
                delegate_to=ctx.login(spec.delegate_to_id),
                notify_agents=tuple(spec.notify_agents),
                email_to=spec.email_to,
                script=tuple(spec.script),
            )
        )
        fired = fire_due(st, rules.levels, fire_at, rules.calendar, rules.only_in_hours)
        if fired is None:  # pragma: no cover - fire_at >= next_at and a level is above
            break
        st, at = fired[1], fire_at
        for action in level.actions:
            if action == "raise_priority":
                higher = ctx.higher(priority_id)
                if higher is not None:
                    priority_id = higher.id
                    st, _ = _transition(
                        higher.policy("priority_changed"), st, higher, fire_at, active=True
                    )
            elif action == "delegate":
                target = ctx.active_agent(spec.delegate_to_id)
                current = ctx.rules(priority_id)
                if target is not None and target.id != owner_id and current is not None:
                    owner_id = target.id
                    st, _ = _transition(
                        current.policy("reassigned"), st, current, fire_at, active=True
                    )
    return out
