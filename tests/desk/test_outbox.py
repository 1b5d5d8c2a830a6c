"""Recording a sent mail: SQLite's DB-API fast path stores what the Store.write path stores."""

from __future__ import annotations

import sqlite3
import time
from types import SimpleNamespace
from typing import Any

import pytest

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk import outbox
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import BUSY_TIMEOUT_MS, Store


def _queued(desk: Desk, n: int) -> None:
    ticket = desk.register(customer_email="carla@customer.example", subject="Help", body="hi")
    for i in range(n):
        desk.reply(ticket.number, f"reply {i}")


def _claimed(desk: Desk, store: Store, clock: FixedClock, n: int) -> list[int]:
    _queued(desk, n)
    return [item.id for item in outbox.claim(store, clock, "host:1")]


def _row(store: Store, item_id: int) -> tuple[object, ...]:
    with store.read() as s:
        o = s.get(M.Outbox, item_id)
        assert o is not None
        return (o.state, o.sent_at, o.next_attempt_at, o.claimed_by, o.last_error)


@pytest.mark.sqlite_only
def test_fast_path_and_store_write_record_the_same_row(
    desk: Desk, store: Store, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = _claimed(desk, store, clock, 2)
    clock.advance(minutes=3)
    fast_path = outbox.SentRecorder._commit_sqlite
    took: list[bool] = []

    def spy(*args: Any) -> bool:
        took.append(fast_path(*args))
        return took[-1]

    monkeypatch.setattr(outbox.SentRecorder, "_commit_sqlite", spy)
    outbox.record_sent(store, clock, fast)
    assert took == [True]  # committed by the fast path, no fallback
    monkeypatch.setattr(outbox.SentRecorder, "_commit_sqlite", lambda *_: False)  # still busy
    outbox.record_sent(store, clock, slow)
    assert _row(store, fast) == _row(store, slow) == ("sent", clock.now(), None, "", "")


def test_a_success_is_recorded_once_and_only_over_a_claim(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    (item,) = _claimed(desk, store, clock, 1)
    outbox.record_sent(store, clock, item)
    sent_at = _row(store, item)[1]
    clock.advance(minutes=1)
    outbox.record_sent(store, clock, item)  # a repeat changes nothing
    assert _row(store, item) == ("sent", sent_at, None, "", "")
    _queued(desk, 1)
    cancelled = outbox.cancel(store, desk.outbox(states=["queued"])[0].id)
    outbox.record_sent(store, clock, cancelled.id)  # never claimed: not a success to record
    assert _row(store, cancelled.id)[0] == "cancelled"


@pytest.mark.sqlite_only
def test_a_failing_connection_falls_back_and_the_next_success_takes_a_fresh_one(
    desk: Desk, store: Store, clock: FixedClock
) -> None:
    first, second, third = _claimed(desk, store, clock, 3)
    with outbox.SentRecorder(store, clock) as record_sent:
        record_sent(first)
        held = record_sent._conn
        assert held is not None
        dbapi = held.dbapi_connection
        assert dbapi is not None
        dbapi.close()  # the fast path's connection breaks
        record_sent(second)  # recorded all the same, through Store.write
        assert record_sent._conn is None
        record_sent(third)
        assert record_sent._conn is not None
    assert record_sent._conn is None  # back in the pool
    assert [_row(store, i)[0] for i in (first, second, third)] == ["sent"] * 3


@pytest.mark.sqlite_only
def test_the_fast_path_waits_its_turn_while_another_connection_writes(
    desk: Desk, store: Store, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    (item,) = _claimed(desk, store, clock, 1)
    other = sqlite3.connect(store.url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # an agent's unit of work holds the write lock
    waits: list[float] = []

    def finish_other(seconds: float) -> None:
        waits.append(seconds)
        other.execute("COMMIT")

    fake_time = SimpleNamespace(monotonic=time.monotonic, sleep=finish_other)
    monkeypatch.setattr(outbox, "time", fake_time)
    with outbox.SentRecorder(store, clock) as record_sent:
        assert record_sent._commit_sqlite(item, clock.now())  # waited, no fallback
        held = record_sent._conn
        assert held is not None and held.dbapi_connection is not None
        dbapi = held.dbapi_connection
    other.close()
    assert waits == [outbox._LOCK_POLL_S]
    assert _row(store, item)[0] == "sent"
    # The connection went back to the pool with the store's busy timeout.
    assert dbapi.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
