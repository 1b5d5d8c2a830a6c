"""The two seed scenarios walked through the `helpdesk` command, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


class Cli:
    """Runs `python -m helpdesk_tui` in a subprocess with a private store and config."""

    def __init__(self, tmp_path: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
        self.env.update(
            HELPDESK_DB=str(tmp_path / "desk.sqlite3"),
            HELPDESK_CONFIG=str(tmp_path / "config.toml"),
            HELPDESK_DATA_DIR=str(tmp_path / "data"),
            # Never the machine's /etc/helpdesk-tui/config.toml; a test may write this one.
            HELPDESK_SYSTEM_CONFIG=str(tmp_path / "etc" / "config.toml"),
        )
        (tmp_path / "config.toml").write_text(
            '[desk]\nname = "Test Desk"\ntimezone = "Europe/Oslo"\ndomain = "desk.example"\n'
        )

    def run(
        self, *args: str, agent: str = "alice", stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, HELPDESK_AGENT=agent)
        return subprocess.run(
            [sys.executable, "-m", "helpdesk_tui", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str, agent: str = "alice", stdin: str | None = None) -> str:
        res = self.run(*args, agent=agent, stdin=stdin)
        assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res.stdout

    def json(self, *args: str, agent: str = "alice") -> Any:
        return json.loads(self.ok(*args, "--json", agent=agent))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    c = Cli(tmp_path)
    c.ok("agent", "add", "alice", "--name", "Alice Able", "--email", "alice@desk.example")
    c.ok("agent", "add", "bob", "--name", "Bob Baker", "--email", "bob@desk.example")
    return c


def test_phone_request_ask_colleague_reply_close(cli: Cli) -> None:
    t = cli.json(
        "ticket",
        "new",
        "--customer",
        "carla@customer.example",
        "--name",
        "Carla",
        "--subject",
        "Printer jams",
        "--body",
        "Every morning.",
        "--priority",
        "High",
    )
    n = str(t["number"])
    assert t["status"] == "open" and t["priority"] == "High" and t["deadline"]
    out = cli.ok(
        "ticket", "ask", n, "--agent", "bob", "--body", "-", stdin="Seen this model before?"
    )
    assert "asked bob" in out
    shown = cli.json("ticket", "show", n, agent="bob")
    assert shown["owner"] == "bob" and shown["followers"] == ["alice"]
    assert shown["messages"][-1]["visibility"] == "internal"
    cli.ok("ticket", "show", n, "--mark-read", agent="bob")
    assert cli.json("ticket", "show", n)["read_status"] == "green"
    cli.ok("ticket", "reply", n, "--body", "Open the back tray and pull the lever.", agent="bob")
    closed = cli.json("ticket", "close", n, agent="bob")
    assert closed["base_status"] == "closed"
    final = cli.json("ticket", "show", n)
    assert final["replied_at"] is not None and final["reply_count"] == 1
    assert [m["direction"] for m in final["messages"]] == ["in", "out", "out"]
    assert [m["visibility"] for m in final["messages"]] == ["external", "internal", "external"]
    assert set(final["time_spent"]) >= {"queue", "internal", "external"}
    outbox = cli.json("outbox", "list")
    assert [o["state"] for o in outbox] == ["queued"]
    assert {
        "id",
        "ticket",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "message_id",
    } <= set(outbox[0])


def test_mail_request_forward_to_supplier_reply_close(cli: Cli) -> None:
    t = cli.json(
        "ticket",
        "new",
        "--customer",
        "dora@customer.example",
        "--subject",
        "Broken toner delivered",
        "--body",
        "Box was crushed.",
    )
    n = str(t["number"])
    cli.ok("ticket", "take", n)
    fwd = cli.json(
        "ticket", "forward", n, "--to", "orders@supplier.example", "--body", "Please replace."
    )
    assert fwd["visibility"] == "internal" and fwd["to"] == ["orders@supplier.example"]
    shown = cli.json("ticket", "show", n)
    assert shown["status"] == "external" and shown["external_parties"] == [
        "orders@supplier.example"
    ]
    cli.ok("ticket", "reply", n, "--body", "A new toner is on its way.")
    cli.ok("ticket", "close", n)
    final = cli.json("ticket", "show", n)
    assert final["base_status"] == "closed"
    assert [m["kind"] for m in final["messages"]] == ["phone", "forward", "reply"]
    states = sorted(o["state"] for o in cli.json("outbox", "list"))
    assert states == ["queued", "queued"]


def test_refusals_have_exit_codes_and_one_line(cli: Cli) -> None:
    res = cli.run("ticket", "show", "42")
    assert res.returncode == 1 and res.stderr.strip() == "helpdesk: no ticket #42"
    res = cli.run("ticket", "list", agent="mallory")
    assert res.returncode == 0  # listing is open to anyone who can read the store
    res = cli.run("ticket", "new", "--customer", "x@y.example", "--subject", "s", agent="mallory")
    assert res.returncode == 1 and "helpdesk agent add mallory" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = cli.run("ticket", "frobnicate")
    assert res.returncode == 2
    n = str(cli.json("ticket", "new", "--customer", "x@y.example", "--subject", "s")["number"])
    res = cli.run("ticket", "merge", n, "--into", n)
    assert res.returncode == 1 and "into itself" in res.stderr
    res = cli.run("ticket", "postpone", n, "--until", "2001-01-01 10:00")
    assert res.returncode == 1 and "into the past" in res.stderr
    cli.ok("ticket", "delete", n)
    res = cli.run("ticket", "reply", n, "--body", "hi")
    assert res.returncode == 1 and "deleted" in res.stderr


def test_postpone_merge_unmerge_and_list(cli: Cli) -> None:
    a = str(cli.json("ticket", "new", "--customer", "a@c.example", "--subject", "A")["number"])
    b = str(cli.json("ticket", "new", "--customer", "b@c.example", "--subject", "B")["number"])
    p = cli.json("ticket", "postpone", a, "--for", "1w")
    assert p["base_status"] == "postponed" and p["activate_at"]
    cli.json("ticket", "postpone", a, "--until", "monday 9:00")
    merged = cli.json("ticket", "merge", b, "--into", a)
    assert merged["number"] == int(a) and merged["merged_from"] == [int(b)]
    cli.ok("ticket", "unmerge", a)
    rows = cli.json("ticket", "list")
    assert sorted(r["number"] for r in rows) == [int(a), int(b)]
    human = cli.ok("ticket", "list")
    assert "2 ticket(s)" in human


def test_list_filters_narrow_a_search(cli: Cli) -> None:
    """--mine, --owner and --status hold whatever the query says about the same field."""

    def new(subject: str, owner: str) -> int:
        t = cli.json(
            "ticket", "new", "--customer", "c@y.example", "--subject", subject, "--owner", owner
        )
        return int(t["number"])

    mine, bobs, later = new("VPN down", "alice"), new("VPN slow", "bob"), new("VPN later", "alice")
    queue = int(
        cli.json("ticket", "new", "--customer", "q@y.example", "--subject", "VPN")["number"]
    )
    cli.ok("ticket", "postpone", str(later), "--for", "1d")

    def found(*args: str) -> list[int]:
        return [r["number"] for r in cli.json("ticket", "list", *args)]

    assert found("--mine", "--search", "vpn owner:bob") == []
    assert found("--mine", "--search", "vpn owner:bob owner:me") == [later, mine]
    assert found("--owner", "bob", "--search", "vpn owner:none") == []
    assert found("--status", "open", "--search", "vpn status:postponed") == []
    assert found("--status", "open", "--search", "vpn status:open status:postponed") == [
        queue,
        bobs,
        mine,
    ]
    assert found("--unassigned", "--search", '"vpn') == [queue]  # an unclosed quote
    # A query that starts with - is a value of --search, not an option of its own.
    assert found("--search", "-owner:alice") == [queue, bobs]
    assert found("--status", "open", "--search", "-owner:bob") == [queue, mine]


def test_hostile_subject_is_inert_in_human_output(cli: Cli) -> None:
    n = str(
        cli.json(
            "ticket",
            "new",
            "--customer",
            "x@y.example",
            "--subject",
            "Hi \x1b]52;c;cHduZWQ=\x07 [bold]x[/] \u202eevil",
        )["number"]
    )
    out = cli.ok("ticket", "show", n)
    assert "\x1b]52" not in out and "\x07" not in out and "\u202e" not in out
    assert "[bold]x[/]" in out


def test_config_init_and_check(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "new.toml"
    cli.ok("config", "init", "--config", str(target))
    assert "ok" in cli.ok("config", "check", "--config", str(target))
    res = cli.run("config", "init", "--config", str(target))
    assert res.returncode == 1 and "exists already" in res.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[desk]\nname = "x"\n\n[smtp]\nhost = "x"\npassword = "secret"\n')
    res = cli.run("config", "check", "--config", str(bad))
    assert res.returncode == 1 and "password" in res.stderr and "bad.toml" in res.stderr


def test_config_init_writes_the_default_file_once(cli: Cli, tmp_path: Path) -> None:
    """Without --config: HELPDESK_CONFIG if set, else the user's config folder."""
    res = cli.run("config", "init")  # HELPDESK_CONFIG names the fixture's file
    assert res.returncode == 1 and "exists already" in res.stderr
    xdg = tmp_path / "xdg"
    del cli.env["HELPDESK_CONFIG"]
    cli.env["XDG_CONFIG_HOME"] = str(xdg)
    target = xdg / "helpdesk-tui" / "config.toml"
    assert f"wrote {target}" in cli.ok("config", "init")
    assert "note:" not in cli.ok("config", "init", "--force")
    assert f"{target}: ok" in cli.ok("config", "check")
    res = cli.run("config", "init")
    assert res.returncode == 1 and "--force" in res.stderr
    target.unlink()
    system = Path(cli.env["HELPDESK_SYSTEM_CONFIG"])
    system.parent.mkdir()
    system.write_text('[store]\nurl = "/srv/helpdesk/helpdesk.sqlite3"\n')
    out = cli.ok("config", "init")
    assert f"comes before {system}" in out and "[store] url" in out


def test_ticket_timeline_and_what_ifs(cli: Cli) -> None:
    """The real clock runs here, so only the shape and the order of the levels are checked."""
    t = cli.json(
        "ticket", "new", "--customer", "c@y.example", "--subject", "Slow", "--owner", "bob"
    )
    n = str(t["number"])
    assert t["escalation"]["running"] is True and t["escalation"]["alert_level"] == 0
    shown = cli.json("ticket", "show", n)
    upcoming = shown["escalation"]["upcoming"]
    assert [(lv["priority"], lv["alert_level"]) for lv in upcoming][:2] == [
        ("Normal", 1),
        ("Normal", 2),
    ]
    assert shown["time_to_first_reply"] == {"seconds": None, "working_seconds": None}
    assert set(shown["time_spent"]) >= {"queue", "queue_working"}
    tl = cli.json("ticket", "timeline", n)
    assert tl["levels"] == upcoming and tl["owner"] == "bob"
    assert [lv["at"] for lv in tl["levels"]] == sorted(lv["at"] for lv in tl["levels"])
    high = cli.json("ticket", "timeline", n, "--if-priority", "High", "--if-assign", "alice")
    assert high["assuming"] == ["priority High", "assigned to alice"]
    assert high["levels"][0]["priority"] == "High"
    later = cli.json("ticket", "timeline", n, "--if-postpone", "1w")
    assert later["levels"][0]["at"] > tl["levels"][0]["at"]
    human = cli.ok("ticket", "timeline", n, "--if-postpone", "2d")
    assert "assuming postponed until" in human and "notify_owner" in human
    res = cli.run("ticket", "timeline", n, "--if-postpone", "soon")
    assert res.returncode == 1 and "not a length of time" in res.stderr


def test_mailbox_explain_says_why(cli: Cli) -> None:
    data = Path(__file__).parent / "data"
    ooo = sorted(data.glob("ooo-*.eml"))[0]
    res = cli.run("mailbox", "explain", str(ooo), "--json")
    assert res.returncode == 0, res.stderr
    verdict = json.loads(res.stdout)
    assert verdict["acknowledge"] is False and verdict["reason"]
    plain = cli.ok("mailbox", "explain", str(data / "customer-plain.eml"))
    assert "would be acknowledged" in plain
