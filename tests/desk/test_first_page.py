"""The start-up fast path reads the same first page as TicketViews, without SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.desk.first_page import first_page, store_file
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.views import TicketViews
from helpdesk_tui.paths import sqlite_file
from helpdesk_tui.store.engine import Store
from tests.conftest import PROJECT_ROOT
from tests.tui.conftest import seed


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the fast path reads SQLite files and nothing else."""
    return f"sqlite:///{tmp_path / 'helpdesk.sqlite3'}"


def _file(store: Store) -> Path:
    path = sqlite_file(store.url)
    assert path is not None
    return path


@pytest.mark.parametrize("login", ["alice", "bob"])
def test_same_rows_as_the_views(desk: Desk, clock: FixedClock, store: Store, login: str) -> None:
    seed(desk, clock, store)
    desk.tag(1, "vip")
    views = TicketViews(store, login, clock=clock)
    found = first_page(_file(store), login, "mine", limit=100)
    assert found is not None
    assert found.total == views.count("mine")
    assert list(found.rows) == [r.ticket for r in views.page("mine", None, 100)]
    assert found.rows or login == "bob"


def test_a_short_page_and_the_count(desk: Desk, clock: FixedClock, store: Store) -> None:
    seed(desk, clock, store)
    views = TicketViews(store, "alice", clock=clock)
    found = first_page(_file(store), "alice", "mine", limit=2)
    assert found is not None
    assert found.total == views.count("mine") > 2
    assert list(found.rows) == [r.ticket for r in views.page("mine", None, 2)]


def test_no_answer_rather_than_a_wrong_one(desk: Desk, store: Store, tmp_path: Path) -> None:
    path = _file(store)
    nobody = first_page(path, "nobody", "mine")
    assert nobody is not None and nobody.total == 0 and nobody.rows == ()
    assert first_page(path, "alice", "all") is None  # only the start-up view
    assert first_page(tmp_path / "missing.sqlite3", "alice") is None
    assert not (tmp_path / "missing.sqlite3").exists()  # read-only: nothing is created
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    assert first_page(junk, "alice") is None


def test_store_file_follows_the_desk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store_file(str(tmp_path / "a.sqlite3")) == tmp_path / "a.sqlite3"
    assert store_file("postgresql://x@localhost/db") is None
    monkeypatch.setenv("HELPDESK_DB", str(tmp_path / "env.sqlite3"))
    assert store_file(None) == tmp_path / "env.sqlite3"


def test_imports_nothing_heavy() -> None:
    code = (
        "import sys, helpdesk_tui.desk.first_page; "
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'textual') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
