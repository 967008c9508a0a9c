"""The current Directory's form (MOLGENIS EMX2, schema ``ERIC``): CSV tables.

``Persons.csv``, ``Networks.csv`` (header only: this database keeps no networks),
``Biobanks.csv``, ``Collections.csv`` and ``CollectionFacts.csv``, in a folder or a .zip,
with the columns of ``data/directory_emx2_columns.csv``: the snake_case names the current
Directory's tables keep from EMX1 (its GraphQL fields), plus what EMX2 added:
``number_of_donors`` and ``order_of_magnitude_donors`` on collections, and the
CollectionFacts star model (``directory_facts.py``). Ontology columns hold the Directory's
term names, which are the EMX1 ids (``MALE``, ``IMAGING_DATA``, ``urn:miriam:icd:C74.9``;
ORPHA codes too, as the current disease list has them); array cells hold comma-separated
names. A collection's ``number_of_donors`` of 1 to 9 is left empty (k = 10, as in its
facts); ``order_of_magnitude_donors`` 0 says "<10" without the count.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from imaging_biobank.export.directory import DirectoryContent, atomic_target
from imaging_biobank.export.directory_facts import K_ANONYMITY, star_facts
from imaging_biobank.export.directory_rules import (
    COUNTRIES,
    DirectoryExportError,
    Lookups,
    Row,
    Value,
    check_fact_rules,
    check_tables,
    emx2_columns,
    lookup_ids,
    order_of_magnitude,
)

TABLES: Final = ("Persons", "Networks", "Biobanks", "Collections", "CollectionFacts")


def _shaped(table: str, row: Row) -> Row:
    """The row with exactly the table's EMX2 columns, in order."""
    return {c.name: row.get(c.name) for c in emx2_columns()[table]}


def emx2_tables(
    content: DirectoryContent, *, last_update: str
) -> tuple[dict[str, list[Row]], list[str]]:
    """The EMX2 tables of an export and the notes they add, checked first: the columns'
    rules, and the facts' (one all-``*`` row per collection, no row of 1 to 9 donors, the
    total equal to the collection's size); ``DirectoryExportError`` lists what breaks."""
    notes = [
        f"country {k} ({v}) is not among the {len(lookup_ids()[COUNTRIES])} countries of the"
        " Directory's 2017 list (the only one shipped): check that the Directory's Countries"
        " ontology has it"
        for k, v in sorted(content.extra_countries.items())
    ]
    persons = [
        _shaped("Persons", {**p, "role": content.person_roles.get(str(p["id"]))})
        for p in content.persons
    ]
    collections: list[Row] = []
    facts: list[Row] = []
    for c in content.collections:
        donors = c.donors
        suppressed = 0 < donors < K_ANONYMITY
        diseases = sorted({v for v in (t.emx2_id() for t in c.diseases) if v})
        collections.append(
            _shaped(
                "Collections",
                {
                    **c.row,
                    "diagnosis_available": diseases,
                    "number_of_donors": None if suppressed else donors,
                    "order_of_magnitude_donors": order_of_magnitude(donors),
                },
            )
        )
        if suppressed:
            notes.append(
                f"{c.row['id']}: fewer than {K_ANONYMITY} donors: number_of_donors left empty"
                " (order_of_magnitude_donors 0 says <10) and its facts are its totals only"
            )
        facts += star_facts(str(c.row["id"]), c.units, last_update=last_update)
    tables: dict[str, list[Row]] = {
        "Persons": persons,
        "Networks": [],
        "Biobanks": [_shaped("Biobanks", b) for b in content.biobanks],
        "Collections": collections,
        "CollectionFacts": [_shaped("CollectionFacts", f) for f in facts],
    }
    lookups = Lookups(content.diseases, frozenset(content.extra_countries), orpha_allowed=True)
    problems = check_tables(tables, emx2_columns(), lookups, model="EMX2 Directory model")
    problems += check_fact_rules(tables["CollectionFacts"], collections)
    if problems:
        raise DirectoryExportError(problems)
    return tables, notes


def cell(value: Value) -> str:
    """A value as an EMX2 CSV cell: arrays comma-separated, booleans true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def csv_text(table: str, rows: Sequence[Row]) -> str:
    """One table as CSV text, header first."""
    header = [c.name for c in emx2_columns()[table]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(row.get(k)) for k in header])
    return buffer.getvalue()


def write_csv_tables(
    tables: Mapping[str, Sequence[Row]], out: Path, container: str = "folder"
) -> None:
    """Write the tables as ``<Table>.csv`` into the folder ``out`` (created if need be;
    files of the same names replaced, others left alone) or the zip ``out``, each file
    replaced only once complete."""
    texts = {f"{name}.csv": csv_text(name, rows) for name, rows in tables.items()}
    if container == "zip":
        target = atomic_target(out)
        try:
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name, text in texts.items():
                    archive.writestr(name, text)
            os.replace(target, out)
        finally:
            target.unlink(missing_ok=True)
        return
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".directory-", dir=out))
    try:
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8")
        for name in texts:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
