"""``imaging-biobank export rdf``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imaging_biobank.cli.common import DbOption, console, err_console, fail, open_database, plain
from imaging_biobank.cli.export import CollectionsOption, export_app

BASE_HELP = (
    "The IRI the biobank's own IRIs start with (ending in /, # or :). Default"
    " urn:imaging-biobank: (stable, not resolvable); set it to a URL you serve to publish."
)


@export_app.command("rdf")
def rdf(
    out: Annotated[
        Path,
        typer.Argument(
            help="The file: .ttl (Turtle), .jsonld (JSON-LD) or .nt (N-Triples).",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="turtle, json-ld or nt. Default: from OUT's suffix.",
            show_default=False,
        ),
    ] = None,
    collection: CollectionsOption = None,
    base: Annotated[str, typer.Option("--base", help=BASE_HELP)] = "urn:imaging-biobank:",
    instances: Annotated[
        bool,
        typer.Option("--instances", help="Also every DICOM instance (SOP class, number, UIDs)."),
    ] = False,
    db: DbOption = None,
) -> None:
    """Export the catalogue and the imaging metadata as RDF (Turtle, JSON-LD, N-Triples).

    The biobank is a dcat:Catalog, its collections dcat:Datasets with their MIABIS attributes
    and derived descriptors; MIABIS studies, donors (by pseudonym), samples, diagnoses
    (ICD-10 IRIs), DICOM studies and series (urn:oid: UIDs) with modality (DICOM DCM
    concepts), body part (Annex L terms with their SNOMED CT concepts and regions),
    dataset type, equipment and acquisition parameters (DICOM attributes), segmentations
    and imaging biomarkers. IRIs are stable: two exports of the same database are the same
    graph. No direct identifier is written. Query it with `imaging-biobank sparql`.

    Examples: [bold]imaging-biobank export rdf biobank.ttl[/], and
    [bold]imaging-biobank export rdf nb.jsonld -c NB_IMAGING --base https://biobank.example.org/rdf/[/]
    """
    from imaging_biobank.db.lookup import CollectionLookupError
    from imaging_biobank.export.rdf import RdfFormatError, export
    from imaging_biobank.export.rdf_terms import BaseError

    engine = open_database(db)
    try:
        with engine.connect() as conn, err_console.status(f"writing the RDF graph {out}"):
            report = export(conn, out, collection or (), fmt=fmt, base=base, instances=instances)
    except (CollectionLookupError, RdfFormatError, BaseError) as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write {out}: {error}")
    held = ", ".join(f"{n} {what}" for what, n in report.counts.items())
    console.print(plain(f"{out}: {report.triples} triples ({report.format}): {held}"))
