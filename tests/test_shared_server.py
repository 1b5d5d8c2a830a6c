"""Many agents on one server: real Unix users in one group share a store; an outsider is told.

As root this creates a fresh group with two members and one outsider (unique names, removed
afterwards), prepares a store with `helpdesk setup-shared`, and runs the real CLI as each user
through setpriv (their own uid, gid and supplementary groups, nothing inherited from root).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("useradd", "userdel", "groupadd", "groupdel", "setpriv")


def _need_root() -> None:
    reason = ""
    if os.geteuid() != 0:
        reason = "needs root to create Unix users and groups"
    elif missing := [t for t in TOOLS if shutil.which(t) is None]:
        reason = f"needs {', '.join(missing)}"
    if not reason:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but this test {reason}", pytrace=False)
    pytest.skip(reason)


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class World:
    group: str
    a: str
    b: str
    outsider: str
    python: tuple[str, ...]  # the interpreter the users can run
    pyenv: dict[str, str]  # and what it needs in its environment


def _python_for(user: str) -> tuple[tuple[str, ...], dict[str, str]] | None:
    """The venv's python if the user may run it, else a system python of the same version."""
    site = [p for p in sys.path if p.endswith("site-packages")]
    candidates: list[tuple[tuple[str, ...], dict[str, str]]] = [((sys.executable,), {})]
    same = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin")
    if same is not None:
        candidates.append(
            ((same, "-s"), {"PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), *site])})
        )
    probe = "import helpdesk_tui.cli, sqlalchemy, sqlmodel, alembic"
    for argv, extra in candidates:
        res = subprocess.run(
            ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *argv, "-c", probe],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **extra},
            capture_output=True,
            cwd="/",
        )
        if res.returncode == 0:
            return argv, extra
    return None


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    _need_root()
    tag = uuid.uuid4().hex[:6]
    group, a, b, out = f"hdg{tag}", f"hda{tag}", f"hdb{tag}", f"hdx{tag}"
    made_users: list[str] = []
    made_group = False
    try:
        _sh("groupadd", group)
        made_group = True
        for user, extra in ((a, ["-G", group]), (b, ["-G", group]), (out, [])):
            _sh("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", *extra, user)
            made_users.append(user)
        found = _python_for(a)
        if found is None:
            pytest.skip(
                f"no Python the test users can run: {sys.executable} is not readable by other "
                "users and no system python of the same version finds the packages"
            )
        yield World(group, a, b, out, found[0], found[1])
    finally:
        for user in made_users:
            subprocess.run(["userdel", user], capture_output=True)
        if made_group:
            subprocess.run(["groupdel", group], capture_output=True)


@dataclass
class Server:
    world: World
    base: Path
    srv: Path
    system_config: Path

    def env(self, user: str, **extra: str) -> dict[str, str]:
        home = self.base / f"home-{user}"
        if not home.exists():
            home.mkdir(mode=0o700)
            pw = pwd.getpwnam(user)
            os.chown(home, pw.pw_uid, pw.pw_gid)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "HELPDESK_SYSTEM_CONFIG": str(self.system_config),
            "LANG": "C.UTF-8",
            **self.world.pyenv,
            **extra,
        }

    def argv(self, user: str, *args: str) -> list[str]:
        return [
            "setpriv",
            f"--reuid={user}",
            f"--regid={pwd.getpwnam(user).pw_gid}",
            "--init-groups",
            *self.world.python,
            *args,
        ]

    def run(self, user: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(user, "-m", "helpdesk_tui", *args),
            env=self.env(user, **env),
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
        )

    def ok(self, user: str, *args: str) -> str:
        res = self.run(user, *args)
        assert res.returncode == 0, (user, args, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr
        return res.stdout


@pytest.fixture
def server(world: World) -> Iterator[Server]:
    # Not under tmp_path: /tmp/pytest-of-root is 0700, and the agents must reach the store.
    base = Path(tempfile.mkdtemp(prefix="helpdesk-shared-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        s = Server(world, base, base / "srv", base / "etc" / "config.toml")
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "helpdesk_tui",
                "setup-shared",
                "--group",
                world.group,
                str(s.srv),
                "--system-config",
                str(s.system_config),
            ],
            env={**os.environ, "HELPDESK_SYSTEM_CONFIG": str(s.system_config)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        assert f"usermod -aG {world.group}" in res.stdout
        yield s
    finally:
        shutil.rmtree(base, ignore_errors=True)


# A long-lived session of the first agent: it keeps the store open (so its -wal and -shm
# files stay) while the other agent writes through them.
HOLD = """
import json, os, stat, sys
from helpdesk_tui.desk.session import open_desk
h = open_desk()
n = int(sys.argv[1])
h.desk.note(n, "held open by " + h.desk.actor)
db = h.store.url.removeprefix("sqlite:///")
modes = {s: oct(stat.S_IMODE(os.stat(db + s).st_mode)) for s in ("-wal", "-shm")}
print(json.dumps(modes), flush=True)
sys.stdin.readline()
h.desk.note(n, "after the other agent, by " + h.desk.actor)
h.store.dispose()
"""


def _mbox_with_attachment(path: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "Carol Customer <carol@example.com>"
    msg["To"] = "support@desk.example"
    msg["Subject"] = "printer log attached"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg.set_content("The log is attached.")
    msg.add_attachment(b"line 1\nline 2\n", maintype="text", subtype="plain", filename="log.txt")
    path.write_bytes(b"From carol@example.com Mon Nov 23 10:00:00 2026\n" + msg.as_bytes() + b"\n")
    os.chmod(path, 0o644)


def _agents(s: Server, first: str) -> None:
    other = s.world.b if first == s.world.a else s.world.a
    for login in (first, other):  # anyone may add the first agent, then only agents
        s.ok(first, "agent", "add", login, "--name", login.upper(), "--email", f"{login}@x.example")


@pytest.mark.parametrize("order", ["a-first", "b-first"])
def test_two_agents_share_one_store_in_either_order(server: Server, order: str) -> None:
    w = server.world
    first, second = (w.a, w.b) if order == "a-first" else (w.b, w.a)
    _agents(server, first)
    created = json.loads(
        server.ok(
            first,
            "ticket",
            "new",
            "--customer",
            "c@example.com",
            "--subject",
            "Printer",
            "--body",
            "It jams.",
            "--json",
        )
    )
    number = created["number"]
    server.ok(second, "ticket", "note", str(number), "--body", f"note by {second}")

    # The first agent keeps the store open; the second writes through its -wal and -shm.
    hold = subprocess.Popen(
        server.argv(first, "-c", HOLD, str(number)),
        env=server.env(first),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert hold.stdout is not None and hold.stdin is not None
        line = hold.stdout.readline()
        assert line, hold.stderr.read() if hold.stderr else ""
        assert json.loads(line) == {"-wal": "0o660", "-shm": "0o660"}
        db = server.srv / "helpdesk.sqlite3"
        for side in ("-wal", "-shm"):
            st = os.stat(f"{db}{side}")
            assert st.st_gid == grp.getgrnam(w.group).gr_gid
            assert pwd.getpwuid(st.st_uid).pw_name == first
        server.ok(second, "ticket", "reply", str(number), "--body", f"reply by {second}")
        mbox = server.base / "in.mbox"
        _mbox_with_attachment(mbox)
        server.ok(second, "import", "mbox", str(mbox))
        hold.stdin.write("\n")
        hold.stdin.flush()
        assert hold.wait(timeout=60) == 0, hold.stderr.read() if hold.stderr else ""
    finally:
        if hold.poll() is None:
            hold.kill()
            hold.wait()

    shown = json.loads(server.ok(second, "ticket", "show", str(number), "--json"))
    bodies = [m["body"] for m in shown["messages"]]
    assert any(f"note by {second}" in b for b in bodies)
    assert any(f"reply by {second}" in b for b in bodies)
    assert any(f"held open by {first}" in b for b in bodies)
    assert any(f"after the other agent, by {first}" in b for b in bodies)
    assert {e["os_user"] for e in shown["events"]} >= {first, second}

    # Every file the agents made belongs to the group, is group-writable, and is nobody else's.
    gid = grp.getgrnam(w.group).gr_gid
    attachments = list((server.srv / "attachments").rglob("*"))
    assert any(p.is_file() for p in attachments), "the import stored no attachment"
    for path in [server.srv, *server.srv.rglob("*")]:
        st = path.lstat()
        mode = stat.S_IMODE(st.st_mode)
        assert st.st_gid == gid, path
        assert mode & 0o007 == 0, (path, oct(mode))
        want = 0o2770 if path.is_dir() else 0o660
        assert mode & want == want, (path, oct(mode))


def test_an_outsider_is_told_what_to_do_not_shown_a_traceback(server: Server) -> None:
    w = server.world
    _agents(server, w.a)
    hint = f"usermod -aG {w.group} {w.outsider}"
    # Through the system config (group-readable only), the app, and the store itself.
    for args, env in (
        (("ticket", "list"), {}),
        ((), {}),  # the terminal app: refused before its first frame
        (("ticket", "list"), {"HELPDESK_DB": str(server.srv / "helpdesk.sqlite3")}),
        (
            ("backup", str(server.base / "copy.sqlite3")),
            {"HELPDESK_DB": str(server.srv / "helpdesk.sqlite3")},
        ),
    ):
        res = server.run(w.outsider, *args, **env)
        assert res.returncode in (1, 2), (args, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert f"not in group '{w.group}'" in lines[0] and hint in lines[0], lines[0]


def test_setup_shared_is_idempotent_and_mends_modes(server: Server) -> None:
    db = server.srv / "helpdesk.sqlite3"
    os.chmod(db, 0o644)
    os.chmod(server.srv / "attachments", 0o755)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpdesk_tui",
            "setup-shared",
            "--group",
            server.world.group,
            str(server.srv),
            "--system-config",
            str(server.system_config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "migrated" in res.stdout and "names this store already" in res.stdout
    assert stat.S_IMODE(db.stat().st_mode) == 0o660
    assert stat.S_IMODE((server.srv / "attachments").stat().st_mode) == 0o2770
    assert stat.S_IMODE(server.system_config.stat().st_mode) == 0o640


def test_setup_shared_names_groupadd_for_a_missing_group(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpdesk_tui",
            "setup-shared",
            "--group",
            "no-such-group-hd",
            str(tmp_path / "srv"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    assert "groupadd no-such-group-hd" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "srv").exists()


# ---------------------------------------------------------------- finding the store (no root)


def test_agents_without_a_config_use_the_system_config_and_its_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpdesk_tui import paths
    from helpdesk_tui.config import load_config

    system = Path(os.environ["HELPDESK_SYSTEM_CONFIG"])  # the isolation fixture's, in tmp
    assert not system.exists() and str(system).startswith(str(Path.home()))
    assert paths.config_file() == paths.user_config_file()
    system.parent.mkdir(parents=True)
    system.write_text('[desk]\nname = "Shared"\n[store]\nurl = "store/helpdesk.sqlite3"\n')
    assert paths.config_file() == system
    want = paths.db_url(str(system.parent / "store" / "helpdesk.sqlite3"))
    assert paths.default_db_url() == want
    assert paths.default_db_url(load_config(system).store_url) == want
    # The environment still wins, and a user's own config replaces the system one.
    monkeypatch.setenv("HELPDESK_DB", str(tmp_path / "mine.sqlite3"))
    assert paths.default_db_url() == paths.db_url(str(tmp_path / "mine.sqlite3"))
    monkeypatch.delenv("HELPDESK_DB")
    user = paths.user_config_file()
    user.parent.mkdir(parents=True)
    user.write_text('[desk]\nname = "Mine"\n')
    assert paths.config_file() == user
    assert paths.default_db_url() == paths.db_url(str(paths.data_dir() / "helpdesk.sqlite3"))


def test_the_cli_finds_the_shared_store_through_the_system_config(tmp_path: Path) -> None:
    system = Path(os.environ["HELPDESK_SYSTEM_CONFIG"])
    system.parent.mkdir(parents=True)
    db = tmp_path / "srv" / "helpdesk.sqlite3"
    system.write_text(f'[store]\nurl = "{db}"\n')
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpdesk_tui",
            "agent",
            "add",
            "ann",
            "--name",
            "Ann",
            "--email",
            "ann@x.example",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert db.exists()


def test_a_store_in_a_setgid_folder_is_made_group_writable(tmp_path: Path) -> None:
    # In a subprocess: the umask the store sets is process-wide.
    srv = tmp_path / "srv"
    srv.mkdir()
    os.chmod(srv, 0o2770)
    code = (
        "import os, sys; os.umask(0o022)\n"
        "from helpdesk_tui.store.engine import open_store\n"
        "s = open_store('sqlite:///' + sys.argv[1] + '/helpdesk.sqlite3')\n"
        "with s.engine.connect() as c: c.exec_driver_sql('SELECT 1')\n"
        "print(oct(os.umask(0o022)))\n"
        "for f in ('helpdesk.sqlite3', 'helpdesk.sqlite3-wal', 'helpdesk.sqlite3-shm'):\n"
        "    print(f, oct(os.stat(os.path.join(sys.argv[1], f)).st_mode & 0o777))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(srv)], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "0o7"
    assert out[1:4] == [
        "helpdesk.sqlite3 0o660",
        "helpdesk.sqlite3-wal 0o660",
        "helpdesk.sqlite3-shm 0o660",
    ]
