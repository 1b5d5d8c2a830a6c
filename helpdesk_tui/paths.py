"""Where config and data live: platformdirs locations, each overridable by the environment."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "helpdesk-tui"


def config_file() -> Path:
    """The TOML settings file; HELPDESK_CONFIG overrides it (tests and shared servers)."""
    env = os.environ.get("HELPDESK_CONFIG")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def data_dir() -> Path:
    """The data folder (database, attachments); HELPDESK_DATA_DIR overrides it."""
    env = os.environ.get("HELPDESK_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def default_db_url() -> str:
    """HELPDESK_DB wins (a path or a SQLAlchemy URL); else a SQLite file in the data dir."""
    env = os.environ.get("HELPDESK_DB")
    if env:
        return db_url(env)
    return db_url(str(data_dir() / "helpdesk.sqlite3"))


def db_url(value: str) -> str:
    """Accept a plain file path or a SQLAlchemy URL."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def attachments_dir_for(db: str) -> Path:
    """Attachments sit beside a SQLite file; other databases use the data dir."""
    if db.startswith("sqlite:///"):
        return Path(db.removeprefix("sqlite:///")).parent / "attachments"
    return data_dir() / "attachments"
