"""Our own Message-IDs: they encode ticket and message and carry a keyed hash.

A reply naming one of our Message-IDs is threaded onto that ticket without further checks, so
the ID must not be forgeable (FreeScout's CVE-2026-47123 accepted any well-formed one).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

_PATTERN = re.compile(r"<?hd\.(\d+)\.(\d+)\.([0-9a-z]{8})\.([0-9a-f]{20})@([^>\s]+)>?", re.I)


def _mac(ticket: int, message: int, nonce: str, secret: bytes) -> str:
    data = f"{ticket}.{message}.{nonce}".encode()
    return hmac.new(secret, data, hashlib.sha256).hexdigest()[:20]


def make_message_id(ticket: int, message: int, secret: bytes, domain: str) -> str:
    """`<hd.TICKET.MESSAGE.NONCE.MAC@domain>`; the nonce keeps resends of a message distinct."""
    nonce = secrets.token_hex(4)
    return f"<hd.{ticket}.{message}.{nonce}.{_mac(ticket, message, nonce, secret)}@{domain}>"


def parse_message_id(value: str, secret: bytes) -> tuple[int, int] | None:
    """(ticket, message) if value is one of ours with a valid MAC; None for anything else."""
    m = _PATTERN.fullmatch(value.strip())
    if m is None:
        return None
    ticket, message, nonce, mac = int(m[1]), int(m[2]), m[3].lower(), m[4].lower()
    if not hmac.compare_digest(mac, _mac(ticket, message, nonce, secret)):
        return None
    return ticket, message


def looks_like_ours(value: str) -> bool:
    """Shaped like one of our IDs (forged or not): used to log refused forgeries."""
    return _PATTERN.fullmatch(value.strip()) is not None


def new_secret() -> str:
    return secrets.token_hex(32)
