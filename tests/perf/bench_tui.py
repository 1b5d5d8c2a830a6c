"""TUI benchmark: first paint, key-to-repaint latency, search and RSS at 1k and 100k tickets.

Run: .venv/bin/python tests/perf/bench_tui.py [--tickets 1000,100000] [--presses 200]

Stores come from fill_demo and are cached under /tmp/helpdesk-bench-tui (100,000 tickets take
about two minutes to make; delete the folder to rebuild). Measured:

- first paint: process start to the first frame that shows ticket rows, for `helpdesk` in a pty
  (120x36), next to an empty Textual app started the same way in the same run (median of 5);
- j/k and open: inside the real app in a pty, from the Key event's timestamp to the end of the
  frame written after it (for open: the frame after the ticket's data arrived); the keys are
  typed one at a time, each after the previous frame;
- search: desk-level search (first 50, newest first) and the app's full view load (count,
  anchors, first page) over 20 queries, common words included;
- peak RSS of the app process (ru_maxrss), after the presses.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time
from fcntl import ioctl
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path("/tmp/helpdesk-bench-tui")
SIZE = (120, 36)
DOT = "●".encode()

QUERIES = [
    "the",
    "please",
    "thanks",
    "regards",
    "printer",
    "vpn",
    "invoice",
    "password reset",
    '"paper jam"',
    "print*",
    "please thanks",
    "printer status:closed",
    "from:example.com",
    "to:helpdesk",
    "subject:invoice",
    "is:unread",
    "is:overdue owner:none",
    "the after:7d",
    "monitor -printer",
    "xylophone",
]


# ---------------------------------------------------------------------------- stores


def store_for(tickets: int) -> Path:
    """A demo store of `tickets` tickets, made once and cached (keyed by the schema head)."""
    sys.path.insert(0, str(ROOT))
    from helpdesk_tui.store.engine import SCHEMA_HEAD

    path = CACHE / f"demo-{tickets}-r{SCHEMA_HEAD}.sqlite3"
    if path.exists():
        return path
    from helpdesk_tui.desk.demo import fill_demo
    from helpdesk_tui.store.engine import open_store

    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    for old in CACHE.glob(tmp.name + "*"):
        old.unlink()
    started = time.perf_counter()
    store = open_store(f"sqlite:///{tmp}")
    summary = fill_demo(store, tickets=tickets)
    store.checkpoint()
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.dispose()
    tmp.rename(path)
    print(
        f"made {tickets} tickets, {summary.messages} messages in "
        f"{time.perf_counter() - started:.0f} s -> {path}",
        flush=True,
    )
    return path


# ---------------------------------------------------------------------------- pty runs


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update(
        TERM="xterm-256color",
        COLUMNS=str(SIZE[0]),
        LINES=str(SIZE[1]),
        HELPDESK_AGENT="alice",
        HELPDESK_DATA_DIR=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "xdg"),
        XDG_DATA_HOME=str(home / "xdg"),
        PYTHONPATH=str(ROOT),
    )
    return env


class Pty:
    """A child process on a pseudo-terminal of SIZE; read() drains what it wrote."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        os.close(slave)
        self.seen = b""

    def read(self, timeout: float) -> bytes:
        ready, _w, _x = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return b""
        self.seen = (self.seen + data)[-200_000:]
        return data

    def wait_for(self, marker: bytes, timeout: float = 60.0) -> float:
        """Seconds from process start until `marker` appeared in the output."""
        deadline = time.perf_counter() + timeout
        while marker not in self.seen:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no {marker!r} within {timeout} s: {self.seen[-400:]!r}")
            self.read(0.05)
        return time.perf_counter() - self.started

    def settle(self, quiet: float, first: float = 2.0) -> None:
        """Wait for output, then until the child has been quiet for `quiet` seconds."""
        if not self.read(first):
            return
        while self.read(quiet):
            pass

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


def first_paint(db: Path, home: Path, runs: int = 5) -> tuple[float, float, float]:
    """Median seconds: the empty app's first frame, helpdesk's first frame, its first rows."""
    env = _env(home)
    empty_argv = [sys.executable, __file__, "--child", "empty"]
    app_argv = [sys.executable, "-m", "helpdesk_tui", "--db", str(db)]
    empties: list[float] = []
    frames: list[float] = []
    rows: list[float] = []
    for _ in range(runs):
        p = Pty(empty_argv, env)
        try:
            empties.append(p.wait_for(b"EMPTY-APP"))
        finally:
            p.close()
        p = Pty(app_argv, env)
        try:
            frames.append(p.wait_for(b"helpdesk"))  # the top bar: the first frame
            rows.append(p.wait_for(DOT))  # a ticket row: the list with data
        finally:
            p.close()
    return statistics.median(empties), statistics.median(frames), statistics.median(rows)


def latencies(db: Path, home: Path, presses: int) -> dict[str, Any]:
    """Key-to-frame latencies measured inside the app, and its peak RSS."""
    out = home / "latency.json"
    out.unlink(missing_ok=True)
    p = Pty([sys.executable, __file__, "--child", "app", str(db), str(out)], _env(home))
    try:
        p.wait_for(DOT)
        p.settle(0.3)
        for i in range(presses):
            p.send(b"j" if (i // 20) % 2 == 0 else b"k")
            p.settle(0.02, first=0.5)
        for i in range(presses):
            p.send(b"\r")
            p.settle(0.08, first=1.0)
            p.send(b"q")
            p.settle(0.03, first=0.5)
            p.send(b"j" if (i // 20) % 2 == 0 else b"k")
            p.settle(0.02, first=0.5)
        for key in (b"\x1b", b"q", b"\x11"):  # back from anything, quit, then ctrl+q
            p.settle(0.2, first=0.5)
            if p.proc.poll() is None:
                p.send(key)
        p.proc.wait(20)
    finally:
        p.close()
    result: dict[str, Any] = json.loads(out.read_text())
    return result


# ---------------------------------------------------------------------------- search


def search_times(db: Path) -> dict[str, list[float]]:
    """Milliseconds per query: desk search (first 50) and the app's view load."""
    sys.path.insert(0, str(ROOT))
    from zoneinfo import ZoneInfo

    from helpdesk_tui.clock import SystemClock
    from helpdesk_tui.desk.search import search
    from helpdesk_tui.desk.views import TicketViews, search_view
    from helpdesk_tui.store.engine import open_store

    store = open_store(f"sqlite:///{db}")
    clock, tz = SystemClock(), ZoneInfo("Europe/Oslo")
    for q in QUERIES:  # warm the page cache once, as a running app would be
        search(store, q, login="alice", now=clock.now(), tz=tz, limit=50)
    desk_ms: list[float] = []
    view_ms: list[float] = []
    for q in QUERIES:
        t = time.perf_counter()
        search(store, q, login="alice", now=clock.now(), tz=tz, limit=50)
        desk_ms.append((time.perf_counter() - t) * 1000)
        views = TicketViews(store, "alice", clock=clock, tz=tz)
        view = search_view(q)
        t = time.perf_counter()
        total = views.count(view)
        views.anchors(view, 100) if total > 100 else None
        views.page(view, None, 100)
        view_ms.append((time.perf_counter() - t) * 1000)
        print(f"    {q!r:28} {desk_ms[-1]:7.1f} ms  view {view_ms[-1]:7.1f} ms  ({total})")
    store.dispose()
    return {"desk": desk_ms, "view": view_ms}


# ---------------------------------------------------------------------------- children


def child_empty() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Empty(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("EMPTY-APP")

    Empty().run()


def child_app(db: str, out: str) -> None:
    """The real app, instrumented: Key event time to the end of the frame that follows."""
    import resource

    sys.path.insert(0, str(ROOT))
    from textual import _time, events

    from helpdesk_tui.tui.app import HelpdeskApp
    from helpdesk_tui.tui.screens import detail

    marks: dict[str, list[float]] = {"jk": [], "open": []}
    pending: dict[str, Any] = {"kind": None, "t": 0.0, "ready": False}

    original = detail.DetailScreen.on_detail_loaded

    async def loaded(self: Any, message: Any) -> None:
        await original(self, message)
        pending["ready"] = True

    detail.DetailScreen.on_detail_loaded = loaded  # type: ignore[method-assign]

    class Instrumented(HelpdeskApp):
        async def on_event(self, event: events.Event) -> None:
            if isinstance(event, events.Key) and event.key in ("j", "k", "enter"):
                kind = "jk" if event.key in ("j", "k") else "open"
                pending.update(kind=kind, t=event.time, ready=False)
            await super().on_event(event)

        def _display(self, screen: Any, renderable: Any) -> None:
            super()._display(screen, renderable)
            kind = pending["kind"]
            if renderable is None or kind is None or (kind == "open" and not pending["ready"]):
                return
            marks[kind].append((_time.get_time() - pending["t"]) * 1000)
            pending["kind"] = None

    quiet = os.environ.get("BENCH_QUIET") == "1"  # no live refresh or duties: for diagnosis
    app = Instrumented(db=db, live_interval=3600.0, duty_every=3600.0) if quiet else None
    (app or Instrumented(db=db)).run()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(out).write_text(json.dumps({**marks, "rss_mb": rss_kb / 1024}))


# ---------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", default="1000,100000")
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--child", nargs="*")
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "empty":
            child_empty()
        else:
            child_app(args.child[1], args.child[2])
        return
    home = CACHE / "home"
    (home / "data").mkdir(parents=True, exist_ok=True)
    for tickets in [int(t) for t in args.tickets.split(",")]:
        db = store_for(tickets)
        print(f"\n== {tickets:,} tickets ({db.stat().st_size / 1e6:.0f} MB)", flush=True)
        empty, frame, rows = first_paint(db, home)
        print(
            f"first paint: empty app {empty:.3f} s; helpdesk first frame {frame:.3f} s "
            f"({frame / empty:.2f}x, target <= 1.5x), first ticket rows {rows:.3f} s "
            f"({rows / empty:.2f}x)",
            flush=True,
        )
        lat = latencies(db, home, args.presses)
        for kind, target in (("jk", 16), ("open", 50)):
            v = lat[kind]
            print(
                f"{kind:>4}: n={len(v)} median {statistics.median(v):.1f} ms, "
                f"p95 {pct(v, 0.95):.1f} ms, max {max(v):.1f} ms (target p95 <= {target} ms)",
                flush=True,
            )
        print(f"peak RSS {lat['rss_mb']:.0f} MB (target <= 200 MB)", flush=True)
        print("search (20 queries):", flush=True)
        times = search_times(db)
        for name, v in times.items():
            print(
                f"  {name}: median {statistics.median(v):.1f} ms, p95 {pct(v, 0.95):.1f} ms, "
                f"max {max(v):.1f} ms (target p95 <= 50 ms)",
                flush=True,
            )


if __name__ == "__main__":
    main()
