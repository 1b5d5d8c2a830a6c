"""The engine: SQLite pragmas, BEGIN IMMEDIATE for writes, retry on busy, and migrations.

Measured on these machines: SQLModel's default pysqlite setup lost 57% of concurrent
read-modify-write updates with no error, and a deferred BEGIN fails at once under contention
whatever the busy timeout. So every write transaction starts with BEGIN IMMEDIATE (SQLAlchemy's
documented pysqlite recipe) and the whole unit of work is retried with jitter on SQLITE_BUSY.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

T = TypeVar("T")

# The newest migration; a store already there skips Alembic entirely (its import and the
# upgrade check cost the app's first paint about 0.1 s). A test keeps this equal to the head.
SCHEMA_HEAD = "0004"
BUSY_TIMEOUT_MS = 5000
# How long a unit of work keeps retrying while the database is busy before the agent is told.
WRITE_PATIENCE_S = 60.0


class StoreError(Exception):
    """The store cannot be opened or used; the message says what to do."""


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "busy" in text


class Store:
    """One database: an engine plus read and write units of work."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                parent = Path(path).parent
                try:
                    parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the data folder {parent}: {exc}") from exc
            self.engine = sa.create_engine(
                url,
                echo=echo,
                connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            self._install_sqlite_hooks()
        else:
            self.engine = sa.create_engine(url, echo=echo, pool_pre_ping=True)
        self._writer = self.engine.execution_options(helpdesk_write=True)

    def _install_sqlite_hooks(self) -> None:
        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event, not pysqlite, decide how transactions start.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            # A commit that crosses the auto-checkpoint threshold pays for the checkpoint; with
            # a larger threshold the worker checkpoints between passes instead (checkpoint()).
            cur.execute("PRAGMA wal_autocheckpoint = 10000")
            cur.execute("PRAGMA cache_size = -8192")
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            if conn.get_execution_options().get("helpdesk_write"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

    # -- units of work --------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session; rolled back at the end."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
            finally:
                session.rollback()

    def write(self, fn: Callable[[Session], T]) -> T:
        """Run fn in one write transaction, retried whole (with jitter) while the db is busy."""
        delay = 0.005
        deadline = time.monotonic() + WRITE_PATIENCE_S
        while True:
            session = Session(self._writer, expire_on_commit=False)
            try:
                with session.begin():
                    result = fn(session)
                return result
            except OperationalError as exc:
                if not (self.is_sqlite and _is_busy(exc)):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(
                        "the database stayed busy for too long; try again in a moment"
                    ) from exc
            finally:
                session.close()
            time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, 0.25)

    def checkpoint(self) -> None:
        """Fold the WAL back into the database off the hot path (the worker calls this)."""
        if not self.is_sqlite:
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def dispose(self) -> None:
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to `revision` with Alembic (the only way tables are created)."""
        from alembic import command

        command.upgrade(alembic_config(self), revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()


def _stored_revision(store: Store) -> str | None:
    """The schema revision without importing Alembic; None for a new or unreadable store."""
    try:
        with store.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except Exception:  # noqa: BLE001 - no table yet: the migration below creates it
        return None


def alembic_config(store: Store) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", store.url.replace("%", "%%"))
    cfg.attributes["engine"] = store.engine
    return cfg


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) a store; new SQLite files get group-friendly permissions."""
    store = Store(url)
    if migrate and _stored_revision(store) != SCHEMA_HEAD:
        try:
            store.migrate()
        except OperationalError as exc:
            raise StoreError(f"cannot open the database {url}: {exc.orig}") from exc
        except PermissionError as exc:
            raise StoreError(f"no permission to open the database {url}: {exc}") from exc
    if store.is_sqlite and os.environ.get("HELPDESK_DEBUG_SQL"):
        store.engine.echo = True
    return store
