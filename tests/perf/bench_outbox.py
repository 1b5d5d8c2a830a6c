"""Outbox benchmark: drain 2,000 queued replies to a local aiosmtpd, next to raw aiosmtplib.

Run: .venv/bin/python tests/perf/bench_outbox.py [--replies 2000]
The SMTP server runs in its own process (aiosmtpd's Sink handler). Prints messages per second
for the worker's outbox duty (claim, build MIME, send, record) and for aiosmtplib sending the
same prebuilt messages over one connection in a plain loop, and the ratio (target >= 0.8x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from helpdesk_tui.clock import SystemClock  # noqa: E402
from helpdesk_tui.desk import outbox  # noqa: E402
from helpdesk_tui.desk.outbox import OutgoingItem  # noqa: E402
from helpdesk_tui.desk.session import DeskHandle, open_desk  # noqa: E402
from helpdesk_tui.worker import Worker  # noqa: E402

ROUNDS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("aiosmtpd did not start")


async def raw_send(port: int, messages: list[tuple[str, list[str], bytes]]) -> float:
    import aiosmtplib

    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
    await client.connect()
    t = time.perf_counter()
    for sender, rcpts, raw in messages:
        await client.sendmail(sender, rcpts, raw)
    elapsed = time.perf_counter() - t
    await client.quit()
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replies", type=int, default=2000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="helpdesk-bench-outbox-"))
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        cfg = work / "config.toml"
        cfg.write_text(
            '[desk]\nname = "Bench"\ntimezone = "UTC"\ndomain = "desk.example"\n\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "plain"\n'
        )
        os.environ.update(
            HELPDESK_CONFIG=str(cfg),
            HELPDESK_DB=str(work / "desk.sqlite3"),
            HELPDESK_DATA_DIR=str(work / "data"),
        )
        h = open_desk(actor="alice", clock=SystemClock())
        h.desk.add_agent("alice", "Alice Able", "alice@desk.example", "Alice, Support")
        t = time.perf_counter()
        tickets = [
            h.desk.register(
                customer_email=f"c{i}@example.com", subject=f"Request {i}", body="Hello"
            ).number
            for i in range(args.replies // 4)
        ]
        for i in range(args.replies):
            h.desk.reply(tickets[i % len(tickets)], f"Reply {i}: try the following steps.\n" * 5)
        print(f"queued {args.replies} replies in {time.perf_counter() - t:.1f} s")

        worker = Worker(h, parse_processes=1)
        ours_times: list[float] = []
        for _ in range(ROUNDS):
            requeue(h)  # untimed: every round drains the same 2,000 queued replies
            t = time.perf_counter()
            sent = 0
            while True:
                report = worker.duty_outbox(limit=500)
                if report.sent + report.retry + report.failed == 0:
                    break
                sent += report.sent
            ours_times.append(time.perf_counter() - t)
            assert sent == args.replies, f"sent {sent}"
        # the same messages, prebuilt outside the timed loop, for the raw rate
        items = outbox_items(h)
        built = [(i.mail_from, list(i.recipients), i.raw or b"") for i in items]
        raw_times = [asyncio.run(raw_send(port, built)) for _ in range(ROUNDS)]
        ours_rate = args.replies / statistics.median(ours_times)
        raw_rate = len(built) / statistics.median(raw_times)
        print(
            f"outbox duty: {args.replies} mails, median of {ROUNDS} rounds "
            f"{statistics.median(ours_times):.2f} s = {ours_rate:.0f} msg/s"
        )
        print(f"raw aiosmtplib loop (same bytes, one connection): {raw_rate:.0f} msg/s")
        print(f"ratio (outbox / raw): {ours_rate / raw_rate:.2f}x")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def requeue(h: DeskHandle) -> None:
    import sqlalchemy as sa

    from helpdesk_tui.store import models as M

    h.store.write(
        lambda s: s.execute(sa.update(M.Outbox).values(state="queued", next_attempt_at=None))
    )


def outbox_items(h: DeskHandle) -> list[OutgoingItem]:
    """Claim every item again (requeued first) to get the exact bytes the duty sent."""
    requeue(h)
    items = []
    while batch := outbox.claim(h.store, h.desk.clock, "bench", limit=1000):
        items.extend(batch)
    return items


if __name__ == "__main__":
    raise SystemExit(main())
