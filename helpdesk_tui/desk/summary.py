"""A ticket as a list shows it; the one record the app's first frame needs (see records.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TicketSummary:
    number: int
    title: str
    status: str
    base_status: str
    priority: str | None
    priority_rank: int
    owner: str | None
    customer: str
    category: str | None
    created_at: datetime
    updated_at: datetime
    deadline_at: datetime | None
    read_status: str
    alert_level: int
    message_count: int
    needs_review: bool = False
    tags: tuple[str, ...] = ()
    version: int = 0  # what an action from the list passes as expected_version
    activate_at: datetime | None = None  # when a postponed ticket wakes up
