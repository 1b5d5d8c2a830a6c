"""SMTP delivery against a real aiosmtpd: outcomes, TLS, AUTH, reuse and the retry schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helpdesk_tui.mail.smtp import (
    GIVE_UP_AFTER,
    SmtpSession,
    SmtpSettings,
    backoff_after,
    send_message,
    should_give_up,
)
from tests.mail.conftest import PASSWORD, ServerFactory, SmtpServer

# The AUTH tests run on a plain port on purpose (aiosmtpd warns about exactly that).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SENDER = "desk@desk.example"
MESSAGE = (
    b"From: desk@desk.example\r\nTo: zoe@example.org\r\nBcc: hidden@evil.example\r\n"
    b"Subject: [#1] Test\r\nMessage-ID: <t1@desk.example>\r\n\r\nHello\r\n"
)


async def test_sent_with_explicit_envelope(smtp_server: SmtpServer) -> None:
    result = await send_message(
        smtp_server.settings(), SENDER, ["zoe@example.org"], MESSAGE, timeout=10
    )
    assert (result.outcome, result.code, result.accepted_data) == ("sent", 250, True)
    assert result.ok
    [got] = smtp_server.messages
    assert got.mail_from == SENDER
    # Headers never choose recipients: the Bcc line in the message is not a recipient.
    assert got.rcpt_tos == ("zoe@example.org",)
    assert got.content.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")


async def test_4xx_means_retry_then_success(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(1, "451 4.3.0 Mailbox temporarily busy")
    first = await send_message(
        smtp_server.settings(), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert (first.outcome, first.code, first.accepted_data) == ("retry", 451, False)
    assert "temporarily busy" in first.detail
    second = await send_message(
        smtp_server.settings(), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert second.outcome == "sent"
    assert len(smtp_server.messages) == 1


async def test_5xx_means_failed_with_reason(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(1, "554 5.7.1 Message rejected as spam")
    result = await send_message(
        smtp_server.settings(), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert (result.outcome, result.code, result.accepted_data) == ("failed", 554, False)
    assert "rejected as spam" in result.detail
    assert smtp_server.messages == []


async def test_dropped_connection_means_retry(smtp_server: SmtpServer) -> None:
    smtp_server.drop_next(1)
    result = await send_message(
        smtp_server.settings(), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert (result.outcome, result.code, result.accepted_data) == ("retry", None, False)
    assert smtp_server.messages == []


async def test_nothing_listening_means_retry(closed_port: int) -> None:
    settings = SmtpSettings("127.0.0.1", closed_port, security="plain", timeout=5)
    result = await send_message(settings, SENDER, ["a@example.org"], MESSAGE, timeout=10)
    assert (result.outcome, result.code) == ("retry", None)


async def test_silent_server_times_out_as_retry(silent_port: int) -> None:
    settings = SmtpSettings("127.0.0.1", silent_port, security="plain", timeout=0.3)
    result = await send_message(settings, SENDER, ["a@example.org"], MESSAGE, timeout=5)
    assert result.outcome == "retry"


async def test_overall_timeout_bounds_the_exchange(silent_port: int) -> None:
    settings = SmtpSettings("127.0.0.1", silent_port, security="plain", timeout=30)
    result = await send_message(settings, SENDER, ["a@example.org"], MESSAGE, timeout=0.3)
    assert result.outcome == "retry"


async def test_some_recipients_refused_is_failed_naming_them(smtp_server: SmtpServer) -> None:
    smtp_server.refuse("ghost@example.org", "550 5.1.1 No such user")
    result = await send_message(
        smtp_server.settings(),
        SENDER,
        ["zoe@example.org", "ghost@example.org"],
        MESSAGE,
        timeout=10,
    )
    assert (result.outcome, result.code, result.accepted_data) == ("failed", 550, True)
    assert "ghost@example.org" in result.detail and "No such user" in result.detail
    assert result.refused == (("ghost@example.org", 550, "550 5.1.1 No such user"),)
    [got] = smtp_server.messages
    assert got.rcpt_tos == ("zoe@example.org",)


async def test_deferred_recipient_is_retry_for_that_one(smtp_server: SmtpServer) -> None:
    smtp_server.refuse("slow@example.org", "450 4.2.1 Try again later")
    result = await send_message(
        smtp_server.settings(), SENDER, ["zoe@example.org", "slow@example.org"], MESSAGE, timeout=10
    )
    assert (result.outcome, result.accepted_data) == ("retry", True)
    assert [r[0] for r in result.refused] == ["slow@example.org"]


async def test_all_recipients_refused(smtp_server: SmtpServer) -> None:
    smtp_server.refuse("ghost@example.org", "550 5.1.1 No such user")
    result = await send_message(
        smtp_server.settings(), SENDER, ["ghost@example.org"], MESSAGE, timeout=10
    )
    assert (result.outcome, result.code, result.accepted_data) == ("failed", 550, False)
    assert "ghost@example.org" in result.detail


async def test_bad_envelope_fails_before_connecting(closed_port: int) -> None:
    settings = SmtpSettings("127.0.0.1", closed_port, security="plain")
    assert (await send_message(settings, SENDER, [], MESSAGE, timeout=5)).outcome == "failed"
    injected = await send_message(
        settings, SENDER, ["a@x.example\r\nRCPT TO:<b@x>"], MESSAGE, timeout=5
    )
    assert injected.outcome == "failed"


async def test_auth_success(smtp_factory: ServerFactory) -> None:
    server = smtp_factory(auth=True)
    result = await send_message(server.settings(), SENDER, ["a@example.org"], MESSAGE, timeout=10)
    assert result.outcome == "sent"
    assert len(server.messages) == 1


async def test_auth_failure_is_clear(smtp_factory: ServerFactory) -> None:
    server = smtp_factory(auth=True)
    settings = server.settings(password=PASSWORD + "-wrong")
    result = await send_message(settings, SENDER, ["a@example.org"], MESSAGE, timeout=10)
    assert (result.outcome, result.code) == ("failed", 535)
    assert result.detail.startswith("authentication failed:")
    assert server.messages == []


async def test_auth_required_without_credentials_fails(smtp_factory: ServerFactory) -> None:
    server = smtp_factory(auth=True)
    result = await send_message(
        server.settings(username="", password=""), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert result.outcome == "failed"
    assert result.code is not None and result.code >= 500


async def test_auth_not_offered_fails(smtp_server: SmtpServer) -> None:
    settings = smtp_server.settings(username="agent", password="x")
    result = await send_message(settings, SENDER, ["a@example.org"], MESSAGE, timeout=10)
    assert result.outcome == "failed"
    assert result.detail.startswith("authentication failed:")


async def test_starttls_not_offered_is_failure_not_plaintext(smtp_server: SmtpServer) -> None:
    result = await send_message(
        smtp_server.settings(security="starttls"), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert (result.outcome, result.accepted_data) == ("failed", False)
    assert "STARTTLS" in result.detail
    assert smtp_server.messages == []


async def test_starttls_with_verified_certificate(smtp_factory: ServerFactory) -> None:
    server = smtp_factory(starttls=True, auth=True)
    result = await send_message(server.settings(), SENDER, ["a@example.org"], MESSAGE, timeout=10)
    assert result.outcome == "sent", result.detail
    assert len(server.messages) == 1


async def test_starttls_untrusted_certificate_fails(smtp_factory: ServerFactory) -> None:
    server = smtp_factory(starttls=True)
    result = await send_message(
        server.settings(cafile=""), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert result.outcome == "failed"
    assert "certificate" in result.detail
    assert server.messages == []


async def test_plain_client_against_starttls_only_server_is_refused(
    smtp_factory: ServerFactory,
) -> None:
    server = smtp_factory(starttls=True)
    result = await send_message(
        server.settings(security="plain"), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert result.outcome == "failed"
    assert server.messages == []


async def test_smtps_with_verified_certificate(smtp_factory: ServerFactory) -> None:
    server = smtp_factory(smtps=True)
    result = await send_message(server.settings(), SENDER, ["a@example.org"], MESSAGE, timeout=10)
    assert result.outcome == "sent", result.detail
    untrusted = await send_message(
        server.settings(cafile=""), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert untrusted.outcome == "failed"
    assert len(server.messages) == 1


async def test_session_reuses_one_connection(smtp_server: SmtpServer) -> None:
    async with SmtpSession(smtp_server.settings()) as session:
        results = [await session.send(SENDER, [f"u{i}@example.org"], MESSAGE) for i in range(5)]
    assert [r.outcome for r in results] == ["sent"] * 5
    assert session.connections == 1
    assert [m.rcpt_tos for m in smtp_server.messages] == [(f"u{i}@example.org",) for i in range(5)]


async def test_session_reconnects_after_errors(smtp_server: SmtpServer) -> None:
    smtp_server.drop_next(1)
    smtp_server.fail_next(1, "451 4.3.0 later")
    async with SmtpSession(smtp_server.settings()) as session:
        dropped = await session.send(SENDER, ["a@example.org"], MESSAGE)
        deferred = await session.send(SENDER, ["b@example.org"], MESSAGE)
        sent = await session.send(SENDER, ["c@example.org"], MESSAGE)
    assert [dropped.outcome, deferred.outcome, sent.outcome] == ["retry", "retry", "sent"]
    assert session.connections == 3
    assert [m.rcpt_tos for m in smtp_server.messages] == [("c@example.org",)]


async def test_session_notices_a_closed_idle_connection(smtp_server: SmtpServer) -> None:
    smtp_server.hang_up_after_next(1)
    async with SmtpSession(smtp_server.settings(), idle_check_after=0) as session:
        first = await session.send(SENDER, ["a@example.org"], MESSAGE)
        second = await session.send(SENDER, ["b@example.org"], MESSAGE)
    assert [first.outcome, second.outcome] == ["sent", "sent"]
    assert session.connections == 2
    assert len(smtp_server.messages) == 2


async def test_session_reports_dead_server_per_message(closed_port: int) -> None:
    settings = SmtpSettings("127.0.0.1", closed_port, security="plain", timeout=5)
    async with SmtpSession(settings) as session:
        result = await session.send(SENDER, ["a@example.org"], MESSAGE)
    assert result.outcome == "retry"


async def test_unknown_security_fails_every_send(smtp_server: SmtpServer) -> None:
    result = await send_message(
        smtp_server.settings(security="tls"), SENDER, ["a@example.org"], MESSAGE, timeout=10
    )
    assert result.outcome == "failed"
    assert "security" in result.detail
    assert smtp_server.messages == []


def test_password_not_in_repr() -> None:
    assert "hunter2" not in repr(SmtpSettings("h", 25, username="u", password="hunter2"))


@pytest.mark.parametrize(
    ("attempts", "minutes"),
    [(0, 0), (1, 1), (2, 5), (3, 15), (4, 60), (5, 120), (6, 240), (7, 480), (8, 960)],
)
def test_backoff_schedule(attempts: int, minutes: int) -> None:
    assert backoff_after(attempts) == timedelta(minutes=minutes)


def test_backoff_caps_at_a_day() -> None:
    assert backoff_after(9) == timedelta(hours=24)
    assert backoff_after(10_000) == timedelta(hours=24)


def test_give_up_after_a_day() -> None:
    queued = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert timedelta(hours=24) == GIVE_UP_AFTER
    assert not should_give_up(queued, queued + timedelta(hours=23, minutes=59))
    assert should_give_up(queued, queued + timedelta(hours=24))
