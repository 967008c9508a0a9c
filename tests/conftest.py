"""Shared fixtures: databases (SQLite files and a real PostgreSQL server), the CLI runner."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, inspect, select
from typer.testing import CliRunner

from imaging_biobank.db.engine import make_engine, session_factory
from imaging_biobank.db.migrate import upgrade
from imaging_biobank.model.base import Base
from tests.servers import OrthancServer, PostgresServer, ServerUnavailableError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "primage.yaml"
SHARED = ROOT.parent / "shared"
STS_001 = ROOT / "examples" / "data" / "sts_001"
NB_IMAGING = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_IMAGING"
DIPG_IMAGING = "bbmri-eric:ID:ES_PRIMAGE:collection:DIPG_IMAGING"
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


@pytest.fixture(scope="session")
def orthanc() -> Iterator[OrthancServer]:
    """A real Orthanc PACS on loopback (Debian package), empty at the start."""
    try:
        server = OrthancServer.start()
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
def registered(engine: Engine) -> Engine:
    """An initialised database holding the example biobank and its collections."""
    from imaging_biobank.register import register

    with session_factory(engine).begin() as session:
        register(session, EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    return engine


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    from imaging_biobank.deid.pseudonym import generate_key_file

    return generate_key_file(tmp_path / "biobank.key")


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


# natural keys: how a row is named independently of its database id
NATURAL_KEYS = {
    "imaging_instance": "sop_instance_uid",
    "imaging_series": "series_instance_uid",
    "imaging_study": "study_instance_uid",
    "sample_donor": "pseudonym",
    "modality_information": "fingerprint",
    "algorithm": "name",
    "collection": "identifier",
    "biobank": "identifier",
    "juristic_person": "name",
    "contact_information": "identifier",
    "vocabulary": "name",
}
SKIPPED_COLUMNS = {"id", "created_at", "updated_at"}
IMAGING_TABLES = [
    "sample_donor",
    "imaging_study",
    "imaging_series",
    "imaging_instance",
    "acquisition_parameters",
    "reconstruction_parameters",
    "modality_information",
    "algorithm",
    "image_collection_body_part_examined",
    "image_collection_dataset_type",
    "image_collection_modality_information",
    "collection",
]


def canonical(
    engine: Engine, tables: list[str] = IMAGING_TABLES, drop: tuple[str, ...] = ()
) -> dict[str, list[tuple[object, ...]]]:
    """Rows with ids and timestamps replaced by natural keys (UIDs, pseudonyms, codes), so
    two databases (or two sources) can be compared row for row."""
    from imaging_biobank.model.vocab import TERM_TABLES

    with engine.connect() as conn:
        vocabularies = dict(
            conn.execute(
                select(
                    Base.metadata.tables["vocabulary"].c.id,
                    Base.metadata.tables["vocabulary"].c.name,
                )
            ).all()
        )
        names: dict[str, dict[object, object]] = {}

        def name_of(table: str) -> dict[object, object]:
            if table not in names:
                t = Base.metadata.tables[table]
                if table in TERM_TABLES:
                    rows = conn.execute(select(t.c.id, t.c.vocabulary_id, t.c.code))
                    names[table] = {i: (vocabularies[v], c) for i, v, c in rows}
                elif table in ("image_collection", "sample_tissue_collection"):
                    c = Base.metadata.tables["collection"]
                    names[table] = dict(conn.execute(select(c.c.id, c.c.identifier)).all())
                elif table in ("acquisition_parameters", "reconstruction_parameters"):
                    names[table] = {}
                else:
                    key = NATURAL_KEYS[table]
                    names[table] = dict(conn.execute(select(t.c.id, t.c[key])).all())
            return names[table]

        out: dict[str, list[tuple[object, ...]]] = {}
        for table in tables:
            t = Base.metadata.tables[table]
            columns = [c for c in t.columns if c.name not in SKIPPED_COLUMNS and c.name not in drop]
            rows = []
            for row in conn.execute(select(*columns)):
                values = []
                for column, value in zip(columns, row, strict=True):
                    fk = next(iter(column.foreign_keys), None)
                    if fk is not None and value is not None:
                        value = name_of(fk.column.table.name).get(value, value)
                    values.append((column.name, value))
                rows.append(tuple(values))
            out[table] = sorted(rows, key=repr)
        return out


def synthetic_corpus(folder: Path, files: int, seed: int) -> Path:
    """``files`` new DICOM files cloned from real templates (benchmarks/corpus.py)."""
    import subprocess
    import sys

    command = [sys.executable, str(ROOT / "benchmarks" / "corpus.py"), str(files), str(folder)]
    subprocess.run([*command, "--seed", str(seed)], check=True, capture_output=True)
    return folder


def child_processes(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def still_running(pids: list[int], wait: float = 30) -> list[int]:
    """Those of ``pids`` still alive after up to ``wait`` seconds."""
    import time

    deadline = time.monotonic() + wait
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        time.sleep(0.1)
    return pids


@pytest.fixture(scope="session")
def full_biobank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a SQLite database holding what ``make demo`` builds (tests.biobanks), built
    once per test run; tests must only read it (copy it to change it)."""
    from tests.biobanks import full_biobank as build

    folder = tmp_path_factory.mktemp("full_biobank")
    engine, _ = build(f"sqlite:///{folder / 'biobank.db'}", folder)
    engine.dispose()
    yield f"sqlite:///{folder / 'biobank.db'}"


@pytest.fixture(scope="session")
def full_biobank_pg(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The same biobank as ``full_biobank`` on the test PostgreSQL server (read only)."""
    from tests.biobanks import full_biobank as build

    folder = tmp_path_factory.mktemp("full_biobank_pg")
    engine, _ = build(postgres.create_database(f"full_{os.getpid()}"), folder)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    yield url
