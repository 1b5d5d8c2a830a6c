"""Which ticket an incoming message belongs to: Message-ID references, then a subject tag.

A pure decision over a lookup the desk implements, so the rules are tested without a store.
Our own Message-IDs carry an HMAC (msgid.py): a valid one threads directly, a forged one is
refused and noted. A subject tag `[#N]` is a weaker claim anyone can type, so it only threads
mail from the ticket's customer, a follower or an external party; a stranger's tagged mail
opens a new request instead of landing in (and reading) someone else's ticket.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from helpdesk_tui.mail.msgid import looks_like_ours, parse_message_id
from helpdesk_tui.mail.parse import ParsedMail

__all__ = [
    "ThreadDecision",
    "ThreadLookup",
    "decide_thread",
    "strip_reply_prefixes",
    "subject_tag",
    "tag_subject",
]

Rule = Literal["message-id", "subject-tag", "new"]


class ThreadLookup(Protocol):
    """What decide_thread asks the desk; addresses are lower-case."""

    def ticket_for_message_ids(self, ids: Sequence[str]) -> tuple[int, str] | None:
        """(ticket, the id matched) for the first of ids (in the order given) that is stored."""
        ...

    def ticket_exists(self, number: int) -> bool: ...

    def may_use_subject_tag(self, number: int, sender: str) -> str | None:
        """The sender's role on the ticket ("customer", "follower", "external party") or None."""
        ...

    def is_external_party(self, number: int, sender: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class ThreadDecision:
    """ticket None means a new request; evidence is a sentence for the ticket's history."""

    ticket: int | None
    rule: Rule
    evidence: str
    internal: bool = False


# Reply and forward prefixes of common mail clients in many languages: Re, Aw (de), Antw/
# Antwort (de, nl), SV (da, no, sv), VS (fi), Réf (fr), Rif/R (it), Odp (pl), Vá (hu), YNT (tr),
# Atb (lv), Fwd/Fw, WG (de), TR (fr), RV/Enc (es, pt), Doorst (nl), PD (pl), VB (sv), VL (fi)
# and the CJK ones; with counters like Re[2]: / Re(2): / Re^2: and full-width colons. Italian
# "I:" is left out: "I: cannot log in" is a plausible subject.
_PREFIX = re.compile(
    r"^\s*(?:(?P<reply>re|aw|antw|antwort|sv|vs|réf|ref|rif|r|odp|vá|ynt|atb|回复|答复|回覆|返信)"
    r"|(?P<fwd>fwd?|wg|tr|rv|enc|doorst|pd|vb|vl|転送|转发|轉寄))"
    r"\.?\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]\s*",
    re.IGNORECASE,
)
_TAG = re.compile(r"\[#(\d{1,9})\]")
_ROLE_PHRASE = {
    "customer": "the ticket's customer",
    "follower": "a follower of the ticket",
    "external party": "an external party of the ticket",
}


def _strip(subject: str) -> tuple[str, str | None]:
    """(subject without prefixes, "reply"/"fwd" for the first prefix or None)."""
    first: str | None = None
    rest = subject.strip()
    while True:
        m = _PREFIX.match(rest)
        if m is None or m.end() == 0:
            return rest.strip(), first
        if first is None:
            first = "reply" if m["reply"] is not None else "fwd"
        rest = rest[m.end() :]


def strip_reply_prefixes(subject: str) -> str:
    """ "Re: AW: Fwd: [#12] Printer" -> "[#12] Printer"."""
    return _strip(subject)[0]


def subject_tag(subject: str) -> int | None:
    """The ticket number of the first `[#N]` tag, preferring one right after the prefixes."""
    stripped = strip_reply_prefixes(subject)
    m = _TAG.match(stripped) or _TAG.search(stripped)
    return int(m[1]) if m is not None else None


def tag_subject(subject: str, number: int) -> str:
    """The subject with exactly one `[#number]` tag and at most one "Re:" or "Fwd:" prefix.

    Localized prefixes collapse to "Re:" / "Fwd:" and any other ticket tag is dropped, so a
    reply never grows into "Re: Re: [#12] [#12]" and never carries two tickets' tags.
    """
    rest, first = _strip(subject)
    rest = " ".join(_TAG.sub(" ", rest).split())
    # A tag may have hidden further prefixes: "[#12] Re: Printer".
    rest = _strip(rest)[0]
    prefix = {"reply": "Re: ", "fwd": "Fwd: ", None: ""}[first]
    return f"{prefix}[#{number}] {rest}".rstrip()


def _candidates(mail: ParsedMail) -> list[tuple[str, str]]:
    """(header, id) pairs: In-Reply-To first, then References newest first, without repeats."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    pairs = [("In-Reply-To", mail.in_reply_to)] if mail.in_reply_to else []
    pairs += [("References", ref) for ref in reversed(mail.references)]
    for header, value in pairs:
        if value and value not in seen:
            seen.add(value)
            out.append((header, value))
    return out


def decide_thread(mail: ParsedMail, lookup: ThreadLookup, secret: bytes) -> ThreadDecision:
    """Message-ID (ours verified by MAC, or any stored one), then subject tag, else new."""
    sender = mail.from_addr
    notes: list[str] = []
    candidates = _candidates(mail)
    source = {value: header for header, value in candidates}
    batch: list[str] = []

    def stored() -> ThreadDecision | None:
        """Ask the lookup about the foreign ids gathered so far, keeping their priority."""
        if not batch:
            return None
        found = lookup.ticket_for_message_ids(tuple(batch))
        batch.clear()
        if found is None:
            return None
        ticket, matched = found
        return ThreadDecision(
            ticket,
            "message-id",
            f"{source.get(matched, 'References')} {matched} is a stored message of #{ticket}",
            lookup.is_external_party(ticket, sender),
        )

    for header, value in candidates:
        if not looks_like_ours(value):
            batch.append(value)
            continue
        decision = stored()
        if decision is not None:
            return decision
        ours = parse_message_id(value, secret)
        if ours is None:
            notes.append(f"{header} {value} looks like ours but its MAC is invalid (forged?)")
            continue
        ticket = ours[0]
        if not lookup.ticket_exists(ticket):
            notes.append(f"{header} {value} names ticket #{ticket}, which does not exist")
            continue
        return ThreadDecision(
            ticket,
            "message-id",
            f"{header} {value} is our reply on #{ticket}",
            lookup.is_external_party(ticket, sender),
        )
    decision = stored()
    if decision is not None:
        return decision

    tag = subject_tag(mail.subject)
    if tag is not None:
        if not lookup.ticket_exists(tag):
            notes.append(f"subject tag [#{tag}] names no ticket")
        else:
            role = lookup.may_use_subject_tag(tag, sender) if sender else None
            if role is not None:
                phrase = _ROLE_PHRASE.get(role, f"the ticket's {role}")
                return ThreadDecision(
                    tag,
                    "subject-tag",
                    "; ".join([*notes, f"subject tag [#{tag}] and sender is {phrase}"]),
                    lookup.is_external_party(tag, sender),
                )
            who = sender or "(no address)"
            notes.append(
                f"subject tag [#{tag}] refused: sender {who} is not the customer, "
                "a follower or an external party"
            )
    if not notes:
        notes.append("no known Message-ID and no subject tag")
    return ThreadDecision(None, "new", "; ".join([*notes, "new request"]))
