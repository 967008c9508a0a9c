"""One record entered through the API or the e-form page, checked exactly as an imported
REDCap export is: the entry is written as a one-row export of its form and read by the same
reader (types, ranges, choices, required fields, branching, codes), then stored by the same
writer (donor pseudonymised with the deployment's key)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping

from sqlalchemy import Engine

from imaging_biobank.clinical.importer import RecordsImport, collection_forms
from imaging_biobank.clinical.records import checkbox_column, read_export
from imaging_biobank.clinical.writer import write_records
from imaging_biobank.deid.pseudonym import Pseudonymiser


def export_row(
    form_fields: list[tuple[str, str, list[str]]],
    record_id: str,
    values: Mapping[str, str | list[str]],
    record_column: str,
) -> bytes:
    """A one-row REDCap export: the record id, then each field of the form (checkbox
    fields as one ``field___code`` column per choice, ``1`` when ticked)."""
    header = [record_column]
    row = [record_id]
    for name, field_type, choices in form_fields:
        if name == record_column:
            continue
        given = values.get(name, "")
        if field_type == "checkbox":
            ticked = {given} if isinstance(given, str) else set(given)
            for code in choices:
                header.append(checkbox_column(name, code))
                row.append("1" if code in ticked else "0")
        else:
            header.append(name)
            row.append(given if isinstance(given, str) else ",".join(given))
    out = io.StringIO()
    csv.writer(out).writerows([header, row])
    return out.getvalue().encode("utf-8")


def enter_record(
    engine: Engine,
    collection: str,
    form: str,
    record_id: str,
    values: Mapping[str, str | list[str]],
    pseudonymiser: Pseudonymiser,
    *,
    today: dt.date | None = None,
) -> RecordsImport:
    """Check and store one record of ``form``; the result lists every bad cell (then
    nothing is stored). ``ValueError`` for an unknown form or field."""
    found, forms = collection_forms(engine, collection)
    if form not in forms:
        known = ", ".join(forms) or "none yet"
        raise ValueError(f"{found.identifier} has no form {form!r}; its forms: {known}")
    definition = forms[form].form
    names = {f.name for f in definition.fields}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"not fields of form {form!r}: {', '.join(unknown)}")
    if not record_id.strip():
        raise ValueError("a record needs its record id")
    first = next(iter(stored.form.fields[0].name for stored in forms.values()))
    data = export_row(
        [(f.name, f.field_type, [c.code for c in f.choices]) for f in definition.fields],
        record_id,
        values,
        first,
    )
    export = read_export(
        data, [stored.form for stored in forms.values()], only_form=form, today=today
    )
    result = RecordsImport(
        collection=found.identifier,
        rows=export.rows,
        refused=export.refused,
        bad_cells=export.bad_cells,
        identifier_values=export.identifier_values,
    )
    if export.records and not export.bad_cells:
        result.written = write_records(engine, found.id, forms, export.records, pseudonymiser)
    return result
