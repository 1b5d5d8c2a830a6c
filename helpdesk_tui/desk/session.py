"""Opening the desk the same way from the CLI, the TUI and the worker: config, store, identity."""

from __future__ import annotations

import getpass
import hashlib
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from helpdesk_tui import paths
from helpdesk_tui.clock import Clock, SystemClock
from helpdesk_tui.config import Config, ConfigError, check_config, load_config
from helpdesk_tui.desk.service import Desk, DeskOptions
from helpdesk_tui.desk.setup import apply_config
from helpdesk_tui.store import models as M
from helpdesk_tui.store.engine import Store, open_store

# Bump when apply_config learns something new, so stores pick it up without a config edit.
APPLY_VERSION = "1"


def os_user() -> str:
    """The real login behind the process, recorded on every event (HELPDESK_AGENT can't hide it)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return getpass.getuser()


def acting_login() -> str:
    return os.environ.get("HELPDESK_AGENT") or os_user()


@dataclass
class DeskHandle:
    desk: Desk
    config: Config
    store: Store


def options_from(cfg: Config) -> DeskOptions:
    first_mailbox = cfg.mailboxes[0].address if cfg.mailboxes else ""
    return DeskOptions(
        name=cfg.desk.name,
        timezone=cfg.desk.timezone,
        domain=cfg.desk.domain,
        default_from=first_mailbox,
    )


def agent_logins(store: Store) -> list[str]:
    with store.read() as s:
        return sorted(s.exec(select(M.Agent.login)).all())


def sync_config(store: Store, cfg: Config) -> bool:
    """Apply the config when it (or the set of agents it may name) changed; True if applied.

    Agents are part of the fingerprint so that one added later with `helpdesk agent add` gets
    the category links and delegate-to the config already names for them.
    """
    text = cfg.path.read_bytes() if cfg.path is not None and cfg.path.exists() else b"default"
    logins = agent_logins(store)
    problems = check_config(cfg, logins)
    if problems:
        raise ConfigError(problems)
    fingerprint = APPLY_VERSION.encode() + b"\0" + text + b"\0" + ",".join(logins).encode()
    digest = hashlib.sha256(fingerprint).hexdigest()
    with store.read() as s:
        row = s.get(M.Meta, "config_hash")
        if row is not None and row.value == digest:
            return False
    apply_config(store, cfg)

    def remember(s: Session) -> None:
        row = s.get(M.Meta, "config_hash")
        if row is None:
            s.add(M.Meta(key="config_hash", value=digest))
        else:
            row.value = digest

    store.write(remember)
    return True


def open_desk(
    *,
    db: str | None = None,
    config_path: Path | None = None,
    actor: str | None = None,
    clock: Clock | None = None,
) -> DeskHandle:
    """Load config, open and migrate the store, apply config, and make a Desk for the actor."""
    explicit = config_path or (
        Path(os.environ["HELPDESK_CONFIG"]) if os.environ.get("HELPDESK_CONFIG") else None
    )
    cfg = load_config(explicit if explicit else _existing(paths.config_file()))
    url = paths.db_url(db) if db else paths.default_db_url(cfg.store_url)
    store = open_store(url)
    sync_config(store, cfg)
    desk = Desk(
        store,
        clock or SystemClock(),
        actor if actor is not None else acting_login(),
        os_user=os_user(),
        options=options_from(cfg),
    )
    return DeskHandle(desk=desk, config=cfg, store=store)


def _existing(path: Path) -> Path | None:
    return path if path.exists() else None
