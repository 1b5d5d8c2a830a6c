"""helpdesk-tui: a keyboard-driven help desk for the terminal (importing this loads no UI)."""

__version__ = "0.1.0"
