"""One agent process of the load bench: realistic desk actions, each outcome journaled.

Run by tests/perf/bench_load.py as `python tests/perf/load_agent.py --plan P --login L --journal J`
with HELPDESK_CONFIG, HELPDESK_DB, HELPDESK_DATA_DIR and HELPDESK_AGENT set. The agent works as
the TUI does: it opens a ticket (Desk.read), then acts with the version it saw
(expected_version), so a Conflict is a normal outcome. Every action appends one JSON line to
the agent's own journal; a committed action's line is fsync'd after the call returned, so
after a SIGKILL the journal never claims more than the store holds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Weights of the follow-up to opening a ticket, by the ticket's base status; "none" is an agent
# who only looks. Replies and notes dominate a real desk's day.
ACTIVE_MIX = {
    "none": 2.0,
    "note": 2.0,
    "reply": 2.0,
    "take": 1.0,
    "assign": 1.0,
    "close": 1.5,
    "postpone": 1.0,
}
CLOSED_MIX = {"none": 1.0, "reopen": 2.0, "note": 1.0, "reply": 0.5}


class Journal:
    """An append-only file of JSON lines; committed actions are fsync'd one by one."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, entry: dict[str, Any], *, durable: bool) -> None:
        # One write() per line: a SIGKILL cannot leave half a line in the file.
        os.write(self.fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
        if durable:
            os.fsync(self.fd)


def wait_for_go(go: Path) -> tuple[float, float]:
    """The run's start and end (epoch seconds), once the bench has written them."""
    while not go.exists():
        time.sleep(0.02)  # waiting for the other processes to be ready, not timing
    data = json.loads(go.read_text())
    return float(data["start"]), float(data["end"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", required=True, type=Path)
    ap.add_argument("--login", required=True)
    ap.add_argument("--journal", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    plan = json.loads(args.plan.read_text())
    tickets: list[int] = plan["tickets"]
    logins: list[str] = [x for x in plan["logins"] if x != args.login]
    think = float(plan.get("think_ms", 0)) / 1000

    from helpdesk_tui.clock import SystemClock
    from helpdesk_tui.desk.errors import Conflict, DeskError
    from helpdesk_tui.desk.session import open_desk

    journal = Journal(args.journal)
    h = open_desk(actor=args.login, clock=SystemClock())
    desk = h.desk
    me = desk.whoami()
    journal.write({"op": "ready", "pid": os.getpid()}, durable=False)
    start, end = wait_for_go(Path(plan["go"]))
    while time.time() < start:
        time.sleep(0.01)  # the common start line
    rng = random.Random(args.seed * 1_000_003 + os.getpid())
    seq = 0

    def run(op: str, number: int, call: Callable[[], Any], **extra: Any) -> Any:
        """One timed action; the outcome goes to the journal, refusals are not errors."""
        nonlocal seq
        seq += 1
        entry: dict[str, Any] = {"op": op, "t": number, "seq": seq, **extra}
        t0 = time.perf_counter()
        try:
            result = call()
        except Conflict:
            entry.update(out="conflict", ms=(time.perf_counter() - t0) * 1000)
            journal.write(entry, durable=False)
            return None
        except DeskError as exc:
            entry.update(out="refused", ms=(time.perf_counter() - t0) * 1000, why=str(exc)[:120])
            journal.write(entry, durable=False)
            return None
        except Exception as exc:  # noqa: BLE001 - the bench counts it as a lock error
            entry.update(
                out="error",
                ms=(time.perf_counter() - t0) * 1000,
                why=f"{type(exc).__name__}: {exc}",
            )
            journal.write(entry, durable=False)
            return None
        entry.update(out="ok", ms=(time.perf_counter() - t0) * 1000)
        if op in ("note", "reply"):
            entry["msg"] = result.id
        journal.write(entry, durable=op != "read")
        return result

    while time.time() < end:
        number = rng.choice(tickets)
        detail = run("read", number, partial(desk.read, number))
        if detail is None:
            continue
        if think:
            time.sleep(think * rng.random() * 2)  # an agent reading the ticket
        mix = CLOSED_MIX if detail.summary.base_status == "closed" else ACTIVE_MIX
        op = rng.choices(list(mix), weights=list(mix.values()))[0]
        v = detail.version
        if op == "note":
            body = f"note {args.login}/{seq}: checked the logs, waiting for the customer."
            run(op, number, partial(desk.note, number, body))
        elif op == "reply":
            body = f"reply {args.login}/{seq}: please try again now, it should work.\n"
            run(op, number, partial(desk.reply, number, body, expected_version=v), exp=v)
        elif op == "take" and detail.summary.owner != args.login:
            run(op, number, partial(desk.take, number, expected_version=v), exp=v)
        elif op == "assign":
            other = rng.choice([*logins, None])
            run(op, number, partial(desk.assign, number, other, expected_version=v), exp=v)
        elif op == "close":
            run(op, number, partial(desk.close, number, expected_version=v), exp=v)
        elif op == "reopen":
            run(op, number, partial(desk.reopen, number))
        elif op == "postpone":
            # A few seconds ahead, so the worker's wake-up duty takes part in the run.
            until = datetime.now(UTC) + timedelta(seconds=rng.uniform(2, 12))
            run(op, number, partial(desk.postpone, number, until=until, expected_version=v), exp=v)
    journal.write({"op": "done", "me": me.login}, durable=True)
    h.store.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
