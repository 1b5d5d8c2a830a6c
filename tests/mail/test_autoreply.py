"""Auto-acknowledgement rules: machines and loops refused, people acknowledged, rate limits."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdesk_tui.mail.autoreply import AckVerdict, ack_decision, rate_limited
from helpdesk_tui.mail.msgid import make_message_id
from helpdesk_tui.mail.parse import parse_message

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA = PROJECT_ROOT / "tests" / "data"
CORPUS = PROJECT_ROOT / ".." / "shared" / "corpus"
OWN = ("support@desk.example", "billing@desk.example")
DOMAIN = "desk.example"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

# INDEX.tsv kinds that mark machine mail. "auto_reply_subject" is left out: it is a subject
# heuristic and flags two spam messages ("Re: ..." bait), not auto-replies.
MACHINE_KINDS = {"bounce_like", "dsn_rfc3464", "auto_submitted_or_xautoreply"}
# Ordinary one-to-one mail: django-helpdesk's customer fixtures and SpamAssassin's "nice" ham,
# minus what is not customer-like. Entries excluded by hand, with the reason:
NOT_CUSTOMER_LIKE = {
    # Machine-sent news alerts from newsalerts-noreply@ (rightly refused as no-reply senders).
    "spamassassin/nice/spf1": "no-reply news alert",
    "spamassassin/nice/spf2": "no-reply news alert",
    "spamassassin/nice/spf3": "no-reply news alert",
    "spamassassin/nice/spf3-received-spf": "no-reply news alert",
    "spamassassin/nice/spf4": "no-reply news alert",
    "spamassassin/nice/spf4-received-spf-nofold": "no-reply news alert",
    "spamassassin/nice/spf5-received-spf-crlf": "no-reply news alert",
    "spamassassin/nice/spf6-received-spf-crlf2": "no-reply news alert",
    # "From: =?UTF-16?B?//492Enc?= test": a Unicode test with no address to answer.
    "spamassassin/nice/unicode2": "no sender address",
}
LIST_KINDS = {"mailing_list", "precedence_bulk", "precedence_list", "precedence_junk"}


def decide(raw: bytes, loop: str | None = None) -> AckVerdict:
    return ack_decision(parse_message(raw), OWN, DOMAIN, loop)


def eml(*headers: str, body: str = "Hello, my printer is broken.") -> bytes:
    base = {
        "from": "From: Jane <jane@customer.example>",
        "to": "To: support@desk.example",
        "subject": "Subject: Printer",
        "message-id": "Message-ID: <m1@customer.example>",
    }
    for header in headers:
        base[header.split(":", 1)[0].lower()] = header
    return ("\r\n".join(base.values()) + "\r\n\r\n" + body).encode()


def corpus_rows() -> list[tuple[str, set[str], bytes]]:
    if not (CORPUS / "INDEX.tsv").is_file():
        pytest.skip(f"shared corpus not found at {CORPUS.resolve()} (only in the project checkout)")
    boxes: dict[str, mailbox.mbox] = {}
    rows: list[tuple[str, set[str], bytes]] = []
    for line in (CORPUS / "INDEX.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        path, _, kinds = line.split("\t")[:3]
        if "#" in path:
            name, _, n = path.partition("#")
            box = boxes.setdefault(name, mailbox.mbox(CORPUS / name, create=False))
            raw = box.get_bytes(box.keys()[int(n)])
        else:
            raw = (CORPUS / path).read_bytes()
        rows.append((path, set(kinds.split(",")), raw))
    return rows


# --- the ordinary case ------------------------------------------------------------------------


def test_ordinary_customer_mail_is_acknowledged() -> None:
    assert decide((DATA / "customer-plain.eml").read_bytes()) == AckVerdict(True, "ordinary mail")
    assert decide(eml()).acknowledge


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: no",
        "Auto-Submitted: No (a person wrote this)",
        "Precedence: first-class",
        "X-Auto-Response-Suppress: DR, RN, NRN",
        "X-Auto-Response-Suppress: None",
        "X-Autoreply: no",
        "Return-Path: <jane@customer.example>",
        "Content-Type: multipart/mixed; boundary=x",
    ],
)
def test_harmless_header_values_do_not_refuse(header: str) -> None:
    assert decide(eml(header)).acknowledge


# --- machine mail by header -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: Auto-Generated; owner-email=x@y", "Auto-Submitted: auto-generated"),
        ("Auto-Submitted: auto-notified", "Auto-Submitted: auto-notified"),
        ("Precedence: bulk", "Precedence: bulk"),
        ("Precedence: JUNK", "Precedence: junk"),
        ("Precedence: list", "Precedence: list"),
        ("Precedence: auto_reply", "Precedence: auto_reply"),
        ("X-Precedence: auto-reply", "X-Precedence: auto_reply"),
        ("List-Id: Printers <printers.lists.example>", "mailing list (List-Id)"),
        ("List-Unsubscribe: <mailto:leave@lists.example>", "mailing list (List-Unsubscribe)"),
        ("X-Autoreply: yes", "auto-reply header x-autoreply"),
        ("X-Autorespond: vacation", "auto-reply header x-autorespond"),
        ("X-Autoresponder: 1", "auto-reply header x-autoresponder"),
        ("X-AutoReply-From: jane@customer.example", "auto-reply header x-autoreply-from"),
        ("X-Mail-Autoreply: yes", "auto-reply header x-mail-autoreply"),
        ("X-Auto-Response-Suppress: All", "X-Auto-Response-Suppress: All"),
        ("X-Auto-Response-Suppress: OOF", "X-Auto-Response-Suppress: OOF"),
        ("X-Auto-Response-Suppress: DR, AutoReply", "X-Auto-Response-Suppress: DR, AutoReply"),
        ("X-Failed-Recipients: gone@example.com", "X-Failed-Recipients (a bounce)"),
        ("Return-Path: <>", "empty Return-Path (a bounce)"),
        ("Return-Path: <<>>", "empty Return-Path (a bounce)"),
        ("Return-Path: <MAILER-DAEMON@mx.example>", "Return-Path is mailer-daemon"),
    ],
)
def test_machine_headers_refuse(header: str, reason: str) -> None:
    assert decide(eml(header)) == AckVerdict(False, reason)


@pytest.mark.parametrize(
    "report_type", ["delivery-status", "disposition-notification", "feedback-report"]
)
def test_reports_refuse(report_type: str) -> None:
    raw = eml(
        f'Content-Type: multipart/report; report-type={report_type}; boundary="r"',
        body="--r\r\nContent-Type: text/plain\r\n\r\nreport\r\n--r--\r\n",
    )
    assert decide(raw) == AckVerdict(False, f"multipart/report ({report_type})")


@pytest.mark.parametrize(
    ("sender", "role"),
    [
        ("MAILER-DAEMON@mx.example.org", "mailer-daemon"),
        ("mailer_daemon@mx.example.org", "mailer_daemon"),
        ("Postmaster@example.org", "postmaster"),
        ("noreply@shop.example", "noreply"),
        ("no-reply@shop.example", "no-reply"),
        ("no.reply+orders@shop.example", "no.reply"),
        ("do-not-reply@shop.example", "do-not-reply"),
        ("donotreply@shop.example", "donotreply"),
        ("newsalerts-noreply@news.example", "noreply"),
        ("bounce@lists.example", "bounce"),
        ("bounces+123-jane=customer.example@lists.example", "bounces"),
        ("printers-bounces@lists.example", "bounces"),
        ("prvs=1234abcd=noreply@shop.example", "noreply"),
        ("MAILER-DAEMON", "mailer-daemon"),
    ],
)
def test_machine_senders_refuse(sender: str, role: str) -> None:
    assert decide(eml(f"From: {sender}")) == AckVerdict(False, f"sender is {role}")


@pytest.mark.parametrize(
    "sender",
    ["replyguy@example.org", "noreplyfan@example.org", "bouncer@club.example", "post@example.org"],
)
def test_people_with_similar_names_are_acknowledged(sender: str) -> None:
    assert decide(eml(f"From: {sender}")).acknowledge


@pytest.mark.parametrize("from_header", ["From: ", "From: undisclosed-recipients:;", "From: Jane"])
def test_no_usable_from_refuses(from_header: str) -> None:
    assert decide(eml(from_header)) == AckVerdict(False, "no usable From address")


def test_missing_from_refuses() -> None:
    raw = b"To: support@desk.example\r\nSubject: x\r\n\r\nbody"
    assert decide(raw) == AckVerdict(False, "no usable From address")


# --- our own mail -----------------------------------------------------------------------------


def test_own_mailbox_refuses() -> None:
    raw = eml("From: Support <Support@Desk.Example>")
    assert decide(raw) == AckVerdict(False, "sender is one of our own mailboxes")


def test_loop_header_refuses_ours_and_other_desks() -> None:
    assert decide(eml("X-Helpdesk-Loop: desk-1"), loop="desk-1") == AckVerdict(
        False, "carries our loop header"
    )
    assert decide(eml("X-Helpdesk-Loop: desk-2"), loop="desk-1") == AckVerdict(
        False, "carries a X-Helpdesk-Loop header of another desk"
    )
    assert not decide(eml("X-Helpdesk-Loop: anything")).acknowledge


def test_message_id_in_our_domain_refuses() -> None:
    for mid in ("<x@desk.example>", "<x@mx1.desk.example>", make_message_id(1, 2, b"k", "o.org")):
        assert decide(eml(f"Message-ID: {mid}")) == AckVerdict(
            False, "Message-ID is in our own domain"
        ), mid
    assert decide(eml("Message-ID: <x@notdesk.example>")).acknowledge


def test_held_for_review_refuses() -> None:
    to = ", ".join(f"u{i}@example.org" for i in range(1100))
    assert decide(eml(f"To: {to}")) == AckVerdict(False, "held for review")


# --- vendor out-of-office fixtures ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("ooo-exchange.eml", "Auto-Submitted: auto-generated"),
        ("ooo-outlook-suppress.eml", "X-Auto-Response-Suppress: DR, OOF, AutoReply"),
        ("ooo-gmail-vacation.eml", "Auto-Submitted: auto-replied"),
        ("ooo-x-autoreply.eml", "auto-reply header x-autoreply"),
        ("ooo-precedence-auto-reply.eml", "Precedence: auto_reply"),
    ],
)
def test_out_of_office_fixtures_refuse(name: str, reason: str) -> None:
    assert decide((DATA / name).read_bytes()) == AckVerdict(False, reason)


# --- the corpus -------------------------------------------------------------------------------


def test_corpus_machine_mail_suppressed_by_headers() -> None:
    rows = [(path, raw) for path, kinds, raw in corpus_rows() if kinds & MACHINE_KINDS]
    acknowledged = [path for path, raw in rows if decide(raw).acknowledge]
    share = 1 - len(acknowledged) / len(rows)
    print(f"\nmachine mail suppressed by headers: {len(rows) - len(acknowledged)}/{len(rows)}")
    print(f"= {share:.1%}; acknowledged: {acknowledged}")
    assert share >= 0.98, acknowledged


def test_corpus_ordinary_mail_is_acknowledged() -> None:
    chosen = [
        (path, raw)
        for path, kinds, raw in corpus_rows()
        if path.startswith(("django-helpdesk/", "spamassassin/nice/"))
        and not kinds & (LIST_KINDS | MACHINE_KINDS)
        and path not in NOT_CUSTOMER_LIKE
    ]
    assert len(chosen) >= 40
    refused = {path: decide(raw).reason for path, raw in chosen if not decide(raw).acknowledge}
    print(f"\nordinary mail acknowledged: {len(chosen) - len(refused)}/{len(chosen)}")
    assert refused == {}


def test_corpus_exclusions_are_refused_for_the_stated_reason() -> None:
    rows = {path: raw for path, _, raw in corpus_rows() if path in NOT_CUSTOMER_LIKE}
    assert set(rows) == set(NOT_CUSTOMER_LIKE)
    for path, raw in rows.items():
        reason = decide(raw).reason
        expected = "noreply" if NOT_CUSTOMER_LIKE[path] == "no-reply news alert" else "From"
        assert expected in reason, (path, reason)


# --- rate limit -------------------------------------------------------------------------------


def test_rate_limit_defaults_one_per_day() -> None:
    assert rate_limited([], NOW) is None
    assert rate_limited([NOW - timedelta(hours=25)], NOW) is None
    assert rate_limited([NOW - timedelta(hours=23)], NOW) == (
        "1 acknowledgement(s) in the last 24 hours (limit 1)"
    )


def test_rate_limit_three_hour_window() -> None:
    times = [NOW - timedelta(minutes=10 * i) for i in range(10)]
    assert rate_limited(times, NOW, per_day=100) == (
        "10 acknowledgements in the last 3 hours (limit 10)"
    )
    assert rate_limited(times[:9], NOW, per_day=100) is None
    old = [NOW - timedelta(hours=4)] * 50
    assert rate_limited(old, NOW, per_day=100) is None
    assert rate_limited(old, NOW, per_day=50) is not None


def test_rate_limit_counts_future_times_and_needs_aware_datetimes() -> None:
    assert rate_limited([NOW + timedelta(hours=1)], NOW) is not None
    with pytest.raises(ValueError, match="tz-aware"):
        rate_limited([datetime(2026, 11, 23, 9, 0)], NOW)
