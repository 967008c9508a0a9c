"""Opening a database by URL: SQLite by default, PostgreSQL for servers."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class PoolSettings:
    """The connections a long-running process (``serve``) keeps to its database: SQLAlchemy's
    QueuePool keeps ``size`` open, opens up to ``max_overflow`` more under load (closed when
    returned), and a request waits at most ``timeout`` seconds for one before
    ``sqlalchemy.exc.TimeoutError`` (the API answers 503).

    The defaults: 30 connections at most per process, a third of a PostgreSQL server's
    default ``max_connections`` (100, 3 of them kept for superusers), so ingest runs, a
    second server process and psql still get theirs. FastAPI runs sync routes in a pool of
    40 threads, each request holding one connection at a time: a burst beyond what 30
    connections serve waits in the pool (the database server would not answer sooner: it
    has far fewer cores than that) for up to 10 s, well within a reverse proxy's usual 60 s
    read timeout."""

    size: int = 10
    max_overflow: int = 20
    timeout: float = 10.0

    def engine_options(self) -> dict[str, Any]:
        """The keyword arguments of ``create_engine`` that set them."""
        return {
            "pool_size": self.size,
            "max_overflow": self.max_overflow,
            "pool_timeout": self.timeout,
        }


def make_engine(url: str | URL, *, pool: PoolSettings | None = None, **kwargs: Any) -> Engine:
    """An engine with foreign keys enforced on every backend; with ``pool``, its connection
    pool sized so (in-memory SQLite has one connection per thread and ignores it)."""
    parsed = normalise_url(url)
    in_memory = parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
    if pool is not None and not in_memory:
        kwargs = {**pool.engine_options(), **kwargs}
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if not in_memory:
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
