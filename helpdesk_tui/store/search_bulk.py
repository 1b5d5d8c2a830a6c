"""A bulk write indexes its new tickets and messages itself, once each (SQLite, revision 0005).

The search triggers of revision 0003 index a ticket at its INSERT and again when its customer is
linked, and run a trigger program a row. While `search_bulk` holds a row those INSERT triggers
stand aside; `index_and_resume` then indexes the rows the write added with one INSERT ... SELECT
a table, producing the same index entries as the triggers. Both calls run inside the caller's
write transaction (BEGIN IMMEDIATE), so no other connection ever sees the pause.
"""

# ruff: noqa: S608 - the SQL below is assembled from constants of this file, never outside text

from __future__ import annotations

import sqlalchemy as sa

# As in revisions 0003 and 0005: a ticket's customers' names and addresses.
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

_TICKETS = f"""
    INSERT INTO search_doc (ticket_id, subject, people)
    SELECT t.id, t.title, {_PEOPLE} FROM ticket t WHERE t.id BETWEEN ? AND ?
    ON CONFLICT (ticket_id) DO UPDATE SET subject = excluded.subject, people = excluded.people
    WHERE search_doc.subject IS NOT excluded.subject
       OR search_doc.people IS NOT excluded.people
"""

_MESSAGES = """
    INSERT INTO search_fts (rowid, subject, body, sender, recipients, people)
    SELECT ((m.ticket_id << 32) | m.id), m.subject, m.body_text,
           m.from_name || ' ' || m.from_addr,
           coalesce(m.to_addrs, '') || ' ' || coalesce(m.cc_addrs, ''), ''
    FROM message m WHERE m.id BETWEEN ? AND ?
"""


def pause(conn: sa.Connection) -> None:
    """From here to `index_and_resume`, new tickets, links and messages are not indexed."""
    conn.exec_driver_sql("INSERT INTO search_bulk (id) VALUES (1)")


def index_and_resume(
    conn: sa.Connection, tickets: tuple[int, int] | None, messages: tuple[int, int] | None
) -> None:
    """Index the tickets and messages whose ids lie in the given inclusive ranges.

    Every row in a range must have been added since `pause` (the bulk intake names its ids
    from the table's maximum under the write lock, so its ranges hold only its own rows).
    """
    conn.exec_driver_sql("DELETE FROM search_bulk")
    if tickets is not None:
        conn.exec_driver_sql(_TICKETS, tickets)
    if messages is not None:
        conn.exec_driver_sql(_MESSAGES, messages)
