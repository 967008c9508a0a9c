"""The ``imaging-biobank`` command line: thin commands that parse, call a service, print.

Heavy imports (SQLAlchemy, the model, pydantic) happen inside the commands, so ``--help``
and light commands start fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="imaging-biobank",
    help=(
        "An imaging biobank on the DICOM-MIABIS model: register biobanks and collections,"
        " ingest DICOM from folders and PACS, look at what they hold.\n\n"
        "The database is chosen by --db or $IMAGING_BIOBANK_DB"
        " (default sqlite:///biobank.db; PostgreSQL: postgresql://user@host/db)."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

from imaging_biobank.cli import catalogue, ingest, vocabulary  # noqa: E402  (registers commands)

__all__ = ["app", "catalogue", "ingest", "main", "vocabulary"]


def main() -> None:
    """Entry point of the ``imaging-biobank`` console script."""
    app()
