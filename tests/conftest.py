"""Shared fixtures: an isolated environment, a real SQLite store, a fixed clock and a desk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config, default_config
from helpdesk_tui.desk.service import Desk, DeskOptions
from helpdesk_tui.desk.setup import apply_config
from helpdesk_tui.store.engine import Store, open_store

pytest_plugins = ["tests.imap_server", "tests.pg_server"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT_ROOT.parent / "shared" / "corpus"
# Monday 23 November 2026, 10:00 UTC: inside working hours, so deadlines start at once.
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests never read or write the user's real config and data folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(home / "data"))
    # Never the real /etc/helpdesk-tui/config.toml: a system config only where a test writes one.
    monkeypatch.setenv("HELPDESK_SYSTEM_CONFIG", str(home / "etc" / "config.toml"))
    for name in ("HELPDESK_DB", "HELPDESK_CONFIG", "HELPDESK_AGENT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def db_url(new_db_url: Callable[..., str]) -> str:
    """The test's database: SQLite, or PostgreSQL too where tests/pg_server.py says both run."""
    return new_db_url("helpdesk")


@pytest.fixture
def config() -> Config:
    return default_config()


@pytest.fixture
def store(db_url: str, config: Config) -> Iterator[Store]:
    s = open_store(db_url)
    apply_config(s, config)
    yield s
    s.dispose()


def make_desk(store: Store, clock: FixedClock, actor: str | None) -> Desk:
    return Desk(store, clock, actor, os_user="tester", options=DeskOptions(domain="desk.example"))


@pytest.fixture
def desk(store: Store, clock: FixedClock) -> Desk:
    """alice's desk, with colleagues bob and lead."""
    boot = make_desk(store, clock, "alice")
    boot.add_agent("alice", "Alice Able", "alice@desk.example", "Alice, Support")
    boot.add_agent("bob", "Bob Baker", "bob@desk.example")
    boot.add_agent("lead", "Lena Lead", "lead@desk.example")
    return boot
