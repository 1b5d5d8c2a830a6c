"""Where config and data live: platformdirs locations, each overridable by the environment.

On a shared server the admin writes one system-wide config (/etc/helpdesk-tui/config.toml,
`helpdesk setup-shared` does it) whose `[store] url` names the shared database; an agent with no
config of their own uses it, so every agent runs with the same desk settings and the same store
without exporting anything. The order, first found wins:

- settings: HELPDESK_CONFIG, the user's config.toml, the system config.toml, built-in defaults;
- database: --db, HELPDESK_DB, `[store] url` in the settings in use, the user's data folder.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "helpdesk-tui"
SYSTEM_CONFIG = Path("/etc/helpdesk-tui/config.toml")
STORE_FILE = "helpdesk.sqlite3"


def user_config_file() -> Path:
    """The user's own settings file (it may not exist); HELPDESK_CONFIG overrides it."""
    env = os.environ.get("HELPDESK_CONFIG")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def system_config_file() -> Path:
    """The server-wide settings; HELPDESK_SYSTEM_CONFIG moves it (tests never read /etc)."""
    env = os.environ.get("HELPDESK_SYSTEM_CONFIG")
    return Path(env) if env else SYSTEM_CONFIG


def config_file() -> Path:
    """The settings file in use: HELPDESK_CONFIG, else the user's, else the system's if present.

    When neither exists this is the user's path, where `helpdesk config init` writes.
    """
    user = user_config_file()
    if os.environ.get("HELPDESK_CONFIG") or user.exists():
        return user
    system = system_config_file()
    try:
        if system.exists():
            return system
    except OSError:  # an unreadable /etc folder is as good as no system config
        pass
    return user


def configured_store_url(config: Path | None) -> str:
    """`[store] url` from a settings file, relative paths anchored at the file; "" for none.

    A light read (tomllib only) so the app can find the store before it imports the store
    layer; an unreadable or broken file gives "" here and a proper error when it is loaded.
    """
    if config is None or not config.is_file():
        return ""
    import tomllib  # here: most starts have no settings file to read

    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ""
    store = data.get("store")
    url = store.get("url") if isinstance(store, dict) else None
    if not isinstance(url, str) or not url:
        return ""
    return anchored_url(url, config)


def anchored_url(value: str, config: Path | None) -> str:
    """A store URL or path from a config file: a relative path is relative to the file."""
    if "://" in value or config is None:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else config.parent / path)


def data_dir() -> Path:
    """The data folder (database, attachments); HELPDESK_DATA_DIR overrides it."""
    env = os.environ.get("HELPDESK_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def default_db_url(configured: str | None = None) -> str:
    """HELPDESK_DB wins; then the config's `[store] url`; else a SQLite file in the data dir.

    `configured` is the url of the config already loaded ("" when it names none); None reads
    it from the settings file in use.
    """
    env = os.environ.get("HELPDESK_DB")
    if env:
        return db_url(env)
    if configured is None:
        path = config_file()
        configured = configured_store_url(path if path.exists() else None)
    if configured:
        return db_url(configured)
    return db_url(str(data_dir() / STORE_FILE))


def db_url(value: str) -> str:
    """Accept a plain file path or a SQLAlchemy URL."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory stores."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def attachments_dir_for(db: str) -> Path:
    """Attachments sit beside a SQLite file; other databases use the data dir."""
    if db.startswith("sqlite:///"):
        return Path(db.removeprefix("sqlite:///")).parent / "attachments"
    return data_dir() / "attachments"
