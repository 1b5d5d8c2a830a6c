"""Alembic environment: runs on the store's own engine so the pragmas apply."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlmodel import SQLModel

from helpdesk_tui.store import models  # noqa: F401 - registers the tables

config = context.config
target_metadata = SQLModel.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave the search index alone: FTS5 tables and their shadows are made by SQL, not models."""
    return not (type_ == "table" and (name or "").startswith("search_"))


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Two processes opening a new database at once: the second waits here, then
                # finds the schema at head and has nothing to do.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242, 1)")
            context.run_migrations()
        connection.commit()


run_migrations_online()
