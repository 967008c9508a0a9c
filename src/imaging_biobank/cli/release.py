"""``imaging-biobank release``: freeze a cohort as a versioned, citable release; list, show,
export, compare and verify releases."""

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
    JsonQueryOption,
    console,
    fail,
    open_database,
    plain,
    read_query,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

release_app = typer.Typer(
    name="release",
    help=(
        "Cohort releases: a query's series and instances frozen with their content hashes,"
        " as a versioned release with a citable identifier (name/vN-<12 hex of its hash>)."
        "\n\nExample: [bold]imaging-biobank release create nb-pet"
        ' "modality = PT and diagnosis in C74" --purpose methods_development[/]'
    ),
    no_args_is_help=True,
)
app.add_typer(release_app, name="release")

IdArgument = Annotated[
    str,
    typer.Argument(
        help="The release: its identifier (nb-pet/v2-1f0c9a33b7de), name/vN, or a name for"
        " its latest version.",
        show_default=False,
    ),
]
_LISTED = 20  # lines of UIDs shown per list in the tables (all of them with --json)


def _user() -> str:
    """The operating-system user running the command (who froze a release by default)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _run(db: str | None, action: Any) -> Any:
    """``action(conn)`` on the database, with the errors a user can cause turned into a
    message and an exit code (2 for usage, 1 for a role that may not do it)."""
    from imaging_biobank.query.keys import QueryKeyError
    from imaging_biobank.query.release import ReleaseError

    engine = open_database(db)
    try:
        with engine.connect() as conn:
            return action(conn)
    except (ReleaseError, QueryKeyError) as error:
        fail(str(error))
    except PermissionError as error:
        fail(str(error), EXIT_REJECTED)
    finally:
        engine.dispose()


@release_app.command("create")
def create(
    name: Annotated[
        str,
        typer.Argument(help="The release's name (letters, digits, . _ -).", show_default=False),
    ],
    text: Annotated[
        str | None,
        typer.Argument(
            help='The query, e.g. "modality = CT and diagnosis in C74".',
            metavar="QUERY",
            show_default=False,
        ),
    ] = None,
    json_query: JsonQueryOption = None,
    purpose: Annotated[
        list[str] | None,
        typer.Option(
            "--purpose",
            help="What the release is for (methods_development, commercial, genetic, ...):"
            " donors whose consent rules it out are left out. None given: no flags declared.",
        ),
    ] = None,
    role: Annotated[
        str, typer.Option("--role", help="data_manager or admin (researchers cannot freeze).")
    ] = "data_manager",
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who freezes it. Default: the operating-system user."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Freeze the series and instances a query matches as the next version of release NAME.

    The release records the query, the purpose, who and when, the software version, and
    every instance with its content hash, size and location. Its identifier
    (name/vN-<first 12 hex of the manifest hash>) is what you cite; freezing the same query
    later gives the next version, and `release diff` shows what changed.

    Example: [bold]imaging-biobank release create nb-pet "modality = PT and diagnosis in
    C74" --purpose methods_development --by "J. Doe"[/]
    """
    from imaging_biobank.query.release import Release, freeze

    tree, declared = read_query(text, json_query, purpose)

    def action(conn: Connection) -> Release:
        return freeze(conn, tree, name=name, created_by=by or _user(), role=role, purpose=declared)

    release: Release = _run(db, action)
    if as_json:
        print(json.dumps(release.as_json(), indent=2))
        return
    console.print(plain(f"Released {release.identifier}"))
    _print_metadata(release.as_json())


def _print_metadata(data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    counts = data["counts"]
    for label, value in (
        ("identifier", data["identifier"]),
        ("query", data["query"]),
        ("purpose", ", ".join(data["purpose"]) or "(no flags)"),
        ("created", f"{data['created_at']} by {data['created_by']}"),
        ("software", f"imaging-biobank {data['software_version']}"),
        ("manifest sha256", data["manifest_sha256"]),
        (
            "content",
            f"{counts['donors']} donors, {counts['studies']} studies,"
            f" {counts['series']} series, {counts['instances']} instances",
        ),
        ("previous", data["previous"] or "(first version)"),
    ):
        table.add_row(plain(label), plain(value))
    console.print(table)


@release_app.command("list")
def list_command(
    name: Annotated[
        str | None, typer.Option("--name", help="Only the versions of this release.")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the releases, by name and version.

    Example: [bold]imaging-biobank release list --name nb-pet[/]
    """
    from imaging_biobank.query.release import Release, list_releases

    def action(conn: Connection) -> list[Release]:
        return list_releases(conn, name)

    releases: list[Release] = _run(db, action)
    if as_json:
        print(json.dumps([r.as_json() for r in releases], indent=2))
        return
    from rich.table import Table

    table = Table()
    table.add_column("identifier", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("by")
    table.add_column("series")
    table.add_column("instances", no_wrap=True)
    table.add_column("query", overflow="fold")
    for r in releases:
        table.add_row(
            plain(r.identifier),
            plain(r.created_at.strftime("%Y-%m-%d")),
            plain(r.created_by),
            str(r.series),
            str(r.instances),
            plain(r.query_text),
        )
    console.print(table if releases else plain("No releases yet (imaging-biobank release create)."))


@release_app.command("show")
def show(
    identifier: IdArgument,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a release: its metadata and its series (with --json, also every instance).

    Example: [bold]imaging-biobank release show nb-pet/v1 --json[/]
    """
    from imaging_biobank.query.release import get_release

    def action(conn: Connection) -> dict[str, Any]:
        return get_release(conn, identifier, instances=as_json)

    data: dict[str, Any] = _run(db, action)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    from rich.table import Table

    _print_metadata(data)
    table = Table()
    table.add_column("donor", max_width=12, no_wrap=True)
    for label in ("collection", "modality", "body part"):
        table.add_column(label)
    table.add_column("series UID", overflow="fold")
    table.add_column("instances")
    for s in data["series"]:
        table.add_row(
            plain(s["donor"]),
            plain(s["collection"].rsplit(":", 1)[-1]),
            plain(s["modality"]),
            plain(s["body_part"]),
            plain(s["series_instance_uid"]),
            str(s["instance_count"]),
        )
    console.print(table)


@release_app.command("manifest")
def manifest_command(
    identifier: IdArgument,
    format: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    db: DbOption = None,
) -> None:
    """The release's manifest, one row per instance: donor pseudonym, collection, study,
    series and SOP UIDs, content hash, size and location, to fetch or rebuild the set.

    Example: [bold]imaging-biobank release manifest nb-pet/v1 --format csv -o nb-pet-v1.csv[/]
    """
    from imaging_biobank.query.release import export_manifest

    if format not in ("csv", "json"):
        fail(f"--format {format!r}: use csv or json")

    def action(conn: Connection) -> str:
        return export_manifest(conn, identifier, format)

    text: str = _run(db, action)
    if output is None:
        print(text, end="")
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        fail(f"cannot write {output}: {error.strerror or error}")
    rows = text.count("\n") - 1 if format == "csv" else len(json.loads(text)["instances"])
    console.print(plain(f"Wrote the manifest of {rows} instances to {output}"))


@release_app.command("diff")
def diff_command(
    a: Annotated[str, typer.Argument(help="The earlier release.", show_default=False)],
    b: Annotated[str, typer.Argument(help="The later release.", show_default=False)],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """What changed between two releases: series and instances added, removed, and changed
    (same SOP Instance UID, another content hash or series).

    Example: [bold]imaging-biobank release diff nb-pet/v1 nb-pet/v2[/]
    """
    from imaging_biobank.query.release import diff

    def action(conn: Connection) -> dict[str, Any]:
        return diff(conn, a, b)

    data: dict[str, Any] = _run(db, action)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    from rich.table import Table

    console.print(plain(f"{data['from']} -> {data['to']}"))
    if data["same_content"]:
        console.print(plain("Same content (equal manifest hashes): nothing changed."))
        return
    counts = data["counts"]
    table = Table("", "added", "removed", "changed")
    for level in ("series", "instances"):
        table.add_row(
            level, *(str(counts[f"{level}_{what}"]) for what in ("added", "removed", "changed"))
        )
    console.print(table)
    for what in ("added", "removed", "changed"):
        uids = data["series"][what]
        if uids:
            console.print(plain(f"series {what}:"))
            for uid in uids[:_LISTED]:
                console.print(plain(f"  {uid}"))
            if len(uids) > _LISTED:
                console.print(plain(f"  ... and {len(uids) - _LISTED} more (--json lists all)"))


@release_app.command("verify")
def verify_command(
    identifier: IdArgument,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check that a release can still be rebuilt exactly: the stored release still gives its
    manifest hash; every instance is still in the database, in its series, with the same
    content hash; local files are still there with the same size; and no donor's consent
    now rules out the release's purpose. Exit 1 when something no longer matches.

    Example: [bold]imaging-biobank release verify nb-pet/v1[/]
    """
    from imaging_biobank.query.release import verify

    def action(conn: Connection) -> dict[str, Any]:
        return verify(conn, identifier)

    report: dict[str, Any] = _run(db, action)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_verify(report)
    if not report["ok"]:
        raise typer.Exit(EXIT_REJECTED)


def _print_verify(report: dict[str, Any]) -> None:
    from rich.table import Table

    release = report["release"]
    if report["ok"]:
        console.print(plain(f"{release}: all {report['instances']} instances match."))
        if report["files_not_checked"]:
            remote = report["files_not_checked"]
            console.print(plain(f"({remote} remote locations were not fetched)"))
        return
    if not report["manifest_intact"]:
        console.print(
            plain(
                f"{release}: the stored release no longer gives its manifest hash"
                f" ({report['recomputed_sha256']}, not {report['manifest_sha256']})"
            )
        )
    problems = {k: v for k, v in report["counts"].items() if v}
    if problems:
        summary = ", ".join(f"{k} {v}" for k, v in problems.items())
        console.print(plain(f"{release}: of {report['instances']} instances, {summary}"))
        table = Table()
        table.add_column("SOP Instance UID", overflow="fold")
        table.add_column("problem", no_wrap=True)
        table.add_column("expected", overflow="fold")
        table.add_column("found", overflow="fold")
        for m in report["mismatches"][:_LISTED]:
            table.add_row(
                plain(m["sop_instance_uid"]),
                plain(m["problem"]),
                plain(m["expected"]),
                plain(m["found"]),
            )
        console.print(table)
        if len(report["mismatches"]) > _LISTED:
            more = len(report["mismatches"]) - _LISTED
            console.print(plain(f"... and {more} more (--json lists all)"))
    for donor in report["donors"]:
        console.print(plain(f"donor {donor['donor']}: {donor.get('detail', donor['problem'])}"))
