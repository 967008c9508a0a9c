"""``imaging-biobank deid``: de-identified copies (PS3.15 Annex E), their independent check,
and the re-identification table for data managers.

``deid IN... OUT`` is short for ``deid run IN... OUT``; ``deid verify OUT --against IN`` and
``deid lookup TABLE --reid-key KEY`` are the other two.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from imaging_biobank.cli import app
from imaging_biobank.cli.common import EXIT_REJECTED, JsonOption, console, err_console, fail, plain
from imaging_biobank.cli.runs import (
    KeyFileOption,
    RateColumn,
    Report,
    load_pseudonymiser,
    summary_table,
)

if TYPE_CHECKING:
    from imaging_biobank.deid.options import DeidOptions
    from imaging_biobank.deid.reid import ReidTable
    from imaging_biobank.deid.run import DeidSummary, Outcome


class _RunByDefault(TyperGroup):
    """A group whose first argument, when it is not a command name, starts ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


deid_app = typer.Typer(
    cls=_RunByDefault,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help=(
        "De-identify DICOM (PS3.15 Basic Application Level Confidentiality Profile) with"
        " keyed donor pseudonyms: [bold]deid IN... OUT[/] (short for [bold]deid run[/]),"
        " then [bold]deid verify OUT --against IN[/]."
    ),
)
app.add_typer(deid_app, name="deid")


OptionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-o",
        help="A PS3.15 option (repeatable or comma-separated): modified-dates, full-dates,"
        " patient-characteristics, device-identity, institution-identity, uids, safe-private,"
        " clean-descriptors, clean-structured-content, clean-graphics. `deid options` says"
        " what each keeps.",
        show_default=False,
    ),
]
UidRootOption = Annotated[
    str,
    typer.Option(
        "--uid-root", help="Root of the replacement UIDs (2.25: UUID-derived, no registration)."
    ),
]
AcceptBurnedInOption = Annotated[
    bool,
    typer.Option(
        "--accept-burned-in",
        help="A data manager's decision: export files that have, or may have, text burned"
        " into the pixels (Burned In Annotation YES, or missing in US, SC, OT, XC, ES)."
        " Without it they are quarantined and listed.",
    ),
]


def deid_options(names: list[str] | None, uid_root: str, accept_burned_in: bool) -> DeidOptions:
    """The options as typed, or a usage error."""
    from imaging_biobank.deid.options import (
        DeidOptions,
        OptionError,
        check_uid_root,
        parse_options,
    )

    try:
        return DeidOptions(parse_options(names or []), check_uid_root(uid_root), accept_burned_in)
    except OptionError as error:
        fail(str(error))


@deid_app.command("run")
def run(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="IN... OUT: files, folders (recursive), .zip archives; then the output"
            " folder (made if missing).",
            show_default=False,
        ),
    ],
    option: OptionOption = None,
    key_file: KeyFileOption = None,
    layout: Annotated[
        str,
        typer.Option(
            help="clean: <donor>/<study>/<series>/<instance>.dcm (new UIDs, no source names);"
            " keep: the input's folders and file names."
        ),
    ] = "clean",
    uid_root: UidRootOption = "2.25",
    accept_burned_in: AcceptBurnedInOption = False,
    workers: Annotated[
        int, typer.Option(help="Processes (default: all cores; 0 works in this one).")
    ] = os.cpu_count() or 1,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="A JSON-lines report (path, status, reason) of every input not written."
            " It names input files: keep it outside OUT.",
            show_default=False,
        ),
    ] = None,
    reid_table: Annotated[
        Path | None,
        typer.Option(
            "--reid-table",
            help="Append who each donor pseudonym stands for (PatientID, name, birth date,"
            " StudyInstanceUID, accession number), encrypted with --reid-key, to this file"
            " outside OUT: for authorised data managers.",
            show_default=False,
        ),
    ] = None,
    reid_key: Annotated[
        Path | None,
        typer.Option(
            "--reid-key",
            help="The table's own key (`imaging-biobank keygen --reid PATH`).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write de-identified copies of DICOM files (the default: deid IN... OUT).

    PS3.15 Annex E Table E.1-1, every action at every nesting level, private attributes
    removed, UIDs replaced under the key so references stay consistent, PatientID and
    PatientName replaced by the donor pseudonym (the same one `ingest` and the sample
    imports give the same id under the same key).

    Running again writes the same bytes (unchanged files are left alone). Files that cannot
    be read, and files that may show burned-in text, are listed and not written; the exit
    code is then 1. An audit record (when, who, options, counts, key fingerprint) is added
    to OUT/.imaging-biobank/deid-audit.jsonl.

    Examples: [bold]imaging-biobank deid /data/dicom /export/deid --key-file KEY[/],
    [bold]imaging-biobank deid IN OUT -o modified-dates -o patient-characteristics[/]
    """
    from imaging_biobank.deid.run import LAYOUTS

    if len(paths) < 2:
        fail("give IN... OUT: at least one input and the output folder")
    *inputs, out = paths
    if layout not in LAYOUTS:
        fail(f"--layout must be one of {', '.join(LAYOUTS)}")
    if workers < 0:
        fail("--workers must be >= 0")
    options = deid_options(option, uid_root, accept_burned_in)
    _check_places(inputs, out, report)
    if (reid_table is None) != (reid_key is None):
        fail("--reid-table and --reid-key go together")
    pseudonymiser = load_pseudonymiser(key_file)
    table = _open_reid(reid_table, reid_key, pseudonymiser.key, out)
    started = dt.datetime.now(dt.UTC)
    out.mkdir(parents=True, exist_ok=True)
    listed = Report(report)
    try:
        summary = _deidentify(
            inputs, out, pseudonymiser.key, options, layout, workers, listed, table, as_json
        )
    except KeyboardInterrupt:
        err_console.print("Interrupted: the files written are whole; run again to finish.")
        raise typer.Exit(130) from None
    finally:
        listed.close()
        if table is not None:
            table.close()
    audit = _audit(out, started, options, pseudonymiser.fingerprint, summary)
    if as_json:
        print(json.dumps({"output": str(out), **audit}, indent=2))
    else:
        _print_summary(summary, out, table)
        listed.print_listed()
    if summary.rejected or summary.quarantined:
        raise typer.Exit(EXIT_REJECTED)


def _check_places(inputs: list[Path], out: Path, report: Path | None) -> None:
    """OUT is a folder apart from every input; the report is not inside OUT."""
    if out.exists() and not out.is_dir():
        fail(f"the output {out} is a file; give a folder")
    target = out.resolve()
    for path in inputs:
        if not path.exists():
            fail(f"no such file or folder: {path}")
        source = path.resolve()
        if target == source or target.is_relative_to(source) or source.is_relative_to(target):
            fail(f"the output {out} and the input {path} overlap; write somewhere else")
    if report is not None and report.resolve().is_relative_to(target):
        fail(f"the report {report} names input files: keep it outside the output {out}")


def _open_reid(
    path: Path | None, key: Path | None, pseudonym_key: bytes, out: Path
) -> ReidTable | None:
    if path is None or key is None:
        return None
    from imaging_biobank.deid.reid import ReidError, ReidTable

    try:
        return ReidTable(path, key, pseudonym_key, out)
    except ReidError as error:
        fail(str(error))


def _deidentify(
    inputs: list[Path],
    out: Path,
    key: bytes,
    options: DeidOptions,
    layout: str,
    workers: int,
    listed: Report,
    table: ReidTable | None,
    as_json: bool,
) -> DeidSummary:
    from imaging_biobank import __version__
    from imaging_biobank.deid.run import Written, deidentify_tree
    from imaging_biobank.dicom.sources.folder import count_items, expand_paths

    columns = (
        TextColumn("deid"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=as_json, disable=as_json) as bar:
        task = bar.add_task("deid", total=count_items(inputs))

        def on_result(result: Outcome) -> None:
            bar.advance(task)
            if isinstance(result, Written):
                if table is not None and result.identity is not None:
                    identity = vars(result.identity)
                    table.add(result.donor, {**identity, "deid_study_uid": result.study})
                return
            status = type(result).__name__.lower()
            listed(status, result.location, result.reason)

        return deidentify_tree(
            expand_paths(inputs),
            out,
            key=key,
            options=options,
            version=__version__,
            layout="keep" if layout == "keep" else "clean",
            roots=tuple(os.fspath(p) for p in inputs),
            workers=workers,
            on_result=on_result,
            identities=table is not None,
        )


def _audit(
    out: Path, started: dt.datetime, options: DeidOptions, fingerprint: str, summary: Any
) -> dict[str, Any]:
    from imaging_biobank import __version__
    from imaging_biobank.deid.audit import AuditRecord, append_audit

    record = AuditRecord.of("deid", started, options, fingerprint, __version__, summary.counts())
    append_audit(out, record)
    return record.as_dict()


def _print_summary(summary: DeidSummary, out: Path, table: ReidTable | None) -> None:
    counts = summary.counts()
    labels = {
        "items": "items read",
        "written": "written",
        "unchanged": "unchanged (already there)",
        "quarantined": "quarantined (burned-in text?)",
        "rejected": "rejected",
        "skipped": "skipped (not instances)",
        "donors": "donors",
        "studies": "studies",
        "series": "series",
    }
    rows = [(label, counts[name]) for name, label in labels.items()]
    always = (labels["written"], labels["rejected"], labels["quarantined"])
    console.print(summary_table("De-identification summary", rows, always))
    console.print(plain(f"Output: {out} (audit record in {out}/.imaging-biobank/)"))
    if table is not None:
        console.print(plain(f"Re-identification table: {table.path} ({table.written} new lines)"))


@deid_app.command("verify")
def verify(
    output: Annotated[
        Path, typer.Argument(help="The de-identified output (file or folder).", show_default=False)
    ],
    against: Annotated[
        Path,
        typer.Option(
            "--against", help="The input it was made from (file or folder).", show_default=False
        ),
    ],
    limit: Annotated[int, typer.Option(help="Leaks listed on screen (all with --json).")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Check that no identifying value of the input occurs anywhere in the output.

    An independent check (pydicom and the PS3.15 table, no code shared with the
    de-identifier) for names, ids, UIDs, dates not shifted, table attributes, free text and
    private values: every element at every nesting level, private blocks and the raw
    header bytes.

    Each leak is listed with the output file, the tag path, the kind of value, where in the
    input it came from, and a masked hint (never the value). Exit code 1 on any leak or
    unreadable file, or when there is nothing to compare.

    Example: [bold]imaging-biobank deid verify /export/deid --against /data/dicom[/]
    """
    from imaging_biobank.deid.verify import verify as check

    for path in (output, against):
        if not path.exists():
            fail(f"no such file or folder: {path}")
    from imaging_biobank.dicom.sources.folder import count_items

    columns = (TextColumn("verify"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=as_json) as bar:
        task = bar.add_task("verify", total=count_items([against, output]))
        report = check(output, against, lambda: bar.advance(task))
    if as_json:
        print(json.dumps(_verify_dict(report), indent=2))
    else:
        _print_verify(report, limit)
    if not report.ok:
        raise typer.Exit(EXIT_REJECTED)


def _verify_dict(report: Any) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "inputs": report.inputs,
        "outputs": report.outputs,
        "values_checked": report.values_checked,
        "leaks": [vars(leak) for leak in report.leaks],
        "unreadable": [{"path": p, "reason": r} for p, r in report.unreadable],
        "skipped": report.skipped,
    }


def _print_verify(report: Any, limit: int) -> None:
    console.print(
        plain(
            f"Compared {report.values_checked:,} identifying values of {report.inputs:,} input"
            f" files with {report.outputs:,} output files."
        )
    )
    if report.leaks:
        err_console.print(f"[bold red]{len(report.leaks)} leaks[/] (output: where: kind hint):")
        for leak in report.leaks[:limit]:
            err_console.print(plain(f"  {leak}"), highlight=False)
        if len(report.leaks) > limit:
            err_console.print(f"  ... {len(report.leaks) - limit} more (--json lists all)")
    for path, reason in report.unreadable[:limit]:
        err_console.print(plain(f"unreadable: {path}: {reason}"), highlight=False)
    if not report.inputs or not report.outputs:
        err_console.print("[bold red]Nothing to compare[/]: no DICOM file in the input or output.")
    if report.ok:
        console.print("[bold green]No identifying value of the input found in the output.[/]")


@deid_app.command("lookup")
def lookup(
    table: Annotated[Path, typer.Argument(help="A re-identification table.", show_default=False)],
    reid_key: Annotated[
        Path, typer.Option("--reid-key", help="The table's key.", show_default=False)
    ],
    donor: Annotated[
        str | None,
        typer.Option("--donor", help="Only this donor pseudonym.", show_default=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Who donor pseudonyms stand for: for authorised data managers.

    Identifying data: printed only here, on request, and never stored in the database.

    Example: [bold]imaging-biobank deid lookup reid.table --reid-key reid.key --donor D[/]
    """
    from imaging_biobank.deid.reid import ReidError, read_table

    try:
        rows = [r for r in read_table(table, reid_key) if donor is None or r["donor"] == donor]
    except ReidError as error:
        fail(str(error))
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, sort_keys=True))
        return
    columns = (
        "donor",
        "patient_id",
        "patient_name",
        "birth_date",
        "study_uid",
        "accession_number",
        "deid_study_uid",
    )
    grid = Table(*columns, title=f"Re-identification table {table}")
    for row in rows:
        grid.add_row(*(plain(row.get(c, "")) for c in columns))
    console.print(grid)
    if donor is not None and not rows:
        fail(f"no line for donor {donor} in {table}", EXIT_REJECTED)


@deid_app.command("options")
def options() -> None:
    """The PS3.15 options `--option` takes, and what each keeps.

    Example: [bold]imaging-biobank deid options[/], then
    [bold]imaging-biobank deid IN OUT -o modified-dates,patient-characteristics[/]
    """
    from imaging_biobank.deid.options import OPTIONS

    grid = Table("option", "keeps", "CID 7050 code", title="De-identification options")
    for item in OPTIONS:
        grid.add_row(plain(item.name), plain(item.help), plain(item.code))
    console.print(grid)
