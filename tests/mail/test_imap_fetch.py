"""The intake's UID FETCH reads what imapclient reads, against a real Dovecot and odd answers."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest

from helpdesk_tui.mail.imap import ImapMailbox, ImapSettings, _fetch_bodies, _sequence_set
from tests.imap_server import Dovecot


def _mail(n: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"c{n}@customer.example"
    m["To"] = "support@desk.example"
    m["Subject"] = f"Mail {n} (with parentheses) and {{braces}}"
    m["Message-ID"] = f"<fetch{n}@customer.example>"
    m.set_content("line\r\n" * n + ")\r\n* 1 FETCH (UID 9 BODY[] {3}\r\n")
    return m.as_bytes()


def test_sequence_set_compacts_runs() -> None:
    assert _sequence_set([5]) == "5"
    assert _sequence_set([3, 1, 2, 7, 9, 10, 11]) == "1:3,7,9:11"


def test_fetch_matches_imapclient(dovecot: Dovecot) -> None:
    user = dovecot.new_user()
    dovecot.append(user, [_mail(n) for n in range(1, 31)])
    box = ImapMailbox(ImapSettings("127.0.0.1", dovecot.port, "plain", user, "pass"))
    box.connect()
    try:
        uids = box.uids_after(0)
        some = [*uids[::3], max(uids) + 100]  # gaps, and a UID that does not exist
        theirs = box.client.fetch(some, ["BODY.PEEK[]"])
        assert box.fetch(some) == {uid: bytes(v[b"BODY[]"]) for uid, v in theirs.items()}
        assert len(box.fetch(some)) == len(uids[::3])
        assert box.client.search(["SEEN"]) == []  # PEEK: nothing marked read
    finally:
        box.close()


class _Imap:
    """imaplib's side of one UID FETCH, answering with a prepared list."""

    def __init__(self, data: list[Any]) -> None:
        self.data = data
        self.sent: tuple[str, ...] = ()

    def _command(self, *args: str) -> str:
        self.sent = args
        return "A1"

    def _command_complete(self, name: str, tag: str) -> tuple[str, list[bytes]]:
        return "OK", [b"done"]

    def _untagged_response(self, typ: str, data: Any, name: str) -> tuple[str, list[Any]]:
        return typ, self.data


def test_common_answer_is_read_directly() -> None:
    imap = _Imap([(b"1 (UID 5 BODY[] {3}", b"abc"), b")", (b"2 (UID 6 BODY[] {2}", b"de"), b")"])
    assert _fetch_bodies(imap, [5, 6]) == {5: b"abc", 6: b"de"}
    assert imap.sent == ("UID", "FETCH", "5:6", "(BODY.PEEK[])")


@pytest.mark.parametrize(
    "data",
    [
        # UID after the literal
        [(b"1 (BODY[] {3}", b"abc"), b" UID 5)", (b"2 (UID 6 BODY[] {2}", b"de"), b")"],
        # an unsolicited FLAGS update among the answers
        [
            (b"1 (UID 5 BODY[] {3}", b"abc"),
            b")",
            b"9 (FLAGS (\\Seen) UID 12)",
            (b"2 (UID 6 BODY[] {2}", b"de"),
            b")",
        ],
    ],
)
def test_other_shapes_fall_back_to_imapclient(data: list[Any]) -> None:
    assert _fetch_bodies(_Imap(data), [5, 6]) == {5: b"abc", 6: b"de"}


def test_uids_not_asked_for_are_left_out() -> None:
    imap = _Imap([(b"1 (UID 5 BODY[] {3}", b"abc"), b")", (b"2 (UID 8 BODY[] {2}", b"de"), b")"])
    assert _fetch_bodies(imap, [5]) == {5: b"abc"}
