"""``imaging-biobank sparql QUERY``: SPARQL over the biobank as RDF."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imaging_biobank.cli import app
from imaging_biobank.cli.common import DbOption, console, err_console, fail, open_database, plain
from imaging_biobank.cli.export import CollectionsOption
from imaging_biobank.export.rdf_sandbox import MEMORY_MB, TIMEOUT  # the standard library only

if TYPE_CHECKING:
    from rdflib import Graph
    from rdflib.term import Node

    from imaging_biobank.export.rdf_sparql import SparqlResult

FORMATS = ("table", "csv", "json", "turtle", "nt")


def _query_text(text: str | None, file: Path | None) -> str:
    """The query from the argument, ``--file``, or standard input (``-`` or nothing)."""
    if file is not None:
        if text is not None:
            fail("give the query as an argument or with --file, not both")
        try:
            return file.read_text(encoding="utf-8")
        except OSError as error:
            fail(f"cannot read {file}: {error}")
    if text is not None and text != "-":
        return text
    if sys.stdin.isatty():
        fail('give a query: imaging-biobank sparql "SELECT ...", --file QUERY.rq, or on stdin')
    return sys.stdin.read()


def _cell(term: Node | None, graph: Graph) -> str:
    """A term as a table shows it: prefixed IRIs, literals as their text."""
    from rdflib import URIRef

    if term is None:
        return ""
    if isinstance(term, URIRef):
        shown = term.n3(graph.namespace_manager)
        return shown[1:-1] if shown.startswith("<") else shown
    return str(term)


def _print(result: SparqlResult, fmt: str, graph: Graph) -> None:
    if result.graph is not None:
        if fmt in ("csv", "table"):
            fmt = "turtle"
        name = {"json": "json-ld"}.get(fmt, fmt)
        sys.stdout.write(result.graph_bytes(name).decode("utf-8"))
        return
    if fmt in ("turtle", "nt"):
        fail(f"--format {fmt} is for CONSTRUCT and DESCRIBE; SELECT and ASK: table, csv, json")
    if fmt == "json":
        print(json.dumps(result.to_json(), indent=2))
    elif fmt == "csv":
        sys.stdout.write(result.to_csv())
    elif result.form == "ASK":
        console.print("true" if result.boolean else "false")
    else:
        from rich.table import Table

        table = Table(*result.variables, title=f"{len(result.rows)} rows")
        for row in result.rows:
            table.add_row(*(plain(_cell(value, graph)) for value in row))
        console.print(table)


@app.command()
def sparql(
    text: Annotated[
        str | None,
        typer.Argument(
            help='The query, e.g. "SELECT ?s WHERE { ?s ib:modality dcm:CT }"; - or nothing:'
            " read it from standard input.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the query from this file.", show_default=False),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="SELECT/ASK: table, csv or json (SPARQL 1.1 results);"
            " CONSTRUCT/DESCRIBE: turtle, json (JSON-LD) or nt.",
        ),
    ] = "table",
    collection: CollectionsOption = None,
    instances: Annotated[
        bool, typer.Option("--instances", help="Put every DICOM instance in the graph too.")
    ] = False,
    catalogue: Annotated[
        bool,
        typer.Option(
            "--catalogue",
            help="Query the researchers' graph: the catalogue only, counts obfuscated, ages as"
            " 10-year bands.",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="Stop a query after this many seconds, or when it needs more than"
            f" {MEMORY_MB} MiB (Linux); 0: no limit.",
        ),
    ] = TIMEOUT,
    db: DbOption = None,
) -> None:
    """Run a SPARQL query (SELECT, ASK, CONSTRUCT, DESCRIBE) over the biobank as RDF.

    The graph is what `imaging-biobank export rdf` writes. Its prefixes are declared for
    you: ib: (the model), dicom: (DICOM attributes: dicom:SliceThickness), dcm: (DICOM codes:
    dcm:CT), bp: (body parts: bp:ABDOMEN), sct: (SNOMED CT), icd: (ICD-10), dcat:, dcterms:,
    skos:, prov:, xsd:. A series shows a region when its body part reaches it along
    ib:bodyPart/ib:covers?/skos:broader*, the cohort query's body_part rule. SPARQL Update is
    refused (exit 2), as are a query that does not parse (the message says where, before the
    graph is built), GRAPH, SERVICE and FROM, and a query that runs out of time or memory.

    Example, CT series of the abdomen of at most 3 mm:
    [bold]imaging-biobank sparql "SELECT ?uid WHERE { ?s ib:modality dcm:CT ;
    ib:bodyPart/ib:covers?/skos:broader* bp:ABDOMEN ; dicom:SliceThickness ?t ;
    dicom:SeriesInstanceUID ?uid FILTER(?t <= 3) }"[/]
    """
    if fmt not in FORMATS:
        fail(f"--format {fmt!r}: formats: {', '.join(FORMATS)}")
    query = _query_text(text, file)
    from imaging_biobank.db.lookup import CollectionLookupError
    from imaging_biobank.export.rdf import build_graph
    from imaging_biobank.export.rdf_build import RdfOptions
    from imaging_biobank.export.rdf_sparql import SparqlError, check, run

    if timeout < 0:
        fail(f"--timeout {timeout:g}: give seconds (0: no limit)")
    limit = timeout or None
    try:
        check(query, timeout=limit)  # before the graph is built: a typo is reported at once
    except SparqlError as error:
        fail(str(error))
    options = RdfOptions(
        instances=instances,
        level="catalogue" if catalogue else "full",
        role="researcher" if catalogue else "data_manager",
    )
    engine = open_database(db)
    try:
        with engine.connect() as conn, err_console.status("building the graph"):
            graph, _ = build_graph(conn, collection or (), options)
    except CollectionLookupError as error:
        fail(str(error))
    try:
        result = run(graph, query, timeout=limit, memory_mb=MEMORY_MB if limit else None)
    except SparqlError as error:
        fail(str(error))
    _print(result, fmt, graph)
