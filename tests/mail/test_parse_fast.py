"""The single-part shortcut builds exactly the Message the stdlib parser builds, or steps aside."""

from __future__ import annotations

from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import compat32

import pytest

from helpdesk_tui.mail import parse as parse_module
from helpdesk_tui.mail.parse import _simple_message
from tests.mail.test_parse import DATA, corpus_messages


def _full(raw: bytes) -> Message:
    return BytesParser(policy=compat32).parsebytes(raw)


def _same(fast: Message, full: Message) -> None:
    assert fast._headers == full._headers  # type: ignore[attr-defined]
    assert fast._payload == full._payload  # type: ignore[attr-defined]
    assert fast.defects == full.defects == []
    assert full.get_unixfrom() is None
    assert (full.preamble, full.epilogue) == (None, None)
    assert not full.is_multipart()


def _support_mail(n: int, *, cte: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = f"Customer {n} <customer{n}@example.com>"
    m["To"] = "support@desk.example"
    m["Subject"] = f"Printer problem {n} " + "with a long subject that folds " * 3
    m["Message-ID"] = f"<fast{n}@example.com>"
    m.set_content("Grüße, the printer is broken.\n" + "word " * 80 + "\n", cte=cte)
    return m.as_bytes()


@pytest.mark.parametrize("cte", [None, "quoted-printable", "base64", "8bit"])
@pytest.mark.parametrize("linesep", [b"\n", b"\r\n"])
def test_single_part_mail_is_built_as_the_parser_builds_it(cte: str | None, linesep: bytes) -> None:
    raw = _support_mail(1, cte=cte).replace(b"\n", linesep)
    fast = _simple_message(raw)
    assert fast is not None
    _same(fast, _full(raw))


def test_corpus_messages_it_takes_match_the_parser() -> None:
    taken = 0
    for path, raw in corpus_messages():
        fast = _simple_message(raw)
        if fast is None:
            continue
        taken += 1
        try:
            _same(fast, _full(raw))
        except AssertionError as exc:
            raise AssertionError(path) from exc
    assert taken > 50  # most real single-part mail takes the shortcut


def test_parsed_mail_is_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    raws = [raw for _, raw in corpus_messages()]
    raws += [(DATA / "customer-plain.eml").read_bytes(), _support_mail(2)]
    fast = [parse_module.parse_message(raw) for raw in raws]
    monkeypatch.setattr(parse_module, "_simple_message", lambda raw: None)
    assert fast == [parse_module.parse_message(raw) for raw in raws]


@pytest.mark.parametrize(
    "raw",
    [
        b"From someone Mon Nov 23 10:00:00 2026\nSubject: x\n\nbody\n",  # Unix From line
        b" Subject: x\n\nbody\n",  # starts with a continuation
        b"Subject: caf\xc3\xa9\n\nbody\n",  # 8-bit header
        b"Subject: x\rTo: y\n\nbody\n",  # lone CR
        b"Subject: x\nnot a header line\n\nbody\n",  # the parser ends headers here
        b": no name\n\nbody\n",
        b"Subject: x\n",  # no blank line
        b"\nbody only\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n",
        b"Content-Type: message/rfc822\n\nSubject: inner\n\nx\n",
        b"Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n",
    ],
)
def test_anything_unusual_goes_to_the_full_parser(raw: bytes) -> None:
    assert _simple_message(raw) is None
