"""Untrusted text -> inert Content: the one door every subject, name, body and file name passes.

Textual forwards ESC, OSC and C1 sequences in text straight to the terminal, and parses markup
in any str given to Label, Static, DataTable cells and notify (`[@click=app.quit]` runs an
action; a stray `[/]` raises and kills the app). So text from outside is cleaned with
mail/clean.py and handed to widgets as a `Content` object, which is never parsed as markup.
"""

from __future__ import annotations

from textual.content import Content

from helpdesk_tui.mail.clean import clean_line, clean_text

__all__ = ["line", "plain", "plain_line", "text"]


def plain(value: object) -> str:
    """Multi-line text, cleaned, tabs expanded (a TAB in a cell would move the terminal cursor)."""
    return clean_text(str(value)).expandtabs(4)


def plain_line(value: object) -> str:
    """One line, cleaned; for the list's segments and for notify(markup=False)."""
    return clean_line(str(value))


def text(value: object, style: str = "") -> Content:
    """Multi-line untrusted text as Content (literal: markup in it stays characters)."""
    return Content.styled(plain(value), style) if style else Content(plain(value))


def line(value: object, style: str = "") -> Content:
    """One line of untrusted text as Content."""
    return Content.styled(plain_line(value), style) if style else Content(plain_line(value))
