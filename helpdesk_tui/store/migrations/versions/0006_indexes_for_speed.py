"""indexes for opening a ticket, the dashboard and is:unread

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:30:00

Measured at 100,000 tickets: opening a ticket looked up the tickets merged into it and the
outbox rows of its messages by full scans (23 ms and 9 ms of every open); the dashboard read
the last 30 days' created and closed tickets row by row from the table; `is:unread` listed its matches
by walking tickets newest first. Each now has an index.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_ticket_merged_into_id", "ticket", ["merged_into_id"]),
    # Covering: the dashboard reads these pairs for the last 30 days without table lookups.
    ("ix_ticket_created_first_reply", "ticket", ["created_at", "first_reply_seconds"]),
    ("ix_ticket_closed_close", "ticket", ["closed_at", "close_seconds"]),
    ("ix_ticket_read_status", "ticket", ["read_status"]),
    ("ix_outbox_message_id", "outbox", ["message_id"]),
)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
