"""``imaging-biobank export fhir``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imaging_biobank.cli import common
from imaging_biobank.cli.export import CollectionsOption, export_app
from imaging_biobank.cli.runs import KeyFileOption

SHOWN = 20


def _listed(title: str, items: list[object]) -> None:
    """The first ``SHOWN`` of ``items`` under ``title``, and how many more there are."""
    common.err_console.print(title)
    for item in items[:SHOWN]:
        common.err_console.print(common.plain(f"  {item}"), highlight=False)
    if len(items) > SHOWN:
        common.err_console.print(f"  ... and {len(items) - SHOWN} more")


@export_app.command("fhir")
def export_fhir(
    out: Annotated[
        Path,
        typer.Argument(help="The folder to write the Bundles to (created).", show_default=False),
    ],
    collection: CollectionsOption = None,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="miabis: MIABIS on FHIR (BBMRI-ERIC); bbmri-de: the bbmri.de / GBA profiles.",
        ),
    ] = "miabis",
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="The FHIR base the e-forms' Questionnaire urls start with (default: that of"
            " `forms questionnaire`).",
            show_default=False,
        ),
    ] = None,
    key_file: KeyFileOption = None,
    db: common.DbOption = None,
) -> None:
    """FHIR R4 transaction Bundles, one per biobank (OUT/<biobank id>.json): Organizations
    and Groups for the biobank and its collections, Patients (pseudonym and birth year only),
    Conditions, Specimens, ImagingStudies, radiomic and clinical Observations; no free text.
    Every resource is validated (fhir.resources R4B) and its codes checked before it is
    written; a resource claims a profile only when it holds what the profile requires (else
    it is written without the claim, and noted); every reference resolves inside the Bundle.
    Same database, same bytes.

    With the key the database's pseudonyms were made with (--key-file or
    $IMAGING_BIOBANK_KEY_FILE), the Bundle carries the key's fingerprint, and `import fhir`
    with the same key keeps its pseudonyms; without it, an import pseudonymises them again.

    Exit 1 when something could not be exported (each one listed, the rest written).

    Example: [bold]imaging-biobank export fhir fhir/ --collection NB_IMAGING[/]
    """
    from imaging_biobank.config import Settings
    from imaging_biobank.db.lookup import CollectionLookupError
    from imaging_biobank.deid.pseudonym import KeyFileError, Pseudonymiser
    from imaging_biobank.export.fhir import PROFILES, KeyMismatchError
    from imaging_biobank.export.fhir import export_fhir as run

    if profile not in PROFILES:
        common.fail(f"--profile {profile!r}: allowed: {', '.join(PROFILES)}")
    key_path = key_file if key_file is not None else Settings.from_env().key_file
    fingerprint = None
    if key_path:
        try:
            fingerprint = Pseudonymiser.from_file(key_path).fingerprint
        except KeyFileError as error:
            common.fail(str(error))
    engine = common.open_database(db)
    options = {"base": base_url} if base_url else {}
    try:
        with common.console.status("writing FHIR Bundles"):
            result = run(
                engine,
                out,
                collection or (),
                profile=profile,
                key_fingerprint=fingerprint,
                **options,
            )
    except (CollectionLookupError, KeyMismatchError) as error:
        common.fail(str(error))
    except OSError as error:
        common.fail(f"cannot write to {out}: {error.strerror}")
    for written in result.files:
        common.console.print(common.plain(f"{written.biobank} → {written.path}"))
        table = Table("resource", "entries")
        for kind, count in sorted(written.counts.items()):
            table.add_row(kind, f"{count:,}")
        table.add_row("[bold]all[/]", f"[bold]{written.entries:,}[/]")
        common.console.print(table)
    if not result.files:
        common.console.print("Nothing to export: no collection is registered.")
    if fingerprint is None and result.files:
        common.err_console.print(
            "note: no key given: the Bundles do not say which key made their pseudonyms, so an"
            " import pseudonymises them again"
        )
    if result.notices:
        _listed(f"{len(result.notices)} notes (written):", list(result.notices))
    if result.problems:
        _listed(
            f"[bold red]{len(result.problems)} not exported[/] (left out):", list(result.problems)
        )
        raise typer.Exit(common.EXIT_REJECTED)
