"""Commands that bring images in: ``ingest`` (files, folders, archives, DICOMDIR, PACS) and
``keygen`` (the pseudonymisation key)."""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from imaging_biobank.cli import app
from imaging_biobank.cli.common import (
    EXIT_REJECTED,
    DbOption,
    JsonOption,
    console,
    err_console,
    fail,
    open_database,
)
from imaging_biobank.cli.deid import AcceptBurnedInOption, OptionOption, UidRootOption, deid_options
from imaging_biobank.cli.runs import (
    KeyFileOption,
    RateColumn,
    Report,
    load_pseudonymiser,
    summary_table,
)

if TYPE_CHECKING:  # imported where used: start-up time
    from imaging_biobank.deid.options import DeidOptions
    from imaging_biobank.deid.pseudonym import Pseudonymiser
    from imaging_biobank.ingest.parallel import IngestOptions, ParsedItems


@app.command()
def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the new key.", show_default=False)],
    reid: Annotated[
        bool,
        typer.Option(
            "--reid", help="A key for a re-identification table (deid --reid-key) instead."
        ),
    ] = False,
) -> None:
    """Make a pseudonymisation key: the secret that turns patient ids into donor pseudonyms.

    Keep it outside the database and back it up: without it, new data cannot be linked to
    the donors already stored. It is never overwritten. With --reid, the separate key of a
    re-identification table (keep it apart from the table and from the pseudonymisation key).

    Example: [bold]imaging-biobank keygen ~/.imaging-biobank/key[/]
    """
    from imaging_biobank.deid.pseudonym import KeyFileError, Pseudonymiser, generate_key_file

    if reid:
        from imaging_biobank.deid.reid import generate_reid_key

        try:
            generate_reid_key(path)
        except KeyFileError as error:
            fail(str(error))
        console.print(f"Wrote a new re-identification key to {path}; readable by you only.")
        return
    try:
        generate_key_file(path)
    except KeyFileError as error:
        fail(str(error))
    fingerprint = Pseudonymiser.from_file(path).fingerprint
    console.print(f"Wrote a new key to {path} (fingerprint {fingerprint}); readable by you only.")


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
        int,
        typer.Option(
            help="Parsing processes (default: all cores; 0 parses in this one); with"
            " --executor dask and no --scheduler, the local cluster's workers."
        ),
    ] = os.cpu_count() or 1,
    executor: Annotated[
        str,
        typer.Option(
            help="Where headers are parsed: local (processes on this machine) or dask"
            " (a Dask distributed cluster: --scheduler, or a local one)."
        ),
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="The Dask scheduler, tcp://HOST:8786 (implies --executor dask); its workers"
            " must see the files at the same paths.",
            show_default=False,
        ),
    ] = None,
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
    deidentify: Annotated[
        bool,
        typer.Option(
            "--deidentify",
            help="Ingest the de-identified view only (as `deid` writes it: PS3.15 profile,"
            " new UIDs, shifted or removed dates); no identifying value reaches the database.",
        ),
    ] = False,
    option: OptionOption = None,
    uid_root: UidRootOption = "2.25",
    accept_burned_in: AcceptBurnedInOption = False,
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
    from imaging_biobank.ingest.parallel import IngestOptions

    if not collection:
        fail("--collection ID is required (the image collection to ingest into)")
    if bool(paths) == bool(pacs):
        fail("give PATH... or --pacs URL (one of them)")
    if parser not in PARSERS:
        fail(f"--parser must be one of {', '.join(PARSERS)}")
    if workers < 0 or batch_size < 1:
        fail("--workers must be >= 0 and --batch-size >= 1")
    if executor not in ("local", "dask"):
        fail("--executor must be local or dask")
    if scheduler:
        executor = "dask"
    deid = None
    if deidentify:
        if retain_device_identity:
            fail("with --deidentify, keep device identity with --option device-identity")
        deid = deid_options(option, uid_root, accept_burned_in)
        retain_device_identity = "device-identity" in deid
    elif option or accept_burned_in or uid_root != "2.25":
        fail("--option, --uid-root and --accept-burned-in go with --deidentify")
    pseudonymiser = load_pseudonymiser(key_file)
    options = IngestOptions(
        workers=workers,
        parser=parser,
        batch_size=batch_size,
        retain_device_identity=retain_device_identity,
        deid=deid,
    )
    source = _source(paths, pacs, query or [], aet, headers=deid is not None)
    parsing = _parsing(executor, scheduler, source, options, pseudonymiser.key)
    started = time.perf_counter()
    try:
        if paths:  # the workers read headers while the database code loads (not a PACS:
            parsing.prime()  # that would query it before the collection is checked)
        _run(parsing, collection, db, pseudonymiser, options, paths, report, as_json, started)
    finally:
        parsing.close()


def _parsing(
    executor: str, scheduler: str | None, source: Any, options: IngestOptions, key: bytes
) -> ParsedItems:
    """The items' parsing: local worker processes, or a Dask cluster's workers."""
    if executor == "local":
        from imaging_biobank.ingest.parallel import Parsing

        return Parsing(source, options, key)
    try:
        from imaging_biobank.ingest.distributed import DaskError, DaskParsing
    except ImportError:
        fail("--executor dask needs Dask: pip install 'imaging-biobank[dask]'")
    with err_console.status("starting the Dask cluster" if not scheduler else "connecting"):
        try:
            return DaskParsing(source, options, key, scheduler)
        except DaskError as error:
            fail(str(error))


def _run(
    parsing: ParsedItems,
    collection: str,
    db: str | None,
    pseudonymiser: Pseudonymiser,
    options: IngestOptions,
    paths: list[Path] | None,
    report: Path | None,
    as_json: bool,
    started_at: float,
) -> None:
    from imaging_biobank.ingest.parallel import ExecutorError
    from imaging_biobank.ingest.pipeline import IngestError, image_collection_id
    from imaging_biobank.ingest.pipeline import ingest as run

    started = dt.datetime.now(dt.UTC)
    engine = open_database(db)
    try:
        image_collection_id(engine, collection)
    except IngestError as error:
        fail(str(error))
    total = None
    if paths:
        from imaging_biobank.dicom.sources.folder import count_items

        total = count_items(paths)
    out = Report(report)
    columns = (
        TextColumn("ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
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
    except ExecutorError as error:
        fail(str(error))
    except KeyboardInterrupt:
        err_console.print("Interrupted: what was committed stays; run again to continue.")
        raise typer.Exit(130) from None
    finally:
        out.close()
    if options.deid is not None:
        _record_audit(engine, collection, started, options.deid, pseudonymiser, summary)
    if as_json:
        data = summary.as_dict()
        # how long the ingest itself took (from the first file handed to the workers, without
        # Python's start-up or a Dask cluster's), and this process's peak memory (not its
        # workers')
        data["ingest_seconds"] = round(time.perf_counter() - started_at, 3)
        data["client_peak_rss_mb"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
        print(json.dumps(data, indent=2))
    else:
        _print_summary(summary, out, report)
    if summary.rejected or summary.quarantined:
        raise typer.Exit(EXIT_REJECTED)


def _record_audit(
    engine: Any,
    collection: str,
    started: dt.datetime,
    deid: DeidOptions,
    pseudonymiser: Pseudonymiser,
    summary: Any,
) -> None:
    """The run's audit record, in the database it de-identified into."""
    from imaging_biobank import __version__
    from imaging_biobank.deid.audit import AuditRecord
    from imaging_biobank.ingest.pipeline import record_deidentification

    counts = {k: v for k, v in summary.as_dict().items() if k != "body_part"}
    audit = AuditRecord.of(
        "ingest --deidentify", started, deid, pseudonymiser.fingerprint, __version__, counts
    )
    record_deidentification(engine, collection, audit)


def _source(
    paths: list[Path] | None, pacs: str | None, query: list[str], aet: str, headers: bool
) -> Any:
    """The items to ingest."""
    if paths:
        from imaging_biobank.dicom.sources.folder import expand_paths

        return expand_paths(paths)
    assert pacs is not None
    from imaging_biobank.dicom.sources.pacs import PacsError, pacs_source, parse_query

    try:
        return pacs_source(pacs, parse_query(query), aet, headers)
    except PacsError as error:
        fail(str(error))


def _print_summary(summary: Any, out: Report, report: Path | None) -> None:
    rows = [
        ("items read", summary.items),
        ("new instances", summary.new),
        ("updated", summary.updated),
        ("unchanged", summary.unchanged),
        ("duplicates (skipped)", summary.duplicates),
        ("skipped (not instances)", summary.skipped),
        ("rejected", summary.rejected),
        ("quarantined (burned-in text?)", summary.quarantined),
        ("conflicts", summary.conflicts),
        ("new studies", summary.new_studies),
        ("new series", summary.new_series),
        ("new donors", summary.new_donors),
        ("instances without PatientID", summary.without_patient_id),
        ("text values with NUL bytes (dropped)", summary.nul_bytes_stripped),
        ("ages (AS) turned into years", summary.ages_converted),
        ("ages not understood (not stored)", summary.ages_unreadable),
    ]
    table = summary_table("Ingest summary", rows, always=("new instances", "rejected"))
    for flag, count in sorted(summary.body_part.items()):
        table.add_row(f"new series, body part {flag}", f"{count:,}")
    console.print(table)
    if summary.new == 0 and summary.updated == 0:
        console.print("Nothing new: the database already holds these instances.")
    out.print_listed()
