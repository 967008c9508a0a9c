"""What the commands share: the database option, opening a database, consoles, exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from imaging_biobank.db.engine import PoolSettings
    from imaging_biobank.query.ast import Query
    from imaging_biobank.samples.consent import Purpose

EXIT_OK = 0
EXIT_REJECTED = 1  # some input was refused (a report says which and why)
EXIT_USAGE = 2  # the command cannot run as asked

# identifiers such as bbmri-eric:ID:... must not turn into emoji
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False, soft_wrap=True)


def plain(value: object) -> Text:
    """A table cell shown as written (no markup, no emoji)."""
    return Text("" if value is None else str(value))


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL. Default: $IMAGING_BIOBANK_DB, else sqlite:///biobank.db.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def database_url(db: str | None) -> str:
    """The URL given, else the configured one."""
    if db:
        return db
    from imaging_biobank.config import Settings

    return Settings.from_env().db


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for other databases and in-memory SQLite)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def open_database(db: str | None, pool: PoolSettings | None = None) -> Engine:
    """An engine on an initialised, current database (its connection pool sized by ``pool``,
    else SQLAlchemy's defaults); a clear error otherwise."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    from imaging_biobank.db.engine import display_url, make_engine
    from imaging_biobank.db.revision import HEAD_REVISION, current_revision

    url = database_url(db)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        fail(f"no database at {path}: create it with `imaging-biobank init --db {url}`")
    try:
        engine = make_engine(url, pool=pool)
        with engine.connect() as conn:
            revision = current_revision(conn)
    except ArgumentError as error:
        fail(f"{url!r} is not a database URL ({error})")
    except OperationalError as error:
        fail(f"cannot open {display_url(url)}: {error.orig}")
    if revision is None:
        fail(f"{display_url(url)} is not initialised: run `imaging-biobank init --db {url}`")
    head = HEAD_REVISION
    if revision != head:
        fail(
            f"{display_url(url)} is at schema revision {revision}, this version needs {head}:"
            f" run `imaging-biobank init --db {url}` to upgrade it"
        )
    return engine


JsonQueryOption = Annotated[
    Path | None,
    typer.Option("--json-query", help="The query in the Locator's JSON form, from a file."),
]


def read_query(
    text: str | None, json_query: Path | None, purpose: list[str] | None
) -> tuple[Query, Purpose | None]:
    """The query tree (from its text or a JSON file) and the declared purpose; a usage
    error saying what is wrong otherwise."""
    from imaging_biobank.query.ast import QuerySyntaxError, parse_json, parse_text
    from imaging_biobank.samples.consent import Purpose, PurposeError

    try:
        if json_query is not None:
            if text is not None:
                fail("give the query as text or as --json-query FILE, not both")
            tree = parse_json(json_query.read_text(encoding="utf-8"))
        elif text is not None:
            tree = parse_text(text)
        else:
            fail('give a query ("modality = CT") or --json-query FILE')
        return tree, Purpose.of(purpose) if purpose else None
    except (QuerySyntaxError, PurposeError, OSError) as error:
        fail(str(error))
