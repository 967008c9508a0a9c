"""Commands that show the shipped vocabularies (no database needed)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from imaging_biobank.cli import app
from imaging_biobank.cli.common import EXIT_REJECTED, console, err_console, fail, plain

vocab_app = typer.Typer(
    help="The controlled vocabularies shipped with this version: editions, terms, lookups.",
    no_args_is_help=True,
)
app.add_typer(vocab_app, name="vocab")

TableArgument = Annotated[
    str, typer.Argument(metavar="TABLE", help="A vocabulary table, e.g. body_part_examined.")
]


@vocab_app.command("list")
def list_vocabularies() -> None:
    """Every vocabulary edition: table, edition, number of terms, source.

    Example: [bold]imaging-biobank vocab list[/]
    """
    from imaging_biobank.vocab import catalog

    table = Table(title="Shipped vocabularies")
    table.add_column("table", no_wrap=True)
    table.add_column("vocabulary", no_wrap=True)
    table.add_column("terms", justify="right")
    table.add_column("edition")
    for info in sorted(catalog.manifest(), key=lambda v: (v.table, v.priority)):
        table.add_row(info.table, info.name, f"{info.terms:,}", info.edition)
    console.print(table)


@vocab_app.command("terms")
def list_terms(
    table_name: TableArgument,
    search: Annotated[
        str | None,
        typer.Option("--search", "-s", help="Only terms whose code or label contain this."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many terms.")] = 200,
) -> None:
    """The terms of one table, all its editions.

    Example: [bold]imaging-biobank vocab terms body_part_examined --search chest[/]
    """
    from imaging_biobank.vocab import catalog

    try:
        editions = catalog.vocabularies_of(table_name)
    except KeyError as error:
        fail(str(error.args[0]))
    needle = search.casefold() if search else None
    out = Table("vocabulary", "code", "label", "directory id", "maps to", title=table_name)
    shown = 0
    for info in editions:
        for term in catalog.terms(info.name):
            if (
                needle
                and needle not in term.code.casefold()
                and needle not in term.label.casefold()
            ):
                continue
            if shown >= limit:
                break
            maps_to = term.maps_to
            out.add_row(
                info.name,
                plain(term.code),
                plain(term.label),
                plain(term.get("directory_id")),
                plain(f"{maps_to[0]}:{maps_to[1]}" if maps_to else ""),
            )
            shown += 1
    console.print(out)
    if shown >= limit:
        console.print(f"(first {limit} shown; narrow with --search or raise --limit)")


@vocab_app.command("lookup")
def lookup(
    table_name: TableArgument,
    value: Annotated[
        str,
        typer.Argument(help="A code, label, synonym or another system's code ('--' before -80)."),
    ],
) -> None:
    """Resolve a value the way imports do, and show the term it names.

    Examples: [bold]imaging-biobank vocab lookup body_part_examined 43799004[/],
    [bold]imaging-biobank vocab lookup storage_temperature -- -80[/]
    """
    from imaging_biobank.vocab import catalog

    try:
        term = catalog.resolve(table_name, value)
    except KeyError as error:
        fail(str(error.args[0]))
    except catalog.UnknownTermError as error:
        err_console.print(plain(error), highlight=False)
        raise typer.Exit(EXIT_REJECTED) from None
    info = catalog.vocabulary(term.vocabulary)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("vocabulary", plain(f"{info.name} ({info.edition})"))
    for column, raw in term.fields.items():
        if raw:
            grid.add_row(column, plain(raw))
    console.print(grid)
