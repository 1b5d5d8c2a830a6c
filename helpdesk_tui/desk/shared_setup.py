"""`helpdesk setup-shared`: one folder, one group, one store that every agent can write.

The folder is setgid (2770) so what is made inside belongs to the group; files are 0660; the
app sets umask 007 itself when it finds its store in such a folder (helpdesk_tui/shared.py), so
SQLite's -wal and -shm files and new attachments stay group-writable whoever creates them.
Rerunning it is safe: it only fixes groups and modes that drifted (a file copied in by hand, an
`sqlite3` shell run with umask 022) and never rewrites a system config it did not create.
"""

from __future__ import annotations

import grp
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from helpdesk_tui import paths
from helpdesk_tui.shared import DIR_MODE, FILE_MODE, in_group
from helpdesk_tui.store.engine import open_store

CONFIG_MODE = 0o640  # the group reads the desk settings; passwords never go in them anyway


class SetupError(Exception):
    """The folder cannot be prepared; the message says what to do first."""


@dataclass
class SetupReport:
    directory: Path
    group: str
    db_file: Path
    created_store: bool = False
    fixed: list[str] = field(default_factory=list)  # "path: what changed"
    warnings: list[str] = field(default_factory=list)
    config_path: Path | None = None
    config_written: bool = False
    config_note: str = ""  # set when the admin must edit the system config by hand
    config_snippet: str = ""


def toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def store_snippet(db_file: Path) -> str:
    return f"[store]\nurl = {toml_string(str(db_file))}\n"


SYSTEM_CONFIG_HEAD = """\
# helpdesk-tui settings for every agent on this server (written by `helpdesk setup-shared`).
# An agent's own ~/.config/helpdesk-tui/config.toml, or HELPDESK_CONFIG, replaces this file
# completely. The desk settings ([desk], [[mailbox]], [smtp], ...) belong here too:
# `helpdesk config init --config /tmp/example.toml` writes a commented example to copy from.
"""


def setup_shared(directory: Path, group: str, *, system_config: Path | None = None) -> SetupReport:
    """Prepare `directory` for the agents of `group`; idempotent."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise SetupError(
            f"no group '{group}' on this machine: create it with `groupadd {group}`, add each "
            f"agent with `usermod -aG {group} LOGIN`, then run this again"
        ) from None
    if os.geteuid() != 0 and not in_group(gid):
        raise SetupError(
            f"only root or a member of group '{group}' can hand a folder to it; run this as root"
        )
    directory = Path(os.path.abspath(directory.expanduser()))
    db_file = directory / paths.STORE_FILE
    report = SetupReport(directory, group, db_file)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"cannot create {directory}: {exc.strerror}") from exc
    report.warnings.extend(_unreachable(directory))
    # The folder first: once it is setgid, opening the store sets umask 007 (shared.py).
    _fix(directory, gid, DIR_MODE, report)
    attachments = directory / "attachments"
    attachments.mkdir(exist_ok=True)
    report.created_store = not db_file.exists()
    store = open_store(paths.db_url(str(db_file)))
    try:
        store.checkpoint()
    finally:
        store.dispose()
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                _fix(Path(root, name), gid, DIR_MODE, report)
        for name in files:
            path = Path(root, name)
            if not path.is_symlink() and path.is_file():
                _fix(path, gid, FILE_MODE, report)
    if system_config is not None:
        _system_config(system_config, gid, report)
    return report


def _fix(path: Path, gid: int, mode: int, report: SetupReport) -> None:
    """Give `path` the group and mode; only what differs is changed and reported."""
    st = path.lstat()
    try:
        if st.st_gid != gid:
            os.chown(path, -1, gid)
            report.fixed.append(f"{path}: group was {_group(st.st_gid)}")
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)
            report.fixed.append(f"{path}: mode was {stat.S_IMODE(st.st_mode):04o}")
    except PermissionError:
        report.warnings.append(f"{path}: cannot change its group or mode (run this as root)")


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _unreachable(directory: Path) -> list[str]:
    """Folders above `directory` that agents cannot pass through (a home folder, /root)."""
    out = []
    for parent in reversed(directory.parents):
        mode = stat.S_IMODE(parent.stat().st_mode)
        if not mode & 0o001:
            out.append(
                f"{parent} has mode {mode:04o}: agents cannot reach {directory} through it; "
                "choose a folder such as /srv/helpdesk"
            )
    return out


def _system_config(path: Path, gid: int, report: SetupReport) -> None:
    report.config_path = path
    report.config_snippet = store_snippet(report.db_file)
    if path.exists():
        named = paths.configured_store_url(path)
        if named and paths.db_url(named) == paths.db_url(str(report.db_file)):
            return
        report.config_note = (
            f"{path} exists and names {'another store' if named else 'no store'}; "
            "add this to it so agents find the shared store:"
        )
        return
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
            os.chmod(path.parent, 0o755)  # noqa: S103 - like /etc itself; the file is 0640
        path.write_text(SYSTEM_CONFIG_HEAD + "\n" + report.config_snippet, encoding="utf-8")
        os.chown(path, -1, gid)
        os.chmod(path, CONFIG_MODE)
    except PermissionError:
        report.config_note = (
            f"cannot write {path} (run this as root), or put this in it yourself, "
            f"group '{report.group}', mode {CONFIG_MODE:04o}:"
        )
        return
    report.config_written = True
