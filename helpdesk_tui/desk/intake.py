"""Mail becomes requests: one transaction stores the raw mail, its key, the message and the link.

Exactly once rests on two facts: the key (mailbox, UIDVALIDITY, UID) is UNIQUE, and the raw
bytes, the parsed message, its ticket linkage and the mailbox's last UID are committed together.
The server is told (flag or move) only after that commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from helpdesk_tui.desk import escalation
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.mail.autoreply import ack_decision, rate_limited
from helpdesk_tui.mail.clean import clean_text
from helpdesk_tui.mail.parse import ParsedMail, parse_message
from helpdesk_tui.mail.templates import DEFAULT_ACK_BODY, DEFAULT_ACK_SUBJECT, TemplateError, render
from helpdesk_tui.mail.threading import ThreadDecision, decide_thread
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import is_pg_conflict

LOOP_HEADER = "X-Helpdesk-Loop"


# Keys of Session.info for the per-mail path; a session lives for one attempt of a unit of work.
_REFERENCE_ROWS = "helpdesk_intake_reference_rows"
_STORED_KEYS = "helpdesk_intake_stored_keys"
_ACK_TEMPLATES = "helpdesk_intake_ack_templates"


@dataclass
class _StoredKeys:
    """Hashes and (mailbox, uidvalidity, uid) keys that may already be stored in this batch."""

    shas: set[str]
    keys: set[tuple[int | None, int | None, int | None]]


@dataclass(frozen=True)
class IncomingMail:
    """One fetched mail and where it came from."""

    raw: bytes
    uidvalidity: int | None = None
    uid: int | None = None
    parsed: ParsedMail | None = None


@dataclass(frozen=True)
class IngestResult:
    ticket: int | None
    message: int | None
    duplicate: bool
    new_ticket: bool
    rule: str
    evidence: str
    needs_review: bool
    acknowledged: bool
    ack_reason: str
    uid: int | None = None


@dataclass(frozen=True)
class AckSettings:
    per_sender_per_day: int = 1
    per_sender_per_3h: int = 10


def incoming_message_fields(parsed: ParsedMail) -> dict[str, Any]:
    """The Message columns an incoming mail fills, the same on the per-mail and bulk paths."""
    return {
        "direction": "in",
        "from_addr": parsed.from_addr or "",
        "from_name": parsed.from_name,
        "to_addrs": list(parsed.to),
        "cc_addrs": list(parsed.cc),
        "subject": parsed.subject,
        "body_text": parsed.text,
        "body_html": parsed.html,
        "raw_headers": parsed.raw_headers,
        "rfc_message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": " ".join(parsed.references),
        "needs_review": parsed.needs_review,
        "review_error": parsed.review_reason if parsed.needs_review else "",
    }


class _Lookup:
    """ThreadLookup over the open transaction."""

    def __init__(self, s: Session) -> None:
        self.s = s

    def ticket_for_message_ids(self, ids: Sequence[str]) -> tuple[int, str] | None:
        if not ids:
            return None
        rows = self.s.exec(
            select(M.Message.ticket_id, M.Message.rfc_message_id).where(
                col(M.Message.rfc_message_id).in_(list(ids))
            )
        ).all()
        found = {mid: tid for tid, mid in rows}
        for mid in ids:
            if mid in found:
                return found[mid], mid
        return None

    def ticket_exists(self, number: int) -> bool:
        return self.s.get(M.Ticket, number) is not None

    def may_use_subject_tag(self, number: int, sender: str) -> str | None:
        sender = sender.lower()
        cust = self.s.exec(
            select(M.CustomerAddress.id)
            .join(
                M.TicketCustomer,
                col(M.TicketCustomer.customer_id) == col(M.CustomerAddress.customer_id),
            )
            .where(M.TicketCustomer.ticket_id == number, M.CustomerAddress.address == sender)
        ).first()
        if cust is not None:
            return "customer"
        follower = self.s.exec(
            select(M.Agent.id)
            .join(M.Follower, col(M.Follower.agent_id) == col(M.Agent.id))
            .where(M.Follower.ticket_id == number, M.Agent.email == sender)
        ).first()
        if follower is not None:
            return "follower"
        if self.is_external_party(number, sender):
            return "external party"
        return None

    def is_external_party(self, number: int, sender: str) -> bool:
        return self.s.get(M.ExternalParty, (number, sender.lower())) is not None


def store_attachment_bytes(root: Path, sha256: str, data: bytes) -> None:
    """Content-addressed: the same file sent twice is kept once."""
    path = root / sha256[:2] / sha256
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class Intake:
    """Files incoming mail for one mailbox (or for an archive import)."""

    def __init__(
        self,
        desk: Desk,
        *,
        mailbox: str | None,
        attachments_dir: Path,
        own_addresses: Sequence[str] = (),
        ack: AckSettings | None = None,
        source: str = "imap",
        acknowledge: bool = True,
        bulk: bool = True,
    ) -> None:
        self.desk = desk
        self.mailbox_name = mailbox
        self.attachments_dir = attachments_dir
        self.own_addresses = tuple(a.lower() for a in own_addresses)
        self.ack = ack or AckSettings()
        self.source = source
        self.acknowledge = acknowledge
        # False files every mail through the per-mail ORM path: the reference the bulk path
        # is tested against (tests/desk/test_intake_fast.py). The bulk path names row ids
        # itself, which only SQLite's single writer makes safe.
        self.bulk = bulk and desk.store.is_sqlite

    # ------------------------------------------------------------------ the batch

    def ingest_batch(
        self,
        mails: Sequence[IncomingMail],
        *,
        uidvalidity: int | None = None,
        server_done: Sequence[int] = (),
    ) -> list[IngestResult]:
        """One transaction for the batch: new requests and duplicates in bulk (intake_fast),
        everything else a mail at a time in a savepoint, so a bad mail never sinks the rest.

        `server_done`: UIDs (under `uidvalidity`) whose flag or move the server has done since
        their own commit, recorded here rather than in a transaction of their own.
        """
        # intake_fast builds on this module's types, so it is imported here, not at the top.
        from helpdesk_tui.desk.intake_fast import FastBatch

        prepared = [(m, m.parsed or parse_message(m.raw)) for m in mails]
        for _, parsed in prepared:
            for att in parsed.attachments:
                store_attachment_bytes(self.attachments_dir, att.sha256, att.data)

        def fn(s: Session) -> list[IngestResult]:
            mailbox = self._mailbox(s)
            if self.bulk:
                results = FastBatch(self, s, mailbox).run(prepared)
            else:
                if len(prepared) > 1:
                    self._prefetch(s, mailbox, prepared)
                results = [self._one(s, mailbox, mail, parsed) for mail, parsed in prepared]
            if mailbox is not None:
                uids = [m.uid for m in mails if m.uid is not None]
                if uidvalidity is not None:
                    mailbox.uidvalidity = uidvalidity
                if uids:
                    mailbox.last_uid = max(mailbox.last_uid, *uids)
                if server_done and uidvalidity is not None:
                    s.execute(
                        sa.update(M.ImportedMail)
                        .where(
                            col(M.ImportedMail.mailbox_id) == mailbox.id,
                            col(M.ImportedMail.uidvalidity) == uidvalidity,
                            col(M.ImportedMail.uid).in_(list(server_done)),
                        )
                        .values(server_done=True)
                    )
            return results

        return self.desk.store.write(fn)

    def ingest(
        self, raw: bytes, *, uidvalidity: int | None = None, uid: int | None = None
    ) -> IngestResult:
        return self.ingest_batch([IncomingMail(raw, uidvalidity, uid)], uidvalidity=uidvalidity)[0]

    def _one(
        self, s: Session, mailbox: M.Mailbox | None, mail: IncomingMail, parsed: ParsedMail
    ) -> IngestResult:
        """The per-mail path in its own savepoint; what fails, but for a conflict, is kept raw."""
        try:
            with s.begin_nested():
                return self._ingest_one(s, mailbox, mail, parsed)
        except Exception as exc:  # stored raw for review below, unless transient
            if is_pg_conflict(exc):
                # E.g. a ticket an agent changed after the batch's snapshot: nothing wrong
                # with the mail; Store.write runs the whole batch again.
                raise
            with s.begin_nested():
                return self._quarantine(s, mailbox, mail, f"{type(exc).__name__}: {exc}")

    def _prefetch(
        self,
        s: Session,
        mailbox: M.Mailbox | None,
        prepared: Sequence[tuple[IncomingMail, ParsedMail]],
    ) -> None:
        """A few reads for the batch instead of several round trips a mail (the PostgreSQL path).

        The desk reads statuses, categories and priorities with `get`, but the identity map
        holds rows weakly, so each mail read them again: kept here, they stay for the batch.
        The batch's import keys and hashes already stored are read at once (_existing).
        """
        s.info[_REFERENCE_ROWS] = [
            *s.exec(select(M.Status)).all(),
            *s.exec(select(M.Category)).all(),
            *s.exec(select(M.Priority)).all(),
        ]
        levels: dict[int, list[M.EscalationLevel]] = {}
        for lv in s.exec(select(M.EscalationLevel)).all():
            levels.setdefault(lv.priority_id, []).append(lv)
        s.info[escalation.LEVELS_BY_PRIORITY] = levels
        shas = [parsed.sha256 for _, parsed in prepared]  # the parser hashed the raw bytes
        uids = [m.uid for m, _ in prepared if m.uid is not None]
        found: sa.ColumnElement[bool] = col(M.ImportedMail.sha256).in_(shas)
        if mailbox is not None and uids:
            found = sa.or_(
                found,
                sa.and_(
                    col(M.ImportedMail.mailbox_id) == mailbox.id,
                    col(M.ImportedMail.uid).in_(uids),
                ),
            )
        rows = s.execute(
            sa.select(
                col(M.ImportedMail.sha256),
                col(M.ImportedMail.mailbox_id),
                col(M.ImportedMail.uidvalidity),
                col(M.ImportedMail.uid),
            ).where(found)
        ).all()
        s.info[_STORED_KEYS] = _StoredKeys({r[0] for r in rows}, {(r[1], r[2], r[3]) for r in rows})

    def _mailbox(self, s: Session) -> M.Mailbox | None:
        if self.mailbox_name is None:
            return None
        mb = s.exec(select(M.Mailbox).where(M.Mailbox.name == self.mailbox_name)).first()
        if mb is None:
            raise LookupError(f"no mailbox named {self.mailbox_name!r} in the store")
        return mb

    # ------------------------------------------------------------------ one mail

    def _existing(
        self, s: Session, mailbox: M.Mailbox | None, mail: IncomingMail, sha: str
    ) -> M.ImportedMail | None:
        stored: _StoredKeys | None = s.info.get(_STORED_KEYS)
        if stored is not None:
            # Keyed only when looked up by key below (a mailbox and a UID).
            key = None
            if mailbox is not None and mail.uid is not None:
                key = (mailbox.id, mail.uidvalidity, mail.uid)
            if sha not in stored.shas and key not in stored.keys:
                # In neither the batch's snapshot read nor an earlier mail of this transaction;
                # marked now, so a later mail with these bytes or this key looks it up below.
                stored.shas.add(sha)
                if key is not None:
                    stored.keys.add(key)
                return None
        if mailbox is not None and mail.uid is not None:
            row = s.exec(
                select(M.ImportedMail).where(
                    M.ImportedMail.mailbox_id == mailbox.id,
                    M.ImportedMail.uidvalidity == mail.uidvalidity,
                    M.ImportedMail.uid == mail.uid,
                )
            ).first()
            if row is not None:
                return row
        return s.exec(select(M.ImportedMail).where(M.ImportedMail.sha256 == sha)).first()

    def _record(
        self,
        s: Session,
        mailbox: M.Mailbox | None,
        mail: IncomingMail,
        parsed_id: str,
        sha: str,
        *,
        message_id: int | None,
        needs_review: bool = False,
        error: str = "",
    ) -> None:
        s.add(
            M.ImportedMail(
                mailbox_id=mailbox.id if mailbox else None,
                source=self.source,
                uidvalidity=mail.uidvalidity,
                uid=mail.uid,
                rfc_message_id=parsed_id,
                sha256=sha,
                raw=mail.raw,
                message_id=message_id,
                needs_review=needs_review,
                error=error,
                imported_at=self.desk.clock.now(),
            )
        )

    def _ingest_one(
        self, s: Session, mailbox: M.Mailbox | None, mail: IncomingMail, parsed: ParsedMail
    ) -> IngestResult:
        sha = parsed.sha256  # of mail.raw, computed by the parser
        existing = self._existing(s, mailbox, mail, sha)
        if existing is not None:
            same_key = existing.uid == mail.uid and existing.uidvalidity == mail.uidvalidity
            if not same_key:
                # Same bytes under a new key (a UIDVALIDITY change, or the mail sent twice):
                # remember the key so it is never fetched again, but file nothing new.
                self._record(
                    s, mailbox, mail, parsed.message_id, sha, message_id=existing.message_id
                )
            known: int | None = None
            if existing.message_id is not None:
                prior = s.get(M.Message, existing.message_id)
                known = prior.ticket_id if prior else None
            return IngestResult(
                known,
                existing.message_id,
                True,
                False,
                "duplicate",
                "already imported",
                False,
                False,
                "duplicate",
                mail.uid,
            )

        desk = self.desk
        now = desk.clock.now()
        decision = self._decide(s, parsed)
        ticket: M.Ticket | None = None
        new_ticket = False
        rule, evidence = decision.rule, decision.evidence
        if decision.ticket is not None:
            ticket = desk._ticket(s, decision.ticket)
            if ticket.merged_into_id is not None:
                survivor = desk._ticket(s, decision.ticket, follow_merge=True)
                evidence += f"; #{ticket.id} was merged into #{survivor.id}"
                ticket = survivor
            base = desk._base(s, ticket)
            status = s.get(M.Status, ticket.status_id)
            if base == "closed" and status is not None and not status.reopen_by_mail:
                old = ticket
                ticket = None
                evidence += f"; #{old.id} is {status.name}, which mail may not reopen: new request"
                rule = "new"
                ticket = self._new_ticket(s, mailbox, parsed)
                ticket.linked_to_id = old.id
                new_ticket = True
            elif base == "deleted":
                evidence += f"; #{ticket.id} is deleted: new request"
                old_id = ticket.id
                ticket = self._new_ticket(s, mailbox, parsed)
                ticket.linked_to_id = old_id
                rule, new_ticket = "new", True
        if ticket is None:
            ticket = self._new_ticket(s, mailbox, parsed)
            new_ticket = True

        internal = decision.internal and not new_ticket
        kind = "external" if internal else "customer"
        review_reason = parsed.review_reason if parsed.needs_review else ""
        msg = desk._add_message(
            s,
            ticket,
            visibility="internal" if internal else "external",
            kind=kind,
            thread_rule=rule,
            thread_evidence=evidence,
            **incoming_message_fields(parsed),
        )
        for att in parsed.attachments:
            s.add(
                M.Attachment(
                    message_id=msg.id,  # type: ignore[arg-type]
                    filename=att.filename,
                    content_type=att.content_type,
                    size=len(att.data),
                    sha256=att.sha256,
                )
            )
        if parsed.needs_review:
            ticket.needs_review = True
        if not new_ticket:
            self._new_info(s, ticket, internal, now)
        self._record(
            s,
            mailbox,
            mail,
            parsed.message_id,
            sha,
            message_id=msg.id,
            needs_review=parsed.needs_review,
            error=review_reason,
        )
        acknowledged, ack_reason = False, "not a new request"
        if new_ticket:
            acknowledged, ack_reason = self._acknowledge(s, mailbox, ticket, msg, parsed)
        return IngestResult(
            ticket.id,
            msg.id,
            False,
            new_ticket,
            rule,
            evidence,
            parsed.needs_review,
            acknowledged,
            ack_reason,
            mail.uid,
        )

    def _decide(self, s: Session, parsed: ParsedMail) -> ThreadDecision:
        return decide_thread(parsed, _Lookup(s), self.desk._secret_in(s))

    def _new_ticket(self, s: Session, mailbox: M.Mailbox | None, parsed: ParsedMail) -> M.Ticket:
        desk = self.desk
        address = parsed.from_addr or "unknown@invalid.invalid"
        try:
            customer = desk._customer_for(s, address, parsed.from_name)
        except Exception:  # noqa: BLE001 - a broken From still makes a request
            customer = desk._customer_for(s, "unknown@invalid.invalid", parsed.from_name)
        subject = parsed.subject.strip() or "(no subject)"
        ticket = desk._new_ticket(
            s,
            subject,
            customer,
            priority=None,
            category=None,
            owner=None,
            actor=None,
            mailbox=mailbox,
        )
        return ticket

    def _new_info(self, s: Session, ticket: M.Ticket, internal: bool, now: datetime) -> None:
        """Customer mail on a known ticket: yellow for its owner, reopen or wake it up."""
        desk = self.desk
        base = desk._base(s, ticket)
        before = desk._snapshot(ticket)
        if ticket.read_status == "green":
            ticket.read_status = "yellow"
        if not internal and base in ("closed", "postponed"):
            desk._set_status(s, ticket, desk._status_for(s, "active", "queue"), now)
            ticket.closed_at = None
            # Back to active: new_info's policy, "stop" read as continue (desk.escalation).
            escalation.wake(desk, s, ticket)
            action = "reopen_by_mail" if base == "closed" else "reactivate_by_mail"
            desk._event(s, ticket, action, before, desk._snapshot(ticket))
            if ticket.owner_id:
                owner = s.get(M.Agent, ticket.owner_id)
                if owner is not None:
                    desk._alert(
                        s, owner, ticket, "mail", f"#{ticket.id} has new mail and is active again"
                    )
        elif internal and desk._status_for(s, "active", "external").id == ticket.status_id:
            desk._set_status(s, ticket, desk._status_for(s, "active", "queue"), now)
        elif not internal:
            escalation.apply_event(desk, s, ticket, "new_info")
        desk._touch(ticket, now)

    # ------------------------------------------------------------------ acknowledgement

    def _acknowledge(
        self,
        s: Session,
        mailbox: M.Mailbox | None,
        ticket: M.Ticket,
        msg: M.Message,
        parsed: ParsedMail,
    ) -> tuple[bool, str]:
        desk = self.desk
        now = desk.clock.now()
        sender = (parsed.from_addr or "").lower()

        def record(ok: bool, reason: str) -> tuple[bool, str]:
            s.add(
                M.AckDecision(
                    mailbox_id=mailbox.id if mailbox else None,
                    ticket_id=ticket.id,
                    sender=sender,
                    acknowledged=ok,
                    reason=reason,
                    at=now,
                )
            )
            return ok, reason

        if not self.acknowledge:
            return False, "archive import: never acknowledged"
        if mailbox is None or not mailbox.ack_template:
            return False, "no acknowledgement template"
        verdict = ack_decision(
            parsed,
            self.own_addresses or (mailbox.address,),
            desk.options.domain,
            desk.options.domain,
        )
        if not verdict.acknowledge:
            return record(False, verdict.reason)
        since = now - timedelta(hours=24)
        previous = s.exec(
            select(M.AckDecision.at).where(
                M.AckDecision.sender == sender,
                col(M.AckDecision.acknowledged).is_(True),
                col(M.AckDecision.at) >= since,
            )
        ).all()
        limited = rate_limited(
            list(previous), now, self.ack.per_sender_per_day, self.ack.per_sender_per_3h
        )
        if limited:
            return record(False, limited)
        subject, body = self._ack_text(s, mailbox, ticket, parsed)
        out = desk._add_message(
            s,
            ticket,
            direction="out",
            visibility="external",
            kind="ack",
            from_addr=mailbox.address,
            from_name=desk.options.name,
            to_addrs=[sender],
            subject=subject,
            body_text=body,
            in_reply_to=parsed.message_id,
            references=" ".join([*parsed.references, parsed.message_id]),
            thread_rule="auto",
            thread_evidence="automatic acknowledgement of a new request",
        )
        desk._queue_mail(
            s,
            ticket,
            out,
            kind="ack",
            recipients=[sender],
            subject=subject,
            body=body,
            headers={
                "In-Reply-To": parsed.message_id,
                "References": " ".join([*parsed.references, parsed.message_id][-10:]),
                "To": sender,
            },
        )
        return record(True, "acknowledged")

    def _ack_text(
        self, s: Session, mailbox: M.Mailbox, ticket: M.Ticket, parsed: ParsedMail
    ) -> tuple[str, str]:
        desk = self.desk
        # Read once a transaction, not once a mail.
        templates: dict[str, tuple[str, str]] = s.info.setdefault(_ACK_TEMPLATES, {})
        if mailbox.ack_template not in templates:
            row = s.exec(
                select(M.ReplyTemplate)
                .where(M.ReplyTemplate.name == mailbox.ack_template)
                .order_by(col(M.ReplyTemplate.language) != "en")
            ).first()
            templates[mailbox.ack_template] = (
                (row.subject, row.body) if row else (DEFAULT_ACK_SUBJECT, DEFAULT_ACK_BODY)
            )
        subject_t, body_t = templates[mailbox.ack_template]
        category = s.get(M.Category, ticket.category_id) if ticket.category_id else None
        priority = s.get(M.Priority, ticket.priority_id) if ticket.priority_id else None
        deadline = (
            ticket.deadline_at.astimezone(desk.tz).strftime("%Y-%m-%d %H:%M")
            if ticket.deadline_at
            else ""
        )
        variables = {
            "number": str(ticket.id),
            "title": ticket.title,
            "customer_name": parsed.from_name or parsed.from_addr,
            "customer_email": parsed.from_addr,
            "agent_name": "",
            "agent_login": "",
            "category": category.name if category else "",
            "priority": priority.name if priority else "",
            "deadline": deadline,
            "desk_name": desk.options.name,
            "status": "open",
        }
        try:
            return render(subject_t, variables), render(body_t, variables)
        except TemplateError:
            return render(DEFAULT_ACK_SUBJECT, variables), render(DEFAULT_ACK_BODY, variables)

    # ------------------------------------------------------------------ unparseable

    def _quarantine(
        self, s: Session, mailbox: M.Mailbox | None, mail: IncomingMail, error: str
    ) -> IngestResult:
        """Whatever went wrong, the raw mail is kept and a request flags it for review."""
        desk = self.desk
        sha = hashlib.sha256(mail.raw).hexdigest()
        existing = self._existing(s, mailbox, mail, sha)
        if existing is not None:
            return IngestResult(
                None,
                existing.message_id,
                True,
                False,
                "duplicate",
                "already imported",
                existing.needs_review,
                False,
                "duplicate",
                mail.uid,
            )
        customer = desk._customer_for(s, "unknown@invalid.invalid", "")
        ticket = desk._new_ticket(
            s,
            "(mail that could not be read)",
            customer,
            priority=None,
            category=None,
            owner=None,
            actor=None,
            mailbox=mailbox,
        )
        ticket.needs_review = True
        msg = desk._add_message(
            s,
            ticket,
            direction="in",
            visibility="external",
            kind="customer",
            subject="(mail that could not be read)",
            body_text=clean_text(mail.raw[:4000].decode("utf-8", "replace")),
            thread_rule="new",
            thread_evidence="could not be parsed; stored raw for review",
            needs_review=True,
            review_error=error,
        )
        self._record(s, mailbox, mail, "", sha, message_id=msg.id, needs_review=True, error=error)
        return IngestResult(
            ticket.id,
            msg.id,
            False,
            True,
            "new",
            "stored raw for review",
            True,
            False,
            "needs review",
            mail.uid,
        )
