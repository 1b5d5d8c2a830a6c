"""The main screen: the views sidebar and the virtual ticket list, with tagging and batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static

from helpdesk_tui.tui.messages import Outcome, TaggedFound
from helpdesk_tui.tui.screens.base import TICKET_BINDINGS, TicketScreen
from helpdesk_tui.tui.text import line, plain_line
from helpdesk_tui.tui.widgets.sidebar import Sidebar
from helpdesk_tui.tui.widgets.statusbar import StatusBar
from helpdesk_tui.tui.widgets.ticket_list import TicketList

if TYPE_CHECKING:
    from helpdesk_tui.desk.search import SavedSearch
    from helpdesk_tui.desk.views import ViewSpec
    from helpdesk_tui.tui.live import LiveStatus


class MainScreen(TicketScreen):
    """Views and tickets; every action moves the cursor on to the next ticket."""

    help_title = "ticket list"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "Quit", id="app.quit"),
        Binding("g", "goto", "Go to view", id="list.goto"),
        Binding("N", "app.register_request", "New request", id="app.register"),
        Binding("space", "tag", "Tag", show=False, id="list.tag"),
        Binding("T", "tag_pattern", "Tag by search", show=False, id="list.tag_pattern"),
        Binding("semicolon", "batch", "Next action on tagged", show=False, id="list.batch"),
        Binding("escape", "untag_all", "Untag all", show=False, id="list.untag_all"),
        Binding("slash", "search", "Search", id="list.search"),
        Binding("S", "save_search", "Save search", show=False, id="list.save_search"),
        Binding("D", "app.dashboard", "Dashboard", show=False, id="app.dashboard"),
        *TICKET_BINDINGS,
    ]
    """List keys; the ticket actions come from TicketScreen."""

    def __init__(self) -> None:
        super().__init__()
        self.view = "mine"
        self._focus_after: int | None = None
        self._stale = False
        self._was_batch = False
        self.searches: list[SavedSearch] = []
        """The agent's saved searches (sidebar entries 1-9)."""
        self.search_text = ""
        """The last search typed after `/` (the sidebar's "Search" entry)."""

    def compose(self) -> ComposeResult:
        yield Static(Content("helpdesk"), id="topbar")
        with Horizontal(id="main"):
            yield Sidebar(id="sidebar")
            yield TicketList(id="tickets")
        yield StatusBar(id="statusbar")

    @property
    def tickets(self) -> TicketList:
        return self.query_one(TicketList)

    def on_mount(self) -> None:
        self.tickets.focus()
        # The footer rebuilds its keys at every focus and screen change during start-up and
        # costs about 0.25 s of the first frame: it arrives one frame later instead.
        self.call_after_refresh(self._after_first_frame)
        self.update_topbar()

    def _after_first_frame(self) -> None:
        from helpdesk_tui.tui.widgets.keyfooter import KeyFooter

        self.mount(KeyFooter())
        if self.helpdesk.views is None:
            self.helpdesk.open_desk()

    def desk_ready(self) -> None:
        self._set_views()
        self.tickets.load(self.view)
        self.update_topbar()
        self.helpdesk.load_saved_searches(self._searches_loaded)

    def on_screen_suspend(self) -> None:
        # A dialog's result arrives as an action of its own; only full screens make us stale.
        self._stale = not isinstance(self.app.screen, ModalScreen)

    def on_screen_resume(self) -> None:
        # Back from detail or compose: what we did there may have moved tickets between views.
        stale, self._stale = self._stale, False
        if stale and self.helpdesk.views is not None and self.tickets.loaded:
            self.run_worker(self._reload_if_changed, thread=True, group="resume-mark")

    def _reload_if_changed(self) -> None:
        """Reload only when something was added since the list was read: a ticket merely
        looked at leaves the list as it was, and a reload then only competes with the next key."""
        from helpdesk_tui.desk.changes import content_mark_or_none

        desk = self.helpdesk.desk
        loaded = self.tickets.loaded_mark
        if desk is not None and loaded is not None and content_mark_or_none(desk.store) == loaded:
            return
        self.app.call_from_thread(self._reload_here)

    def _reload_here(self) -> None:
        if self.helpdesk.views is None or not self.tickets.loaded:
            return
        current = self.tickets.current
        self.tickets.load(self.view, focus=current.number if current else None, keep_index=True)

    def live_refresh(self) -> None:
        """The store changed elsewhere: reload the page on screen; the cursor keeps its ticket."""
        lst = self.tickets
        if self.helpdesk.views is None or not lst.loaded or lst._loading or lst.error:
            return  # a view that cannot be read says so once, not at every change
        current = lst.current
        lst.load(self.view, focus=current.number if current else None, keep_index=True)

    def set_status(self, status: LiveStatus) -> None:
        for bar in self.query(StatusBar):  # absent while composing or tearing down
            bar.show(status, self.helpdesk.tz)

    def set_counts(self, counts: dict[str, int]) -> None:
        # Counts come from a worker and may land while the screen is still composing or
        # already being torn down; the next refresh brings them again.
        for sidebar in self.query(Sidebar):
            if counts is not sidebar.counts and counts == sidebar.counts:
                continue  # the same figures: redrawing seven prompts would change nothing
            sidebar.set_counts(counts)

    def update_topbar(self) -> None:
        app = self.helpdesk
        parts: list[Content | str] = [Content.styled("helpdesk", "bold")]
        if app.config is not None and app.desk is not None:
            parts += ["  ", line(app.config.desk.name), "  ", line(app.desk.actor or "?")]
        elif app.desk_error:
            parts += ["  ", line(app.desk_error, "$text-error")]
        else:
            parts += ["  opening the desk…"]
        specs = {v.id: v.label for v in self.query_one(Sidebar).specs}
        if self.view in specs:
            parts += ["  ·  ", Content.styled(specs[self.view], "$text-accent")]
        if app.tagged and not app.batch:
            parts += ["  ·  ", Content.styled(f"{len(app.tagged)} tagged", "$text-warning")]
        if app.batch:
            # All of them, in every view: tags outlive a change of view.
            everywhere = f"; next action applies to all {len(app.tagged)} tagged (esc: untag)"
            parts += ["  ", Content.styled(everywhere, "reverse")]
        self.query_one("#topbar", Static).update(Content.assemble(*parts))

    # ------------------------------------------------------------------ views

    def switch_view(self, view: str) -> None:
        self.view = view
        self.query_one(Sidebar).select_view(view)
        self.tickets.load(view)
        self.update_topbar()

    @on(OptionList.OptionSelected, "#sidebar")
    def _sidebar_choice(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and event.option.id != self.view:
            self.switch_view(event.option.id)
        self.tickets.focus()

    def action_goto(self) -> None:
        from helpdesk_tui.desk.views import ViewSpec
        from helpdesk_tui.tui.screens.dialogs import GotoDialog

        specs = self.query_one(Sidebar).specs
        if not specs:
            return

        def chosen(view: str | None) -> None:
            if view == "dashboard":
                self.helpdesk.action_dashboard()
            elif view is not None:
                self.switch_view(view)

        dashboard = ViewSpec("dashboard", "Dashboard", "d", "newest")
        self.app.push_screen(GotoDialog([*specs, dashboard]), chosen)

    # ------------------------------------------------------------------ search

    def _specs(self) -> list[ViewSpec]:
        """The fixed views, the saved searches (1-9), then the search typed last (s)."""
        from helpdesk_tui.desk.views import VIEWS, ViewSpec, search_view

        specs = list(VIEWS)
        ids = {v.id for v in specs}
        for saved in self.searches:
            view = search_view(saved.query)
            if view in ids:
                continue  # one entry per query (a store from before renames kept both)
            ids.add(view)
            # 1-9 for `g`; later ones are reached with the arrows, the mouse or the palette.
            letter = str(len(ids) - len(VIEWS)) if len(ids) - len(VIEWS) <= 9 else ""
            specs.append(ViewSpec(view, plain_line(saved.name), letter, "newest"))
        if self.search_text and search_view(self.search_text) not in ids:
            label = plain_line("Search: " + self.search_text)
            specs.append(ViewSpec(search_view(self.search_text), label, "s", "newest"))
        return specs

    def _set_views(self) -> None:
        specs = self._specs()
        shown = self.view if any(v.id == self.view for v in specs) else specs[0].id
        self.query_one(Sidebar).set_views(specs, shown)
        self.set_counts(self.query_one(Sidebar).counts)

    def _searches_loaded(self, searches: list[SavedSearch]) -> None:
        self.searches = searches
        self._set_views()
        self.update_topbar()

    def action_search(self) -> None:
        """`/`: type a query; the list shows its matches as the "Search" view."""
        from helpdesk_tui.tui.screens.dialogs import PromptDialog

        if self.helpdesk.views is None:
            self.helpdesk.say("the desk is still opening", severity="warning")
            return

        def chosen(text: str | None) -> None:
            if text:
                self.run_search(text)

        self.app.push_screen(
            PromptDialog("Search", 'words "a phrase" from: owner:me is:unread after:3d, or #123'),
            chosen,
        )

    def run_search(self, text: str) -> None:
        """Check the query (at once for syntax, in a worker for names), then show its matches."""
        from helpdesk_tui.desk.search import SearchError, parse_query
        from helpdesk_tui.desk.views import search_view

        number = text.strip().removeprefix("#")
        if number.isdigit():
            # `/ 1234` or `/ #1234` is the ticket itself, not a search for the word.
            self.helpdesk.open_ticket(int(number))
            return
        try:
            parse_query(text)
        except SearchError as exc:
            self.helpdesk.say(str(exc), severity="error")
            return

        def show(view: str) -> None:
            self.search_text = text
            self.view = view
            self._set_views()
            self.switch_view(view)

        self.helpdesk.check_search(search_view(text), show)

    def action_save_search(self) -> None:
        """`S`: keep the search on screen under a name, as a sidebar entry."""
        from helpdesk_tui.desk.views import SEARCH_PREFIX, is_search
        from helpdesk_tui.tui.screens.dialogs import PickDialog, PromptDialog

        if not is_search(self.view):
            self.helpdesk.say("no search on screen: `/` searches first", severity="warning")
            return
        query = self.view.removeprefix(SEARCH_PREFIX)
        saved = next((x for x in self.searches if x.query == query), None)
        if saved is None:
            self.app.push_screen(
                PromptDialog("Save this search as", query[:40]), self._save_as(query, None)
            )
            return
        # Already saved: one entry per query, so `S` renames or forgets it.
        self.app.push_screen(
            PickDialog(
                f"Saved search: {plain_line(saved.name)}",
                [("rename", Content("Rename…")), ("forget", Content("Forget this saved search"))],
            ),
            lambda choice: self._saved_choice(choice, saved),
        )

    def _saved_choice(self, choice: str | None, saved: SavedSearch) -> None:
        from helpdesk_tui.tui.screens.dialogs import PromptDialog

        if choice == "forget":
            self.helpdesk.save_search(saved.name, saved.query, self._searches_loaded, delete=True)
            self.helpdesk.say(f"forgot the saved search {saved.name}")
        elif choice == "rename":
            self.app.push_screen(
                PromptDialog(f"Rename {plain_line(saved.name)} to", value=saved.name),
                self._save_as(saved.query, saved.name),
            )

    def _save_as(self, query: str, old: str | None) -> Callable[[str | None], None]:
        def chosen(name: str | None) -> None:
            if not name or name == old:
                return

            def then(kept: list[SavedSearch]) -> None:
                if old is None:
                    self._searches_loaded(kept)
                else:  # saved under the new name first, so a failure loses nothing
                    self.helpdesk.save_search(old, query, self._searches_loaded, delete=True)

            self.helpdesk.save_search(name, query, then)

        return chosen

    @on(TicketList.Open)
    def _open(self, event: TicketList.Open) -> None:
        self.helpdesk.open_ticket(event.number)

    # ------------------------------------------------------------------ tags and batches

    def action_tag(self) -> None:
        ticket = self.tickets.current
        if ticket is None:
            return
        tagged = self.helpdesk.tagged
        tagged.symmetric_difference_update({ticket.number})
        if ticket.number in tagged:
            self.helpdesk.tag_versions[ticket.number] = ticket.version
        else:
            self.helpdesk.tag_versions.pop(ticket.number, None)
        self.tickets.tagged = tagged
        self.tickets.cursor += 1
        self.update_topbar()

    def action_tag_pattern(self) -> None:
        from helpdesk_tui.tui.screens.dialogs import PromptDialog

        def chosen(pattern: str | None) -> None:
            if pattern:
                self.helpdesk.find_tagged(self, self.view, pattern)

        self.app.push_screen(
            PromptDialog(
                "Tag the tickets of this view that match",
                placeholder="a search: printer from:acme.example is:unread",
            ),
            chosen,
        )

    def on_tagged_found(self, message: TaggedFound) -> None:
        self.helpdesk.tagged.update(message.numbers)
        self.helpdesk.tag_versions.update(message.versions)
        self.tickets.tagged = self.helpdesk.tagged
        self.tickets.refresh()
        self.helpdesk.say(f"tagged {len(message.numbers)} tickets matching {message.pattern}")
        self.update_topbar()

    def action_batch(self) -> None:
        if not self.helpdesk.tagged:
            self.helpdesk.say(
                "no tagged tickets: space tags one, T tags by search", severity="warning"
            )
            return
        self.helpdesk.batch = not self.helpdesk.batch
        self.update_topbar()

    def action_untag_all(self) -> None:
        """escape: drop every tag (tags outlive a change of view) and a pending `;`."""
        app = self.helpdesk
        if not app.tagged and not app.batch:
            return
        count = len(app.tagged)
        app.tagged.clear()
        app.tag_versions.clear()
        app.batch = False
        self.tickets.tagged = app.tagged
        self.tickets.refresh()
        self.update_topbar()
        if count:
            app.say(f"untagged {count} ticket{'s' if count != 1 else ''}")

    # ------------------------------------------------------------------ actions

    def action_undo(self) -> None:
        # Undo acts on what was done, not on the tagged tickets: the batch bookkeeping of
        # the last `;` must not untag the tickets the undo puts back.
        self._was_batch = False
        super().action_undo()

    def targets(self) -> list[int]:
        app = self.helpdesk
        self._was_batch = app.batch
        if app.batch:
            app.batch = False
            self.update_topbar()
            return sorted(app.tagged)
        ticket = self.tickets.current
        return [ticket.number] if ticket else []

    def version_of(self, number: int) -> int | None:
        # The row on screen (kept fresh by live reloads), else the version the ticket had when
        # it was tagged (its page may have left memory).
        ticket = self.tickets.loaded_row(number)
        if ticket is not None:
            return ticket.version
        return self.helpdesk.tag_versions.get(number)

    def before_action(self, numbers: list[int]) -> None:
        lst = self.tickets
        stay = self.helpdesk.config is not None and (
            self.helpdesk.config.desk.cursor_after_action == "stay"
        )
        if self._was_batch:
            self._focus_after = None
        elif stay:
            self._focus_after = numbers[0]
        else:
            self._focus_after = lst.number_at(lst.cursor + 1) or lst.number_at(lst.cursor - 1)

    def after_action(self, outcome: Outcome) -> None:
        if self._was_batch:
            # A batch consumed the tags it acted on.
            self.helpdesk.tagged.difference_update(outcome.done)
            for number in outcome.done:
                self.helpdesk.tag_versions.pop(number, None)
            self.tickets.tagged = self.helpdesk.tagged
        focus = self._focus_after if outcome.action != "undo" else None
        if outcome.action == "undo" and outcome.done:
            focus = outcome.done[0]
        self.tickets.load(self.view, focus=focus, keep_index=True)
        self.update_topbar()
