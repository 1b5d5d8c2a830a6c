"""Messages that carry worker results back to the event loop (workers never touch widgets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from helpdesk_tui.config import Config
    from helpdesk_tui.desk.records import AgentRecord, TicketDetail
    from helpdesk_tui.desk.service import Desk
    from helpdesk_tui.desk.views import Key, ListRow, TicketViews


class DeskOpened(Message):
    """The desk is open (config loaded, store migrated); the app can load data."""

    def __init__(self, desk: Desk, config: Config, views: TicketViews) -> None:
        super().__init__()
        self.desk = desk
        self.config = config
        self.views = views


class DeskFailed(Message):
    """The desk could not be opened; the message says why, in one line."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class AgentsLoaded(Message):
    def __init__(self, agents: list[AgentRecord]) -> None:
        super().__init__()
        self.agents = agents


class ViewLoaded(Message):
    """A view's size and page anchors; `index` is where the cursor should go, if known."""

    def __init__(
        self,
        view: str,
        generation: int,
        total: int,
        anchors: list[Key],
        index: int | None,
        page: int = 0,
        rows: list[ListRow] | None = None,
        error: str = "",
    ) -> None:
        super().__init__()
        self.page = page
        self.rows = rows
        self.error = error
        """Why the view could not be read (a saved search naming a category since renamed)."""
        self.view = view
        self.generation = generation
        self.total = total
        self.anchors = anchors
        self.index = index


class PageLoaded(Message):
    def __init__(self, view: str, generation: int, page: int, rows: list[ListRow]) -> None:
        super().__init__()
        self.view = view
        self.generation = generation
        self.page = page
        self.rows = rows


class CountsLoaded(Message):
    """Sidebar counts; a newer one replaces an unhandled older one (toolong's coalescing)."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__()
        self.counts = counts

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, CountsLoaded)


class DetailLoaded(Message):
    def __init__(self, detail: TicketDetail) -> None:
        super().__init__()
        self.detail = detail


class TaggedFound(Message):
    def __init__(self, versions: dict[int, int], pattern: str) -> None:
        super().__init__()
        self.versions = versions
        """Each matching ticket's version as found: a later batch on it expects that one."""
        self.numbers = list(versions)
        self.pattern = pattern


@dataclass(frozen=True)
class Conflicted:
    """A ticket the action left alone because someone else changed it since the screen read it."""

    number: int
    message: str  # the desk's words: who changed what
    current_version: int


@dataclass
class Outcome:
    """What an action did: the tickets it changed and what the desk returned for each."""

    action: str
    done: list[int] = field(default_factory=list)
    results: dict[int, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    conflicts: list[Conflicted] = field(default_factory=list)
    call: Any = None  # the desk call itself, so a conflict can be re-applied


class ActionDone(Message):
    """An action finished (possibly in part); screens reload what they show."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self.outcome = outcome


class Registered(Message):
    """A phone request was saved as ticket `number`."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number
