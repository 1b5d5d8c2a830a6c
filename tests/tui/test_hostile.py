"""Untrusted text is inert: escape sequences never reach the terminal and markup never runs."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.tui.screens.detail import DetailScreen
from helpdesk_tui.tui.text import line, plain_line, text
from helpdesk_tui.tui.widgets.ticket_list import TicketList
from tests.conftest import PROJECT_ROOT, make_desk
from tests.tui.conftest import FORBIDDEN, HOSTILE, make_app, messages_shown, settle
from tests.tui.conftest import shown as shown_text

CONTROL = (
    {chr(c) for c in range(32) if chr(c) not in "\t\n"}
    | {"\x7f"}
    | {chr(c) for c in range(0x80, 0xA0)}
)


def _register_hostile(desk: Desk) -> int:
    return desk.register(
        customer_email="mallory@evil.example",
        customer_name=HOSTILE,
        subject=HOSTILE,
        body=f"Hello\n{HOSTILE}\nbye",
        owner="alice",
    ).number


def test_text_door_removes_controls_and_never_parses_markup() -> None:
    content = line(HOSTILE)
    assert not (set(content.plain) & CONTROL)
    assert "\u202e" not in content.plain
    assert "[@click=app.quit]x[/]" in content.plain
    assert content.spans == []  # literal: no markup became style or action
    assert "\n" in text("a\nb").plain
    assert "\t" not in text("a\tb").plain
    assert plain_line("Re: [/] x") == "Re: [/] x"


async def test_hostile_ticket_is_shown_literally_and_the_app_keeps_running(
    desk: Desk, config: Config, clock: FixedClock
) -> None:
    number = _register_hostile(desk)
    app = make_app(desk, config, clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        row = app.screen.query_one(TicketList).current
        assert row is not None and row.number == number
        strips = app.screen._compositor.render_strips()
        listed = "\n".join(s.text for s in strips)
        assert not (set(listed) & CONTROL - {"\n"})
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        shown = messages_shown(app.screen) + "\n" + shown_text(app.screen, "header")
        assert "[@click=app.quit]x[/]" in shown
        assert "Re: [/] x" in shown
        assert not (set(shown) & CONTROL - {"\n"})
        # And what the conversation draws: the literal text, no control character.
        drawn = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert "Re: [/] x" in drawn
        assert not (set(drawn) & CONTROL - {"\n"})
        # Clicking the would-be link must not quit the app.
        await pilot.click(offset=(10, 5))
        await pilot.click(offset=(20, 12))
        await pilot.press("j", "j", "k")
        await settle(pilot)
        assert app.is_running
        assert app.return_value is None


def _winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read_until(fd: int, buf: bytearray, needle: bytes, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            buf.extend(chunk)
    return True


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_real_app_in_a_pty_never_forwards_the_payload(tmp_path: Path, clock: FixedClock) -> None:
    from helpdesk_tui.config import default_config
    from helpdesk_tui.desk.setup import apply_config
    from helpdesk_tui.store.engine import open_store

    db = tmp_path / "desk.sqlite3"
    cfg_file = tmp_path / "helpdesk.toml"
    cfg_file.write_text("")
    store = open_store(f"sqlite:///{db}")
    apply_config(store, default_config())
    boot = make_desk(store, clock, "alice")
    boot.add_agent("alice", "Alice Able", "alice@desk.example")
    _register_hostile(boot)
    store.dispose()

    env = {
        **os.environ,
        "HELPDESK_DB": str(db),
        "HELPDESK_CONFIG": str(cfg_file),
        "HELPDESK_AGENT": "alice",
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the app
        os.chdir(PROJECT_ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "helpdesk_tui"], env)
    out = bytearray()
    try:
        _winsize(fd, 36, 120)
        os.kill(pid, signal.SIGWINCH)
        assert _read_until(fd, out, b"My open", 20), out[-2000:]
        assert _read_until(fd, out, b"Re: [/] x", 20), out[-3000:]
        os.write(fd, b"\r")  # open the hostile ticket
        assert _read_until(fd, out, b"why here", 20), out[-3000:]
        os.write(fd, b"jjjk")
        _read_until(fd, out, b"\x00never", 0.5)  # drain what the scrolling painted
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the app died on the payload"
        os.write(fd, b"q")
        _read_until(fd, out, b"\x00never", 0.5)
        os.write(fd, b"q")
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            _read_until(fd, out, b"\x00never", 0.2)
        assert status is not None and os.waitstatus_to_exitcode(status) == 0, out[-2000:]
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    screen = out.decode("utf-8", errors="replace")
    for seq in FORBIDDEN:
        assert seq not in screen, f"payload sequence {seq!r} reached the terminal"
    assert b"\xc2\x9b" not in out
    assert "\x1b[31mRED" not in screen
    assert "\x07bell" not in screen
    assert "\x7f end" not in screen
