"""A real, throwaway PostgreSQL on 127.0.0.1 for the store, desk and worker tests and benchmarks."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import psycopg

# The cluster's superuser; local connections are trusted (the server listens on 127.0.0.1 and a
# socket inside the work folder only, and lives as long as the test session).
SUPERUSER = "postgres"
# Durability buys nothing for a throwaway cluster and costs every commit an fsync.
FAST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "jit": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "timezone": "UTC",
    "log_min_messages": "warning",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bindir() -> Path | None:
    """The folder holding initdb and postgres: on PATH, else the newest /usr/lib/postgresql."""
    on_path = shutil.which("initdb")
    if on_path:
        bindir = Path(on_path).resolve().parent
        if (bindir / "postgres").exists():
            return bindir
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()),
        key=lambda p: _version_key(p.parent.name),
    )
    return candidates[-1] if candidates else None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, but there is no 'postgres' or 'nobody' user to run as")


def _as_user(user: pwd.struct_passwd | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    # setpriv execs in place (unlike runuser, which forks), so the pid we hold is the server's
    # own and a signal to it is a clean shutdown.
    return [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--init-groups",
        "--reset-env",
        *argv,
    ]


@dataclass
class PostgresServer:
    """A running cluster; `url()` and `create_database()` hand out SQLAlchemy URLs."""

    dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    _databases: set[str] = field(default_factory=set)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the maintenance database (CREATE DATABASE needs one)."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE name [TEMPLATE template]; returns its URL.

        Cloning a template copies its files, so a migrated template makes a fresh database in
        a few milliseconds; the template must have no open connections at that moment.
        """
        from psycopg import sql

        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        with self._admin() as conn:
            if template is not None:
                query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
                # PostgreSQL 15's default WAL_LOG strategy writes the whole copy to the WAL:
                # about 0.35 s a clone here, against 0.03 s for FILE_COPY with fsync off.
                if conn.info.server_version >= 150000:
                    query = sql.SQL("{} STRATEGY FILE_COPY").format(query)
            conn.execute(query)
        self._databases.add(name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE ... WITH (FORCE): ends whatever connections a test left behind."""
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        self._databases.discard(name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, then exit.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _wait_ready(server: PostgresServer) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"postgres exited: {server.log.read_text(errors='replace')}")
        try:
            with server._admin():
                return
        except psycopg.OperationalError:
            time.sleep(0.05)  # polling for a server to come up, not timing a test
    raise RuntimeError(f"postgres did not answer within 30 s: {server.log.read_text()[-2000:]}")


def start_postgres(workdir: Path, bindir: Path | None = None) -> PostgresServer:
    """initdb a cluster in workdir and start it on 127.0.0.1; the caller stops it.

    As root the server runs as the `postgres` system user (or `nobody`), so every parent of
    workdir must be traversable by that user (a mkdtemp folder under /tmp is; pytest's own
    basetemp, mode 0700, is not).
    """
    bindir = bindir or find_bindir()
    if bindir is None:
        raise FileNotFoundError(
            "PostgreSQL is not installed (apt-get install postgresql; .ci/run does this)"
        )
    user = _run_as()
    workdir.mkdir(parents=True, exist_ok=True)
    data, sockets, log = workdir / "data", workdir / "run", workdir / "postgres.log"
    sockets.mkdir(exist_ok=True)
    log.touch()
    if user is not None:
        workdir.chmod(0o755)
        for path in (workdir, sockets, log):
            os.chown(path, user.pw_uid, user.pw_gid)
    if not (data / "PG_VERSION").exists():
        init = subprocess.run(
            _as_user(
                user,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed in {data}: {init.stderr or init.stdout}")
    port = _free_port()
    settings = {**FAST_SETTINGS, "port": str(port), "unix_socket_directories": str(sockets)}
    argv = [str(bindir / "postgres"), "-D", str(data)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            _as_user(user, argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = PostgresServer(workdir, port, proc, log)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


# Where both backends run: the store, desk and worker suites. TUI and CLI tests stay on SQLite.
BOTH_BACKENDS = (
    "tests/store/",
    "tests/desk/",
    "tests/test_worker_imap.py",
    "tests/mail/test_outbox_worker.py",
)
BACKENDS = ("sqlite", "postgresql")
TEMPLATE_DB = "helpdesk_template"
_db_numbers = itertools.count(1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that asks for a database (db_url, store, desk...) on both backends."""
    if "db_backend" not in metafunc.fixturenames:
        return
    rel = metafunc.definition.path.relative_to(metafunc.config.rootpath).as_posix()
    if not rel.startswith(BOTH_BACKENDS):
        return
    backends = list(BACKENDS)
    if metafunc.definition.get_closest_marker("sqlite_only") is not None:
        backends.remove("postgresql")
    if metafunc.definition.get_closest_marker("postgresql_only") is not None:
        backends.remove("sqlite")
    metafunc.parametrize("db_backend", backends, indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): the test checks SQLite itself (pragmas, FTS5, data_version); "
        "it runs on the sqlite backend only (where both backends run)",
    )
    config.addinivalue_line(
        "markers",
        "postgresql_only(reason): the test checks PostgreSQL itself (isolation levels, its "
        "search index); it runs on the postgresql backend only",
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One cluster for the whole session; tests make their own databases in it."""
    bindir = find_bindir()
    if bindir is None:
        reason = "PostgreSQL is not installed (apt-get install postgresql; .ci/run does this)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    # Under /tmp with mode 0755 (see start_postgres): as root the server is another user.
    workdir = Path(tempfile.mkdtemp(prefix="helpdesk-pg-"))
    server = start_postgres(workdir, bindir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """The backend of this test's databases: parametrized where both run, else SQLite."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer) -> str:
    """A database migrated to head once per session; each test clones it (about 30 ms)."""
    from helpdesk_tui.store.engine import open_store

    open_store(postgres.create_database(TEMPLATE_DB)).dispose()
    return TEMPLATE_DB


@pytest.fixture
def new_db_url(
    db_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """A factory of fresh databases on this test's backend: new_db_url(name, migrated=True).

    SQLite gives a file in tmp_path (open_store migrates it); PostgreSQL gives a clone of the
    migrated template, or an empty database with migrated=False. Dropped after the test.
    """
    made: list[str] = []
    server: PostgresServer | None = None
    template: str | None = None
    if db_backend == "postgresql":
        server = request.getfixturevalue("postgres")
        template = request.getfixturevalue("pg_template")

    def make(name: str = "helpdesk", *, migrated: bool = True) -> str:
        if server is None:
            return f"sqlite:///{tmp_path / name}.sqlite3"
        dbname = f"t{os.getpid()}_{next(_db_numbers)}_{name}"[:63]
        made.append(dbname)
        return server.create_database(dbname, template if migrated else None)

    yield make
    if server is not None:
        for dbname in made:
            server.drop_database(dbname)
