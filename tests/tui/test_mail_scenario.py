"""The second seed scenario through the keyboard, with a real Dovecot and a real aiosmtpd:
incoming mail -> read -> forward to a supplier (with its attachment) -> reply -> close.

The app runs the worker duties itself (no `helpdesk worker` holds the lease): it imports the
mail from Dovecot and sends the forward and the reply through aiosmtpd on its own.
"""

from __future__ import annotations

import email
from dataclasses import replace
from email import policy
from email.message import EmailMessage

import pytest

from helpdesk_tui.clock import FixedClock
from helpdesk_tui.config import Config, MailboxConfig, PasswordSource, SmtpConfig
from helpdesk_tui.desk import lease
from helpdesk_tui.desk.service import Desk
from helpdesk_tui.desk.setup import apply_config
from helpdesk_tui.store.engine import Store
from helpdesk_tui.tui.app import HelpdeskApp
from helpdesk_tui.tui.screens.compose import ComposeScreen
from helpdesk_tui.tui.screens.detail import DetailScreen
from helpdesk_tui.tui.screens.main import MainScreen
from helpdesk_tui.tui.widgets.ticket_list import TicketList
from tests.imap_server import Dovecot
from tests.mail.conftest import SmtpServer, smtp_factory, smtp_server  # noqa: F401
from tests.tui.conftest import messages_shown, settle
from tests.tui.test_live import status_text, wait_until


def customer_mail() -> bytes:
    m = EmailMessage()
    m["From"] = "Pia Printer <pia@printshop.example>"
    m["To"] = "support@desk.example"
    m["Subject"] = "Toner cartridge leaks"
    m["Message-ID"] = "<toner-1@printshop.example>"
    m["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    m.set_content("Hello,\n\nthe new cartridge leaks all over the desk. Photo attached.\n\nPia")
    m.add_attachment(b"\x89PNG fake photo", maintype="image", subtype="png", filename="leak.png")
    return m.as_bytes()


@pytest.fixture
def mail_config(
    config: Config,
    store: Store,
    dovecot: Dovecot,
    smtp_server: SmtpServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Config, str]:
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "pass")
    user = dovecot.new_user()
    cfg = replace(
        config,
        mailboxes=(
            MailboxConfig(
                name="support",
                address="support@desk.example",
                host="127.0.0.1",
                port=dovecot.port,
                security="plain",
                username=user,
                password=PasswordSource(env="TEST_IMAP_PASSWORD"),
                category="Support",
            ),
        ),
        smtp=SmtpConfig(host="127.0.0.1", port=smtp_server.port, security="plain", timeout=5),
    )
    apply_config(store, cfg)
    return cfg, user


async def test_incoming_mail_read_forward_reply_close(
    desk: Desk,
    clock: FixedClock,
    store: Store,
    dovecot: Dovecot,
    smtp_server: SmtpServer,  # noqa: F811
    mail_config: tuple[Config, str],
) -> None:
    cfg, user = mail_config
    app = HelpdeskApp(
        desk=desk, config=cfg, clock=clock, cursor_blink=False, live_interval=0.1, duty_every=0.3
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("g", "u")  # the unassigned queue, where new mail lands
        await settle(pilot)
        tickets = app.screen.query_one(TicketList)
        assert tickets.total == 0

        # Mail arrives; the app's own worker imports it and the list shows it, no key pressed.
        dovecot.append(user, [customer_mail()])
        await wait_until(pilot, lambda: tickets.total == 1, within=15)
        await wait_until(pilot, lambda: tickets.current is not None, within=5)
        ticket = tickets.current
        assert ticket is not None and ticket.title == "Toner cartridge leaks"
        assert ticket.read_status == "red"
        assert app.live.status.duties == "app"
        held = lease.read(store)
        assert held is not None and held.kind == "app"
        await wait_until(pilot, lambda: "support ok" in status_text(app), within=5)

        # Read it (and take it).
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        number = app.screen.number
        text = messages_shown(app.screen)
        assert "leak.png" in text and "why here" in text
        await pilot.press("t")
        await settle(pilot)
        assert desk.show(number).summary.owner == "alice"

        # Forward to the supplier with the photo.
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        await pilot.press(*"sales@tonersupplier.example", "tab")
        await settle(pilot)
        await pilot.press("space", "tab", *"Your cartridge leaks, see the photo.", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)

        # Reply to the customer.
        await pilot.press("r")
        await settle(pilot)
        await pilot.press(*"We asked the supplier for a replacement.", "ctrl+s")
        await settle(pilot)

        # The app's worker sends both through aiosmtpd.
        def delivered(to: str) -> bool:
            return any(to in m.rcpt_tos for m in smtp_server.messages)

        await wait_until(
            pilot,
            lambda: delivered("sales@tonersupplier.example") and delivered("pia@printshop.example"),
            within=15,
        )
        forward = next(
            m for m in smtp_server.messages if "sales@tonersupplier.example" in m.rcpt_tos
        )
        parsed = email.message_from_bytes(forward.content, policy=policy.default)
        assert "Your cartridge leaks" in str(parsed.get_body(("plain",)).get_content())  # type: ignore[union-attr, unused-ignore]
        assert [p.get_filename() for p in parsed.iter_attachments()] == ["leak.png"]
        replies = [
            email.message_from_bytes(m.content, policy=policy.default)
            for m in smtp_server.messages
            if "pia@printshop.example" in m.rcpt_tos
        ]
        assert any(
            "We asked the supplier" in str(r.get_body(("plain",)).get_content())  # type: ignore[union-attr, unused-ignore]
            for r in replies
        )
        await wait_until(
            pilot,
            lambda: all(m.outbox_state in (None, "sent") for m in desk.show(number).messages),
            within=10,
        )

        # Close it and go back to the list.
        await pilot.press("c")
        await settle(pilot)
        assert desk.show(number).summary.base_status == "closed"
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
    assert lease.read(store) is None  # quitting gave the lease back
