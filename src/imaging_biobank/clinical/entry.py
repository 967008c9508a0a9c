"""One record entered through the API or the e-form page, checked exactly as an imported
REDCap export is: the entry is written as a one-row export of its form and read by the same
reader (types, ranges, choices, required fields, branching, codes), then stored by the same
writer (donor pseudonymised with the deployment's key)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping

from sqlalchemy import Engine, select

from imaging_biobank.clinical.dictionary import Form
from imaging_biobank.clinical.forms import StoredForm
from imaging_biobank.clinical.importer import RecordsImport, collection_forms
from imaging_biobank.clinical.records import BadCell, FormRecord, checkbox_column, read_export
from imaging_biobank.clinical.writer import record_key, write_records
from imaging_biobank.db._schema import metadata
from imaging_biobank.deid.pseudonym import Pseudonymiser

T = metadata.tables


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
            ticked = {c.strip() for c in given.split(",")} if isinstance(given, str) else set(given)
            for code in choices:
                header.append(checkbox_column(name, code))
                row.append("1" if code in ticked else "0")
        else:
            header.append(name)
            row.append(given if isinstance(given, str) else ",".join(given))
    out = io.StringIO()
    csv.writer(out).writerows([header, row])
    return out.getvalue().encode("utf-8")


class UnknownFormError(ValueError):
    """The collection has no such form."""


class RecordExistsError(ValueError):
    """A record with this id is stored already, and no update was asked for."""


def _stored_answers(
    engine: Engine, collection_id: int, stored: StoredForm, key: str
) -> dict[str, str | list[str]] | None:
    """The answers of the stored record with ``key`` as an export writes them (checkbox
    fields as their ticked codes), or None when there is no such record."""
    r, v = T["clinical_record"], T["clinical_value"]
    with engine.connect() as conn:
        record = conn.execute(
            select(r.c.id).where(
                r.c.collection_id == collection_id,
                r.c.e_form_id == stored.id,
                r.c.record_key == key,
            )
        ).scalar()
        if record is None:
            return None
        rows = conn.execute(
            select(v.c.e_form_field_id, v.c.item, v.c.raw).where(v.c.clinical_record_id == record)
        ).all()
    names = {field_id: name for name, field_id in stored.field_ids.items()}
    fields = {f.name: f for f in stored.form.fields}
    answers: dict[str, str | list[str]] = {}
    for field_id, item, raw in rows:
        name = names[field_id]
        if fields[name].field_type == "checkbox":
            ticked = answers.setdefault(name, [])
            assert isinstance(ticked, list)
            ticked.append(fields[name].choices[item - 1].code)
        else:
            answers[name] = raw
    return answers


def _checkbox_problems(
    definition: Form, values: Mapping[str, str | list[str]], record_id: str
) -> list[BadCell]:
    """Codes given for checkbox fields that are not among their choices."""
    bad = []
    for f in definition.fields:
        given = values.get(f.name)
        if f.field_type != "checkbox" or given is None:
            continue
        codes = given.split(",") if isinstance(given, str) else given
        known = {c.code for c in f.choices}
        for code in (c.strip() for c in codes):
            if code and code not in known:
                bad.append(
                    BadCell(2, record_id, f.name, code, f"not a choice; choices: {sorted(known)}")
                )
    return bad


def enter_record(
    engine: Engine,
    collection: str,
    form: str,
    record_id: str,
    values: Mapping[str, str | list[str]],
    pseudonymiser: Pseudonymiser,
    *,
    update: bool = False,
    today: dt.date | None = None,
) -> RecordsImport:
    """Check and store one record of ``form``; the result lists every bad cell (then
    nothing is stored). A record whose id is stored already is changed only with ``update``
    (``RecordExistsError`` otherwise), and then only the fields given change.
    ``UnknownFormError`` for an unknown form, ``ValueError`` for unknown fields."""
    found, forms = collection_forms(engine, collection)
    if form not in forms:
        known = ", ".join(forms) or "none yet"
        raise UnknownFormError(f"{found.identifier} has no form {form!r}; its forms: {known}")
    stored = forms[form]
    definition = stored.form
    first = next(iter(s.form.fields[0].name for s in forms.values()))
    names = {f.name for f in definition.fields}
    if first in values:
        raise ValueError(f"give the record id as the record id, not as the value of {first!r}")
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"not fields of form {form!r}: {', '.join(unknown)}")
    if not record_id.strip():
        raise ValueError("a record needs its record id")
    result = RecordsImport(collection=found.identifier, rows=1)
    result.bad_cells = _checkbox_problems(definition, values, record_id)
    if result.bad_cells:
        result.refused = 1
        return result
    key = record_key(pseudonymiser, FormRecord(2, record_id, record_id, "", "", form, None))
    before = _stored_answers(engine, found.id, stored, key)
    if before is not None and not update:
        raise RecordExistsError(
            f"record {record_id!r} of form {form!r} is stored already: ask for an update to"
            " change it (the fields you give change, the others stay)"
        )
    merged = {**(before or {}), **values}
    data = export_row(
        [(f.name, f.field_type, [c.code for c in f.choices]) for f in definition.fields],
        record_id,
        merged,
        first,
    )
    export = read_export(data, [s.form for s in forms.values()], only_form=form, today=today)
    result.refused = export.refused
    result.bad_cells = export.bad_cells
    result.identifier_values = export.identifier_values
    if export.records and not export.bad_cells:
        result.written = write_records(engine, found.id, forms, export.records, pseudonymiser)
    return result
