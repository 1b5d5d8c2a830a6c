"""The engine: SQLite pragmas, BEGIN IMMEDIATE for writes, retry on busy, and migrations.

Measured on these machines: SQLModel's default pysqlite setup lost 57% of concurrent
read-modify-write updates with no error, and a deferred BEGIN fails at once under contention
whatever the busy timeout. So every write transaction starts with BEGIN IMMEDIATE (SQLAlchemy's
documented pysqlite recipe) and the whole unit of work is retried with jitter on SQLITE_BUSY.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from helpdesk_tui import shared

T = TypeVar("T")

# The newest migration; a store already there skips Alembic entirely (its import and the
# upgrade check cost the app's first paint about 0.1 s). A test keeps this equal to the head.
SCHEMA_HEAD = "0006"
BUSY_TIMEOUT_MS = 5000
# How long a unit of work keeps retrying while the database is busy before the agent is told.
WRITE_PATIENCE_S = 60.0


class StoreError(Exception):
    """The store cannot be opened or used; the message says what to do."""


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "busy" in text


# PostgreSQL's serialization_failure and deadlock_detected: the transaction lost a race and a
# rerun of the whole unit of work is the documented answer.
_PG_RETRY_SQLSTATES = frozenset({"40001", "40P01"})


# A unique violation under REPEATABLE READ is mostly a race: the unit of work's snapshot predates
# a concurrent insert of the same key (two agents tagging one ticket). Rerun with a fresh
# snapshot, which then sees the row, but only a few times: a real duplicate must surface.
_PG_UNIQUE_VIOLATION = "23505"
_UNIQUE_RETRIES = 3


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return state if isinstance(state, str) else None


def is_pg_conflict(exc: BaseException) -> bool:
    """PostgreSQL's serialization failure or deadlock: transient, write() reruns the unit."""
    return _sqlstate(exc) in _PG_RETRY_SQLSTATES


# Live refresh on PostgreSQL: a unit of work that wrote (it holds a transaction id then; reads
# and claims that found nothing never get one) sends a notice on this channel, delivered to
# listeners at its commit and never for a rollback. SQLite needs none: PRAGMA data_version.
CHANGE_CHANNEL = "helpdesk_change"
_NOTIFY_IF_WRITTEN = (
    "SELECT pg_notify('helpdesk_change', '') WHERE pg_current_xact_id_if_assigned() IS NOT NULL"
)


class Store:
    """One database: an engine plus read and write units of work."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._token_lock = threading.Lock()
        self._token_conn: Any = None
        self._notices = 0
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                parent = Path(path).parent
                try:
                    parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the data folder {parent}: {exc}") from exc
                # A shared store: say who cannot use it and why, and keep new files group-writable.
                problem = shared.access_problem(Path(path))
                if problem:
                    raise StoreError(problem)
                shared.prepare(Path(path))
            self.engine = sa.create_engine(
                url,
                echo=echo,
                connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            self._install_sqlite_hooks()
            self._writer = self.engine.execution_options(helpdesk_write=True)
            self._reader = self.engine
        else:
            # Room for the app's threads (UI, sync, outbox, live refresh) without queueing;
            # pre-ping because a server restart must not surface as an error in the UI.
            self.engine = sa.create_engine(
                url,
                echo=echo,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=10,
                connect_args={"application_name": "helpdesk-tui"},
            )
            # REPEATABLE READ plus a row lock on the ticket a unit of work changes (the desk
            # takes it with FOR UPDATE): writers on one ticket queue on that lock, and any row
            # changed under a unit of work since its snapshot is a serialization failure that
            # write() reruns, so no update is lost. SERIALIZABLE was tried first: its
            # page-level predicate locks on shared indexes (ticketevent, message) aborted
            # most units of work under 20 agents (load bench: ~650 failures a minute, p99 60 s).
            self._writer = self.engine.execution_options(
                helpdesk_write=True, isolation_level="REPEATABLE READ"
            )
            # One snapshot for all the queries of a read, as a SQLite read transaction has.
            self._reader = self.engine.execution_options(isolation_level="REPEATABLE READ")

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
            # Writes inside a savepoint (intake files every batch in one) copy each page they
            # touch to a sub-journal, a temporary file by default: in memory, a 10,000-mail
            # intake spent 0.4 s less CPU (2.5 -> 2.1 s). Temporary sort tables go there too;
            # the app's queries are paged by key, so they stay small.
            cur.execute("PRAGMA temp_store = MEMORY")
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
        with Session(self._reader, expire_on_commit=False) as session:
            try:
                yield session
            finally:
                session.rollback()

    def write(self, fn: Callable[[Session], T]) -> T:
        """Run fn in one write transaction, retried whole (with jitter) while the db is busy.

        SQLite: retried on SQLITE_BUSY; PostgreSQL: on serialization failures and deadlocks.
        """
        delay = 0.005
        deadline = time.monotonic() + WRITE_PATIENCE_S
        unique_retries = _UNIQUE_RETRIES
        while True:
            session = Session(self._writer, expire_on_commit=False)
            session.info["helpdesk_write"] = True  # the desk locks the rows it will change
            try:
                with session.begin():
                    result = fn(session)
                    if not self.is_sqlite:
                        session.flush()
                        session.connection().exec_driver_sql(_NOTIFY_IF_WRITTEN)
                return result
            except DBAPIError as exc:
                if self.is_sqlite:
                    if not (isinstance(exc, OperationalError) and _is_busy(exc)):
                        raise
                elif _sqlstate(exc) == _PG_UNIQUE_VIOLATION and unique_retries > 0:
                    unique_retries -= 1
                elif not is_pg_conflict(exc):
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

    def change_token(self) -> int | None:
        """A number that moves when a write has been committed since the last call; None if
        this store cannot tell (an in-memory SQLite). Cheap enough to poll twice a second.

        SQLite: PRAGMA data_version on a connection kept for it (it moves when any other
        connection commits). PostgreSQL: how many change notices (CHANGE_CHANNEL) a listening
        connection kept for it has received; one query a call collects them.
        """
        with self._token_lock:
            if self._token_conn is None:
                self._token_conn = self._open_token_connection()
                if self._token_conn is None:
                    return None
            if self.is_sqlite:
                return int(self._token_conn.execute("PRAGMA data_version").fetchone()[0])
            self._token_conn.execute("SELECT 1")  # delivers the notices that have arrived
            return self._notices

    def _open_token_connection(self) -> Any:
        url = sa.engine.make_url(self.url)
        if self.is_sqlite:
            import sqlite3

            path = url.database
            if not path or path == ":memory:":
                return None
            return sqlite3.connect(path, timeout=1.0, check_same_thread=False)
        import psycopg
        from psycopg.conninfo import make_conninfo

        args: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
        args.update((k, v if isinstance(v, str) else v[-1]) for k, v in url.query.items())
        conn = psycopg.connect(make_conninfo("", **args), autocommit=True)

        def count(_notice: Any) -> None:
            self._notices += 1

        conn.add_notify_handler(count)
        conn.execute(f"LISTEN {CHANGE_CHANNEL}")
        return conn

    def dispose(self) -> None:
        # Closing a connection while another thread runs a statement on it crashes sqlite3:
        # change_token and dispose take turns.
        with self._token_lock:
            if self._token_conn is not None:
                self._token_conn.close()
                self._token_conn = None
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


def sync_id_sequences(conn: sa.Connection, tables: Iterable[str]) -> None:
    """After INSERTs that name their ids, move PostgreSQL's id sequences past them.

    SQLite picks max(id) + 1 by itself; a PostgreSQL sequence knows nothing of ids it did not
    hand out, and the next ORM insert would collide with them.
    """
    if conn.dialect.name != "postgresql":
        return
    for name in tables:
        table = sa.table(name, sa.column("id", sa.Integer))
        top = sa.func.max(table.c.id)
        sequence = sa.func.pg_get_serial_sequence(name, "id")
        conn.execute(sa.select(sa.func.setval(sequence, top)).having(top.is_not(None)))


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
