"""search index in bulk: intake may index a batch's tickets and messages itself, once each

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 16:00:00

The row triggers of revision 0003 index a new ticket twice (at its INSERT, then again when its
customer is linked) and cost about half of a bulk intake's INSERT time. The triggers on those
INSERTs now stand aside while `search_bulk` holds a row. Only the bulk intake writes that row,
inside its own BEGIN IMMEDIATE transaction, and removes it before that transaction ends, after
indexing the batch's rows with one INSERT ... SELECT a table (helpdesk_tui/store/search_bulk.py).
No other connection ever sees the row: under SQLite's single writer it is never committed.
"""

# ruff: noqa: S608 - the SQL below is assembled from constants of this file, never outside text

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# As in revision 0003.
_PEOPLE = """coalesce((
    SELECT group_concat(p, ' ') FROM (
        SELECT c.name || ' ' || coalesce((
            SELECT group_concat(a.address, ' ') FROM customeraddress a
            WHERE a.customer_id = c.id
        ), '') AS p
        FROM ticketcustomer tc JOIN customer c ON c.id = tc.customer_id
        WHERE tc.ticket_id = t.id ORDER BY c.id
    )
), '')"""


def _upsert_docs(where: str) -> str:
    return f"""
        INSERT INTO search_doc (ticket_id, subject, people)
        SELECT t.id, t.title, {_PEOPLE} FROM ticket t WHERE {where}
        ON CONFLICT (ticket_id) DO UPDATE SET subject = excluded.subject, people = excluded.people
        WHERE search_doc.subject IS NOT excluded.subject
           OR search_doc.people IS NOT excluded.people;
    """


_MSG_INSERT = (
    "INSERT INTO search_fts (rowid, subject, body, sender, recipients, people) VALUES ("
    "((new.ticket_id << 32) | new.id), new.subject, new.body_text, "
    "new.from_name || ' ' || new.from_addr, "
    "coalesce(new.to_addrs, '') || ' ' || coalesce(new.cc_addrs, ''), '');"
)

_OUTSIDE_BULK = "WHEN NOT EXISTS (SELECT 1 FROM search_bulk)"

_BEFORE: dict[str, str] = {
    "search_ticket_ai": f"AFTER INSERT ON ticket BEGIN {_upsert_docs('t.id = new.id')} END",
    "search_tc_ai": f"AFTER INSERT ON ticketcustomer BEGIN {_upsert_docs('t.id = new.ticket_id')} END",
    "search_message_ai": f"AFTER INSERT ON message BEGIN {_MSG_INSERT} END",
}

_AFTER: dict[str, str] = {
    "search_ticket_ai": (
        f"AFTER INSERT ON ticket {_OUTSIDE_BULK} BEGIN {_upsert_docs('t.id = new.id')} END"
    ),
    "search_tc_ai": (
        f"AFTER INSERT ON ticketcustomer {_OUTSIDE_BULK} BEGIN "
        f"{_upsert_docs('t.id = new.ticket_id')} END"
    ),
    "search_message_ai": f"AFTER INSERT ON message {_OUTSIDE_BULK} BEGIN {_MSG_INSERT} END",
}


def _replace(triggers: dict[str, str]) -> None:
    for name, body in triggers.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE search_bulk (id INTEGER PRIMARY KEY)")
    _replace(_AFTER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _replace(_BEFORE)
    op.execute("DROP TABLE IF EXISTS search_bulk")
