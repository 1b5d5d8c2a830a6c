"""A `[keymap]` value's keys, read alike by the settings check and by the app's first frame.

Its own module: the app reads the table before its first frame with tomllib alone, since the
config module costs that frame ~15 ms; config.py checks the same values in full later.
"""

from __future__ import annotations


def keys_of(value: object) -> list[str] | None:
    """ "x", "x,ctrl+x" or ["x", "ctrl+x"] as a list of keys; None if it is neither."""
    if isinstance(value, str):
        return [k.strip() for k in value.split(",")]
    if isinstance(value, list) and all(isinstance(k, str) for k in value):
        return [k.strip() for k in value]
    return None
