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
FTS5 documentation).

PostgreSQL gets its own full-text search (see _upgrade_postgresql): a table `search_row` with a
tsvector per message and per ticket, kept by triggers, under a GIN index.
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
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
        return
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
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
        return
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS search_doc")
    op.execute("DROP TABLE IF EXISTS search_vocab")
    op.execute("DROP TABLE IF EXISTS search_fts")


# ---------------------------------------------------------------------------- PostgreSQL
#
# Why a table of stored tsvectors kept by triggers, rather than GIN indexes over to_tsvector()
# expressions on message: a ticket's own row (its subject and its customers' names and
# addresses) spans four tables, which no expression index can follow, so triggers are needed
# anyway, exactly as on SQLite; a stored tsvector is parsed once at write time, so the
# per-ticket probes and the rechecks of phrase and column-restricted matches never parse a
# message body again; and one row per message or ticket, keyed (ticket_id, message_id), gives
# both backends the same meaning: a ticket matches when each word matches one of its rows.
#
# The columns a query may restrict to are tsvector weights: A subject, B sender and people
# (from:), C recipients (to:), D body. The text configuration `helpdesk_search` copies `simple`
# (no stemming and no stop words, as FTS5's unicode61) and folds diacritics with unaccent when
# the extension can be created. ASCII punctuation becomes a space before parsing, so addresses
# split into words as unicode61 splits them ("carla@example.com" is carla, example, com) instead
# of PostgreSQL's single email token. Bodies are cut at 500,000 characters: a tsvector holds at
# most 1 MB, and an intake that fails on one huge mail is worse than a body searched in part.

PG_CONFIG = "helpdesk_search"
_PG_PUNCT = "'[!-/:-@\\[-`{-~]+'"  # every printable ASCII character but letters and digits


def _pg_vec(text: str, weight: str) -> str:
    return (
        f"setweight(to_tsvector('{PG_CONFIG}', "
        f"regexp_replace({text}, {_PG_PUNCT}, ' ', 'g')), '{weight}')"
    )


def _pg_message_doc(p: str) -> str:
    return " || ".join(
        (
            _pg_vec(f"coalesce({p}.subject, '')", "A"),
            _pg_vec(f"coalesce({p}.from_name, '') || ' ' || coalesce({p}.from_addr, '')", "B"),
            _pg_vec(
                f"coalesce({p}.to_addrs::text, '') || ' ' || coalesce({p}.cc_addrs::text, '')", "C"
            ),
            _pg_vec(f"left(coalesce({p}.body_text, ''), 500000)", "D"),
        )
    )


_PG_PEOPLE = """coalesce((
    SELECT string_agg(c.name || ' ' || coalesce((
        SELECT string_agg(a.address, ' ' ORDER BY a.id) FROM customeraddress a
        WHERE a.customer_id = c.id
    ), ''), ' ' ORDER BY c.id)
    FROM ticketcustomer tc JOIN customer c ON c.id = tc.customer_id
    WHERE tc.ticket_id = t.id
), '')"""

_PG_FUNCTIONS = f"""
CREATE FUNCTION search_refresh_tickets(ids integer[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO search_row (ticket_id, message_id, doc)
    SELECT t.id, 0, {_pg_vec("t.title", "A")} || {_pg_vec(_PG_PEOPLE, "B")}
    FROM ticket t WHERE t.id = ANY(ids)
    ON CONFLICT (ticket_id, message_id) DO UPDATE SET doc = excluded.doc
$$;

CREATE FUNCTION search_message_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM search_row WHERE ticket_id = OLD.ticket_id AND message_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO search_row (ticket_id, message_id, doc)
        VALUES (NEW.ticket_id, NEW.id, {_pg_message_doc("NEW")});
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION search_ticket_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM search_row WHERE ticket_id = OLD.id;
    ELSE
        PERFORM search_refresh_tickets(ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION search_ticketcustomer_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM search_refresh_tickets(ARRAY[OLD.ticket_id]);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM search_refresh_tickets(ARRAY[NEW.ticket_id]);
    END IF;
    RETURN NULL;
END $$;
"""


def _pg_customer_function(name: str, key: str) -> str:
    """A trigger function refreshing the tickets of the customer whose `key` column names."""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM search_refresh_tickets(ARRAY(
            SELECT ticket_id FROM ticketcustomer WHERE customer_id = OLD.{key}));
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM search_refresh_tickets(ARRAY(
            SELECT ticket_id FROM ticketcustomer WHERE customer_id = NEW.{key}));
    END IF;
    RETURN NULL;
END $$;
"""


_PG_TRIGGERS = {
    "search_message": "AFTER INSERT OR DELETE OR UPDATE OF ticket_id, subject, body_text, "
    "from_name, from_addr, to_addrs, cc_addrs ON message FOR EACH ROW "
    "EXECUTE FUNCTION search_message_trg()",
    "search_ticket": "AFTER INSERT OR DELETE OR UPDATE OF title ON ticket FOR EACH ROW "
    "EXECUTE FUNCTION search_ticket_trg()",
    "search_ticketcustomer": "AFTER INSERT OR DELETE OR UPDATE ON ticketcustomer FOR EACH ROW "
    "EXECUTE FUNCTION search_ticketcustomer_trg()",
    "search_customer": "AFTER UPDATE OF name ON customer FOR EACH ROW "
    "EXECUTE FUNCTION search_customer_name_trg()",
    "search_customeraddress": "AFTER INSERT OR DELETE OR UPDATE ON customeraddress "
    "FOR EACH ROW EXECUTE FUNCTION search_customeraddress_trg()",
}


def _upgrade_postgresql() -> None:
    bind = op.get_bind()
    # unaccent is a trusted extension (PostgreSQL 13+): a database owner may create it. Where it
    # cannot be had, search still works, only without folding diacritics.
    try:
        with bind.begin_nested():
            op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        unaccent = "unaccent, "
    except Exception:  # noqa: BLE001 - any refusal means: go on without it
        unaccent = ""
    op.execute(f"CREATE TEXT SEARCH CONFIGURATION {PG_CONFIG} (COPY = simple)")
    op.execute(
        f"ALTER TEXT SEARCH CONFIGURATION {PG_CONFIG} ALTER MAPPING FOR word, hword, hword_part, "
        f"asciiword, asciihword, hword_asciipart WITH {unaccent}simple"
    )
    op.execute(
        "CREATE TABLE search_row ("
        "ticket_id INTEGER NOT NULL, message_id INTEGER NOT NULL, doc TSVECTOR NOT NULL, "
        "PRIMARY KEY (ticket_id, message_id))"
    )
    op.execute("CREATE INDEX search_row_doc ON search_row USING gin (doc)")
    op.execute(_PG_FUNCTIONS)
    op.execute(_pg_customer_function("search_customer_name_trg", "id"))
    op.execute(_pg_customer_function("search_customeraddress_trg", "customer_id"))
    # Index what is already there, then keep it in step.
    op.execute("SELECT search_refresh_tickets(ARRAY(SELECT id FROM ticket))")
    op.execute(
        "INSERT INTO search_row (ticket_id, message_id, doc) "
        f"SELECT m.ticket_id, m.id, {_pg_message_doc('m')} FROM message m"
    )
    for name, body in _PG_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def _downgrade_postgresql() -> None:
    for name, body in _PG_TRIGGERS.items():
        table = body.split(" ON ", 1)[1].split()[0]
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for function in (
        "search_message_trg()",
        "search_ticket_trg()",
        "search_ticketcustomer_trg()",
        "search_customer_name_trg()",
        "search_customeraddress_trg()",
        "search_refresh_tickets(integer[])",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.execute("DROP TABLE IF EXISTS search_row")
    op.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {PG_CONFIG}")
