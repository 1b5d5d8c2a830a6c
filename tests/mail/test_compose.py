"""Outgoing MIME: threading headers, the ticket tag, recipients, attachments and header safety."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage, MIMEPart
from typing import Any

import pytest

from helpdesk_tui.mail.compose import (
    MAX_REFERENCES,
    ComposeError,
    OutgoingSpec,
    build_message,
    clean_filename,
    clean_header_text,
    envelope_recipients,
    forward_spec,
    reply_recipients,
    to_bytes,
)
from helpdesk_tui.mail.msgid import make_message_id, parse_message_id
from helpdesk_tui.mail.smtp import send_message
from tests.mail.conftest import SmtpServer

SECRET = b"test-secret"
WHEN = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SEPARATORS = "\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
CONTROLS = "\x01\x07\x08\x1b\x7f\x80\x9b\x9f"


def spec(**changes: Any) -> OutgoingSpec:
    base = OutgoingSpec(
        from_addr="desk@desk.example",
        from_name="Example Support",
        to=("Zoë Customer <zoe@example.org>",),
        subject="Printer on fire",
        body="We are on it.",
        ticket=12,
        message_id=make_message_id(12, 7, SECRET, "desk.example"),
        date=WHEN,
    )
    return replace(base, **changes)


def parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def header_block(data: bytes) -> bytes:
    return data.partition(b"\r\n\r\n")[0]


def header_names(data: bytes) -> list[str]:
    """Names of the top-level header lines as a receiving server sees them."""
    lines = header_block(data).split(b"\r\n")
    return [ln.split(b":", 1)[0].decode().lower() for ln in lines if ln[:1] not in (b" ", b"\t")]


def text_of(part: MIMEPart) -> str:
    """Decoded text with LF line ends (MIME's canonical CRLF survives base64 bodies)."""
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def roundtrip(s: OutgoingSpec) -> tuple[bytes, EmailMessage]:
    data = to_bytes(build_message(s))
    return data, parse(data)


def test_reply_threading_headers() -> None:
    s = spec(
        in_reply_to="<c2@customer.example>",
        references=("<c1@customer.example>", "<hd.12.1.aaaa@desk.example> <c2@customer.example>"),
    )
    data, msg = roundtrip(s)
    assert msg["Message-ID"] == s.message_id
    assert parse_message_id(msg["Message-ID"], SECRET) == (12, 7)
    assert msg["In-Reply-To"] == "<c2@customer.example>"
    # The parent comes last, once, as RFC 5322 asks.
    assert msg["References"].split() == [
        "<c1@customer.example>",
        "<hd.12.1.aaaa@desk.example>",
        "<c2@customer.example>",
    ]
    assert msg["Subject"] == "Re: [#12] Printer on fire"
    assert msg["Date"].datetime == WHEN
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert data.isascii()


@pytest.mark.parametrize(
    "subject",
    [
        "Printer",
        "[#12] Printer",
        "Re: [#12] Printer",
        "Re: Re: [#12] [#12] Printer",
        "RE: AW: Fwd: [#12] Printer",
        "Re[2]: [#12] Re: Printer",
        "  Re :   [#12]   Printer  ",
        "SV: VS: [#12] Printer",
    ],
)
def test_subject_carries_the_tag_once(subject: str) -> None:
    _, msg = roundtrip(spec(subject=subject))
    assert msg["Subject"] == "Re: [#12] Printer"


def test_subject_prefixes_for_new_and_forward() -> None:
    assert roundtrip(spec(subject="Re: Printer", prefix=""))[1]["Subject"] == "[#12] Printer"
    assert roundtrip(spec(subject="Printer", prefix="Fwd"))[1]["Subject"] == "Fwd: [#12] Printer"
    # An old ticket's tag does not pile up either (merged tickets).
    assert roundtrip(spec(subject="Re: [#5] Printer"))[1]["Subject"] == "Re: [#12] Printer"
    # Words that merely start like a prefix stay.
    assert roundtrip(spec(subject="Result: ok"))[1]["Subject"] == "Re: [#12] Result: ok"


def test_references_are_capped_keeping_root_and_newest() -> None:
    refs = tuple(f"<m{i}@customer.example>" for i in range(60))
    _, msg = roundtrip(spec(references=refs, in_reply_to="<m59@customer.example>"))
    got = msg["References"].split()
    assert len(got) == MAX_REFERENCES
    assert got[0] == "<m0@customer.example>"
    assert got[-1] == "<m59@customer.example>"
    assert got[1] == f"<m{60 - MAX_REFERENCES + 1}@customer.example>"


def test_junk_references_are_dropped() -> None:
    _, msg = roundtrip(
        spec(
            in_reply_to="not an id",
            references=("<ok@x.example>", "<=?utf-8?q?=0D=0A?=@evil.example>", "garbage"),
        )
    )
    assert msg["In-Reply-To"] is None
    assert msg["References"] == "<ok@x.example>"


def test_recipients_cc_and_envelope() -> None:
    s = spec(
        to=("Zoë Customer <zoe@example.org>", "ZOE@example.org"),
        cc=('"Doe, John" <john@example.org>', "zoe@example.org", "bob@exämple.org"),
    )
    _, msg = roundtrip(s)
    assert [a.addr_spec for a in msg["To"].addresses] == ["zoe@example.org"]
    assert msg["To"].addresses[0].display_name == "Zoë Customer"
    cc = msg["Cc"].addresses
    assert [a.addr_spec for a in cc] == ["john@example.org", "bob@xn--exmple-cua.org"]
    assert cc[0].display_name == "Doe, John"
    assert envelope_recipients(s) == (
        "zoe@example.org",
        "john@example.org",
        "bob@xn--exmple-cua.org",
    )


def test_reply_all_recipients() -> None:
    to, cc = reply_recipients(
        sender="Zoë <zoe@example.org>",
        to="Support <desk@desk.example>, Bob <bob@example.org>",
        cc='zoe@example.org, "Doe, John" <john@example.org>, DESK@desk.example',
        own=["desk@desk.example"],
        reply_all=True,
    )
    assert to == ("Zoë <zoe@example.org>",)
    assert cc == ("Bob <bob@example.org>", '"Doe, John" <john@example.org>')
    # The tuples feed straight back into a spec.
    _, msg = roundtrip(spec(to=to, cc=cc))
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["bob@example.org", "john@example.org"]


def test_reply_goes_to_reply_to_and_plain_reply_has_no_cc() -> None:
    to, cc = reply_recipients(
        sender="zoe@example.org",
        reply_to="Tickets <tickets@example.org>",
        to="desk@desk.example, bob@example.org",
        own=["desk@desk.example"],
    )
    assert (to, cc) == (("Tickets <tickets@example.org>",), ())


def test_reply_all_to_our_own_message_answers_its_recipients() -> None:
    to, cc = reply_recipients(
        sender="desk@desk.example",
        to="zoe@example.org, bob@example.org",
        own=["desk@desk.example"],
        reply_all=True,
    )
    assert (to, cc) == (("zoe@example.org",), ("bob@example.org",))


def test_reply_recipients_drop_invalid_addresses() -> None:
    _, cc = reply_recipients(
        sender="zoe@example.org", cc="not-an-address, , @x, ok@example.org", reply_all=True
    )
    assert cc == ("ok@example.org",)


def test_forward_with_attachments_and_hostile_names() -> None:
    s = forward_spec(
        from_addr="desk@desk.example",
        from_name="Example Support",
        to=("it@example.org",),
        note="Please have a look.",
        ticket=12,
        message_id=make_message_id(12, 9, SECRET, "desk.example"),
        date=WHEN,
        original_subject="Re: [#12] Printer on fire",
        original_from="Zoë <zoe@example.org>",
        original_date=WHEN - timedelta(hours=1),
        original_to="desk@desk.example",
        original_text="It smokes.\nHelp!",
        attachments=(
            ("report\r\nBcc: victim@evil.example\r\n.pdf", "application/pdf", b"%PDF-1.4 data"),
            ("photo\u202egpj.exe", "image/jpeg", b"\xff\xd8\xff binary \x00\r\n"),
            ("../../etc/passwd", "text/plain; charset=utf-8", b"root:x:0:0"),
            ("", "no/such type!", b"?"),
        ),
    )
    data, msg = roundtrip(s)
    assert msg["Subject"] == "Fwd: [#12] Printer on fire"
    assert "bcc" not in header_names(data)
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    text = text_of(body)
    assert text.startswith("Please have a look.")
    assert "---------- Forwarded message ----------" in text
    assert "Subject: Re: [#12] Printer on fire" in text
    assert "It smokes.\nHelp!" in text
    parts = list(msg.iter_attachments())
    names = [p.get_filename() for p in parts]
    assert names == [
        "report Bcc: victim@evil.example .pdf",
        "photogpj.exe",
        "_.._etc_passwd",
        "attachment",
    ]
    assert [p.get_content_type() for p in parts] == [
        "application/pdf",
        "image/jpeg",
        "text/plain",
        "application/octet-stream",
    ]
    assert parts[0].get_content() == b"%PDF-1.4 data"
    assert parts[1].get_content() == b"\xff\xd8\xff binary \x00\r\n"
    for name in names:
        assert name is not None
        assert not any(ch in name for ch in SEPARATORS + CONTROLS + "\u202e/")


def test_acknowledgement_headers() -> None:
    _, msg = roundtrip(spec(automatic=True, loop_value="desk.example", prefix=""))
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Precedence"] == "auto_reply"
    assert msg["X-Helpdesk-Loop"] == "desk.example"
    generated = roundtrip(spec(automatic=True, auto_kind="auto-generated"))[1]
    assert generated["Auto-Submitted"] == "auto-generated"


def test_agent_reply_is_not_marked_automatic_but_carries_the_loop_header() -> None:
    _, msg = roundtrip(spec(loop_value="desk.example"))
    assert msg["Auto-Submitted"] is None
    assert msg["Precedence"] is None
    assert msg["X-Helpdesk-Loop"] == "desk.example"


def test_body_signature_and_quote() -> None:
    s = spec(
        body="Grüße,\r\nwe replaced the toner.\x1b[31m\n",
        signature="Alice Able\nExample Support",
        quote="It smokes.\n\nHelp!\n",
        quote_author="Zoë Customer\r\nBcc: x@evil.example",
        quote_date=datetime(2026, 11, 22, 9, 30, tzinfo=UTC),
    )
    _, msg = roundtrip(s)
    assert text_of(msg) == (
        "Grüße,\nwe replaced the toner.[31m\n"
        "\n"
        "-- \nAlice Able\nExample Support\n"
        "\n"
        "On 2026-11-22 09:30 +0000, Zoë Customer Bcc: x@evil.example wrote:\n"
        "> It smokes.\n"
        ">\n"
        "> Help!\n"
    )


def test_long_and_non_ascii_lines_stay_7bit() -> None:
    body = "ä" * 2000 + "\n" + "x" * 3000
    data, msg = roundtrip(spec(body=body, from_name="Ünïcode Désk"))
    assert data.isascii()
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert text_of(msg).rstrip("\n") == body
    assert msg["From"].addresses[0].display_name == "Ünïcode Désk"


def test_date_keeps_its_offset() -> None:
    cet = datetime(2026, 11, 23, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    _, msg = roundtrip(spec(date=cet))
    assert msg["Date"].datetime == WHEN


@pytest.mark.parametrize(
    "changes",
    [
        {"date": datetime(2026, 11, 23, 10, 0)},  # naive
        {"message_id": "no-brackets@desk.example"},
        {"message_id": "<a@b> <c@d>"},
        {"from_addr": "desk"},
        {"to": ("not an address",)},
        {"to": ("a@b@c.example",)},
        {"to": ("zoë@example.org",)},
        {"to": ("eve@example.org>, <victim@evil.example",)},
        {"to": ()},
    ],
)
def test_unsafe_specs_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ComposeError):
        build_message(spec(**changes))


@pytest.mark.parametrize("ch", list(SEPARATORS + CONTROLS + "\u202e"))
def test_no_separator_or_control_reaches_a_header(ch: str) -> None:
    hostile = f"A{ch}Bcc: victim@evil.example{ch}X"
    s = spec(
        subject=hostile,
        from_name=hostile,
        to=(f'"{hostile}" <zoe@example.org>',),
        loop_value=hostile,
        attachments=((hostile, "text/plain", b"x"),),
        in_reply_to=f"<a@b.example>{ch}Bcc: victim@evil.example",
    )
    data, msg = roundtrip(s)
    assert header_names(data) == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "x-helpdesk-loop",
        "mime-version",
        "content-type",
    ]
    for name, value in msg.items():
        assert not any(c in str(value) for c in SEPARATORS + CONTROLS + "\u202e"), name
    [part] = list(msg.iter_attachments())
    # Line breaks become spaces; other controls (NUL included) and bidi overrides vanish.
    breaks = SEPARATORS.replace("\x00", "")
    expected = "A Bcc: victim@evil.example X" if ch in breaks else "ABcc: victim@evil.exampleX"
    assert part.get_filename() == expected
    assert msg["Subject"] == f"Re: [#12] {expected}"


def test_clean_header_text_handles_parsed_header_objects() -> None:
    incoming = parse(b"Subject: =?utf-8?q?Hello=0D=0ABcc:_victim@evil.example?=\r\n\r\nbody\r\n")
    value = incoming["Subject"]
    assert "\r\n" in value  # the parsed object really holds the decoded CR LF
    cleaned = clean_header_text(value)
    assert type(cleaned) is str
    assert cleaned == "Hello Bcc: victim@evil.example"
    assert clean_filename("..\\..\\x\u2028y") == "_.._x y"


async def test_injection_reproducer_through_a_real_server(smtp_server: SmtpServer) -> None:
    """CVE-2024-6923: a parsed subject with an encoded CR LF reused in a reply adds no header."""
    incoming = parse(
        b"From: Eve <eve@example.org>\r\n"
        b"To: desk@desk.example\r\n"
        b"Subject: =?utf-8?q?Hello=0D=0ABcc:_victim@evil.example?=\r\n"
        b"Message-ID: <evil-1@example.org>\r\n"
        b"\r\n"
        b"hi\r\n"
    )
    s = spec(
        to=(str(incoming["From"]),),
        subject=incoming["Subject"],
        in_reply_to=incoming["Message-ID"],
        quote_author=incoming["Subject"],
    )
    data = to_bytes(build_message(s))
    result = await send_message(
        smtp_server.settings(), s.from_addr, envelope_recipients(s), data, timeout=10
    )
    assert result.outcome == "sent", result.detail
    [got] = smtp_server.messages
    assert got.rcpt_tos == ("eve@example.org",)
    names = header_names(got.content.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n"))
    assert "bcc" not in names
    assert sorted(names) == sorted(
        [
            *("from", "to", "subject", "date", "message-id", "in-reply-to", "references"),
            *("mime-version", "content-type", "content-transfer-encoding"),
        ]
    )
    received = parse(got.content)
    assert received["Bcc"] is None
    assert received["Subject"] == "Re: [#12] Hello Bcc: victim@evil.example"


def test_raw_encoded_word_text_is_not_decoded_into_a_header() -> None:
    # The same attack as an undecoded string: assigning it would decode it on 3.11.
    raw = "=?utf-8?q?Hello=0D=0ABcc:_victim@evil.example?="
    data, msg = roundtrip(spec(subject=raw, from_name=raw, to=(f'"{raw}" <zoe@example.org>',)))
    assert "bcc" not in header_names(data)
    assert msg["Subject"] == "Re: [#12] Hello Bcc: victim@evil.example"


def test_to_bytes_refuses_an_injected_header_block() -> None:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "desk@desk.example"
    msg["Subject"] = "=?utf-8?q?Hello=0D=0ABcc:_victim@evil.example?="
    msg.set_content("x")
    try:
        data = to_bytes(msg)
    except ComposeError:
        return  # Python 3.11 before 3.11.10: the backstop caught what the stdlib let through
    assert "bcc" not in header_names(data)  # a patched stdlib encodes the CR LF instead
