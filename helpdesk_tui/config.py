"""TOML settings -> frozen dataclasses; every error names the file and the key.

Loading (`load_config`) refuses what cannot be read at all: TOML syntax, wrong types, unknown or
missing keys, and passwords written into the file. Checking (`check_config`) finds what reads
fine but makes no sense: unknown names, bad hours, levels out of order. Keys count the entries
of an array of tables from 1, as a person reading the file does: `priority[2].level[1].minutes`.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from helpdesk_tui.keymap import keys_of

T = TypeVar("T")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STATUS_BASES = ("active", "closed", "postponed", "deleted", "merged")
STATUS_COUNTERS = ("queue", "internal", "external", "none")
ASSIGN_METHODS = ("queue", "round_robin", "fewest_active")
POLICY_VALUES = ("stop", "continue", "restart")
# What the escalation clock does on each event, unless a priority says otherwise.
DEFAULT_POLICIES: Mapping[str, str] = {
    "read": "continue",
    "reassigned": "restart",
    "new_info": "restart",
    "closed": "stop",
    "priority_changed": "restart",
    "new": "continue",
}
ACTIONS = (
    "notify_owner",
    "notify_category",
    "notify_agents",
    "email_owner",
    "email_customer",
    "email_address",
    "raise_priority",
    "delegate",
    "script",
)
IMAP_SECURITY = ("imaps", "starttls", "plain")
SMTP_SECURITY = ("smtps", "starttls", "plain")
CURSOR_AFTER_ACTION = ("next", "stay")
DEFAULT_DOMAIN = "helpdesk.invalid"
DEFAULTS_FILE = "<defaults>"
PASSWORD_TIMEOUT = 30

# Every key binding's id in the app (each Binding in tui/ has one), for `[keymap]`. Listed here
# because this module loads no UI; tests/test_config.py checks it against the bindings.
BINDING_IDS = frozenset(
    {
        *("app.alerts", "app.dashboard", "app.help", "app.help_f1", "app.quit", "app.register"),
        *("alerts.back", "alerts.mark_all", "alerts.mark_read", "alerts.open"),
        *("compose.back", "compose.editor", "compose.help", "compose.send", "compose.template"),
        *("conflict.cancel", "conflict.drop", "conflict.reapply"),
        *("dashboard.back", "dashboard.reload"),
        *("detail.back", "detail.down", "detail.save", "detail.unfold", "detail.up"),
        *("dialog.cancel", "dialog.help", "help.close"),
        *("list.batch", "list.down", "list.first", "list.goto", "list.last", "list.open"),
        *("list.page_down", "list.page_up", "list.save_search", "list.search", "list.tag"),
        *("list.tag_pattern", "list.untag_all", "list.up"),
        *("register.back", "register.help", "register.matches", "register.save"),
        *("ticket.ask", "ticket.assign", "ticket.close", "ticket.delete", "ticket.forward"),
        *("ticket.merge", "ticket.note", "ticket.postpone", "ticket.priority", "ticket.reply"),
        *("ticket.reply_all", "ticket.reviewed", "ticket.take", "ticket.undo"),
    }
)
_KEY = re.compile(r"[^\s,]+")  # one key as Textual names it: x, X, ctrl+x, f5, question_mark
_LOGIN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CLOCK = re.compile(r"(\d\d):(\d\d)")
_HOLIDAY = re.compile(r"(\d\d)/(\d\d)(?:/(\d{4}))?")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*")
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the settings, said so an admin can find and fix it."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        if self.key:
            return f"{self.file}: {self.key}: {self.message}"
        return f"{self.file}: {self.message}"


class ConfigError(Exception):
    """The settings cannot be used; `problems` lists every reason found, not only the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


# --------------------------------------------------------------------------- the settings


@dataclass(frozen=True)
class PasswordSource:
    """Where a password comes from: a command run without a shell, or an environment variable."""

    command: tuple[str, ...] = ()
    env: str = ""
    file: str = field(default=DEFAULTS_FILE, compare=False, repr=False)
    key: str = field(default="", compare=False, repr=False)

    @property
    def given(self) -> bool:
        return bool(self.command or self.env)


@dataclass(frozen=True)
class DeskConfig:
    name: str = "Help Desk"
    timezone: str = "UTC"
    domain: str = DEFAULT_DOMAIN  # for our Message-IDs; always filled in after loading
    templates_dir: Path | None = None
    cursor_after_action: str = "next"  # next | stay
    bell: bool = True


@dataclass(frozen=True)
class AutoreplyConfig:
    """Per-sender limits on acknowledgements, so two robots cannot mail each other forever."""

    per_sender_per_day: int = 1
    per_sender_per_3h: int = 10


@dataclass(frozen=True)
class AgentConfig:
    login: str
    name: str = ""
    email: str = ""
    key: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class CategoryConfig:
    name: str
    parent: str = ""
    agents: tuple[str, ...] = ()
    default_priority: str = ""
    assign: str = "queue"  # queue | round_robin | fewest_active
    key: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class StatusConfig:
    name: str
    base: str  # active | closed | postponed | deleted | merged
    counter: str = "none"  # queue | internal | external | none
    reopen_by_mail: bool = True
    queue: bool = False
    key: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class LevelConfig:
    alert_level: int
    minutes: int
    actions: tuple[str, ...] = ()
    notify_agents: tuple[str, ...] = ()
    email_to: str = ""
    delegate_to: str = ""
    script: tuple[str, ...] = ()
    key: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class PriorityConfig:
    name: str
    rank: int
    deadline_minutes: int = 0  # 0: no deadline and no escalation
    # weekday ("mon".."sun") -> ("HH:MM", "HH:MM"); a missing weekday is closed, and no hours
    # at all means the clock runs around the clock.
    hours: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    holidays: tuple[str, ...] = ()  # "dd/mm" every year, or "dd/mm/yyyy" once
    escalate_only_in_hours: bool = False
    on: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_POLICIES))
    levels: tuple[LevelConfig, ...] = ()
    key: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class MailboxConfig:
    name: str
    address: str
    host: str
    port: int = 993
    security: str = "imaps"  # imaps | starttls | plain
    username: str = ""
    password: PasswordSource = field(default_factory=PasswordSource)
    folder: str = "INBOX"
    after_import: str = "leave"  # leave | flag | move:Folder
    category: str = ""
    priority: str = ""
    acknowledge_template: str = ""
    poll_seconds: int = 60
    cafile: str = ""  # absolute (resolved against the config file's folder) or ""
    key: str = field(default="", compare=False, repr=False)

    @property
    def move_to(self) -> str | None:
        """The folder imported mail is moved to, when after_import is move:Folder."""
        if self.after_import.startswith("move:"):
            return self.after_import.removeprefix("move:")
        return None


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # smtps | starttls | plain
    username: str = ""  # empty: send without logging in
    password: PasswordSource = field(default_factory=PasswordSource)
    timeout: int = 30
    cafile: str = ""  # absolute (resolved against the config file's folder) or ""
    key: str = field(default="smtp", compare=False, repr=False)


@dataclass(frozen=True)
class Config:
    desk: DeskConfig = field(default_factory=DeskConfig)
    autoreply: AutoreplyConfig = field(default_factory=AutoreplyConfig)
    agents: tuple[AgentConfig, ...] = ()
    categories: tuple[CategoryConfig, ...] = ()
    statuses: tuple[StatusConfig, ...] = ()
    priorities: tuple[PriorityConfig, ...] = ()
    mailboxes: tuple[MailboxConfig, ...] = ()
    smtp: SmtpConfig | None = None
    store_url: str = ""  # [store] url: a path or SQLAlchemy URL; "" = the user's data folder
    keymap: tuple[tuple[str, str], ...] = ()
    """[keymap]: (binding id, its keys, comma-separated as Textual's set_keymap takes them)."""
    path: Path | None = None

    @property
    def file(self) -> str:
        """How problems name this config: its path, or <defaults>."""
        return str(self.path) if self.path is not None else DEFAULTS_FILE

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.desk.timezone)

    def priority(self, name: str) -> PriorityConfig:
        return _named(self.priorities, name, "priority")

    def category(self, name: str) -> CategoryConfig:
        return _named(self.categories, name, "category")

    def status(self, name: str) -> StatusConfig:
        return _named(self.statuses, name, "status")


class _HasName(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_HasName)


def _named(items: tuple[_N, ...], name: str, kind: str) -> _N:
    for item in items:
        if item.name == name:
            return item
    known = ", ".join(i.name for i in items)
    raise KeyError(f"no {kind} named {name!r} (known: {known})")


# --------------------------------------------------------------------------- defaults

_WEEKDAY_HOURS: Mapping[str, tuple[str, str]] = {
    d: ("09:00", "17:00") for d in ("mon", "tue", "wed", "thu", "fri")
}


def default_statuses() -> tuple[StatusConfig, ...]:
    """The statuses the desk rules rely on; always present, their fields overridable by name."""
    return (
        StatusConfig("open", "active", "queue", reopen_by_mail=True, queue=True),
        StatusConfig("internal", "active", "internal", reopen_by_mail=True),
        StatusConfig("external", "active", "external", reopen_by_mail=True),
        StatusConfig("postponed", "postponed", "none"),
        StatusConfig("closed", "closed", "none", reopen_by_mail=True),
        StatusConfig("deleted", "deleted", "none", reopen_by_mail=False),
        StatusConfig("merged", "merged", "none", reopen_by_mail=False),
    )


def _default_levels(first: int, second: int) -> tuple[LevelConfig, ...]:
    return (
        LevelConfig(1, first, ("notify_owner",)),
        LevelConfig(2, second, ("notify_category", "raise_priority")),
    )


def default_priorities() -> tuple[PriorityConfig, ...]:
    def make(name: str, rank: int, minutes: int, levels: tuple[LevelConfig, ...]) -> PriorityConfig:
        return PriorityConfig(
            name, rank, minutes, hours=dict(_WEEKDAY_HOURS), levels=levels, key=f"priority[{name}]"
        )

    return (
        make("Low", 0, 480, ()),
        make("Normal", 1, 120, _default_levels(60, 120)),
        make("High", 2, 60, _default_levels(30, 60)),
        make("Urgent", 3, 30, _default_levels(15, 30)),
    )


def default_categories() -> tuple[CategoryConfig, ...]:
    return (CategoryConfig("Support", default_priority="Normal", assign="queue"),)


def default_config() -> Config:
    """A desk that works with no settings file: one queue, four priorities, office hours."""
    return Config(
        statuses=default_statuses(),
        priorities=default_priorities(),
        categories=default_categories(),
    )


# --------------------------------------------------------------------------- reading TOML


class _Reader:
    """Typed access to the parsed TOML that records problems instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ConfigProblem] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, key, message))

    def only(self, table: Mapping[str, Any], prefix: str, allowed: Collection[str]) -> None:
        for name in table:
            if name in allowed or name == "password":  # "password" has its own message
                continue
            hint = difflib.get_close_matches(name, list(allowed), n=1)
            extra = f"; did you mean '{hint[0]}'?" if hint else ""
            self.problem(_join(prefix, name), f"unknown key{extra}")

    def get(
        self,
        table: Mapping[str, Any],
        prefix: str,
        name: str,
        check: Callable[[Any], bool],
        expected: str,
        default: T,
        *,
        required: bool = False,
    ) -> T:
        if name not in table:
            if required:
                self.problem(_join(prefix, name), f"missing; expected {expected}")
            return default
        value = table[name]
        if not check(value):
            self.problem(_join(prefix, name), f"expected {expected}, got {_describe(value)}")
            return default
        return value  # type: ignore[no-any-return]

    def text(
        self,
        t: Mapping[str, Any],
        prefix: str,
        name: str,
        default: str = "",
        *,
        required: bool = False,
    ) -> str:
        return self.get(t, prefix, name, _is_str, "a string", default, required=required)

    def integer(
        self, t: Mapping[str, Any], prefix: str, name: str, default: int, *, required: bool = False
    ) -> int:
        return self.get(t, prefix, name, _is_int, "an integer", default, required=required)

    def flag(self, t: Mapping[str, Any], prefix: str, name: str, default: bool) -> bool:
        return self.get(t, prefix, name, _is_bool, "true or false", default)

    def strs(self, t: Mapping[str, Any], prefix: str, name: str) -> tuple[str, ...]:
        return tuple(self.get(t, prefix, name, _is_str_list, "an array of strings", []))

    def table(self, t: Mapping[str, Any], prefix: str, name: str) -> dict[str, Any]:
        return self.get(t, prefix, name, _is_table, f"a table [{_join(prefix, name)}]", {})

    def tables(self, t: Mapping[str, Any], prefix: str, name: str) -> list[dict[str, Any]]:
        return self.get(t, prefix, name, _is_table_list, f"tables [[{_join(prefix, name)}]]", [])

    def password(self, t: Mapping[str, Any], prefix: str) -> PasswordSource:
        command = self.strs(t, prefix, "password_command")
        env = self.text(t, prefix, "password_env")
        return PasswordSource(command=command, env=env, file=self.file, key=prefix)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_table(v: Any) -> bool:
    return isinstance(v, dict)


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, dict) for x in v)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _find_passwords(value: Any, prefix: str, found: list[str]) -> None:
    if isinstance(value, dict):
        for name, inner in value.items():
            key = _join(prefix, name)
            if name == "password":
                found.append(key)
            _find_passwords(inner, key, found)
    elif isinstance(value, list):
        for i, inner in enumerate(value, 1):
            _find_passwords(inner, f"{prefix}[{i}]", found)


def _relative(base: Path | None, value: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base.parent / path
    return path


def _path_text(base: Path | None, value: str) -> str:
    """A path as the mail layer takes it: a string, empty for none."""
    path = _relative(base, value)
    return str(path) if path is not None else ""


_TOP = (
    "desk",
    "autoreply",
    "agent",
    "category",
    "status",
    "priority",
    "mailbox",
    "smtp",
    "store",
    "keymap",
)
_STORE = ("url",)
_DESK = ("name", "timezone", "domain", "templates", "cursor_after_action", "bell")
_AUTOREPLY = ("per_sender_per_day", "per_sender_per_3h")
_AGENT = ("login", "name", "email")
_CATEGORY = ("name", "parent", "agents", "default_priority", "assign")
_STATUS = ("name", "base", "counter", "reopen_by_mail", "queue")
_PRIORITY = (
    "name",
    "rank",
    "deadline_minutes",
    "escalate_only_in_hours",
    "holidays",
    "hours",
    "on",
    "level",
)
_LEVEL = ("alert_level", "minutes", "actions", "notify_agents", "email_to", "delegate_to", "script")
_PASSWORD = ("password_command", "password_env")
_MAILBOX = (
    "name",
    "address",
    "host",
    "port",
    "security",
    "username",
    "folder",
    "after_import",
    "category",
    "priority",
    "acknowledge_template",
    "poll_seconds",
    "cafile",
    *_PASSWORD,
)
_SMTP = ("host", "port", "security", "username", "timeout", "cafile", *_PASSWORD)
_IMAP_PORTS = {"imaps": 993, "starttls": 143, "plain": 143}
_SMTP_PORTS = {"smtps": 465, "starttls": 587, "plain": 25}


def _parse(data: Mapping[str, Any], path: Path | None) -> Config:
    r = _Reader(str(path) if path is not None else DEFAULTS_FILE)
    found: list[str] = []
    _find_passwords(data, "", found)
    for key in found:
        r.problem(
            key,
            'passwords never go in the config file; use password_command = ["pass", "show",'
            ' "..."] (run without a shell) or password_env = "VARIABLE"',
        )
    r.only(data, "", _TOP)

    desk = _desk(r, r.table(data, "", "desk"), path)

    auto_t = r.table(data, "", "autoreply")
    r.only(auto_t, "autoreply", _AUTOREPLY)
    autoreply = AutoreplyConfig(
        per_sender_per_day=r.integer(auto_t, "autoreply", "per_sender_per_day", 1),
        per_sender_per_3h=r.integer(auto_t, "autoreply", "per_sender_per_3h", 10),
    )

    agents = tuple(_agent(r, t, f"agent[{i}]") for i, t in _each(r, data, "agent"))
    categories = tuple(_category(r, t, f"category[{i}]") for i, t in _each(r, data, "category"))
    priorities = tuple(
        _priority(r, t, f"priority[{i}]", i - 1) for i, t in _each(r, data, "priority")
    )
    statuses = _statuses(r, data)
    mailboxes = tuple(_mailbox(r, t, f"mailbox[{i}]", path) for i, t in _each(r, data, "mailbox"))
    if not desk.domain:
        first = mailboxes[0].address if mailboxes else ""
        domain = first.rpartition("@")[2] if "@" in first else DEFAULT_DOMAIN
        desk = replace(desk, domain=domain)

    smtp: SmtpConfig | None = None
    if "smtp" in data:
        smtp = _smtp(r, r.table(data, "", "smtp"), path)

    store_t = r.table(data, "", "store")
    r.only(store_t, "store", _STORE)
    store_url = r.text(store_t, "store", "url")

    keymap = _keymap(r, r.table(data, "", "keymap"))

    if r.problems:
        raise ConfigError(r.problems)
    return Config(
        desk=desk,
        autoreply=autoreply,
        agents=agents,
        categories=categories or default_categories(),
        statuses=statuses,
        priorities=priorities or default_priorities(),
        mailboxes=mailboxes,
        smtp=smtp,
        store_url=_store_url(store_url, path),
        keymap=keymap,
        path=path,
    )


def _store_url(value: str, path: Path | None) -> str:
    """A relative store path is relative to the config file, as every other path here."""
    from helpdesk_tui.paths import anchored_url

    return anchored_url(value, path) if value else ""


def _keymap(r: _Reader, t: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """[keymap]: binding id -> key(s). An unknown id is an error (a typo would else do
    nothing at all); so is a key with spaces or an empty one."""
    out: list[tuple[str, str]] = []
    for ident, value in t.items():
        key = f'keymap."{ident}"'
        if ident not in BINDING_IDS:
            hint = difflib.get_close_matches(ident, sorted(BINDING_IDS), n=1)
            extra = f"; did you mean '{hint[0]}'?" if hint else "; `?` in the app lists the ids"
            r.problem(key, f"unknown binding id '{ident}'{extra}")
            continue
        keys = keys_of(value)
        if keys is None:
            r.problem(key, f"expected a key or an array of keys, got {_describe(value)}")
            continue
        bad = [k for k in keys if not _KEY.fullmatch(k)]
        if bad or not keys:
            r.problem(key, f"not a key: {bad[0]!r}" if bad else "no key given")
            continue
        out.append((ident, ",".join(keys)))
    return tuple(out)


def _each(r: _Reader, data: Mapping[str, Any], name: str) -> list[tuple[int, dict[str, Any]]]:
    return list(enumerate(r.tables(data, "", name), 1))


def _desk(r: _Reader, t: Mapping[str, Any], path: Path | None) -> DeskConfig:
    """The [desk] table; an empty domain is filled in from the mailboxes by the caller."""
    r.only(t, "desk", _DESK)
    return DeskConfig(
        name=r.text(t, "desk", "name", "Help Desk"),
        timezone=r.text(t, "desk", "timezone", "UTC"),
        domain=r.text(t, "desk", "domain"),
        templates_dir=_relative(path, r.text(t, "desk", "templates")),
        cursor_after_action=r.text(t, "desk", "cursor_after_action", "next"),
        bell=r.flag(t, "desk", "bell", True),
    )


def _agent(r: _Reader, t: Mapping[str, Any], key: str) -> AgentConfig:
    r.only(t, key, _AGENT)
    login = r.text(t, key, "login", required=True)
    return AgentConfig(
        login=login,
        name=r.text(t, key, "name", login),
        email=r.text(t, key, "email"),
        key=key,
    )


def _category(r: _Reader, t: Mapping[str, Any], key: str) -> CategoryConfig:
    r.only(t, key, _CATEGORY)
    return CategoryConfig(
        name=r.text(t, key, "name", required=True),
        parent=r.text(t, key, "parent"),
        agents=r.strs(t, key, "agents"),
        default_priority=r.text(t, key, "default_priority"),
        assign=r.text(t, key, "assign", "queue"),
        key=key,
    )


def _statuses(r: _Reader, data: Mapping[str, Any]) -> tuple[StatusConfig, ...]:
    """The built-in statuses with the file's overrides applied, then the file's own ones."""
    builtin = {s.name: s for s in default_statuses()}
    merged: list[StatusConfig] = list(builtin.values())
    overridden: set[str] = set()
    for i, t in _each(r, data, "status"):
        key = f"status[{i}]"
        r.only(t, key, _STATUS)
        name = r.text(t, key, "name", required=True)
        start = builtin.get(name) or StatusConfig(name, "")
        status = StatusConfig(
            name=name,
            base=r.text(t, key, "base", start.base, required=name not in builtin),
            counter=r.text(t, key, "counter", start.counter),
            reopen_by_mail=r.flag(t, key, "reopen_by_mail", start.reopen_by_mail),
            queue=r.flag(t, key, "queue", start.queue),
            key=key,
        )
        if name in builtin and name not in overridden:
            overridden.add(name)
            merged[[s.name for s in merged].index(name)] = status
        else:
            merged.append(status)  # a second entry of the same name is reported by the check
    return tuple(merged)


def _priority(r: _Reader, t: Mapping[str, Any], key: str, index: int) -> PriorityConfig:
    r.only(t, key, _PRIORITY)
    name = r.text(t, key, "name", required=True)
    rank = r.integer(t, key, "rank", index)
    deadline_minutes = r.integer(t, key, "deadline_minutes", 0)
    holidays = r.strs(t, key, "holidays")
    only_in_hours = r.flag(t, key, "escalate_only_in_hours", False)
    hours_t = r.table(t, key, "hours")
    hours: dict[str, tuple[str, str]] = {}
    for day, span in hours_t.items():
        if _is_str_list(span) and len(span) == 2:
            hours[day] = (span[0], span[1])
        else:
            r.problem(f"{key}.hours.{day}", f'expected ["HH:MM", "HH:MM"], got {_describe(span)}')
    on_t = r.table(t, key, "on")
    r.only(on_t, f"{key}.on", tuple(DEFAULT_POLICIES))
    on = {event: r.text(on_t, f"{key}.on", event, v) for event, v in DEFAULT_POLICIES.items()}
    levels = tuple(
        _level(r, lt, f"{key}.level[{j}]", j) for j, lt in enumerate(r.tables(t, key, "level"), 1)
    )
    return PriorityConfig(
        name=name,
        rank=rank,
        deadline_minutes=deadline_minutes,
        hours=hours,
        holidays=holidays,
        escalate_only_in_hours=only_in_hours,
        on=on,
        levels=levels,
        key=key,
    )


def _level(r: _Reader, t: Mapping[str, Any], key: str, index: int) -> LevelConfig:
    r.only(t, key, _LEVEL)
    return LevelConfig(
        alert_level=r.integer(t, key, "alert_level", index),
        minutes=r.integer(t, key, "minutes", 0, required=True),
        actions=r.strs(t, key, "actions"),
        notify_agents=r.strs(t, key, "notify_agents"),
        email_to=r.text(t, key, "email_to"),
        delegate_to=r.text(t, key, "delegate_to"),
        script=r.strs(t, key, "script"),
        key=key,
    )


def _mailbox(r: _Reader, t: Mapping[str, Any], key: str, path: Path | None) -> MailboxConfig:
    r.only(t, key, _MAILBOX)
    address = r.text(t, key, "address", required=True)
    security = r.text(t, key, "security", "imaps")
    return MailboxConfig(
        name=r.text(t, key, "name", required=True),
        address=address,
        host=r.text(t, key, "host", required=True),
        port=r.integer(t, key, "port", _IMAP_PORTS.get(security, 993)),
        security=security,
        username=r.text(t, key, "username", address),
        password=r.password(t, key),
        folder=r.text(t, key, "folder", "INBOX"),
        after_import=r.text(t, key, "after_import", "leave"),
        category=r.text(t, key, "category"),
        priority=r.text(t, key, "priority"),
        acknowledge_template=r.text(t, key, "acknowledge_template"),
        poll_seconds=r.integer(t, key, "poll_seconds", 60),
        cafile=_path_text(path, r.text(t, key, "cafile")),
        key=key,
    )


def _smtp(r: _Reader, t: Mapping[str, Any], path: Path | None) -> SmtpConfig:
    r.only(t, "smtp", _SMTP)
    security = r.text(t, "smtp", "security", "starttls")
    return SmtpConfig(
        host=r.text(t, "smtp", "host", required=True),
        port=r.integer(t, "smtp", "port", _SMTP_PORTS.get(security, 587)),
        security=security,
        username=r.text(t, "smtp", "username"),
        password=r.password(t, "smtp"),
        timeout=r.integer(t, "smtp", "timeout", 30),
        cafile=_path_text(path, r.text(t, "smtp", "cafile")),
    )


def parse_config(text: str, path: Path | None = None) -> Config:
    """Settings from TOML text; `path` names the file in errors and anchors relative paths."""
    file = str(path) if path is not None else DEFAULTS_FILE
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _TOML_AT.search(message)
        if m is None:
            raise ConfigError([ConfigProblem(file, "", f"not valid TOML: {message}")]) from exc
        detail = f"not valid TOML: {message[: m.start()]} (column {m[2]})"
        raise ConfigError([ConfigProblem(file, f"line {m[1]}", detail)]) from exc
    return _parse(data, path)


def load_config(path: Path | None) -> Config:
    """The settings in `path`; defaults when no path is given, an error when it does not exist."""
    if path is None:
        return default_config()
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        hint = "no such file; `helpdesk config init` writes a commented example"
        raise ConfigError([ConfigProblem(str(path), "", hint)]) from exc
    except PermissionError as exc:
        from helpdesk_tui.shared import denied_reason

        why = f"cannot read it: {denied_reason(path, need=os.R_OK)}"
        raise ConfigError([ConfigProblem(str(path), "", why)]) from exc
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), "", f"cannot read: {exc.strerror}")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [ConfigProblem(str(path), "", f"not UTF-8 text (byte {exc.start})")]
        ) from exc
    return parse_config(text, path)


# --------------------------------------------------------------------------- checking


def check_config(cfg: Config, known_agents: Collection[str] = ()) -> list[ConfigProblem]:
    """What reads fine but cannot work; known_agents are logins already in the store."""
    problems: list[ConfigProblem] = []

    def bad(key: str, message: str) -> None:
        problems.append(ConfigProblem(cfg.file, key, message))

    agents = {a.login for a in cfg.agents} | set(known_agents)
    categories = {c.name for c in cfg.categories}
    priorities = {p.name for p in cfg.priorities}

    def agent_ok(key: str, login: str) -> None:
        if login not in agents:
            bad(key, f"unknown agent {login!r}; add an [[agent]] or `helpdesk agent add {login}`")

    _check_desk(cfg, bad)
    for name in ("per_sender_per_day", "per_sender_per_3h"):
        if getattr(cfg.autoreply, name) < 0:
            bad(f"autoreply.{name}", "must be 0 or more")

    _duplicates(cfg.agents, "login", bad)
    for a in cfg.agents:
        if not _LOGIN.fullmatch(a.login):
            bad(f"{a.key}.login", f"not a valid login name: {a.login!r}")

    _duplicates(cfg.statuses, "name", bad)
    builtin = {s.name: s.base for s in default_statuses()}
    for s in cfg.statuses:
        if s.base not in STATUS_BASES:
            bad(f"{s.key}.base", _one_of(s.base, STATUS_BASES))
        elif s.name in builtin and s.base != builtin[s.name]:
            bad(
                f"{s.key}.base",
                f"the built-in status {s.name!r} must keep base {builtin[s.name]!r}",
            )
        if s.counter not in STATUS_COUNTERS:
            bad(f"{s.key}.counter", _one_of(s.counter, STATUS_COUNTERS))

    _duplicates(cfg.priorities, "name", bad)
    ranks: dict[int, str] = {}
    for p in cfg.priorities:
        if p.rank in ranks:
            bad(f"{p.key}.rank", f"rank {p.rank} is taken by {ranks[p.rank]!r} already")
        ranks.setdefault(p.rank, p.name)
        _check_priority(p, bad, agent_ok)

    _duplicates(cfg.categories, "name", bad)
    parents = {c.name: c.parent for c in cfg.categories}
    for c in cfg.categories:
        if c.parent and c.parent not in categories:
            bad(f"{c.key}.parent", f"unknown category {c.parent!r}")
        elif c.parent and _cycles(c.name, parents):
            bad(f"{c.key}.parent", f"{c.name!r} would be its own ancestor")
        if c.default_priority and c.default_priority not in priorities:
            bad(f"{c.key}.default_priority", f"unknown priority {c.default_priority!r}")
        if c.assign not in ASSIGN_METHODS:
            bad(f"{c.key}.assign", _one_of(c.assign, ASSIGN_METHODS))
        for i, login in enumerate(c.agents, 1):
            agent_ok(f"{c.key}.agents[{i}]", login)

    _duplicates(cfg.mailboxes, "name", bad)
    for m in cfg.mailboxes:
        _check_mailbox(m, categories, priorities, bad)
    if cfg.smtp is not None:
        _check_smtp(cfg.smtp, bad)
    return problems


_Bad = Callable[[str, str], None]


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    return f"{value!r} is not one of {' | '.join(allowed)}"


def _duplicates(items: tuple[Any, ...], attr: str, bad: _Bad) -> None:
    seen: set[str] = set()
    for item in items:
        value = getattr(item, attr)
        if value in seen:
            bad(f"{item.key}.{attr}", f"{value!r} is defined twice")
        seen.add(value)


def _cycles(name: str, parents: Mapping[str, str]) -> bool:
    seen = {name}
    current = parents.get(name, "")
    while current:
        if current in seen:
            return True
        seen.add(current)
        current = parents.get(current, "")
    return False


def _check_desk(cfg: Config, bad: _Bad) -> None:
    d = cfg.desk
    try:
        ZoneInfo(d.timezone)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        bad("desk.timezone", f"unknown time zone {d.timezone!r} (e.g. Europe/Oslo, UTC)")
    if not _DOMAIN.fullmatch(d.domain):
        bad("desk.domain", f"not a domain name: {d.domain!r}")
    if d.cursor_after_action not in CURSOR_AFTER_ACTION:
        bad("desk.cursor_after_action", _one_of(d.cursor_after_action, CURSOR_AFTER_ACTION))
    if d.templates_dir is not None and not d.templates_dir.is_dir():
        bad("desk.templates", f"no such folder: {d.templates_dir}")
    elif d.templates_dir is not None:
        _check_templates(d.templates_dir, bad)


def _check_templates(folder: Path, bad: Callable[[str, str], None]) -> None:
    """An unknown variable in a reply template is an error here, never a blank in a mail."""
    from helpdesk_tui.mail.templates import (
        STANDARD_VARIABLES,
        TemplateError,
        check_template,
        load_template_dir,
    )

    try:
        templates = load_template_dir(folder)
    except TemplateError as exc:
        bad("desk.templates", str(exc))
        return
    for (sub, name, lang), (subject, body) in sorted(templates.items()):
        where = f"desk.templates: {'/'.join(p for p in (sub, f'{name}.{lang}.txt') if p)}"
        for part, text in (("subject", subject), ("body", body)):
            for problem in check_template(text, STANDARD_VARIABLES):
                bad(where, f"{part}: {problem}")


def _clock_minutes(text: str) -> int | None:
    m = _CLOCK.fullmatch(text)
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        return None
    return int(m[1]) * 60 + int(m[2])


def _holiday_ok(text: str) -> bool:
    m = _HOLIDAY.fullmatch(text)
    if m is None:
        return False
    try:
        date(int(m[3] or 2000), int(m[2]), int(m[1]))  # 2000 is a leap year: 29/02 is fine
    except ValueError:
        return False
    return True


def _check_priority(p: PriorityConfig, bad: _Bad, agent_ok: _Bad) -> None:
    if p.deadline_minutes < 0:
        bad(f"{p.key}.deadline_minutes", "must be 0 (no deadline) or more")
    elif p.deadline_minutes == 0 and p.levels:
        bad(f"{p.key}.deadline_minutes", "escalation levels never fire without a deadline")
    for day, (start, stop) in p.hours.items():
        key = f"{p.key}.hours.{day}"
        if day not in WEEKDAYS:
            bad(key, f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
        a, b = _clock_minutes(start), _clock_minutes(stop)
        if a is None or b is None:
            bad(key, f'times must be "HH:MM" (00:00 to 23:59), got [{start!r}, {stop!r}]')
        elif a >= b:
            bad(key, f"start {start} must be before stop {stop}")
    for i, text in enumerate(p.holidays, 1):
        if not _holiday_ok(text):
            bad(f"{p.key}.holidays[{i}]", f'{text!r} is not a date "dd/mm" or "dd/mm/yyyy"')
    for event, policy in p.on.items():
        if policy not in POLICY_VALUES:
            bad(f"{p.key}.on.{event}", _one_of(policy, POLICY_VALUES))
    previous: int | None = None
    for level in p.levels:
        if level.alert_level < 1:
            bad(f"{level.key}.alert_level", "must be 1 or more")
        elif previous is not None and level.alert_level <= previous:
            bad(
                f"{level.key}.alert_level",
                f"must be greater than {previous} (levels must be strictly ascending)",
            )
        previous = level.alert_level
        _check_level(level, bad, agent_ok)


def _check_level(level: LevelConfig, bad: _Bad, agent_ok: _Bad) -> None:
    key = level.key
    if level.minutes <= 0:
        bad(f"{key}.minutes", "must be greater than 0")
    if not level.actions:
        bad(f"{key}.actions", f"no actions; choose from {' '.join(ACTIONS)}")
    for i, action in enumerate(level.actions, 1):
        if action not in ACTIONS:
            bad(
                f"{key}.actions[{i}]", f"unknown action {action!r}; choose from {' '.join(ACTIONS)}"
            )
    needs = {
        "delegate": ("delegate_to", level.delegate_to),
        "script": ("script", level.script),
        "notify_agents": ("notify_agents", level.notify_agents),
        "email_address": ("email_to", level.email_to),
    }
    for action, (name, value) in needs.items():
        if action in level.actions and not value:
            bad(f"{key}.{name}", f"the {action} action needs {name}")
    if level.delegate_to:
        agent_ok(f"{key}.delegate_to", level.delegate_to)
    for i, login in enumerate(level.notify_agents, 1):
        agent_ok(f"{key}.notify_agents[{i}]", login)
    if level.email_to and "@" not in level.email_to:
        bad(f"{key}.email_to", f"not an e-mail address: {level.email_to!r}")


def _check_password(source: PasswordSource, key: str, bad: _Bad) -> None:
    if source.command and source.env:
        bad(f"{key}.password_env", "give password_command or password_env, not both")
    elif not source.given:
        bad(key, "needs password_command (run without a shell) or password_env")


def _check_port(key: str, port: int, bad: _Bad) -> None:
    if not 1 <= port <= 65535:
        bad(f"{key}.port", f"{port} is not a TCP port")


def _check_cafile(key: str, cafile: str, bad: _Bad) -> None:
    if cafile and not Path(cafile).is_file():
        bad(f"{key}.cafile", f"no such file: {cafile}")


def _check_mailbox(
    m: MailboxConfig, categories: Collection[str], priorities: Collection[str], bad: _Bad
) -> None:
    k = m.key
    if "@" not in m.address:
        bad(f"{k}.address", f"not an e-mail address: {m.address!r}")
    if not m.host:
        bad(f"{k}.host", "must not be empty")
    _check_port(k, m.port, bad)
    if m.security not in IMAP_SECURITY:
        bad(f"{k}.security", _one_of(m.security, IMAP_SECURITY))
    _check_password(m.password, k, bad)
    if m.after_import not in ("leave", "flag") and not (
        m.after_import.startswith("move:") and m.after_import.removeprefix("move:").strip()
    ):
        bad(f"{k}.after_import", f"{m.after_import!r} is not one of leave | flag | move:Folder")
    if m.category and m.category not in categories:
        bad(f"{k}.category", f"unknown category {m.category!r}")
    if m.priority and m.priority not in priorities:
        bad(f"{k}.priority", f"unknown priority {m.priority!r}")
    if m.poll_seconds <= 0:
        bad(f"{k}.poll_seconds", "must be greater than 0")
    _check_cafile(k, m.cafile, bad)


def _check_smtp(smtp: SmtpConfig, bad: _Bad) -> None:
    if not smtp.host:
        bad("smtp.host", "must not be empty")
    _check_port("smtp", smtp.port, bad)
    if smtp.security not in SMTP_SECURITY:
        bad("smtp.security", _one_of(smtp.security, SMTP_SECURITY))
    if smtp.username:
        _check_password(smtp.password, "smtp", bad)
    elif smtp.password.given:
        bad("smtp.username", "a password is given but no username to log in with")
    if smtp.timeout <= 0:
        bad("smtp.timeout", "must be greater than 0")
    _check_cafile("smtp", smtp.cafile, bad)


# --------------------------------------------------------------------------- passwords


def resolve_password(source: PasswordSource) -> str:
    """The password itself, read from the environment or the command's standard output."""

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError([ConfigProblem(source.file, _join(source.key, key), message)])

    if source.env:
        value = os.environ.get(source.env)
        if not value:
            state = "is empty" if value == "" else "is not set"
            raise fail("password_env", f"the environment variable {source.env} {state}")
        return value
    if not source.command:
        raise fail("", "needs password_command (run without a shell) or password_env")
    program = source.command[0]
    try:
        done = subprocess.run(
            list(source.command),
            shell=False,
            timeout=PASSWORD_TIMEOUT,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise fail("password_command", f"command not found: {program}") from exc
    except PermissionError as exc:
        raise fail("password_command", f"cannot run {program}: permission denied") from exc
    except subprocess.TimeoutExpired as exc:
        raise fail("password_command", f"{program} gave no answer in {PASSWORD_TIMEOUT} s") from exc
    except OSError as exc:
        raise fail("password_command", f"cannot run {program}: {exc.strerror}") from exc
    if done.returncode != 0:
        # stderr only: stdout may hold (part of) the password.
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {err[-1][:200]}" if err else ""
        raise fail("password_command", f"{program} exited with status {done.returncode}{detail}")
    try:
        out = done.stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail("password_command", f"{program} printed something that is not UTF-8") from exc
    out = out.removesuffix("\n").removesuffix("\r")
    if not out:
        raise fail("password_command", f"{program} printed no password")
    return out


# --------------------------------------------------------------------------- the example

EXAMPLE_CONFIG = """\
# helpdesk-tui settings. `helpdesk config check` finds mistakes and names the key.
# Paths are relative to this file. Passwords never go here: use password_command (run
# without a shell) or password_env.

[desk]
name = "Example Support"
timezone = "Europe/Oslo"              # working hours and deadlines are counted in this zone
# domain = "example.com"              # for our Message-IDs; default: the first mailbox's domain
# templates = "templates"             # a folder of reply templates
cursor_after_action = "next"          # next | stay: where the cursor goes after an action
bell = true                           # ring the terminal bell on new alerts

[autoreply]                           # acknowledgements per sender, so robots can't loop
per_sender_per_day = 1
per_sender_per_3h = 10

# Agents created in the store if missing. Put your own login here: the first agent may add
# the others with `helpdesk agent add`.
[[agent]]
login = "lead"
name = "Lead Agent"
email = "lead@example.com"

[[category]]
name = "Support"
agents = ["lead"]                     # agents from [[agent]] or `helpdesk agent add`
default_priority = "Normal"
assign = "queue"                      # queue | round_robin | fewest_active

[[category]]
name = "Billing"
parent = "Support"
default_priority = "Normal"
assign = "round_robin"
agents = ["lead"]

# The built-in statuses (open internal external postponed closed deleted merged) are always
# there; a [[status]] with one of their names changes its fields.
[[status]]
name = "waiting on supplier"
base = "active"                       # active | closed | postponed | deleted | merged
counter = "external"                  # which clock runs: queue | internal | external | none
reopen_by_mail = true
queue = false

# Priorities, least urgent first (rank defaults to the order here; higher = more urgent).
[[priority]]
name = "Low"
deadline_minutes = 480                # working minutes to the deadline; 0 = none
holidays = ["25/12", "26/12", "01/01", "17/05"]
[priority.hours]                      # a missing weekday is closed
mon = ["09:00", "17:00"]
tue = ["09:00", "17:00"]
wed = ["09:00", "17:00"]
thu = ["09:00", "17:00"]
fri = ["09:00", "17:00"]

[[priority]]
name = "Normal"
deadline_minutes = 120
escalate_only_in_hours = true
holidays = ["25/12", "26/12", "01/01", "17/05"]
[priority.hours]
mon = ["09:00", "17:00"]
tue = ["09:00", "17:00"]
wed = ["09:00", "17:00"]
thu = ["09:00", "17:00"]
fri = ["09:00", "17:00"]
[priority.on]                         # the escalation clock: stop | continue | restart
read = "continue"
reassigned = "restart"
new_info = "restart"
closed = "stop"
priority_changed = "restart"
new = "continue"
[[priority.level]]
alert_level = 1
minutes = 60
# notify_owner notify_category notify_agents email_owner email_customer email_address
# raise_priority delegate script
actions = ["notify_owner"]
[[priority.level]]
alert_level = 2
minutes = 120
actions = ["notify_category", "raise_priority", "delegate"]
delegate_to = "lead"

[[priority]]
name = "High"
deadline_minutes = 60
holidays = ["25/12", "26/12", "01/01", "17/05"]
[priority.hours]
mon = ["08:00", "18:00"]
tue = ["08:00", "18:00"]
wed = ["08:00", "18:00"]
thu = ["08:00", "18:00"]
fri = ["08:00", "18:00"]
[[priority.level]]
alert_level = 1
minutes = 30
actions = ["notify_owner", "email_owner"]

[[priority]]
name = "Urgent"
deadline_minutes = 30
# no [priority.hours]: the deadline counts around the clock
[[priority.level]]
alert_level = 1
minutes = 15
actions = ["notify_owner", "notify_agents"]
notify_agents = ["lead"]
[[priority.level]]
alert_level = 2
minutes = 30
actions = ["email_address", "script"]
email_to = "oncall@example.com"
script = ["/usr/local/bin/page-oncall", "--ticket"]

[[mailbox]]
name = "support"
address = "support@example.com"
host = "imap.example.com"
port = 993
security = "imaps"                    # imaps | starttls | plain (plain only if you say so)
username = "support@example.com"
password_command = ["pass", "show", "mail/support"]   # or password_env = "SUPPORT_IMAP_PASSWORD"
folder = "INBOX"
after_import = "leave"                # leave | flag | move:Processed
category = "Support"
priority = "Normal"
acknowledge_template = "acknowledgement"
poll_seconds = 60
# cafile = "imap-ca.pem"              # a CA file for a self-signed server

[smtp]
host = "smtp.example.com"
port = 587
security = "starttls"                 # smtps | starttls | plain
username = "support@example.com"
password_env = "SUPPORT_SMTP_PASSWORD"
timeout = 30

# [store]                             # the database; default: a file in your data folder
# url = "/srv/helpdesk/helpdesk.sqlite3"   # a path, or a postgresql+psycopg://... URL

# [keymap]                            # other keys, by binding id (`?` in the app lists them)
# "ticket.close" = "x"                # the new key replaces the old one
# "list.down" = ["j", "down", "ctrl+n"]   # several keys: an array, or "j,down,ctrl+n"
# A key another binding on the same screen uses stops doing that there.
"""
