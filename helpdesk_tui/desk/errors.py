"""Errors the desk raises; each message is meant to be shown to the agent as it is."""

from __future__ import annotations


class DeskError(Exception):
    """An action was refused; str(exc) says why in one line."""


class NotFound(DeskError):
    """An unknown ticket, agent, customer, priority, category or status."""


class InvalidAction(DeskError):
    """The action makes no sense for the ticket as it is now."""


class UnknownAgent(DeskError):
    """The acting login is not an agent of this desk."""


class Conflict(DeskError):
    """Someone else changed the ticket since the caller read it (optimistic locking)."""

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version
