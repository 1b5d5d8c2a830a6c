"""The first page of the start-up view, read with the stdlib sqlite3 module before SQLAlchemy loads.

The app's first frame needs only the rows on screen, but the desk (SQLAlchemy, SQLModel, the
migrations check) costs 0.5-0.9 s to import and open. This module reads those rows with plain
SQL that mirrors TicketViews ("mine", ordered by deadline; tests/desk/test_first_page.py keeps the
two equal), so the list is painted with the first frame; the desk replaces them once it is open.
Anything unusual (no file, not SQLite, an unknown schema, a locked file) gives None, and the app
simply waits for the desk as before.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from helpdesk_tui import paths
from helpdesk_tui.desk.summary import TicketSummary

VIEWS = ("mine",)
"""The views read here: the one the app starts on."""

_ROW_SQL = """
SELECT t.id, t.title, st.name, st.base, pr.name, pr.rank, ag.login,
    (SELECT coalesce(nullif(c.name, ''), (
            SELECT a.address FROM customeraddress a WHERE a.customer_id = c.id
            ORDER BY a.id LIMIT 1))
        FROM customer c JOIN ticketcustomer tc ON tc.customer_id = c.id
        WHERE tc.ticket_id = t.id ORDER BY c.id LIMIT 1),
    cat.name, t.created_at, t.updated_at, t.deadline_at, t.read_status, t.alert_level,
    t.message_count, t.needs_review,
    (SELECT group_concat(tt.tag, ' ') FROM tickettag tt WHERE tt.ticket_id = t.id),
    t.version, t.activate_at
FROM ticket t
JOIN status st ON st.id = t.status_id
LEFT JOIN priority pr ON pr.id = t.priority_id
LEFT JOIN agent ag ON ag.id = t.owner_id
LEFT JOIN category cat ON cat.id = t.category_id
WHERE t.id IN ({marks})
"""


@dataclass(frozen=True)
class FirstPage:
    """A view's size and its first rows, in the view's order."""

    view: str
    total: int
    rows: tuple[TicketSummary, ...]


def acting_login() -> str:
    """The agent the desk will act as (desk/session.py's rule, without importing SQLModel)."""
    login = os.environ.get("HELPDESK_AGENT")
    if login:
        return login
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        import getpass

        return getpass.getuser()


def store_file(db: str | None) -> Path | None:
    """The SQLite file the desk will open (open_desk's rule), or None for other databases."""
    url = paths.db_url(db) if db else paths.default_db_url()
    return paths.sqlite_file(url)


def _when(value: str | None) -> datetime | None:
    # UTCDateTime stores naive UTC text ("2026-08-25 11:07:00.000000").
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


def first_page(db: Path, login: str, view: str = "mine", limit: int = 100) -> FirstPage | None:
    """The view's size and first `limit` rows, or None when this fast path cannot answer."""
    if view not in VIEWS or not db.is_file():
        return None
    try:
        # Read-only and short-tempered: this runs before the first frame, on the event loop.
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=0.1)
    except sqlite3.Error:
        return None
    try:
        return _read(conn, login, view, limit)
    except (sqlite3.Error, ValueError, TypeError):
        return None
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, login: str, view: str, limit: int) -> FirstPage:
    found = conn.execute("SELECT id FROM agent WHERE login = ?", (login,)).fetchone()
    active = [int(r[0]) for r in conn.execute("SELECT id FROM status WHERE base = 'active'")]
    if found is None or not active:
        return FirstPage(view, 0, ())
    me = int(found[0])
    marks = ",".join("?" * len(active))
    where = f"owner_id = ? AND status_id IN ({marks})"  # placeholders only, never values
    args = (me, *active)
    count_sql = f"SELECT count(*) FROM ticket WHERE {where}"  # noqa: S608 - placeholders only
    total = int(conn.execute(count_sql, args).fetchone()[0])
    # Valued deadlines first in order, then the rest by number: TicketViews._keys_after.
    ids = [
        int(r[0])
        for r in conn.execute(
            f"SELECT id FROM ticket WHERE {where} AND deadline_at IS NOT NULL "  # noqa: S608
            "ORDER BY deadline_at, id LIMIT ?",
            (*args, limit),
        )
    ]
    if len(ids) < limit:
        ids += [
            int(r[0])
            for r in conn.execute(
                f"SELECT id FROM ticket WHERE {where} AND deadline_at IS NULL "  # noqa: S608
                "ORDER BY id LIMIT ?",
                (*args, limit - len(ids)),
            )
        ]
    if not ids:
        return FirstPage(view, total, ())
    sql = _ROW_SQL.format(marks=",".join("?" * len(ids)))
    by_id: dict[int, TicketSummary] = {}
    for row in conn.execute(sql, ids):
        (tid, title, sname, base, pname, prank, owner, cust, cname) = row[:9]
        (created, updated, deadline, read, level, count, review, tag_text, version) = row[9:18]
        created_at, updated_at = _when(created), _when(updated)
        if created_at is None or updated_at is None:
            raise ValueError("a ticket without its times")
        by_id[int(tid)] = TicketSummary(
            number=int(tid),
            title=title,
            status=sname,
            base_status=base,
            priority=pname,
            priority_rank=int(prank or 0),
            owner=owner,
            customer=cust or "",
            category=cname,
            created_at=created_at,
            updated_at=updated_at,
            deadline_at=_when(deadline),
            read_status=read,
            alert_level=int(level),
            message_count=int(count),
            needs_review=bool(review),
            tags=tuple(sorted((tag_text or "").split())),
            version=int(version),
            activate_at=_when(row[18]),
        )
    return FirstPage(view, total, tuple(by_id[i] for i in ids if i in by_id))
