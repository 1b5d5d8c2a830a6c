"""Whether a new request may be acknowledged automatically, and how often.

An acknowledgement sent to a machine starts a mail loop or spams a bounce address, so every
documented sign of automated mail refuses it: RFC 3834 Auto-Submitted, Precedence, list
headers (RFC 2369/2919), vendor auto-reply headers, Microsoft's X-Auto-Response-Suppress
(MS-OXCMAIL 2.1.3.2.20), delivery/disposition/feedback reports (RFC 3462/8098/5965), null
return paths and role senders. Pure functions: the worker supplies addresses and times.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from helpdesk_tui.mail.msgid import looks_like_ours
from helpdesk_tui.mail.parse import ParsedMail

__all__ = ["LOOP_HEADER", "AckVerdict", "ack_decision", "rate_limited"]

LOOP_HEADER = "X-Helpdesk-Loop"

_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
# MS-OXCMAIL: All = every automatic reply, OOF = out-of-office, AutoReply = other auto-replies.
# DR, NDR, RN and NRN only concern delivery and read reports, which are not ours to send.
_SUPPRESS_VALUES = frozenset({"all", "oof", "autoreply"})
_VENDOR_AUTOREPLY = (
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-autoreply-from",
    "x-mail-autoreply",
)
_NEGATIVE = frozenset({"no", "false", "0", "off"})
# Local parts of machines, with VERP/sub-address tails ("bounces+123=x", "bounce-7@") and,
# for the no-reply and bounce family, a prefix too ("newsalerts-noreply", "list-bounces").
_ROLE_SENDER = re.compile(
    r"(?:(mailer[-_]?daemon|mail[-_]?daemon|postmaster)"
    r"|(?:[^@]*[-_.])?(no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?))(?:[-+=_.].*)?"
)
# BATV/SRS wrappers: prvs=TAG=local, SRS0=HASH=TT=domain=local.
_BATV = re.compile(r"^(?:prvs|btv1|msprvs1)=[^=]*=", re.I)
_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True, slots=True)
class AckVerdict:
    """acknowledge=False carries the first reason found, short enough for the ticket log."""

    acknowledge: bool
    reason: str


def _values(mail: ParsedMail, name: str) -> tuple[str, ...]:
    return tuple(v for v in mail.headers.get(name, ()) if v.strip())


def _token(value: str) -> str:
    """The keyword of a structured value: comments and parameters dropped, lower-cased."""
    return _COMMENT.sub("", value).split(";")[0].strip().lower()


def _local_part(address: str) -> str:
    local = address.strip().strip("<>").rpartition("@")[0] or address.strip().strip("<>")
    return _BATV.sub("", local.lower())


def _role_sender(address: str) -> str | None:
    local = _local_part(address)
    m = _ROLE_SENDER.fullmatch(local)
    return (m[1] or m[2]) if m is not None else None


def _usable(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain and " " not in address)


def _in_domain(message_id: str, own_domain: str) -> bool:
    domain = message_id.strip().strip("<>").rpartition("@")[2].lower()
    own = own_domain.strip().lower()
    return bool(own) and (domain == own or domain.endswith("." + own))


def _header_reason(mail: ParsedMail) -> str | None:
    for value in _values(mail, "auto-submitted"):
        keyword = _token(value)
        if keyword != "no":
            return f"Auto-Submitted: {keyword or value}"
    for name, label in (("precedence", "Precedence"), ("x-precedence", "X-Precedence")):
        for value in _values(mail, name):
            keyword = _token(value).replace("-", "_")
            if keyword in _BULK_PRECEDENCE:
                return f"{label}: {keyword}"
    if _values(mail, "list-id"):
        return "mailing list (List-Id)"
    if _values(mail, "list-unsubscribe"):
        return "mailing list (List-Unsubscribe)"
    for name in _VENDOR_AUTOREPLY:
        for value in _values(mail, name):
            if _token(value) not in _NEGATIVE:
                return f"auto-reply header {name}"
    for value in _values(mail, "x-auto-response-suppress"):
        wanted = {_token(v) for v in value.split(",")}
        if wanted & _SUPPRESS_VALUES:
            return f"X-Auto-Response-Suppress: {value}"
    content_type = next(iter(_values(mail, "content-type")), "")
    if mail.is_report or _token(content_type) == "multipart/report":
        kind = mail.report_type or "report"
        return f"multipart/report ({kind})"
    if _values(mail, "x-failed-recipients"):
        return "X-Failed-Recipients (a bounce)"
    return None


def ack_decision(
    mail: ParsedMail,
    own_addresses: Collection[str],
    own_domain: str,
    loop_header_value: str | None = None,
) -> AckVerdict:
    """Acknowledge only ordinary mail from a person; the first reason found refuses it.

    Any X-Helpdesk-Loop refuses, whatever its value: a second desk running this program would
    otherwise ping-pong acknowledgements with us. loop_header_value only sharpens the reason.
    """
    if mail.needs_review:
        return AckVerdict(False, "held for review")
    for value in _values(mail, LOOP_HEADER.lower()):
        if loop_header_value is not None and value.strip() == loop_header_value.strip():
            return AckVerdict(False, "carries our loop header")
        return AckVerdict(False, f"carries a {LOOP_HEADER} header of another desk")
    reason = _header_reason(mail)
    if reason is not None:
        return AckVerdict(False, reason)
    for value in _values(mail, "return-path"):
        path = value.strip()
        while path.startswith("<") and path.endswith(">"):
            path = path[1:-1].strip()
        if not path:
            return AckVerdict(False, "empty Return-Path (a bounce)")
        role = _role_sender(path)
        if role is not None:
            return AckVerdict(False, f"Return-Path is {role}")
    role = _role_sender(mail.from_addr) if mail.from_addr else None
    if role is not None:
        return AckVerdict(False, f"sender is {role}")
    if not _usable(mail.from_addr):
        return AckVerdict(False, "no usable From address")
    own = {a.strip().lower() for a in own_addresses}
    if mail.from_addr in own:
        return AckVerdict(False, "sender is one of our own mailboxes")
    if looks_like_ours(mail.message_id) or (
        not mail.message_id_synthesized and _in_domain(mail.message_id, own_domain)
    ):
        return AckVerdict(False, "Message-ID is in our own domain")
    return AckVerdict(True, "ordinary mail")


def rate_limited(
    previous_ack_times: Sequence[datetime],
    now: datetime,
    per_day: int = 1,
    per_3h: int = 10,
) -> str | None:
    """A reason when another acknowledgement would exceed a window, else None.

    Both windows count the same times: the caller passes the acknowledgements already sent to
    this sender (or to whatever scope it limits). Times after now, from a clock step, count as
    inside the window rather than letting a skewed clock reopen it.
    """
    if now.tzinfo is None or any(t.tzinfo is None for t in previous_ack_times):
        raise ValueError("rate_limited needs tz-aware datetimes")
    in_3h = sum(1 for t in previous_ack_times if t > now - timedelta(hours=3))
    if in_3h >= per_3h:
        return f"{in_3h} acknowledgements in the last 3 hours (limit {per_3h})"
    in_day = sum(1 for t in previous_ack_times if t > now - timedelta(days=1))
    if in_day >= per_day:
        return f"{in_day} acknowledgement(s) in the last 24 hours (limit {per_day})"
    return None
