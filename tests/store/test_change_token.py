"""Store.change_token: the live view's cheap "did anyone commit?" check, on both backends."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store, open_store


def _add_meta(key: str) -> Callable[[Session], None]:
    def fn(s: Session) -> None:
        s.add(M.Meta(key=key, value="x"))

    return fn


def test_a_commit_elsewhere_moves_the_token(db_url: str) -> None:
    watcher, writer = open_store(db_url), open_store(db_url)
    try:
        first = watcher.change_token()
        assert first is not None
        assert watcher.change_token() == first  # nothing happened
        writer.write(_add_meta("a"))
        second = watcher.change_token()
        assert second != first
        assert watcher.change_token() == second
    finally:
        watcher.dispose()
        writer.dispose()


def test_reads_and_empty_writes_leave_it_alone(db_url: str) -> None:
    watcher, other = open_store(db_url), open_store(db_url)
    try:
        first = watcher.change_token()
        with other.read() as s:
            s.exec(sa.select(M.Meta))  # type: ignore[call-overload]
        other.write(lambda s: s.get(M.Meta, "missing"))
        assert watcher.change_token() == first
    finally:
        watcher.dispose()
        other.dispose()


def test_a_rolled_back_write_leaves_it_alone(db_url: str) -> None:
    watcher, other = open_store(db_url), open_store(db_url)
    try:
        first = watcher.change_token()

        def fail(s: Session) -> None:
            s.add(M.Meta(key="b", value="x"))
            s.flush()
            raise RuntimeError("changed my mind")

        with pytest.raises(RuntimeError):
            other.write(fail)
        assert watcher.change_token() == first
    finally:
        watcher.dispose()
        other.dispose()


def test_in_memory_sqlite_cannot_tell() -> None:
    store = Store("sqlite:///:memory:")
    assert store.change_token() is None
    store.dispose()
