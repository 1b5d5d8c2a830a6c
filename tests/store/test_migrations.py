"""Migrations are the only way tables are made, and they match the models."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from helpdesk_tui.store import models  # noqa: F401 - registers the tables
from helpdesk_tui.store.engine import Store, alembic_config, open_store


def _not_search(name: str | None, type_: str, parent_names: object) -> bool:
    """The search tables (revision 0003: FTS5, or search_row on PostgreSQL) are not models."""
    return not (type_ == "table" and (name or "").startswith("search_"))


def _diff(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _not_search}
        )
        return list(compare_metadata(ctx, SQLModel.metadata))


def test_migrated_schema_matches_models(new_db_url: Callable[..., str]) -> None:
    store = open_store(new_db_url("db", migrated=False))
    assert _diff(store) == []
    store.dispose()


def test_first_revision_upgrades_to_head(new_db_url: Callable[..., str]) -> None:
    store = Store(new_db_url("db", migrated=False))
    script = ScriptDirectory.from_config(alembic_config(store))
    revisions = list(script.walk_revisions())
    first = revisions[-1].revision
    store.migrate(first)
    assert store.current_revision() == first
    store.migrate("head")
    assert store.current_revision() == script.get_current_head()
    assert _diff(store) == []
    if store.is_sqlite:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    store.dispose()


def test_downgrade_to_the_first_revision_and_back(new_db_url: Callable[..., str]) -> None:
    """Every revision's downgrade runs (search triggers and functions included), then head again."""
    store = open_store(new_db_url("db", migrated=False))
    script = ScriptDirectory.from_config(alembic_config(store))
    first = list(script.walk_revisions())[-1].revision
    from alembic import command

    command.downgrade(alembic_config(store), first)
    assert store.current_revision() == first
    store.migrate("head")
    assert _diff(store) == []
    store.dispose()


@pytest.mark.sqlite_only("checks SQLite pragmas")
def test_pragmas(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    store.dispose()


@pytest.mark.sqlite_only(
    "BEGIN IMMEDIATE is SQLite's; test_write_isolation_on_postgresql covers PG"
)
def test_writes_begin_immediate(db_url: str) -> None:
    """A write takes the write lock at BEGIN, so a second writer waits instead of failing."""
    store = open_store(db_url)
    seen: list[str] = []

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def spy(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    store.write(lambda s: s.exec(sa.select(sa.literal(1))))  # type: ignore[call-overload]
    with store.read() as s:
        s.exec(sa.select(sa.literal(1)))  # type: ignore[call-overload]
    assert "BEGIN IMMEDIATE" in seen
    assert seen.count("BEGIN") == 1
    store.dispose()


def test_schema_head_constant_matches_the_scripts(db_url: str) -> None:
    """open_store skips Alembic when the stored revision equals SCHEMA_HEAD; keep them in step."""
    from helpdesk_tui.store.engine import SCHEMA_HEAD

    store = Store(db_url)
    assert ScriptDirectory.from_config(alembic_config(store)).get_current_head() == SCHEMA_HEAD
    store.dispose()


@pytest.mark.postgresql_only("SQLite's counterpart is test_writes_begin_immediate")
def test_write_isolation_on_postgresql(db_url: str) -> None:
    """On PostgreSQL writes and reads each see one snapshot (REPEATABLE READ); writes rerun
    on a serialization failure."""
    store = open_store(db_url)
    level = "SELECT current_setting('transaction_isolation')"
    assert (
        store.write(lambda s: s.connection().exec_driver_sql(level).scalar()) == "repeatable read"
    )
    with store.read() as s:
        assert s.connection().exec_driver_sql(level).scalar() == "repeatable read"
    store.dispose()
