"""Demo data: every status and message kind, consistent rows, the same data for the same seed."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk.demo import DemoSummary, fill_demo, store_is_empty
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.worktime import WorkCalendar
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store, open_store
from tests.pg_server import BACKENDS, PostgresServer

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BASES = ("active", "closed", "postponed", "deleted", "merged")
KINDS = ("customer", "reply", "note", "ask", "forward", "external", "phone")


def _open(url: str) -> Store:
    return open_store(url)


@pytest.fixture(scope="module", params=BACKENDS)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, DemoSummary]]:
    """One demo store a backend, shared by the read-only checks (filling it is the slow part)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.sqlite3'}"
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url = postgres.create_database("demo_filled", request.getfixturevalue("pg_template"))
    store = _open(url)
    summary = fill_demo(store, tickets=600, seed=1, clock=FixedClock(NOW))
    store.dispose()
    yield url, summary
    if request.param != "sqlite":
        postgres.drop_database("demo_filled")


def _sql(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def _foreign_keys_hold(url: str) -> bool:
    """SQLite checks foreign keys only when asked; PostgreSQL refuses a breach as it writes."""
    return not url.startswith("sqlite") or _sql(url, "PRAGMA foreign_key_check") == []


def test_summary_counts_match_the_store(filled: tuple[str, DemoSummary]) -> None:
    path, summary = filled
    assert summary.tickets == 600 == _sql(path, "SELECT count(*) FROM ticket")[0][0]
    assert summary.messages == _sql(path, "SELECT count(*) FROM message")[0][0]
    assert summary.messages > 4 * summary.tickets
    assert summary.agents == 8
    assert sum(summary.by_status.values()) == 600
    logins = {row[0] for row in _sql(path, "SELECT login FROM agent")}
    assert {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"} <= logins


def test_every_base_status_and_role_is_present(filled: tuple[str, DemoSummary]) -> None:
    path, summary = filled
    bases = {
        row[0]
        for row in _sql(
            path, "SELECT DISTINCT s.base FROM ticket t JOIN status s ON s.id = t.status_id"
        )
    }
    assert bases == set(BASES)
    for name in ("open", "internal", "external", "postponed", "closed", "deleted", "merged"):
        assert summary.by_status.get(name, 0) > 0, name


def test_database_is_consistent(filled: tuple[str, DemoSummary]) -> None:
    path, _ = filled
    if path.startswith("sqlite"):
        assert _sql(path, "PRAGMA integrity_check") == [("ok",)]
    assert _foreign_keys_hold(path)


def test_message_count_and_reply_count_match_the_thread(filled: tuple[str, DemoSummary]) -> None:
    path, _ = filled
    wrong = _sql(
        path,
        "SELECT t.id FROM ticket t WHERE t.message_count != "
        "(SELECT count(*) FROM message m WHERE m.ticket_id = t.id) "
        "OR t.reply_count != (SELECT count(*) FROM message m WHERE m.ticket_id = t.id "
        "AND m.kind = 'reply') "
        "OR (t.reply_count > 0) != (t.replied_at IS NOT NULL)",
    )
    assert wrong == []


def test_threads_hold_every_message_kind(filled: tuple[str, DemoSummary]) -> None:
    path, _ = filled
    rows = _sql(path, "SELECT kind, direction, visibility, count(*) FROM message GROUP BY 1, 2, 3")
    shape = {(kind, direction, visibility) for kind, direction, visibility, _ in rows}
    for kind in KINDS:
        assert any(k == kind for k, _, _ in shape), kind
    assert ("customer", "in", "external") in shape
    assert ("reply", "out", "external") in shape
    assert ("note", "out", "internal") in shape
    assert ("ask", "out", "internal") in shape
    assert ("forward", "out", "internal") in shape
    assert ("external", "in", "internal") in shape
    # Customer mail carries headers and Message-IDs; follow-ups point at what they answer.
    assert _sql(
        path, "SELECT count(*) FROM message WHERE kind='customer' AND rfc_message_id=''"
    ) == [(0,)]
    assert (
        _sql(path, "SELECT count(*) FROM message WHERE kind='customer' AND in_reply_to != ''")[0][0]
        > 0
    )
    assert _sql(path, "SELECT count(*) FROM message WHERE body_text LIKE '%wrote:%> %'")[0][0] > 0
    assert (
        _sql(path, "SELECT count(*) FROM message WHERE needs_review AND review_error != ''")[0][0]
        > 0
    )


def test_desk_features_are_all_represented(filled: tuple[str, DemoSummary]) -> None:
    path, _ = filled
    now = NOW.replace(tzinfo=None).isoformat(sep=" ")
    checks = {
        "asker follows": "SELECT count(*) FROM follower",
        "forward parties": "SELECT count(*) FROM externalparty",
        "tags": "SELECT count(*) FROM tickettag",
        "escalated": "SELECT count(*) FROM ticket WHERE alert_level > 0",
        "alerts": "SELECT count(*) FROM alert WHERE kind = 'escalation'",
        "overdue": "SELECT count(*) FROM ticket t JOIN status s ON s.id = t.status_id "
        f"WHERE s.base = 'active' AND t.deadline_at < '{now}'",
        "postponed later": "SELECT count(*) FROM ticket t JOIN status s ON s.id = t.status_id "
        f"WHERE s.base = 'postponed' AND t.activate_at > '{now}'",
        "postponed due": "SELECT count(*) FROM ticket t JOIN status s ON s.id = t.status_id "
        f"WHERE s.base = 'postponed' AND t.activate_at <= '{now}'",
        "merged into another": "SELECT count(*) FROM ticket t "
        "JOIN ticket u ON u.id = t.merged_into_id",
        "counters": "SELECT count(*) FROM ticket "
        "WHERE queue_seconds > 0 AND queue_work_seconds > 0",
        "internal time": "SELECT count(*) FROM ticket WHERE internal_seconds > 0",
        "external time": "SELECT count(*) FROM ticket WHERE external_seconds > 0",
        "templates": "SELECT count(*) FROM replytemplate",
        "nested category": "SELECT count(*) FROM category c JOIN category p ON p.id = c.parent_id",
        "companies": "SELECT count(*) FROM company",
        "second address": "SELECT count(*) FROM (SELECT customer_id FROM customeraddress "
        "GROUP BY customer_id HAVING count(*) > 1) AS several",
    }
    for what, query in checks.items():
        assert _sql(path, query)[0][0] > 0, what
    reads = {row[0] for row in _sql(path, "SELECT DISTINCT read_status FROM ticket")}
    assert reads == {"red", "yellow", "green"}
    actions = {row[0] for row in _sql(path, "SELECT DISTINCT action FROM ticketevent")}
    assert {
        "create",
        "reply",
        "note",
        "ask",
        "forward",
        "close",
        "postpone",
        "delete",
        "merge",
        "read",
        "take",
    } <= actions
    methods = {row[0] for row in _sql(path, "SELECT assign_method FROM category")}
    assert {"round_robin", "fewest_active"} <= methods
    languages = {row[0] for row in _sql(path, "SELECT language FROM replytemplate")}
    assert languages == {"en", "nb"}


def test_no_mail_is_waiting_to_go_out(filled: tuple[str, DemoSummary]) -> None:
    """The worker must never send demo mail."""
    path, _ = filled
    states = {row[0] for row in _sql(path, "SELECT DISTINCT state FROM outbox")}
    assert states <= {"sent", "failed"}
    assert "sent" in states


def test_addresses_are_reserved_example_domains(filled: tuple[str, DemoSummary]) -> None:
    path, _ = filled
    addresses = [row[0] for row in _sql(path, "SELECT address FROM customeraddress")]
    addresses += [row[0] for row in _sql(path, "SELECT email FROM agent")]
    addresses += [row[0] for row in _sql(path, "SELECT address FROM externalparty")]
    addresses += [row[0] for row in _sql(path, "SELECT DISTINCT from_addr FROM message")]
    for addr in addresses:
        domain = addr.rsplit("@", 1)[1]
        assert domain.endswith(("example.com", "example.org", "example.net")), addr


def test_text_is_printable_and_not_all_ascii(filled: tuple[str, DemoSummary]) -> None:
    path, _ = filled
    texts = [row[0] for row in _sql(path, "SELECT title FROM ticket")]
    texts += [row[0] for row in _sql(path, "SELECT body_text FROM message")]
    texts += [row[0] for row in _sql(path, "SELECT name FROM customer")]
    for text in texts:
        bad = [ch for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf")]
        assert not bad, repr(text)
    joined = "".join(texts)
    assert any(ch in joined for ch in "æøå")
    assert "ü" in joined
    assert any(ord(ch) > 0xFFFF for ch in joined)  # an emoji


def test_the_desk_reads_demo_tickets(filled: tuple[str, DemoSummary]) -> None:
    """The story tickets went through the Desk; bulk tickets read back through it too."""
    path, _ = filled
    store = _open(path)
    try:
        desk = Desk(store, FixedClock(NOW), "alice")
        phone = desk.show(1)
        assert phone.summary.base_status == "closed"
        assert [m.kind for m in phone.messages] == ["phone", "ask", "reply"]
        assert "alice" in phone.followers
        mail = desk.show(2)
        assert [m.kind for m in mail.messages] == ["customer", "forward", "external", "reply"]
        assert mail.external_parties == ("service@printcare.example.net",)
        assert mail.time_spent.external > 0
        merged = _sql(
            path, "SELECT id, merged_into_id FROM ticket WHERE merged_into_id IS NOT NULL"
        )
        source, into = merged[0]
        assert desk.resolve(source) == into
        listed = desk.list_tickets(limit=50)
        assert listed and all(s.base_status not in ("deleted", "merged") for s in listed)
    finally:
        store.dispose()


def test_working_time_matches_the_work_calendar(filled: tuple[str, DemoSummary]) -> None:
    """The demo's own fast table agrees with WorkCalendar on the counters it fills."""
    path, _ = filled
    store = _open(path)
    try:
        with store.read() as s:
            tickets = s.exec(
                select(M.Ticket).where(col(M.Ticket.close_seconds).is_not(None)).limit(40)
            ).all()
            for t in tickets:
                pr = s.get(M.Priority, t.priority_id)
                assert pr is not None and t.closed_at is not None
                cal = WorkCalendar.from_settings("UTC", pr.hours, pr.holidays)
                assert t.close_work_seconds == cal.working_seconds(t.created_at, t.closed_at)
    finally:
        store.dispose()


def test_same_seed_same_data_other_seed_other_data(new_db_url: Callable[..., str]) -> None:
    def titles(path: str, seed: int) -> list[tuple[Any, ...]]:
        store = _open(path)
        fill_demo(store, tickets=150, seed=seed, clock=FixedClock(NOW))
        store.dispose()
        return _sql(
            path, "SELECT id, title, status_id, owner_id, created_at FROM ticket ORDER BY id"
        )

    a, b, c = new_db_url("a"), new_db_url("b"), new_db_url("c")
    first = titles(a, 7)
    again = titles(b, 7)
    other = titles(c, 8)
    assert first == again
    assert first != other
    bodies = "SELECT ticket_id, kind, body_text FROM message ORDER BY id"
    assert _sql(a, bodies) == _sql(b, bodies)


def test_if_empty_and_a_second_run_adds_more(db_url: str, clock: FixedClock) -> None:
    path = db_url
    store = _open(path)
    try:
        assert store_is_empty(store)
        fill_demo(store, tickets=40, seed=1, clock=FixedClock(NOW))
        assert not store_is_empty(store)
        later = FixedClock(NOW + timedelta(days=1))
        summary = fill_demo(store, tickets=30, seed=2, clock=later)
        assert summary.tickets == 30
    finally:
        store.dispose()
    assert _sql(path, "SELECT count(*) FROM ticket") == [(70,)]
    assert _foreign_keys_hold(path)
    # Rows written after the demo get fresh ids (PostgreSQL's sequences were moved past it).
    store = _open(path)
    try:
        desk = Desk(store, clock, "alice")
        assert (
            desk.register(customer_email="new@example.com", subject="after the demo").number == 71
        )
    finally:
        store.dispose()


def test_progress_reaches_the_total(db_url: str) -> None:
    seen: list[tuple[int, int]] = []
    store = _open(db_url)
    try:
        fill_demo(
            store,
            tickets=25,
            seed=3,
            clock=FixedClock(NOW),
            progress=lambda d, t: seen.append((d, t)),
        )
    finally:
        store.dispose()
    assert seen[0] == (0, 25)
    assert seen[-1] == (25, 25)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_replying_to_all_on_a_demo_ticket_never_copies_the_desk(db_url: str) -> None:
    """The demo's mail went to its support address: the desk knows it as its own (a mailbox
    row), replies leave from it and reply-all does not copy it."""
    from helpdesk_tui.desk.demo import SUPPORT_ADDRESS

    store = _open(db_url)
    try:
        fill_demo(store, tickets=40, seed=3, clock=FixedClock(NOW))
        desk = Desk(store, FixedClock(NOW), "alice")
        found = _sql(
            db_url,
            "SELECT m.ticket_id FROM message m JOIN ticket t ON t.id = m.ticket_id "
            "JOIN status s ON s.id = t.status_id WHERE m.direction = 'in' "
            f"AND CAST(m.to_addrs AS TEXT) LIKE '%{SUPPORT_ADDRESS}%' "
            "AND s.base = 'active' LIMIT 1",
        )
        assert found, "the demo has an open ticket mailed to its support address"
        reply = desk.reply(found[0][0], "On it.", reply_all=True)
        assert SUPPORT_ADDRESS not in reply.cc
        assert reply.from_addr == SUPPORT_ADDRESS
    finally:
        store.dispose()
