"""Raw RFC 5322 bytes to a frozen ParsedMail: fast, bounded, tolerant, and never raising.

Speed: the stdlib parser runs with policy compat32, which is 4-5 times faster than
policy.default because it builds no header objects; headers are decoded here chunk by chunk
(RFC 2047 words, raw 8-bit bytes, unknown charsets) the way alot does, so one bad header
costs a note instead of an exception (policy.default raises AttributeError on
`To: unlisted-recipients:;`).

Bounds: before the full parse a cheap scan quarantines messages whose header block, address
count, MIME part count or multipart nesting would make parsing slow (flanker's 3 MB
"enclosed-endless" has thousands of parts); they get needs_review and the few fields a
header-only scan can give.

Everything a stranger wrote (subject, names, body text, file names) goes through clean.py here,
at ingest, so the store never holds an ESC or a bidi override.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import hashlib
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from helpdesk_tui.mail.clean import clean_line, clean_text, safe_filename

__all__ = [
    "AUTOREPLY_HEADERS",
    "MAX_ADDRESSES",
    "MAX_DEPTH",
    "MAX_HEADER_BYTES",
    "MAX_PARTS",
    "ParsedAttachment",
    "ParsedMail",
    "decode_header_value",
    "parse_message",
]

MAX_HEADER_BYTES = 256 * 1024
MAX_ADDRESSES = 1000
MAX_PARTS = 1000
MAX_DEPTH = 20
# Display fields longer than this are cut (flanker's long-header.eml has a 210 KB subject).
MAX_LINE_CHARS = 2000
MAX_TEXT_CHARS = 2_000_000
# HTML beyond this is cut before conversion: inscriptis is linear but not fast.
MAX_HTML_CONVERT = 1_000_000
MAX_REFERENCES = 100
MAX_ID_CHARS = 998
MAX_NOTES = 50
SCAN_BYTES = 64 * 1024

# Headers autoreply.py decides on; kept decoded in ParsedMail.headers.
AUTOREPLY_HEADERS = (
    "auto-submitted",
    "precedence",
    "x-precedence",
    "list-id",
    "list-unsubscribe",
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-autoreply-from",
    "x-mail-autoreply",
    "x-auto-response-suppress",
    "x-failed-recipients",
    "return-path",
    "content-type",
    "x-helpdesk-loop",
)


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    """One file from the message; filename is already safe to create on disk."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    sha256: str


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """What intake needs from one message; every str is cleaned, every datetime is UTC."""

    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: datetime | None
    text: str
    html: str = field(repr=False)
    attachments: tuple[ParsedAttachment, ...]
    raw_headers: str = field(repr=False)
    headers: Mapping[str, tuple[str, ...]]
    is_report: bool
    sha256: str
    message_id_synthesized: bool = False
    report_type: str = ""
    charset_fallbacks: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    needs_review: bool = False
    review_reason: str = ""


# --- charsets --------------------------------------------------------------------------------

# Labels mail mislabels all the time, read as the superset every browser uses (WHATWG Encoding
# Standard): "iso-8859-1" mail is nearly always windows-1252, "gb2312" mail is GBK or GB18030.
_SUPERSETS = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "iso-8859-9": "cp1254",
    "tis-620": "cp874",
    "utf8": "utf-8",
}


@functools.lru_cache(maxsize=256)
def _codec(label: str) -> str | None:
    """Python codec name for a MIME charset label, or None if unknown or not a text codec."""
    label = label.strip().strip("\"'").lower()
    label = _SUPERSETS.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    # bytes.decode("zlib") would decompress: a charset must never select a non-text codec.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


class _Notes:
    """Fallbacks, defects and review reasons gathered while parsing one message."""

    __slots__ = ("defects", "fallbacks", "review")

    def __init__(self) -> None:
        self.fallbacks: list[str] = []
        self.defects: list[str] = []
        self.review: list[str] = []

    def fallback(self, note: str) -> None:
        if len(self.fallbacks) < MAX_NOTES and note not in self.fallbacks:
            self.fallbacks.append(note)

    def defect(self, note: str) -> None:
        if len(self.defects) < MAX_NOTES and note not in self.defects:
            self.defects.append(note)


def _decode_bytes(data: bytes, charset: str | None, notes: _Notes, where: str) -> str:
    """Bytes in a declared charset to str; unknown or wrong charsets fall back, noted."""
    label = (charset or "us-ascii").strip().strip("\"'").lower() or "us-ascii"
    codec = _codec(label)
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    problem = f"unknown charset {label!r}" if codec is None else f"not valid {label}"
    if codec != "utf-8":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            notes.fallback(f"{where}: {problem}; read as utf-8")
            return text
    if codec is None or codec in ("ascii", "utf-8", "cp1252", "iso8859-1"):
        # windows-1252 is what undeclared or mislabelled 8-bit Western mail nearly always is.
        notes.fallback(f"{where}: {problem}; read as windows-1252")
        return data.decode("cp1252", errors="replace")
    notes.fallback(f"{where}: {problem}; undecodable bytes replaced")
    return data.decode(codec, errors="replace")


# --- headers ---------------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
_SIMPLE_ADDRESS = re.compile(
    r'\s*(?:([^<>@,;:"()\\\[\]]*?)\s*<([^<>@\s,;:"()\\]+@[^<>@\s,;:"()\\]+)>'
    r'|([^<>@\s,;:"()\\]+@[^<>@\s,;:"()\\]+))\s*'
)


def _fix_8bit(value: str, notes: _Notes, where: str) -> str:
    """Raw 8-bit header bytes (kept by compat32 as surrogate escapes) read as utf-8 or 1252."""
    if value.isascii():
        return value
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        notes.fallback(f"{where}: raw 8-bit header read as windows-1252")
        return data.decode("cp1252", errors="replace")


def _word_bytes(kind: str, text: str) -> bytes:
    raw = text.encode("ascii", "ignore")
    if kind in "Bb":
        return base64.b64decode(raw + b"=" * (-len(raw) % 4))
    return binascii.a2b_qp(raw, header=True)


def decode_header_value(value: str, notes: _Notes | None = None, where: str = "header") -> str:
    """A raw header value to text: unfolded, 8-bit fixed, RFC 2047 words decoded (not cleaned).

    Adjacent words in one charset are joined before decoding, since mailers split multi-byte
    characters across words; whitespace between encoded words is dropped as RFC 2047 says.
    """
    if notes is None:
        notes = _Notes()
    value = _FOLD.sub("", value)
    value = _fix_8bit(value, notes, where)
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = bytearray()
    pending_cs: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending_cs
        if pending_cs is not None:
            out.append(_decode_bytes(bytes(pending), pending_cs, notes, where))
            pending.clear()
            pending_cs = None

    for m in _ENCODED_WORD.finditer(value):
        gap = value[pos : m.start()]
        if gap and not (pending_cs is not None and gap.isspace()):
            flush()
            out.append(gap)
        pos = m.end()
        charset = m[1].lower()
        try:
            data = _word_bytes(m[2], m[3])
        except (binascii.Error, ValueError):
            flush()
            notes.defect(f"{where}: undecodable encoded word")
            out.append(m[0])
            continue
        if pending_cs is not None and charset != pending_cs:
            flush()
        pending_cs = charset
        pending += data
    flush()
    out.append(value[pos:])
    return "".join(out)


def _line(value: str, notes: _Notes, where: str) -> str:
    text = clean_line(decode_header_value(value, notes, where))
    if len(text) > MAX_LINE_CHARS:
        notes.defect(f"{where}: cut to {MAX_LINE_CHARS} characters")
        text = text[:MAX_LINE_CHARS]
    return text


def _first_id(value: str) -> str | None:
    """The first <id> of a header (or a bare id with an @); absurdly long ids count as none."""
    m = _ANGLE_ID.search(value)
    if m is not None:
        found = f"<{m[1]}>"
    else:
        token = value.split(" ")[0].strip("<>")
        found = f"<{token}>" if "@" in token else ""
    return found if 2 < len(found) <= MAX_ID_CHARS else None


def _ids(value: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for m in _ANGLE_ID.finditer(value):
        if len(m[0]) <= MAX_ID_CHARS:
            seen[f"<{m[1]}>"] = None
    ids = tuple(seen)
    return ids[-MAX_REFERENCES:]


def _addresses(values: list[str], notes: _Notes, where: str) -> list[tuple[str, str]]:
    """(name, lower-cased address) pairs; empty and group-only entries are dropped."""
    if not values:
        return []
    fixed = [_FOLD.sub("", _fix_8bit(v, notes, where)) for v in values]
    simple = _SIMPLE_ADDRESS.fullmatch(fixed[0]) if len(fixed) == 1 else None
    try:
        if simple is not None:
            # Fast path for the common `Name <a@b>` / `a@b`: getaddresses costs ~50 us each.
            pairs = [(simple[1] or "", simple[2] or simple[3])]
        else:
            pairs = getaddresses(fixed)
    except Exception:  # noqa: BLE001 - a parser bug must cost a note, not the message
        notes.defect(f"{where}: unparseable address list")
        return []
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, addr in pairs:
        address = clean_line(addr).strip("<>").lower()
        if not address or address in seen:
            continue
        seen.add(address)
        out.append((_line(name, notes, where) if name else "", address))
    return out


def _date(values: list[str] | None, notes: _Notes) -> datetime | None:
    if not values:
        notes.defect("no Date header")
        return None
    text = clean_line(decode_header_value(values[0], notes, "Date"))
    try:
        when = parsedate_to_datetime(text)
    except Exception:  # noqa: BLE001 - every malformed date must end as None
        notes.defect(f"unparseable Date {text[:80]!r}")
        return None
    if when.tzinfo is None:
        # RFC 5322 "-0000": the time is UTC, the zone unknown.
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _header_map(msg: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.strip().lower(), []).append(str(value))
    return headers


# --- cheap pre-scan --------------------------------------------------------------------------

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_BOUNDARY_DECL = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', re.I)
_DASH_LINE = re.compile(rb"^--([^\r\n]{1,204})", re.M)
_ADDRESS_HEADER = re.compile(
    rb"^(?:resent-)?(?:to|cc|bcc|from|reply-to|sender)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.I | re.M
)
_SYNTH_HEADERS = ("from", "to", "cc", "date", "subject")


def _split(raw: bytes) -> tuple[bytes, bytes]:
    m = _HEADER_END.search(raw)
    if m is None:
        return raw, b""
    return raw[: m.start()], raw[m.end() :]


def _mime_bounds(raw: bytes) -> str | None:
    """A quarantine reason when parts or multipart nesting exceed the bounds, else None."""
    if b"--" not in raw:
        return None
    declared = {a or b for a, b in _BOUNDARY_DECL.findall(raw)}
    if len(declared) > MAX_PARTS:
        return f"more than {MAX_PARTS:,} multipart containers"
    dash_lines = raw.count(b"\n--") + raw.startswith(b"--")
    if dash_lines <= MAX_PARTS and len(declared) <= MAX_DEPTH:
        return None
    parts = 0
    depth = 0
    stack: list[bytes] = []
    for m in _DASH_LINE.finditer(raw):
        line = m[1].rstrip()
        closing = line.endswith(b"--") and line[:-2] in declared
        boundary = line[:-2] if closing else line
        if boundary not in declared:
            continue
        if boundary in stack:
            del stack[stack.index(boundary) + 1 :]
        else:
            stack.append(boundary)
        if closing:
            stack.pop()
        else:
            parts += 1
        depth = max(depth, len(stack))
        if parts > MAX_PARTS:
            return f"more than {MAX_PARTS:,} MIME parts"
        if depth > MAX_DEPTH:
            return f"multipart nesting deeper than {MAX_DEPTH}"
    return None


def _precheck(head: bytes, raw: bytes) -> str | None:
    if len(head) > MAX_HEADER_BYTES:
        return f"header block larger than {MAX_HEADER_BYTES // 1024} KB"
    if head.count(b"@") > MAX_ADDRESSES:
        count = sum(m[1].count(b"@") for m in _ADDRESS_HEADER.finditer(head))
        if count > MAX_ADDRESSES:
            return f"more than {MAX_ADDRESSES:,} addresses"
    return _mime_bounds(raw)


# --- body ------------------------------------------------------------------------------------

_TEXT_TYPES = ("text/plain", "text/html")
_FIELD_TYPES = (
    "message/delivery-status",
    "message/global-delivery-status",
    "message/disposition-notification",
    "message/global-disposition-notification",
    "message/feedback-report",
)


@functools.lru_cache(maxsize=1)
def _mime_db() -> mimetypes.MimeTypes:
    # Built-in table only, so the guessed extension does not depend on the host's mime.types.
    return mimetypes.MimeTypes(filenames=())


def _extension(content_type: str) -> str:
    ext = _mime_db().guess_extension(content_type)
    if ext:
        return ext
    return ".eml" if content_type.startswith("message/") else ".bin"


def _html_to_text(html: str, notes: _Notes) -> str:
    """HTML-only mail to text with inscriptis.

    inscriptis is maintained and lays out tables and lists as text, so an HTML-only order
    confirmation stays legible; a regex tag strip would run table cells together.
    """
    html = clean_text(html)
    if len(html) > MAX_HTML_CONVERT:
        notes.defect(f"HTML cut to {MAX_HTML_CONVERT:,} characters before conversion")
        html = html[:MAX_HTML_CONVERT]
    if not html.strip():
        return ""
    # Imported here: lxml and inscriptis cost ~50 ms to import and most mail has a text part.
    from inscriptis import get_text

    try:
        return str(get_text(html))
    except Exception:  # noqa: BLE001 - lxml rejects some documents; a crude strip is better than nothing
        notes.defect("HTML could not be converted; tags stripped")
        return re.sub(r"<[^>]*>", " ", html)


_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_BOILERPLATE = re.compile(r"multi-?part|MIME", re.I)


def _tidy(text: str) -> str:
    """Trailing blanks off each line and at most one empty line in a row (layout padding)."""
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text)


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


class _Walker:
    """Walks one parsed tree collecting text segments, the top-level HTML and attachments."""

    def __init__(self, notes: _Notes) -> None:
        self.notes = notes
        self.attachments: list[ParsedAttachment] = []
        self.html: str | None = None
        self.parts = 0

    def render(self, msg: Message, depth: int, top: bool) -> str:
        segments: list[tuple[str, str]] = []
        self.collect(msg, depth, segments, top=top, wanted=True, single=not msg.is_multipart())
        has_plain = any(kind == "plain" for kind, _ in segments)
        out: list[str] = []
        for kind, text in segments:
            if kind == "html":
                if has_plain:
                    continue
                text = _tidy(_html_to_text(text, self.notes))
            text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
            if text.strip():
                out.append(text)
        return "\n\n".join(out)

    def collect(
        self,
        part: Message,
        depth: int,
        segments: list[tuple[str, str]],
        *,
        top: bool,
        wanted: bool,
        single: bool = False,
    ) -> None:
        """wanted=False walks an alternative we did not choose: attachments only, no text."""
        self.parts += 1
        if depth > MAX_DEPTH or self.parts > MAX_PARTS:
            reason = f"MIME nesting deeper than {MAX_DEPTH} or more than {MAX_PARTS:,} parts"
            if reason not in self.notes.review:
                self.notes.review.append(reason)
            return
        for defect in getattr(part, "defects", ()):
            self.notes.defect(type(defect).__name__)
        ctype = part.get_content_type()
        payload = part.get_payload()
        if ctype.startswith("multipart/") and not isinstance(payload, list):
            # No usable boundary: the parser kept the body as one text; show it as text.
            ctype = "text/plain"
        if ctype.startswith("multipart/") and isinstance(payload, list):
            preamble = part.preamble
            if wanted and preamble and preamble.strip() and not _BOILERPLATE.search(preamble):
                # Old MTAs (and some reports) put the only human-readable text there.
                segments.append(("preamble", _fix_8bit(preamble, self.notes, "preamble")))
            children = [child for child in payload if isinstance(child, Message)]
            chosen = _choose_alternative(children) if ctype == "multipart/alternative" else None
            for child in children:
                keep = wanted and (chosen is None or child is chosen)
                self.collect(child, depth + 1, segments, top=top, wanted=keep)
            return
        if ctype.startswith("message/") and isinstance(payload, list):
            if wanted:
                segments.append(("quoted", self._message_part(ctype, payload, depth)))
            return
        filename = self._filename(part)
        attached = str(part.get("Content-Disposition", "")).strip().lower().startswith("attach")
        is_body = ctype in _TEXT_TYPES and not attached and (not filename or single)
        if is_body:
            text = self._text(part, ctype)
            if ctype == "text/html":
                if top and self.html is None:
                    self.html = text
                if wanted:
                    segments.append(("html", text))
            elif wanted:
                segments.append(("plain", text))
            return
        if ctype == "text/rfc822-headers" and not filename:
            if wanted:
                headers = clean_text(self._text(part, ctype)).strip("\n")
                segments.append(("quoted", _quote(headers)))
            return
        self._attach(part, ctype, filename)

    def _message_part(self, ctype: str, payload: list[Message | str], depth: int) -> str:
        inner = [p for p in payload if isinstance(p, Message)]
        if ctype in _FIELD_TYPES or not inner:
            blocks: list[str] = []
            for block in inner:
                lines = [
                    f"{clean_line(name)}: {_line(str(value), self.notes, ctype)}"
                    for name, value in block.raw_items()
                ]
                body = block.get_payload()
                if isinstance(body, str) and body.strip():
                    lines.append(clean_text(_fix_8bit(body, self.notes, ctype)).strip("\n"))
                blocks.append("\n".join(lines))
            return _quote("\n\n".join(blocks))
        nested = inner[0]
        headers = _header_map(nested)
        summary: list[str] = []
        for name in ("From", "Date", "Subject", "To"):
            values = headers.get(name.lower())
            if values:
                summary.append(f"{name}: {_line(values[0], self.notes, 'attached message')}")
        body = self.render(nested, depth + 1, top=False)
        return _quote("\n".join(summary) + ("\n\n" + body if body else ""))

    def _text(self, part: Message, ctype: str) -> str:
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = b""
        return _decode_bytes(data, part.get_content_charset(), self.notes, ctype)

    def _filename(self, part: Message) -> str:
        source = part
        params = [
            (name, value)
            for name, value in part.raw_items()
            if name.strip().lower() in ("content-disposition", "content-type")
        ]
        if not any("name" in str(value).lower() for _, value in params):
            return ""  # no filename= or name= parameter, however encoded (RFC 2231 too)
        if not all(str(value).isascii() for _, value in params):
            # compat32 would hand raw 8-bit parameters back as U+FFFD: fix the bytes first.
            source = Message()
            for header, value in params:
                source[header.strip()] = _fix_8bit(str(value), self.notes, "file name")
        try:
            found = source.get_filename()
        except Exception:  # noqa: BLE001 - malformed RFC 2231 parameters
            self.notes.defect("unreadable attachment file name")
            return ""
        if not found:
            return ""
        return clean_line(decode_header_value(str(found), self.notes, "file name"))

    def _attach(self, part: Message, ctype: str, filename: str) -> None:
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = b""
        number = len(self.attachments) + 1
        name = safe_filename(filename, default=f"part-{number}{_extension(ctype)}")
        self.attachments.append(
            ParsedAttachment(
                filename=name,
                content_type=clean_line(ctype),
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )


def _choose_alternative(children: list[Message]) -> Message | None:
    """Plain text first (it is what the sender wrote for text readers), else the richest HTML."""
    for child in children:
        if child.get_content_type() == "text/plain":
            return child
    for child in children:
        if child.is_multipart() and any(
            sub.get_content_type() == "text/plain" for sub in child.walk()
        ):
            return child
    for child in reversed(children):
        if child.get_content_type() in ("text/html", "multipart/related", "multipart/mixed"):
            return child
    return children[-1] if children else None


# --- assembly --------------------------------------------------------------------------------


def _synthesized_id(head: bytes, body: bytes, headers: Mapping[str, list[str]]) -> str:
    """A stable ID from the fields a re-delivery keeps (not Received or Delivered-To)."""
    h = hashlib.sha256()
    for name in _SYNTH_HEADERS:
        for value in headers.get(name, ()):
            h.update(name.encode() + b":" + value.encode("utf-8", "surrogateescape") + b"\n")
    h.update(b"\n")
    h.update(body if headers else head + body)
    return f"<{h.hexdigest()[:32]}@synthesized.invalid>"


def _raw_headers(head: bytes, notes: _Notes) -> str:
    if len(head) > SCAN_BYTES * 4:
        head = head[: SCAN_BYTES * 4]
        notes.defect("raw header block cut to 256 KB")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("cp1252", errors="replace")
    return clean_text(text)


def _build(
    raw: bytes,
    digest: str,
    head: bytes,
    body: bytes,
    msg: Message | None,
    notes: _Notes,
    walker: _Walker | None,
    text: str,
) -> ParsedMail:
    headers = _header_map(msg) if msg is not None else {}

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    def ids_in(name: str, label: str) -> str:
        return clean_line(_fix_8bit(" ".join(headers.get(name, ())), notes, label))

    message_id = _first_id(ids_in("message-id", "Message-ID"))
    synthesized = message_id is None
    if message_id is None:
        notes.defect("no Message-ID; synthesized")
        message_id = _synthesized_id(head, body, headers)
    in_reply_to = _first_id(ids_in("in-reply-to", "In-Reply-To"))
    references = _ids(ids_in("references", "References"))

    from_pairs = _addresses(headers.get("from", []), notes, "From")
    from_name, from_addr = from_pairs[0] if from_pairs else ("", "")
    if not from_addr:
        notes.defect("no From address")
    to = tuple(a for _, a in _addresses(headers.get("to", []), notes, "To"))
    cc = tuple(a for _, a in _addresses(headers.get("cc", []), notes, "Cc"))
    reply_to = tuple(a for _, a in _addresses(headers.get("reply-to", []), notes, "Reply-To"))
    subject_raw = first("subject")
    subject = _line(subject_raw, notes, "Subject") if subject_raw else ""

    wanted: dict[str, tuple[str, ...]] = {}
    for name in AUTOREPLY_HEADERS:
        values = headers.get(name)
        if values:
            wanted[name] = tuple(_line(v, notes, name) for v in values)

    ctype = msg.get_content_type() if msg is not None else "text/plain"
    is_report = ctype == "multipart/report"
    report_type = ""
    if is_report and msg is not None:
        param = msg.get_param("report-type")
        report_type = clean_line(param).lower() if isinstance(param, str) else ""

    if len(text) > MAX_TEXT_CHARS:
        notes.defect(f"text cut to {MAX_TEXT_CHARS:,} characters")
        text = text[:MAX_TEXT_CHARS]
    return ParsedMail(
        message_id=message_id,
        message_id_synthesized=synthesized,
        in_reply_to=in_reply_to,
        references=references,
        subject=subject,
        from_addr=from_addr,
        from_name=from_name,
        to=to,
        cc=cc,
        reply_to=reply_to,
        date=_date(headers.get("date"), notes) if msg is not None else None,
        text=text,
        html=(walker.html or "") if walker is not None else "",
        attachments=tuple(walker.attachments) if walker is not None else (),
        raw_headers=_raw_headers(head, notes),
        headers=dict(wanted),  # a plain dict: ParsedMail crosses process boundaries (pickle)
        is_report=is_report,
        report_type=report_type,
        sha256=digest,
        charset_fallbacks=tuple(notes.fallbacks),
        defects=tuple(notes.defects),
        needs_review=bool(notes.review),
        review_reason="; ".join(notes.review),
    )


def _header_scan(head: bytes) -> Message:
    """Headers only, from at most SCAN_BYTES of the header block, cut at a line end."""
    if len(head) > SCAN_BYTES:
        cut = head.rfind(b"\n", 0, SCAN_BYTES)
        head = head[: cut if cut > 0 else SCAN_BYTES]
    return BytesParser(policy=compat32).parsebytes(head, headersonly=True)


# A header line as email.feedparser's headerRE reads one, with a non-empty name.
_HEADER_NAME = re.compile(r"[\041-\071\073-\176]+:")


def _simple_message(raw: bytes) -> Message | None:
    """The Message BytesParser(policy=compat32) builds, for a plain single-part mail.

    Most mail is one text part under a header block of ordinary lines; for it the feed parser's
    line-by-line machinery is a third of the parse. This builds the same object directly
    (same header list, same payload string, no defects) and returns None for anything else:
    multipart and message/* types, 8-bit or unusual header lines, a missing blank line, a
    Unix From line, lone CRs. tests/mail/test_parse_fast.py holds it to the parser's result.
    """
    m = _HEADER_END.search(raw)
    if m is None or m.start() == 0:
        return None
    newline = 2 if raw[m.start()] == 13 else 1  # the last header line's own line end
    head = raw[: m.start() + newline]
    if not head.isascii() or head.count(b"\r") != head.count(b"\r\n"):
        return None
    headers: list[tuple[str, str]] = []
    name = ""
    lines: list[str] = []
    for line in head.decode("ascii").split("\n")[:-1]:
        line += "\n"
        if line[0] in " \t":
            if not name:
                return None
            lines.append(line)
            continue
        if line.startswith("From ") or _HEADER_NAME.match(line) is None:
            return None
        if name:
            headers.append(_header_source(lines))
        name = line[: line.index(":")]
        lines = [line]
    headers.append(_header_source(lines))
    msg = Message(policy=compat32)
    msg._headers = headers  # type: ignore[attr-defined]  # what feedparser's set_raw fills
    if msg.get_content_maintype() in ("multipart", "message"):
        return None
    msg.set_payload(raw[m.end() :].decode("ascii", "surrogateescape"))
    return msg


def _header_source(lines: list[str]) -> tuple[str, str]:
    """compat32.header_source_parse: name as written, value unfolded only of its first gap."""
    name, value = lines[0].split(":", 1)
    value = value.lstrip(" \t") + "".join(lines[1:])
    return name, value.rstrip("\r\n")


def _parse(raw: bytes, digest: str, notes: _Notes) -> ParsedMail:
    head, body = _split(raw)
    reason = _precheck(head, raw)
    if reason is not None:
        notes.review.append(f"quarantined: {reason}")
        return _build(raw, digest, head, body, _header_scan(head), notes, None, "")
    msg = _simple_message(raw) or BytesParser(policy=compat32).parsebytes(raw)
    walker = _Walker(notes)
    text = _LEADING_BLANK_LINES.sub("", clean_text(walker.render(msg, 0, top=True))).rstrip()
    return _build(raw, digest, head, body, msg, notes, walker, text)


def parse_message(raw: bytes) -> ParsedMail:
    """Parse one message; never raises: anything unexpected ends as needs_review."""
    digest = hashlib.sha256(raw).hexdigest()
    notes = _Notes()
    try:
        return _parse(raw, digest, notes)
    except Exception as exc:  # noqa: BLE001 - intake must go on; the agent sees the reason
        error = f"parser error: {type(exc).__name__}: {clean_line(str(exc))[:200]}"
    # Best effort from the headers alone; if even that fails, an empty shell.
    notes = _Notes()
    notes.review.append(error)
    head, body = _split(raw)
    try:
        return _build(raw, digest, head, body, _header_scan(head), notes, None, "")
    except Exception:  # noqa: BLE001 - the header scan itself failed
        notes = _Notes()
        notes.review.append(error)
        return _build(raw, digest, head, body, None, notes, None, "")
