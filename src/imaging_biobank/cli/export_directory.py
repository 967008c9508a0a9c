"""``imaging-biobank export directory``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imaging_biobank.cli.common import (
    EXIT_REJECTED,
    DbOption,
    err_console,
    fail,
    open_database,
    plain,
)
from imaging_biobank.cli.export import CollectionsOption, export_app, print_written

OutArgument = Annotated[
    Path,
    typer.Argument(
        help="OUT.xlsx: the EMX1 workbook; a folder or OUT.zip: the EMX2 CSV tables.",
        show_default=False,
    ),
]
FormOption = Annotated[
    str | None,
    typer.Option(
        "--form",
        help="emx1 (workbook) or emx2 (CSV tables). Default: from OUT (.xlsx: emx1).",
        show_default=False,
    ),
]


@export_app.command("directory")
def directory(
    out: OutArgument,
    form: FormOption = None,
    collection: CollectionsOption = None,
    db: DbOption = None,
) -> None:
    """Export to the BBMRI-ERIC Directory: EMX1 workbook or EMX2 tables with facts.

    OUT.xlsx writes the EMX1 import workbook (sheets eu_bbmri_eric_persons, _networks,
    _biobanks, _collections); a folder or OUT.zip writes the current Directory's EMX2 CSV
    tables (Persons, Networks, Biobanks, Collections, CollectionFacts); --form emx1|emx2
    says it explicitly and must agree with OUT. Codes are the Directory's ids; imaging
    fields come from the series; no donor, sample or DICOM UID is written. Every rule of
    the Directory (required attributes, lookup ids, id patterns, facts) is checked first:
    if one breaks, each is listed and nothing is written (exit 1).

    Examples: [bold]imaging-biobank export directory primage.xlsx[/] (EMX1), and
    [bold]imaging-biobank export directory eric/ --form emx2 -c NB_IMAGING[/] (EMX2).
    """
    from imaging_biobank.db.lookup import CollectionLookupError
    from imaging_biobank.export.directory import DirectoryUsageError, export_directory
    from imaging_biobank.export.directory_rules import DirectoryExportError

    engine = open_database(db)
    try:
        with engine.connect() as conn, err_console.status(f"writing the Directory export {out}"):
            result = export_directory(conn, out, collection or (), form=form)
    except (CollectionLookupError, DirectoryUsageError) as error:
        fail(str(error))
    except DirectoryExportError as error:
        for problem in error.problems:
            err_console.print(plain(str(problem)), highlight=False, soft_wrap=True)
        err_console.print(
            f"[bold red]{out}: refused[/] ({len(error.problems)} broken rule"
            f"{'s' if len(error.problems) != 1 else ''} of the Directory); nothing was written."
        )
        raise typer.Exit(EXIT_REJECTED) from None
    except OSError as error:
        fail(f"cannot write {out}: {error.strerror or error}")
    print_written(f"{out} ({result.form.upper()})", result.counts, result.notes)


__all__ = ["directory", "export_app"]
