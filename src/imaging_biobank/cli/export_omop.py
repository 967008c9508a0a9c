"""``imaging-biobank export omop``."""

from __future__ import annotations

from typing import Annotated

import typer

from imaging_biobank.cli.common import DbOption, err_console, fail, open_database
from imaging_biobank.cli.export import CollectionsOption, export_app, print_written


@export_app.command("omop")
def omop(
    url: Annotated[
        str,
        typer.Argument(
            help="The OMOP database: sqlite:///omop.db, postgresql://user@host/omop or"
            " duckdb:///omop.duckdb (needs the duckdb extra).",
            show_default=False,
        ),
    ],
    collection: CollectionsOption = None,
    incomplete: Annotated[
        str,
        typer.Option(
            "--incomplete",
            help="What to do with a person without a year of birth or a row without a date"
            " (the CDM requires both): placeholder (year 1900; a row dated by its person's"
            " earliest date, 1900-01-01 only for a person with no date at all; counted) or"
            " drop (the CDM's ETL convention: leave them out).",
        ),
    ] = "placeholder",
    db: DbOption = None,
) -> None:
    """Export to OMOP CDM 5.4 with the Oncology and Medical Imaging (MI-CDM) extensions.

    The tables are created in the database at URL from the OMOP field-level specifications,
    with their NOT NULL, primary and foreign key constraints on, and every row must pass
    them. One PERSON per donor (its pseudonym as person_source_value), one
    PROCEDURE_OCCURRENCE per DICOM study, one IMAGE_OCCURRENCE per series, radiomic
    features as MEASUREMENT + IMAGE_FEATURE, diagnoses as CONDITION_OCCURRENCE with their
    EPISODE, e-form answers and molecular results as MEASUREMENT/OBSERVATION (diagnostic
    modifiers of the diagnosis), samples as SPECIMEN; e-form text answers (free text,
    e-mail, phone) are not exported. Concepts come from the shipped subset; a code without
    one gets 0 and its source value. Exporting again into the same database replaces the
    previous export; OMOP data another program wrote there is refused.

    Example: [bold]imaging-biobank export omop sqlite:///omop.db -c NB_IMAGING -c NB_TISSUE[/]
    """
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from imaging_biobank.db.lookup import CollectionLookupError
    from imaging_biobank.export.omop import OmopExportError, export_omop
    from imaging_biobank.export.omop_schema import OmopSchemaError

    if incomplete not in ("placeholder", "drop"):
        fail(f"--incomplete is placeholder or drop, not {incomplete!r}")
    engine = open_database(db)
    try:
        with err_console.status("writing the OMOP CDM tables"):
            result = export_omop(
                engine,
                url,
                collection or (),
                incomplete="drop" if incomplete == "drop" else "placeholder",
            )
    except (CollectionLookupError, OmopExportError, OmopSchemaError) as error:
        fail(str(error))
    except ArgumentError as error:
        fail(f"{url!r} is not a database URL ({error})")
    except DBAPIError as error:
        fail(f"cannot write the OMOP database: {error.orig}")
    verb = "replaced the previous export in" if result.replaced else "written to"
    print_written(f"OMOP CDM 5.4 {verb} {result.url}", result.counts, result.notes)


__all__ = ["export_app", "omop", "print_written"]
