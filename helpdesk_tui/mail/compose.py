"""Outgoing mail: replies, forwards and acknowledgements built as clean MIME from plain strings.

Every header is rebuilt from cleaned `str` values. Python 3.11 before 3.11.10 (CVE-2024-6923)
serialises a header whose *decoded* value holds CR/LF verbatim, so a reply that reuses a parsed
subject such as `=?utf-8?q?Hello=0D=0ABcc:_x@evil.example?=` would grow a Bcc header. Worse,
assigning a plain str decodes any encoded-words in it again, so cleaning once is not enough:
each value is cleaned until the header parser reads back exactly what we cleaned, and
`to_bytes` checks the serialised header block before anything leaves.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal

__all__ = [
    "MAX_REFERENCES",
    "Attachment",
    "ComposeError",
    "OutgoingSpec",
    "build_message",
    "clean_body_text",
    "clean_filename",
    "clean_header_text",
    "envelope_recipients",
    "forward_spec",
    "parse_address_list",
    "reply_recipients",
    "to_bytes",
    "validate_address",
]

# 7bit: bodies go out quoted-printable or base64, so no server needs 8BITMIME (aiosmtplib does
# not announce BODY=8BITMIME for raw bytes).
_POLICY = email_policy.SMTP.clone(cte_type="7bit")
# Readers parse header values with the default policy; the probes below must agree with them.
_PROBE_POLICY = email_policy.default

MAX_REFERENCES = 20
"""References keeps the thread root plus the newest ids; some servers refuse huge headers."""

Attachment = tuple[str, str, bytes]
"""(filename, content type, data)."""

# Characters that end or split a header line somewhere (RFC 5322, Unicode line breaking, the
# str.splitlines() set the email package itself uses): they become a space.
_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
# Bidi embeddings, overrides and isolates: they make "gpj.exe" read as "exe.jpg".
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_WS = re.compile(r"\s+")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR = re.compile(
    rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_MSGID = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9.\[\]:-]+)>")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_TAG = re.compile(r"\[#\d+\]")
# Reply/forward prefixes from common clients and languages, with counters like "Re[2]:".
_PREFIX = re.compile(
    r"^(?:re|aw|sv|vs|antw|r|rif|réf|wg|fw|fwd|tr|enc|doorst|odp|res)"
    r"(?:\s*\[\d+\]|\s*\^\d+)?\s*:\s*",
    re.IGNORECASE,
)


class ComposeError(ValueError):
    """An outgoing message cannot be built safely (bad address, date or id)."""


@dataclass(frozen=True, kw_only=True)
class OutgoingSpec:
    """Everything one outgoing message needs, as plain values; built by the desk, never parsed."""

    from_addr: str
    from_name: str = ""
    to: tuple[str, ...]
    """Each entry one mailbox: "addr@example.org" or "Name <addr@example.org>"."""
    cc: tuple[str, ...] = ()
    subject: str
    """The subject without our tag; any "Re:" and "[#N]" already in it are dropped."""
    prefix: Literal["", "Re", "Fwd"] = "Re"
    """Put before the tag: "Re: [#12] Printer"; "" for a fresh message."""
    body: str
    ticket: int
    message_id: str
    """From helpdesk_tui.mail.msgid.make_message_id, angle brackets included."""
    date: datetime
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    signature: str = ""
    quote: str = ""
    """The previous message's text, quoted below the reply; "" for none."""
    quote_author: str = ""
    quote_date: datetime | None = None
    attachments: tuple[Attachment, ...] = ()
    automatic: bool = False
    """An acknowledgement or other machine-sent mail: marked so that robots do not answer it."""
    auto_kind: Literal["auto-replied", "auto-generated"] = "auto-replied"
    loop_value: str = ""
    """Our X-Helpdesk-Loop value (desk domain or id); intake drops mail carrying it."""


def clean_header_text(value: str) -> str:
    """One line of printable text: breaks become spaces; controls and bidi overrides go."""
    # str.__str__ turns a parsed header object (a str subclass) into a plain str.
    text = str.__str__(value)
    out: list[str] = []
    for ch in text:
        if ch in _LINE_BREAKS or ch == "\t":
            out.append(" ")
        elif ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs"):
            continue
        else:
            out.append(ch)
    return _WS.sub(" ", "".join(out)).strip()


def clean_filename(name: str) -> str:
    """A safe attachment name: one line, no folders, no leading dots, never empty."""
    text = clean_header_text(name).replace("/", "_").replace("\\", "_")
    text = text.lstrip(". ")
    return text[:200] or "attachment"


def clean_body_text(text: str) -> str:
    """Message text with LF line ends and without control characters other than tab."""
    text = str.__str__(text).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        ch
        for ch in text
        if ch in "\n\t" or (ch not in _BIDI and unicodedata.category(ch) not in ("Cc", "Cs"))
    )


def validate_address(addr: str) -> str:
    """A bare ASCII addr-spec (dot-atom local part) or ComposeError; IDN domains go to IDNA."""
    addr = clean_header_text(addr)
    local, at, domain = addr.rpartition("@")
    if at and domain and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ComposeError(f"bad domain in address {addr!r}") from exc
        addr = f"{local}@{domain}"
    if len(addr) > 254 or _ADDR.fullmatch(addr) is None:
        raise ComposeError(f"not a valid e-mail address: {addr!r}")
    return addr


def _mailbox(entry: str) -> tuple[str, str]:
    """(display name, address) from "addr" or "Name <addr>"; the address is validated."""
    text = clean_header_text(entry)
    name, addr = parseaddr(text)
    # parseaddr guesses on odd input (CVE-2023-27043) and reads only the first of several:
    # the entry must be the bare address or end with it in angle brackets.
    if not addr or (text != addr and not text.endswith(f"<{addr}>")):
        raise ComposeError(f"not a valid e-mail address: {text!r}")
    return name, validate_address(addr)


def _split_entries(value: str) -> list[str]:
    """Entries of a typed address list: commas and semicolons outside quotes, <> and ()."""
    entries: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    angle = comment = 0
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and (quoted or comment):
            escaped = True
        elif ch == '"' and not comment:
            quoted = not quoted
        elif not quoted:
            if ch == "(":
                comment += 1
            elif ch == ")" and comment:
                comment -= 1
            elif ch == "<" and not comment:
                angle += 1
            elif ch == ">" and angle and not comment:
                angle -= 1
            elif ch in ",;" and not (angle or comment):
                entries.append("".join(current))
                current = []
                continue
        current.append(ch)
    entries.append("".join(current))
    return [e.strip() for e in entries if e.strip()]


def parse_address_list(value: str) -> tuple[list[tuple[str, str]], list[str]]:
    """What an agent typed into To or Cc: ([(name, addr)], [entries that are no address]).

    As mail clients read it (email.utils.getaddresses): commas or semicolons separate the
    entries, "Name <addr>" and quoted names (which may hold a comma) are one entry, and each
    address is checked as the outgoing mail will check it. An address typed twice counts once.
    """
    good: list[tuple[str, str]] = []
    bad: list[str] = []
    for entry in _split_entries(value):
        try:
            good.append(_mailbox(entry))
        except ComposeError:
            bad.append(clean_header_text(entry))
    return _dedupe(good, ()), bad


def _stable(value: str, probe: Callable[[str], str]) -> str:
    """Clean value until the header parser reads back exactly what we give it.

    Assigning a str to a header decodes encoded-words inside it; a decoded CR/LF then reaches
    the wire on 3.11. Each round can only shorten the text, so this ends; after a few rounds
    the parser still disagreeing means a crafted value, and an empty one is safer.
    """
    text = clean_header_text(value)
    for _ in range(6):
        if not text:
            return ""
        try:
            seen = probe(text)
        except (ValueError, IndexError, TypeError):
            # The parser refuses what it decoded (CR/LF in an address part): decode it here.
            seen = _decode_words(text)
            if seen == text:
                return ""
        again = clean_header_text(seen)
        if again == text and not _has_breaks_or_controls(seen):
            return text
        text = again
    return ""


def _decode_words(text: str) -> str:
    try:
        return str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError):
        return text


def _has_breaks_or_controls(text: str) -> bool:
    return any(
        ch in _LINE_BREAKS or ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs") for ch in text
    )


def _probe_unstructured(text: str) -> str:
    return str.__str__(_PROBE_POLICY.header_factory("subject", text))


def _probe_display_name(text: str) -> str:
    header = _PROBE_POLICY.header_factory("to", str(Address(display_name=text, addr_spec="x@y.z")))
    addresses = header.addresses
    if len(addresses) != 1 or addresses[0].addr_spec != "x@y.z":
        raise ValueError("display name changes the address list")
    return str.__str__(addresses[0].display_name)


def _address(name: str, addr: str) -> Address:
    return Address(display_name=_stable(name, _probe_display_name), addr_spec=addr)


def _msgid(value: str) -> str | None:
    """The one `<id@host>` in value, or None; ids carrying encoded-word markers are refused."""
    text = clean_header_text(value)
    m = _MSGID.search(text)
    if m is None or "=?" in m[1] or "?=" in m[1]:
        return None
    return m[0]


def _references(references: Iterable[str], in_reply_to: str | None) -> list[str]:
    ids: list[str] = []
    for ref in references:
        # A caller may pass the raw References header as one string.
        for token in clean_header_text(ref).split():
            mid = _msgid(token)
            if mid is not None and mid not in ids:
                ids.append(mid)
    if in_reply_to is not None:
        if in_reply_to in ids:
            ids.remove(in_reply_to)
        ids.append(in_reply_to)
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return ids


def _strip_subject(subject: str) -> str:
    """The subject without leading reply/forward prefixes and without any [#N] tags."""
    text = _TAG.sub(" ", clean_header_text(subject))
    text = _WS.sub(" ", text).strip()
    while True:
        m = _PREFIX.match(text)
        if m is None:
            return text
        text = _WS.sub(" ", _TAG.sub(" ", text[m.end() :])).strip()


def _tag_subject(subject: str, ticket: int, prefix: str) -> str:
    """ "Re: [#12] Printer": the tag exactly once, one prefix at most."""
    rest = _strip_subject(subject)
    tagged = f"[#{ticket}] {rest}".rstrip()
    return f"{prefix}: {tagged}" if prefix else tagged


def _quote_block(text: str, author: str, date: datetime | None) -> str:
    who = clean_header_text(author) or "the sender"
    when = f"On {date:%Y-%m-%d %H:%M %z}, " if date is not None else ""
    head = f"{when}{who} wrote:"
    lines = clean_body_text(text).rstrip("\n").split("\n")
    return head + "\n" + "\n".join(f"> {line}" if line else ">" for line in lines)


def _body(spec: OutgoingSpec) -> str:
    parts = [clean_body_text(spec.body).rstrip()]
    signature = clean_body_text(spec.signature).strip("\n")
    if signature:
        # "-- " on its own line lets mail clients recognise and fold the signature.
        parts.append(signature if signature.startswith("-- \n") else f"-- \n{signature}")
    if spec.quote.strip():
        parts.append(_quote_block(spec.quote, spec.quote_author, spec.quote_date))
    return "\n\n".join(p for p in parts if p) + "\n"


def _content_type(value: str) -> tuple[str, str]:
    text = clean_header_text(value).lower().split(";")[0].strip()
    if _CONTENT_TYPE.fullmatch(text) is None:
        return "application", "octet-stream"
    maintype, subtype = text.split("/", 1)
    if maintype in ("multipart", "message"):
        # A nested message or multipart needs structure, not bytes; ship it opaque.
        return "application", "octet-stream"
    return maintype, subtype


def _dedupe(entries: Sequence[tuple[str, str]], skip: Collection[str]) -> list[tuple[str, str]]:
    seen = {s.lower() for s in skip}
    out: list[tuple[str, str]] = []
    for name, addr in entries:
        if addr.lower() not in seen:
            seen.add(addr.lower())
            out.append((name, addr))
    return out


def build_message(spec: OutgoingSpec) -> EmailMessage:
    """A ready-to-send text/plain (or multipart/mixed) message; ComposeError if unsafe."""
    if spec.date.tzinfo is None or spec.date.utcoffset() is None:
        raise ComposeError("the Date of an outgoing message must be tz-aware")
    message_id = _msgid(spec.message_id)
    if message_id is None or message_id != spec.message_id.strip():
        raise ComposeError(f"not a valid Message-ID: {spec.message_id!r}")
    if spec.prefix not in ("", "Re", "Fwd"):
        raise ComposeError(f"unknown subject prefix {spec.prefix!r}")
    from_name, from_addr = clean_header_text(spec.from_name), validate_address(spec.from_addr)
    to = _dedupe([_mailbox(e) for e in spec.to], ())
    cc = _dedupe([_mailbox(e) for e in spec.cc], [a for _, a in to])
    if not to and not cc:
        raise ComposeError("an outgoing message needs at least one recipient")

    msg = EmailMessage(policy=_POLICY)
    msg["From"] = _address(from_name, from_addr)
    if to:
        msg["To"] = [_address(n, a) for n, a in to]
    if cc:
        msg["Cc"] = [_address(n, a) for n, a in cc]
    msg["Subject"] = _stable(
        _tag_subject(spec.subject, spec.ticket, spec.prefix), _probe_unstructured
    )
    msg["Date"] = format_datetime(spec.date)
    msg["Message-ID"] = message_id
    in_reply_to = _msgid(spec.in_reply_to) if spec.in_reply_to else None
    if in_reply_to is not None:
        msg["In-Reply-To"] = in_reply_to
    refs = _references(spec.references, in_reply_to)
    if refs:
        msg["References"] = " ".join(refs)
    if spec.automatic:
        # RFC 3834 plus the Microsoft and legacy markers: out-of-office robots must stay quiet.
        msg["Auto-Submitted"] = spec.auto_kind
        msg["X-Auto-Response-Suppress"] = "All"
        msg["Precedence"] = "auto_reply"
    loop = _stable(spec.loop_value, _probe_unstructured)
    if loop:
        # On every message, not only automatic ones: a reply that comes back to one of our own
        # mailboxes (the customer cc'd us, a forward to a colleague desk) is recognised.
        msg["X-Helpdesk-Loop"] = loop
    msg.set_content(_body(spec), subtype="plain", charset="utf-8")
    for filename, content_type, data in spec.attachments:
        maintype, subtype = _content_type(content_type)
        msg.add_attachment(
            bytes(data), maintype=maintype, subtype=subtype, filename=clean_filename(filename)
        )
    return msg


def _header_names(lines: list[bytes]) -> list[str]:
    names: list[str] = []
    for line in lines:
        if not line or line[:1] in (b" ", b"\t"):
            continue
        name, colon, _ = line.partition(b":")
        if not colon or not name or not all(33 <= c <= 126 for c in name):
            raise ComposeError(f"malformed header line in outgoing message: {line[:60]!r}")
        names.append(name.decode("ascii").lower())
    return names


def to_bytes(msg: EmailMessage) -> bytes:
    """The wire form (CRLF), after checking no header line appeared that we did not set."""
    data = msg.as_bytes(policy=_POLICY)
    head, sep, _ = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not sep or any(b"\r" in line or b"\n" in line or b"\x00" in line for line in lines):
        raise ComposeError("outgoing message has a malformed header block")
    if sorted(_header_names(lines)) != sorted(k.lower() for k in msg):
        raise ComposeError("outgoing header block does not match the headers we set")
    if not data.isascii():
        raise ComposeError("outgoing message is not 7-bit clean")
    return data


def envelope_recipients(spec: OutgoingSpec) -> tuple[str, ...]:
    """The bare To and Cc addresses for RCPT TO, validated and without duplicates."""
    to = _dedupe([_mailbox(e) for e in spec.to], ())
    cc = _dedupe([_mailbox(e) for e in spec.cc], [a for _, a in to])
    return tuple(a for _, a in [*to, *cc])


def _parse_list(value: str) -> list[tuple[str, str]]:
    """Mailboxes from one address header value; unparsable or invalid entries are dropped."""
    text = clean_header_text(value)
    if not text:
        return []
    try:
        header = _PROBE_POLICY.header_factory("to", text)
        addresses = header.addresses
    except (ValueError, IndexError, TypeError):
        return []
    out: list[tuple[str, str]] = []
    for a in addresses:
        try:
            out.append((clean_header_text(a.display_name), validate_address(a.addr_spec)))
        except ComposeError:
            continue
    return out


def reply_recipients(
    *,
    sender: str,
    reply_to: str = "",
    to: str = "",
    cc: str = "",
    own: Collection[str] = (),
    reply_all: bool = False,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(To, Cc) for a reply to a message with these header values (decoded strings).

    To is Reply-To when given, else From. Reply-all copies the original To and Cc into Cc,
    without our own addresses (`own`) and without anyone already in To.
    """
    own_lower = [o.lower() for o in own]
    primary = _parse_list(reply_to) or _parse_list(sender)
    new_to = _dedupe([p for p in primary if p[1].lower() not in own_lower], ())
    new_cc: list[tuple[str, str]] = []
    if reply_all:
        others = _parse_list(to) + _parse_list(cc)
        if not new_to:
            # We wrote the original (sender is ours): answer its recipients instead.
            new_to, others = others[:1], others[1:]
        new_cc = _dedupe(others, [*own_lower, *(a for _, a in new_to)])
    # str(Address) quotes names with specials and leaves non-ASCII readable for the UI.
    return (
        tuple(str(Address(display_name=n, addr_spec=a)) for n, a in new_to),
        tuple(str(Address(display_name=n, addr_spec=a)) for n, a in new_cc),
    )


def forward_spec(
    *,
    from_addr: str,
    from_name: str,
    to: tuple[str, ...],
    note: str,
    ticket: int,
    message_id: str,
    date: datetime,
    original_subject: str,
    original_from: str,
    original_date: datetime | None,
    original_to: str,
    original_text: str,
    attachments: tuple[Attachment, ...] = (),
    signature: str = "",
    loop_value: str = "",
) -> OutgoingSpec:
    """A forward of one ticket message: the note, then the original inline, files attached."""
    header_lines = [
        "---------- Forwarded message ----------",
        f"From: {clean_header_text(original_from)}",
    ]
    if original_date is not None:
        header_lines.append(f"Date: {format_datetime(original_date)}")
    header_lines += [
        f"Subject: {clean_header_text(original_subject)}",
        f"To: {clean_header_text(original_to)}",
    ]
    body = "\n\n".join(
        p for p in (note.rstrip(), "\n".join(header_lines), original_text.rstrip()) if p
    )
    return OutgoingSpec(
        from_addr=from_addr,
        from_name=from_name,
        to=to,
        subject=original_subject,
        prefix="Fwd",
        body=body,
        ticket=ticket,
        message_id=message_id,
        date=date,
        signature=signature,
        attachments=attachments,
        loop_value=loop_value,
    )
