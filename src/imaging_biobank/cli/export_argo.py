"""``imaging-biobank export argo``: the ICGC-ARGO clinical submission and its coverage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from imaging_biobank.cli.common import (
    EXIT_OK,
    EXIT_REJECTED,
    DbOption,
    JsonOption,
    console,
    err_console,
    fail,
    open_database,
    plain,
)
from imaging_biobank.cli.export import CollectionsOption, export_app

if TYPE_CHECKING:
    from imaging_biobank.export.argo import ArgoExport
    from imaging_biobank.export.argo_validate import ValidationReport

__all__ = ["export_app", "export_argo_command"]

SHOWN_ISSUES = 25


def _issues_table(report: ValidationReport) -> Table:
    table = Table(title=f"Validation: {len(report.errors)} error(s)", title_justify="left")
    for column in ("file", "row", "field", "value", "rule", "why"):
        table.add_column(column, overflow="fold")
    for issue in report.errors[:SHOWN_ISSUES]:
        table.add_row(
            plain(issue.file),
            plain(issue.row),
            plain(issue.field),
            plain(issue.value),
            plain(issue.rule),
            plain(issue.message),
        )
    return table


def _print_export(result: ArgoExport) -> None:
    files = Table(title=f"ARGO files in {result.out_dir}", title_justify="left")
    files.add_column("schema")
    files.add_column("rows", justify="right")
    for name, path in result.files.items():
        files.add_row(plain(path.name), plain(len(result.tables[name])))
    console.print(files)

    mapped = sum(e.mapped for e in result.coverage)
    table = Table(
        title=(
            f"Coverage: {mapped} of {len(result.coverage)} variables mapped"
            f" ({result.coverage_percent:.1f}%)"
        ),
        title_justify="left",
    )
    for column in ("variable", "mapped to", "or why not"):
        table.add_column(column, overflow="fold")
    for entry in result.coverage:
        targets = ", ".join(entry.targets)
        table.add_row(
            plain(entry.source),
            plain(targets) if entry.mapped else plain("-"),
            plain("" if entry.mapped else entry.note),
        )
    console.print(table)

    kinds: dict[str, int] = {}
    for finding in result.findings:
        kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
    findings = Table(title="Findings (report.findings.tsv)", title_justify="left")
    findings.add_column("kind")
    findings.add_column("count", justify="right")
    findings.add_column("example", overflow="fold")
    for kind, count in kinds.items():
        example = next(f for f in result.findings if f.kind == kind)
        findings.add_row(plain(kind), plain(count), plain(f"{example.source}: {example.message}"))
    console.print(findings)

    if result.empty:
        left_out = sum(f.kind == "not registered" for f in result.findings)
        console.print(
            "Nothing to submit: no donor of the exported collections is registered with a"
            f" sample ({left_out} left out: report.findings.tsv); no TSV was written."
        )
        return
    if result.validation.errors:
        console.print(_issues_table(result.validation))
    unchecked = len(result.validation.unchecked)
    checkers = ", ".join(f"{k}: {v}" for k, v in sorted(result.validation.script_checks.items()))
    console.print(
        f"Dictionary: {result.dictionary.label}. Conditional rules checked ({checkers});"
        f" {unchecked} could not be checked."
    )
    verdict = "[green]validates[/]" if result.valid else "[red]does not validate[/]"
    console.print(f"The submission {verdict}; reports: {result.out_dir}/report.*")


@export_app.command("argo")
def export_argo_command(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder for the TSV files and reports.", show_default=False)
    ],
    dictionary: Annotated[
        Path | None,
        typer.Option(
            "--dictionary",
            envvar="IMAGING_BIOBANK_ARGO_DICTIONARY",
            help=(
                "The ARGO dictionary: the argo-dictionary folder (schemas/, references/) or"
                " its compiled JSON. Not shipped (AGPL-3.0)."
            ),
            show_default=False,
        ),
    ] = None,
    collection: CollectionsOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    program_id: Annotated[
        str | None,
        typer.Option(
            "--program-id", help="ARGO program id. Default: the biobank acronym and country."
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="Your own mapping CSV (the shipped one's columns)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Only validate the TSVs already in OUT_DIR (after editing them)."
        ),
    ] = False,
    no_javascript: Annotated[
        bool,
        typer.Option(
            "--no-javascript",
            help="Do not run the dictionary's JavaScript rules; use our reading of them.",
        ),
    ] = False,
) -> None:
    """Write the ICGC-ARGO clinical submission (one TSV per schema) and its coverage report.

    Donors appear by pseudonym, samples by their biobank ids. The TSVs are validated
    against the dictionary (types, code lists, regexes, ranges, conditional rules, links
    between files); they are written even when they do not validate (a draft), and the exit
    code says whether they do (0 yes, 1 no, 2 usage error). When there is nothing to submit
    (no donor registered with a sample) no TSV is written and the exit code is 1 if donors
    were left out for that (the findings list them), else 0. report.coverage.tsv lists each
    e-form field and model attribute, mapped or why not; report.findings.tsv what could not
    be carried over (infants under one year, INRG stage, MYCN, ALK, ...).

    Example: [bold]imaging-biobank export argo argo/ --dictionary ../argo-dictionary[/]
    """
    from imaging_biobank.db.lookup import CollectionLookupError
    from imaging_biobank.export.argo import check_submission, export_argo
    from imaging_biobank.export.argo_dictionary import DictionaryError, load_dictionary
    from imaging_biobank.export.argo_mapping import MappingError, load_mapping

    if dictionary is None:
        fail(
            "give the ARGO dictionary with --dictionary PATH (or $IMAGING_BIOBANK_ARGO_DICTIONARY):"
            " the argo-dictionary folder or its compiled JSON; it is AGPL-3.0 and not shipped"
        )
    try:
        argo = load_dictionary(dictionary)
        chosen = load_mapping(mapping) if mapping else None
    except (DictionaryError, MappingError) as error:
        fail(str(error))
    if check:
        if not out_dir.is_dir():
            fail(f"{out_dir}: no such folder to check")
        report = check_submission(out_dir, argo, use_javascript=not no_javascript)
        if as_json:
            payload = {"valid": report.valid, "issues": [i.as_dict() for i in report.issues]}
            console.print_json(json.dumps(payload))
        else:
            if report.errors:
                console.print(_issues_table(report))
            verdict = "[green]validate[/]" if report.valid else "[red]do not validate[/]"
            console.print(f"The TSVs in {out_dir} {verdict} ({len(report.errors)} error(s)).")
        raise typer.Exit(EXIT_OK if report.valid else EXIT_REJECTED)
    engine = open_database(db)
    try:
        with err_console.status("writing and validating the ARGO submission"):
            result = export_argo(
                engine,
                out_dir,
                argo,
                collections=collection or (),
                program_id=program_id,
                mapping=chosen,
                use_javascript=not no_javascript,
            )
    except CollectionLookupError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write to {out_dir}: {error}")
    finally:
        engine.dispose()
    if as_json:
        console.print_json((out_dir / "report.json").read_text(encoding="utf-8"))
    else:
        _print_export(result)
    raise typer.Exit(EXIT_OK if result.valid and not result.left_out_unsubmitted else EXIT_REJECTED)
