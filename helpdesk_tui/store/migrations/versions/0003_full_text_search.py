"""full-text search: an FTS5 index over tickets and messages, kept in step by triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00

One contentless FTS5 table, `search_fts`, holds a row per message and a row per ticket (its
subject and its customers' names and addresses). Its rowid is (ticket number << 32) | message id
(0 for the ticket's own row), so FTS5 hands matches back ticket by ticket, newest ticket first,
and a search with LIMIT stops early instead of ranking every match (bm25 over a word in every
message costs about 900 ms at 500,000 messages).

Triggers, not the desk, keep the index in step: intake writes messages both through the ORM and
with Core bulk inserts, and a trigger sees both. A contentless table must be told the exact
values it indexed to delete a row; messages still have them (old.*), and the ticket rows keep
theirs in `search_doc`, whose own triggers feed the index (the external-content pattern of the
FTS5 documentation). PostgreSQL gets its own full-text search in a later revision.
"""

# ruff: noqa: S608 - the SQL below is assembled from constants of this file, never outside text

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

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
    """Refresh the ticket rows of the tickets `where` selects (a WHERE clause over ticket t)."""
    return f"""
        INSERT INTO search_doc (ticket_id, subject, people)
        SELECT t.id, t.title, {_PEOPLE} FROM ticket t WHERE {where}
        ON CONFLICT (ticket_id) DO UPDATE SET subject = excluded.subject, people = excluded.people
        WHERE search_doc.subject IS NOT excluded.subject
           OR search_doc.people IS NOT excluded.people;
    """


_MSG_ROW = (
    "(({p}.ticket_id << 32) | {p}.id), {p}.subject, {p}.body_text, "
    "{p}.from_name || ' ' || {p}.from_addr, "
    "coalesce({p}.to_addrs, '') || ' ' || coalesce({p}.cc_addrs, ''), ''"
)
_COLS = "rowid, subject, body, sender, recipients, people"


def _msg_insert(p: str) -> str:
    return f"INSERT INTO search_fts ({_COLS}) VALUES ({_MSG_ROW.format(p=p)});"


def _msg_delete(p: str) -> str:
    return (
        f"INSERT INTO search_fts (search_fts, {_COLS}) VALUES ('delete', {_MSG_ROW.format(p=p)});"
    )


def _doc_row(p: str) -> str:
    return f"({p}.ticket_id << 32), {p}.subject, '', '', '', {p}.people"


_OF_CUSTOMER = "t.id IN (SELECT ticket_id FROM ticketcustomer WHERE customer_id = {}.{})"

_TRIGGERS: dict[str, str] = {
    # the ticket rows, fed from search_doc
    "search_doc_ai": f"""AFTER INSERT ON search_doc BEGIN
        INSERT INTO search_fts ({_COLS}) VALUES ({_doc_row("new")});
    END""",
    "search_doc_au": f"""AFTER UPDATE ON search_doc BEGIN
        INSERT INTO search_fts (search_fts, {_COLS}) VALUES ('delete', {_doc_row("old")});
        INSERT INTO search_fts ({_COLS}) VALUES ({_doc_row("new")});
    END""",
    "search_doc_ad": f"""AFTER DELETE ON search_doc BEGIN
        INSERT INTO search_fts (search_fts, {_COLS}) VALUES ('delete', {_doc_row("old")});
    END""",
    # what the ticket rows are made of
    "search_ticket_ai": f"AFTER INSERT ON ticket BEGIN {_upsert_docs('t.id = new.id')} END",
    "search_ticket_au": (
        f"AFTER UPDATE OF title ON ticket BEGIN {_upsert_docs('t.id = new.id')} END"
    ),
    "search_ticket_ad": """AFTER DELETE ON ticket BEGIN
        DELETE FROM search_doc WHERE ticket_id = old.id;
    END""",
    "search_tc_ai": f"AFTER INSERT ON ticketcustomer BEGIN {_upsert_docs('t.id = new.ticket_id')} END",
    "search_tc_ad": f"AFTER DELETE ON ticketcustomer BEGIN {_upsert_docs('t.id = old.ticket_id')} END",
    "search_tc_au": f"""AFTER UPDATE ON ticketcustomer BEGIN
        {_upsert_docs("t.id = old.ticket_id")}
        {_upsert_docs("t.id = new.ticket_id")}
    END""",
    "search_customer_au": f"""AFTER UPDATE OF name ON customer BEGIN
        {_upsert_docs(_OF_CUSTOMER.format("new", "id"))}
    END""",
    "search_address_ai": f"""AFTER INSERT ON customeraddress BEGIN
        {_upsert_docs(_OF_CUSTOMER.format("new", "customer_id"))}
    END""",
    "search_address_ad": f"""AFTER DELETE ON customeraddress BEGIN
        {_upsert_docs(_OF_CUSTOMER.format("old", "customer_id"))}
    END""",
    "search_address_au": f"""AFTER UPDATE ON customeraddress BEGIN
        {_upsert_docs(_OF_CUSTOMER.format("old", "customer_id"))}
        {_upsert_docs(_OF_CUSTOMER.format("new", "customer_id"))}
    END""",
    # the message rows
    "search_message_ai": f"AFTER INSERT ON message BEGIN {_msg_insert('new')} END",
    "search_message_ad": f"AFTER DELETE ON message BEGIN {_msg_delete('old')} END",
    "search_message_au": f"""AFTER UPDATE OF ticket_id, subject, body_text, from_name, from_addr,
        to_addrs, cc_addrs ON message BEGIN
        {_msg_delete("old")}
        {_msg_insert("new")}
    END""",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Diacritics folded so "cafe" finds "café"; rows are never ranked, so no column sizes.
    op.execute(
        "CREATE VIRTUAL TABLE search_fts USING fts5("
        "subject, body, sender, recipients, people, content='', columnsize=0, "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    # The index's words with their counts, for inspecting it (tests compare intake paths by it).
    op.execute("CREATE VIRTUAL TABLE search_vocab USING fts5vocab(search_fts, 'row')")
    op.execute(
        "CREATE TABLE search_doc ("
        "ticket_id INTEGER PRIMARY KEY, subject TEXT NOT NULL, people TEXT NOT NULL)"
    )
    for name in ("search_doc_ai", "search_doc_au", "search_doc_ad"):
        op.execute(f"CREATE TRIGGER {name} {_TRIGGERS[name]}")
    # Index what is already there, then keep it in step.
    op.execute(_upsert_docs("1"))
    op.execute(f"INSERT INTO search_fts ({_COLS}) SELECT {_MSG_ROW.format(p='m')} FROM message m")
    for name, body in _TRIGGERS.items():
        if not name.startswith("search_doc_"):
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS search_doc")
    op.execute("DROP TABLE IF EXISTS search_vocab")
    op.execute("DROP TABLE IF EXISTS search_fts")
