"""Group-shared stores: the umask the app adopts and one-line reasons when access is denied.

Agents on one server log in as different Unix users and share one SQLite file. That works only
if every file SQLite and the app create (the -wal and -shm files, which SQLite deletes when the
last connection closes and the next user re-creates; attachments; anything added later) is
writable by the group. A setgid folder gives new files its group; the umask must leave the group
bits alone. The user's own umask is usually 022, so the app sets 007 itself whenever its store
lives in a setgid folder (`helpdesk setup-shared` makes one). A leaf module: the app runs the
access check before it imports the store layer, so it loads nothing heavy.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

SHARED_UMASK = 0o007  # group keeps read and write; others get nothing
DIR_MODE = 0o2770  # setgid: files made inside belong to the folder's group
FILE_MODE = 0o660
SIDE_FILES = ("-wal", "-shm", "-journal")


def is_group_shared(folder: Path) -> bool:
    """A setgid folder is the admin's sign that what is made inside belongs to its group."""
    try:
        return bool(os.stat(folder).st_mode & stat.S_ISGID)
    except OSError:
        return False


def prepare(db_file: Path) -> bool:
    """In a group-shared folder: set umask 007 and create a missing store 0660; True if shared.

    The umask is process-wide on purpose: the attachments and anything else this process
    writes later must come out group-writable too. The store file is made here because SQLite
    creates databases 0644 whatever the umask allows, and its -wal and -shm files copy the
    database's mode: a 0640 database would lock the rest of the group out of every write.
    """
    if not is_group_shared(db_file.parent):
        return False
    os.umask(SHARED_UMASK)
    try:
        fd = os.open(db_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except OSError:  # there already; or access_problem() has spoken and SQLite says the rest
        return True
    os.close(fd)  # an empty file is an empty SQLite database
    return True


def login() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def in_group(gid: int) -> bool:
    """Whether this process has the group now (a login started before usermod does not)."""
    return gid == os.getegid() or gid in os.getgroups()


def listed_in_group(gid: int, user: str) -> bool:
    """Whether /etc/group lists the user: added, but maybe not yet in this login's groups."""
    try:
        entry = grp.getgrgid(gid)
    except KeyError:
        return False
    try:
        primary = pwd.getpwnam(user).pw_gid == gid
    except KeyError:
        primary = False
    return primary or user in entry.gr_mem


def blocked_ancestor(path: Path) -> Path | None:
    """The first folder on the way to `path` that this user may not enter, if any."""
    for folder in reversed(path.parents):
        if os.path.isdir(folder) and not os.access(folder, os.X_OK):
            return folder
        if not os.path.isdir(folder):
            return None  # missing further down: whoever creates it reports that
    return None


def denied_reason(
    path: Path, *, need: int = os.R_OK | os.W_OK, store_dir: Path | None = None
) -> str:
    """Why this user may not use `path`, and who fixes it how; for one line after "cannot X:".

    `need` is what the caller needs (os.R_OK, W_OK, X_OK); a folder on the way that cannot be
    entered is what gets named instead, if there is one.
    """
    blocker = blocked_ancestor(path)
    target, need = (blocker, os.X_OK) if blocker is not None else (path, need)
    try:
        st = os.stat(target)
    except OSError as exc:
        return exc.strerror or "permission denied"
    mode = stat.S_IMODE(st.st_mode)
    group = group_name(st.st_gid)
    user = login()
    where = f"{target} (mode {mode:04o}, group '{group}')"
    if st.st_uid == os.geteuid():
        return f"{where} is yours but lacks the permission; `chmod u+rw {target}`"
    group_bits = need << 3
    if mode & group_bits != group_bits:
        if not in_group(st.st_gid):
            shared = (
                "; an admin shares a store with `helpdesk setup-shared --group GROUP DIR`"
                if store_dir is not None
                else ""
            )
            return f"{where} belongs to {_owner(st.st_uid)} and is not shared with you{shared}"
        fix = (
            f"`helpdesk setup-shared --group {group} {store_dir}`"
            if store_dir is not None
            else f"`chmod g+rw {target}`"
        )
        return f"{where} does not let the group in; an admin can fix the modes with {fix}"
    if listed_in_group(st.st_gid, user):
        return (
            f"you were added to group '{group}' after this login started: log out and in "
            f"again (or run `newgrp {group}`)"
        )
    return f"you are not in group '{group}' (ask an admin: usermod -aG {group} {user})"


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def access_problem(db_file: Path) -> str | None:
    """One line saying why this user cannot use the SQLite store at `db_file`, or None.

    Checked before SQLite is asked, whose own words ("unable to open database file", "attempt
    to write a readonly database") name neither the file nor the fix.
    """
    folder = db_file.parent
    if not os.path.isdir(folder):
        blocker = blocked_ancestor(folder)
        if blocker is not None:
            return f"cannot open {db_file}: {denied_reason(blocker, need=os.X_OK)}"
        nearest = next(p for p in folder.parents if os.path.isdir(p))
        if not os.access(nearest, os.W_OK | os.X_OK):
            why = denied_reason(nearest, need=os.W_OK | os.X_OK)
            return f"cannot create the folder {folder}: {why}"
        return None  # the engine creates the folder
    if not os.access(folder, os.X_OK):
        why = denied_reason(folder, need=os.X_OK, store_dir=folder)
        return f"cannot open {db_file}: {why}"
    if os.path.exists(db_file):
        for name in (db_file.name, *(db_file.name + s for s in SIDE_FILES)):
            path = folder / name
            if path != db_file and not os.path.exists(path):
                continue
            if not os.access(path, os.R_OK):
                why = denied_reason(path, need=os.R_OK, store_dir=folder)
                return f"cannot read {path}: {why}"
            if not os.access(path, os.W_OK):
                return f"cannot write {path}: {denied_reason(path, store_dir=folder)}"
    if not os.access(folder, os.W_OK | os.X_OK):
        reason = denied_reason(folder, need=os.W_OK | os.X_OK, store_dir=folder)
        return f"cannot write in {folder}, where SQLite keeps its -wal and -shm files: {reason}"
    return None


def preflight(db: str | None, config: str | None) -> str | None:
    """The app's check before its first frame: can this user read the settings and the store?"""
    from helpdesk_tui import paths

    cfg = Path(config) if config else paths.config_file()
    exists = os.path.exists(cfg)
    if exists and not os.access(cfg, os.R_OK):
        return f"{cfg}: cannot read it: {denied_reason(cfg, need=os.R_OK)}"
    if not exists and blocked_ancestor(cfg) is not None and config:
        return f"{cfg}: cannot read it: {denied_reason(cfg, need=os.R_OK)}"
    if db:
        url = paths.db_url(db)
    else:
        url = paths.default_db_url(paths.configured_store_url(cfg) if exists else "")
    db_file = paths.sqlite_file(url)
    return access_problem(db_file) if db_file is not None else None
