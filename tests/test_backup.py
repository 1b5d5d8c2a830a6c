"""`helpdesk backup`: a consistent copy while another process keeps writing; refusals."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpdesk_tui.desk.backup import BackupError, BackupUnsupported, backup
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.store.engine import Store

NOTES = 300  # the writer's bound: it stops on its own even if the test fails

WRITER = """
import sys
from helpdesk_tui.desk.session import open_desk
h = open_desk(db=sys.argv[1], actor="bob")
numbers = [int(n) for n in sys.argv[3].split(",")]
for i in range(int(sys.argv[2])):
    h.desk.note(numbers[i % len(numbers)], f"note {i} while the backup runs")
    if i == 0:
        print("writing", flush=True)
h.store.dispose()
"""


def _counts(path: Path) -> tuple[int, int, list[tuple[int, int, int]]]:
    conn = sqlite3.connect(path)
    try:
        tickets = conn.execute("SELECT count(*) FROM ticket").fetchone()[0]
        messages = conn.execute("SELECT count(*) FROM message").fetchone()[0]
        per_ticket = conn.execute(
            "SELECT t.id, t.message_count, (SELECT count(*) FROM message m "
            "WHERE m.ticket_id = t.id) FROM ticket t"
        ).fetchall()
    finally:
        conn.close()
    return tickets, messages, per_ticket


def _messages(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return int(conn.execute("SELECT count(*) FROM message").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def busy_store(desk: Desk, store: Store) -> tuple[Desk, Path, list[int]]:
    if not store.is_sqlite:
        pytest.skip("backup copies SQLite stores")
    numbers = []
    for i in range(30):
        d = desk.register(
            customer_email=f"c{i}@example.com",
            subject=f"request {i}",
            body="x" * 2000,  # enough pages for many backup steps
        )
        numbers.append(d.number)
    path = Path(store.url.removeprefix("sqlite:///"))
    return desk, path, numbers


def test_backup_while_another_process_writes(
    busy_store: tuple[Desk, Path, list[int]], tmp_path: Path
) -> None:
    _desk, live, numbers = busy_store
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(live), str(NOTES), ",".join(map(str, numbers))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "writing\n"
        before = _messages(live)
        steps: list[tuple[int, int]] = []

        def progress(done: int, total: int) -> None:
            # Hold the first step until the writer has committed again: the copy must not
            # see that commit, nor restart because of it.
            if not steps:
                deadline = time.monotonic() + 30
                while _messages(live) == before and writer.poll() is None:
                    assert time.monotonic() < deadline, "the writer stopped writing"
            steps.append((done, total))

        report = backup(f"sqlite:///{live}", tmp_path / "copy.sqlite3", pages=2, progress=progress)
        assert writer.wait(timeout=120) == 0, writer.stderr.read() if writer.stderr else ""
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()

    assert len(steps) > 3
    assert [d for d, _ in steps] == sorted(d for d, _ in steps), "the backup restarted"
    copy = tmp_path / "copy.sqlite3"
    tickets, messages, per_ticket = _counts(copy)
    assert (report.tickets, report.messages) == (tickets, messages) == (30, messages)
    assert before <= messages < 30 + NOTES
    assert all(count == actual for _id, count, actual in per_ticket), per_ticket
    assert _messages(live) == 30 + NOTES
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()
    assert not Path(f"{copy}-wal").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_refuses_to_overwrite_without_force_and_names_a_folder_target(
    busy_store: tuple[Desk, Path, list[int]], tmp_path: Path
) -> None:
    _desk, live, _numbers = busy_store
    url = f"sqlite:///{live}"
    target = tmp_path / "copy.sqlite3"
    target.write_text("an older backup")
    with pytest.raises(BackupError, match="--force"):
        backup(url, target)
    assert target.read_text() == "an older backup"
    assert backup(url, target, force=True).tickets == 30
    dated = backup(url, tmp_path)
    assert dated.path.parent == tmp_path and dated.path.name.startswith("helpdesk-")
    with pytest.raises(BackupError, match="live store"):
        backup(url, live, force=True)


def test_postgresql_is_pointed_to_pg_dump() -> None:
    with pytest.raises(BackupUnsupported, match="pg_dump"):
        backup("postgresql+psycopg://helpdesk@127.0.0.1/helpdesk", Path("out.dump"))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helpdesk_tui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command(busy_store: tuple[Desk, Path, list[int]], tmp_path: Path) -> None:
    _desk, live, _numbers = busy_store
    env = {**os.environ, "HELPDESK_DB": str(live)}
    target = tmp_path / "b.sqlite3"
    res = _cli("backup", str(target), env=env)
    assert res.returncode == 0, res.stderr
    assert "30 tickets" in res.stdout and "integrity ok" in res.stdout
    again = _cli("backup", str(target), env=env)
    assert again.returncode == 1 and "--force" in again.stderr
    assert _cli("backup", str(target), "--force", env=env).returncode == 0
    pg = _cli("backup", "x.dump", "--db", "postgresql+psycopg://u@127.0.0.1/db", env=env)
    assert pg.returncode == 2 and "pg_dump" in pg.stderr and "Traceback" not in pg.stderr
