"""The ``imaging-biobank`` command line: thin commands that parse, call a service, print.

Heavy imports (SQLAlchemy, the model, pydantic) happen inside the commands, so ``--help``
and light commands start fast.
"""

from __future__ import annotations

import inspect

import typer

app = typer.Typer(
    name="imaging-biobank",
    help=(
        "An imaging biobank on the DICOM-MIABIS model: register biobanks and collections,"
        " ingest DICOM from folders and PACS, de-identify it, look at what they hold.\n\n"
        "The database is chosen by --db or $IMAGING_BIOBANK_DB"
        " (default sqlite:///biobank.db; PostgreSQL: postgresql://user@host/db)."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

from imaging_biobank.cli import (  # noqa: E402  (registers)
    analysis,
    catalogue,
    clinical,
    deid,
    export,
    import_fhir,
    ingest,
    quality,
    query,
    release,
    samples,
    server,
    sparql,
    vocabulary,
)

__all__ = [
    "analysis",
    "app",
    "catalogue",
    "clinical",
    "deid",
    "export",
    "import_fhir",
    "ingest",
    "main",
    "quality",
    "query",
    "release",
    "samples",
    "server",
    "sparql",
    "vocabulary",
]


def _reflow(doc: str | None) -> str | None:
    """A docstring with each paragraph on one line: Typer's rich help keeps single line
    breaks, which a terminal of another width shows as ragged lines."""
    if not doc:
        return doc
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _reflow_help(typer_app: typer.Typer) -> None:
    for command in typer_app.registered_commands:
        if command.callback is not None and command.help is None:
            command.help = _reflow(command.callback.__doc__)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


_reflow_help(app)


def main() -> None:
    """Entry point of the ``imaging-biobank`` console script."""
    app()
