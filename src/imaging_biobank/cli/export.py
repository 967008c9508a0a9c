"""``imaging-biobank export FORMAT OUT``: the biobank in its partners' models.

Each format has its own command module (``cli/export_<format>.py``) registering on
``export_app``; all take ``--collection`` (repeatable; default every collection).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

import typer
from rich.table import Table

from imaging_biobank.cli import app
from imaging_biobank.cli.common import console, plain

export_app = typer.Typer(
    name="export",
    help=(
        "Write the biobank in a partner's model: the BBMRI-ERIC Directory, FHIR R4,"
        " OMOP CDM 5.4 (with its imaging extension), ICGC-ARGO, RDF. No export carries a"
        " direct identifier."
    ),
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")


def print_written(title: str, counts: Mapping[str, int], notes: Sequence[str]) -> None:
    """What an export wrote: rows per table under ``title``, then its notes (what was
    estimated, left out or added, and why)."""
    table = Table("table", "rows", title=title)
    for name, count in counts.items():
        table.add_row(plain(name), str(count))
    console.print(table)
    for note in notes:
        console.print(plain(f"note: {note}"), highlight=False, soft_wrap=True)


# every export's --collection option
CollectionsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--collection",
        "-c",
        help="Export this collection (full id or last part; repeatable). Default: all.",
        show_default=False,
    ),
]

from imaging_biobank.cli import (  # noqa: E402  (registers)
    export_argo,
    export_directory,
    export_fhir,
    export_omop,
    export_rdf,
)

__all__ = [
    "export_app",
    "export_argo",
    "export_directory",
    "export_fhir",
    "export_omop",
    "export_rdf",
]
