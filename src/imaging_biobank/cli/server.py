"""``imaging-biobank serve`` (the REST API and the web catalogue), ``token`` (who may use
them) and ``audit`` (what they did)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from imaging_biobank.cli import app
from imaging_biobank.cli.common import DbOption, JsonOption, console, fail, open_database, plain
from imaging_biobank.cli.runs import KeyFileOption

token_app = typer.Typer(help="API tokens: make (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    key_file: KeyFileOption = None,
    step: Annotated[
        int,
        typer.Option(
            "--obfuscation-step",
            min=2,
            help="Researchers' counts: 1 to STEP-1 show as STEP, others rounded to STEP.",
        ),
    ] = 10,
    public_landing_pages: Annotated[
        bool,
        typer.Option(
            "--public-landing-pages",
            help="Let visitors without a token (and harvesters) see collection pages and"
            " their schema.org JSON-LD, as researchers see them; audited as anonymous.",
        ),
    ] = False,
    sparql_timeout: Annotated[
        float | None,
        typer.Option(
            "--sparql-timeout",
            min=0.1,
            help="Seconds one SPARQL query may run (/api/sparql, in a child process on"
            " Linux). Default: 10.",
            show_default=False,
        ),
    ] = None,
    pool_size: Annotated[
        int | None,
        typer.Option(
            "--pool-size",
            min=1,
            help="Database connections kept open. Default: 10. With --max-overflow at most"
            " SIZE+OVERFLOW per server process: keep the sum over all processes (and ingest"
            " runs) below PostgreSQL's max_connections (100 by default).",
            show_default=False,
        ),
    ] = None,
    max_overflow: Annotated[
        int | None,
        typer.Option(
            "--max-overflow",
            min=0,
            help="Extra connections opened under load beyond --pool-size, closed when"
            " returned. Default: 20.",
            show_default=False,
        ),
    ] = None,
    pool_timeout: Annotated[
        float | None,
        typer.Option(
            "--pool-timeout",
            min=0,
            help="Seconds a request waits for a free connection before it gets 503 with"
            " Retry-After. Default: 10.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the web catalogue on HOST:PORT.

    Every page and route but /health needs a token: make one with [bold]imaging-biobank
    token create NAME --role researcher[/] and sign in on the page with it. With
    --key-file, data managers can enter e-form records (their ids are pseudonymised).

    Connections: a pool of --pool-size connections, up to --max-overflow more under load
    (defaults 10 + 20: a third of PostgreSQL's default 100 connections, for FastAPI's 40
    worker threads); a request that finds none free
    within --pool-timeout seconds gets 503 with Retry-After, as does every request while
    the database is down. Keep it on 127.0.0.1 behind a reverse proxy with TLS
    (docs/postgresql.md).

    Example: [bold]imaging-biobank serve --db postgresql://biobank_web@db/biobank
    --key-file /etc/imaging-biobank/biobank.key --pool-size 10 --max-overflow 20[/]"""
    import uvicorn

    from imaging_biobank.api.app import create_app
    from imaging_biobank.api.deps import ApiSettings
    from imaging_biobank.config import Settings
    from imaging_biobank.db.engine import PoolSettings

    defaults = PoolSettings()
    pool = PoolSettings(
        defaults.size if pool_size is None else pool_size,
        defaults.max_overflow if max_overflow is None else max_overflow,
        defaults.timeout if pool_timeout is None else pool_timeout,
    )
    engine = open_database(db, pool)
    configured = key_file if key_file is not None else Settings.from_env().key_file
    key = Path(configured) if configured is not None else None
    if key is not None and not key.exists():
        fail(f"no key file at {key}")
    application = create_app(
        ApiSettings(
            engine,
            obfuscation_step=step,
            key_file=key,
            public_landing_pages=public_landing_pages,
            sparql_timeout=sparql_timeout,
        )
    )
    console.print(f"imaging-biobank on http://{host}:{port}/ (API docs: /docs); Ctrl-C stops")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who holds the token (unique).")],
    role: Annotated[
        str, typer.Option("--role", help="researcher, data_manager or admin.")
    ] = "researcher",
    days: Annotated[
        int | None, typer.Option("--days", min=1, help="Expires after this many days.")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Revoke a token of that name first.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Make a token and print it: it is shown only now (the database keeps its hash).

    Example: [bold]imaging-biobank token create alice --role researcher --days 90[/]"""
    from imaging_biobank.access.tokens import TokenError, create_token

    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days else None
    engine = open_database(db)
    try:
        with engine.begin() as conn:
            token = create_token(conn, name, role, expires=expires, replace=replace)
    except TokenError as error:
        fail(str(error))
    print(token)


@token_app.command("list")
def token_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """The tokens (names, roles, dates; never the tokens themselves).

    Example: [bold]imaging-biobank token list --json[/]"""
    from rich.table import Table

    from imaging_biobank.access.tokens import list_tokens

    with open_database(db).connect() as conn:
        rows = list_tokens(conn)
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table("name", "role", "created", "expires", "revoked")
    for row in rows:
        table.add_row(*(plain(v) for v in row.values()))
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")], db: DbOption = None
) -> None:
    """Revoke a token: requests with it get 401 from now on.

    Example: [bold]imaging-biobank token revoke alice[/]"""
    from imaging_biobank.access.tokens import TokenError, revoke_token

    try:
        with open_database(db).begin() as conn:
            revoke_token(conn, name)
    except TokenError as error:
        fail(str(error))
    console.print(plain(f"revoked {name}"))


@app.command()
def audit(
    actor: Annotated[str | None, typer.Option("--actor", help="Only this token's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The audit log of the API and pages: who, when, what query, how many results.

    Example: [bold]imaging-biobank audit --actor alice --limit 20[/]"""
    from rich.table import Table

    from imaging_biobank.access.audit import entries

    with open_database(db).connect() as conn:
        rows = entries(conn, actor=actor, limit=limit)
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table("at", "actor", "role", "action", "query", "results", "status")
    for row in rows:
        table.add_row(
            plain(row["at"]),
            plain(row["actor"]),
            plain(row["role"]),
            plain(row["action"]),
            plain(row["query"]),
            plain(row["result_count"]),
            plain(row["status"]),
        )
    console.print(table)
