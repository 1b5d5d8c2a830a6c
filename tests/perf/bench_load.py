"""Load and fault bench: many agents on one shared store while the worker ingests and sends.

Run: .venv/bin/python tests/perf/bench_load.py [--backend sqlite|postgres|both]
Environment (defaults in brackets): LOAD_DURATION [60] seconds, LOAD_AGENTS [20] processes,
LOAD_KILLS [20] SIGKILLs, LOAD_TICKETS [200] shared tickets, LOAD_MAIL_RATE [5] mails a second
APPENDed to Dovecot, LOAD_WORKER_KILL_SHARE [0.25] of the kills that hit the worker,
LOAD_POLL [2] seconds between worker passes, LOAD_THINK_MS [0] agent think time.

Agents (tests/perf/load_agent.py) open tickets and act on them with optimistic locking and
journal every committed action. The real `helpdesk worker` imports from a real Dovecot and
sends to an aiosmtpd in its own process. A chaos loop SIGKILLs and restarts random agents and
the worker. After the run the worker drains once more, then the bench checks the journals
against the store (lost updates), the counters against the rows, every APPENDed mail imported
exactly once, every outbox mail received by the SMTP server (duplicates from the known
at-least-once window are counted apart) and, on SQLite, PRAGMA integrity_check.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

AGENT_SCRIPT = Path(__file__).resolve().parent / "load_agent.py"
LOCK_WORDS = ("locked", "busy", "deadlock", "could not serialize", "operationalerror")
_MSGID = re.compile(rb"^message-id:\s*<([^>\r\n]+)>", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Params:
    duration: float = 60.0
    agents: int = 20
    kills: int = 20
    tickets: int = 200
    mail_rate: float = 5.0
    worker_kill_share: float = 0.25
    poll: float = 2.0
    think_ms: float = 0.0

    @classmethod
    def from_env(cls) -> Params:
        env = os.environ.get
        return cls(
            duration=float(env("LOAD_DURATION", "60")),
            agents=int(env("LOAD_AGENTS", "20")),
            kills=int(env("LOAD_KILLS", "20")),
            tickets=int(env("LOAD_TICKETS", "200")),
            mail_rate=float(env("LOAD_MAIL_RATE", "5")),
            worker_kill_share=float(env("LOAD_WORKER_KILL_SHARE", "0.25")),
            poll=float(env("LOAD_POLL", "2")),
            think_ms=float(env("LOAD_THINK_MS", "0")),
        )


@dataclass
class Result:
    backend: str
    params: Params
    actions: int = 0
    writes: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    write_p99_ms: float = 0.0
    conflicts: int = 0
    refused: int = 0
    lock_errors: int = 0
    lock_samples: list[str] = field(default_factory=list)
    lost_updates: int = 0
    lost_samples: list[str] = field(default_factory=list)
    counter_mismatches: int = 0
    counter_samples: list[str] = field(default_factory=list)
    agent_kills: int = 0
    worker_kills: int = 0
    takeover_s: list[float | None] = field(default_factory=list)
    lease_held: float = 0.0
    kill_log: list[str] = field(default_factory=list)
    mails_in_run: int = 0
    sent_in_run: int = 0
    worker_stderr: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    mails_appended: int = 0
    mails_ingested: int = 0
    mails_missing: int = 0
    mails_doubled: int = 0
    outbox_rows: int = 0
    mails_sent: int = 0
    duplicates: int = 0
    stranded: int = 0
    unsent: int = 0
    sent_not_received: int = 0
    integrity: str = "n/a"
    elapsed: float = 0.0

    @property
    def actions_per_s(self) -> float:
        return self.actions / self.params.duration if self.params.duration else 0.0

    @property
    def kills(self) -> int:
        return self.agent_kills + self.worker_kills

    def ok(self) -> bool:
        """The targets: no lock errors, nothing lost or miscounted, every mail in exactly once."""
        return (
            not self.crashes
            and self.lock_errors == 0
            and self.lost_updates == 0
            and self.counter_mismatches == 0
            and self.mails_missing == 0
            and self.mails_doubled == 0
            and self.sent_not_received == 0
            and self.integrity in ("ok", "n/a")
        )


# ---------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # polling for a server to come up
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}")


def smtp_sink(port: int, log: Path) -> None:
    """An aiosmtpd that appends each received Message-ID to `log` before it answers 250."""
    from aiosmtpd.controller import Controller

    out = log.open("ab", buffering=0)
    lock = threading.Lock()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            content = bytes(envelope.original_content or envelope.content or b"")
            found = _MSGID.search(content)
            mid = found.group(1) if found else b"?"
            with lock:
                out.write(mid + b"\n")
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


def start_smtp(workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = workdir / "smtp-received.log"
    log.touch()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--smtp-sink", str(port), "--smtp-log", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "smtp.err").open("wb"),
    )
    wait_port(port)
    return proc, port, log


def mail(run: str, n: int) -> tuple[str, bytes]:
    mid = f"load-{run}-{n}@customer.example"
    m = EmailMessage()
    m["From"] = f"Customer {n} <m{n}-{run}@customer.example>"
    m["To"] = "support@desk.example"
    m["Subject"] = f"Load mail {n}: the printer on floor {n % 7} jams"
    m["Message-ID"] = f"<{mid}>"
    m["Date"] = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    m.set_content(f"Hello,\nthe printer jams again (mail {n}).\nRegards\n")
    return mid, m.as_bytes()


class Appender(threading.Thread):
    """APPENDs fresh mail to the Dovecot INBOX at a steady, bounded rate until told to stop."""

    def __init__(self, dovecot: Any, user: str, rate: float, run: str) -> None:
        super().__init__(name="appender", daemon=True)
        self.dovecot, self.user, self.rate, self.run_id = dovecot, user, rate, run
        self.ids: list[str] = []
        self.stop = threading.Event()
        self.error = ""

    def run(self) -> None:
        if self.rate <= 0:
            return
        client = self.dovecot.client(self.user)
        try:
            start = time.monotonic()
            n = 0
            while not self.stop.is_set():
                mid, raw = mail(self.run_id, n)
                client.append("INBOX", raw)
                self.ids.append(mid)
                n += 1
                # steady rate: wait for this mail's slot, not a fixed sleep after each APPEND
                self.stop.wait(max(0.0, start + n / self.rate - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - reported in the result, the run goes on
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):
                client.logout()


# ---------------------------------------------------------------------- the run


def config_text(imap_port: int, user: str, smtp_port: int) -> str:
    return f"""
[desk]
name = "Load Desk"
timezone = "UTC"
domain = "desk.example"

[[mailbox]]
name = "support"
address = "support@desk.example"
host = "127.0.0.1"
port = {imap_port}
security = "plain"
username = "{user}"
password_env = "LOAD_IMAP_PASSWORD"
folder = "INBOX"
after_import = "flag"
category = "Support"
acknowledge_template = "acknowledgement"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
timeout = 10
"""


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def logins(n: int) -> list[str]:
    return [f"agent{i:02d}" for i in range(1, n + 1)]


def seed_desk(url: str, cfg: Path, p: Params) -> list[int]:
    """Agents and the shared tickets, through the Desk API as an agent would register them."""
    from helpdesk_tui.clock import SystemClock
    from helpdesk_tui.desk.session import open_desk

    names = logins(p.agents)
    h = open_desk(db=url, config_path=cfg, actor=names[0], clock=SystemClock())
    for login in names:
        h.desk.add_agent(login, f"Agent {login[5:]}", f"{login}@desk.example")
    rng = random.Random(7)
    numbers = []
    for i in range(p.tickets):
        owner = rng.choice([*names, None, None])
        d = h.desk.register(
            customer_email=f"c{i}@example.com",
            customer_name=f"Customer {i}",
            subject=f"Shared request {i}: cannot log in",
            body="Hello, I cannot log in since this morning.",
            owner=owner,
        )
        numbers.append(d.number)
    h.store.dispose()
    return numbers


class Procs:
    """The agent and worker processes, started, SIGKILLed and restarted by name."""

    def __init__(self, workdir: Path, env: dict[str, str], plan: Path, p: Params) -> None:
        self.workdir, self.env, self.plan, self.p = workdir, env, plan, p
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: list[tuple[float, int]] = []  # worker (monotonic start, pid)
        self._worker_runs = 0

    def journal(self, login: str) -> Path:
        return self.workdir / "journals" / f"{login}.jsonl"

    def start_agent(self, login: str, seed: int) -> None:
        err = (self.workdir / "logs" / f"{login}.err").open("ab")
        self.procs[login] = subprocess.Popen(
            [
                sys.executable,
                str(AGENT_SCRIPT),
                "--plan",
                str(self.plan),
                "--login",
                login,
                "--journal",
                str(self.journal(login)),
                "--seed",
                str(seed),
            ],
            env={**self.env, "HELPDESK_AGENT": login},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )

    def start_worker(self) -> None:
        self._worker_runs += 1
        err = (self.workdir / "logs" / f"worker-{self._worker_runs}.err").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "helpdesk_tui", "worker", "--poll", str(self.p.poll)],
            env={**self.env, "HELPDESK_AGENT": "worker"},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        self.procs["worker"] = proc
        self.starts.append((time.monotonic(), proc.pid))

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


class LeaseWatch(threading.Thread):
    """Samples the worker lease so the bench can tell how long each takeover took."""

    def __init__(self, url: str) -> None:
        super().__init__(name="lease-watch", daemon=True)
        self.url = url
        self.samples: list[tuple[float, int | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from helpdesk_tui.desk import lease
        from helpdesk_tui.store.engine import open_store

        store = open_store(self.url, migrate=False)
        try:
            while not self.stop.wait(0.2):
                with contextlib.suppress(Exception):
                    current = lease.read(store)
                    self.samples.append((time.monotonic(), current.pid if current else None))
        finally:
            store.dispose()

    def held_share(self, starts: list[tuple[float, int]], until: float) -> float:
        """The share of the run's samples in which the running worker held the lease."""
        inside = [(t, h) for t, h in self.samples if t <= until]
        held = 0
        for t, holder in inside:
            running = [pid for s, pid in starts if s <= t]
            held += bool(running) and holder == running[-1]
        return held / len(inside) if inside else 0.0

    def takeover(self, start: float, pid: int) -> float | None:
        for t, holder in self.samples:
            if t >= start and holder == pid:
                return t - start
        return None


def run_load(backend: str, p: Params, workdir: Path, pg: Any = None, dovecot: Any = None) -> Result:
    """One full run on `backend` ("sqlite", or "postgres" with a PostgresServer as `pg`).

    A running Dovecot (tests/imap_server.py) may be passed in; else the run starts its own.
    """
    from tests.imap_server import _dovecot_binary, start_dovecot

    t_begin = time.monotonic()
    result = Result(backend, p)
    (workdir / "journals").mkdir(parents=True)
    (workdir / "logs").mkdir()
    own_dovecot = dovecot is None
    if own_dovecot:
        binary = _dovecot_binary()
        if binary is None:
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd)")
        dovecot = start_dovecot(binary)
    smtp, smtp_port, smtp_log = start_smtp(workdir)
    run_id = f"{backend}{os.getpid()}x{int(time.time())}"
    user = dovecot.new_user()
    cfg = workdir / "config.toml"
    cfg.write_text(config_text(dovecot.port, user, smtp_port))
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'desk.sqlite3'}"
    else:
        url = pg.create_database(f"load_{os.getpid()}_{int(time.time())}")
    env = {
        **os.environ,
        "HELPDESK_CONFIG": str(cfg),
        "HELPDESK_DB": url,
        "HELPDESK_DATA_DIR": str(workdir / "data"),
        "LOAD_IMAP_PASSWORD": "pass",
        "PYTHONPATH": str(ROOT),
    }
    procs: Procs | None = None
    appender: Appender | None = None
    watch: LeaseWatch | None = None
    try:
        with environ({k: env[k] for k in ("HELPDESK_CONFIG", "HELPDESK_DB", "HELPDESK_DATA_DIR")}):
            tickets = seed_desk(url, cfg, p)
            baseline = snapshot(url, tickets)
            plan = workdir / "plan.json"
            go = workdir / "go.json"
            plan.write_text(
                json.dumps(
                    {
                        "tickets": tickets,
                        "logins": logins(p.agents),
                        "go": str(go),
                        "think_ms": p.think_ms,
                    }
                )
            )
            procs = Procs(workdir, env, plan, p)
            names = logins(p.agents)
            for i, login in enumerate(names):
                procs.start_agent(login, i)
            wait_ready(procs, names)
            procs.start_worker()
            watch = LeaseWatch(url)
            watch.start()
            appender = Appender(dovecot, user, p.mail_rate, run_id)
            start = time.time() + 0.5
            end = start + p.duration
            # Written whole, then renamed: an agent never reads half a file.
            (workdir / "go.tmp").write_text(json.dumps({"start": start, "end": end}))
            (workdir / "go.tmp").replace(go)
            time.sleep(max(0.0, start - time.time()))
            appender.start()
            chaos(procs, names, p, start, end, result)
            time.sleep(max(0.0, end - time.time()))
            run_over = time.monotonic()
            appender.stop.set()
            appender.join()
            # Agents stop by themselves at `end`; a straggler gets a few seconds, then SIGKILL.
            for login in names:
                try:
                    procs.procs[login].wait(timeout=30)
                except subprocess.TimeoutExpired:
                    procs.kill(login)
            result.lease_held = watch.held_share(procs.starts, run_over)
            result.mails_in_run = count_rows(url, "importedmail")
            result.sent_in_run = len(smtp_log.read_text().splitlines())
            worker = procs.procs["worker"]
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                procs.kill("worker")
            watch.stop.set()
            watch.join()
            result.takeover_s = [watch.takeover(s, pid) for s, pid in procs.starts]
            drain(env, workdir, url)
            result.mails_appended = len(appender.ids)
            if appender.error:
                result.worker_stderr.append(f"appender: {appender.error}")
            check(url, tickets, baseline, procs, appender.ids, smtp_log, result)
            if backend == "sqlite":
                result.integrity = integrity(workdir / "desk.sqlite3")
    finally:
        if procs is not None:
            for proc in procs.procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if appender is not None:
            appender.stop.set()
        if watch is not None:
            watch.stop.set()
        smtp.send_signal(signal.SIGTERM)
        try:
            smtp.wait(timeout=10)
        except subprocess.TimeoutExpired:
            smtp.kill()
        if own_dovecot:
            dovecot.stop()
            shutil.rmtree(dovecot.dir, ignore_errors=True)
    result.elapsed = time.monotonic() - t_begin
    return result


def wait_ready(procs: Procs, names: list[str], timeout: float = 180.0) -> None:
    """Every agent has opened the desk (imports on 2 cores take a while for 20 processes)."""
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for login in list(pending):
            path = procs.journal(login)
            if path.exists() and b'"op":"ready"' in path.read_bytes():
                pending.discard(login)
            elif procs.procs[login].poll() is not None:
                err = (procs.workdir / "logs" / f"{login}.err").read_text()[-2000:]
                raise RuntimeError(f"agent {login} died while starting:\n{err}")
        time.sleep(0.1)  # polling the agents' journals
    if pending:
        raise RuntimeError(f"agents not ready after {timeout:.0f} s: {sorted(pending)}")


def chaos(
    procs: Procs, names: list[str], p: Params, start: float, end: float, result: Result
) -> None:
    """SIGKILL a random agent or the worker at spread-out moments, and restart it at once."""
    if p.kills <= 0:
        return
    rng = random.Random(11)
    span = (end - start) * 0.9
    moments = sorted(start + (end - start) * 0.05 + rng.random() * span for _ in range(p.kills))
    seed = 1000
    for moment in moments:
        time.sleep(max(0.0, moment - time.time()))
        at = f"{time.time() - start:.1f}s"
        if rng.random() < p.worker_kill_share:
            result.kill_log.append(f"{at} worker")
            procs.kill("worker")
            result.worker_kills += 1
            procs.start_worker()
        else:
            login = rng.choice(names)
            result.kill_log.append(f"{at} {login}")
            procs.kill(login)
            result.agent_kills += 1
            seed += 1
            if time.time() < end - 1:
                procs.start_agent(login, seed)


def drain(env: dict[str, str], workdir: Path, url: str) -> None:
    """The real `helpdesk worker --once` until the outbox has nothing due and no mail is new.

    A worker SIGKILLed last still holds the lease until its heartbeat is TTL old; `--once`
    refuses to run beside it, so the drain waits for the takeover like a restarted daemon.
    """
    from helpdesk_tui.desk import lease
    from helpdesk_tui.store.engine import open_store

    deadline = time.monotonic() + lease.TTL + 120
    log = workdir / "logs" / "drain.out"
    while time.monotonic() < deadline:
        done = subprocess.run(
            [sys.executable, "-m", "helpdesk_tui", "worker", "--once"],
            env={**env, "HELPDESK_AGENT": "worker"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        with log.open("a") as out:
            out.write(done.stdout + done.stderr)
        if "not running the duties" in done.stderr:
            time.sleep(1.0)  # waiting for a dead holder's heartbeat to go stale
            continue
        if done.returncode != 0:
            raise RuntimeError(f"worker --once failed: {done.stderr[-2000:]}")
        store = open_store(url, migrate=False)
        try:
            due = scalar(store, "SELECT count(*) FROM outbox WHERE state IN ('queued', 'retry')")
        finally:
            store.dispose()
        if due == 0 and " 0 imported" in done.stdout:
            return
    raise RuntimeError(f"the final drain did not finish; see {log}")


def recover_stale(env: dict[str, str], url: str) -> None:
    """Resend what killed workers left in `sending`, with a clock past the stale-claim age."""
    from helpdesk_tui.desk import outbox
    from helpdesk_tui.desk.session import open_desk
    from helpdesk_tui.worker import Worker

    class Later:
        def now(self) -> datetime:
            return datetime.now(UTC) + outbox.STALE_CLAIM + timedelta(minutes=1)

    with environ({k: env[k] for k in ("HELPDESK_CONFIG", "HELPDESK_DB", "HELPDESK_DATA_DIR")}):
        h = open_desk(db=url, actor="", clock=Later())
        w = Worker(h, parse_processes=1)
        try:
            while w.duty_outbox().sent:
                pass
        finally:
            w.close()
            h.store.dispose()


# ---------------------------------------------------------------------- checks


def count_rows(url: str, table: str) -> int:
    from helpdesk_tui.store.engine import open_store

    store = open_store(url, migrate=False)
    try:
        return int(scalar(store, f"SELECT count(*) FROM {table}"))
    finally:
        store.dispose()


def scalar(store: Any, sql: str, **params: Any) -> Any:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def rows(store: Any, sql: str, **params: Any) -> list[Any]:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


@dataclass(frozen=True)
class Baseline:
    max_event: int
    versions: dict[int, int]


def snapshot(url: str, tickets: list[int]) -> Baseline:
    from helpdesk_tui.store.engine import open_store

    store = open_store(url, migrate=False)
    try:
        versions = {int(t): int(v) for t, v in rows(store, "SELECT id, version FROM ticket")}
        return Baseline(
            int(scalar(store, "SELECT coalesce(max(id), 0) FROM ticketevent")), versions
        )
    finally:
        store.dispose()


def read_journal(path: Path) -> list[dict[str, Any]]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def check(
    url: str,
    tickets: list[int],
    base: Baseline,
    procs: Procs,
    appended: list[str],
    smtp_log: Path,
    r: Result,
) -> None:
    from helpdesk_tui.store.engine import open_store

    store = open_store(url, migrate=False)
    try:
        _check_journals(store, procs, base, r)
        _check_counters(store, tickets, base, r)
        _check_mail(store, appended, r)
        r.stranded = int(scalar(store, "SELECT count(*) FROM outbox WHERE state = 'sending'"))
    finally:
        store.dispose()
    if r.stranded:
        recover_stale(procs.env, url)
    store = open_store(url, migrate=False)
    try:
        _check_smtp(store, smtp_log, r)
    finally:
        store.dispose()
    for err in sorted((procs.workdir / "logs").glob("*.err")):
        text = err.read_text(errors="replace")
        if "Traceback" in text:
            r.crashes.append(f"{err.name}: {text.strip().splitlines()[-1][:200]}")
        for line in text.splitlines():
            if any(w in line.lower() for w in LOCK_WORDS):
                r.worker_stderr.append(f"{err.name}: {line[:200]}")


def _check_journals(store: Any, procs: Procs, base: Baseline, r: Result) -> None:
    agent_ids = {login: int(i) for i, login in rows(store, "SELECT id, login FROM agent")}
    latencies: list[float] = []
    write_latencies: list[float] = []
    done: dict[tuple[str, int, str], int] = collections.Counter()
    base_versions: dict[tuple[int, int], list[str]] = collections.defaultdict(list)
    messages: list[tuple[str, dict[str, Any]]] = []
    for login in agent_ids:
        for e in read_journal(procs.journal(login)):
            out = e.get("out")
            if out is None:
                continue
            if out == "error":
                r.lock_errors += 1
                if len(r.lock_samples) < 8:
                    r.lock_samples.append(f"{login} {e['op']} #{e['t']}: {e.get('why', '')}")
                continue
            r.actions += 1
            latencies.append(float(e["ms"]))
            if e["op"] != "read":
                r.writes += 1
                write_latencies.append(float(e["ms"]))
            if out == "conflict":
                r.conflicts += 1
            elif out == "refused":
                r.refused += 1
            elif out == "ok":
                if e["op"] in ("note", "reply"):
                    messages.append((login, e))
                elif e["op"] != "read":
                    done[(login, int(e["t"]), e["op"])] += 1
                if e.get("exp") is not None:
                    base_versions[(int(e["t"]), int(e["exp"]))].append(f"{login}:{e['op']}")
    r.p50_ms = percentile(latencies, 0.50)
    r.p99_ms = percentile(latencies, 0.99)
    r.write_p99_ms = percentile(write_latencies, 0.99)

    def lost(text: str) -> None:
        r.lost_updates += 1
        if len(r.lost_samples) < 10:
            r.lost_samples.append(text)

    # Two checked actions that both succeeded from the same version: one overwrote the other.
    for (t, v), who in base_versions.items():
        if len(who) > 1:
            lost(f"#{t}: {len(who)} actions succeeded from version {v}: {', '.join(who)}")
    msg_rows = {
        int(i): (int(t), kind, a)
        for i, t, kind, a in rows(store, "SELECT id, ticket_id, kind, author_agent_id FROM message")
    }
    out_msgs = collections.Counter(
        int(m) for (m,) in rows(store, "SELECT message_id FROM outbox WHERE message_id IS NOT NULL")
    )
    for login, e in messages:
        got = msg_rows.get(int(e["msg"]))
        if got != (int(e["t"]), e["op"], agent_ids[login]):
            lost(f"{login} {e['op']} #{e['t']} message {e['msg']}: store has {got}")
        elif e["op"] == "reply" and out_msgs[int(e["msg"])] != 1:
            lost(f"reply {e['msg']} on #{e['t']} has {out_msgs[int(e['msg'])]} outbox rows")
    events = collections.Counter(
        (int(a), int(t), act)
        for t, a, act in rows(
            store,
            "SELECT ticket_id, agent_id, action FROM ticketevent "
            "WHERE id > :base AND agent_id IS NOT NULL AND ticket_id IS NOT NULL",
            base=base.max_event,
        )
    )
    for (login, t, op), n in done.items():
        have = events[(agent_ids[login], t, op)]
        if have < n:
            lost(f"{login} {op} #{t}: journal {n}, store {have} events")


def _check_counters(store: Any, tickets: list[int], base: Baseline, r: Result) -> None:
    def bad(text: str) -> None:
        r.counter_mismatches += 1
        if len(r.counter_samples) < 10:
            r.counter_samples.append(text)

    for t, stored, counted in rows(
        store,
        "SELECT t.id, t.message_count, (SELECT count(*) FROM message m WHERE m.ticket_id = t.id) "
        "FROM ticket t",
    ):
        if stored != counted:
            bad(f"#{t}: message_count {stored}, {counted} messages")
    shared = set(tickets)
    for t, stored, counted in rows(
        store,
        "SELECT t.id, t.reply_count, (SELECT count(*) FROM message m WHERE m.ticket_id = t.id "
        "AND m.kind = 'reply') FROM ticket t",
    ):
        if t in shared and stored != counted:
            bad(f"#{t}: reply_count {stored}, {counted} replies")
    # On the shared tickets every version bump writes exactly one event (no mail reaches them);
    # the owner's first read is an event without a bump (it conflicts with nobody's action).
    new_events = collections.Counter(
        int(t)
        for (t,) in rows(
            store,
            "SELECT ticket_id FROM ticketevent WHERE id > :base AND ticket_id IS NOT NULL"
            " AND action != 'read'",
            base=base.max_event,
        )
    )
    for t, version in rows(store, "SELECT id, version FROM ticket"):
        if t in shared and version - base.versions[t] != new_events[t]:
            bad(f"#{t}: version +{version - base.versions[t]}, {new_events[t]} events")
    for m, n in rows(
        store,
        "SELECT m.id, (SELECT count(*) FROM outbox o WHERE o.message_id = m.id) FROM message m "
        "WHERE m.kind IN ('reply', 'ack')",
    ):
        if n != 1:
            bad(f"message {m}: {n} outbox rows")


def _bare(mid: str) -> str:
    return mid.strip().strip("<>")


def _check_mail(store: Any, appended: list[str], r: Result) -> None:
    imported = collections.Counter(
        _bare(m) for (m,) in rows(store, "SELECT rfc_message_id FROM importedmail")
    )
    incoming = collections.Counter(
        _bare(m) for (m,) in rows(store, "SELECT rfc_message_id FROM message WHERE direction='in'")
    )
    for mid in appended:
        n = min(imported[mid], incoming[mid]) if imported[mid] == incoming[mid] else -1
        if n == 1:
            r.mails_ingested += 1
        elif n == 0:
            r.mails_missing += 1
        else:
            r.mails_doubled += 1


def _check_smtp(store: Any, smtp_log: Path, r: Result) -> None:
    received = collections.Counter(
        line.strip() for line in smtp_log.read_text().splitlines() if line.strip()
    )
    states = rows(store, "SELECT rfc_message_id, state FROM outbox")
    r.outbox_rows = len(states)
    r.mails_sent = len(received)
    r.duplicates = sum(n - 1 for n in received.values())
    for mid, state in states:
        if state == "sent" and received[_bare(mid)] == 0:
            r.sent_not_received += 1
        if state != "sent":
            r.unsent += 1


def integrity(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return "; ".join(str(row[0]) for row in con.execute("PRAGMA integrity_check").fetchall())
    finally:
        con.close()


# ---------------------------------------------------------------------- report

COLUMNS = (
    "backend",
    "actions/s",
    "p50 ms",
    "p99 ms",
    "conflicts",
    "lock errors",
    "lost updates",
    "kills",
    "mails ingested",
    "mails sent",
    "duplicates",
    "integrity",
)


def table(results: list[Result]) -> str:
    lines = [" | ".join(COLUMNS)]
    for r in results:
        cells = (
            r.backend,
            f"{r.actions_per_s:.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.conflicts),
            str(r.lock_errors),
            str(r.lost_updates + r.counter_mismatches),
            f"{r.kills} ({r.worker_kills} worker)",
            f"{r.mails_ingested}/{r.mails_appended}",
            f"{r.mails_sent}/{r.outbox_rows}",
            str(r.duplicates),
            r.integrity,
        )
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def details(r: Result) -> str:
    take = ", ".join("never" if t is None else f"{t:.1f} s" for t in r.takeover_s)
    out = [
        f"[{r.backend}] {r.params.agents} agents, {r.params.duration:.0f} s, {r.actions} actions "
        f"({r.writes} writes, write p99 {r.write_p99_ms:.1f} ms), {r.refused} refused by the desk",
        f"  lost updates {r.lost_updates}, counter mismatches {r.counter_mismatches}, "
        f"mails missing {r.mails_missing}, doubled {r.mails_doubled}",
        f"  outbox: {r.outbox_rows} rows, {r.mails_sent} distinct received, {r.duplicates} "
        f"duplicates, {r.stranded} left in 'sending' by kills (resent after the stale-claim "
        f"age), {r.unsent} not sent at the end, {r.sent_not_received} marked sent but never "
        "received",
        f"  worker lease after each worker start: {take}; held {r.lease_held:.0%} of the run",
        f"  during the run (before the final drain): {r.mails_in_run} mails imported, "
        f"{r.sent_in_run} received by SMTP",
        f"  kills: {', '.join(r.kill_log)}",
        f"  whole run incl. setup and checks: {r.elapsed:.0f} s",
    ]
    out += [f"  CRASH {s}" for s in r.crashes]
    out += [f"  LOCK ERROR {s}" for s in r.lock_samples]
    out += [f"  LOST {s}" for s in r.lost_samples]
    out += [f"  COUNTER {s}" for s in r.counter_samples]
    out += [f"  worker log: {s}" for s in r.worker_stderr[:10]]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--smtp-sink", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--smtp-log", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smtp_sink:
        smtp_sink(args.smtp_sink, args.smtp_log)
        return 0
    p = Params.from_env()
    results: list[Result] = []
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    root = Path(tempfile.mkdtemp(prefix="helpdesk-bench-load-"))
    root.chmod(0o755)
    pg = None
    try:
        for backend in backends:
            if backend == "postgres":
                try:
                    from tests.pg_server import start_postgres

                    pg = start_postgres(root / "pg")
                except Exception as exc:  # noqa: BLE001 - report, keep the SQLite figures
                    print(f"postgres: cannot start ({type(exc).__name__}: {exc})")
                    continue
            try:
                r = run_load(backend, p, root / backend, pg)
            except Exception as exc:  # noqa: BLE001 - one backend failing leaves the other's
                print(f"{backend}: the run failed: {type(exc).__name__}: {exc}")
                continue
            results.append(r)
            print(details(r), flush=True)
    finally:
        if pg is not None:
            pg.stop()
        if args.keep:
            print(f"work folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(table(results))
    return 0 if results and all(r.ok() for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
