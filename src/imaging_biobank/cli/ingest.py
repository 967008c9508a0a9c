"""Commands that bring images in: ``ingest`` (files, folders, archives, DICOMDIR, PACS) and
``keygen`` (the pseudonymisation key)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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

if TYPE_CHECKING:  # imported where used: start-up time
    from imaging_biobank.deid.pseudonym import Pseudonymiser
    from imaging_biobank.ingest.parallel import IngestOptions, Parsing

KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="The pseudonymisation key (default: $IMAGING_BIOBANK_KEY_FILE).",
        show_default=False,
    ),
]


def load_pseudonymiser(key_file: Path | None) -> Pseudonymiser:
    """The keyed pseudonymiser, or a usage error saying how to make a key."""
    from imaging_biobank.config import Settings
    from imaging_biobank.deid.pseudonym import KeyFileError, Pseudonymiser

    path = key_file if key_file is not None else Settings.from_env().key_file
    try:
        return Pseudonymiser.from_file(path)
    except KeyFileError as error:
        fail(str(error))


@app.command()
def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the new key.", show_default=False)],
) -> None:
    """Make a pseudonymisation key: the secret that turns patient ids into donor pseudonyms.

    Keep it outside the database and back it up: without it, new data cannot be linked to
    the donors already stored. It is never overwritten.

    Example: [bold]imaging-biobank keygen ~/.imaging-biobank/key[/]
    """
    from imaging_biobank.deid.pseudonym import KeyFileError, Pseudonymiser, generate_key_file

    try:
        generate_key_file(path)
    except KeyFileError as error:
        fail(str(error))
    fingerprint = Pseudonymiser.from_file(path).fingerprint
    console.print(f"Wrote a new key to {path} (fingerprint {fingerprint}); readable by you only.")


class _Report:
    """The JSON-lines report (one line per file not ingested as new or unchanged)."""

    def __init__(self, path: Path | None):
        self.file: IO[str] | None = path.open("w", encoding="utf-8") if path else None
        self.rejected: list[tuple[str, str]] = []

    def __call__(self, status: str, location: str, reason: str) -> None:
        if status == "rejected":
            self.rejected.append((location, reason))
        if self.file is not None:
            line = {"path": location, "status": status, "reason": reason}
            self.file.write(json.dumps(line, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class _RateColumn(TextColumn):
    def __init__(self) -> None:
        super().__init__("")
        self.start = time.perf_counter()

    def render(self, task: Any) -> Any:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        return plain(f"{task.completed / elapsed:,.0f} files/s")


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files, folders (recursive), .zip archives, DICOMDIR files.", show_default=False
        ),
    ] = None,
    collection: Annotated[
        str,
        typer.Option(
            "--collection",
            "-c",
            help="The image collection to ingest into: its id, or its short name (NB_IMAGING).",
            show_default=False,
        ),
    ] = "",
    pacs: Annotated[
        str | None,
        typer.Option(
            "--pacs",
            help="A PACS instead of files: http(s)://host/dicom-web (DICOMweb)"
            " or dicom://AET@host:port (DIMSE).",
            show_default=False,
        ),
    ] = None,
    query: Annotated[
        list[str] | None,
        typer.Option(
            "--query",
            "-q",
            help="PACS search filter KEY=VALUE (repeatable), e.g."
            " Modality=CT, StudyDate=20200101-20201231, PatientID=P1.",
            show_default=False,
        ),
    ] = None,
    aet: Annotated[str, typer.Option(help="Our AE title for DIMSE.")] = "IMAGINGBIOBANK",
    db: DbOption = None,
    key_file: KeyFileOption = None,
    workers: Annotated[
        int, typer.Option(help="Parsing processes (default: all cores; 0 parses in this one).")
    ] = os.cpu_count() or 1,
    parser: Annotated[
        str,
        typer.Option(
            help="Header parser: auto (dicomsdl, pydicom as fallback), dicomsdl or pydicom."
        ),
    ] = "auto",
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write a JSON-lines report (path, status, reason) of"
            " every file not ingested as new or unchanged.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Instances per transaction.")] = 2000,
    retain_device_identity: Annotated[
        bool, typer.Option(help="Keep device serial numbers and station names.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Ingest DICOM headers (never pixel data) into an image collection.

    Idempotent and resumable: the same files again change nothing; a run that was stopped
    continues where it stopped. Files that cannot be ingested (not DICOM, truncated, missing
    UIDs) are listed, the rest goes in, and the exit code is 1.

    Examples: [bold]imaging-biobank ingest /data/dicom --collection ID --key-file KEY[/],
    [bold]imaging-biobank ingest --pacs http://pacs:8042/dicom-web -q Modality=CT -c ID[/]
    """
    from imaging_biobank.dicom.read import PARSERS
    from imaging_biobank.ingest.parallel import IngestOptions, Parsing

    if not collection:
        fail("--collection ID is required (the image collection to ingest into)")
    if bool(paths) == bool(pacs):
        fail("give PATH... or --pacs URL (one of them)")
    if parser not in PARSERS:
        fail(f"--parser must be one of {', '.join(PARSERS)}")
    if workers < 0 or batch_size < 1:
        fail("--workers must be >= 0 and --batch-size >= 1")
    pseudonymiser = load_pseudonymiser(key_file)
    options = IngestOptions(
        workers=workers,
        parser=parser,
        batch_size=batch_size,
        retain_device_identity=retain_device_identity,
    )
    parsing = Parsing(_source(paths, pacs, query or [], aet), options, pseudonymiser.key)
    try:
        if paths:  # the workers read headers while the database code loads (not a PACS:
            parsing.prime()  # that would query it before the collection is checked)
        _run(parsing, collection, db, pseudonymiser, options, paths, report, as_json)
    finally:
        parsing.close()


def _run(
    parsing: Parsing,
    collection: str,
    db: str | None,
    pseudonymiser: Pseudonymiser,
    options: IngestOptions,
    paths: list[Path] | None,
    report: Path | None,
    as_json: bool,
) -> None:
    from imaging_biobank.ingest.pipeline import IngestError, image_collection_id
    from imaging_biobank.ingest.pipeline import ingest as run

    engine = open_database(db)
    try:
        image_collection_id(engine, collection)
    except IngestError as error:
        fail(str(error))
    total = None
    if paths:
        from imaging_biobank.dicom.sources.folder import count_items

        total = count_items(paths)
    out = _Report(report)
    columns = (
        TextColumn("ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err_console, transient=as_json, disable=as_json) as bar:
            task = bar.add_task("ingest", total=total)

            def progress(done: int, all_: int | None) -> None:
                bar.update(task, completed=done, total=all_ if all_ is not None else total)

            summary = run(engine, collection, parsing, pseudonymiser, options, out, progress)
    except IngestError as error:
        fail(str(error))
    except KeyboardInterrupt:
        err_console.print("Interrupted: what was committed stays; run again to continue.")
        raise typer.Exit(130) from None
    finally:
        out.close()
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        _print_summary(summary, out, report)
    if summary.rejected:
        raise typer.Exit(EXIT_REJECTED)


def _source(paths: list[Path] | None, pacs: str | None, query: list[str], aet: str) -> Any:
    """The items to ingest."""
    if paths:
        from imaging_biobank.dicom.sources.folder import expand_paths

        return expand_paths(paths)
    assert pacs is not None
    from imaging_biobank.dicom.sources.pacs import PacsError, pacs_source, parse_query

    try:
        return pacs_source(pacs, parse_query(query), aet)
    except PacsError as error:
        fail(str(error))


def _print_summary(summary: Any, out: _Report, report: Path | None) -> None:
    table = Table("", "count", title="Ingest summary", show_header=False)
    rows = [
        ("items read", summary.items),
        ("new instances", summary.new),
        ("updated", summary.updated),
        ("unchanged", summary.unchanged),
        ("duplicates (skipped)", summary.duplicates),
        ("skipped (not instances)", summary.skipped),
        ("rejected", summary.rejected),
        ("conflicts", summary.conflicts),
        ("new studies", summary.new_studies),
        ("new series", summary.new_series),
        ("new donors", summary.new_donors),
        ("instances without PatientID", summary.without_patient_id),
    ]
    for name, count in rows:
        if count or name in ("new instances", "rejected"):
            table.add_row(name, f"{count:,}")
    for flag, count in sorted(summary.body_part.items()):
        table.add_row(f"new series, body part {flag}", f"{count:,}")
    console.print(table)
    if summary.new == 0 and summary.updated == 0:
        console.print("Nothing new: the database already holds these instances.")
    if out.rejected:
        err_console.print(
            f"[bold red]{len(out.rejected)} rejected[/] (first ones below"
            f"{'; all in ' + str(report) if report else '; --report FILE lists all'}):"
        )
        for location, reason in out.rejected[:10]:
            err_console.print(plain(f"  {location}: {reason}"), highlight=False)
