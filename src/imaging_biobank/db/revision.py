"""Which schema revision a database is at, without loading Alembic (fast start-up)."""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

# The newest migration in db/migrations/versions; a test keeps it equal to Alembic's head.
HEAD_REVISION = "0010"


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in ``alembic_version``; None for an uninitialised database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
