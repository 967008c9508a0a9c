"""Shared fixtures: databases (SQLite files and a real PostgreSQL server), the CLI runner."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, inspect, select
from typer.testing import CliRunner

from imaging_biobank.db.engine import make_engine
from imaging_biobank.db.migrate import upgrade
from imaging_biobank.model.base import Base
from tests.servers import PostgresServer, ServerUnavailableError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "primage.yaml"
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_unavailable(reason: str) -> None:
    """Outside CI a missing server (or ../shared) skips; in CI it fails: they must run there."""
    if IN_CI:
        pytest.fail(f"{reason} (in CI the test set-up must provide it)")
    pytest.skip(f"{reason}; run `make test` (which installs it) or set CI=true to make this fail")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer.start()
    except ServerUnavailableError as error:
        server_unavailable(str(error))
    yield server
    server.stop()


_numbers = itertools.count()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres.create_database(f"test_{os.getpid()}_{next(_numbers)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'biobank.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on an SQLite file and on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'biobank.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An initialised database (schema and vocabularies) on each backend."""
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table: what "nothing changed" is checked against."""
    names = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
            if t.name in names
        }


def table_contents(
    engine: Engine, tables: list[str] | None = None
) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (or of ``tables``), sorted: for byte-for-byte comparisons."""
    with engine.connect() as conn:
        out = {}
        for t in Base.metadata.sorted_tables:
            if tables is not None and t.name not in tables:
                continue
            rows = conn.execute(select(t)).all()
            out[t.name] = sorted((tuple(r) for r in rows), key=repr)
        return out
