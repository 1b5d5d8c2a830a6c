"""Untrusted text made inert: control characters, bidi overrides and unsafe file names.

Applied once at ingest to everything a stranger wrote (subject, names, body, file names) and
reused by the TUI. The rule is the same everywhere: unwanted characters are *removed*, never
replaced by a visible placeholder, so cleaning is idempotent and a cleaned string compares equal
to itself cleaned again.

Removed: C0 controls except TAB and LF (ESC above all: it drives the terminal), DEL, C1
controls (U+0080-U+009F, which include the 8-bit CSI), and the bidi embeddings, overrides and
isolates (U+202A-U+202E, U+2066-U+2069) that let "exe.pdf" display as "fdp.exe". The bidi
*marks* (U+200E, U+200F, U+061C) stay: they cannot reorder a run and right-to-left text needs
them. CR LF and lone CR become LF; U+2028/U+2029 become LF too because Python's splitlines and
terminals treat them as line breaks. The result is NFC, so equal-looking text compares equal.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_line", "clean_text", "safe_filename"]

_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+")
_UNWANTED_ASCII = re.compile("[\x00-\x08\x0b-\x1f\x7f]+")
_SPACES = re.compile(r"\s+")
# Characters that are path syntax or forbidden in file names on Windows or macOS.
_PATH_CHARS = re.compile(r'[/\\:*?"<>|]')
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{i}" for i in range(1, 10)]
    + [f"lpt{i}" for i in range(1, 10)]
)


def clean_text(s: str) -> str:
    """Multi-line text with TAB and LF kept and every other control or bidi override removed."""
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    if s.isascii():
        # Fast path: most mail is ASCII, which needs neither NFC nor the non-ASCII classes.
        return _UNWANTED_ASCII.sub("", s)
    s = _UNWANTED.sub("", s)
    if "\u2028" in s or "\u2029" in s:
        s = s.replace("\u2028", "\n").replace("\u2029", "\n")
    # NFC last so the result is NFC even where a removed character sat between base and mark.
    if not unicodedata.is_normalized("NFC", s):
        s = unicodedata.normalize("NFC", s)
    return s


def clean_line(s: str) -> str:
    """One line (subject, name, file name): clean_text, then runs of whitespace become a space.

    Collapsing the runs also unfolds header continuation lines and trims the ends.
    """
    return _SPACES.sub(" ", clean_text(s)).strip()


def safe_filename(name: str, default: str = "attachment", max_bytes: int = 200) -> str:
    """A name that is safe to create in any folder: no path, no traversal, bounded, never empty.

    Path separators and characters Windows refuses become "_", leading dots go (no hidden
    files, no ".."), Windows device names get a "_" prefix, and the name is cut to max_bytes
    of UTF-8 keeping the extension when it is short.
    """
    s = _PATH_CHARS.sub("_", clean_line(name))
    s = s.lstrip(". ").rstrip(". ")
    if not s or set(s) <= {"_"}:
        s = default
    stem, dot, ext = s.rpartition(".")
    if not dot:
        stem, ext = s, ""
    if stem.lower() in _WINDOWS_RESERVED:
        s = "_" + s
    if len(s.encode()) > max_bytes:
        ext_part = f".{ext}" if dot and 0 < len(ext.encode()) <= 16 else ""
        budget = max_bytes - len(ext_part.encode())
        base = s[: len(s) - len(ext_part)] if ext_part else s
        base = base.encode()[:budget].decode("utf-8", "ignore").rstrip(". ")
        s = (base or default) + ext_part
    return s
