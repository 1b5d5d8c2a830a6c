"""Intake benchmark: 10,000 mails from a local Dovecot into a fresh store, next to mbsync.

Run: .venv/bin/python tests/perf/bench_intake.py [--messages 10000] [--runs 2]
Prints messages per second for our sync (fetch, parse, thread, index, commit), for mbsync
pulling the same mailbox to a Maildir, their ratio, and the rate of a 10,000-message mbox import.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.imap_server import _dovecot_binary, start_dovecot  # noqa: E402

WORDS = [
    "printer",
    "invoice",
    "password",
    "reset",
    "delivery",
    "delayed",
    "vpn",
    "access",
    "laptop",
    "screen",
    "broken",
    "order",
    "refund",
    "account",
    "locked",
    "email",
    "not",
    "arriving",
    "license",
    "renewal",
    "meeting",
    "room",
    "booking",
]


def support_mail(i: int) -> bytes:
    """Synthetic support mail of realistic size: a few paragraphs, a quoted part now and then."""
    m = EmailMessage()
    m["From"] = f"Customer {i % 3000} <customer{i % 3000}@example.com>"
    m["To"] = "support@desk.example"
    m["Subject"] = f"{WORDS[i % len(WORDS)].title()} problem {i}"
    m["Message-ID"] = f"<bench{i}@example.com>"
    m["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    body = "\n\n".join(
        " ".join(WORDS[(i + j * 7 + k) % len(WORDS)] for k in range(40)) for j in range(5)
    )
    if i % 4 == 0:
        body += "\n\nOn Monday, Support wrote:\n" + "\n".join("> " + w for w in WORDS)
    m.set_content(body)
    return m.as_bytes()


def children_cpu() -> float:
    """User + system seconds of finished child processes (with their worker pools)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def compare(messages: int, port: int, user: str, work: Path, base_env: dict[str, str]) -> None:
    """Our sync into a fresh store, then mbsync into a fresh Maildir: rates and their ratio."""
    work.mkdir()
    env = dict(
        base_env, HELPDESK_DB=str(work / "desk.sqlite3"), HELPDESK_DATA_DIR=str(work / "data")
    )
    # schema and config first, outside the timed part
    subprocess.run(
        [sys.executable, "-m", "helpdesk_tui", "mailbox", "status"],
        env=env,
        check=True,
        capture_output=True,
    )
    cpu, t = children_cpu(), time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "helpdesk_tui", "worker", "--once"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    ours = time.perf_counter() - t
    ours_cpu = children_cpu() - cpu
    print(out.stdout.strip())

    mbsync_rate, mb_cpu = None, 0.0
    if shutil.which("mbsync"):
        maildir = work / "maildir"
        maildir.mkdir()
        rc = work / "mbsyncrc"
        rc.write_text(
            f"IMAPAccount bench\nHost 127.0.0.1\nPort {port}\nUser {user}\nPass pass\n"
            "SSLType None\nAuthMechs LOGIN\n\nIMAPStore remote\nAccount bench\n\n"
            f"MaildirStore local\nPath {maildir}/\nInbox {maildir}/INBOX\n\n"
            "Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n"
            "Sync Pull\nSyncState *\n"
        )
        cpu, t = children_cpu(), time.perf_counter()
        subprocess.run(["mbsync", "-c", str(rc), "-a", "-q"], check=True, capture_output=True)
        mb_seconds = time.perf_counter() - t
        mb_cpu = children_cpu() - cpu
        mbsync_rate = rate(messages, mb_seconds)
    else:
        print("mbsync not installed (apt-get install isync): no comparison")

    ours_rate = rate(messages, ours)
    print(
        f"helpdesk IMAP sync: {messages} mails in {ours:.2f} s = {ours_rate:.0f} msg/s "
        f"(CPU {ours_cpu:.1f} s, parse pool included; Dovecot not counted)"
    )
    if mbsync_rate:
        print(f"mbsync pull:        {mbsync_rate:.0f} msg/s (CPU {mb_cpu:.1f} s)")
        print(f"ratio (ours / mbsync): {ours_rate / mbsync_rate:.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    # The machine is shared and noisy: repeat the pair and compare ratios within a run.
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    binary = _dovecot_binary()
    if binary is None:
        print("dovecot is not installed; apt-get install dovecot-imapd")
        return 1
    work = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    server = start_dovecot(binary)
    try:
        user = server.new_user()
        mails = [support_mail(i) for i in range(args.messages)]
        t = time.perf_counter()
        server.append(user, mails)
        print(f"seeded {len(mails)} mails in {time.perf_counter() - t:.1f} s")

        cfg = work / "config.toml"
        cfg.write_text(
            f"""
[desk]
name = "Bench"
timezone = "UTC"
domain = "desk.example"

[[mailbox]]
name = "support"
address = "support@desk.example"
host = "127.0.0.1"
port = {server.port}
security = "plain"
username = "{user}"
password_env = "BENCH_IMAP_PASSWORD"
acknowledge_template = "acknowledgement"
"""
        )
        env = dict(
            os.environ,
            BENCH_IMAP_PASSWORD="pass",
            HELPDESK_CONFIG=str(cfg),
            HELPDESK_AGENT="bench",
        )
        for run in range(1, args.runs + 1):
            if args.runs > 1:
                print(f"-- run {run} of {args.runs}")
            compare(args.messages, server.port, user, work / f"run{run}", env)

        box_path = work / "archive.mbox"
        box = mailbox.mbox(str(box_path))
        for raw in mails:
            box.add(raw)
        box.close()
        env2 = dict(
            env, HELPDESK_DB=str(work / "mbox.sqlite3"), HELPDESK_DATA_DIR=str(work / "data")
        )
        subprocess.run(
            [sys.executable, "-m", "helpdesk_tui", "mailbox", "status"],
            env=env2,
            check=True,
            capture_output=True,
        )
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "helpdesk_tui", "import", "mbox", str(box_path)],
            env=env2,
            check=True,
            capture_output=True,
        )
        mbox_seconds = time.perf_counter() - t
        print(
            f"mbox import:        {rate(args.messages, mbox_seconds):.0f} msg/s "
            f"({mbox_seconds:.2f} s)"
        )
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
