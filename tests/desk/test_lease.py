"""The worker lease: one holder at a time, daemons before apps, stale leases free, released."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from helpdesk_tui.config import Config
from helpdesk_tui.desk import lease
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.session import DeskHandle
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store
from helpdesk_tui.worker import PassReport, Worker
from tests.conftest import T0


def test_one_holder_at_a_time_and_renewal(store: Store) -> None:
    assert lease.acquire(store, "app@a:1", T0)
    assert not lease.acquire(store, "app@b:2", T0 + timedelta(seconds=5))
    assert lease.renew(store, "app@a:1", T0 + timedelta(seconds=20))
    # Renewed at +20 s: still alive at +45 s, free after +50 s.
    assert not lease.acquire(store, "app@b:2", T0 + timedelta(seconds=45))
    assert lease.acquire(store, "app@b:2", T0 + timedelta(seconds=51))
    held = lease.read(store)
    assert held is not None and held.holder == "app@b:2" and held.kind == "app"
    assert not lease.renew(store, "app@a:1", T0 + timedelta(seconds=52))


def test_a_daemon_takes_an_apps_lease_but_not_another_daemons(store: Store) -> None:
    assert lease.acquire(store, "app@a:1", T0)
    assert lease.acquire(store, "daemon@w:1", T0 + timedelta(seconds=1), kind="daemon")
    assert not lease.renew(store, "app@a:1", T0 + timedelta(seconds=2))
    assert not lease.acquire(store, "daemon@w:2", T0 + timedelta(seconds=3), kind="daemon")


def test_release_frees_only_our_own_lease_and_bad_rows_are_free(store: Store) -> None:
    assert lease.acquire(store, "app@a:1", T0)
    lease.release(store, "app@b:2")
    assert lease.read(store) is not None
    lease.release(store, "app@a:1")
    assert lease.read(store) is None

    def damage(s: object) -> None:
        from sqlmodel import Session

        assert isinstance(s, Session)
        s.add(M.Meta(key=lease.KEY, value="{not json"))

    store.write(damage)
    assert lease.read(store) is None
    assert lease.acquire(store, "app@a:1", T0)


def test_the_daemon_loop_holds_the_lease_while_it_runs(
    store: Store, config: Config, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    worker = Worker(DeskHandle(desk, config, store), parse_processes=1, stop=stop)
    seen: list[lease.Lease | None] = []
    original = worker.run_once

    def observed() -> PassReport:
        seen.append(lease.read(store))
        if len(seen) >= 2:
            stop.set()
        return original()

    monkeypatch.setattr(worker, "run_once", observed)
    runner = threading.Thread(target=worker.run_forever, kwargs={"poll_seconds": 0.01})
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert len(seen) == 2
    assert all(s is not None and s.kind == "daemon" for s in seen)
    assert lease.read(store) is None  # released on the way out


def test_the_daemon_waits_while_another_daemon_holds_the_lease(
    store: Store, config: Config, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lease.acquire(store, "daemon@other:9", lease.wall_now(), kind="daemon")
    stop = threading.Event()
    worker = Worker(DeskHandle(desk, config, store), parse_processes=1, stop=stop)
    passes: list[int] = []
    waits: list[int] = []

    def wait(_poll: float) -> None:
        waits.append(1)
        if len(waits) >= 3:
            stop.set()

    monkeypatch.setattr(worker, "run_once", lambda: passes.append(1))
    monkeypatch.setattr(worker, "_wait", wait)
    worker.run_forever(poll_seconds=0.01)
    assert passes == [] and len(waits) == 3
    held = lease.read(store)
    assert held is not None and held.holder == "daemon@other:9"


def test_a_stale_lease_is_taken_over_and_a_live_one_is_not(store: Store) -> None:
    now = lease.wall_now()
    # A daemon that died a minute ago: an app may take its duties.
    assert lease.acquire(store, "daemon@gone:1", now - timedelta(seconds=60), kind="daemon")
    assert lease.acquire(store, "app@a:1", now, kind="app")
    # A live app lease: another app waits, `worker --once` too; a daemon takes it.
    assert not lease.acquire(store, "app@b:2", now + timedelta(seconds=1), kind="app")
    assert not lease.acquire(store, "once@c:3", now + timedelta(seconds=1), kind="once")
    assert lease.acquire(store, "daemon@w:4", now + timedelta(seconds=2), kind="daemon")
    # A live daemon lease: nobody else gets it.
    for holder, kind in (("app@a:1", "app"), ("once@c:3", "once"), ("daemon@x:5", "daemon")):
        assert not lease.acquire(store, holder, now + timedelta(seconds=3), kind=kind)
    current = lease.live_holder(store, now + timedelta(seconds=3))
    assert current is not None and current.holder == "daemon@w:4"
    assert lease.describe(current, now + timedelta(seconds=7)).endswith("(last heartbeat 5 s ago)")
    assert lease.live_holder(store, now + timedelta(seconds=2 + lease.TTL + 1)) is None


def test_a_keeper_takes_a_free_lease_and_gives_it_back_on_close(store: Store) -> None:
    keeper = lease.Keeper(store, "daemon@here:1", every=3600)
    keeper.start()
    try:
        assert keeper.held.is_set()
        held = lease.read(store)
        assert held is not None and held.holder == "daemon@here:1"
    finally:
        keeper.close()
    assert lease.read(store) is None


def test_a_keeper_does_not_take_a_live_lease(store: Store) -> None:
    assert lease.acquire(store, "app@agent:1", lease.wall_now(), kind="app")
    keeper = lease.Keeper(store, "once@here:2", kind="once", every=3600)
    keeper.start()
    try:
        assert not keeper.held.is_set()
    finally:
        keeper.close()
    held = lease.read(store)
    assert held is not None and held.holder == "app@agent:1"  # close() left it alone


def _worker_once(store: Store, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELPDESK_DB": store.url, "HELPDESK_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "helpdesk_tui", "worker", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_worker_once_refuses_while_another_holds_the_lease(
    store: Store, desk: Desk, tmp_path: Path
) -> None:
    assert lease.acquire(store, "daemon@other:9", lease.wall_now(), kind="daemon")
    res = _worker_once(store, tmp_path)
    assert res.returncode == 1, res.stderr
    assert "daemon@other:9" in res.stderr and "not running the duties" in res.stderr
    assert "Traceback" not in res.stderr
    held = lease.read(store)
    assert held is not None and held.holder == "daemon@other:9"


def test_worker_once_runs_when_the_lease_is_stale_and_releases_it(
    store: Store, desk: Desk, tmp_path: Path
) -> None:
    stale = lease.wall_now() - timedelta(seconds=lease.TTL + 5)
    assert lease.acquire(store, "daemon@crashed:9", stale, kind="daemon")
    res = _worker_once(store, tmp_path)
    assert res.returncode == 0, res.stderr
    assert lease.read(store) is None


def test_a_lease_whose_process_died_on_this_host_is_free_at_once(store: Store) -> None:
    # A worker killed with SIGKILL leaves a fresh heartbeat behind; its successor must not wait
    # out the TTL when the holder's pid is gone from this very host.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(dead.stdout)
    now = lease.wall_now()
    gone = lease.Lease(f"daemon@here:{pid}", "daemon", socket.gethostname(), pid, now)
    store.write(lambda s: s.merge(M.Meta(key=lease.KEY, value=gone.to_json())))
    assert lease.live_holder(store, now) is None
    assert lease.acquire(store, "app@me:1", now, kind="app")
    # A live holder on this host (ourselves, seen from another holder name) still blocks.
    assert not lease.acquire(store, "app@other:2", now, kind="app")


def test_a_killed_but_unreaped_holder_counts_as_gone(store: Store) -> None:
    # The parent (a supervisor, a test) has not waited for it yet: kill(pid, 0) still succeeds.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not lease.process_gone(socket.gethostname(), child.pid)
        child.kill()
        deadline = time.monotonic() + 30  # bounded poll: the kernel marks it a zombie at once
        while time.monotonic() < deadline:
            if lease.process_gone(socket.gethostname(), child.pid):
                break
            os.sched_yield()
        assert lease.process_gone(socket.gethostname(), child.pid)
    finally:
        child.wait()
