"""Commands for the MIABIS individual level: ``import donors|samples|events|biomarkers`` and
``linkage`` (how images, samples and clinical records of the same donors meet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from imaging_biobank.cli import app
from imaging_biobank.cli.common import (
    EXIT_REJECTED,
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
    from imaging_biobank.samples.importer import Refused

FileArgument = Annotated[
    Path, typer.Argument(help="A CSV (UTF-8) or XLSX file, one row per entity.", show_default=False)
]
CollectionOption = Annotated[
    str,
    typer.Option(
        "--collection",
        "-c",
        help="The collection the rows belong to (its id, or the part after the last colon).",
        show_default=False,
    ),
]
SheetOption = Annotated[
    str | None, typer.Option("--sheet", help="The XLSX sheet (default: the first).")
]
ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help="Write every refused row (JSON lines) to this file."),
]


def _columns_help(kind: str) -> str:
    from imaging_biobank.samples.columns import COLUMNS

    return ", ".join(c.name + ("*" if c.required else "") for c in COLUMNS[kind])


def _run(
    kind: str,
    path: Path,
    collection: str,
    db: str | None,
    key_file: Path | None,
    sheet: str | None,
    report: Path | None,
) -> None:
    from imaging_biobank.db.lookup import CollectionLookupError
    from imaging_biobank.samples.biomarkers import import_biomarkers
    from imaging_biobank.samples.importer import import_registry
    from imaging_biobank.samples.table import TableError

    pseudonymiser = load_pseudonymiser(key_file)
    engine = open_database(db)
    from rich.progress import Progress, SpinnerColumn, TextColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}: {task.completed:,} rows"))
    try:
        with Progress(*columns, console=err_console, transient=True) as progress:
            task = progress.add_task(f"import {kind}", total=None)

            def advance(rows: int) -> None:
                progress.advance(task, rows)

            if kind == "biomarkers":
                summary: Any = import_biomarkers(
                    engine, path, collection, pseudonymiser, sheet, advance
                )
            else:
                summary = import_registry(
                    engine, kind, path, collection, pseudonymiser, sheet, advance
                )
    except (TableError, CollectionLookupError) as error:
        fail(f"{path}: {error}" if isinstance(error, CollectionLookupError) else str(error))
    rows = [("rows read", summary.rows), ("stored (new or changed)", summary.stored)]
    rows += [("unchanged", summary.unchanged), ("new donors", summary.new_donors)]
    if kind != "biomarkers":
        rows.append(("new events", summary.events))
    else:
        rows.append(("genes not in the HGNC list (kept uncoded)", summary.genes_uncoded))
    rows.append(("refused", len(summary.refused)))
    console.print(plain(f"{path} → {summary.collection}"))
    console.print(summary_table(f"import {kind}", rows, ("rows read", "refused")))
    _report_refused(path, summary.refused, report)


def _report_refused(path: Path, refused: list[Refused], report: Path | None) -> None:
    if not refused:
        return
    out = Report(report)
    for item in refused:
        out("rejected", f"{path}:{item.row}", item.reason, row=str(item.row))
    out.close()
    out.print_listed()
    raise typer.Exit(EXIT_REJECTED)


@import_app.command("donors")
def import_donors(
    path: FileArgument,
    collection: CollectionOption,
    db: DbOption = None,
    key_file: KeyFileOption = None,
    sheet: SheetOption = None,
    report: ReportOption = None,
) -> None:
    """Import sample donors (MIABIS Sample Donor v1.1) and their consent.

    Columns (* required): donor_id*, sex, birth_date, dataset_type, use_access_conditions.
    Headers may also be MIABIS codes (SAMPLEDONOR-02) or labels (Birth date). The donor id
    is stored only as its keyed pseudonym, the same one the donor's DICOM PatientID gives,
    so images, samples and records meet. Consent: MIABIS Use & Access conditions or GA4GH
    DUO codes, several separated by |. Bad rows are reported with row and reason (exit 1);
    the others are stored.

    Example: [bold]imaging-biobank import donors donors.csv -c NB_TISSUE --key-file biobank.key[/]
    """
    _run("donors", path, collection, db, key_file, sheet, report)


@import_app.command("samples")
def import_samples(
    path: FileArgument,
    collection: CollectionOption,
    db: DbOption = None,
    key_file: KeyFileOption = None,
    sheet: SheetOption = None,
    report: ReportOption = None,
) -> None:
    """Import samples (MIABIS Sample v1.1) into a sample tissue collection.

    Columns (* required): sample_id*, donor_id*, sex, birth_date, sample_type*,
    storage_temperature, creation_date, anatomical_site_ontology, anatomical_site_version,
    anatomical_site_code, anatomical_site_description, anatomical_site_free_text,
    diagnosis, use_access_conditions, sample_source, and an event of the donor (default
    type: sample collection): event_id, event_type, event_date, age_at_event, age_unit.
    Codes as MIABIS labels, Directory ids or bbmri.de codes (-80, temperature-60to-85 and
    "-60 °C to -85 °C" are one temperature); diagnoses ICD-10 or ORPHA. The MIABIS rules are
    enforced: one id and one type per sample; an event has an age (with unit) or a date (with
    the donor's birth date), not both. Bad rows are reported (exit 1); the others are stored.

    Example: [bold]imaging-biobank import samples samples.xlsx -c NB_TISSUE --key-file bb.key[/]
    """
    _run("samples", path, collection, db, key_file, sheet, report)


@import_app.command("events")
def import_events(
    path: FileArgument,
    collection: CollectionOption,
    db: DbOption = None,
    key_file: KeyFileOption = None,
    sheet: SheetOption = None,
    report: ReportOption = None,
) -> None:
    """Import events of donors (MIABIS Event: diagnosis, relapse, death, ...).

    Columns (* required): donor_id*, sex, birth_date, event_id, event_type, event_date,
    age_at_event, age_unit, diagnosis (ICD-10 or ORPHA), description. An event has either a
    date (which needs the donor's birth date) or an age with its unit, never both.

    Example: [bold]imaging-biobank import events events.csv -c NB_CLINICAL --key-file biobank.key[/]
    """
    _run("events", path, collection, db, key_file, sheet, report)


@import_app.command("biomarkers")
def import_biomarkers(
    path: FileArgument,
    collection: CollectionOption,
    db: DbOption = None,
    key_file: KeyFileOption = None,
    sheet: SheetOption = None,
    report: ReportOption = None,
) -> None:
    """Import molecular biomarker results into a molecular biomarker collection.

    Columns (* required): donor_id*, sample_id, result_id, biomarker*, gene, loinc, method,
    value, unit, variant, result_date. Genes are coded with HGNC ids (symbol or id; taken
    from the biomarker's first word when no gene is given), LOINC codes are checked, a
    numeric value needs its UCUM unit, any other value is a category (amplified, positive).

    Example: [bold]imaging-biobank import biomarkers mycn.csv -c NB_MOLECULAR --key-file bb.key[/]
    """
    _run("biomarkers", path, collection, db, key_file, sheet, report)


@app.command()
def linkage(db: DbOption = None, as_json: JsonOption = False) -> None:
    """How images, samples and clinical records of the same donors meet, per collection.

    For each collection: its donors, how many have images, samples and clinical records
    (anywhere in the biobank), each combination, and the donors with images but no samples
    and the reverse. Counts only: no identifier or pseudonym is shown.

    Example: [bold]imaging-biobank linkage --db sqlite:///biobank.db[/]
    """
    from rich.table import Table

    from imaging_biobank.catalogue.linkage import linkage_report

    engine = open_database(db)
    with engine.connect() as conn:
        report = linkage_report(conn)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table(title="Donors with images, samples and clinical records (counts)")
    table.add_column("collection", no_wrap=True)
    headers = ("donors", "images", "samples", "clinical", "all 3", "img, no smp", "smp, no img")
    for header in headers:
        table.add_column(header, justify="right")
    for entry in [*report["collections"], report["all"]]:
        name = (entry["collection"] or "all donors").rsplit(":", 1)[-1]
        table.add_row(
            plain(name),
            str(entry["donors"]),
            *(str(entry["with"][k]) for k in ("images", "samples", "clinical")),
            str(entry["combinations"].get("images+samples+clinical", 0)),
            str(entry["images_without_samples"]),
            str(entry["samples_without_images"]),
        )
    console.print(table)
    if not report["collections"]:
        err_console.print("no donors yet: ingest images or import samples first")
