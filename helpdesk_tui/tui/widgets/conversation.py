"""A ticket's conversation as one line-API widget: header, messages and history as blocks.

The detail screen used to mount a Static per message in a VerticalScroll. Every open then
composed, styled and laid out a dozen widgets, wrapping every message to learn its height,
and every return to the list pruned them again (which made Textual lay the list out anew
under the next key). Here the blocks are wrapped once per width into strips, the scroll
height is their count, and a frame renders only the lines on screen. Each kind of message
keeps its colour bar and tint, from component classes a theme can restyle.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.content import Content
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual.visual import Visual

BAR = "█"  # as Textual draws a thick left border


class Block(NamedTuple):
    """One part of the conversation: `kind` picks its look (a component class)."""

    kind: str
    """header, history, or a message kind's component (customer, reply, note, ...)."""
    content: Content
    tags: frozenset[str] = frozenset()
    """Extra facts for tests and screen readers of the future: internal, failed."""


class Conversation(ScrollView, can_focus=True):
    """The blocks of one ticket, rendered only where the screen shows them."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "conversation--header",
        "conversation--history",
        "conversation--rule",
        "conversation--customer",
        "conversation--reply",
        "conversation--note",
        "conversation--ask",
        "conversation--forward",
        "conversation--external",
        "conversation--failed",
    }

    # Each message component's `color` is its bar, its `background` the block's tint.
    DEFAULT_CSS: ClassVar[str] = """
    Conversation {
        height: 1fr; padding: 0 1; background: $background;
        scrollbar-gutter: stable;  /* the width the blocks wrap to stays put */
    }
    Conversation > .conversation--header { background: $panel; }
    Conversation > .conversation--history { color: $text-muted; }
    Conversation > .conversation--rule { color: $panel-lighten-1; }
    Conversation > .conversation--customer { color: $accent; background: $surface; }
    Conversation > .conversation--reply { color: $success; background: $surface; }
    Conversation > .conversation--note { color: $warning; background: $warning 8%; }
    Conversation > .conversation--ask { color: $secondary; background: $secondary 10%; }
    Conversation > .conversation--forward { color: $primary; background: $primary 8%; }
    Conversation > .conversation--external { color: $error; background: $error 6%; }
    Conversation > .conversation--failed { color: $error; background: $error 12%; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.blocks: list[Block] = []
        self._lines: list[Strip] = []
        self._width = -1
        self._base: Style | None = None
        # (kind, content) -> its strips at self._width: a header or history change, or a
        # live re-render, wraps only the blocks that changed.
        self._wrapped: dict[tuple[str, Content], list[Strip]] = {}
        self._wrapped_width = -1
        self._done = 0
        """Blocks wrapped into _lines so far (the rest wait for the first frame)."""

    # ------------------------------------------------------------------ content

    def set_blocks(self, blocks: list[Block], *, keep_scroll: bool = True) -> None:
        """Show `blocks`; a live re-render keeps the reader where they were."""
        self.blocks = blocks
        self._width = -1
        if not keep_scroll:
            self.scroll_to(y=0, animate=False, immediate=True)
        self._build()
        self.refresh()

    def replace_block(self, index: int, block: Block) -> None:
        """Change one block (the header, the history) without a new ticket's reset."""
        if 0 <= index < len(self.blocks):
            self.blocks[index] = block
            self._width = -1
            self._build()
            self.refresh()

    def plain_text(self, *kinds: str) -> str:
        """The text of the blocks of `kinds` (all when none): what a reader sees, unstyled."""
        return "\n".join(b.content.plain for b in self.blocks if not kinds or b.kind in kinds)

    def message_blocks(self) -> list[Block]:
        return [b for b in self.blocks if b.kind not in ("header", "history")]

    # ------------------------------------------------------------------ layout

    def on_resize(self) -> None:
        self._build()

    def notify_style_update(self) -> None:
        self._base = None
        self._width = -1
        self._wrapped.clear()
        super().notify_style_update()

    def _content_width(self) -> int:
        width = self.scrollable_content_region.width
        if width <= 0:
            # Not laid out yet: what the screen's width will leave (padding, scrollbar gutter).
            width = max(self.app.size.width - 2 - self.styles.scrollbar_size_vertical, 20)
        return width

    def _build(self) -> None:
        """Wrap the blocks the screen shows now; the rest follow after the frame.

        A long thread (dozens of mails, some of them long) takes tens of milliseconds to
        wrap: the agent sees its top at once, and the scroll height is exact a frame later.
        """
        width = self._content_width()
        if width == self._width:
            return
        if width != self._wrapped_width:
            self._wrapped.clear()
        self._width = self._wrapped_width = width
        self._lines = []
        self._done = 0
        self._wrap_blocks(round(self.scroll_y) + max(self.size.height, self.app.size.height) + 1)
        if self._done < len(self.blocks):
            rest = sum(_estimate(b, width) for b in self.blocks[self._done :])
            self.virtual_size = Size(width, len(self._lines) + rest)
            self.call_after_refresh(self._finish, width)
        else:
            self.virtual_size = Size(width, len(self._lines))

    def _finish(self, width: int) -> None:
        if width == self._width and self._done < len(self.blocks):
            self._wrap_blocks(None)
            self.virtual_size = Size(width, len(self._lines))
            self.refresh()

    def _wrap_blocks(self, until: int | None) -> None:
        """Wrap blocks from the first not yet wrapped, until `until` lines exist (or all)."""
        width, base = self._width, self._base_style()
        gap = Strip.blank(width, base)
        wrapped, lines = self._wrapped, self._lines
        while self._done < len(self.blocks) and (until is None or len(lines) < until):
            block = self.blocks[self._done]
            key = (block.kind, block.content)
            strips = wrapped.get(key)
            if strips is None:
                if block.kind == "header":
                    strips = self._panel(block.content, width, base)
                elif block.kind == "history":
                    strips = self._history(block.content, width, base)
                else:
                    strips = self._message(block, width, base)
                wrapped[key] = strips
            lines.extend(strips)
            lines.append(gap)
            self._done += 1
        if len(wrapped) > 4 * len(self.blocks) + 16:  # drop what earlier tickets left
            keep = {(b.kind, b.content) for b in self.blocks}
            for key in [k for k in wrapped if k not in keep]:
                del wrapped[key]

    def _base_style(self) -> Style:
        if self._base is None:
            self._base = self.rich_style
        return self._base

    def _component(self, name: str, base: Style) -> Style:
        style = self.get_component_rich_style(f"conversation--{name}", default=Style())
        return base + style

    def _wrap(self, content: Content, width: int, style: Style) -> list[Strip]:
        visual = VisualStyle.from_rich_style(style)
        return Visual.to_strips(self, content, max(width, 1), None, visual, pad=True)

    def _panel(self, content: Content, width: int, base: Style) -> list[Strip]:
        """The header: a panel with a line of padding around it."""
        style = self._component("header", base)
        fill = Style(bgcolor=style.bgcolor)
        blank = Strip.blank(width, fill)
        pad = Segment(" ", fill)
        body = [
            Strip.join([Strip([pad]), s, Strip([pad])]).adjust_cell_length(width, fill)
            for s in self._wrap(content, width - 2, style)
        ]
        return [blank, *body, blank]

    def _message(self, block: Block, width: int, base: Style) -> list[Strip]:
        """A message: its kind's colour bar down the left, its tint behind the text."""
        style = self._component(block.kind, base)
        fill = Style(bgcolor=style.bgcolor)
        bar = Segment(BAR, Style(color=style.color, bgcolor=base.bgcolor))
        pad = Segment(" ", fill)
        text = style + Style(color=base.color)
        return [
            Strip.join([Strip([bar, pad]), s, Strip([pad])]).adjust_cell_length(width, fill)
            for s in self._wrap(block.content, width - 3, text)
        ]

    def _history(self, content: Content, width: int, base: Style) -> list[Strip]:
        rule = self._component("rule", base)
        style = self._component("history", base)
        pad = Segment(" ", base)
        body = [
            Strip.join([Strip([pad]), s, Strip([pad])]).adjust_cell_length(width, base)
            for s in self._wrap(content, width - 2, style)
        ]
        return [Strip([Segment("─" * width, rule)]), *body]

    # ------------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        index = round(self.scroll_offset.y) + y
        base = self._base_style()
        if index >= len(self._lines) and self._done < len(self.blocks):
            self._finish(self._width)  # scrolled past the part wrapped for the first frame
        if 0 <= index < len(self._lines):
            return self._lines[index].crop_extend(0, self._width, base)
        return Strip.blank(self._width, base)


def _estimate(block: Block, width: int) -> int:
    """About how many lines a block will wrap to: the scroll height until it is wrapped."""
    inner = max(width - 3, 1)
    return 1 + sum(1 + len(ln) // inner for ln in block.content.plain.split("\n"))
