"""Engine, sessions and schema migrations (Alembic) for SQLite and PostgreSQL."""
