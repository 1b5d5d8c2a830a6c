"""Frozen records handed to the CLI, the TUI and the worker; never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# In a module of its own: the app's first frame needs this record alone (desk/first_page.py),
# and defining the ten below costs that frame about 9 ms.
from helpdesk_tui.desk.summary import TicketSummary

__all__ = [
    "AgentRecord",
    "AlertRecord",
    "AttachmentRecord",
    "CustomerRecord",
    "EventRecord",
    "MessageRecord",
    "OutboxRecord",
    "TicketDetail",
    "TicketSummary",
    "TimeSpent",
]


@dataclass(frozen=True)
class AgentRecord:
    login: str
    name: str
    email: str
    signature: str = ""
    active: bool = True


@dataclass(frozen=True)
class AttachmentRecord:
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class MessageRecord:
    id: int
    ticket: int
    direction: str
    visibility: str
    kind: str
    author: str | None
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str
    created_at: datetime
    rfc_message_id: str = ""
    thread_rule: str = ""
    thread_evidence: str = ""
    needs_review: bool = False
    review_error: str = ""
    time_spent_seconds: int = 0
    attachments: tuple[AttachmentRecord, ...] = ()
    outbox_state: str | None = None
    outbox_error: str = ""


@dataclass(frozen=True)
class EventRecord:
    id: int
    ticket: int | None
    at: datetime
    agent: str | None
    os_user: str
    action: str
    before: dict[str, Any]
    after: dict[str, Any]
    undone: bool = False


@dataclass(frozen=True)
class TimeSpent:
    queue: int = 0
    internal: int = 0
    external: int = 0
    queue_work: int = 0
    internal_work: int = 0
    external_work: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "queue": self.queue,
            "internal": self.internal,
            "external": self.external,
            "queue_working": self.queue_work,
            "internal_working": self.internal_work,
            "external_working": self.external_work,
        }


@dataclass(frozen=True)
class CustomerRecord:
    id: int
    name: str
    addresses: tuple[str, ...]
    company: str | None = None


@dataclass(frozen=True)
class TicketDetail:
    summary: TicketSummary
    version: int
    customers: tuple[CustomerRecord, ...]
    replied_at: datetime | None
    closed_at: datetime | None
    first_read_at: datetime | None
    activate_at: datetime | None
    merged_into: int | None
    linked_to: int | None
    next_alert_at: datetime | None
    escalation_running: bool
    escalation_seconds_left: int | None
    time_spent: TimeSpent
    first_reply_seconds: int | None
    first_reply_work_seconds: int | None
    close_seconds: int | None
    close_work_seconds: int | None
    reply_count: int
    messages: tuple[MessageRecord, ...] = ()
    events: tuple[EventRecord, ...] = ()
    followers: tuple[str, ...] = ()
    external_parties: tuple[str, ...] = ()
    merged_from: tuple[int, ...] = field(default_factory=tuple)

    @property
    def number(self) -> int:
        return self.summary.number


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    ticket: int | None
    kind: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    message_id: str
    recipients: tuple[str, ...]
    subject: str
    created_at: datetime
    sent_at: datetime | None
    ambiguous: bool = False


@dataclass(frozen=True)
class AlertRecord:
    id: int
    ticket: int | None
    kind: str
    level: int
    text: str
    created_at: datetime
    read_at: datetime | None
