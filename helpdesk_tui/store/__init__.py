"""Persistence only: tables, the engine with its pragmas, migrations and read queries."""

from helpdesk_tui.store.engine import Store, StoreError, open_store

__all__ = ["Store", "StoreError", "open_store"]
