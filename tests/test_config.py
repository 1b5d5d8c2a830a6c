"""The settings file: loading, defaults, every check naming file and key, and password lookup."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from helpdesk_tui.config import (
    DEFAULT_POLICIES,
    EXAMPLE_CONFIG,
    Config,
    ConfigError,
    ConfigProblem,
    PasswordSource,
    check_config,
    default_config,
    load_config,
    parse_config,
    resolve_password,
)

# The smallest file that checks clean; each case below adds one mistake to it.
BASE = """
[desk]
name = "Test Desk"
timezone = "Europe/Oslo"

[[agent]]
login = "lead"
name = "Lead"

[[category]]
name = "Support"
agents = ["lead"]
default_priority = "Normal"

[[priority]]
name = "Normal"
deadline_minutes = 120
[priority.hours]
mon = ["09:00", "17:00"]
[[priority.level]]
alert_level = 1
minutes = 60
actions = ["notify_owner"]
"""

MAILBOX = """
[[mailbox]]
name = "support"
address = "support@example.com"
host = "127.0.0.1"
password_env = "X_IMAP_PASSWORD"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


def load_error(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [str(p) for p in info.value.problems]


def problems(tmp_path: Path, text: str, known: tuple[str, ...] = ()) -> list[str]:
    return [str(p) for p in check_config(load(tmp_path, text), known)]


# --------------------------------------------------------------------------- the example


def test_example_loads_and_checks_clean(tmp_path: Path) -> None:
    cfg = load(tmp_path, EXAMPLE_CONFIG)
    assert check_config(cfg) == []
    assert cfg.path == tmp_path / "config.toml"
    assert cfg.desk.name == "Example Support"
    assert cfg.desk.domain == "example.com"  # from the first mailbox
    assert str(cfg.tz) == "Europe/Oslo"
    assert [p.name for p in cfg.priorities] == ["Low", "Normal", "High", "Urgent"]
    assert [p.rank for p in cfg.priorities] == [0, 1, 2, 3]
    normal = cfg.priority("Normal")
    assert normal.hours["mon"] == ("09:00", "17:00")
    assert "sat" not in normal.hours
    assert [lv.alert_level for lv in normal.levels] == [1, 2]
    assert cfg.mailboxes[0].password == PasswordSource(command=("pass", "show", "mail/support"))
    assert cfg.smtp is not None
    assert cfg.smtp.password.env == "SUPPORT_SMTP_PASSWORD"
    assert cfg.status("waiting on supplier").counter == "external"


def test_example_has_no_password_and_every_section(tmp_path: Path) -> None:
    assert "password =" not in EXAMPLE_CONFIG
    for section in ("[desk]", "[autoreply]", "[[agent]]", "[[category]]", "[[status]]"):
        assert section in EXAMPLE_CONFIG
    for section in ("[[priority]]", "[priority.hours]", "[priority.on]", "[[priority.level]]"):
        assert section in EXAMPLE_CONFIG
    assert "[[mailbox]]" in EXAMPLE_CONFIG
    assert "[smtp]" in EXAMPLE_CONFIG


# --------------------------------------------------------------------------- defaults


def test_default_config_is_usable() -> None:
    cfg = default_config()
    assert check_config(cfg) == []
    assert cfg.path is None
    assert cfg.desk.name == "Help Desk"
    assert cfg.desk.timezone == "UTC"
    assert cfg.desk.domain == "helpdesk.invalid"
    assert [(p.name, p.rank, p.deadline_minutes) for p in cfg.priorities] == [
        ("Low", 0, 480),
        ("Normal", 1, 120),
        ("High", 2, 60),
        ("Urgent", 3, 30),
    ]
    for p in cfg.priorities:
        assert p.hours == {d: ("09:00", "17:00") for d in ("mon", "tue", "wed", "thu", "fri")}
        assert dict(p.on) == dict(DEFAULT_POLICIES)
    assert cfg.priority("Low").levels == ()
    for name in ("Normal", "High", "Urgent"):
        first, second = cfg.priority(name).levels
        assert (first.alert_level, first.actions) == (1, ("notify_owner",))
        assert (second.alert_level, second.actions) == (2, ("notify_category", "raise_priority"))
        assert second.minutes > first.minutes > 0
    (support,) = cfg.categories
    assert (support.name, support.assign, support.default_priority) == (
        "Support",
        "queue",
        "Normal",
    )
    assert cfg.mailboxes == ()
    assert cfg.smtp is None


def test_default_statuses() -> None:
    got = {
        s.name: (s.base, s.counter, s.reopen_by_mail, s.queue) for s in default_config().statuses
    }
    assert got == {
        "open": ("active", "queue", True, True),
        "internal": ("active", "internal", True, False),
        "external": ("active", "external", True, False),
        "postponed": ("postponed", "none", True, False),
        "closed": ("closed", "none", True, False),
        "deleted": ("deleted", "none", False, False),
        "merged": ("merged", "none", False, False),
    }


def test_no_path_means_defaults_but_a_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    assert load_config(None) == default_config()
    missing = tmp_path / "nope.toml"
    with pytest.raises(
        ConfigError, match=re.escape(f"{missing}: no such file; `helpdesk config init`")
    ):
        load_config(missing)


def test_empty_file_gives_the_defaults_with_its_path(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")
    assert cfg.path == tmp_path / "config.toml"
    assert cfg.priorities == default_config().priorities
    assert cfg.categories == default_config().categories
    assert check_config(cfg) == []


def test_priority_defaults_rank_and_policies(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """
        [[priority]]
        name = "A"
        [[priority]]
        name = "B"
        rank = 7
        [priority.on]
        read = "stop"
        """,
    )
    a, b = cfg.priorities
    assert (a.rank, b.rank) == (0, 7)
    assert a.on == DEFAULT_POLICIES
    assert b.on == {**DEFAULT_POLICIES, "read": "stop"}
    assert a.hours == {}
    assert a.deadline_minutes == 0


def test_statuses_override_builtins_by_name_and_add_new_ones(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """
        [[status]]
        name = "closed"
        reopen_by_mail = false
        [[status]]
        name = "waiting on supplier"
        base = "active"
        counter = "external"
        """,
    )
    names = [s.name for s in cfg.statuses]
    assert names[:7] == ["open", "internal", "external", "postponed", "closed", "deleted", "merged"]
    assert names[7:] == ["waiting on supplier"]
    closed = cfg.status("closed")
    assert (closed.base, closed.counter, closed.reopen_by_mail) == ("closed", "none", False)
    assert check_config(cfg) == []


def test_domain_defaults_to_first_mailbox_else_invalid(tmp_path: Path) -> None:
    assert load(tmp_path, MAILBOX).desk.domain == "example.com"
    assert load(tmp_path, BASE).desk.domain == "helpdesk.invalid"
    assert load(tmp_path, '[desk]\ndomain = "mail.example.org"\n' + MAILBOX).desk.domain == (
        "mail.example.org"
    )


def test_mailbox_defaults(tmp_path: Path) -> None:
    (m,) = load(tmp_path, MAILBOX).mailboxes
    assert (m.port, m.security, m.username, m.folder) == (993, "imaps", m.address, "INBOX")
    assert (m.after_import, m.poll_seconds, m.cafile, m.move_to) == ("leave", 60, "", None)
    plain = load(tmp_path, MAILBOX + 'security = "plain"\nafter_import = "move:Done"\n')
    assert (plain.mailboxes[0].port, plain.mailboxes[0].move_to) == (143, "Done")


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[desk]\ntemplates = "tpl"\n'
        + MAILBOX
        + 'cafile = "certs/ca.pem"\n[smtp]\nhost = "h"\ncafile = "/abs/ca.pem"\n',
    )
    assert cfg.desk.templates_dir == tmp_path / "tpl"
    assert cfg.mailboxes[0].cafile == str(tmp_path / "certs" / "ca.pem")
    assert cfg.smtp is not None
    assert cfg.smtp.cafile == "/abs/ca.pem"
    assert (cfg.smtp.port, cfg.smtp.security, cfg.smtp.timeout) == (587, "starttls", 30)


def test_lookup_of_unknown_names_says_what_is_known() -> None:
    with pytest.raises(
        KeyError, match=r"no priority named 'Nope' \(known: Low, Normal, High, Urgent\)"
    ):
        default_config().priority("Nope")


# --------------------------------------------------------------------------- load errors


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (msg,) = load_error(tmp_path, '[desk]\nname = "ok"\ntimezone = \n')
    assert msg.startswith(f"{tmp_path / 'config.toml'}: line 3: not valid TOML")


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[desk]\nname = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[desk]\nname = 3\n", "desk.name: expected a string, got a number (3)"),
        ('[desk]\nbell = "yes"\n', "desk.bell: expected true or false, got a string ('yes')"),
        (MAILBOX + 'port = "993"\n', "mailbox[1].port: expected an integer, got a string"),
        (MAILBOX + "port = true\n", "mailbox[1].port: expected an integer, got a boolean"),
        ("[[category]]\nname = 'x'\nagents = 'bob'\n", "category[1].agents: expected an array"),
        ("desk = 1\n", "desk: expected a table [desk], got a number"),
        ("[mailbox]\nname = 'x'\n", "mailbox: expected tables [[mailbox]], got a table"),
        ('[desk]\nnmae = "x"\n', "desk.nmae: unknown key; did you mean 'name'?"),
        ("[wat]\n", "wat: unknown key"),
        ("[[mailbox]]\nname = 'x'\nhost = 'h'\n", "mailbox[1].address: missing; expected a string"),
        ("[[priority]]\nrank = 1\n", "priority[1].name: missing"),
        (
            "[[priority]]\nname = 'P'\n[[priority.level]]\nactions = []\n",
            "priority[1].level[1].minutes: missing",
        ),
        ("[[status]]\nname = 'new one'\n", "status[1].base: missing"),
        (
            "[[priority]]\nname = 'P'\n[priority.hours]\nmon = '09:00-17:00'\n",
            'priority[1].hours.mon: expected ["HH:MM", "HH:MM"]',
        ),
        (
            "[[priority]]\nname = 'P'\n[priority.on]\nopened = 'stop'\n",
            "priority[1].on.opened: unknown key",
        ),
    ],
)
def test_type_errors_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    messages = load_error(tmp_path, text)
    prefix = f"{tmp_path / 'config.toml'}: "
    assert any(m.startswith(prefix) and expected in m for m in messages), messages


def test_all_load_errors_are_reported_at_once(tmp_path: Path) -> None:
    messages = load_error(tmp_path, '[desk]\nname = 1\ntimezone = 2\n[smtp]\nport = "x"\n')
    keys = [m.split(": ")[1] for m in messages]
    assert keys == ["desk.name", "desk.timezone", "smtp.host", "smtp.port"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (MAILBOX + 'password = "hunter2"\n', "mailbox[1].password"),
        ('[smtp]\nhost = "h"\npassword = "hunter2"\n', "smtp.password"),
        ('password = "hunter2"\n', "password"),
        ("[desk]\n[desk.x]\npassword = 'hunter2'\n", "desk.x.password"),
    ],
)
def test_a_password_in_the_file_is_refused(tmp_path: Path, text: str, key: str) -> None:
    messages = load_error(tmp_path, text)
    mine = [m for m in messages if m.startswith(f"{tmp_path / 'config.toml'}: {key}: ")]
    assert len(mine) == 1, messages
    assert "password_command" in mine[0]
    assert "password_env" in mine[0]
    assert "without a shell" in mine[0]
    assert all("hunter2" not in m for m in messages)


# --------------------------------------------------------------------------- checks

HOURS = "\n[[priority]]\nname = 'P2'\n[priority.hours]\n"
CHECKS: list[tuple[str, str, str]] = [
    (
        "\n[[priority.level]]\nalert_level = 1\nminutes = 90\nactions = ['notify_owner']\n",
        "priority[1].level[2].alert_level",
        "must be greater than 1 (levels must be strictly ascending)",
    ),
    (
        "\n[[priority.level]]\nalert_level = 2\nminutes = 0\nactions = ['notify_owner']\n",
        "priority[1].level[2].minutes",
        "must be greater than 0",
    ),
    (
        "\n[[priority.level]]\nalert_level = 2\nminutes = 9\nactions = ['delegate']\n"
        "delegate_to = 'ghost'\n",
        "priority[1].level[2].delegate_to",
        "unknown agent 'ghost'",
    ),
    (
        "\n[[priority.level]]\nalert_level = 2\nminutes = 9\nactions = ['notify_agents']\n"
        "notify_agents = ['lead', 'ghost']\n",
        "priority[1].level[2].notify_agents[2]",
        "unknown agent 'ghost'",
    ),
    (
        "\n[[priority.level]]\nalert_level = 2\nminutes = 9\nactions = ['delegate']\n",
        "priority[1].level[2].delegate_to",
        "the delegate action needs delegate_to",
    ),
    (
        "\n[[priority.level]]\nalert_level = 2\nminutes = 9\nactions = ['script']\n",
        "priority[1].level[2].script",
        "the script action needs script",
    ),
    (
        "\n[[priority.level]]\nalert_level = 2\nminutes = 9\nactions = ['email_address']\n",
        "priority[1].level[2].email_to",
        "the email_address action needs email_to",
    ),
    (
        "\n[[priority.level]]\nalert_level = 2\nminutes = 9\nactions = ['notify_owner', 'page']\n",
        "priority[1].level[2].actions[2]",
        "unknown action 'page'",
    ),
    (
        "\n[[priority.level]]\nalert_level = 2\nminutes = 9\nactions = []\n",
        "priority[1].level[2].actions",
        "no actions",
    ),
    (HOURS + "tue = ['9:00', '17:00']\n", "priority[2].hours.tue", '"HH:MM"'),
    (HOURS + "tue = ['09:00', '24:30']\n", "priority[2].hours.tue", '"HH:MM"'),
    (
        HOURS + "tue = ['17:00', '09:00']\n",
        "priority[2].hours.tue",
        "start 17:00 must be before stop 09:00",
    ),
    (
        HOURS + "monday = ['09:00', '17:00']\n",
        "priority[2].hours.monday",
        "unknown weekday 'monday'",
    ),
    (
        "\n[priority.on]\nread = 'pause'\n",
        "priority[1].on.read",
        "'pause' is not one of stop | continue | restart",
    ),
    (
        "\n[[priority]]\nname = 'P2'\nholidays = ['25/12', '31/02']\n",
        "priority[2].holidays[2]",
        "'31/02' is not a date",
    ),
    (
        "\n[[priority]]\nname = 'P2'\nholidays = ['2026-12-25']\n",
        "priority[2].holidays[1]",
        "is not a date",
    ),
    (
        "\n[[priority]]\nname = 'P2'\nrank = 0\n",
        "priority[2].rank",
        "rank 0 is taken by 'Normal' already",
    ),
    ("\n[[priority]]\nname = 'Normal'\n", "priority[2].name", "'Normal' is defined twice"),
    (
        "\n[[priority]]\nname = 'P2'\n[[priority.level]]\nminutes = 5\nactions = ['email_owner']\n",
        "priority[2].deadline_minutes",
        "levels never fire without a deadline",
    ),
    (
        "\n[[priority]]\nname = 'P2'\ndeadline_minutes = -5\n",
        "priority[2].deadline_minutes",
        "must be 0",
    ),
    ("\n[[status]]\nname = 'x'\nbase = 'open'\n", "status[1].base", "'open' is not one of active"),
    (
        "\n[[status]]\nname = 'x'\nbase = 'active'\ncounter = 'clock'\n",
        "status[1].counter",
        "'clock' is not one of queue | internal | external | none",
    ),
    (
        "\n[[status]]\nname = 'closed'\nbase = 'active'\n",
        "status[1].base",
        "the built-in status 'closed' must keep base 'closed'",
    ),
    (
        "\n[[status]]\nname = 'x'\nbase = 'active'\n[[status]]\nname = 'x'\nbase = 'closed'\n",
        "status[2].name",
        "'x' is defined twice",
    ),
    (
        "\n[[category]]\nname = 'Sales'\nagents = ['ghost']\n",
        "category[2].agents[1]",
        "unknown agent 'ghost'",
    ),
    ("\n[[category]]\nname = 'Sales'\nparent = 'Nope'\n", "category[2].parent", "'Nope'"),
    (
        "\n[[category]]\nname = 'A'\nparent = 'B'\n[[category]]\nname = 'B'\nparent = 'A'\n",
        "category[2].parent",
        "'A' would be its own ancestor",
    ),
    (
        "\n[[category]]\nname = 'Sales'\ndefault_priority = 'Nope'\n",
        "category[2].default_priority",
        "unknown priority 'Nope'",
    ),
    (
        "\n[[category]]\nname = 'Sales'\nassign = 'random'\n",
        "category[2].assign",
        "'random' is not one of queue | round_robin | fewest_active",
    ),
    ("\n[[agent]]\nlogin = 'bad login'\n", "agent[2].login", "not a valid login name"),
    ("\n[[agent]]\nlogin = 'lead'\n", "agent[2].login", "'lead' is defined twice"),
    (MAILBOX + "category = 'Nope'\n", "mailbox[1].category", "unknown category 'Nope'"),
    (MAILBOX + "priority = 'Nope'\n", "mailbox[1].priority", "unknown priority 'Nope'"),
    (
        MAILBOX + "security = 'tls'\n",
        "mailbox[1].security",
        "'tls' is not one of imaps | starttls | plain",
    ),
    (
        MAILBOX + "after_import = 'delete'\n",
        "mailbox[1].after_import",
        "'delete' is not one of leave | flag | move:Folder",
    ),
    (MAILBOX + "after_import = 'move:'\n", "mailbox[1].after_import", "move:Folder"),
    (MAILBOX + "port = 0\n", "mailbox[1].port", "0 is not a TCP port"),
    (MAILBOX + "poll_seconds = 0\n", "mailbox[1].poll_seconds", "must be greater than 0"),
    (MAILBOX.replace("support@", "support-at-"), "mailbox[1].address", "not an e-mail address"),
    (
        MAILBOX + "password_command = ['pass']\n",
        "mailbox[1].password_env",
        "not both",
    ),
    (
        "\n[[mailbox]]\nname = 'm'\naddress = 'm@example.com'\nhost = 'h'\n",
        "mailbox[1]",
        "needs password_command (run without a shell) or password_env",
    ),
    (MAILBOX + "cafile = 'missing.pem'\n", "mailbox[1].cafile", "no such file"),
    (MAILBOX + MAILBOX, "mailbox[2].name", "'support' is defined twice"),
    (
        "\n[smtp]\nhost = 'h'\nsecurity = 'ssl'\n",
        "smtp.security",
        "'ssl' is not one of smtps | starttls | plain",
    ),
    ("\n[smtp]\nhost = 'h'\nusername = 'u'\n", "smtp", "needs password_command"),
    ("\n[smtp]\nhost = 'h'\ntimeout = 0\n", "smtp.timeout", "must be greater than 0"),
    ("\n[smtp]\nhost = 'h'\npassword_env = 'X'\n", "smtp.username", "no username"),
    ("\n[autoreply]\nper_sender_per_day = -1\n", "autoreply.per_sender_per_day", "0 or more"),
]
# Cases that change [desk] go through their own table, since BASE already has one.
DESK_CHECKS: list[tuple[str, str, str]] = [
    ("timezone = 'Mars/Olympus'", "desk.timezone", "unknown time zone 'Mars/Olympus'"),
    ("timezone = '../../etc/passwd'", "desk.timezone", "unknown time zone"),
    ("cursor_after_action = 'up'", "desk.cursor_after_action", "'up' is not one of next | stay"),
    ("domain = 'not a domain'", "desk.domain", "not a domain name"),
    ("templates = 'no-such-folder'", "desk.templates", "no such folder"),
]


@pytest.mark.parametrize(("extra", "key", "message"), CHECKS)
def test_check_names_file_and_key(tmp_path: Path, extra: str, key: str, message: str) -> None:
    found = problems(tmp_path, BASE + extra)
    prefix = f"{tmp_path / 'config.toml'}: {key}: "
    assert any(p.startswith(prefix) and message in p for p in found), found


@pytest.mark.parametrize(("line", "key", "message"), DESK_CHECKS)
def test_desk_checks(tmp_path: Path, line: str, key: str, message: str) -> None:
    text = BASE.replace('timezone = "Europe/Oslo"', line)
    found = problems(tmp_path, text)
    prefix = f"{tmp_path / 'config.toml'}: {key}: "
    assert any(p.startswith(prefix) and message in p for p in found), found


def test_the_base_file_checks_clean(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE) == []
    assert problems(tmp_path, BASE + MAILBOX) == []


def test_agents_in_the_store_count_as_known(tmp_path: Path) -> None:
    text = BASE + "\n[[category]]\nname = 'Sales'\nagents = ['alice']\n"
    assert len(problems(tmp_path, text)) == 1
    assert problems(tmp_path, text, known=("alice",)) == []


def test_problem_str_and_error_message() -> None:
    p = ConfigProblem("config.toml", "priority[1].level[2].alert_level", "must be greater than 1")
    assert str(p) == "config.toml: priority[1].level[2].alert_level: must be greater than 1"
    assert str(ConfigProblem("config.toml", "", "no such file")) == "config.toml: no such file"
    err = ConfigError([p, p])
    assert str(err) == f"{p}\n{p}"


# --------------------------------------------------------------------------- passwords


def _source(**kw: object) -> PasswordSource:
    return PasswordSource(file="config.toml", key="mailbox[1]", **kw)  # type: ignore[arg-type]


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_TEST_PASSWORD", "s3cret pw")
    assert resolve_password(_source(env="X_TEST_PASSWORD")) == "s3cret pw"


def test_missing_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_TEST_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as info:
        resolve_password(_source(env="X_TEST_PASSWORD"))
    assert str(info.value) == (
        "config.toml: mailbox[1].password_env: the environment variable X_TEST_PASSWORD is not set"
    )
    monkeypatch.setenv("X_TEST_PASSWORD", "")
    with pytest.raises(ConfigError, match="X_TEST_PASSWORD is empty"):
        resolve_password(_source(env="X_TEST_PASSWORD"))


def test_password_from_a_command_without_a_shell() -> None:
    # Only the one trailing newline goes; spaces and $ stay as printed (no shell expansion).
    script = "import sys; sys.stdout.write(' s3cret $HOME \\n')"
    assert resolve_password(_source(command=(sys.executable, "-c", script))) == " s3cret $HOME "
    crlf = "import sys; sys.stdout.write('pw\\r\\n')"
    assert resolve_password(_source(command=(sys.executable, "-c", crlf))) == "pw"


def test_failing_command_says_why_without_the_output() -> None:
    script = (
        "import sys; print('half-a-password'); sys.stderr.write('no such entry\\n'); sys.exit(3)"
    )
    with pytest.raises(ConfigError) as info:
        resolve_password(_source(command=(sys.executable, "-c", script)))
    text = str(info.value)
    assert text.startswith("config.toml: mailbox[1].password_command: ")
    assert "exited with status 3: no such entry" in text
    assert "half-a-password" not in text


def test_command_that_prints_nothing() -> None:
    with pytest.raises(ConfigError, match="printed no password"):
        resolve_password(_source(command=(sys.executable, "-c", "pass")))


def test_command_not_found(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-program")
    with pytest.raises(ConfigError, match=r"mailbox\[1\]\.password_command: command not found"):
        resolve_password(_source(command=(missing,)))


def test_no_source_at_all() -> None:
    with pytest.raises(ConfigError, match="needs password_command"):
        resolve_password(_source())


def test_sources_from_the_file_know_their_key(tmp_path: Path) -> None:
    cfg = load(tmp_path, MAILBOX + "[smtp]\nhost = 'h'\nusername = 'u'\npassword_env = 'NOPE_X'\n")
    assert cfg.smtp is not None
    with pytest.raises(ConfigError) as info:
        resolve_password(cfg.smtp.password)
    assert str(info.value).startswith(f"{tmp_path / 'config.toml'}: smtp.password_env: ")
    with pytest.raises(ConfigError) as info:
        resolve_password(cfg.mailboxes[0].password)
    assert f"{tmp_path / 'config.toml'}: mailbox[1].password_env: " in str(info.value)


def test_parse_config_without_a_file_names_defaults() -> None:
    with pytest.raises(ConfigError, match=r"^<defaults>: desk\.name: expected a string"):
        parse_config("[desk]\nname = 1\n")


# --------------------------------------------------------------------------- keymap


def test_keymap_takes_a_key_or_several_by_binding_id(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[keymap]\n"ticket.close" = "x"\n"list.down" = ["j", "down", "ctrl+n"]\n'
        '"list.up" = "k, up"\n',
    )
    assert dict(cfg.keymap) == {
        "ticket.close": "x",
        "list.down": "j,down,ctrl+n",
        "list.up": "k,up",
    }
    assert default_config().keymap == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '"ticket.clsoe" = "x"',
            "keymap.\"ticket.clsoe\": unknown binding id 'ticket.clsoe'; did you mean "
            "'ticket.close'?",
        ),
        ('"close" = "x"', "keymap.\"close\": unknown binding id 'close'"),
        ('"ticket.close" = 3', 'keymap."ticket.close": expected a key or an array of keys'),
        ('"ticket.close" = "ctrl x"', "keymap.\"ticket.close\": not a key: 'ctrl x'"),
        ('"ticket.close" = "x,"', "keymap.\"ticket.close\": not a key: ''"),
        ('"ticket.close" = []', 'keymap."ticket.close": no key given'),
    ],
)
def test_keymap_mistakes_name_the_binding(tmp_path: Path, text: str, expected: str) -> None:
    (message,) = load_error(tmp_path, f"[keymap]\n{text}\n")
    assert message.startswith(f"{tmp_path / 'config.toml'}: {expected}"), message


def test_the_example_keymap_loads_once_uncommented(tmp_path: Path) -> None:
    assert '# "ticket.close" = "x"' in EXAMPLE_CONFIG
    text = EXAMPLE_CONFIG.replace("# [keymap]", "[keymap]").replace(
        '# "ticket.close"', '"ticket.close"'
    )
    assert dict(load(tmp_path, text).keymap) == {"ticket.close": "x"}


def test_binding_ids_are_the_apps_bindings() -> None:
    """config.py names the ids without loading the UI: the list must match the bindings."""
    import importlib
    import inspect
    import pkgutil

    from textual.binding import Binding
    from textual.dom import DOMNode

    import helpdesk_tui.tui as tui
    from helpdesk_tui.config import BINDING_IDS

    found: set[str] = set()
    for info in pkgutil.walk_packages(tui.__path__, "helpdesk_tui.tui."):
        for _name, cls in inspect.getmembers(importlib.import_module(info.name), inspect.isclass):
            if issubclass(cls, DOMNode) and cls.__module__.startswith("helpdesk_tui."):
                found.update(
                    b.id
                    for b in cls.__dict__.get("BINDINGS", [])
                    if isinstance(b, Binding) and b.id
                )
    missing, stale = found - BINDING_IDS, BINDING_IDS - found
    assert not missing, f"add these to config.BINDING_IDS so [keymap] accepts them: {missing}"
    assert not stale, f"no binding has these ids any more; drop them from BINDING_IDS: {stale}"
