"""`helpdesk backup`: a consistent copy of a live SQLite store with SQLite's online backup API.

Never a file copy: copying helpdesk.sqlite3 while the -wal file holds recent commits gives a
database that lacks them or is torn. The backup API copies pages through SQLite itself. In WAL
mode (the store always is) the source connection holds one read transaction for the whole copy,
so every step reads the same snapshot: agents keep writing meanwhile (a WAL reader never blocks
a writer) and the copy cannot restart because of them. The copy goes to a temporary file beside
the target, becomes a single self-contained file (journal_mode DELETE), passes
`PRAGMA integrity_check`, and only then is renamed over the target.

Attachments are files beside the database, written once under their SHA-256 and never changed,
so an ordinary `rsync -a` of the attachments folder after the backup is consistent with it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from helpdesk_tui import paths
from helpdesk_tui.shared import access_problem

PAGES_PER_STEP = 1024  # 4 MiB with the default page size
BUSY_TIMEOUT_S = 10.0


class BackupError(Exception):
    """The backup was not made; the message says why."""


class BackupUnsupported(BackupError):
    """The store is not SQLite: the database's own tool does this (a usage error, exit 2)."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    tickets: int
    messages: int
    attachments: int
    pages: int
    seconds: float


def default_name(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"helpdesk-{stamp}.sqlite3"


def backup(
    url: str,
    target: Path,
    *,
    force: bool = False,
    pages: int = PAGES_PER_STEP,
    progress: Callable[[int, int], None] | None = None,
) -> BackupReport:
    """Copy the store at `url` to `target` (a file, or a folder to put a dated file in)."""
    source = paths.sqlite_file(url)
    if source is None:
        if url.startswith("postgresql"):
            raise BackupUnsupported(
                "the store is PostgreSQL: back it up with pg_dump (for instance "
                "`pg_dump --format=custom --file=helpdesk.dump DBNAME`); "
                "`helpdesk backup` copies SQLite stores"
            )
        raise BackupUnsupported(f"cannot back up {url}: only SQLite stores are supported")
    problem = access_problem(source)
    if problem:
        raise BackupError(problem)
    if not os.path.isfile(source):
        raise BackupError(f"no store at {source}")
    target = Path(os.path.abspath(target.expanduser()))
    if target.is_dir():
        target = target / default_name()
    live = source.resolve()
    if target == live or (target.parent == live.parent and target.name.startswith(live.name)):
        raise BackupError(f"{target} is the live store or one of its files; choose another path")
    if target.exists() and not force:
        raise BackupError(f"{target} exists already; use --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"no folder {target.parent}")
    started = time.monotonic()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        copied = _copy(source, tmp, pages, progress)
        counts = _verify(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return BackupReport(target, target.stat().st_size, *counts, copied, time.monotonic() - started)


def _copy(source: Path, tmp: Path, pages: int, progress: Callable[[int, int], None] | None) -> int:
    try:
        src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {source}: {exc}") from exc
    dst = sqlite3.connect(tmp, isolation_level=None)
    total = 0

    def seen(_status: int, remaining: int, count: int) -> None:
        nonlocal total
        total = count
        if progress is not None:
            progress(count - remaining, count)

    try:
        wal = src.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        if wal:
            # One snapshot for every step: writers go on, the copy never restarts.
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        # Without WAL a held read would block writers; pause between steps instead.
        src.backup(dst, pages=pages, progress=seen, sleep=0 if wal else 0.05)
        if wal:
            src.execute("COMMIT")
        # A backup is one file: no -wal beside it to lose when it is copied elsewhere.
        dst.execute("PRAGMA journal_mode = DELETE").fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from exc
    finally:
        dst.close()
        src.close()
    return total


def _verify(tmp: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(tmp)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if rows != ["ok"]:
            raise BackupError("the copy failed its integrity check: " + "; ".join(rows[:3]))
        counts = tuple(
            int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
            for table in ("ticket", "message", "attachment")
        )
    except sqlite3.Error as exc:
        raise BackupError(f"cannot read the copy: {exc}") from exc
    finally:
        conn.close()
    return counts[0], counts[1], counts[2]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
