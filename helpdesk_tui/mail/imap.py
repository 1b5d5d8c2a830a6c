"""IMAP over imapclient: UIDs only, BODY.PEEK[], timeouts on every call, TLS verified by default."""

from __future__ import annotations

import contextlib
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# Mails a transaction: each batch pays a fixed cost (look-ups, commit, the search index's
# flush), and 500 halves it against 200 while a batch stays a few megabytes.
BATCH = 500
FIRST_BATCH = 100


class ImapError(Exception):
    """A failure talking to the server; the message names the server and what went wrong."""


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    security: str  # imaps | starttls | plain
    username: str
    password: str
    folder: str = "INBOX"
    cafile: str = ""
    timeout: float = 30.0


def _context(cafile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile or None)


class ImapMailbox:
    """One connection to one folder; the caller keeps UIDVALIDITY and the last UID."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self.uidvalidity: int = 0
        self.capabilities: frozenset[str] = frozenset()
        # One command at a time: the worker fetches ahead on a thread (mail/pipeline.py) while
        # it flags or moves what it has filed.
        self._lock = threading.RLock()

    @property
    def where(self) -> str:
        s = self.settings
        return f"{s.username}@{s.host}:{s.port}/{s.folder}"

    def connect(self) -> None:
        from imapclient import IMAPClient

        s = self.settings
        try:
            if s.security == "imaps":
                client = IMAPClient(
                    s.host, port=s.port, ssl=True, ssl_context=_context(s.cafile), timeout=s.timeout
                )
            else:
                client = IMAPClient(s.host, port=s.port, ssl=False, timeout=s.timeout)
                if s.security == "starttls":
                    client.starttls(_context(s.cafile))
                elif s.security != "plain":
                    raise ImapError(f"unknown security {s.security!r} for {self.where}")
            client.login(s.username, s.password)
            self.capabilities = frozenset(
                c.decode() if isinstance(c, bytes) else str(c) for c in client.capabilities()
            )
            info = client.select_folder(s.folder)
            self.uidvalidity = int(info[b"UIDVALIDITY"])
        except ImapError:
            raise
        except ssl.SSLError as exc:
            raise ImapError(f"TLS with {self.where} failed: {exc}") from exc
        except (TimeoutError, OSError) as exc:
            raise ImapError(f"cannot reach {self.where}: {exc}") from exc
        except Exception as exc:
            raise ImapError(f"{self.where}: {_describe(exc)}") from exc
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            raise ImapError(f"not connected to {self.where}")
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with self._lock:
                return fn(*args, **kwargs)
        except (TimeoutError, OSError) as exc:
            self._client = None
            raise ImapError(f"{what} on {self.where}: connection lost ({exc})") from exc
        except Exception as exc:
            raise ImapError(f"{what} on {self.where}: {_describe(exc)}") from exc

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above last_uid, ascending (`N:*` also answers the highest UID when none is new)."""
        # A NOOP first: a long-lived session sees mail delivered since only after a sync point.
        self._call("NOOP", self.client.noop)
        found = self._call("UID SEARCH", self.client.search, ["UID", f"{last_uid + 1}:*"])
        return sorted(int(u) for u in found if int(u) > last_uid)

    def all_uids(self) -> list[int]:
        return sorted(int(u) for u in self._call("UID SEARCH", self.client.search, ["ALL"]))

    def fetch(self, uids: Sequence[int]) -> dict[int, bytes]:
        """Raw messages by UID, without setting \\Seen."""
        if not uids:
            return {}
        imap = getattr(self.client, "_imap", None)
        if imap is not None:
            return dict(self._call("UID FETCH", _fetch_bodies, imap, uids))
        data = self._call("UID FETCH", self.client.fetch, list(uids), ["BODY.PEEK[]"])
        out: dict[int, bytes] = {}
        for uid, item in data.items():
            raw = item.get(b"BODY[]")
            if raw is not None:
                out[int(uid)] = bytes(raw)
        return out

    def fetch_batches(
        self, uids: Sequence[int], size: int = BATCH, first: int = FIRST_BATCH
    ) -> Iterator[dict[int, bytes]]:
        """A small first batch, so the intake starts while the next ones are on the wire."""
        start = min(first, size)
        if start:
            yield self.fetch(uids[:start])
        for i in range(start, len(uids), size):
            yield self.fetch(uids[i : i + size])

    def after_import(self, uids: Sequence[int], action: str) -> None:
        """Flag or move mail that is safely committed; `leave` does nothing."""
        if not uids or action == "leave":
            return
        if action == "flag":
            self._call("UID STORE", self.client.add_flags, list(uids), [b"\\Flagged"])
            return
        if action.startswith("move:"):
            target = action.split(":", 1)[1]
            if "MOVE" in self.capabilities:
                self._call("UID MOVE", self.client.move, list(uids), target)
            else:
                self._call("UID COPY", self.client.copy, list(uids), target)
                self._call("UID STORE", self.client.delete_messages, list(uids))
                if "UIDPLUS" in self.capabilities:
                    self._call("UID EXPUNGE", self.client.uid_expunge, list(uids))
                else:
                    self._call("EXPUNGE", self.client.expunge)
            return
        raise ImapError(f"unknown after_import action {action!r}")

    def ensure_folder(self, name: str) -> None:
        if not self._call("LIST", self.client.folder_exists, name):
            self._call("CREATE", self.client.create_folder, name)

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    def idle_wait(self, timeout: float, stop: Callable[[], bool] | None = None) -> bool:
        """Wait in IDLE up to `timeout` seconds; True when the server told of new mail.

        Checks `stop` every second so SIGTERM is answered promptly.
        """
        client = self.client
        self._call("IDLE", client.idle)
        deadline = time.monotonic() + timeout
        news = False
        try:
            while not news and time.monotonic() < deadline and not (stop and stop()):
                step = max(0.0, min(1.0, deadline - time.monotonic()))
                responses = self._call("IDLE", client.idle_check, timeout=step)
                news = any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)
        finally:
            try:
                client.idle_done()
            except Exception as exc:
                self._client = None
                raise ImapError(f"IDLE on {self.where}: {_describe(exc)}") from exc
        return news

    def noop(self) -> None:
        self._call("NOOP", self.client.noop)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):  # closing a broken link is best effort
            client.logout()


# The answer every server we know gives to UID FETCH (BODY.PEEK[]): "* 7 FETCH (UID 42 BODY[]
# {1234}" with the literal, then ")". imaplib hands it over as (head, literal) and b")".
_FETCH_HEAD = re.compile(rb"\d+ \(UID (\d+) BODY\[\] \{\d+\}")


def _sequence_set(uids: Sequence[int]) -> str:
    """Ascending runs as ranges: "1:500" instead of five hundred numbers."""
    ordered = sorted(set(uids))
    runs: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid != prev + 1:
            runs.append(f"{start}:{prev}" if prev > start else str(start))
            start = uid
        prev = uid
    runs.append(f"{start}:{prev}" if prev > start else str(start))
    return ",".join(runs)


def _fetch_bodies(imap: Any, uids: Sequence[int]) -> dict[int, bytes]:
    """UID FETCH through imaplib, reading the common answer without imapclient's general
    response parser (a sixth of the intake's fetch time); anything else is parsed by it."""
    from imapclient.response_parser import parse_fetch_response

    tag = imap._command("UID", "FETCH", _sequence_set(uids), "(BODY.PEEK[])")
    typ, data = imap._command_complete("FETCH", tag)
    if typ != "OK":
        raise ImapError(f"UID FETCH answered {typ}: {data!r}"[:300])
    typ, data = imap._untagged_response(typ, data, "FETCH")
    wanted = set(uids)
    out: dict[int, bytes] = {}
    for item in data:
        if item is None or item == b")":
            continue
        m = _FETCH_HEAD.fullmatch(item[0]) if isinstance(item, tuple) else None
        if m is None:
            out = {}
            break
        uid = int(m[1])
        if uid in wanted:
            out[uid] = bytes(item[1])
    else:
        return out
    # An answer in another shape (items in another order, unsolicited FETCH responses...).
    parsed = parse_fetch_response([d for d in data if d is not None], True, True)
    for uid, fields in parsed.items():
        raw = fields.get(b"BODY[]")
        if raw is not None and int(uid) in wanted:
            out[int(uid)] = bytes(raw)
    return out


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, bytes):
        text = exc.decode(errors="replace")
    return text or type(exc).__name__
