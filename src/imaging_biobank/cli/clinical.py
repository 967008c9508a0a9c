"""Commands for clinical e-forms: ``import form`` (a REDCap data dictionary), ``import
records`` (a REDCap export), ``forms list`` and ``forms questionnaire`` (FHIR)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imaging_biobank.cli import app
from imaging_biobank.cli.common import (
    EXIT_REJECTED,
    EXIT_USAGE,
    DbOption,
    JsonOption,
    console,
    err_console,
    fail,
    open_database,
    plain,
)
from imaging_biobank.cli.imports import import_app
from imaging_biobank.cli.runs import KeyFileOption, Report, load_pseudonymiser, summary_table

if TYPE_CHECKING:
    from imaging_biobank.clinical.records import BadCell

forms_app = typer.Typer(
    name="forms",
    help="The clinical e-forms of the clinical variable collections (REDCap, FHIR).",
    no_args_is_help=True,
)
app.add_typer(forms_app, name="forms")

CollectionOption = Annotated[
    str,
    typer.Option(
        "--collection",
        "-c",
        help="The clinical variable collection: its id, or the part after the last colon.",
        show_default=False,
    ),
]
SHOWN = 10  # bad cells listed on screen


def _short(identifier: str) -> str:
    """A collection id as the Directory lists it: the part after the last colon."""
    return identifier.rsplit(":", 1)[-1]


def _readable(path: Path) -> None:
    if not path.is_file():
        fail(f"{path} is not a file")


@import_app.command("form")
def import_form(
    dictionary: Annotated[
        Path, typer.Argument(help="A REDCap data dictionary (CSV).", show_default=False)
    ],
    collection: CollectionOption,
    db: DbOption = None,
) -> None:
    """Import e-form definitions from a REDCap data dictionary into a clinical variable
    collection: every form of the file, with its fields, choices, validation, branching
    logic and the @IB- coding tags of the Field Annotation column.

    The file is checked whole: an unknown column (exit 2), field type, validation type or
    tag, or a bad code (exit 1) refuses it, each fault named by row and column. Branching
    logic we cannot evaluate (functions, smart variables) is kept verbatim and listed as
    not evaluated. The same file again changes nothing.

    Example: [bold]imaging-biobank import form examples/forms/neuroblastoma.csv
    --collection NB_CLINICAL[/]
    """
    from imaging_biobank.clinical.dictionary import DictionaryError
    from imaging_biobank.clinical.forms import FormConflictError
    from imaging_biobank.clinical.importer import import_dictionary
    from imaging_biobank.db.lookup import CollectionLookupError

    _readable(dictionary)
    engine = open_database(db)
    try:
        result = import_dictionary(engine, collection, dictionary)
    except CollectionLookupError as error:
        fail(str(error))
    except FormConflictError as error:
        fail(f"{dictionary}: {error}; nothing stored", EXIT_REJECTED)
    except DictionaryError as error:
        for row, column, message in error.problems:
            err_console.print(plain(f"  {dictionary}, row {row}, {column}: {message}"))
        header = any(row == 1 for row, _, _ in error.problems)
        fail(
            f"{dictionary}: {len(error.problems)} fault(s) above; nothing stored",
            EXIT_USAGE if header else EXIT_REJECTED,
        )
    from rich.table import Table

    table = Table("form", "fields", "", title=f"e-forms of {_short(result.collection)}")
    for form in result.forms:
        table.add_row(plain(form.name), f"{form.fields:,}", form.status)
    console.print(table)
    for notice in result.notices:
        err_console.print(
            plain(f"warning: row {notice.row}, {notice.field}: {notice.message}"), highlight=False
        )
    if all(form.status == "unchanged" for form in result.forms):
        console.print("Already imported; nothing changed.")


def _print_bad_cells(path: Path, cells: list[BadCell], report: Path | None) -> None:
    out = Report(report)
    for cell in cells:
        extra = {"row": str(cell.row), "record": cell.record, "field": cell.field}
        out("rejected", f"{path}:{cell.row}", cell.reason, value=cell.value, **extra)
    out.close()
    where = f"; all in {report}" if report else "; --report FILE lists all"
    err_console.print(f"[bold red]{len(cells)} bad cell(s)[/] (first ones below{where}):")
    for cell in cells[:SHOWN]:
        text = f"  row {cell.row}, record {cell.record}, {cell.field}"
        shown = f" = {cell.value!r}" if cell.value and repr(cell.value) not in cell.reason else ""
        err_console.print(plain(f"{text}{shown}: {cell.reason}"), highlight=False)


@import_app.command("records")
def import_records(
    export: Annotated[
        Path,
        typer.Argument(
            help="A REDCap export (CSV, raw values, all or some forms).", show_default=False
        ),
    ],
    collection: CollectionOption,
    form: Annotated[
        str | None,
        typer.Option("--form", help="Import only this form's columns (others are skipped)."),
    ] = None,
    donor_field: Annotated[
        str | None,
        typer.Option(
            "--donor-field",
            help="The field that holds the donor's id (default: the record id).",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    key_file: KeyFileOption = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write every bad cell (JSON lines: row, record, field, value, reason).",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Records per transaction.")] = 500,
) -> None:
    """Import e-form records from a REDCap export (CSV, raw values) into a clinical
    variable collection whose forms are imported.

    Each cell is checked against its field: type, min/max, choices, required, branching
    logic (a hidden field must be empty), checkbox 0/1, value-set codes. Every bad cell is
    listed (row, record, field, value, reason), the records holding one are refused, the
    others stored (exit 1). Columns of no imported form refuse the file (exit 2). The record
    id (or --donor-field) becomes the donor's keyed pseudonym, as a DICOM PatientID does;
    Identifier? = y fields are never stored. The same file again changes nothing.

    Example: [bold]imaging-biobank import records examples/forms/neuroblastoma_records.csv
    --collection NB_CLINICAL --key-file KEY[/]
    """
    from imaging_biobank.clinical.importer import import_records as run
    from imaging_biobank.clinical.records import ExportColumnsError
    from imaging_biobank.db.lookup import CollectionLookupError

    _readable(export)
    if batch_size < 1:
        fail("--batch-size must be at least 1")
    pseudonymiser = load_pseudonymiser(key_file)
    engine = open_database(db)
    try:
        result = run(
            engine,
            collection,
            export,
            pseudonymiser,
            form=form,
            donor_field=donor_field,
            batch_size=batch_size,
        )
    except ExportColumnsError as error:
        fail(f"{export}: {error}; nothing stored")
    except (CollectionLookupError, ValueError) as error:
        fail(f"{export}: {error}")
    rows = [
        ("rows read", result.rows),
        ("records stored (new)", result.written.stored),
        ("records updated", result.written.updated),
        ("records unchanged", result.written.unchanged),
        ("records refused", result.refused),
        ("bad cells", len(result.bad_cells)),
        ("identifier values dropped (never stored)", result.identifier_values),
        ("columns of other forms skipped", len(result.ignored_columns)),
    ]
    always = ("rows read", "records stored (new)", "records refused")
    console.print(summary_table(f"import records → {_short(result.collection)}", rows, always))
    if result.bad_cells:
        _print_bad_cells(export, result.bad_cells, report)
        raise typer.Exit(EXIT_REJECTED)


@forms_app.command("list")
def list_forms(
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection", "-c", help="Only this collection's forms.", show_default=False
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the imported e-forms: collection, fields, records, branching logic not
    evaluated, and the data dictionary they came from.

    Example: [bold]imaging-biobank forms list --collection NB_CLINICAL[/]
    """
    from imaging_biobank.clinical.forms import form_overview
    from imaging_biobank.db.lookup import CollectionLookupError

    engine = open_database(db)
    try:
        forms = form_overview(engine, collection)
    except CollectionLookupError as error:
        fail(str(error))
    if as_json:
        console.print_json(json.dumps(forms))
        return
    if not forms:
        console.print("No e-forms imported yet (imaging-biobank import form --help).")
        return
    from rich.table import Table

    table = Table("collection", "form", "fields", "records", "logic unevaluated", "dictionary")
    for item in forms:
        table.add_row(
            plain(_short(str(item["collection"]))),
            plain(item["form"]),
            f"{item['fields']:,}",
            f"{item['records']:,}",
            f"{item['branching_not_evaluated']:,}",
            plain(item["dictionary_file"]),
        )
    console.print(table)


@forms_app.command("questionnaire")
def questionnaire(
    form: Annotated[str, typer.Argument(help="The form's name.", show_default=False)],
    collection: CollectionOption,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file (default: print).", show_default=False
        ),
    ] = None,
    base_url: Annotated[
        str,
        typer.Option("--base-url", help="The FHIR base its canonical url starts with."),
    ] = "http://example.org/fhir",
    db: DbOption = None,
) -> None:
    """An e-form as a FHIR R4 Questionnaire (JSON), validated with fhir.resources: groups
    from section headers, typed items, coded answer options, enableWhen from branching
    logic, required, min/max and unit extensions.

    Example: [bold]imaging-biobank forms questionnaire nb_follow_up --collection NB_CLINICAL
    -o nb_follow_up.json[/]
    """
    from imaging_biobank.clinical.importer import collection_forms
    from imaging_biobank.clinical.questionnaire import questionnaire as build
    from imaging_biobank.db.lookup import CollectionLookupError

    engine = open_database(db)
    try:
        found, forms = collection_forms(engine, collection)
    except CollectionLookupError as error:
        fail(str(error))
    stored = forms.get(form)
    if stored is None:
        fail(f"no form {form!r} in {found.identifier}; forms: {', '.join(forms) or 'none'}")
    resource = build(
        stored.form,
        collection=found.identifier,
        sha256=stored.dictionary_sha256,
        imported_at=stored.imported_at,
        base=base_url,
    )
    text = resource.model_dump_json(indent=2, exclude_none=True)
    if output is None:
        typer.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    console.print(f"Wrote the Questionnaire {resource.url} to {output}.")
