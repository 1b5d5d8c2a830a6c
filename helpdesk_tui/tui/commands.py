"""The command palette (ctrl+p): every key of the current screen as a "Category: verb" command.

Generated from the screen's active bindings, so the palette and `?` can never disagree with the
keys (posting's palette does the same from its bindings), plus one command per view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher

CATEGORIES = {
    "ticket": "Ticket",
    "list": "List",
    "app": "App",
    "detail": "Ticket",
    "compose": "Compose",
    "register": "Request",
    "alerts": "Alerts",
    "dashboard": "Dashboard",
}


class HelpdeskCommands(Provider):
    """Commands of the screen the palette was opened on."""

    def _commands(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        seen: set[str] = set()
        for active in self.screen.active_bindings.values():
            b = active.binding
            if not b.id or not b.description or b.id in seen or not active.enabled:
                continue
            seen.add(b.id)
            category = CATEGORIES.get(b.id.split(".")[0], "App")
            key = self.app.get_key_display(b)
            yield (
                f"{category}: {b.description.lower()}",
                partial(self.app.run_action, b.action, active.node),
                f"key {key}",
            )
        switch = getattr(self.screen, "switch_view", None)
        if switch is None:
            return
        for v in getattr(self.screen.query("#sidebar").first(), "specs", ()):
            how = f"g then {v.letter}" if v.letter else "from the sidebar"
            yield (f"View: {v.label.lower()}", partial(switch, v.id), how)

    async def discover(self) -> Hits:
        for title, command, help_text in self._commands():
            # A str prompt is parsed as markup; a saved search is named by the agent.
            yield DiscoveryHit(Content(title), command, text=title, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, _highlight(matcher, title), command, text=title, help=help_text)


def _highlight(matcher: Matcher, title: str) -> Content:
    """Matcher.highlight, but over plain text: it parses its candidate as markup, and a view
    title may be a saved search's name, which is the agent's own text."""
    content = Content(title)
    _score, offsets = matcher.fuzzy_search.match(matcher.query, title)
    for offset in offsets:
        if not title[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content
