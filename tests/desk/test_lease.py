"""The worker lease: one holder at a time, daemons before apps, stale leases free, released."""

from __future__ import annotations

import threading
from datetime import timedelta

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
