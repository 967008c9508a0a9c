"""Server mode on PostgreSQL: a deployment made with the CLI (init, register, keygen, ingest,
token) served by ``imaging-biobank serve`` as a real process with a sized connection pool,
queried over HTTP; the same answers as the same query on an SQLite copy; a request that
finds no free connection, and a database that goes away, answered 503 with Retry-After as
problem details; the pool options reaching the engine."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import sqlalchemy.exc
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool
from typer.testing import CliRunner

from imaging_biobank.cli import app as cli
from imaging_biobank.db.engine import PoolSettings
from tests.conftest import EXAMPLE, STS_001
from tests.servers import PostgresServer, free_port

QUERY = "modality = CT and slice_thickness <= 5"  # STS_001: one CT of 3.27 mm
PROBLEM = "application/problem+json"


@dataclass
class Deployment:
    url: str  # the PostgreSQL database
    database: str  # its name on the server
    twin: str  # an SQLite database made by the same commands
    key_file: Path
    researcher: str
    data_manager: str
    base: str  # the served API
    server: PostgresServer

    def as_(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def admin_connection(self) -> psycopg.Connection[Any]:
        """A superuser connection to the server's maintenance database (not the pool's)."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.server.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
        )


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def build(url: str, key_file: Path) -> None:
    """What the deployment guide does: init (twice: the second changes nothing), register,
    ingest."""
    cli_ok("init", "--db", url)
    assert "nothing changed" in cli_ok("init", "--db", url)
    cli_ok("register", str(EXAMPLE), "--db", url)
    folders = [str(STS_001 / name) for name in ("CT", "MR_T1", "PET")]  # not its README
    cli_ok("ingest", *folders, "-c", "NB_IMAGING", "--key-file", str(key_file), "--db", url)


def wait_until_serving(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"serve exited: {process.stdout.read() if process.stdout else ''!r}"
            )
        try:
            requests.get(f"{base}/health", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("serve did not answer within 30 s")


@pytest.fixture(scope="module")
def deployment(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("server_mode")
    database = f"server_mode_{folder.name}".replace("-", "_")
    url = postgres.create_database(database)
    key_file = folder / "biobank.key"
    cli_ok("keygen", str(key_file))
    build(url, key_file)
    twin = f"sqlite:///{folder / 'twin.db'}"
    build(twin, key_file)  # the same key: the same donor pseudonyms
    researcher = cli_ok("token", "create", "rita", "--role", "researcher", "--db", url).strip()
    manager = cli_ok("token", "create", "dana", "--role", "data_manager", "--db", url).strip()
    port = free_port()
    # two connections: one request may hold its transaction and its token check at once
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "imaging_biobank", "serve", "--db", url),
            *("--key-file", str(key_file), "--port", str(port)),
            *("--pool-size", "2", "--max-overflow", "0", "--pool-timeout", "1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process)
        yield Deployment(url, database, twin, key_file, researcher, manager, base, postgres)
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_served_postgresql_biobank_answers_as_the_sqlite_one(deployment: Deployment) -> None:
    d = deployment
    health = requests.get(f"{d.base}/health", timeout=10).json()
    assert health["status"] == "ok" and health["schema_revision"] == health["schema_expected"]
    exact = requests.post(
        f"{d.base}/api/cohorts/count",
        json={"query": QUERY},
        headers=d.as_(d.data_manager),
        timeout=30,
    )
    assert exact.status_code == 200, exact.text
    on_sqlite = json.loads(
        cli_ok("query", QUERY, "--role", "data_manager", "--json", "--db", d.twin)
    )
    assert exact.json()["totals"] == on_sqlite["totals"]
    assert exact.json()["by_collection"] == on_sqlite["by_collection"]
    assert exact.json()["totals"]["donors"] == 1 and exact.json()["totals"]["series"] >= 1
    seen = requests.post(
        f"{d.base}/api/cohorts/count",
        json={"query": QUERY},
        headers=d.as_(d.researcher),
        timeout=30,
    ).json()
    assert seen["obfuscated"] and seen["totals"]["donors"] == 10  # 1 donor shows as 10
    listed = requests.post(
        f"{d.base}/api/cohorts/manifest",
        json={"query": QUERY},
        headers=d.as_(d.data_manager),
        timeout=30,
    ).json()
    twin_rows = json.loads(
        cli_ok("query", QUERY, "--manifest", "json", "--db", d.twin, "--role", "data_manager")
    )
    ignored = {"location"}  # the same files, read by two ingest runs
    assert [{k: v for k, v in r.items() if k not in ignored} for r in listed] == [
        {k: v for k, v in r.items() if k not in ignored} for r in twin_rows
    ]


def _waiting_on_locks(d: Deployment) -> int:
    with d.admin_connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [d.database],
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_request_finding_no_free_connection_gets_503_with_retry_after(
    deployment: Deployment,
) -> None:
    """Both pooled connections are taken by /health requests stuck behind a table lock the
    test holds; a third request waits --pool-timeout for a connection and gets 503."""
    d = deployment
    db = d.url.replace("postgresql+psycopg://", "postgresql://")
    answers: list[int] = []
    with psycopg.connect(db) as locker:
        locker.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        stuck = [
            threading.Thread(
                target=lambda: answers.append(
                    requests.get(f"{d.base}/health", timeout=60).status_code
                )
            )
            for _ in range(2)
        ]
        for thread in stuck:
            thread.start()
        deadline = time.monotonic() + 30
        while _waiting_on_locks(d) < 2:  # both pooled connections are in use
            assert time.monotonic() < deadline, "the /health requests never reached the lock"
            time.sleep(0.05)
        busy = requests.get(f"{d.base}/api/query/keys", headers=d.as_(d.researcher), timeout=30)
        locker.rollback()
    for thread in stuck:
        thread.join(timeout=60)
    assert busy.status_code == 503
    assert busy.headers["content-type"] == PROBLEM
    assert busy.headers["retry-after"] == "1"
    problem = busy.json()
    assert problem["status"] == 503 and problem["title"] == "Database busy"
    assert problem["type"].endswith("/database-busy")
    assert problem["instance"] == "/api/query/keys"
    assert answers == [200, 200]  # the held requests finish once the lock is gone
    again = requests.get(f"{d.base}/api/query/keys", headers=d.as_(d.researcher), timeout=30)
    assert again.status_code == 200


def test_a_database_that_goes_away_gets_503_and_the_server_recovers(
    deployment: Deployment,
) -> None:
    d = deployment
    with d.admin_connection() as admin:
        admin.execute(f'ALTER DATABASE "{d.database}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [d.database],
            )
            down = requests.get(
                f"{d.base}/api/collections", headers=d.as_(d.researcher), timeout=30
            )
            health = requests.get(f"{d.base}/health", timeout=30)
        finally:
            admin.execute(f'ALTER DATABASE "{d.database}" ALLOW_CONNECTIONS true')
    assert down.status_code == 503
    assert down.headers["content-type"] == PROBLEM
    assert down.headers["retry-after"] == "5"
    assert down.json()["title"] == "Database unavailable"
    assert down.json()["type"].endswith("/database-unavailable")
    assert "psycopg" not in down.text and d.database not in down.text  # no internals
    assert health.status_code == 503
    back = requests.get(f"{d.base}/api/collections", headers=d.as_(d.researcher), timeout=30)
    assert back.status_code == 200 and back.json()


def served_engine(monkeypatch: pytest.MonkeyPatch, *args: str) -> Engine:
    """The engine ``serve`` would run with these options (uvicorn is not started)."""
    import uvicorn

    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **_: apps.append(application))
    cli_ok("serve", *args)
    engine: Engine = apps[0].state.settings.engine
    assert isinstance(engine.pool, QueuePool)
    return engine


def test_the_pool_options_reach_the_engine(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = served_engine(
        monkeypatch,
        *("--db", deployment.url, "--pool-size", "1", "--max-overflow", "1"),
        *("--pool-timeout", "0.2"),
    )
    pool = engine.pool
    assert isinstance(pool, QueuePool) and pool.size() == 1 and pool.timeout() == 0.2
    first, second = engine.connect(), engine.connect()  # the pool and its one overflow
    try:
        with pytest.raises(sqlalchemy.exc.TimeoutError):
            engine.connect()
    finally:
        first.close()
        second.close()
        engine.dispose()
    defaults = served_engine(monkeypatch, "--db", deployment.url)
    assert isinstance(defaults.pool, QueuePool)
    assert defaults.pool.size() == PoolSettings().size == 10
    assert defaults.pool.timeout() == PoolSettings().timeout
    defaults.dispose()
    help_text = cli_ok("serve", "--help")
    for option in ("--pool-size", "--max-overflow", "--pool-timeout"):
        assert option in help_text


def test_database_errors_outside_the_routes_are_503_too(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit entry is written by a middleware after the route: a pool timeout there is
    still a 503 problem, not a 500."""
    import imaging_biobank.api.app as application
    from imaging_biobank.api.deps import ApiSettings

    engine = served_engine(monkeypatch, "--db", deployment.url)

    def no_connection(*_: Any, **__: Any) -> None:
        raise sqlalchemy.exc.TimeoutError("QueuePool limit reached")

    monkeypatch.setattr(application, "record", no_connection)
    client = TestClient(application.create_app(ApiSettings(engine)), raise_server_exceptions=False)
    answer = client.get("/api/query/keys", headers=deployment.as_(deployment.researcher))
    engine.dispose()
    assert answer.status_code == 503
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["type"].endswith("/database-busy")


def test_one_pooled_connection_serves_requests_one_after_another(deployment: Deployment) -> None:
    """A request takes one pooled connection at a time: its token is checked (and the
    connection given back) before its transaction's connection is taken. It used to hold the
    transaction while waiting for a second connection, so a pool of one answered every
    authenticated request 503 (and N requests at once deadlocked a pool of N)."""
    from fastapi.testclient import TestClient

    from imaging_biobank.api.app import create_app
    from imaging_biobank.api.deps import ApiSettings
    from imaging_biobank.db.engine import make_engine

    engine = make_engine(deployment.url, pool=PoolSettings(size=1, max_overflow=0, timeout=2))
    try:
        with TestClient(create_app(ApiSettings(engine))) as client:
            for _ in range(3):
                answer = client.post(
                    "/api/cohorts/count",
                    json={"query": QUERY},
                    headers=deployment.as_(deployment.data_manager),
                )
                assert answer.status_code == 200, answer.text
    finally:
        engine.dispose()
