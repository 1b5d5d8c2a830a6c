"""Migrations are the only way tables are made, and they match the models."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from helpdesk_tui.store import models  # noqa: F401 - registers the tables
from helpdesk_tui.store.engine import Store, alembic_config, open_store


def _not_search(name: str | None, type_: str, parent_names: object) -> bool:
    """The FTS5 search tables (revision 0003) are made by SQL and are not models."""
    return not (type_ == "table" and (name or "").startswith("search_"))


def _diff(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _not_search}
        )
        return list(compare_metadata(ctx, SQLModel.metadata))


def test_migrated_schema_matches_models(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert _diff(store) == []
    store.dispose()


def test_first_revision_upgrades_to_head(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    script = ScriptDirectory.from_config(alembic_config(store))
    revisions = list(script.walk_revisions())
    first = revisions[-1].revision
    store.migrate(first)
    assert store.current_revision() == first
    store.migrate("head")
    assert store.current_revision() == script.get_current_head()
    assert _diff(store) == []
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    store.dispose()


def test_pragmas(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    store.dispose()


def test_writes_begin_immediate(tmp_path: Path) -> None:
    """A write takes the write lock at BEGIN, so a second writer waits instead of failing."""
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
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


def test_schema_head_constant_matches_the_scripts(tmp_path: Path) -> None:
    """open_store skips Alembic when the stored revision equals SCHEMA_HEAD; keep them in step."""
    from helpdesk_tui.store.engine import SCHEMA_HEAD

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert ScriptDirectory.from_config(alembic_config(store)).get_current_head() == SCHEMA_HEAD
    store.dispose()
