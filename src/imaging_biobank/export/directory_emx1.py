"""The Directory's EMX1 import workbook (MOLGENIS EMX1, the Directory until 2023).

One sheet per entity, named exactly after it: ``eu_bbmri_eric_persons``,
``eu_bbmri_eric_networks`` (this database keeps no networks: header only),
``eu_bbmri_eric_biobanks`` and ``eu_bbmri_eric_collections``, in the order an import
resolves their references. The columns are the entity's attributes of the 2017
``attributes.csv``, in its order, less compound headings and the one_to_many
back-references MOLGENIS computes; an mref/categorical_mref cell holds its ids separated by
commas, as EMX expects; booleans are ``true``/``false``. A country the 2017 countries list
lacks (it lists 16 national nodes) is added in a ``eu_bbmri_eric_countries`` sheet (id,
name) so that every reference of the workbook resolves on import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from imaging_biobank.export.directory import DirectoryContent, atomic_target
from imaging_biobank.export.directory_rules import (
    COUNTRIES,
    DirectoryExportError,
    Lookups,
    Row,
    Value,
    check_tables,
    lookup_ids,
    written_columns,
)

PERSONS: Final = "eu_bbmri_eric_persons"
NETWORKS: Final = "eu_bbmri_eric_networks"
BIOBANKS: Final = "eu_bbmri_eric_biobanks"
COLLECTIONS: Final = "eu_bbmri_eric_collections"
SHEETS: Final = (PERSONS, NETWORKS, BIOBANKS, COLLECTIONS)


def _complete(entity: str, row: Row) -> Row:
    """The row with every written attribute of the entity, in the model's order."""
    return {c.name: row.get(c.name) for c in written_columns(entity)}


def emx1_tables(content: DirectoryContent) -> tuple[dict[str, list[Row]], list[str]]:
    """The EMX1 sheets of an export and the notes they add, checked against the Directory's
    EMX1 rules first (``DirectoryExportError`` listing every broken rule)."""
    notes = [
        "contact_priority (required; not in our model) written as 1 for a biobank, 2 for a"
        " collection's own contact person, 1 where its biobank's contact stands in;"
        " partner_charter_signed (required) written as false"
    ]
    notes += [
        f"country {k} ({v}) is not among the {len(lookup_ids()[COUNTRIES])} countries of the"
        " Directory's 2017 list: added to the eu_bbmri_eric_countries sheet"
        for k, v in sorted(content.extra_countries.items())
    ]
    for collection in content.collections:
        for term in collection.diseases:
            if not term.directory_id:
                notes.append(
                    f"{collection.row['id']}: diagnosis {term.code!r} is not in the Directory's"
                    " 2017 disease list: left out of diagnosis_available (the EMX2 form has it)"
                )
    tables: dict[str, list[Row]] = {
        PERSONS: [_complete(PERSONS, p) for p in content.persons],
        NETWORKS: [],
        BIOBANKS: [_complete(BIOBANKS, b) for b in content.biobanks],
        COLLECTIONS: [_complete(COLLECTIONS, c.row) for c in content.collections],
    }
    schema = {name: written_columns(name) for name in tables}
    lookups = Lookups(content.diseases, frozenset(content.extra_countries))
    problems = check_tables(tables, schema, lookups, model="nillable=FALSE in attributes.csv")
    if problems:
        raise DirectoryExportError(problems)
    if content.extra_countries:
        extra: list[Row] = [
            {"id": k, "name": v} for k, v in sorted(content.extra_countries.items())
        ]
        tables = {COUNTRIES: extra, **tables}
    return tables, notes


def cell(value: Value) -> str | int | None:
    """A value as an EMX1 cell: ids of a list joined by commas, booleans as true/false,
    characters a workbook cannot hold removed."""
    if value is None or value == []:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        value = ",".join(value)
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def write_workbook(tables: Mapping[str, Sequence[Row]], out: Path, container: str = "xlsx") -> None:
    """Write the sheets to ``out`` (.xlsx), replacing it only once the workbook is complete."""
    workbook = Workbook()
    first = workbook.active
    assert first is not None  # a new workbook has its first sheet
    workbook.remove(first)
    for name, rows in tables.items():
        sheet = workbook.create_sheet(name)
        header = [c.name for c in written_columns(name)]
        sheet.append(header)
        for row in rows:
            sheet.append([cell(row.get(k)) for k in header])
        for cells in sheet.iter_rows(min_row=2):
            for c in cells:
                if isinstance(c.value, str) and c.value.startswith("="):
                    c.data_type = "s"  # text, never a formula
    target = atomic_target(out)
    try:
        workbook.save(target)
        os.replace(target, out)
    finally:
        target.unlink(missing_ok=True)
