"""The exports' shipped data files (``export/data``): code lists, mappings and
specifications, each CSV opened by ``#`` lines that say its source and edition."""

from __future__ import annotations

import csv
import io
from importlib import resources


def data_text(name: str) -> str:
    """The text of one file in ``export/data``."""
    return resources.files("imaging_biobank.export").joinpath("data", name).read_text("utf-8")


def data_rows(name: str) -> list[dict[str, str]]:
    """The rows of one CSV in ``export/data``, its ``#`` header comment skipped and every
    value stripped."""
    lines = [line for line in data_text(name).splitlines() if not line.startswith("#")]
    return [
        {k: (v or "").strip() for k, v in row.items()}
        for row in csv.DictReader(io.StringIO("\n".join(lines)))
    ]
