"""The agent's actions: one method each, one transaction each, each writing its audit event."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from helpdesk_tui.clock import Clock
from helpdesk_tui.desk import escalation, outbox
from helpdesk_tui.desk import records as R
from helpdesk_tui.desk.errors import Conflict, InvalidAction, NotFound, UnknownAgent
from helpdesk_tui.desk.when import add_months
from helpdesk_tui.desk.worktime import WorkCalendar
from helpdesk_tui.mail.msgid import make_message_id, new_secret
from helpdesk_tui.paths import attachments_dir_for
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store

T = TypeVar("T")

POSTPONE_PRESETS = ("1h", "2h", "3h", "4h", "1d", "1w", "1m")
BASE_STATUSES = ("active", "closed", "postponed", "deleted", "merged")
# Fields of a ticket that undo may put back; each event stores them before and after.
UNDOABLE = {"close", "postpone", "assign", "take", "delete", "merge", "priority", "category"}
_CLOCK_TIMES = ("deadline_at", "next_alert_at")
_CLOCK_VALUES = ("alert_level", "escalation_seconds_left", "escalation_running", "read_status")
_CLOCK = _CLOCK_TIMES + _CLOCK_VALUES
"""A ticket's deadline, escalation state and read status, as events record them for undo."""
_ADDR = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")


@dataclass(frozen=True)
class DeskOptions:
    """Desk-wide facts the rules need, taken from config by the caller."""

    name: str = "Help Desk"
    timezone: str = "UTC"
    domain: str = "helpdesk.invalid"
    default_from: str = ""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def normalize_address(address: str) -> str:
    """Lower-cased bare address; raises InvalidAction for anything that is not one."""
    addr = address.strip().strip("<>").strip().lower()
    if not _ADDR.match(addr):
        raise InvalidAction(f"not an e-mail address: {address!r}")
    return addr


def parse_addresses(value: str) -> tuple[list[str], list[str]]:
    """Addresses typed into a To or Cc field: (the bare addresses, the entries refused).

    Entries are separated as mail clients separate them ("Name <addr>" kept whole, see
    mail.compose.parse_address_list); each must pass both the outgoing mail's check and the
    desk's, so a list that passes here is one every reply or forward will accept.
    """
    from helpdesk_tui.mail.compose import parse_address_list

    good, bad = parse_address_list(value)
    out: list[str] = []
    for _name, addr in good:
        try:
            out.append(normalize_address(addr))
        except InvalidAction:
            bad.append(addr)
    return list(dict.fromkeys(out)), bad


def signed(body: str, signature: str) -> str:
    """A reply's text as the customer gets it: the agent's signature under the "-- " line.

    The one place this is built: reply() sends it, and compose previews it.
    """
    return body + (f"\n\n-- \n{signature}" if signature else "")


def _case_classes(needle: str, escape: Callable[[str], str]) -> str:
    """`needle` as a pattern in which each letter matches its upper and lower case: [Øø]."""
    out: list[str] = []
    for ch in needle:
        cases = dict.fromkeys(
            v for v in (ch, ch.lower(), ch.upper(), ch.title(), ch.casefold()) if len(v) == 1
        )
        out.append(f"[{''.join(cases)}]" if len(cases) > 1 else escape(ch))
    return "".join(out)


def _glob_escape(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[" else ch


def _regex_escape(ch: str) -> str:
    # In a PostgreSQL regular expression a backslash before a non-alphanumeric is that
    # character; before a letter or digit it would start an escape such as \d.
    return ch if ch.isalnum() else "\\" + ch


def _name_contains(dialect: str, needle: str) -> sa.ColumnElement[bool]:
    """Customer.name contains `needle`, in any letter case, non-ASCII letters too.

    SQLite's LIKE and lower() fold ASCII only, and so do PostgreSQL's ILIKE and ~* under the
    C locale: "øy" missed "Øystein". A pattern with both cases of each letter needs no folding
    at all: GLOB on SQLite, a regular expression on PostgreSQL. Either scans the names as the
    LIKE '%...%' before it did, in about the same time (tens of milliseconds for 100,000
    customers, in the register screen's thread worker).
    """
    name = col(M.Customer.name)
    if dialect == "sqlite":
        return name.op("GLOB")(f"*{_case_classes(needle, _glob_escape)}*")
    return name.op("~")(_case_classes(needle, _regex_escape))


def postpone_target(preset: str, now: datetime, tz: ZoneInfo) -> datetime:
    """When a postpone preset (1h..1m) wakes the ticket up."""
    table = {
        "1h": timedelta(hours=1),
        "2h": timedelta(hours=2),
        "3h": timedelta(hours=3),
        "4h": timedelta(hours=4),
        "1d": timedelta(days=1),
        "1w": timedelta(weeks=1),
    }
    if preset in table:
        return now + table[preset]
    if preset == "1m":
        return add_months(now, 1, tz)
    raise InvalidAction(
        f"unknown postpone preset {preset!r}; use one of {', '.join(POSTPONE_PRESETS)}"
    )


class Desk:
    """The desk rules for one acting agent (or the system, when actor is None)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        actor: str | None,
        *,
        os_user: str = "",
        options: DeskOptions | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor
        self.os_user = os_user
        self.options = options or DeskOptions()
        self.tz = ZoneInfo(self.options.timezone)
        self._secret: bytes | None = None

    # ------------------------------------------------------------------ plumbing

    def _write(self, fn: Callable[[Session], T]) -> T:
        return self.store.write(fn)

    def _actor_agent(self, s: Session, *, required: bool = True) -> M.Agent | None:
        if self.actor is None:
            if required:
                raise UnknownAgent("this action needs an acting agent")
            return None
        agent = s.exec(select(M.Agent).where(M.Agent.login == self.actor)).first()
        if agent is None or not agent.active:
            raise UnknownAgent(
                f"'{self.actor}' is not an agent of this desk; an agent can add you with "
                f"`helpdesk agent add {self.actor} --name NAME --email ADDR`"
            )
        return agent

    def _agent(self, s: Session, login: str) -> M.Agent:
        agent = s.exec(select(M.Agent).where(M.Agent.login == login)).first()
        if agent is None:
            raise NotFound(f"no agent with login '{login}'")
        if not agent.active:
            raise InvalidAction(f"agent '{login}' is not active")
        return agent

    def _ticket(self, s: Session, number: int, *, follow_merge: bool = False) -> M.Ticket:
        # In a write, lock the row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes):
        # a second agent acting on the same ticket waits here instead of racing.
        lock = bool(s.info.get("helpdesk_write"))
        ticket = s.get(M.Ticket, number, with_for_update=lock)
        if ticket is None:
            raise NotFound(f"no ticket #{number}")
        seen = {number}
        while follow_merge and ticket.merged_into_id is not None:
            nxt = s.get(M.Ticket, ticket.merged_into_id, with_for_update=lock)
            if nxt is None or nxt.id in seen:
                break
            seen.add(nxt.id)  # type: ignore[arg-type]
            ticket = nxt
        return ticket

    def _status(self, s: Session, name: str) -> M.Status:
        status = s.exec(select(M.Status).where(M.Status.name == name)).first()
        if status is None:
            raise NotFound(f"no status named '{name}'")
        return status

    def _status_for(self, s: Session, base: str, counter: str | None = None) -> M.Status:
        """The desk's status for a base (and counter): the default name first, then any match."""
        preferred = {
            ("active", "queue"): "open",
            ("active", "internal"): "internal",
            ("active", "external"): "external",
            ("active", None): "open",
        }.get((base, counter), base)
        found = s.exec(select(M.Status).where(M.Status.name == preferred)).first()
        if found is not None and found.base == base:
            return found
        query = select(M.Status).where(M.Status.base == base)
        if counter is not None:
            query = query.where(M.Status.counter == counter)
        found = s.exec(query.order_by(col(M.Status.id))).first()
        if found is None and counter is not None:
            return self._status_for(s, base)
        if found is None:
            raise NotFound(f"the desk has no status with base '{base}'")
        return found

    def _priority(self, s: Session, name: str) -> M.Priority:
        pr = s.exec(select(M.Priority).where(M.Priority.name == name)).first()
        if pr is None:
            names = ", ".join(p.name for p in s.exec(select(M.Priority)).all())
            raise NotFound(f"no priority named '{name}' (known: {names})")
        return pr

    def _category(self, s: Session, name: str) -> M.Category:
        cat = s.exec(select(M.Category).where(M.Category.name == name)).first()
        if cat is None:
            raise NotFound(f"no category named '{name}'")
        return cat

    def calendar_for(self, priority: M.Priority | None) -> WorkCalendar:
        if priority is None or not priority.hours:
            return WorkCalendar.always(self.options.timezone)
        return WorkCalendar.from_settings(self.options.timezone, priority.hours, priority.holidays)

    def secret(self) -> bytes:
        """The per-desk HMAC key for our Message-IDs, created on first use."""
        if self._secret is None:
            self._secret = self._write(self._secret_in)
        return self._secret

    def _secret_in(self, s: Session) -> bytes:
        """The secret inside a running transaction (a second one would wait on our own lock)."""
        if self._secret is None:
            row = s.get(M.Meta, "message_id_secret")
            if row is None:
                row = M.Meta(key="message_id_secret", value=new_secret())
                s.add(row)
            self._secret = bytes.fromhex(row.value)
        return self._secret

    def _event(
        self,
        s: Session,
        ticket: M.Ticket | None,
        action: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        *,
        agent: M.Agent | None = None,
    ) -> M.TicketEvent:
        ev = M.TicketEvent(
            ticket_id=ticket.id if ticket else None,
            agent_id=agent.id if agent else None,
            os_user=self.os_user,
            at=self.clock.now(),
            action=action,
            before=before or {},
            after=after or {},
        )
        s.add(ev)
        return ev

    def _check_version(self, s: Session, ticket: M.Ticket, expected: int | None) -> None:
        if expected is None or ticket.version == expected:
            return
        last = s.exec(
            select(M.TicketEvent)
            .where(M.TicketEvent.ticket_id == ticket.id)
            .order_by(col(M.TicketEvent.id).desc())
        ).first()
        who, what = "someone", "the ticket"
        if last is not None:
            agent = s.get(M.Agent, last.agent_id) if last.agent_id else None
            # Name and login: the agent on the other end knows colleagues by name.
            who = f"{agent.name} ({agent.login})" if agent else (last.os_user or "the worker")
            shown = ("owner", "priority", "category", "status", "until", "asked", "to", "into")
            changed = ", ".join(f"{k}={last.after[k]}" for k in shown if k in last.after)
            what = f"{last.action} ({changed})" if changed else last.action
        raise Conflict(
            f"#{ticket.id} was changed by {who} since you opened it: {what}",
            current_version=ticket.version,
        )

    def _touch(self, ticket: M.Ticket, now: datetime) -> None:
        ticket.updated_at = now
        ticket.version += 1

    @staticmethod
    def _snapshot(ticket: M.Ticket) -> dict[str, Any]:
        return {
            "status_id": ticket.status_id,
            "owner_id": ticket.owner_id,
            "priority_id": ticket.priority_id,
            "category_id": ticket.category_id,
            "activate_at": _iso(ticket.activate_at),
            "merged_into_id": ticket.merged_into_id,
            "closed_at": _iso(ticket.closed_at),
            # The ticket's clock and read state: what undo puts back, so taking back a
            # mistaken priority or assignment does not also reset an overdue deadline.
            **{key: _iso(getattr(ticket, key)) for key in _CLOCK_TIMES},
            **{key: getattr(ticket, key) for key in _CLOCK_VALUES},
        }

    # ------------------------------------------------------------------ counters

    def _accrue(self, s: Session, ticket: M.Ticket, now: datetime) -> None:
        """Add the time since the last change to the bucket the current status names."""
        since = ticket.counter_since
        ticket.counter_since = now
        if since is None or now <= since:
            return
        status = s.get(M.Status, ticket.status_id)
        bucket = status.counter if status else "none"
        if bucket not in ("queue", "internal", "external"):
            return
        wall = int((now - since).total_seconds())
        priority = s.get(M.Priority, ticket.priority_id) if ticket.priority_id else None
        work = self.calendar_for(priority).working_seconds(since, now)
        setattr(ticket, f"{bucket}_seconds", getattr(ticket, f"{bucket}_seconds") + wall)
        setattr(ticket, f"{bucket}_work_seconds", getattr(ticket, f"{bucket}_work_seconds") + work)

    def _set_status(self, s: Session, ticket: M.Ticket, status: M.Status, now: datetime) -> None:
        self._accrue(s, ticket, now)
        ticket.status_id = status.id  # type: ignore[assignment]
        if status.base == "closed":
            ticket.closed_at = now
            priority = s.get(M.Priority, ticket.priority_id) if ticket.priority_id else None
            ticket.close_seconds = int((now - ticket.created_at).total_seconds())
            ticket.close_work_seconds = self.calendar_for(priority).working_seconds(
                ticket.created_at, now
            )
        if status.base != "postponed":
            ticket.activate_at = None

    def _base(self, s: Session, ticket: M.Ticket) -> str:
        status = s.get(M.Status, ticket.status_id)
        return status.base if status else "active"

    def _require_base(self, s: Session, ticket: M.Ticket, allowed: Iterable[str], verb: str) -> str:
        base = self._base(s, ticket)
        if base not in allowed:
            hint = ""
            if base == "merged":
                hint = f" (it was merged into #{ticket.merged_into_id})"
            elif base == "deleted":
                hint = "; restore it first"
            raise InvalidAction(f"cannot {verb} #{ticket.id}: it is {base}{hint}")
        return base

    # ------------------------------------------------------------------ agents and customers

    def add_agent(
        self, login: str, name: str, email: str, signature: str = "", *, bootstrap_ok: bool = True
    ) -> R.AgentRecord:
        """Add an agent; on a store with no agents yet, anyone may add the first one."""
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", login):
            raise InvalidAction(f"not a valid login name: {login!r}")
        email_n = normalize_address(email) if email else ""

        def fn(s: Session) -> R.AgentRecord:
            any_agent = s.exec(select(M.Agent.id).limit(1)).first()
            actor = None
            if any_agent is not None or not bootstrap_ok:
                actor = self._actor_agent(s)
            if s.exec(select(M.Agent).where(M.Agent.login == login)).first():
                raise InvalidAction(f"agent '{login}' exists already")
            agent = M.Agent(
                login=login,
                name=name,
                email=email_n,
                signature=signature,
                created_at=self.clock.now(),
            )
            s.add(agent)
            s.flush()
            self._event(s, None, "agent_add", {}, {"login": login}, agent=actor)
            return _agent_record(agent)

        return self._write(fn)

    def set_agent_active(self, login: str, active: bool) -> R.AgentRecord:
        def fn(s: Session) -> R.AgentRecord:
            actor = self._actor_agent(s)
            agent = s.exec(select(M.Agent).where(M.Agent.login == login)).first()
            if agent is None:
                raise NotFound(f"no agent with login '{login}'")
            agent.active = active
            self._event(s, None, "agent_active", {"login": login}, {"active": active}, agent=actor)
            return _agent_record(agent)

        return self._write(fn)

    def agents(self) -> list[R.AgentRecord]:
        with self.store.read() as s:
            rows = s.exec(select(M.Agent).order_by(col(M.Agent.login))).all()
            return [_agent_record(a) for a in rows]

    def whoami(self) -> R.AgentRecord:
        with self.store.read() as s:
            agent = self._actor_agent(s)
            assert agent is not None
            return _agent_record(agent)

    def _customer_for(self, s: Session, address: str, name: str = "") -> M.Customer:
        addr = normalize_address(address)
        row = s.exec(select(M.CustomerAddress).where(M.CustomerAddress.address == addr)).first()
        if row is not None:
            customer = s.get(M.Customer, row.customer_id)
            assert customer is not None
            if name and not customer.name:
                customer.name = name
            return customer
        customer = M.Customer(name=name, created_at=self.clock.now())
        s.add(customer)
        s.flush()
        s.add(M.CustomerAddress(customer_id=customer.id, address=addr))  # type: ignore[arg-type]
        return customer

    # ------------------------------------------------------------------ register

    def _choose_owner(self, s: Session, category: M.Category | None) -> M.Agent | None:
        if category is None or category.assign_method == "queue":
            return None
        agents = s.exec(
            select(M.Agent)
            .join(M.CategoryAgent, col(M.CategoryAgent.agent_id) == col(M.Agent.id))
            .where(M.CategoryAgent.category_id == category.id, col(M.Agent.active).is_(True))
            .order_by(col(M.Agent.id))
        ).all()
        if not agents:
            return None
        if category.assign_method == "round_robin":
            ids = [a.id for a in agents]
            last = category.last_assigned_agent_id
            idx = (ids.index(last) + 1) % len(ids) if last in ids else 0
            chosen = agents[idx]
            category.last_assigned_agent_id = chosen.id
            return chosen
        active_ids = select(M.Status.id).where(M.Status.base == "active")
        counts = dict(
            s.exec(
                select(M.Ticket.owner_id, sa.func.count())
                .where(col(M.Ticket.owner_id).in_([a.id for a in agents]))
                .where(col(M.Ticket.status_id).in_(active_ids))
                .group_by(col(M.Ticket.owner_id))
            ).all()
        )
        return min(agents, key=lambda a: (counts.get(a.id, 0), a.id))

    def _start_clock(self, s: Session, ticket: M.Ticket, priority: M.Priority | None) -> None:
        """A new deadline and chain from now, whatever the policies say (desk.escalation)."""
        escalation.wake(self, s, ticket, policy="restart")

    def register(
        self,
        *,
        customer_email: str,
        subject: str,
        body: str = "",
        customer_name: str = "",
        priority: str | None = None,
        category: str | None = None,
        owner: str | None = None,
        via: str = "phone",
        tags: Sequence[str] = (),
    ) -> R.TicketDetail:
        """Register a request by hand (the phone scenario)."""
        subject = subject.strip()
        if not subject:
            raise InvalidAction("a request needs a subject")

        def fn(s: Session) -> int:
            actor = self._actor_agent(s)
            customer = self._customer_for(s, customer_email, customer_name)
            ticket = self._new_ticket(
                s,
                subject,
                customer,
                priority=priority,
                category=category,
                owner=owner,
                actor=actor,
            )
            now = ticket.created_at
            msg = M.Message(
                ticket_id=ticket.id,  # type: ignore[arg-type]
                direction="in",
                visibility="external",
                kind=via,
                author_agent_id=actor.id if actor else None,
                from_addr=normalize_address(customer_email),
                from_name=customer_name,
                subject=subject,
                body_text=body,
                thread_rule="manual",
                thread_evidence=f"registered by {self.actor} ({via})",
                created_at=now,
            )
            s.add(msg)
            ticket.message_count = 1
            for tag in tags:
                s.add(M.TicketTag(ticket_id=ticket.id, tag=tag))  # type: ignore[arg-type]
            return ticket.id  # type: ignore[return-value]

        number = self._write(fn)
        return self.show(number)

    def _new_ticket(
        self,
        s: Session,
        subject: str,
        customer: M.Customer,
        *,
        priority: str | None,
        category: str | None,
        owner: str | None,
        actor: M.Agent | None,
        mailbox: M.Mailbox | None = None,
    ) -> M.Ticket:
        now = self.clock.now()
        cat = self._category(s, category) if category else None
        if cat is None and mailbox is not None and mailbox.category_id:
            cat = s.get(M.Category, mailbox.category_id)
        if cat is None:
            cat = s.exec(select(M.Category).order_by(col(M.Category.id))).first()
        pr: M.Priority | None = None
        if priority:
            pr = self._priority(s, priority)
        elif mailbox is not None and mailbox.priority_id:
            pr = s.get(M.Priority, mailbox.priority_id)
        elif cat is not None and cat.default_priority_id:
            pr = s.get(M.Priority, cat.default_priority_id)
        if pr is None:
            pr = s.exec(select(M.Priority).where(M.Priority.name == "Normal")).first()
        owner_agent = self._agent(s, owner) if owner else self._choose_owner(s, cat)
        status = self._status_for(s, "active", "queue")
        ticket = M.Ticket(
            title=subject,
            status_id=status.id,  # type: ignore[arg-type]
            category_id=cat.id if cat else None,
            priority_id=pr.id if pr else None,
            owner_id=owner_agent.id if owner_agent else None,
            mailbox_id=mailbox.id if mailbox else None,
            created_at=now,
            updated_at=now,
            counter_since=now,
            read_status="red",
        )
        s.add(ticket)
        s.flush()
        s.add(M.TicketCustomer(ticket_id=ticket.id, customer_id=customer.id))  # type: ignore[arg-type]
        escalation.apply_event(self, s, ticket, "new")
        self._event(
            s,
            ticket,
            "create",
            {},
            {
                "title": subject,
                "owner": owner_agent.login if owner_agent else None,
                "priority": pr.name if pr else None,
                "category": cat.name if cat else None,
            },
            agent=actor,
        )
        if owner_agent is not None and (actor is None or owner_agent.id != actor.id):
            self._alert(
                s, owner_agent, ticket, "assigned", f"#{ticket.id} assigned to you: {subject}"
            )
        return ticket

    def _alert(
        self,
        s: Session,
        agent: M.Agent,
        ticket: M.Ticket | None,
        kind: str,
        text: str,
        level: int = 0,
    ) -> None:
        s.add(
            M.Alert(
                agent_id=agent.id,  # type: ignore[arg-type]
                ticket_id=ticket.id if ticket else None,
                kind=kind,
                level=level,
                text=text,
                created_at=self.clock.now(),
            )
        )

    # ------------------------------------------------------------------ reading

    def read(self, number: int) -> R.TicketDetail:
        """Open a ticket; the owner's first look marks it read (green) and is remembered."""

        def unread_owner(s: Session, ticket: M.Ticket) -> M.Agent | None:
            """The acting agent when they own the ticket and have not read it yet."""
            actor = self._actor_agent(s, required=False)
            if actor is not None and ticket.owner_id == actor.id and ticket.read_status != "green":
                return actor
            return None

        def fn(s: Session) -> int:
            ticket = self._ticket(s, number)
            actor = unread_owner(s, ticket)
            if actor is not None:
                before = {"read_status": ticket.read_status}
                ticket.read_status = "green"
                if ticket.first_read_at is None:
                    ticket.first_read_at = self.clock.now()
                # No version bump: being read changes nothing another agent acts on, and a
                # bump would turn a colleague's concurrent action into a spurious conflict.
                escalation.apply_event(self, s, ticket, "read")
                self._event(s, ticket, "read", before, {"read_status": "green"}, agent=actor)
            return ticket.id  # type: ignore[return-value]

        # Most opens change nothing: check in a read transaction and take the write lock only
        # for the owner's first look, so opening tickets never queues behind other writers.
        with self.store.read() as s:
            ticket = self._ticket(s, number)
            if unread_owner(s, ticket) is None:
                return self._detail(s, ticket)
        return self.show(self._write(fn))

    def show(self, number: int) -> R.TicketDetail:
        with self.store.read() as s:
            return self._detail(s, self._ticket(s, number))

    def resolve(self, number: int) -> int:
        """The number that now holds ticket `number` (follows merges)."""
        with self.store.read() as s:
            return self._ticket(s, number, follow_merge=True).id  # type: ignore[return-value]

    # ------------------------------------------------------------------ messages

    def _add_message(self, s: Session, ticket: M.Ticket, **fields: Any) -> M.Message:
        msg = M.Message(ticket_id=ticket.id, created_at=self.clock.now(), **fields)  # type: ignore[arg-type]
        s.add(msg)
        s.flush()
        ticket.message_count += 1
        return msg

    def _customer_addresses(self, s: Session, ticket: M.Ticket) -> list[str]:
        rows = s.exec(
            select(M.CustomerAddress.address, M.CustomerAddress.customer_id)
            .join(
                M.TicketCustomer,
                col(M.TicketCustomer.customer_id) == col(M.CustomerAddress.customer_id),
            )
            .where(M.TicketCustomer.ticket_id == ticket.id)
            .order_by(col(M.CustomerAddress.id))
        ).all()
        seen: dict[int, str] = {}
        for address, customer_id in rows:
            seen.setdefault(customer_id, address)
        return list(seen.values())

    def _last_customer_message(self, s: Session, ticket: M.Ticket) -> M.Message | None:
        return s.exec(
            select(M.Message)
            .where(
                M.Message.ticket_id == ticket.id,
                M.Message.direction == "in",
                M.Message.visibility == "external",
            )
            .order_by(col(M.Message.created_at).desc(), col(M.Message.id).desc())
        ).first()

    def _from_address(self, s: Session, ticket: M.Ticket) -> str:
        if ticket.mailbox_id:
            mb = s.get(M.Mailbox, ticket.mailbox_id)
            if mb is not None:
                return mb.address
        if self.options.default_from:
            return self.options.default_from
        mb = s.exec(select(M.Mailbox).order_by(col(M.Mailbox.id))).first()
        return mb.address if mb else f"support@{self.options.domain}"

    def _own_addresses(self, s: Session, ticket: M.Ticket) -> set[str]:
        """Every address that is the desk itself, lower-cased: reply-all never copies these.

        The customer wrote to one of our mailboxes, maybe another than the one we answer
        from, or Cc'd a colleague; copying any of them would mail the desk its own reply.
        """
        own = {self._from_address(s, ticket), self.options.default_from}
        own.update(s.exec(select(M.Mailbox.address)).all())
        own.update(s.exec(select(M.Agent.email)).all())
        # What the desk sent this ticket's mail from: an address since dropped from the
        # config, or one a desk without mailboxes (the demo's) used, is still ours.
        own.update(
            s.exec(
                select(M.Message.from_addr)
                .where(M.Message.ticket_id == ticket.id, M.Message.direction == "out")
                .distinct()
            ).all()
        )
        return {a.strip().lower() for a in own if a and a.strip()}

    def _queue_mail(
        self,
        s: Session,
        ticket: M.Ticket,
        msg: M.Message,
        *,
        kind: str,
        recipients: Sequence[str],
        subject: str,
        body: str,
        headers: dict[str, str],
        attachment_ids: Sequence[int] = (),
    ) -> M.Outbox:
        """Put a mail in the outbox in the same transaction as its ticket message."""
        rfc_id = make_message_id(ticket.id, msg.id, self._secret_in(s), self.options.domain)  # type: ignore[arg-type]
        msg.rfc_message_id = rfc_id
        item = M.Outbox(
            ticket_id=ticket.id,
            message_id=msg.id,
            kind=kind,
            state="queued",
            next_attempt_at=self.clock.now(),
            rfc_message_id=rfc_id,
            mail_from=msg.from_addr,
            recipients=list(recipients),
            subject=subject,
            body=body,
            headers=headers,
            attachment_ids=list(attachment_ids),
            created_at=self.clock.now(),
        )
        s.add(item)
        s.flush()
        outbox.prebuild(
            s,
            item,
            attachments_dir=attachments_dir_for(self.store.url),
            desk_name=self.options.name,
            loop=self.options.domain,
            date=self.clock.now(),
        )
        return item

    def _reply_headers(
        self, s: Session, ticket: M.Ticket
    ) -> tuple[dict[str, str], M.Message | None]:
        last = self._last_customer_message(s, ticket)
        headers: dict[str, str] = {}
        if last is not None and last.rfc_message_id:
            refs = (last.references.split() if last.references else []) + [last.rfc_message_id]
            headers["In-Reply-To"] = last.rfc_message_id
            headers["References"] = " ".join(refs[-10:])
        return headers, last

    def reply(
        self,
        number: int,
        body: str,
        *,
        cc: Sequence[str] = (),
        reply_all: bool = False,
        time_spent: int = 0,
        expected_version: int | None = None,
    ) -> R.MessageRecord:
        """Answer the customer; queued in the outbox. The first reply sets replied_at."""
        if not body.strip():
            raise InvalidAction("a reply needs a text")

        def fn(s: Session) -> int:
            actor = self._actor_agent(s)
            assert actor is not None
            ticket = self._ticket(s, number)
            self._check_version(s, ticket, expected_version)
            self._require_base(s, ticket, ("active", "closed", "postponed"), "reply to")
            to = self._customer_addresses(s, ticket)
            if not to:
                raise InvalidAction(f"#{number} has no customer address to reply to")
            headers, last = self._reply_headers(s, ticket)
            cc_list = [normalize_address(a) for a in cc]
            if reply_all and last is not None:
                own = self._own_addresses(s, ticket)
                for addr in [*last.to_addrs, *last.cc_addrs]:
                    low = addr.strip().lower()
                    if low and low not in own and low not in to and low not in cc_list:
                        cc_list.append(low)
            now = self.clock.now()
            from_addr = self._from_address(s, ticket)
            subject = f"Re: {ticket.title}"
            msg = self._add_message(
                s,
                ticket,
                direction="out",
                visibility="external",
                kind="reply",
                author_agent_id=actor.id,
                from_addr=from_addr,
                from_name=actor.name,
                to_addrs=to,
                cc_addrs=cc_list,
                subject=subject,
                body_text=body,
                in_reply_to=headers.get("In-Reply-To", ""),
                references=headers.get("References", ""),
                time_spent_seconds=time_spent,
            )
            body_out = signed(body, actor.signature)
            self._queue_mail(
                s,
                ticket,
                msg,
                kind="reply",
                recipients=[*to, *cc_list],
                subject=subject,
                body=body_out,
                headers={**headers, "To": ", ".join(to), "Cc": ", ".join(cc_list)},
            )
            first = ticket.replied_at is None
            if first:
                ticket.replied_at = now
                priority = s.get(M.Priority, ticket.priority_id) if ticket.priority_id else None
                ticket.first_reply_seconds = int((now - ticket.created_at).total_seconds())
                ticket.first_reply_work_seconds = self.calendar_for(priority).working_seconds(
                    ticket.created_at, now
                )
            ticket.reply_count += 1
            if self._base(s, ticket) == "postponed":
                self._set_status(s, ticket, self._status_for(s, "active", "queue"), now)
            else:
                self._accrue(s, ticket, now)
            self._touch(ticket, now)
            self._event(s, ticket, "reply", {}, {"message_id": msg.id, "first": first}, agent=actor)
            return msg.id  # type: ignore[return-value]

        return self.message(self._write(fn))

    def note(
        self,
        number: int,
        body: str,
        *,
        time_spent: int = 0,
        expected_version: int | None = None,
    ) -> R.MessageRecord:
        """An internal note: never leaves the desk."""
        if not body.strip():
            raise InvalidAction("a note needs a text")

        def fn(s: Session) -> int:
            actor = self._actor_agent(s)
            assert actor is not None
            ticket = self._ticket(s, number)
            self._check_version(s, ticket, expected_version)
            self._require_base(s, ticket, ("active", "closed", "postponed"), "add a note to")
            msg = self._add_message(
                s,
                ticket,
                direction="out",
                visibility="internal",
                kind="note",
                author_agent_id=actor.id,
                from_addr=actor.email,
                from_name=actor.name,
                subject=f"Note on #{number}",
                body_text=body,
                time_spent_seconds=time_spent,
            )
            now = self.clock.now()
            self._touch(ticket, now)
            self._event(s, ticket, "note", {}, {"message_id": msg.id}, agent=actor)
            return msg.id  # type: ignore[return-value]

        return self.message(self._write(fn))

    def ask(
        self, number: int, colleague: str, body: str, *, expected_version: int | None = None
    ) -> R.MessageRecord:
        """Ask a colleague: reassign to them, file the question internally, follow the ticket."""
        if not body.strip():
            raise InvalidAction("a question needs a text")

        def fn(s: Session) -> int:
            actor = self._actor_agent(s)
            assert actor is not None
            ticket = self._ticket(s, number)
            self._check_version(s, ticket, expected_version)
            self._require_base(s, ticket, ("active", "postponed"), "ask for help on")
            other = self._agent(s, colleague)
            if other.id == actor.id:
                raise InvalidAction("you cannot ask yourself for help")
            now = self.clock.now()
            before = self._snapshot(ticket)
            msg = self._add_message(
                s,
                ticket,
                direction="out",
                visibility="internal",
                kind="ask",
                author_agent_id=actor.id,
                from_addr=actor.email,
                from_name=actor.name,
                to_addrs=[other.email] if other.email else [],
                subject=f"{actor.name} asks {other.name} about #{number}",
                body_text=body,
            )
            ticket.owner_id = other.id
            ticket.read_status = "red"
            self._set_status(s, ticket, self._status_for(s, "active", "internal"), now)
            escalation.apply_event(self, s, ticket, "reassigned")
            self._follow(s, ticket, actor)
            self._touch(ticket, now)
            self._event(
                s,
                ticket,
                "ask",
                before,
                {**self._snapshot(ticket), "asked": other.login, "message_id": msg.id},
                agent=actor,
            )
            self._alert(s, other, ticket, "asked", f"{actor.name} asks for your help on #{number}")
            return msg.id  # type: ignore[return-value]

        return self.message(self._write(fn))

    def _follow(self, s: Session, ticket: M.Ticket, agent: M.Agent, kind: str = "follow") -> None:
        if s.get(M.Follower, (ticket.id, agent.id, kind)) is None:
            s.add(M.Follower(ticket_id=ticket.id, agent_id=agent.id, kind=kind))  # type: ignore[arg-type]

    def follow(self, number: int, *, kind: str = "follow", on: bool = True) -> None:
        def fn(s: Session) -> None:
            actor = self._actor_agent(s)
            assert actor is not None
            ticket = self._ticket(s, number)
            row = s.get(M.Follower, (ticket.id, actor.id, kind))
            if on:
                self._follow(s, ticket, actor, kind)
            elif row is not None:
                s.delete(row)

        self._write(fn)

    def forward(
        self,
        number: int,
        to: str,
        body: str = "",
        *,
        attachment_ids: Sequence[int] = (),
        include_conversation: bool = True,
        expected_version: int | None = None,
    ) -> R.MessageRecord:
        """Forward to an external party; recorded internally, their answer comes back hidden."""
        party = normalize_address(to)

        def fn(s: Session) -> int:
            actor = self._actor_agent(s)
            assert actor is not None
            ticket = self._ticket(s, number)
            self._check_version(s, ticket, expected_version)
            self._require_base(s, ticket, ("active", "postponed"), "forward")
            if attachment_ids:
                known = set(
                    s.exec(
                        select(M.Attachment.id)
                        .join(M.Message, col(M.Message.id) == col(M.Attachment.message_id))
                        .where(M.Message.ticket_id == ticket.id)
                    ).all()
                )
                missing = [a for a in attachment_ids if a not in known]
                if missing:
                    raise NotFound(f"#{number} has no attachment {missing[0]}")
            now = self.clock.now()
            text = body
            last = self._last_customer_message(s, ticket)
            if include_conversation and last is not None:
                text += (
                    f"\n\n---------- Forwarded message ----------\nFrom: {last.from_name} "
                    f"<{last.from_addr}>\nSubject: {last.subject}\n\n{last.body_text}"
                )
            from_addr = self._from_address(s, ticket)
            subject = f"Fwd: {ticket.title}"
            msg = self._add_message(
                s,
                ticket,
                direction="out",
                visibility="internal",
                kind="forward",
                author_agent_id=actor.id,
                from_addr=from_addr,
                from_name=actor.name,
                to_addrs=[party],
                subject=subject,
                body_text=text,
            )
            self._queue_mail(
                s,
                ticket,
                msg,
                kind="forward",
                recipients=[party],
                subject=subject,
                body=text,
                headers={"To": party},
                attachment_ids=attachment_ids,
            )
            if s.get(M.ExternalParty, (ticket.id, party)) is None:
                s.add(M.ExternalParty(ticket_id=ticket.id, address=party))  # type: ignore[arg-type]
            before = self._snapshot(ticket)
            self._set_status(s, ticket, self._status_for(s, "active", "external"), now)
            self._touch(ticket, now)
            self._event(
                s,
                ticket,
                "forward",
                before,
                {**self._snapshot(ticket), "to": party, "message_id": msg.id},
                agent=actor,
            )
            return msg.id  # type: ignore[return-value]

        return self.message(self._write(fn))

    def message(self, message_id: int) -> R.MessageRecord:
        with self.store.read() as s:
            msg = s.get(M.Message, message_id)
            if msg is None:
                raise NotFound(f"no message {message_id}")
            return self._messages(s, [msg])[0]

    # ------------------------------------------------------------------ lifecycle

    def _change(
        self,
        number: int,
        action: str,
        mutate: Callable[[Session, M.Ticket, M.Agent | None, datetime], dict[str, Any] | None],
        *,
        expected_version: int | None = None,
        actor_required: bool = True,
    ) -> R.TicketDetail:
        """The common shape of a lifecycle action: load, check, mutate, bump, log."""

        def fn(s: Session) -> int:
            actor = self._actor_agent(s, required=actor_required)
            ticket = self._ticket(s, number)
            self._check_version(s, ticket, expected_version)
            before = self._snapshot(ticket)
            now = self.clock.now()
            extra = mutate(s, ticket, actor, now) or {}
            self._touch(ticket, now)
            self._event(s, ticket, action, before, {**self._snapshot(ticket), **extra}, agent=actor)
            return ticket.id  # type: ignore[return-value]

        return self.show(self._write(fn))

    def assign(
        self, number: int, login: str | None, *, expected_version: int | None = None
    ) -> R.TicketDetail:
        """Give the ticket to an agent (None puts it back in the queue)."""

        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            self._require_base(s, t, ("active", "postponed"), "assign")
            agent = self._agent(s, login) if login else None
            if (agent.id if agent else None) == t.owner_id:
                raise InvalidAction(
                    f"#{number} is already {'with ' + login if login else 'unassigned'}"
                )
            t.owner_id = agent.id if agent else None
            if agent is None or actor is None or agent.id != actor.id:
                t.read_status = "red"  # new to its owner; assigning it to yourself is a take
            escalation.apply_event(self, s, t, "reassigned")
            if agent is not None and (actor is None or agent.id != actor.id):
                self._alert(s, agent, t, "assigned", f"#{number} assigned to you: {t.title}")
            return {"owner": login}

        return self._change(number, "assign", mutate, expected_version=expected_version)

    def take(self, number: int, *, expected_version: int | None = None) -> R.TicketDetail:
        """Take the ticket yourself."""

        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            assert actor is not None
            self._require_base(s, t, ("active", "postponed"), "take")
            if t.owner_id == actor.id:
                raise InvalidAction(f"#{number} is already yours")
            t.owner_id = actor.id
            escalation.apply_event(self, s, t, "reassigned")
            return {"owner": actor.login}

        return self._change(number, "take", mutate, expected_version=expected_version)

    def set_priority(
        self, number: int, name: str, *, expected_version: int | None = None
    ) -> R.TicketDetail:
        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            self._require_base(s, t, ("active", "postponed", "closed"), "change the priority of")
            pr = self._priority(s, name)
            if pr.id == t.priority_id:
                raise InvalidAction(f"#{number} has priority {name} already")
            self._accrue(s, t, now)
            t.priority_id = pr.id
            t.updated_at = now
            escalation.apply_event(self, s, t, "priority_changed")
            return {"priority": pr.name}

        return self._change(number, "priority", mutate, expected_version=expected_version)

    def set_category(
        self, number: int, name: str, *, expected_version: int | None = None
    ) -> R.TicketDetail:
        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            cat = self._category(s, name)
            if cat.id == t.category_id:
                raise InvalidAction(f"#{number} is in {name} already")
            t.category_id = cat.id
            return {"category": cat.name}

        return self._change(number, "category", mutate, expected_version=expected_version)

    def mark_reviewed(self, number: int, *, expected_version: int | None = None) -> R.TicketDetail:
        """An agent has looked at what intake could not be sure of (a mail it could not read,
        a thread it guessed): the ticket leaves "Needs review", its messages keep their note."""

        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            if not t.needs_review:
                raise InvalidAction(f"#{number} needs no review")
            t.needs_review = False
            return {"reviewed": True}

        return self._change(number, "reviewed", mutate, expected_version=expected_version)

    def set_status(
        self, number: int, name: str, *, expected_version: int | None = None
    ) -> R.TicketDetail:
        """Move to any desk-defined status whose base is active (others have their own actions)."""

        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            status = self._status(s, name)
            if status.base != "active":
                raise InvalidAction(f"use the {status.base} action to make a ticket {status.base}")
            self._require_base(s, t, ("active",), "change the status of")
            self._set_status(s, t, status, now)
            return {"status": name}

        return self._change(number, "status", mutate, expected_version=expected_version)

    def close(self, number: int, *, expected_version: int | None = None) -> R.TicketDetail:
        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            self._require_base(s, t, ("active", "postponed"), "close")
            self._set_status(s, t, self._status_for(s, "closed"), now)
            escalation.apply_event(self, s, t, "closed")
            return {}

        return self._change(number, "close", mutate, expected_version=expected_version)

    def reopen(self, number: int) -> R.TicketDetail:
        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            self._require_base(s, t, ("closed",), "reopen")
            self._set_status(s, t, self._status_for(s, "active", "queue"), now)
            t.closed_at = None
            escalation.wake(self, s, t, policy="continue")
            return {}

        return self._change(number, "reopen", mutate)

    def postpone(
        self,
        number: int,
        *,
        until: datetime | None = None,
        preset: str | None = None,
        expected_version: int | None = None,
    ) -> R.TicketDetail:
        """Put the ticket aside until a time; the worker wakes it up (reactivate_due)."""
        if (until is None) == (preset is None):
            raise InvalidAction("postpone needs either a time or a preset")

        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            self._require_base(s, t, ("active", "postponed"), "postpone")
            when = until if until is not None else postpone_target(preset or "", now, self.tz)
            if when.tzinfo is None:
                raise InvalidAction("postpone time needs a time zone")
            if when <= now:
                raise InvalidAction(
                    f"cannot postpone #{number} into the past "
                    f"({when.astimezone(self.tz):%Y-%m-%d %H:%M})"
                )
            self._set_status(s, t, self._status_for(s, "postponed"), now)
            t.activate_at = when.astimezone(UTC)
            escalation.pause(self, s, t)
            return {"until": when.isoformat()}

        return self._change(number, "postpone", mutate, expected_version=expected_version)

    def reactivate_due(self, limit: int = 500, chunk: int = 50) -> list[int]:
        """Wake postponed tickets whose time has come and tell their owners (a worker duty).

        In transactions of `chunk` tickets (about 0.1 s each): a backlog of hundreds (a desk
        back from a long weekend) never holds the write lock for a second, in which every
        agent's next action would wait, and the app running the duty keeps answering keys.
        """
        woke: list[int] = []
        while len(woke) < limit:
            size = min(chunk, limit - len(woke))
            batch = self._write(partial(self._reactivate, limit=size))
            woke += batch
            if len(batch) < size:
                break
        return woke

    def _reactivate(self, s: Session, limit: int) -> list[int]:
        now = self.clock.now()
        due = s.exec(
            select(M.Ticket)
            .join(M.Status, col(M.Status.id) == col(M.Ticket.status_id))
            .where(M.Status.base == "postponed", col(M.Ticket.activate_at) <= now)
            .order_by(col(M.Ticket.activate_at))
            .limit(limit)
        ).all()
        woke: list[int] = []
        for t in due:
            before = self._snapshot(t)
            self._set_status(s, t, self._status_for(s, "active", "queue"), now)
            t.read_status = "yellow" if t.read_status == "green" else t.read_status
            escalation.wake(self, s, t)
            self._touch(t, now)
            self._event(s, t, "reactivate", before, self._snapshot(t))
            if t.owner_id:
                owner = s.get(M.Agent, t.owner_id)
                if owner is not None:
                    self._alert(s, owner, t, "reactivated", f"#{t.id} is back: {t.title}")
            woke.append(t.id)  # type: ignore[arg-type]
        return woke

    def delete(self, number: int, *, expected_version: int | None = None) -> R.TicketDetail:
        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            self._require_base(s, t, ("active", "closed", "postponed"), "delete")
            self._set_status(s, t, self._status_for(s, "deleted"), now)
            escalation.apply_event(self, s, t, "closed")
            return {}

        return self._change(number, "delete", mutate, expected_version=expected_version)

    def restore(self, number: int) -> R.TicketDetail:
        """Undelete: back to the status it had before it was deleted."""

        def mutate(s: Session, t: M.Ticket, actor: M.Agent | None, now: datetime) -> dict[str, Any]:
            self._require_base(s, t, ("deleted",), "restore")
            last = s.exec(
                select(M.TicketEvent)
                .where(M.TicketEvent.ticket_id == t.id, M.TicketEvent.action == "delete")
                .order_by(col(M.TicketEvent.id).desc())
            ).first()
            status = None
            if last is not None and last.before.get("status_id"):
                status = s.get(M.Status, last.before["status_id"])
            if status is None or status.base in ("deleted", "merged"):
                status = self._status_for(s, "active", "queue")
            self._set_status(s, t, status, now)
            if status.base == "postponed" and last is not None:
                t.activate_at = _parse_iso(last.before.get("activate_at"))
            if status.base == "active":
                escalation.wake(self, s, t, policy="continue")
            return {}

        return self._change(number, "restore", mutate)

    # ------------------------------------------------------------------ merge and split

    def merge(
        self, number: int, into: int, *, expected_version: int | None = None
    ) -> R.TicketDetail:
        """Merge `number` into `into`: messages and customers move; the old number resolves."""
        if number == into:
            raise InvalidAction(f"cannot merge #{number} into itself")

        def fn(s: Session) -> int:
            actor = self._actor_agent(s)
            src = self._ticket(s, number)
            self._check_version(s, src, expected_version)
            dst = self._ticket(s, into)
            self._require_base(s, src, ("active", "closed", "postponed"), "merge")
            dst_base = self._base(s, dst)
            if dst_base == "merged":
                raise InvalidAction(
                    f"cannot merge into #{into}: it was itself merged into #{dst.merged_into_id}"
                )
            if dst_base == "deleted":
                raise InvalidAction(f"cannot merge into #{into}: it is deleted")
            now = self.clock.now()
            moved = list(s.exec(select(M.Message.id).where(M.Message.ticket_id == src.id)).all())
            src_customers = set(
                s.exec(
                    select(M.TicketCustomer.customer_id).where(M.TicketCustomer.ticket_id == src.id)
                ).all()
            )
            dst_customers = set(
                s.exec(
                    select(M.TicketCustomer.customer_id).where(M.TicketCustomer.ticket_id == dst.id)
                ).all()
            )
            added_customers = sorted(src_customers - dst_customers)
            s.execute(
                sa.update(M.Message)
                .where(col(M.Message.ticket_id) == src.id)
                .values(ticket_id=dst.id)
            )
            for cid in added_customers:
                s.add(M.TicketCustomer(ticket_id=dst.id, customer_id=cid))  # type: ignore[arg-type]
            before = self._snapshot(src)
            self._set_status(s, src, self._status_for(s, "merged"), now)
            src.merged_into_id = dst.id
            escalation.pause(self, s, src)
            count = len(moved)
            src.message_count -= count
            dst.message_count += count
            dst.read_status = "yellow" if dst.read_status == "green" else dst.read_status
            self._touch(src, now)
            self._touch(dst, now)
            info = {"into": dst.id, "messages": moved, "customers": added_customers}
            self._event(s, src, "merge", before, {**self._snapshot(src), **info}, agent=actor)
            self._event(s, dst, "merged_in", {}, {"from": src.id, "messages": moved}, agent=actor)
            return dst.id  # type: ignore[return-value]

        return self.show(self._write(fn))

    def unmerge(self, number: int) -> R.TicketDetail:
        """Undo a merge. `number` is the merged ticket, or the survivor (its latest merge)."""

        def fn(s: Session) -> int:
            actor = self._actor_agent(s)
            ticket = self._ticket(s, number)
            if self._base(s, ticket) == "merged":
                ev = s.exec(
                    select(M.TicketEvent)
                    .where(
                        M.TicketEvent.ticket_id == ticket.id,
                        M.TicketEvent.action == "merge",
                        col(M.TicketEvent.undone).is_(False),
                    )
                    .order_by(col(M.TicketEvent.id).desc())
                ).first()
            else:
                candidates = s.exec(
                    select(M.TicketEvent)
                    .where(M.TicketEvent.action == "merge", col(M.TicketEvent.undone).is_(False))
                    .order_by(col(M.TicketEvent.id).desc())
                ).all()
                ev = next((e for e in candidates if e.after.get("into") == ticket.id), None)
            if ev is None:
                raise InvalidAction(f"#{number} has no merge to undo")
            return self._undo_merge(s, ev, actor)

        return self.show(self._write(fn))

    def _undo_merge(self, s: Session, ev: M.TicketEvent, actor: M.Agent | None) -> int:
        src = s.get(M.Ticket, ev.ticket_id)
        dst = s.get(M.Ticket, ev.after.get("into"))
        if src is None or dst is None:
            raise NotFound("the merged tickets no longer exist")
        if src.merged_into_id != dst.id:
            raise InvalidAction(f"#{src.id} is no longer merged into #{dst.id}")
        now = self.clock.now()
        moved: list[int] = list(ev.after.get("messages", []))
        if moved:
            s.execute(
                sa.update(M.Message)
                .where(col(M.Message.id).in_(moved), col(M.Message.ticket_id) == dst.id)
                .values(ticket_id=src.id)
            )
        back = s.exec(
            select(sa.func.count()).select_from(M.Message).where(M.Message.ticket_id == src.id)
        ).one()
        for cid in ev.after.get("customers", []):
            row = s.get(M.TicketCustomer, (dst.id, cid))
            if row is not None:
                s.delete(row)
        status = s.get(M.Status, ev.before.get("status_id")) or self._status_for(
            s, "active", "queue"
        )
        self._set_status(s, src, status, now)
        src.merged_into_id = None
        src.activate_at = _parse_iso(ev.before.get("activate_at"))
        dst.message_count -= int(back)
        src.message_count = int(back)
        if status.base == "active":
            escalation.wake(self, s, src, policy="continue")
        ev.undone = True
        self._touch(src, now)
        self._touch(dst, now)
        self._event(s, src, "unmerge", {"into": dst.id}, {"restored": src.id}, agent=actor)
        return src.id  # type: ignore[return-value]

    def split(
        self, number: int, message_ids: Sequence[int], subject: str | None = None
    ) -> R.TicketDetail:
        """Move chosen messages into a new ticket for the same customers."""
        if not message_ids:
            raise InvalidAction("choose at least one message to split off")

        def fn(s: Session) -> int:
            actor = self._actor_agent(s)
            src = self._ticket(s, number)
            self._require_base(s, src, ("active", "closed", "postponed"), "split")
            msgs = s.exec(select(M.Message).where(col(M.Message.id).in_(list(message_ids)))).all()
            found = {m.id for m in msgs if m.ticket_id == src.id}
            missing = [m for m in message_ids if m not in found]
            if missing:
                raise NotFound(f"#{number} has no message {missing[0]}")
            if len(found) >= src.message_count:
                raise InvalidAction("cannot split off every message; a ticket keeps at least one")
            first = min(msgs, key=lambda m: (m.created_at, m.id or 0))
            customers = s.exec(
                select(M.TicketCustomer.customer_id).where(M.TicketCustomer.ticket_id == src.id)
            ).all()
            customer = s.get(M.Customer, customers[0]) if customers else None
            if customer is None:
                raise InvalidAction(f"#{number} has no customer")
            cat = s.get(M.Category, src.category_id) if src.category_id else None
            pr = s.get(M.Priority, src.priority_id) if src.priority_id else None
            owner = s.get(M.Agent, src.owner_id) if src.owner_id else None
            new = self._new_ticket(
                s,
                subject or first.subject or src.title,
                customer,
                priority=pr.name if pr else None,
                category=cat.name if cat else None,
                owner=owner.login if owner else None,
                actor=actor,
            )
            for cid in customers[1:]:
                s.add(M.TicketCustomer(ticket_id=new.id, customer_id=cid))  # type: ignore[arg-type]
            for m in msgs:
                m.ticket_id = new.id  # type: ignore[assignment]
                m.thread_rule = "split"
                m.thread_evidence = f"split off #{number} by {self.actor}"
            new.message_count = len(msgs)
            src.message_count -= len(msgs)
            new.linked_to_id = src.id
            now = self.clock.now()
            self._touch(src, now)
            self._event(
                s, src, "split", {}, {"new": new.id, "messages": sorted(found)}, agent=actor
            )
            return new.id  # type: ignore[return-value]

        return self.show(self._write(fn))

    # ------------------------------------------------------------------ undo

    def undo_last(
        self, number: int, *, expected: tuple[str, int | None] | None = None
    ) -> R.TicketDetail:
        """Undo the acting agent's latest undoable action on a ticket, if nothing came after it.

        `expected` is (action, its event id if known) as the app's session recorded it: the
        undo goes ahead only if that is still the ticket's latest undoable change, checked in
        the same transaction (`u` never takes back an older change, nor one twice).
        """

        def fn(s: Session) -> int:
            actor = self._actor_agent(s)
            assert actor is not None
            ticket = self._ticket(s, number)
            ev = s.exec(
                select(M.TicketEvent)
                .where(M.TicketEvent.ticket_id == ticket.id, col(M.TicketEvent.undone).is_(False))
                .where(col(M.TicketEvent.action).in_(sorted(UNDOABLE)))
                .order_by(col(M.TicketEvent.id).desc())
            ).first()
            if expected is not None:
                action, event = expected
                if ev is None or ev.action != action or event not in (None, ev.id):
                    if ev is not None and ev.id is not None and event is not None and ev.id > event:
                        raise InvalidAction(
                            f"#{number} changed after your {action}; undo that by hand"
                        )
                    raise InvalidAction(f"your {action} on #{number} is already undone")
            if ev is None:
                raise InvalidAction(f"nothing to undo on #{number}")
            if ev.agent_id != actor.id:
                raise InvalidAction(f"the last change to #{number} ({ev.action}) was not yours")
            if ev.action == "merge":
                return self._undo_merge(s, ev, actor)
            current = self._snapshot(ticket)
            for key in ("status_id", "owner_id", "priority_id", "category_id"):
                if key in ev.after and ev.after[key] != current[key]:
                    raise Conflict(
                        f"#{number} changed after your {ev.action}; undo it by hand",
                        current_version=ticket.version,
                    )
            now = self.clock.now()
            status = s.get(M.Status, ev.before["status_id"])
            if status is not None and status.id != ticket.status_id:
                self._set_status(s, ticket, status, now)
            owner_was = ticket.owner_id
            ticket.owner_id = ev.before.get("owner_id")
            # The clock as it was, when the action recorded it and nothing (an escalation
            # firing, new mail) moved it since; otherwise the event policies, as before.
            restore = all(k in ev.before for k in _CLOCK) and all(
                ev.after.get(k) == current.get(k) for k in _CLOCK
            )
            if ev.before.get("priority_id") != ticket.priority_id:
                ticket.priority_id = ev.before.get("priority_id")
                if not restore:
                    escalation.apply_event(self, s, ticket, "priority_changed")
            elif ticket.owner_id != owner_was and not restore:
                escalation.apply_event(self, s, ticket, "reassigned")
            ticket.category_id = ev.before.get("category_id")
            ticket.activate_at = _parse_iso(ev.before.get("activate_at"))
            ticket.closed_at = _parse_iso(ev.before.get("closed_at"))
            undone_pause = ev.action in ("close", "delete", "postpone")
            if undone_pause and status is not None and status.base == "active":
                # A pause kept the seconds left: the chain goes on from there.
                escalation.wake(self, s, ticket, policy="continue")
            elif restore:
                for key in _CLOCK_TIMES:
                    setattr(ticket, key, _parse_iso(ev.before[key]))
                for key in _CLOCK_VALUES:
                    setattr(ticket, key, ev.before[key])
            ev.undone = True
            self._touch(ticket, now)
            self._event(
                s,
                ticket,
                "undo",
                {"event": ev.id, "action": ev.action},
                self._snapshot(ticket),
                agent=actor,
            )
            return ticket.id  # type: ignore[return-value]

        return self.show(self._write(fn))

    # ------------------------------------------------------------------ tags

    def tag(self, number: int, tag: str, *, on: bool = True) -> None:
        tag = tag.strip().lower()
        if not re.fullmatch(r"[\w.-]{1,40}", tag):
            raise InvalidAction(f"not a valid tag: {tag!r}")

        def fn(s: Session) -> None:
            actor = self._actor_agent(s)
            ticket = self._ticket(s, number)
            row = s.get(M.TicketTag, (ticket.id, tag))
            if on and row is None:
                s.add(M.TicketTag(ticket_id=ticket.id, tag=tag))  # type: ignore[arg-type]
            elif not on and row is not None:
                s.delete(row)
            self._event(s, ticket, "tag" if on else "untag", {}, {"tag": tag}, agent=actor)

        self._write(fn)

    # ------------------------------------------------------------------ listing

    def list_tickets(
        self,
        *,
        status: str | None = None,
        owner: str | None = None,
        unassigned: bool = False,
        review: bool = False,
        include_hidden: bool = False,
        limit: int = 200,
    ) -> list[R.TicketSummary]:
        """A filtered list, newest first. `status` is a desk status name or a base status."""
        with self.store.read() as s:
            q = select(M.Ticket).join(M.Status, col(M.Status.id) == col(M.Ticket.status_id))
            if status:
                if status in BASE_STATUSES:
                    q = q.where(M.Status.base == status)
                else:
                    self._status(s, status)
                    q = q.where(M.Status.name == status)
            elif not include_hidden and not review:
                q = q.where(col(M.Status.base).not_in(["deleted", "merged"]))
            if owner:
                agent = s.exec(select(M.Agent).where(M.Agent.login == owner)).first()
                if agent is None:
                    raise NotFound(f"no agent with login '{owner}'")
                q = q.where(M.Ticket.owner_id == agent.id)
            if unassigned:
                q = q.where(col(M.Ticket.owner_id).is_(None))
            if review:
                q = q.where(col(M.Ticket.needs_review).is_(True))
            q = q.order_by(col(M.Ticket.updated_at).desc(), col(M.Ticket.id).desc()).limit(limit)
            return self._summaries(s, list(s.exec(q).all()))

    def _summaries(self, s: Session, tickets: list[M.Ticket]) -> list[R.TicketSummary]:
        if not tickets:
            return []
        ids = [t.id for t in tickets]
        statuses = {st.id: st for st in s.exec(select(M.Status)).all()}
        priorities = {p.id: p for p in s.exec(select(M.Priority)).all()}
        categories = {c.id: c.name for c in s.exec(select(M.Category)).all()}
        owner_ids = {t.owner_id for t in tickets if t.owner_id}
        owners = (
            {
                a.id: a.login
                for a in s.exec(select(M.Agent).where(col(M.Agent.id).in_(owner_ids))).all()
            }
            if owner_ids
            else {}
        )
        first_customer: dict[int, str] = {}
        rows = s.exec(
            select(M.TicketCustomer.ticket_id, M.Customer.name, M.CustomerAddress.address)
            .join(M.Customer, col(M.Customer.id) == col(M.TicketCustomer.customer_id))
            .join(M.CustomerAddress, col(M.CustomerAddress.customer_id) == col(M.Customer.id))
            .where(col(M.TicketCustomer.ticket_id).in_(ids))
            .order_by(col(M.CustomerAddress.id))
        ).all()
        for tid, name, address in rows:
            first_customer.setdefault(tid, name or address)
        tags: dict[int, list[str]] = {}
        for tid, tag in s.exec(
            select(M.TicketTag.ticket_id, M.TicketTag.tag).where(
                col(M.TicketTag.ticket_id).in_(ids)
            )
        ).all():
            tags.setdefault(tid, []).append(tag)
        out = []
        for t in tickets:
            st = statuses.get(t.status_id)
            pr = priorities.get(t.priority_id)
            out.append(
                R.TicketSummary(
                    number=t.id,  # type: ignore[arg-type]
                    title=t.title,
                    status=st.name if st else "?",
                    base_status=st.base if st else "active",
                    priority=pr.name if pr else None,
                    priority_rank=pr.rank if pr else 0,
                    owner=owners.get(t.owner_id),
                    customer=first_customer.get(t.id, ""),  # type: ignore[arg-type]
                    category=categories.get(t.category_id),
                    created_at=t.created_at,
                    updated_at=t.updated_at,
                    deadline_at=t.deadline_at,
                    read_status=t.read_status,
                    alert_level=t.alert_level,
                    message_count=t.message_count,
                    needs_review=t.needs_review,
                    tags=tuple(sorted(tags.get(t.id, []))),  # type: ignore[arg-type]
                    version=t.version,
                    activate_at=t.activate_at,
                )
            )
        return out

    def _messages(self, s: Session, msgs: Sequence[M.Message]) -> list[R.MessageRecord]:
        ids = [m.id for m in msgs]
        agents = {a.id: a.login for a in s.exec(select(M.Agent)).all()}
        atts: dict[int, list[R.AttachmentRecord]] = {}
        for a in s.exec(select(M.Attachment).where(col(M.Attachment.message_id).in_(ids))).all():
            atts.setdefault(a.message_id, []).append(
                R.AttachmentRecord(a.id, a.filename, a.content_type, a.size, a.sha256)  # type: ignore[arg-type]
            )
        outbox = {
            o.message_id: o
            for o in s.exec(select(M.Outbox).where(col(M.Outbox.message_id).in_(ids))).all()
        }
        out = []
        for m in msgs:
            o = outbox.get(m.id)
            out.append(
                R.MessageRecord(
                    id=m.id,  # type: ignore[arg-type]
                    ticket=m.ticket_id,
                    direction=m.direction,
                    visibility=m.visibility,
                    kind=m.kind,
                    author=agents.get(m.author_agent_id),
                    from_addr=m.from_addr,
                    from_name=m.from_name,
                    to=tuple(m.to_addrs),
                    cc=tuple(m.cc_addrs),
                    subject=m.subject,
                    body=m.body_text,
                    created_at=m.created_at,
                    rfc_message_id=m.rfc_message_id,
                    thread_rule=m.thread_rule,
                    thread_evidence=m.thread_evidence,
                    needs_review=m.needs_review,
                    review_error=m.review_error,
                    time_spent_seconds=m.time_spent_seconds,
                    attachments=tuple(atts.get(m.id, [])),  # type: ignore[arg-type]
                    outbox_state=o.state if o else None,
                    outbox_error=o.last_error if o else "",
                )
            )
        return out

    def _detail(self, s: Session, t: M.Ticket) -> R.TicketDetail:
        summary = self._summaries(s, [t])[0]
        customers = []
        for c in s.exec(
            select(M.Customer)
            .join(M.TicketCustomer, col(M.TicketCustomer.customer_id) == col(M.Customer.id))
            .where(M.TicketCustomer.ticket_id == t.id)
            .order_by(col(M.Customer.id))
        ).all():
            addrs = s.exec(
                select(M.CustomerAddress.address)
                .where(M.CustomerAddress.customer_id == c.id)
                .order_by(col(M.CustomerAddress.id))
            ).all()
            company = s.get(M.Company, c.company_id) if c.company_id else None
            customers.append(
                R.CustomerRecord(c.id or 0, c.name, tuple(addrs), company.name if company else None)
            )
        msgs = s.exec(
            select(M.Message)
            .where(M.Message.ticket_id == t.id)
            .order_by(col(M.Message.created_at), col(M.Message.id))
        ).all()
        agents = {a.id: a.login for a in s.exec(select(M.Agent)).all()}
        events = [
            R.EventRecord(
                e.id or 0,
                e.ticket_id,
                e.at,
                agents.get(e.agent_id),
                e.os_user,
                e.action,
                e.before,
                e.after,
                e.undone,
            )
            for e in s.exec(
                select(M.TicketEvent)
                .where(M.TicketEvent.ticket_id == t.id)
                .order_by(col(M.TicketEvent.id))
            ).all()
        ]
        followers = s.exec(
            select(M.Agent.login)
            .join(M.Follower, col(M.Follower.agent_id) == col(M.Agent.id))
            .where(M.Follower.ticket_id == t.id, M.Follower.kind == "follow")
        ).all()
        parties = s.exec(
            select(M.ExternalParty.address).where(M.ExternalParty.ticket_id == t.id)
        ).all()
        merged_from = s.exec(select(M.Ticket.id).where(M.Ticket.merged_into_id == t.id)).all()
        spent = self._live_time(s, t)
        return R.TicketDetail(
            summary=summary,
            version=t.version,
            customers=tuple(customers),
            replied_at=t.replied_at,
            closed_at=t.closed_at,
            first_read_at=t.first_read_at,
            activate_at=t.activate_at,
            merged_into=t.merged_into_id,
            linked_to=t.linked_to_id,
            next_alert_at=t.next_alert_at,
            escalation_running=t.escalation_running,
            escalation_seconds_left=t.escalation_seconds_left,
            time_spent=spent,
            first_reply_seconds=t.first_reply_seconds,
            first_reply_work_seconds=t.first_reply_work_seconds,
            close_seconds=t.close_seconds,
            close_work_seconds=t.close_work_seconds,
            reply_count=t.reply_count,
            messages=tuple(self._messages(s, msgs)),
            events=tuple(events),
            followers=tuple(sorted(followers)),
            external_parties=tuple(sorted(parties)),
            merged_from=tuple(sorted(x for x in merged_from if x is not None)),
        )

    def _live_time(self, s: Session, t: M.Ticket) -> R.TimeSpent:
        """Counters as stored plus the running interval, without writing anything."""
        spent = {
            "queue": t.queue_seconds,
            "internal": t.internal_seconds,
            "external": t.external_seconds,
            "queue_work": t.queue_work_seconds,
            "internal_work": t.internal_work_seconds,
            "external_work": t.external_work_seconds,
        }
        status = s.get(M.Status, t.status_id)
        now = self.clock.now()
        if (
            status
            and status.counter in ("queue", "internal", "external")
            and t.counter_since
            and now > t.counter_since
        ):
            priority = s.get(M.Priority, t.priority_id) if t.priority_id else None
            spent[status.counter] += int((now - t.counter_since).total_seconds())
            spent[status.counter + "_work"] += self.calendar_for(priority).working_seconds(
                t.counter_since, now
            )
        return R.TimeSpent(**spent)

    # ------------------------------------------------------------------ outbox and alerts

    def outbox(
        self, *, states: Sequence[str] | None = None, limit: int = 200
    ) -> list[R.OutboxRecord]:
        with self.store.read() as s:
            q = select(M.Outbox)
            if states:
                q = q.where(col(M.Outbox.state).in_(list(states)))
            rows = s.exec(q.order_by(col(M.Outbox.id).desc()).limit(limit)).all()
            return [outbox.outbox_record(o) for o in rows]

    def alerts(self, *, unread_only: bool = True, limit: int = 100) -> list[R.AlertRecord]:
        with self.store.read() as s:
            actor = self._actor_agent(s)
            assert actor is not None
            q = select(M.Alert).where(M.Alert.agent_id == actor.id)
            if unread_only:
                q = q.where(col(M.Alert.read_at).is_(None))
            rows = s.exec(q.order_by(col(M.Alert.id).desc()).limit(limit)).all()
            return [
                R.AlertRecord(a.id, a.ticket_id, a.kind, a.level, a.text, a.created_at, a.read_at)  # type: ignore[arg-type]
                for a in rows
            ]

    def mark_alerts_read(self, ids: Sequence[int]) -> None:
        def fn(s: Session) -> None:
            actor = self._actor_agent(s)
            assert actor is not None
            s.execute(
                sa.update(M.Alert)
                .where(col(M.Alert.id).in_(list(ids)), col(M.Alert.agent_id) == actor.id)
                .values(read_at=self.clock.now())
            )

        self._write(fn)

    # ------------------------------------------------------------------ compose helpers (TUI)

    def reply_templates(self) -> list[TemplateRecord]:
        """Templates an agent may start a message from (escalation notices are not among them)."""
        with self.store.read() as s:
            rows = s.exec(
                select(M.ReplyTemplate)
                .where(M.ReplyTemplate.folder != "escalation")
                .order_by(
                    col(M.ReplyTemplate.folder),
                    col(M.ReplyTemplate.name),
                    col(M.ReplyTemplate.language),
                )
            ).all()
            return [
                TemplateRecord(r.id or 0, r.folder, r.name, r.language, r.subject, r.body)
                for r in rows
            ]

    def template_values(self, number: int) -> dict[str, str]:
        """The standard template variables for a message the actor writes on ticket `number`."""
        with self.store.read() as s:
            t = self._ticket(s, number)
            actor = self._actor_agent(s, required=False)
            addresses = self._customer_addresses(s, t)
            customer = None
            if addresses:
                link = s.exec(
                    select(M.CustomerAddress).where(M.CustomerAddress.address == addresses[0])
                ).first()
                customer = s.get(M.Customer, link.customer_id) if link else None
            status = s.get(M.Status, t.status_id)
            category = s.get(M.Category, t.category_id) if t.category_id else None
            priority = s.get(M.Priority, t.priority_id) if t.priority_id else None
            deadline = "-"
            if t.deadline_at is not None:
                deadline = t.deadline_at.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")
            email = addresses[0] if addresses else ""
            return {
                "number": str(t.id),
                "title": t.title,
                "customer_name": (customer.name if customer and customer.name else email),
                "customer_email": email,
                "agent_name": actor.name if actor else "",
                "agent_login": actor.login if actor else "",
                "category": category.name if category else "",
                "priority": priority.name if priority else "",
                "deadline": deadline,
                "desk_name": self.options.name,
                "status": status.name if status else "",
            }

    def find_customers(self, text: str, limit: int = 8) -> list[R.CustomerRecord]:
        """Customers whose address starts with, or whose name contains, `text` (as typed)."""
        needle = text.strip().lower()
        if not needle:
            return []
        with self.store.read() as s:
            # Addresses are stored lower-cased: a range on the unique index finds a prefix
            # without a scan; names are few enough per desk for a scan.
            by_addr = s.exec(
                select(M.CustomerAddress.customer_id)
                .where(
                    col(M.CustomerAddress.address) >= needle,
                    col(M.CustomerAddress.address) < needle + "\uffff",
                )
                .order_by(col(M.CustomerAddress.address))
                .limit(limit)
            ).all()
            by_name = s.exec(
                select(M.Customer.id)
                .where(_name_contains(s.get_bind().dialect.name, needle))
                .order_by(col(M.Customer.name))
                .limit(limit)
            ).all()
            ids = list(dict.fromkeys([*by_addr, *by_name]))[:limit]
            out: list[R.CustomerRecord] = []
            for cid in ids:
                c = s.get(M.Customer, cid)
                if c is None:
                    continue
                addrs = s.exec(
                    select(M.CustomerAddress.address)
                    .where(M.CustomerAddress.customer_id == cid)
                    .order_by(col(M.CustomerAddress.id))
                ).all()
                company = s.get(M.Company, c.company_id) if c.company_id else None
                out.append(
                    R.CustomerRecord(
                        c.id or 0, c.name, tuple(addrs), company.name if company else None
                    )
                )
            return out

    def suggest_address(self, prefix: str) -> str | None:
        """The first known customer address that starts with `prefix` (for completion)."""
        needle = prefix.strip().lower()
        if len(needle) < 2:
            return None
        with self.store.read() as s:
            return s.exec(
                select(M.CustomerAddress.address)
                .where(
                    col(M.CustomerAddress.address) >= needle,
                    col(M.CustomerAddress.address) < needle + "\uffff",
                )
                .order_by(col(M.CustomerAddress.address))
                .limit(1)
            ).first()


@dataclass(frozen=True)
class TemplateRecord:
    """A stored reply template (ReplyTemplate row) as the compose screen offers it."""

    id: int
    folder: str
    name: str
    language: str
    subject: str
    body: str

    @property
    def label(self) -> str:
        where = f"{self.folder}/" if self.folder else ""
        return f"{where}{self.name} ({self.language})"


def _agent_record(a: M.Agent) -> R.AgentRecord:
    return R.AgentRecord(a.login, a.name, a.email, a.signature, a.active)
