"""Intake's common path in bulk: new requests and duplicates filed with one statement a table.

The per-mail ORM path (intake.Intake._one) costs a dozen flushes and queries a mail; this one
files a run of mails with a handful of look-ups for the whole batch and one multi-row INSERT a
table, inside the caller's transaction, so the batch still commits together with the mailbox's
last UID. It takes only what it can file exactly as the ORM path would (same rows, same order
of ids): a mail that is not a duplicate and starts a new request with an unassigned owner.
Anything else (mail onto a known ticket, a subject tag, an in-batch reply or copy, an owner to
choose, a mail the planner cannot read) first writes the run planned so far, then goes through
the ORM path on its own; a run whose INSERTs fail is rolled back to its savepoint and refiled
mail by mail, so one bad mail never sinks the batch.
"""

from __future__ import annotations

import contextlib
import logging
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic_core import PydanticUndefined
from sqlmodel import Session, SQLModel, col, select

from helpdesk_tui.desk import escalation, outbox
from helpdesk_tui.desk.intake import incoming_message_fields
from helpdesk_tui.desk.service import normalize_address
from helpdesk_tui.mail.autoreply import ack_decision, rate_limited
from helpdesk_tui.mail.msgid import make_message_id
from helpdesk_tui.mail.parse import ParsedMail
from helpdesk_tui.mail.templates import DEFAULT_ACK_BODY, DEFAULT_ACK_SUBJECT, TemplateError, render
from helpdesk_tui.mail.threading import decide_thread
from helpdesk_tui.paths import attachments_dir_for
from helpdesk_tui.store import models as M
from helpdesk_tui.store import search_bulk

if TYPE_CHECKING:
    from helpdesk_tui.desk.intake import IncomingMail, IngestResult, Intake


log = logging.getLogger("helpdesk.intake")

UNKNOWN_SENDER = "unknown@invalid.invalid"
IN_CHUNK = 500  # values per IN (...) list; far below SQLite's variable limit
ACK_EVIDENCE = "automatic acknowledgement of a new request"


def _table(model: type[SQLModel]) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


class _Rows:
    """Insert rows for one table with every column the ORM would write, defaults included.

    executemany needs the same keys in every row, and the ORM leaves a None out when the column
    has a default (so "" is stored, not NULL); both are copied here.
    """

    def __init__(self, model: type[SQLModel]) -> None:
        self.table = _table(model)
        self.defaults: dict[str, Any] = {}
        self.factories: dict[str, Any] = {}
        for column in self.table.columns:
            if column.primary_key and column.autoincrement is not False and column.name == "id":
                continue
            info = model.model_fields.get(column.name)
            if info is not None and info.default_factory is not None:
                self.factories[column.name] = info.default_factory
            elif info is not None and info.default is not PydanticUndefined:
                self.defaults[column.name] = info.default
            else:
                self.defaults[column.name] = None
        self.fill = {
            c.name: self.defaults.get(c.name)
            for c in self.table.columns
            if c.default is not None and self.defaults.get(c.name) is not None
        }

    def row(self, **values: Any) -> dict[str, Any]:
        out = {**self.defaults, **values}
        for name, make in self.factories.items():
            if name not in values:
                out[name] = make()
        for name, default in self.fill.items():
            if out[name] is None:
                out[name] = default
        return out


_ROWS: dict[str, _Rows] = {}


def _rows(model: type[SQLModel]) -> _Rows:
    """Built on first use, not at import (models may be reflected lazily by tools)."""
    name = model.__name__
    found = _ROWS.get(name)
    if found is None:
        found = _ROWS[name] = _Rows(model)
    return found


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), IN_CHUNK):
        yield values[i : i + IN_CHUNK]


class NeedsSlowPath(Exception):
    """This mail must go through the per-mail ORM path (known ticket, in-batch dependency...)."""


class _Lookup:
    """ThreadLookup that only answers "nothing known"; any hit means the per-mail path."""

    def __init__(self, stored: set[str], batch: set[str]) -> None:
        self.stored = stored
        self.batch = batch

    def ticket_for_message_ids(self, ids: Sequence[str]) -> tuple[int, str] | None:
        if any(i in self.stored or i in self.batch for i in ids):
            raise NeedsSlowPath("references a stored message")
        return None

    def ticket_exists(self, number: int) -> bool:
        raise NeedsSlowPath("names a ticket")

    def may_use_subject_tag(self, number: int, sender: str) -> str | None:
        raise NeedsSlowPath("subject tag")

    def is_external_party(self, number: int, sender: str) -> bool:
        raise NeedsSlowPath("known ticket")


@dataclass(frozen=True, slots=True)
class _Existing:
    """An ImportedMail row a mail duplicates, with the ticket its message is on now."""

    id: int
    uidvalidity: int | None
    uid: int | None
    message_id: int | None
    ticket_id: int | None


@dataclass(slots=True)
class _Customer:
    address: str
    id: int | None
    name: str
    row: dict[str, Any] | None = None  # the INSERT row while new in the run being planned


@dataclass(slots=True)
class _Plan:
    """One mail the bulk path files, as computed before any row is written."""

    mail: IncomingMail
    parsed: ParsedMail
    sha: str
    existing: _Existing | None = None
    record_key: bool = False
    customer: _Customer | None = None
    title: str = ""
    evidence: str = ""
    ack_wanted: bool = False
    ack_reason: str = ""
    ack_recorded: bool = False
    sender: str = ""


@dataclass
class _Setup:
    """What every new request of the batch shares: read once per transaction."""

    status_id: int
    category_id: int | None
    category_name: str | None
    priority_id: int | None
    priority_name: str | None
    queue_only: bool
    escalation: dict[str, Any]
    deadline_text: str
    template: tuple[_Template, _Template]
    secret: bytes


@dataclass
class _Run:
    """The mails planned since the last write, with the new customers they introduce."""

    plans: list[_Plan] = field(default_factory=list)
    new_customers: list[_Customer] = field(default_factory=list)
    name_updates: dict[int, str] = field(default_factory=dict)


class FastBatch:
    """Files one batch inside the caller's transaction; see the module docstring."""

    def __init__(self, intake: Intake, s: Session, mailbox: M.Mailbox | None) -> None:
        self.intake = intake
        self.desk = intake.desk
        self.s = s
        self.mailbox = mailbox
        self.mailbox_id = mailbox.id if mailbox is not None else None
        self.now = self.desk.clock.now()
        self.attachments_dir = attachments_dir_for(self.desk.store.url)
        self._setup: _Setup | None = None
        # Look-ups made once for the batch; what later writes change is tracked beside them.
        self.by_key: dict[tuple[int, int], _Existing] = {}
        self.by_sha: dict[str, _Existing] = {}
        self.stored_ids: set[str] = set()
        self.customers: dict[str, _Customer] = {}
        self.acks: dict[str, list[datetime]] = {}
        self.stale: set[str] = set()  # addresses the per-mail path may have changed
        # What this batch has filed so far, by any path.
        self.seen_sha: set[str] = set()
        self.seen_keys: set[tuple[int | None, int | None]] = set()
        self.batch_ids: set[str] = set()
        self.lookup = _Lookup(self.stored_ids, self.batch_ids)

    # ------------------------------------------------------------------ the batch

    def run(self, prepared: Sequence[tuple[IncomingMail, ParsedMail]]) -> list[IngestResult]:
        results: list[IngestResult] = []
        self._prefetch(prepared)
        run = _Run()
        for index, (mail, parsed) in enumerate(prepared):
            plan: _Plan | None
            try:
                plan = self._plan(run, mail, parsed)
            except NeedsSlowPath:
                plan = None
            except Exception:  # noqa: BLE001 - the per-mail path decides (or quarantines)
                plan = None
            if plan is not None:
                continue
            results.extend(self._write_run(run, prepared[index:]))
            run = _Run()
            results.append(self._one_slow(mail, parsed))
        results.extend(self._write_run(run, ()))
        return results

    def _one_slow(self, mail: IncomingMail, parsed: ParsedMail) -> IngestResult:
        self.s.flush()
        # Bulk UPDATEs (customer names) bypass the identity map; reload what the ORM kept.
        self.s.expire_all()
        result = self.intake._one(self.s, self.mailbox, mail, parsed)
        self.seen_sha.add(parsed.sha256)
        self.seen_keys.add((mail.uidvalidity, mail.uid))
        self.batch_ids.add(parsed.message_id)
        self.stale.update(self._addresses(parsed))
        return result

    @staticmethod
    def _addresses(parsed: ParsedMail) -> set[str]:
        found = {UNKNOWN_SENDER, (parsed.from_addr or "").lower()}
        # An unusable From is filed under the unknown sender, already in the set.
        with contextlib.suppress(Exception):
            found.add(normalize_address(parsed.from_addr or UNKNOWN_SENDER))
        return found

    # ------------------------------------------------------------------ look-ups

    def _prefetch(self, prepared: Sequence[tuple[IncomingMail, ParsedMail]]) -> None:
        conn = self.s.connection()
        imp, msg = _table(M.ImportedMail), _table(M.Message)
        cols = (
            imp.c.id,
            imp.c.uidvalidity,
            imp.c.uid,
            imp.c.sha256,
            imp.c.message_id,
            msg.c.ticket_id,
        )
        joined = imp.outerjoin(msg, msg.c.id == imp.c.message_id)
        if self.mailbox_id is not None:
            by_validity: dict[int, list[int]] = {}
            for mail, _ in prepared:
                if mail.uid is not None and mail.uidvalidity is not None:
                    by_validity.setdefault(mail.uidvalidity, []).append(mail.uid)
            for validity, uids in by_validity.items():
                for chunk in _chunks(uids):
                    query = (
                        sa.select(*cols)
                        .select_from(joined)
                        .where(
                            imp.c.mailbox_id == self.mailbox_id,
                            imp.c.uidvalidity == validity,
                            imp.c.uid.in_(chunk),
                        )
                    )
                    for row in conn.execute(query):
                        self.by_key[(row.uidvalidity, row.uid)] = _existing(row)
        shas = list({parsed.sha256 for _, parsed in prepared})  # the digest of mail.raw
        for chunk in _chunks(shas):
            query = (
                sa.select(*cols)
                .select_from(joined)
                .where(imp.c.sha256.in_(chunk))
                .order_by(imp.c.id)
            )
            for row in conn.execute(query):
                self.by_sha.setdefault(row.sha256, _existing(row))
        ids = list(
            {
                value
                for _, parsed in prepared
                for value in (parsed.in_reply_to, *parsed.references)
                if value
            }
        )
        for chunk in _chunks(ids):
            query = sa.select(msg.c.rfc_message_id).where(msg.c.rfc_message_id.in_(chunk))
            self.stored_ids.update(conn.execute(query).scalars())
        self._load_people(set().union(*(self._addresses(p) for _, p in prepared)))

    def _load_people(self, addresses: Iterable[str]) -> None:
        """Customers by address, and their acknowledgements of the last 24 hours."""
        wanted = sorted(addresses)
        conn = self.s.connection()
        addr, cust, ack = _table(M.CustomerAddress), _table(M.Customer), _table(M.AckDecision)
        since = self.now - timedelta(hours=24)
        for address in wanted:
            self.customers.pop(address, None)
            self.acks[address] = []
        for chunk in _chunks(wanted):
            query = (
                sa.select(addr.c.address, cust.c.id, cust.c.name)
                .select_from(addr.join(cust, cust.c.id == addr.c.customer_id))
                .where(addr.c.address.in_(chunk))
            )
            for found in conn.execute(query):
                self.customers[found.address] = _Customer(found.address, found.id, found.name)
            query = sa.select(ack.c.sender, ack.c.at).where(
                ack.c.sender.in_(chunk), ack.c.acknowledged.is_(True), ack.c.at >= since
            )
            for ack_row in conn.execute(query):
                self.acks[ack_row.sender].append(ack_row.at)
        self.stale.difference_update(wanted)

    def _fresh(self, *addresses: str) -> None:
        stale = [a for a in addresses if a in self.stale]
        if stale:
            self._load_people(stale)

    def setup(self) -> _Setup:
        """Status, category, priority, deadline and template as Desk._new_ticket picks them."""
        if self._setup is not None:
            return self._setup
        s, desk, mailbox = self.s, self.desk, self.mailbox
        cat: M.Category | None = None
        if mailbox is not None and mailbox.category_id:
            cat = s.get(M.Category, mailbox.category_id)
        if cat is None:
            cat = s.exec(select(M.Category).order_by(col(M.Category.id))).first()
        pr: M.Priority | None = None
        if mailbox is not None and mailbox.priority_id:
            pr = s.get(M.Priority, mailbox.priority_id)
        elif cat is not None and cat.default_priority_id:
            pr = s.get(M.Priority, cat.default_priority_id)
        if pr is None:
            pr = s.exec(select(M.Priority).where(M.Priority.name == "Normal")).first()
        status = desk._status_for(s, "active", "queue")
        # The chain a new ticket starts with depends only on its priority, status and the
        # moment, all shared by the batch: ask the engine once, on a ticket never stored.
        proto = M.Ticket(
            title="",
            status_id=status.id,  # type: ignore[arg-type]
            priority_id=pr.id if pr else None,
            created_at=self.now,
            updated_at=self.now,
            counter_since=self.now,
        )
        escalation.apply_event(desk, s, proto, "new")
        deadline = proto.deadline_at
        template = (DEFAULT_ACK_SUBJECT, DEFAULT_ACK_BODY)
        if mailbox is not None and mailbox.ack_template:
            row = s.exec(
                select(M.ReplyTemplate)
                .where(M.ReplyTemplate.name == mailbox.ack_template)
                .order_by(col(M.ReplyTemplate.language) != "en")
            ).first()
            if row is not None:
                template = (row.subject, row.body)
        self._setup = _Setup(
            status_id=status.id,  # type: ignore[arg-type]
            category_id=cat.id if cat else None,
            category_name=cat.name if cat else None,
            priority_id=pr.id if pr else None,
            priority_name=pr.name if pr else None,
            queue_only=cat is None or cat.assign_method == "queue",
            escalation={
                "deadline_at": deadline,
                "alert_level": proto.alert_level,
                "next_alert_at": proto.next_alert_at,
                "escalation_seconds_left": proto.escalation_seconds_left,
                "escalation_running": proto.escalation_running,
            },
            deadline_text=(
                deadline.astimezone(desk.tz).strftime("%Y-%m-%d %H:%M") if deadline else ""
            ),
            template=_templates(*template),
            secret=desk._secret_in(s),
        )
        return self._setup

    # ------------------------------------------------------------------ planning one mail

    def _plan(self, run: _Run, mail: IncomingMail, parsed: ParsedMail) -> _Plan:
        """Check everything first; only the last lines change batch state (nothing raises there)."""
        sha = parsed.sha256  # parse_message's digest of mail.raw
        key = (mail.uidvalidity, mail.uid)
        if sha in self.seen_sha or (mail.uid is not None and key in self.seen_keys):
            raise NeedsSlowPath("a copy of a mail earlier in the batch")
        keyed = self.mailbox_id is not None and mail.uid is not None
        if keyed and mail.uidvalidity is None:
            raise NeedsSlowPath("a UID without UIDVALIDITY")
        existing = None
        if keyed and mail.uidvalidity is not None and mail.uid is not None:
            existing = self.by_key.get((mail.uidvalidity, mail.uid))
        existing = existing or self.by_sha.get(sha)
        if existing is not None:
            same_key = existing.uid == mail.uid and existing.uidvalidity == mail.uidvalidity
            plan = _Plan(mail, parsed, sha, existing=existing, record_key=not same_key)
        else:
            plan = self._plan_new(run, mail, parsed, sha)
        run.plans.append(plan)
        self.seen_sha.add(sha)
        self.seen_keys.add(key)
        self.batch_ids.add(parsed.message_id)
        return plan

    def _plan_new(self, run: _Run, mail: IncomingMail, parsed: ParsedMail, sha: str) -> _Plan:
        setup = self.setup()
        if not setup.queue_only:
            raise NeedsSlowPath("the category assigns an owner")
        decision = decide_thread(parsed, self.lookup, setup.secret)
        if decision.ticket is not None or decision.rule != "new":
            raise NeedsSlowPath("not a new request")
        try:
            address = normalize_address(parsed.from_addr or UNKNOWN_SENDER)
        except Exception:  # noqa: BLE001 - a broken From still makes a request
            address = UNKNOWN_SENDER
        sender = (parsed.from_addr or "").lower()
        self._fresh(address, sender)
        plan = _Plan(mail, parsed, sha, evidence=decision.evidence, sender=sender)
        plan.title = parsed.subject.strip() or "(no subject)"
        plan.ack_reason = self._ack_verdict(plan)
        # From here on nothing raises: batch state changes.
        name = parsed.from_name
        customer = self.customers.get(address)
        if customer is None:
            customer = _Customer(address, None, name)
            customer.row = _rows(M.Customer).row(name=name, created_at=self.now)
            self.customers[address] = customer
            run.new_customers.append(customer)
        elif name and not customer.name:
            customer.name = name
            if customer.row is not None:
                customer.row["name"] = name
            elif customer.id is not None:
                run.name_updates[customer.id] = name
        plan.customer = customer
        if plan.ack_wanted:
            self.acks.setdefault(sender, []).append(self.now)
        return plan

    def _ack_verdict(self, plan: _Plan) -> str:
        """Intake._acknowledge's decision, with the rate limit over the batch's own acks."""
        intake, mailbox = self.intake, self.mailbox
        if not intake.acknowledge:
            return "archive import: never acknowledged"
        if mailbox is None or not mailbox.ack_template:
            return "no acknowledgement template"
        plan.ack_recorded = True
        verdict = ack_decision(
            plan.parsed,
            intake.own_addresses or (mailbox.address,),
            self.desk.options.domain,
            self.desk.options.domain,
        )
        if not verdict.acknowledge:
            return verdict.reason
        limited = rate_limited(
            self.acks.get(plan.sender, []),
            self.now,
            intake.ack.per_sender_per_day,
            intake.ack.per_sender_per_3h,
        )
        if limited:
            return limited
        plan.ack_wanted = True
        return "acknowledged"

    # ------------------------------------------------------------------ writing a run

    def _write_run(
        self, run: _Run, rest: Sequence[tuple[IncomingMail, ParsedMail]]
    ) -> list[IngestResult]:
        if not run.plans:
            return []
        try:
            with self.s.begin_nested():
                return self._insert(run)
        except Exception:  # refiled one by one below, never lost
            log.exception("bulk intake of %d mails failed; filing them one by one", len(run.plans))
        # The savepoint is gone and with it whatever the run planned: refile each mail on the
        # per-mail path, then read people afresh for the mails still to come.
        for plan in run.plans:
            self.seen_sha.discard(plan.sha)
            self.seen_keys.discard((plan.mail.uidvalidity, plan.mail.uid))
        results = [self._one_slow(plan.mail, plan.parsed) for plan in run.plans]
        self.customers.clear()
        self._load_people(set().union(*(self._addresses(p) for _, p in rest)))
        return results

    def _insert(self, run: _Run) -> list[IngestResult]:
        """Rows for the run with their ids named up front, so the acknowledgements' MIME is
        built (in the worker's processes when it lends them) while the INSERTs run."""
        from helpdesk_tui.desk.intake import IngestResult

        conn, now, desk = self.s.connection(), self.now, self.desk
        new = [p for p in run.plans if p.existing is None]
        setup = self.setup() if new else None
        customer_id = _next_id(conn, M.Customer)
        for customer in run.new_customers:
            assert customer.row is not None
            customer.id = customer.row["id"] = customer_id
            customer_id += 1
        ticket_of: dict[int, int] = {}
        message_of: dict[int, int] = {}
        tickets: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        acks: list[tuple[_Plan, dict[str, Any], outbox.OutgoingItem]] = []
        ticket_id, message_id = _next_id(conn, M.Ticket), _next_id(conn, M.Message)
        first_ticket, first_message = ticket_id, message_id
        t_rows, m_rows = _rows(M.Ticket), _rows(M.Message)
        for p in new:
            assert setup is not None
            parsed, t = p.parsed, ticket_id
            ticket_of[id(p)], message_of[id(p)] = ticket_id, message_id
            ticket_id += 1
            tickets.append(
                t_rows.row(
                    id=t,
                    title=p.title,
                    status_id=setup.status_id,
                    category_id=setup.category_id,
                    priority_id=setup.priority_id,
                    owner_id=None,
                    mailbox_id=self.mailbox_id,
                    created_at=now,
                    updated_at=now,
                    counter_since=now,
                    read_status="red",
                    message_count=2 if p.ack_wanted else 1,
                    needs_review=parsed.needs_review,
                    **setup.escalation,
                )
            )
            messages.append(
                m_rows.row(
                    id=message_id,
                    ticket_id=t,
                    created_at=now,
                    visibility="external",
                    kind="customer",
                    thread_rule="new",
                    thread_evidence=p.evidence,
                    **incoming_message_fields(parsed),
                )
            )
            message_id += 1
            if p.ack_wanted:
                row, item = self._ack(setup, p, t, message_id)
                messages.append(row)
                acks.append((p, row, item))
                message_id += 1
        if run.new_customers:
            _bulk_insert(conn, M.Customer, [c.row for c in run.new_customers if c.row])
            _bulk_insert(
                conn,
                M.CustomerAddress,
                [
                    _rows(M.CustomerAddress).row(customer_id=c.id, address=c.address)
                    for c in run.new_customers
                ],
            )
            for customer in run.new_customers:
                customer.row = None
        if run.name_updates:
            cust = _table(M.Customer)
            conn.execute(
                sa.update(cust)
                .where(cust.c.id == sa.bindparam("b_id"))
                .values(name=sa.bindparam("b_name")),
                [{"b_id": k, "b_name": v} for k, v in run.name_updates.items()],
            )
        if tickets:
            assert setup is not None
            # The search index (FTS5, SQLite only) is written once for the run after its rows,
            # not by a trigger a row; see store/search_bulk.py.
            fts = conn.dialect.name == "sqlite"
            if fts:
                search_bulk.pause(conn)
            _bulk_insert(conn, M.Ticket, tickets)
            _bulk_insert(
                conn,
                M.TicketCustomer,
                [
                    {"ticket_id": ticket_of[id(p)], "customer_id": p.customer.id}  # type: ignore[union-attr]
                    for p in new
                ],
            )
            e_rows = _rows(M.TicketEvent)
            after = {
                "owner": None,
                "priority": setup.priority_name,
                "category": setup.category_name,
            }
            _bulk_insert(
                conn,
                M.TicketEvent,
                [
                    e_rows.row(
                        ticket_id=ticket_of[id(p)],
                        agent_id=None,
                        os_user=desk.os_user,
                        at=now,
                        action="create",
                        before={},
                        after={"title": p.title, **after},
                    )
                    for p in new
                ],
            )
            _bulk_insert(conn, M.Message, messages)
            if fts:
                search_bulk.index_and_resume(
                    conn, (first_ticket, ticket_id - 1), (first_message, message_id - 1)
                )
        a_rows = _rows(M.Attachment)
        attachments = [
            a_rows.row(
                message_id=message_of[id(p)],
                filename=att.filename,
                content_type=att.content_type,
                size=len(att.data),
                sha256=att.sha256,
            )
            for p in new
            for att in p.parsed.attachments
        ]
        if attachments:
            _bulk_insert(conn, M.Attachment, attachments)
        i_rows = _rows(M.ImportedMail)
        imported = []
        for p in run.plans:
            if p.existing is not None and not p.record_key:
                continue
            parsed = p.parsed
            review = p.existing is None and parsed.needs_review
            imported.append(
                i_rows.row(
                    mailbox_id=self.mailbox_id,
                    source=self.intake.source,
                    uidvalidity=p.mail.uidvalidity,
                    uid=p.mail.uid,
                    rfc_message_id=parsed.message_id,
                    sha256=p.sha,
                    raw=p.mail.raw,
                    message_id=p.existing.message_id if p.existing else message_of[id(p)],
                    needs_review=review,
                    error=parsed.review_reason if review else "",
                    imported_at=now,
                )
            )
        if imported:
            _bulk_insert(conn, M.ImportedMail, imported)
        if acks:
            o_rows = _rows(M.Outbox)
            _bulk_insert(
                conn,
                M.Outbox,
                [
                    o_rows.row(
                        ticket_id=item.ticket,
                        message_id=row["id"],
                        kind="ack",
                        state="queued",
                        next_attempt_at=now,
                        rfc_message_id=item.message_id,
                        mail_from=item.mail_from,
                        recipients=[p.sender],
                        subject=item.subject,
                        body=item.body,
                        headers={
                            "In-Reply-To": p.parsed.message_id,
                            "References": " ".join(
                                [*p.parsed.references, p.parsed.message_id][-10:]
                            ),
                            "To": p.sender,
                        },
                        attachment_ids=[],
                        created_at=now,
                        # Built by the sender when it leaves (~1.2 ms of MIME each was a
                        # third of the intake's CPU, and its Date is better taken then).
                        raw=None,
                    )
                    for p, row, item in acks
                ],
            )
        d_rows = _rows(M.AckDecision)
        decisions = [
            d_rows.row(
                mailbox_id=self.mailbox_id,
                ticket_id=ticket_of[id(p)],
                sender=p.sender,
                acknowledged=p.ack_wanted,
                reason=p.ack_reason,
                at=now,
            )
            for p in new
            if p.ack_recorded
        ]
        if decisions:
            _bulk_insert(conn, M.AckDecision, decisions)
        results = []
        for p in run.plans:
            if p.existing is not None:
                results.append(
                    IngestResult(
                        p.existing.ticket_id,
                        p.existing.message_id,
                        True,
                        False,
                        "duplicate",
                        "already imported",
                        False,
                        False,
                        "duplicate",
                        p.mail.uid,
                    )
                )
                continue
            results.append(
                IngestResult(
                    ticket_of[id(p)],
                    message_of[id(p)],
                    False,
                    True,
                    "new",
                    p.evidence,
                    p.parsed.needs_review,
                    p.ack_wanted,
                    p.ack_reason,
                    p.mail.uid,
                )
            )
        return results

    def _ack(
        self, setup: _Setup, plan: _Plan, ticket: int, message: int
    ) -> tuple[dict[str, Any], outbox.OutgoingItem]:
        """The acknowledgement's message row and, for its MIME, its outbox item."""
        desk, mailbox, parsed = self.desk, self.mailbox, plan.parsed
        assert mailbox is not None
        subject, body = self._ack_text(setup, plan, ticket)
        rfc_id = make_message_id(ticket, message, setup.secret, desk.options.domain)
        row = _rows(M.Message).row(
            id=message,
            ticket_id=ticket,
            created_at=self.now,
            direction="out",
            visibility="external",
            kind="ack",
            from_addr=mailbox.address,
            from_name=desk.options.name,
            to_addrs=[plan.sender],
            subject=subject,
            body_text=body,
            rfc_message_id=rfc_id,
            in_reply_to=parsed.message_id,
            references=" ".join([*parsed.references, parsed.message_id]),
            thread_rule="auto",
            thread_evidence=ACK_EVIDENCE,
        )
        # What outbox._item reads back from the rows Desk._queue_mail writes.
        sender = plan.sender
        item = outbox.OutgoingItem(
            id=0,
            ticket=ticket,
            kind="ack",
            mail_from=mailbox.address,
            from_name=desk.options.name,
            to=tuple(a.strip() for a in sender.split(",") if a.strip()) or (sender,),
            cc=(),
            recipients=(sender,),
            subject=subject,
            body=body,
            message_id=rfc_id,
            in_reply_to=parsed.message_id,
            references=tuple(" ".join([*parsed.references, parsed.message_id][-10:]).split()),
            automatic=True,
            attachments=(),
            quote="",
            quote_author="",
            quote_date=None,
            attempts=0,
            ambiguous=False,
            created_at=self.now,
        )
        return row, item

    def _ack_text(self, setup: _Setup, plan: _Plan, ticket: int) -> tuple[str, str]:
        parsed = plan.parsed
        variables = {
            "number": str(ticket),
            "title": plan.title,
            "customer_name": parsed.from_name or parsed.from_addr,
            "customer_email": parsed.from_addr,
            "agent_name": "",
            "agent_login": "",
            "category": setup.category_name or "",
            "priority": setup.priority_name or "",
            "deadline": setup.deadline_text,
            "desk_name": self.desk.options.name,
            "status": "open",
        }
        subject_t, body_t = setup.template
        return subject_t.fill(variables), body_t.fill(variables)


ACK_VARIABLES = (
    "number",
    "title",
    "customer_name",
    "customer_email",
    "agent_name",
    "agent_login",
    "category",
    "priority",
    "deadline",
    "desk_name",
    "status",
)
_MARK = "\x00"


class _Template:
    """A template rendered once with marks for its variables, then filled by joining pieces.

    Same text as templates.render for the acknowledgement's variables, without parsing the
    template again for every mail. Raises TemplateError as render would.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pieces: list[str] | None = None
        marked = render(text, {name: f"{_MARK}{name}{_MARK}" for name in ACK_VARIABLES})
        if _MARK not in text:
            self.pieces = marked.split(_MARK)  # text, variable, text, variable, ..., text

    def fill(self, variables: dict[str, str]) -> str:
        if self.pieces is None:
            return render(self.text, variables)
        return "".join(
            piece if i % 2 == 0 else variables[piece] for i, piece in enumerate(self.pieces)
        )


def _templates(subject: str, body: str) -> tuple[_Template, _Template]:
    """Intake._ack_text's rule: if either template fails, both defaults are used."""
    try:
        return _Template(subject), _Template(body)
    except TemplateError:
        return _Template(DEFAULT_ACK_SUBJECT), _Template(DEFAULT_ACK_BODY)


@dataclass(frozen=True)
class _InsertPlan:
    """One table's INSERT: the SQL, and which columns need their bind processor."""

    sql: str
    getter: Callable[[dict[str, Any]], tuple[Any, ...]]
    memo: tuple[tuple[int, Callable[[Any], Any]], ...]  # hashable values, repeated a lot
    each: tuple[tuple[int, Callable[[Any], Any]], ...]  # JSON: processed every time


_INSERTS: dict[tuple[str, tuple[str, ...]], _InsertPlan] = {}


def _insert_plan(table: sa.Table, names: tuple[str, ...], dialect: sa.Dialect) -> _InsertPlan:
    quote = dialect.identifier_preparer.quote
    # Names from the table's metadata, quoted; every value is bound.
    target = dialect.identifier_preparer.format_table(table)
    columns = ", ".join(quote(n) for n in names)
    marks = ", ".join("?" * len(names))
    memo: list[tuple[int, Callable[[Any], Any]]] = []
    each: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(names):
        column_type = table.c[name].type
        proc = column_type.dialect_impl(dialect).bind_processor(dialect)
        if proc is not None:
            (each if isinstance(column_type, sa.JSON) else memo).append((i, proc))
    getter = operator.itemgetter(*names)
    return _InsertPlan(
        f"INSERT INTO {target} ({columns}) VALUES ({marks})",  # noqa: S608
        (lambda row: (getter(row),)) if len(names) == 1 else getter,
        tuple(memo),
        tuple(each),
    )


def _bulk_insert(
    conn: sa.Connection, model: type[SQLModel], rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT many rows with the driver's executemany, each value through its column's own
    bind processor, so the stored values are SQLAlchemy's without its per-row overhead (the
    batch's timestamps repeat, so their conversion is done once a value)."""
    if not rows:
        return
    table = _table(model)
    names = tuple(rows[0])
    plan = _INSERTS.get((table.name, names))
    if plan is None:
        plan = _INSERTS[(table.name, names)] = _insert_plan(table, names, conn.dialect)
    done: dict[tuple[int, Any], Any] = {}
    params = []
    for row in rows:
        values = list(plan.getter(row))
        for i, proc in plan.memo:
            value = values[i]
            key = (i, value)
            if key not in done:
                done[key] = proc(value)
            values[i] = done[key]
        for i, proc in plan.each:
            value = values[i]
            # JSON lists of strings repeat too (recipients, empty lists): serialised once each.
            if type(value) is list and all(type(v) is str for v in value):
                key = (i, tuple(value))
                if key not in done:
                    done[key] = proc(value)
                values[i] = done[key]
            else:
                values[i] = proc(value)
        params.append(tuple(values))
    conn.exec_driver_sql(plan.sql, params)


def _next_id(conn: sa.Connection, model: type[SQLModel]) -> int:
    """The id SQLite gives the next row: under BEGIN IMMEDIATE no one else inserts, and
    naming ids up front lets rows refer to each other before any INSERT runs."""
    table = _table(model)
    return int(conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1


def _existing(row: Any) -> _Existing:
    return _Existing(row.id, row.uidvalidity, row.uid, row.message_id, row.ticket_id)
