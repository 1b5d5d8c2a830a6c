"""The conversation widget: wrapped once per width, the first screenful before the rest."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.content import Content

from helpdesk_tui.tui.widgets.conversation import Block, Conversation


class OneConversation(App[None]):
    def compose(self) -> ComposeResult:
        yield Conversation(id="conversation")


def long_thread(messages: int) -> list[Block]:
    body = "\n".join(
        f"line {n} of a long mail, long enough to wrap twice at forty " * 2 for n in range(20)
    )
    blocks = [Block("header", Content("#7 A long thread"))]
    blocks += [Block("customer", Content(f"mail {i}\n{body}")) for i in range(messages)]
    blocks.append(Block("history", Content("History\nlast line")))
    return blocks


async def test_a_long_thread_wraps_its_top_first_and_the_rest_after_the_frame() -> None:
    app = OneConversation()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(Conversation)
        view.set_blocks(long_thread(40), keep_scroll=False)
        assert view._done < len(view.blocks)  # only what the first frame shows
        assert view.virtual_size.height > 40 * 20  # an estimate until then
        await pilot.pause()
        await pilot.pause()
        assert view._done == len(view.blocks)
        assert view.virtual_size.height == len(view._lines)
        view.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        drawn = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert "last line" in drawn


async def test_scrolling_past_the_wrapped_part_wraps_the_rest_at_once() -> None:
    app = OneConversation()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(Conversation)
        view.set_blocks(long_thread(40), keep_scroll=False)
        view.render_line(view.virtual_size.height - 1)  # as a frame scrolled to the end would
        assert view._done == len(view.blocks)
        await pilot.pause()


async def test_a_narrower_terminal_wraps_again_and_keeps_every_line() -> None:
    app = OneConversation()
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(Conversation)
        view.set_blocks(long_thread(2), keep_scroll=False)
        await pilot.pause()
        wide = len(view._lines)
        await pilot.resize_terminal(50, 20)
        await pilot.pause()
        await pilot.pause()
        assert len(view._lines) > wide
        assert all(line.cell_length == view._width for line in view._lines)
        assert "mail 1" in view.plain_text("customer")
