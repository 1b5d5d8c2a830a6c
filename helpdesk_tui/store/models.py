"""The tables. Persistence only: the help-desk rules live in desk/, never here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone and gives back tz-aware UTC, so comparisons never mix kinds."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use tz-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _json(default: Any) -> Any:
    return Field(
        default_factory=lambda: type(default)(default),
        sa_column=sa.Column(sa.JSON(), nullable=False),
    )


# --- people -----------------------------------------------------------------------------------


class Agent(SQLModel, table=True):
    """A support agent; `login` is the Unix login name."""

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(unique=True, index=True)
    name: str
    email: str = ""
    signature: str = ""
    active: bool = True
    created_at: datetime | None = _ts()


class Company(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)


class Customer(SQLModel, table=True):
    """A contact; one person may write from several addresses."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = ""
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    created_at: datetime | None = _ts()


class CustomerAddress(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    address: str = Field(unique=True, index=True)  # stored lower-cased


# --- desk setup -------------------------------------------------------------------------------


class Category(SQLModel, table=True):
    """A queue; nested through parent_id."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    parent_id: int | None = Field(default=None, foreign_key="category.id")
    default_priority_id: int | None = Field(default=None, foreign_key="priority.id")
    assign_method: str = "queue"  # queue | round_robin | fewest_active
    last_assigned_agent_id: int | None = Field(default=None, foreign_key="agent.id")


class CategoryAgent(SQLModel, table=True):
    category_id: int = Field(foreign_key="category.id", primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", primary_key=True)


class Status(SQLModel, table=True):
    """A desk-defined status mapped onto one of the five base statuses."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    base: str  # active | closed | postponed | deleted | merged
    counter: str = "none"  # queue | internal | external | none
    reopen_by_mail: bool = True
    is_queue: bool = False


class Priority(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    rank: int = 0  # higher is more urgent; "raise priority" moves to the next rank up
    deadline_minutes: int = 0
    hours: dict[str, list[str]] = _json({})  # weekday -> [start, stop]; missing = closed
    holidays: list[str] = _json([])  # "dd/mm" or "dd/mm/yyyy"
    escalate_only_in_hours: bool = False
    on_read: str = "continue"  # stop | continue | restart
    on_reassigned: str = "restart"
    on_new_info: str = "restart"
    on_closed: str = "stop"
    on_priority_changed: str = "restart"
    on_new: str = "continue"


class EscalationLevel(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("priority_id", "alert_level"),)

    id: int | None = Field(default=None, primary_key=True)
    priority_id: int = Field(foreign_key="priority.id", index=True)
    alert_level: int
    minutes: int
    actions: list[str] = _json([])
    delegate_to_id: int | None = Field(default=None, foreign_key="agent.id")
    notify_agents: list[str] = _json([])
    email_to: str = ""
    script: list[str] = _json([])


class Mailbox(SQLModel, table=True):
    """An IMAP mailbox and the health of its sync."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    address: str
    category_id: int | None = Field(default=None, foreign_key="category.id")
    priority_id: int | None = Field(default=None, foreign_key="priority.id")
    ack_template: str = ""
    uidvalidity: int | None = None
    last_uid: int = 0
    last_success: datetime | None = _ts()
    last_try: datetime | None = _ts()
    last_error: str = ""
    consecutive_failures: int = 0
    stopped_reason: str = ""


class ReplyTemplate(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("folder", "name", "language"),)

    id: int | None = Field(default=None, primary_key=True)
    folder: str = ""
    name: str
    language: str = "en"
    subject: str = ""
    body: str = ""


# --- tickets ----------------------------------------------------------------------------------


class Ticket(SQLModel, table=True):
    """A request. `id` is the ticket number agents and customers see."""

    __table_args__ = (
        sa.Index("ix_ticket_status_deadline", "status_id", "deadline_at"),
        sa.Index("ix_ticket_owner_status", "owner_id", "status_id"),
        # "My open" ordered by deadline, and the Escalated view.
        sa.Index("ix_ticket_owner_deadline", "owner_id", "deadline_at"),
        sa.Index(
            "ix_ticket_escalated",
            "alert_level",
            "updated_at",
            sqlite_where=sa.text("alert_level > 0"),
            postgresql_where=sa.text("alert_level > 0"),
        ),
        # Opening a ticket (what was merged into it), the dashboard, is:unread (0006).
        sa.Index("ix_ticket_merged_into_id", "merged_into_id"),
        sa.Index("ix_ticket_created_first_reply", "created_at", "first_reply_seconds"),
        sa.Index("ix_ticket_closed_close", "closed_at", "close_seconds"),
        sa.Index("ix_ticket_read_status", "read_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str
    status_id: int = Field(foreign_key="status.id")
    category_id: int | None = Field(default=None, foreign_key="category.id", index=True)
    priority_id: int | None = Field(default=None, foreign_key="priority.id")
    owner_id: int | None = Field(default=None, foreign_key="agent.id")
    mailbox_id: int | None = Field(default=None, foreign_key="mailbox.id")
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False, index=True)
    deadline_at: datetime | None = _ts()
    activate_at: datetime | None = _ts(index=True)
    merged_into_id: int | None = Field(default=None, foreign_key="ticket.id")
    linked_to_id: int | None = Field(default=None, foreign_key="ticket.id")
    replied_at: datetime | None = _ts()
    closed_at: datetime | None = _ts()
    first_read_at: datetime | None = _ts()
    read_status: str = "red"  # red unread | yellow new info | green read
    # escalation
    alert_level: int = 0
    next_alert_at: datetime | None = _ts(index=True)
    escalation_seconds_left: int | None = None
    escalation_running: bool = False
    # time counters, around the clock and in working time
    counter_since: datetime | None = _ts()
    queue_seconds: int = 0
    internal_seconds: int = 0
    external_seconds: int = 0
    queue_work_seconds: int = 0
    internal_work_seconds: int = 0
    external_work_seconds: int = 0
    first_reply_seconds: int | None = None
    first_reply_work_seconds: int | None = None
    close_seconds: int | None = None
    close_work_seconds: int | None = None
    message_count: int = 0
    reply_count: int = 0
    needs_review: bool = Field(default=False, index=True)
    version: int = 1


class TicketCustomer(SQLModel, table=True):
    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", primary_key=True, index=True)


class TicketTag(SQLModel, table=True):
    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    tag: str = Field(primary_key=True, index=True)


class Follower(SQLModel, table=True):
    """Agents who follow (or favourite) a ticket; followers may reply by mail with the tag."""

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", primary_key=True, index=True)
    kind: str = Field(default="follow", primary_key=True)  # follow | favourite


class ExternalParty(SQLModel, table=True):
    """Addresses a ticket was forwarded to; their replies are filed back as internal."""

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    address: str = Field(primary_key=True, index=True)


class Message(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_message_ticket_created", "ticket_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    direction: str  # in | out
    visibility: str = "external"  # external | internal
    kind: str = "customer"  # customer | reply | note | ask | forward | external | phone | ack
    author_agent_id: int | None = Field(default=None, foreign_key="agent.id")
    from_addr: str = ""
    from_name: str = ""
    to_addrs: list[str] = _json([])
    cc_addrs: list[str] = _json([])
    subject: str = ""
    body_text: str = ""
    body_html: str = ""
    raw_headers: str = ""
    rfc_message_id: str = Field(default="", index=True)
    in_reply_to: str = ""
    references: str = ""
    thread_rule: str = ""  # how it was placed: new | message-id | subject-tag | manual | merge ...
    thread_evidence: str = ""
    time_spent_seconds: int = 0
    needs_review: bool = False
    review_error: str = ""
    created_at: datetime = _ts(nullable=False)


class Attachment(SQLModel, table=True):
    """Metadata; the bytes live content-addressed under the data dir by sha256."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    filename: str
    content_type: str = "application/octet-stream"
    size: int = 0
    sha256: str = Field(index=True)


class TicketEvent(SQLModel, table=True):
    """The audit log, and what undo reads."""

    __table_args__ = (sa.Index("ix_ticketevent_ticket_at", "ticket_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    os_user: str = ""
    at: datetime = _ts(nullable=False)
    action: str
    before: dict[str, Any] = _json({})
    after: dict[str, Any] = _json({})
    undone: bool = False


class Outbox(SQLModel, table=True):
    """Mail waiting to be sent; written in the same transaction as its ticket message."""

    __table_args__ = (
        sa.Index("ix_outbox_state_next", "state", "next_attempt_at"),
        sa.Index("ix_outbox_message_id", "message_id"),  # a ticket's messages' outbox state
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    kind: str = "reply"  # reply | forward | ack | notice
    state: str = "queued"  # queued | sending | sent | retry | failed | cancelled
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()
    last_error: str = ""
    rfc_message_id: str = Field(default="", index=True)
    mail_from: str = ""
    recipients: list[str] = _json([])
    subject: str = ""
    body: str = ""
    headers: dict[str, str] = _json({})
    attachment_ids: list[int] = _json([])
    raw: bytes | None = None
    ambiguous: bool = False
    claimed_by: str = ""
    claimed_at: datetime | None = _ts()
    created_at: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts()


class Alert(SQLModel, table=True):
    """A notice for one agent's screen."""

    __table_args__ = (
        sa.Index("ix_alert_agent_read", "agent_id", "read_at"),
        sa.Index("ix_alert_agent_kind", "agent_id", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id")
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    kind: str  # escalation | assigned | asked | reactivated | mail
    level: int = 0
    text: str = ""
    created_at: datetime = _ts(nullable=False)
    read_at: datetime | None = _ts()


class ImportedMail(SQLModel, table=True):
    """Every fetched mail, raw, keyed so nothing is imported twice."""

    __table_args__ = (
        sa.UniqueConstraint("mailbox_id", "uidvalidity", "uid"),
        sa.Index("ix_importedmail_msgid_sha", "rfc_message_id", "sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mailbox_id: int | None = Field(default=None, foreign_key="mailbox.id")
    source: str = "imap"  # imap | mbox | maildir | cli
    uidvalidity: int | None = None
    uid: int | None = None
    rfc_message_id: str = ""
    sha256: str = Field(index=True)
    raw: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    message_id: int | None = Field(default=None, foreign_key="message.id")
    needs_review: bool = False
    error: str = ""
    server_done: bool = False  # flagged or moved on the server after commit
    imported_at: datetime = _ts(nullable=False)


class AckDecision(SQLModel, table=True):
    """Why a mail was or was not acknowledged; also the basis of the per-sender rate limit."""

    __table_args__ = (sa.Index("ix_ackdecision_sender_at", "sender", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    mailbox_id: int | None = Field(default=None, foreign_key="mailbox.id")
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    sender: str = ""
    acknowledged: bool = False
    reason: str = ""
    at: datetime = _ts(nullable=False)


class Presence(SQLModel, table=True):
    """Who has a ticket open or is composing on it: soft, expiring with the heartbeat."""

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", primary_key=True)
    session: str = Field(primary_key=True)  # host:pid of the app, so two terminals stay apart
    activity: str = "viewing"  # viewing | composing
    seen_at: datetime = _ts(nullable=False, index=True)


class Meta(SQLModel, table=True):
    """Desk-wide key/value facts: the HMAC secret for Message-IDs, the worker lease."""

    key: str = Field(primary_key=True)
    value: str = ""
