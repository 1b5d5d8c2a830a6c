"""Threading decisions: our signed IDs, stored IDs, subject tags with sender checks, prefixes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from helpdesk_tui.mail.msgid import make_message_id
from helpdesk_tui.mail.parse import ParsedMail, parse_message
from helpdesk_tui.mail.threading import (
    ThreadDecision,
    ThreadLookup,
    decide_thread,
    strip_reply_prefixes,
    subject_tag,
    tag_subject,
)

SECRET = b"desk-secret"
OTHER_SECRET = b"someone-else"


@dataclass
class FakeDesk:
    """Ticket 12: customer jane, follower fred, external party vendor; ticket 7: customer zoe."""

    stored: dict[str, int] = field(default_factory=dict)
    roles: dict[tuple[int, str], str] = field(
        default_factory=lambda: {
            (12, "jane@customer.example"): "customer",
            (12, "fred@customer.example"): "follower",
            (12, "tech@vendor.example"): "external party",
            (7, "zoe@other.example"): "customer",
        }
    )
    tickets: set[int] = field(default_factory=lambda: {7, 12})
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def ticket_for_message_ids(self, ids: Sequence[str]) -> tuple[int, str] | None:
        self.calls.append(tuple(ids))
        for mid in ids:
            if mid in self.stored:
                return self.stored[mid], mid
        return None

    def ticket_exists(self, number: int) -> bool:
        return number in self.tickets

    def may_use_subject_tag(self, number: int, sender: str) -> str | None:
        return self.roles.get((number, sender))

    def is_external_party(self, number: int, sender: str) -> bool:
        return self.roles.get((number, sender)) == "external party"


def mail(
    sender: str = "jane@customer.example",
    subject: str = "Printer",
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
) -> ParsedMail:
    lines = [f"From: {sender}", f"Subject: {subject}", "Message-ID: <new@customer.example>"]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append("References: " + " ".join(references))
    return parse_message(("\r\n".join(lines) + "\r\n\r\nbody").encode())


def ours(ticket: int, message: int = 1, secret: bytes = SECRET) -> str:
    return make_message_id(ticket, message, secret, "desk.example")


def forged(ticket: int) -> str:
    """Shaped exactly like ours, but the MAC was made with a key the desk does not hold."""
    return ours(ticket, secret=OTHER_SECRET)


def test_fake_desk_satisfies_the_protocol() -> None:
    lookup: ThreadLookup = FakeDesk()
    assert lookup.ticket_exists(12)


# --- rule 1: Message-IDs ----------------------------------------------------------------------


def test_in_reply_to_our_signed_id() -> None:
    mid = ours(12)
    decision = decide_thread(mail(in_reply_to=mid), FakeDesk(), SECRET)
    assert decision == ThreadDecision(12, "message-id", f"In-Reply-To {mid} is our reply on #12")


def test_our_id_threads_even_a_stranger_and_flags_external_parties() -> None:
    # A valid MAC proves the sender saw our message: a colleague the customer forwarded to.
    stranger = decide_thread(mail("new@else.example", in_reply_to=ours(12)), FakeDesk(), SECRET)
    assert (stranger.ticket, stranger.internal) == (12, False)
    vendor = decide_thread(mail("tech@vendor.example", in_reply_to=ours(12)), FakeDesk(), SECRET)
    assert (vendor.ticket, vendor.rule, vendor.internal) == (12, "message-id", True)


def test_references_newest_first() -> None:
    refs = [ours(7), ours(12)]
    decision = decide_thread(mail(references=refs), FakeDesk(), SECRET)
    assert decision.ticket == 12
    assert decision.evidence.startswith("References ")


def test_forged_id_refused_and_noted_then_falls_through() -> None:
    fake = forged(7)
    desk = FakeDesk()
    decision = decide_thread(mail("jane@customer.example", "Hello", in_reply_to=fake), desk, SECRET)
    assert decision.ticket is None
    assert decision.rule == "new"
    assert f"In-Reply-To {fake} looks like ours but its MAC is invalid (forged?)" in (
        decision.evidence
    )
    assert decision.evidence.endswith("new request")
    assert desk.calls == []  # a forged id of ours is never looked up as a stored one


def test_forged_id_falls_through_to_an_allowed_subject_tag() -> None:
    decision = decide_thread(
        mail("jane@customer.example", "Re: [#12] Printer", in_reply_to=forged(7)),
        FakeDesk(),
        SECRET,
    )
    assert (decision.ticket, decision.rule) == (12, "subject-tag")
    assert "forged?" in decision.evidence
    assert decision.evidence.endswith("subject tag [#12] and sender is the ticket's customer")


def test_forged_in_reply_to_but_genuine_reference() -> None:
    decision = decide_thread(mail(in_reply_to=forged(7), references=[ours(12)]), FakeDesk(), SECRET)
    assert decision.ticket == 12


def test_our_id_for_a_deleted_ticket_falls_through() -> None:
    decision = decide_thread(mail(in_reply_to=ours(99)), FakeDesk(), SECRET)
    assert decision.ticket is None
    assert "names ticket #99, which does not exist" in decision.evidence


def test_stored_foreign_id() -> None:
    desk = FakeDesk(stored={"<cust-1@customer.example>": 12})
    decision = decide_thread(mail(in_reply_to="<cust-1@customer.example>"), desk, SECRET)
    assert decision == ThreadDecision(
        12, "message-id", "In-Reply-To <cust-1@customer.example> is a stored message of #12"
    )


def test_stored_ids_asked_in_priority_order_in_one_batch() -> None:
    desk = FakeDesk(stored={"<a@x>": 7, "<c@x>": 12})
    decision = decide_thread(mail(in_reply_to="<c@x>", references=["<a@x>", "<b@x>", "<c@x>"]),
                             desk, SECRET)  # fmt: skip
    assert decision.ticket == 12
    assert desk.calls == [("<c@x>", "<b@x>", "<a@x>")]


def test_in_reply_to_stored_id_wins_over_our_id_in_references() -> None:
    desk = FakeDesk(stored={"<cust@x>": 7})
    decision = decide_thread(mail(in_reply_to="<cust@x>", references=[ours(12)]), desk, SECRET)
    assert decision.ticket == 7


# --- rule 2: subject tags ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "phrase", "internal"),
    [
        ("jane@customer.example", "the ticket's customer", False),
        ("fred@customer.example", "a follower of the ticket", False),
        ("tech@vendor.example", "an external party of the ticket", True),
    ],
)
def test_subject_tag_accepted_for_known_people(sender: str, phrase: str, internal: bool) -> None:
    decision = decide_thread(mail(sender, "AW: [#12] Drucker"), FakeDesk(), SECRET)
    assert decision == ThreadDecision(
        12, "subject-tag", f"subject tag [#12] and sender is {phrase}", internal
    )


def test_subject_tag_refused_for_a_stranger() -> None:
    decision = decide_thread(mail("mallory@evil.example", "Re: [#12] Printer"), FakeDesk(), SECRET)
    assert decision == ThreadDecision(
        None,
        "new",
        "subject tag [#12] refused: sender mallory@evil.example is not the customer, "
        "a follower or an external party; new request",
    )


def test_subject_tag_of_another_ticket_is_refused_for_this_customer() -> None:
    decision = decide_thread(mail("jane@customer.example", "[#7] Printer"), FakeDesk(), SECRET)
    assert decision.ticket is None
    assert "refused" in decision.evidence


def test_subject_tag_for_a_missing_ticket() -> None:
    decision = decide_thread(mail(subject="[#404] lost"), FakeDesk(), SECRET)
    assert decision == ThreadDecision(
        None, "new", "subject tag [#404] names no ticket; new request"
    )


def test_plain_new_request() -> None:
    decision = decide_thread(mail(subject="Printer"), FakeDesk(), SECRET)
    assert decision == ThreadDecision(
        None, "new", "no known Message-ID and no subject tag; new request"
    )


# --- subject helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "stripped"),
    [
        ("Re: Printer", "Printer"),
        ("RE: RE: Printer", "Printer"),
        ("Re:Re:Printer", "Printer"),
        ("Re[2]: Printer", "Printer"),
        ("Re(3): Printer", "Printer"),
        ("Re^2: Printer", "Printer"),
        ("Aw: AW: WG: Drucker", "Drucker"),
        ("Antwort: Drucker", "Drucker"),
        ("Antw: Printer", "Printer"),
        ("SV: VS: Skrivare", "Skrivare"),
        ("Réf. : Imprimante", "Imprimante"),
        ("TR: RE: Imprimante", "Imprimante"),
        ("Rif: R: Stampante", "Stampante"),
        ("RV: Impresora", "Impresora"),
        ("Odp: PD: Drukarka", "Drukarka"),
        ("Fwd: Fw: FWD: Printer", "Printer"),
        ("回复：打印机", "打印机"),
        ("转发: 打印机", "打印机"),
        ("Re : [#12] Printer", "[#12] Printer"),
        ("Printer: Re: broken", "Printer: Re: broken"),
        ("Regarding: the printer", "Regarding: the printer"),
        ("I: cannot log in", "I: cannot log in"),
        ("", ""),
    ],
)
def test_strip_reply_prefixes(subject: str, stripped: str) -> None:
    assert strip_reply_prefixes(subject) == stripped


@pytest.mark.parametrize(
    ("subject", "tag"),
    [
        ("[#12] Printer", 12),
        ("Re: AW: [#12] Printer", 12),
        ("[list] Re: [#12] Printer", 12),
        ("Printer [#12]", 12),
        ("Re: [#12] was [#7]", 12),
        ("Printer #12", None),
        ("[# 12] Printer", None),
        ("[#12345678901] Printer", None),
        ("", None),
    ],
)
def test_subject_tag(subject: str, tag: int | None) -> None:
    assert subject_tag(subject) == tag


@pytest.mark.parametrize(
    ("subject", "tagged"),
    [
        ("Printer", "[#12] Printer"),
        ("[#12] Printer", "[#12] Printer"),
        ("Re: [#12] Printer", "Re: [#12] Printer"),
        ("Re: Re: [#12] [#12] Printer", "Re: [#12] Printer"),
        ("Re: [#12] Re: Printer", "Re: [#12] Printer"),
        ("AW: SV: Drucker", "Re: [#12] Drucker"),
        ("WG: Drucker", "Fwd: [#12] Drucker"),
        ("Re: [#7] merged", "Re: [#12] merged"),
        ("", "[#12]"),
        ("Re:", "Re: [#12]"),
    ],
)
def test_tag_subject(subject: str, tagged: str) -> None:
    assert tag_subject(subject, 12) == tagged
    assert tag_subject(tagged, 12) == tagged  # idempotent
    assert subject_tag(tagged) == 12
