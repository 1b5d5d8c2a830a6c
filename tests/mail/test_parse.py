"""parse_message: fields, decoding fallbacks, cleaning, bounds, and the real-world corpus."""

from __future__ import annotations

import base64
import hashlib
import mailbox
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdesk_tui.mail import parse as parse_module
from helpdesk_tui.mail.parse import MAX_LINE_CHARS, ParsedMail, parse_message

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA = PROJECT_ROOT / "tests" / "data"
CORPUS = PROJECT_ROOT / ".." / "shared" / "corpus"
PER_MESSAGE_LIMIT_S = 2.0


def eml(*header_lines: str, body: str = "Hello.", sep: str = "\r\n") -> bytes:
    return (sep.join(header_lines) + sep + sep + body).encode("utf-8", "surrogateescape")


def corpus_messages() -> list[tuple[str, bytes]]:
    """Every message named in INDEX.tsv, mbox files split the way the index counted them."""
    if not (CORPUS / "INDEX.tsv").is_file():
        pytest.skip(f"shared corpus not found at {CORPUS.resolve()} (only in the project checkout)")
    boxes: dict[str, mailbox.mbox] = {}
    out: list[tuple[str, bytes]] = []
    for line in (CORPUS / "INDEX.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        path = line.split("\t")[0]
        if "#" in path:
            name, _, n = path.partition("#")
            box = boxes.setdefault(name, mailbox.mbox(CORPUS / name, create=False))
            out.append((path, box.get_bytes(box.keys()[int(n)])))
        else:
            out.append((path, (CORPUS / path).read_bytes()))
    return out


# --- ordinary fields --------------------------------------------------------------------------


def test_customer_message_fields() -> None:
    raw = (DATA / "customer-plain.eml").read_bytes()
    mail = parse_message(raw)
    assert mail.message_id == "<8c2f1e40-0006@customer.example>"
    assert not mail.message_id_synthesized
    assert mail.subject == "Drucker im 3. Stock druckt nicht – dringend"
    assert (mail.from_addr, mail.from_name) == ("jane@customer.example", "Jane Customer")
    assert mail.to == ("support@desk.example",)
    assert mail.cc == ("boss@customer.example",)
    assert mail.date == datetime(2026, 11, 23, 8, 41, tzinfo=UTC)
    assert mail.text.startswith("Hallo,\n\nder Drucker")
    assert "Können Sie helfen?" in mail.text
    assert "<p>" in mail.html
    assert mail.attachments == ()
    assert not mail.needs_review
    assert mail.charset_fallbacks == ()
    assert "Message-ID: <8c2f1e40-0006@customer.example>" in mail.raw_headers
    assert "\r" not in mail.raw_headers
    assert len(mail.sha256) == 64


def test_threading_headers() -> None:
    mail = parse_message(
        eml(
            "From: a@example.org",
            "Message-ID: <m3@example.org>",
            "In-Reply-To: <m2@example.org> (Zoe's message of Monday)",
            "References: <m1@example.org>\r\n <m2@example.org> <m1@example.org>",
        )
    )
    assert mail.in_reply_to == "<m2@example.org>"
    assert mail.references == ("<m1@example.org>", "<m2@example.org>")


def test_message_id_without_brackets_is_wrapped() -> None:
    mail = parse_message(eml("From: a@example.org", "Message-ID: bare-id@example.org"))
    assert mail.message_id == "<bare-id@example.org>"


def test_ids_are_cleaned_and_bounded() -> None:
    mail = parse_message(
        eml(
            "From: a@example.org",
            "Message-ID: <" + "x" * 2000 + "@example.org>",
            "In-Reply-To: <a\x1b[2J@example.org>",
            "References: <ok@example.org> <" + "y" * 2000 + "@example.org>",
        )
    )
    assert mail.message_id_synthesized
    assert mail.in_reply_to == "<a[2J@example.org>"
    assert mail.references == ("<ok@example.org>",)


def test_missing_message_id_is_synthesized_stably_across_redelivery() -> None:
    msg = ["From: a@example.org", "To: b@example.org", "Subject: hi", "Date: 1 Jan 2026 0:00 Z"]
    first = parse_message(eml("Received: from x by y; 1 Jan 2026", *msg))
    again = parse_message(eml("Received: from z by w; 2 Jan 2026", "Delivered-To: q@x", *msg))
    other = parse_message(eml(*msg, body="Different body."))
    assert first.message_id_synthesized
    assert first.message_id.endswith("@synthesized.invalid>")
    assert first.message_id == again.message_id
    assert first.message_id != other.message_id
    assert "no Message-ID; synthesized" in first.defects


def test_dates_become_utc_and_bad_dates_none() -> None:
    def date_of(value: str) -> datetime | None:
        return parse_message(eml("From: a@example.org", f"Date: {value}")).date

    assert date_of("Mon, 23 Nov 2026 12:00:00 +0200") == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert date_of("Mon, 23 Nov 2026 12:00:00 -0000") == datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert date_of("the day after tomorrow") is None
    assert date_of("Mon, 99 Foo 20266 99:99:99 +9999") is None
    missing = parse_message(eml("From: a@example.org"))
    assert missing.date is None
    assert "no Date header" in missing.defects


def test_unlisted_recipients_group_does_not_raise() -> None:
    mail = parse_message(eml("From: a@example.org", "To: unlisted-recipients:; (no To-header)"))
    assert mail.to == ()
    assert not mail.needs_review


def test_addresses_lower_cased_deduplicated_and_names_decoded() -> None:
    mail = parse_message(
        eml(
            'From: "Smith, Jo" <Jo.Smith@Example.ORG>',
            "To: A <a@x.example>, b@x.example,\r\n A again <A@X.example>",
            "Cc: =?utf-8?q?Zo=C3=AB?= <zoe@x.example>, undisclosed-recipients:;",
            "Reply-To: help@x.example",
        )
    )
    assert (mail.from_addr, mail.from_name) == ("jo.smith@example.org", "Smith, Jo")
    assert mail.to == ("a@x.example", "b@x.example")
    assert mail.cc == ("zoe@x.example",)
    assert mail.reply_to == ("help@x.example",)


def test_no_from_is_noted() -> None:
    mail = parse_message(eml("To: b@example.org", "Subject: orphan"))
    assert mail.from_addr == ""
    assert "no From address" in mail.defects


# --- header decoding --------------------------------------------------------------------------


def test_encoded_words_joined_across_split_multibyte_characters() -> None:
    # "日本語" split in the middle of a character across two B words.
    data = "日本語".encode()
    a, b = base64.b64encode(data[:4]).decode(), base64.b64encode(data[4:]).decode()
    mail = parse_message(
        eml("From: a@example.org", f"Subject: =?UTF-8?B?{a}?=\r\n =?UTF-8?B?{b}?=")
    )
    assert mail.subject == "日本語"


def test_whitespace_between_encoded_words_dropped_but_kept_around_text() -> None:
    mail = parse_message(
        eml("From: a@example.org", "Subject: Re: =?utf-8?q?caf=C3=A9?= =?utf-8?q?_au?= lait")
    )
    assert mail.subject == "Re: café au lait"


def test_encoded_word_language_suffix_and_lower_case_encoding() -> None:
    mail = parse_message(eml("From: a@example.org", "Subject: =?iso-8859-1*fr?q?d=E9j=E0?="))
    assert mail.subject == "déjà"


def test_raw_8bit_headers_read_as_utf8_then_windows_1252() -> None:
    raw = b"From: J\xc3\xbcrgen <j@example.org>\r\nSubject: Gr\xfc\xdfe\r\n\r\nbody"
    mail = parse_message(raw)
    assert mail.from_name == "Jürgen"
    assert mail.subject == "Grüße"
    assert any("windows-1252" in note for note in mail.charset_fallbacks)


@pytest.mark.parametrize("charset", ["x-unknown", "x-mac-cyrillic", "bogus\x01", "zlib", "base64"])
def test_unknown_charsets_fall_back_and_are_noted(charset: str) -> None:
    body = "Привет, мир".encode()
    raw = (
        f"From: a@example.org\r\nSubject: =?{charset}?q?caf=C3=A9?=\r\n"
        f"Content-Type: text/plain; charset={charset}\r\n\r\n"
    ).encode() + body
    mail = parse_message(raw)
    assert mail.text == "Привет, мир"
    assert mail.subject == "café"
    assert not mail.needs_review
    assert any("unknown charset" in note for note in mail.charset_fallbacks)


def test_wrong_charset_falls_back() -> None:
    raw = b"From: a@example.org\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nna\xefve caf\xe9"
    mail = parse_message(raw)
    assert mail.text == "naïve café"
    assert mail.charset_fallbacks == ("text/plain: not valid utf-8; read as windows-1252",)


def test_legacy_label_read_as_superset() -> None:
    # 0x80 is the euro sign in windows-1252; strict iso-8859-1 would yield a C1 control.
    raw = b"From: a@example.org\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n5 \x80"
    assert parse_message(raw).text == "5 €"


def test_broken_encoded_word_kept_literally() -> None:
    mail = parse_message(eml("From: a@example.org", "Subject: =?utf-8?B?%%%?= ok"))
    assert mail.subject.endswith("ok")


def test_huge_subject_is_cut() -> None:
    mail = parse_message(eml("From: a@example.org", "Subject: " + "x" * 50_000))
    assert len(mail.subject) == MAX_LINE_CHARS
    assert any("Subject: cut" in d for d in mail.defects)


# --- cleaning at ingest -----------------------------------------------------------------------


def test_untrusted_text_is_cleaned_everywhere() -> None:
    payload = base64.b64encode(b"data").decode()
    raw = eml(
        "From: =?utf-8?q?Evil=1B=5B2J_=E2=80=AEnimda?= <evil@example.org>",
        "Subject: =?utf-8?q?Pay_now=1B]0;pwned=07_=C2=9B31m?=",
        'Content-Type: multipart/mixed; boundary="b"',
        body=(
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "look \x1b[31mred\x1b[0m \u202eexe.pdf\r\n"
            "--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment;"
            ' filename="=?utf-8?q?..=2F..=2Finvoice=E2=80=AEfdp.exe?="'
            f"\r\n\r\n{payload}\r\n--b--\r\n"
        ),
    )
    mail = parse_message(raw)
    for value in (mail.subject, mail.from_name, mail.text, mail.attachments[0].filename):
        assert "\x1b" not in value
        assert "\u202e" not in value
        assert "\x9b" not in value
        assert "\x07" not in value
    assert mail.from_name == "Evil[2J nimda"
    assert mail.subject == "Pay now]0;pwned 31m"
    assert mail.text == "look [31mred[0m exe.pdf"
    assert mail.attachments[0].filename == "_.._invoicefdp.exe"
    assert "/" not in mail.attachments[0].filename


# --- bodies -----------------------------------------------------------------------------------


def test_html_only_converted_with_tables_and_lists_legible() -> None:
    html = (
        "<html><body><h1>Order 42</h1><table><tr><td>Widget</td><td>3</td></tr>"
        "<tr><td>Gadget</td><td>5</td></tr></table><ul><li>first</li><li>second</li></ul>"
        "<script>alert(1)</script></body></html>"
    )
    mail = parse_message(eml("From: a@example.org", "Content-Type: text/html", body=html))
    assert mail.html == html
    assert "Order 42" in mail.text
    assert any("Widget" in line and "3" in line for line in mail.text.splitlines())
    assert "* first" in mail.text
    assert "alert" not in mail.text
    assert "<td>" not in mail.text


def test_alternative_prefers_plain_and_keeps_html_field() -> None:
    mail = parse_message((DATA / "customer-plain.eml").read_bytes())
    assert "<p>" not in mail.text
    assert mail.text.count("Können Sie helfen?") == 1


def test_attachments_collected_with_hash_and_names() -> None:
    pdf = b"%PDF-1.4 fake"
    raw = eml(
        "From: a@example.org",
        'Content-Type: multipart/mixed; boundary="b"',
        body=(
            "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            '--b\r\nContent-Type: application/pdf; name="r.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
            f"{base64.b64encode(pdf).decode()}\r\n"
            "--b\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename*=utf-8''%C3%BCbersicht.xlsx\r\n\r\nxx\r\n"
            "--b--\r\n"
        ),
    )
    mail = parse_message(raw)
    assert mail.text == "see attached"
    names = [a.filename for a in mail.attachments]
    assert names == ["r.pdf", "part-2.png", "übersicht.xlsx"]
    first = mail.attachments[0]
    assert (first.content_type, first.data) == ("application/pdf", pdf)
    assert first.sha256 == hashlib.sha256(pdf).hexdigest()


def test_multipart_without_usable_boundary_is_shown_as_text() -> None:
    raw = eml(
        "From: a@example.org",
        'Content-Type: multipart/alternative; boundary="never-used"',
        body="Good day,\r\nthe body has no boundary lines at all.\r\n",
    )
    mail = parse_message(raw)
    assert mail.text == "Good day,\nthe body has no boundary lines at all."
    assert mail.attachments == ()


def test_raw_8bit_filename_is_recovered() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; name=ci\xc3\xable.txt\r\n"
        b"Content-Disposition: attachment; filename=ci\xc3\xable.txt\r\n\r\nhello\r\n--b--\r\n"
    )
    assert [a.filename for a in parse_message(raw).attachments] == ["ciële.txt"]


def test_text_attachment_is_not_body() -> None:
    messages = dict(corpus_messages())
    mail = parse_message(messages["django-helpdesk/blank-body-with-attachment.eml"])
    assert mail.text == ""
    assert [(a.filename, a.data) for a in mail.attachments] == [
        ("baf", b"You shouldn't see this.\n")
    ]


def test_nested_message_is_quoted_with_a_header_summary() -> None:
    inner = (
        "From: Original Sender <orig@example.net>\r\nTo: a@example.org\r\n"
        "Subject: =?utf-8?q?Urspr=C3=BCnglich?=\r\nDate: Sun, 22 Nov 2026 08:00:00 +0000\r\n"
        'Content-Type: multipart/mixed; boundary="in"\r\n\r\n'
        "--in\r\nContent-Type: text/html\r\n\r\n<p>inner <b>html</b></p>\r\n"
        '--in\r\nContent-Type: text/csv; name="data.csv"\r\n\r\na,b\r\n--in--\r\n'
    )
    raw = eml(
        "From: fwd@example.org",
        'Content-Type: multipart/mixed; boundary="out"',
        body=(
            "--out\r\nContent-Type: text/plain\r\n\r\nPlease look at this.\r\n"
            "--out\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "--out--\r\n"
        ),
    )
    mail = parse_message(raw)
    assert mail.text.startswith(
        "Please look at this.\n\n> From: Original Sender <orig@example.net>"
    )
    assert "> Subject: Ursprünglich" in mail.text
    assert "> inner html" in mail.text
    assert [a.filename for a in mail.attachments] == ["data.csv"]
    assert mail.html == ""  # only the top-level message's own HTML


def test_delivery_report_is_flagged_and_rendered() -> None:
    raw = eml(
        "From: MAILER-DAEMON@mx.example.org",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
        body=(
            "--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
            "--r\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example.org\r\n\r\n"
            "Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            "From: support@desk.example\r\nSubject: [#12] Printer\r\n"
            "--r--\r\n"
        ),
    )
    mail = parse_message(raw)
    assert mail.is_report
    assert mail.report_type == "delivery-status"
    assert "Delivery failed." in mail.text
    assert "> Final-Recipient: rfc822; gone@example.com" in mail.text
    assert "> Subject: [#12] Printer" in mail.text


def test_empty_and_headerless_input() -> None:
    for raw in (b"", b"\n", b"just some text without headers", b"\x00\xff" * 10):
        mail = parse_message(raw)
        assert isinstance(mail, ParsedMail)
        assert mail.message_id_synthesized


# --- bounds -----------------------------------------------------------------------------------


def _timed(raw: bytes) -> tuple[ParsedMail, float]:
    start = time.perf_counter()
    mail = parse_message(raw)
    return mail, time.perf_counter() - start


def test_quarantine_huge_header_block() -> None:
    raw = eml(
        "From: a@example.org", "Subject: big", *[f"X-Pad-{i}: {'y' * 200}" for i in range(1500)]
    )
    mail, took = _timed(raw)
    assert mail.needs_review
    assert "header block larger than 256 KB" in mail.review_reason
    assert (mail.from_addr, mail.subject) == ("a@example.org", "big")
    assert took < PER_MESSAGE_LIMIT_S


def test_quarantine_too_many_addresses() -> None:
    to = ", ".join(f"u{i}@example.org" for i in range(1200))
    mail, took = _timed(eml("From: a@example.org", f"To: {to}"))
    assert mail.needs_review
    assert "more than 1,000 addresses" in mail.review_reason
    assert took < PER_MESSAGE_LIMIT_S


def test_many_at_signs_outside_address_headers_are_fine() -> None:
    mail = parse_message(eml("From: a@example.org", "X-Note: " + "@" * 1500))
    assert not mail.needs_review


def test_quarantine_too_many_parts() -> None:
    parts = "".join("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(1200))
    raw = eml(
        "From: a@example.org", 'Content-Type: multipart/mixed; boundary="b"', body=parts + "--b--"
    )
    mail, took = _timed(raw)
    assert mail.needs_review
    assert "more than 1,000 MIME parts" in mail.review_reason
    assert mail.from_addr == "a@example.org"
    assert took < PER_MESSAGE_LIMIT_S


def test_many_dash_lines_that_are_not_boundaries_are_fine() -> None:
    body = "-- \r\n" * 1500
    mail = parse_message(
        eml(
            "From: a@example.org",
            'Content-Type: multipart/mixed; boundary="b"',
            body="--b\r\n\r\n" + body + "--b--",
        )
    )
    assert not mail.needs_review


def test_quarantine_deep_nesting() -> None:
    depth = 30
    body = ""
    for level in range(depth):
        body += f'--b{level}\r\nContent-Type: multipart/mixed; boundary="b{level + 1}"\r\n\r\n'
    body += f"--b{depth}\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--b{depth}--\r\n"
    for level in reversed(range(depth)):
        body += f"--b{level}--\r\n"
    raw = eml("From: a@example.org", 'Content-Type: multipart/mixed; boundary="b0"', body=body)
    mail, took = _timed(raw)
    assert mail.needs_review
    assert "nesting deeper than 20" in mail.review_reason
    assert took < PER_MESSAGE_LIMIT_S


def test_moderate_nesting_is_fine() -> None:
    depth = 8
    body = ""
    for level in range(depth):
        body += f'--b{level}\r\nContent-Type: multipart/mixed; boundary="b{level + 1}"\r\n\r\n'
    body += f"--b{depth}\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--b{depth}--\r\n"
    for level in reversed(range(depth)):
        body += f"--b{level}--\r\n"
    raw = eml("From: a@example.org", 'Content-Type: multipart/mixed; boundary="b0"', body=body)
    mail = parse_message(raw)
    assert not mail.needs_review
    assert mail.text == "deep"


def test_nested_messages_beyond_depth_are_flagged_not_fatal() -> None:
    raw = eml("From: a@example.org", "Subject: end", body="bottom")
    for i in range(25):
        raw = eml(f"From: l{i}@example.org", "Content-Type: message/rfc822", body=raw.decode())
    mail, took = _timed(raw)
    assert mail.needs_review
    assert took < PER_MESSAGE_LIMIT_S


# --- never raises -----------------------------------------------------------------------------


def test_unexpected_error_becomes_needs_review(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("parser \x1b[31mexploded")

    monkeypatch.setattr(parse_module._Walker, "render", boom)
    mail = parse_message((DATA / "customer-plain.eml").read_bytes())
    assert mail.needs_review
    assert mail.review_reason == "parser error: RuntimeError: parser [31mexploded"
    assert mail.from_addr == "jane@customer.example"
    assert mail.message_id == "<8c2f1e40-0006@customer.example>"


def test_mutated_messages_never_raise() -> None:
    seeds = [(DATA / name).read_bytes() for name in ("customer-plain.eml", "ooo-exchange.eml")]
    rng = random.Random(20261123)
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 20)):
            op = rng.randrange(3)
            pos = rng.randrange(len(data))
            if op == 0:
                data[pos] = rng.randrange(256)
            elif op == 1:
                data[pos:pos] = rng.choice([b"=?", b"?=", b"--b1", b"\r\n", b":", b"<", b"\x1b"])
            else:
                del data[pos : pos + rng.randint(1, 40)]
        mail = parse_message(bytes(data))
        assert isinstance(mail, ParsedMail)


# --- the corpus -------------------------------------------------------------------------------


def test_whole_corpus_parses_quickly_and_never_raises() -> None:
    messages = corpus_messages()
    assert len(messages) > 400
    slowest: list[tuple[float, str]] = []
    total = 0.0
    for path, raw in messages:
        mail, took = _timed(raw)
        total += took
        slowest.append((took, path))
        assert took < PER_MESSAGE_LIMIT_S, f"{path} took {took:.2f} s"
        assert mail.message_id.startswith("<") and mail.message_id.endswith(">"), path
        assert mail.date is None or mail.date.tzinfo is UTC, path
        assert "\x1b" not in mail.text and "\r" not in mail.text, path
        assert all(a.filename and "/" not in a.filename for a in mail.attachments), path
    slowest.sort(reverse=True)
    print(
        f"\ncorpus: {len(messages)} messages in {total:.2f} s = {len(messages) / total:.0f} msg/s"
    )
    print("slowest:", ", ".join(f"{p} {t * 1000:.0f} ms" for t, p in slowest[:3]))


def test_corpus_known_hard_cases() -> None:
    messages = dict(corpus_messages())
    endless = parse_message(messages["flanker/enclosed-endless.eml"])
    assert endless.needs_review
    assert "MIME parts" in endless.review_reason
    long_header = parse_message(messages["flanker/long-header.eml"])
    assert not long_header.needs_review
    assert long_header.subject.startswith("Die heiße Zypernsonne")
    unlisted = parse_message(messages["mimekit/messages/delivery-status.txt"])
    assert unlisted.to == ()
    assert unlisted.is_report
    assert "Processing your mail message caused the following errors" in unlisted.text
    unknown = parse_message(messages["mikel-mail/plain_emails/raw_email10.eml"])
    assert any("x-unknown" in note for note in unknown.charset_fallbacks)
    assert "Test test. Hi. Waving." in unknown.text
