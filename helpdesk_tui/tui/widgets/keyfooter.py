"""A Footer that rebuilds its keys only when the keys it would show changed.

Textual's Footer recomposes on every bindings signal (each focus change, each return to a
screen), building a FooterKey per key and applying CSS to each: measured at 100,000 tickets it
was a fifth of the CPU of opening a ticket and going back. Returning to the list shows the same
keys as before, so this footer keeps what it has.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


def shown_keys(screen: Screen[Any]) -> tuple[tuple[object, ...], ...]:
    """What a footer on `screen` would show: key, label, action, enabled and tooltip."""
    return tuple(
        (binding.key, binding.key_display, binding.description, binding.action, enabled, tooltip)
        for (_node, binding, enabled, tooltip) in screen.active_bindings.values()
        if binding.show
    )


class KeyFooter(Footer):
    """Footer, minus the rebuilds that would draw the same keys again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keys: tuple[tuple[object, ...], ...] | None = None

    def on_mount(self) -> None:
        super().on_mount()
        # Mounted after its screen's first frame, the footer has missed the bindings signal of
        # that screen's focus: it asks for its keys itself.
        self.call_after_refresh(self.bindings_changed, self.screen)

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if not (screen.app.app_focus and self.is_attached and screen is self.screen):
            super().bindings_changed(screen)  # Footer's own bookkeeping; it draws nothing now
            return
        keys = shown_keys(screen)
        if keys == self._keys and self._bindings_ready:
            return
        self._keys = keys
        super().bindings_changed(screen)
