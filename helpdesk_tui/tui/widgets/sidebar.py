"""The views sidebar: one line per view with its letter and a live count."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from helpdesk_tui.desk.views import ViewSpec

WIDTH = 24


class Sidebar(OptionList):
    """Views; choosing one switches the list (so do `g` and the view's letter).

    The views arrive with the desk (desk/views.py imports SQLAlchemy, which the first frame
    must not wait for), so the sidebar starts empty.
    """

    DEFAULT_CSS = """
    Sidebar { width: 24; border: none; padding: 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.specs: Sequence[ViewSpec] = ()
        self.counts: dict[str, int] = {}

    def set_views(self, specs: Sequence[ViewSpec], current: str) -> None:
        # OptionList refuses two options with one id, and a refused list left the sidebar
        # empty and the next start unable to select its view: keep the first of each.
        unique: dict[str, ViewSpec] = {}
        for v in specs:
            unique.setdefault(v.id, v)
        self.specs = specs = list(unique.values())
        self.set_options([Option(self._prompt(v), id=v.id) for v in specs])
        self.select_view(current)

    def _prompt(self, v: ViewSpec) -> Content:
        number = str(self.counts[v.id]) if v.id in self.counts else ""
        label, letter = v.label, v.letter or " "  # a view past the ninth search has no letter
        pad = WIDTH - 4 - cell_len(letter) - 1 - cell_len(label) - len(number)
        if pad < 1:
            label = label[: max(len(label) + pad - 2, 3)] + "…"
            pad = 1
        return Content.assemble(
            (letter, "$text-accent bold"), " ", label, " " * pad, (number, "$text-muted")
        )

    def set_counts(self, counts: dict[str, int]) -> None:
        self.counts = counts
        for v in self.specs:
            self.replace_option_prompt(v.id, self._prompt(v))

    def select_view(self, view: str) -> None:
        with contextlib.suppress(LookupError):
            self.highlighted = self.get_option_index(view)
