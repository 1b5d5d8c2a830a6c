"""The worker lease: which process runs the duties (sync, outbox, escalation) for a store.

One Meta row, "worker_lease", holds JSON {holder, kind, host, pid, heartbeat}. A holder renews
it every few seconds; a lease whose heartbeat is older than the TTL is free. `helpdesk worker`
(kind "daemon") takes a lease from an app (kind "app") at once, so starting the daemon moves
the duties out of the agents' apps; an app never takes a live lease. Taking, renewing and
comparing the heartbeat's age happen in one write transaction (BEGIN IMMEDIATE on SQLite, a row
lock with FOR UPDATE on PostgreSQL), so two processes can never both believe they
hold it. Heartbeats use the wall clock of the machines involved, never a test's fixed clock: the
lease is about processes being alive.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store

log = logging.getLogger("helpdesk.lease")

KEY = "worker_lease"
TTL = 30.0  # seconds without a heartbeat after which a lease is free
RENEW_EVERY = 10.0  # holders renew this often: two missed renewals still keep the lease


@dataclass(frozen=True)
class Lease:
    holder: str
    kind: str  # daemon | app | once (`worker --once`: takes no live lease, as an app)
    host: str
    pid: int
    heartbeat: datetime

    def alive(self, now: datetime, ttl: float = TTL) -> bool:
        return now - self.heartbeat <= timedelta(seconds=ttl)

    def to_json(self) -> str:
        return json.dumps(
            {
                "holder": self.holder,
                "kind": self.kind,
                "host": self.host,
                "pid": self.pid,
                "heartbeat": self.heartbeat.isoformat(),
            }
        )


def _parse(value: str) -> Lease | None:
    try:
        data = json.loads(value)
        beat = datetime.fromisoformat(str(data["heartbeat"]))
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        return Lease(
            holder=str(data["holder"]),
            kind=str(data.get("kind", "daemon")),
            host=str(data.get("host", "")),
            pid=int(data.get("pid", 0)),
            heartbeat=beat,
        )
    except (ValueError, KeyError, TypeError):
        return None  # a damaged row is a free lease, not a crash


def process_gone(host: str, pid: int) -> bool:
    """True when `pid` ran on this host and no longer exists.

    A process killed with SIGKILL cannot release what it holds (the lease, outbox claims);
    without this check its successor would wait out the whole TTL. Only a same-host pid can be
    checked; a pid reused by an unrelated process merely keeps the time-based rules in force.
    """
    if host != socket.gethostname() or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, under another Unix user
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet still answers kill(0); it is gone all the
    same. Linux tells through /proc; elsewhere we cannot, and the TTL rule applies."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].startswith(("Z", "X"))


def wall_now() -> datetime:
    return datetime.now(UTC)


def holder_id(kind: str) -> str:
    """A name unique to this process: kind@host:pid."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


def describe(current: Lease, now: datetime) -> str:
    """The holder for a person: who, and how long since it last showed it was alive."""
    age = max(0, int((now - current.heartbeat).total_seconds()))
    return f"{current.holder} (last heartbeat {age} s ago)"


def live_holder(store: Store, now: datetime, *, ttl: float = TTL) -> Lease | None:
    """The lease if someone holds it and is alive, else None."""
    current = read(store)
    if current is None or not current.alive(now, ttl) or process_gone(current.host, current.pid):
        return None
    return current


def read(store: Store) -> Lease | None:
    with store.read() as s:
        row = s.get(M.Meta, KEY)
        return _parse(row.value) if row is not None else None


def acquire(
    store: Store, holder: str, now: datetime, *, kind: str = "app", ttl: float = TTL
) -> bool:
    """Take or renew the lease; False while someone else holds a live one.

    A daemon takes over an app's live lease (the app notices at its next renewal and stops).
    """

    def fn(s: Session) -> bool:
        # FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already holds the write lock):
        # a second taker waits for this one, then sees what it wrote.
        row = s.get(M.Meta, KEY, with_for_update=True)
        current = _parse(row.value) if row is not None else None
        if (
            current is not None
            and current.holder != holder
            and current.alive(now, ttl)
            and not (kind == "daemon" and current.kind == "app")
            and not process_gone(current.host, current.pid)
        ):
            return False
        lease = Lease(holder, kind, socket.gethostname(), os.getpid(), now)
        if row is None:
            s.add(M.Meta(key=KEY, value=lease.to_json()))
        else:
            row.value = lease.to_json()
        return True

    return store.write(fn)


renew = acquire
"""Renewing is taking again: it fails exactly when another process holds a live lease."""


def release(store: Store, holder: str) -> None:
    """Give the lease up (only if we hold it), so the next holder need not wait for the TTL."""

    def fn(s: Session) -> None:
        row = s.get(M.Meta, KEY, with_for_update=True)
        if row is None:
            return
        current = _parse(row.value)
        if current is None or current.holder == holder:
            s.delete(row)

    store.write(fn)


class Keeper:
    """A thread that takes the lease and renews it until close() releases it.

    `held` says whether this process holds the lease right now; the worker runs its duties
    only while it does.
    """

    def __init__(
        self,
        store: Store,
        holder: str,
        *,
        kind: str = "daemon",
        every: float = RENEW_EVERY,
    ) -> None:
        self.store = store
        self.holder = holder
        self.kind = kind
        self.every = every
        self.held = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._warned = False

    def beat(self) -> bool:
        try:
            ok = acquire(self.store, self.holder, wall_now(), kind=self.kind)
        except Exception as exc:  # noqa: BLE001 - a busy store costs one heartbeat, not the worker
            log.warning("worker lease: %s", exc)
            return self.held.is_set()
        if ok:
            self.held.set()
            self._warned = False
        else:
            self.held.clear()
            if not self._warned:
                current = read(self.store)
                who = current.holder if current else "?"
                log.warning("another worker holds the lease: %s", who)
                self._warned = True
        return ok

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="helpdesk-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self.every):
            self.beat()

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every + 1)
        try:
            release(self.store, self.holder)
        except Exception as exc:  # noqa: BLE001 - the TTL frees it anyway
            log.warning("worker lease: %s", exc)
