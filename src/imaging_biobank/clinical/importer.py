"""The two e-form imports end to end: a data dictionary into a collection's forms, and a
REDCap export into its records. What the commands (and tests) call."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from imaging_biobank.clinical.dictionary import Notice, read_dictionary
from imaging_biobank.clinical.forms import (
    FormResult,
    StoredForm,
    clinical_collection,
    store_dictionary,
    stored_forms,
)
from imaging_biobank.clinical.records import BadCell, read_export
from imaging_biobank.clinical.writer import WriteSummary, write_records
from imaging_biobank.db.lookup import FoundCollection
from imaging_biobank.deid.pseudonym import Pseudonymiser


@dataclass
class DictionaryImport:
    """What importing a data dictionary did."""

    collection: str
    sha256: str
    forms: list[FormResult]
    notices: list[Notice]


def import_dictionary(engine: Engine, collection: str, path: Path) -> DictionaryImport:
    """Read a REDCap data dictionary and store its forms in a clinical variable collection,
    in one transaction. Raises ``DictionaryError`` (nothing stored, every fault listed),
    ``FormConflictError`` and ``CollectionLookupError``."""
    dictionary = read_dictionary(path.read_bytes())
    with engine.begin() as conn:
        found = clinical_collection(conn, collection)
        results = store_dictionary(conn, found.id, dictionary, path.name)
    return DictionaryImport(found.identifier, dictionary.sha256, results, list(dictionary.notices))


@dataclass
class RecordsImport:
    """What importing a REDCap export did (records: one form of one row)."""

    collection: str
    rows: int = 0
    written: WriteSummary = field(default_factory=WriteSummary)
    refused: int = 0
    bad_cells: list[BadCell] = field(default_factory=list)
    identifier_values: int = 0
    ignored_columns: list[str] = field(default_factory=list)


def collection_forms(
    engine: Engine, collection: str
) -> tuple[FoundCollection, dict[str, StoredForm]]:
    """A clinical variable collection and its stored forms."""
    with engine.connect() as conn:
        found = clinical_collection(conn, collection)
        return found, stored_forms(conn, found.id)


def import_records(
    engine: Engine,
    collection: str,
    path: Path,
    pseudonymiser: Pseudonymiser,
    *,
    form: str | None = None,
    donor_field: str | None = None,
    batch_size: int = 500,
    today: dt.date | None = None,
) -> RecordsImport:
    """Check a REDCap export against the collection's forms and store its good records.

    Raises ``ExportColumnsError`` (columns of no form; nothing stored), ``ValueError`` (no
    forms imported yet, a file that is no export, an unknown --form or --donor-field) and
    ``CollectionLookupError``.
    """
    found, forms = collection_forms(engine, collection)
    if not forms:
        raise ValueError(
            f"{found.identifier} has no e-forms yet: import its data dictionary first"
            " (imaging-biobank import form DICTIONARY.csv --collection ...)"
        )
    export = read_export(
        path.read_bytes(),
        [stored.form for stored in forms.values()],
        donor_field=donor_field,
        only_form=form,
        today=today,
    )
    written = write_records(engine, found.id, forms, export.records, pseudonymiser, batch_size)
    return RecordsImport(
        collection=found.identifier,
        rows=export.rows,
        written=written,
        refused=export.refused,
        bad_cells=export.bad_cells,
        identifier_values=export.identifier_values,
        ignored_columns=export.ignored_columns,
    )
