"""``imaging-biobank import ...``: the non-imaging data of the model, from files.

Each kind of file has its own command (donors, samples, events, biomarkers, e-form
definitions, e-form records); all report bad rows with where and why, store the good ones,
and exit 1 when some rows were refused.
"""

from __future__ import annotations

import typer

from imaging_biobank.cli import app

import_app = typer.Typer(
    name="import",
    help="Bring in donors, samples, events, molecular biomarkers and clinical e-forms.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")
