"""Opening a database by URL: SQLite by default, PostgreSQL for servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str | URL) -> URL:
    """Accept the URLs users write: ``postgresql://`` means psycopg 3 here."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def display_url(url: str | URL) -> str:
    """The URL with any password hidden, for messages and reports."""
    return normalise_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine with foreign keys enforced on every backend."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if parsed.database not in (None, "", ":memory:"):
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode = WAL")
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if parsed.get_backend_name() == "postgresql":
        # JIT compilation costs tens of milliseconds on the cohort queries' scans of ~10^5
        # rows and pays off only on far longer analytic queries
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args.setdefault("options", "-c jit=off")
    return create_engine(parsed, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``engine`` (the ORM is imported here, not at start-up)."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)
