"""Short renderings of times and durations for narrow columns; all from an injected 'now'."""

from __future__ import annotations

from datetime import datetime, tzinfo


def span(seconds: float) -> str:
    """A duration in its two largest units: 45s, 12m, 3h 5m, 2d 4h, 6w."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    if d < 14:
        return f"{d}d {h}h" if h else f"{d}d"
    return f"{d // 7}w"


def short_span(seconds: float) -> str:
    """One unit only, for list columns: 45s, 12m, 3h, 2d, 6w."""
    return span(seconds).split(" ")[0]


def until(when: datetime | None, now: datetime) -> tuple[str, bool]:
    """A deadline as 'in 3h' or '-2d' and whether it is overdue."""
    if when is None:
        return "", False
    delta = (when - now).total_seconds()
    if delta < 0:
        return f"-{short_span(delta)}", True
    return f"in {short_span(delta)}", False


def ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return ""
    return short_span((now - when).total_seconds())


def stamp(when: datetime | None, tz: tzinfo) -> str:
    """A full local time for the detail screen."""
    if when is None:
        return "-"
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")
