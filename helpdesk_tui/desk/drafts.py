"""Drafts that survive restarting the app: one JSON file per agent under the data folder.

A file, not a table: a draft is one agent's unfinished text on one machine, and writing it on
every pause in typing must not contend with the shared store. The file holds the drafts of
each store by its URL (one agent may open a demo store and the real one). Writes go to a
temporary file in the same folder and are renamed over the old one, so a crash leaves either
the old drafts or the new ones, never half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpdesk_tui import paths


@dataclass
class DraftData:
    """What one draft holds; the app keeps these per (ticket, kind)."""

    body: str = ""
    to: str = ""
    agent: str = ""
    attachments: list[int] = field(default_factory=list)
    template: str = ""

    @property
    def empty(self) -> bool:
        return not (self.body.strip() or self.to.strip() or self.attachments)


DraftKey = tuple[int, str]


def drafts_file(login: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in login) or "_"
    return paths.data_dir() / "drafts" / f"{safe}.json"


def _from_json(value: Any) -> DraftData | None:
    if not isinstance(value, dict):
        return None
    atts = value.get("attachments", [])
    return DraftData(
        body=str(value.get("body", "")),
        to=str(value.get("to", "")),
        agent=str(value.get("agent", "")),
        attachments=[int(a) for a in atts if isinstance(a, int)] if isinstance(atts, list) else [],
        template=str(value.get("template", "")),
    )


class DraftFile:
    """Load and save one agent's drafts for one store; safe to call from worker threads."""

    def __init__(self, path: Path, store_url: str) -> None:
        self.path = path
        self.store_url = store_url
        self._lock = threading.Lock()
        self._written = -1

    def _read_all(self) -> dict[str, Any]:
        import json  # here: the app's first frame does without it

        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # no file yet, or a damaged one: start afresh rather than fail
        return data if isinstance(data, dict) else {}

    def load(self) -> dict[DraftKey, DraftData]:
        out: dict[DraftKey, DraftData] = {}
        stored = self._read_all().get(self.store_url, {})
        if not isinstance(stored, dict):
            return out
        for key, value in stored.items():
            number, _, kind = str(key).partition(":")
            draft = _from_json(value)
            if number.isdigit() and kind and draft is not None and not draft.empty:
                out[(int(number), kind)] = draft
        return out

    def save(self, drafts: Mapping[DraftKey, DraftData], generation: int = 0) -> bool:
        """Write the drafts (empty ones dropped); a save older than the last one is skipped."""
        snapshot = {
            f"{number}:{kind}": {
                "body": d.body,
                "to": d.to,
                "agent": d.agent,
                "attachments": list(d.attachments),
                "template": d.template,
            }
            for (number, kind), d in drafts.items()
            if not d.empty
        }
        with self._lock:
            if generation < self._written:
                return False
            data = self._read_all()
            if snapshot:
                data[self.store_url] = snapshot
            else:
                data.pop(self.store_url, None)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            import json

            fd, tmp = tempfile.mkstemp(prefix=".drafts-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, ensure_ascii=False, indent=1)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o600)  # drafts quote customers: only the agent reads them
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self._written = generation
            return True
