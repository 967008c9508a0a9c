"""The ``check`` command: data-quality rules over the database."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

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

if TYPE_CHECKING:
    from imaging_biobank.quality import CheckReport, LoadedRule

SEVERITIES = ("error", "warning", "info")
STYLE = {"error": "bold red", "warning": "yellow", "info": "blue"}
SHOWN_PER_RULE = 20  # findings of one rule listed on screen; --json and --html list all


def _counted(count: int, severity: str) -> str:
    plural = {"error": "errors", "warning": "warnings", "info": "info"}
    return f"{count} {severity if count == 1 else plural[severity]}"


@app.command()
def check(
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules",
            metavar="FILE",
            help="A YAML rules file (repeatable): adds rules, or overrides default ones by id.",
            show_default=False,
        ),
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            "-c",
            metavar="ID",
            help="Check one collection only: its id, or its short name (NB_IMAGING).",
            show_default=False,
        ),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on",
            metavar="SEVERITY",
            help="Exit 1 when a finding is at this severity or worse: error, warning, info.",
        ),
    ] = "error",
    no_defaults: Annotated[
        bool,
        typer.Option("--no-defaults", help="Run only the rules of the --rules files."),
    ] = False,
    list_rules: Annotated[
        bool,
        typer.Option("--list-rules", help="Show the rules that would run, and stop."),
    ] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write the findings as one self-contained HTML page.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the data against quality rules: linkage, acquisition, completeness.

    The default rules (shipped with the package) find studies whose series belong to two
    donors, studies left empty by a series split across studies, instance files changed
    since ingest, series not ingested through a de-identification run, CT slices thicker
    than 5 mm, mixed CT kernel families, series without body part, and more
    ([bold]--list-rules[/]). A [bold]--rules[/] file adds rules or overrides a default one
    by id, field by field. Each finding names its rule, the object (UID, donor pseudonym,
    collection) and the actual value. Nothing is written to the database.

    Exit code: 0 when no finding is at the [bold]--fail-on[/] severity (default error) or
    worse, 1 when one is, 2 on a usage error (a bad rules file: its line and what is wrong).

    Example: [bold]imaging-biobank check --rules site.yaml -c NB_IMAGING --html check.html[/]
    """
    from imaging_biobank.quality import RulesError, load_rules

    if fail_on not in SEVERITIES:
        fail(f"--fail-on must be one of {', '.join(SEVERITIES)}, not {fail_on!r}")
    if as_json and html is not None:
        fail("choose one of --json or --html FILE")
    if no_defaults and not rules:
        fail("--no-defaults needs at least one --rules FILE")
    try:
        loaded = load_rules(rules or [], defaults=not no_defaults)
    except RulesError as error:
        for problem in error.problems:
            err_console.print(plain(str(problem)), highlight=False, soft_wrap=True)
        count = len(error.problems)
        err_console.print(
            f"[bold red]rules refused[/] ({count} problem{'s' if count != 1 else ''});"
            " nothing was checked."
        )
        raise typer.Exit(EXIT_USAGE) from None
    if list_rules:
        _print_rules(loaded)
        return
    report, database = _run(loaded, collection, db, quiet=as_json)
    if as_json:
        from imaging_biobank.quality import report_json

        print(json.dumps(report_json(report, fail_on, database), indent=2, ensure_ascii=False))
    elif html is not None:
        from imaging_biobank.quality import report_html

        try:
            html.write_text(report_html(report, fail_on, database), encoding="utf-8")
        except OSError as error:
            fail(f"cannot write {html}: {error.strerror}")
        _print_summary(report, fail_on)
        console.print(plain(f"Report: {html}"))
    else:
        _print_findings(report)
        _print_summary(report, fail_on)
    if report.failing(fail_on):
        raise typer.Exit(EXIT_REJECTED)


def _run(
    loaded: list[LoadedRule], collection: str | None, db: str | None, quiet: bool
) -> tuple[CheckReport, str]:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from imaging_biobank.db.engine import display_url
    from imaging_biobank.db.lookup import CollectionLookupError, find_collection
    from imaging_biobank.quality import Target, run_checks

    engine = open_database(db)
    with engine.connect() as conn:
        target = None
        if collection is not None:
            try:
                found = find_collection(conn, collection)
            except CollectionLookupError as error:
                fail(str(error))
            target = Target(found.id, found.identifier, found.kind)
        columns = (SpinnerColumn(), TextColumn("check {task.description}"))
        with Progress(*columns, console=err_console, transient=True, disable=quiet) as bar:
            task = bar.add_task("", total=None)
            report = run_checks(
                conn, loaded, target, lambda rule: bar.update(task, description=rule)
            )
    return report, display_url(engine.url)


def _short(collection: str | None) -> str:
    """Collection ids by their short names (the part after ``:collection:``)."""
    if not collection:
        return ""
    return ", ".join(part.split(":collection:")[-1] for part in collection.split(", "))


def _print_findings(report: CheckReport) -> None:
    """One table per severity, most severe first; long lists cut per rule."""
    for severity in SEVERITIES:
        found = [f for f in report.findings if f.severity == severity]
        if not found:
            continue
        table = Table(
            "rule",
            "collection",
            "object",
            "reason",
            title=_counted(len(found), severity),
            title_style=STYLE[severity],
            show_lines=True,
        )
        table.columns[2].overflow = "fold"
        shown: Counter[str] = Counter()
        for f in found:
            shown[f.rule] += 1
            if shown[f.rule] <= SHOWN_PER_RULE:
                table.add_row(
                    plain(f.rule),
                    plain(_short(f.collection)),
                    plain(f"{f.scope} {f.object}"),
                    plain(f.reason),
                )
        for rule, count in shown.items():
            if count > SHOWN_PER_RULE:
                table.add_row(
                    plain(rule),
                    "",
                    "",
                    plain(f"... and {count - SHOWN_PER_RULE} more (--json or --html lists all)"),
                )
        console.print(table)


def _print_summary(report: CheckReport, fail_on: str) -> None:
    counts = report.counts()
    if not report.findings:
        console.print(f"No findings: {len(report.rules)} rules checked.")
        return
    shown = ", ".join(f"[{STYLE[s]}]{_counted(counts[s], s)}[/]" for s in SEVERITIES if counts[s])
    verdict = "[bold red]failed[/]" if report.failing(fail_on) else "passed"
    console.print(
        f"{shown} from {len(report.rules)} rules: {verdict} (failing at {fail_on} or worse)."
    )


def _parameter(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_parameter(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(map(_parameter, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _print_rules(loaded: list[LoadedRule]) -> None:
    """One block per rule: id, severity, scope, check; title; parameters; source."""
    from rich.text import Text

    for item in loaded:
        r = item.rule
        head = Text()
        head.append(r.id, style="bold")
        head.append(f"  {r.severity}", style=STYLE[r.severity])
        head.append(f"  {r.scope}  {r.check}")
        console.print(head)
        console.print(plain(f"  {r.title}"), highlight=False)
        parameters = "  ".join(f"{k}: {_parameter(v)}" for k, v in r.parameters().items())
        if parameters:
            console.print(plain(f"  {parameters}"), highlight=False)
        console.print(Text(f"  {item.source}", style="dim"))
    console.print(f"{len(loaded)} rules.")
