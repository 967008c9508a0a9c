"""Commands that create the database, register biobanks and show what it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from imaging_biobank.cli import app
from imaging_biobank.cli.common import (
    EXIT_REJECTED,
    DbOption,
    JsonOption,
    console,
    database_url,
    err_console,
    fail,
    open_database,
    plain,
)

show_app = typer.Typer(help="Show one thing in full.", no_args_is_help=True)
app.add_typer(show_app, name="show")


@app.command()
def init(db: DbOption = None) -> None:
    """Create or upgrade a database: the DICOM-MIABIS schema and its vocabularies.

    Running it again on a current database changes nothing.

    Example: [bold]imaging-biobank init --db sqlite:///biobank.db[/]
    """
    from sqlalchemy.exc import ArgumentError, OperationalError

    from imaging_biobank.db.engine import display_url, make_engine
    from imaging_biobank.db.migrate import upgrade
    from imaging_biobank.db.vocabulary_load import stale_vocabularies

    url = database_url(db)
    shown = display_url(url) if "://" in url else url
    try:
        engine = make_engine(url)
        result = upgrade(engine)
    except ArgumentError as error:
        fail(f"{url!r} is not a database URL ({error})")
    except OperationalError as error:
        fail(f"cannot open {shown}: {error.orig}")
    if result.before is None:
        console.print(f"Created {shown} at schema revision {result.after}.")
    elif result.changed:
        console.print(f"Upgraded {shown} from revision {result.before} to {result.after}.")
    else:
        console.print(f"{shown} is up to date (revision {result.after}); nothing changed.")
    with engine.connect() as conn:
        stale = stale_vocabularies(conn)
    if stale:
        err_console.print(
            "[yellow]warning:[/] these vocabularies differ from the files this version ships: "
            + ", ".join(stale)
        )


@app.command()
def register(
    file: Annotated[
        Path, typer.Argument(help="YAML file describing a biobank.", show_default=False)
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a biobank, its contacts, collections and studies from YAML.

    Everything is validated first (vocabularies, BBMRI-ERIC id rules, references); a file
    with any problem is refused whole, each problem reported with its line, and nothing is
    written. Registering the same file again updates, never duplicates.

    Example: [bold]imaging-biobank register examples/primage.yaml[/]
    """
    from imaging_biobank.db.engine import session_factory
    from imaging_biobank.register import DocumentError, RegistrationConflictError
    from imaging_biobank.register import register as register_document

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror}")
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text")
    engine = open_database(db)
    try:
        with session_factory(engine).begin() as session:
            report = register_document(session, text, str(file))
    except DocumentError as error:
        for problem in error.problems:
            err_console.print(plain(problem), highlight=False, soft_wrap=True)
        err_console.print(
            f"[bold red]{file}: refused[/] ({len(error.problems)} problem"
            f"{'s' if len(error.problems) != 1 else ''}); nothing was written."
        )
        raise typer.Exit(EXIT_REJECTED) from None
    except RegistrationConflictError as error:
        err_console.print(
            plain(f"{file}: refused: {error}; nothing was written."), style="bold red"
        )
        raise typer.Exit(EXIT_REJECTED) from None
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
        return
    if not report.changed:
        console.print(f"{file}: already registered; nothing changed.")
        return
    table = Table("entity", "created", "updated", "unchanged", title=f"Registered {file}")
    entities = sorted(set(report.created) | set(report.updated) | set(report.unchanged))
    for entity in entities:
        table.add_row(
            entity,
            str(report.created[entity]),
            str(report.updated[entity]),
            str(report.unchanged[entity]),
        )
    console.print(table)


@app.command()
def stats(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Counts per entity and per collection.

    [bold]--json[/] prints a stable document for scripts (its keys are described in the
    README; the "format" field changes only if a key changes meaning).

    Example: [bold]imaging-biobank stats --json[/]
    """
    from imaging_biobank.catalogue.stats import stats as gather
    from imaging_biobank.db.revision import current_revision

    engine = open_database(db)
    with engine.connect() as conn:
        data = gather(conn, current_revision(conn))
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _print_stats(data)


def _print_stats(data: dict[str, Any]) -> None:
    filled = {name: count for name, count in data["entities"].items() if count}
    entities = Table("entity", "rows", title="Entities")
    for name, count in filled.items():
        entities.add_row(name, f"{count:,}")
    console.print(entities)
    empty = [name for name in data["entities"] if name not in filled]
    if empty:
        console.print(f"[dim]Empty: {', '.join(empty)}.[/]")
    collections = Table(
        title="Collections",
        caption="studies, series, instances: DICOM imaging",
        show_edge=False,
        pad_edge=False,  # fits 80 columns
    )
    collections.add_column("collection", no_wrap=True)
    for name in ("kind", "donors", "samples", "studies", "series", "instances"):
        collections.add_column(name, justify="left" if name == "kind" else "right", no_wrap=True)
    for c in data["collections"]:
        collections.add_row(
            plain(c["id"].split(":collection:")[-1]),
            c["kind"].split("_")[0],
            f"{c['donors']:,}",
            f"{c['samples']:,}",
            f"{c['imaging_studies']:,}",
            f"{c['imaging_series']:,}",
            f"{c['imaging_instances']:,}",
        )
    if data["collections"]:
        console.print(collections)
    else:
        console.print(
            "No collections yet: register some with `imaging-biobank register FILE.yaml`."
        )
    terms = sum(v["terms"] for v in data["vocabularies"])
    console.print(
        f"{len(data['vocabularies'])} vocabulary editions, {terms:,} terms"
        " (`imaging-biobank vocab list`)."
    )


@show_app.command("collection")
def show_collection(
    identifier: Annotated[
        str, typer.Argument(metavar="ID", help="The collection id, or its short name (NB_IMAGING).")
    ],
    db: DbOption = None,
) -> None:
    """Everything known about one collection.

    Example: [bold]imaging-biobank show collection NB_IMAGING[/] (short for
    bbmri-eric:ID:ES_PRIMAGE:collection:NB_IMAGING while no other collection ends so)
    """
    from imaging_biobank.catalogue.describe import describe_collection
    from imaging_biobank.db.engine import session_factory
    from imaging_biobank.db.lookup import CollectionLookupError

    engine = open_database(db)
    with session_factory(engine)() as session:
        try:
            d = describe_collection(session, identifier)
        except CollectionLookupError as error:
            fail(str(error))
        attributes = Table.grid(padding=(0, 2))
        attributes.add_column(style="bold")
        attributes.add_column()
        for key, value in d.attributes:
            attributes.add_row(key, plain(value))
        console.print(attributes)
        if d.descriptors:
            descriptors = Table("descriptor", "value", "origin", title="Descriptors")
            for name, value, origin in d.descriptors:
                descriptors.add_row(name, plain(value), origin)
            console.print(descriptors)
        counts = Table(*d.counts, title="Counts")
        counts.add_row(*(f"{v:,}" for v in d.counts.values()))
        console.print(counts)
        if d.contacts:
            contacts = Table("contact", "name", "email", title="Contacts (2.0-07)")
            contacts.columns[0].overflow = "fold"
            contacts.columns[2].overflow = "fold"
            for contact in d.contacts:
                contacts.add_row(*map(plain, contact))
            console.print(contacts)
        if d.studies:
            studies = Table("study", "name", title="Studies")
            for study in d.studies:
                studies.add_row(*map(plain, study))
            console.print(studies)


@app.command()
def schema(
    mermaid: Annotated[
        bool, typer.Option("--mermaid", help="The ER diagram as a Mermaid erDiagram.")
    ] = False,
    sql: Annotated[
        str | None,
        typer.Option("--sql", metavar="DIALECT", help="The DDL for sqlite or postgresql."),
    ] = None,
) -> None:
    """Print the model: its ER diagram (generated from the ORM) or its SQL DDL.

    Example: [bold]imaging-biobank schema --mermaid > docs/model.mmd[/]
    """
    import imaging_biobank.model  # noqa: F401  (registers every table)
    from imaging_biobank.model.base import Base

    if mermaid == (sql is not None):
        fail("choose one of --mermaid or --sql DIALECT")
    if mermaid:
        from imaging_biobank.model.diagram import mermaid_er

        print(mermaid_er(Base.metadata), end="")
        return
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialects = {
        "sqlite": sqlite.dialect(),
        "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
    }
    if sql not in dialects:
        fail(f"unknown dialect {sql!r}; choose sqlite or postgresql")
    dialect = dialects[sql]
    for table in Base.metadata.sorted_tables:
        print(str(CreateTable(table).compile(dialect=dialect)).strip() + ";\n")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            print(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
        if table.indexes:
            print()
