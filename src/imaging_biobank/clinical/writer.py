"""Checked e-form records into the database, one transaction per batch.

A record is keyed by (collection, form, keyed token of record id, event and instance), so
the same export again changes nothing, and a changed value replaces the old one (values the
new export no longer holds go). Donors are found or created by the pseudonym of the record
id (or of the donor field), the same function DICOM PatientIDs go through. A batch that
fails to write leaves the batches before it stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from imaging_biobank.catalogue.descriptors import derive_descriptors
from imaging_biobank.clinical.forms import StoredForm
from imaging_biobank.clinical.records import FormRecord, Value
from imaging_biobank.db._schema import metadata
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.samples.donors import donor_ids

T = metadata.tables
IN_CHUNK = 500
TOKEN_PURPOSE = "clinical-record"
VALUE_COLUMNS = ("raw", "value_number", "value_date", "value_code", "code_system", "unit")


@dataclass
class WriteSummary:
    """What writing did, in records (one form of one row)."""

    stored: int = 0  # new
    updated: int = 0
    unchanged: int = 0


def record_key(pseudonymiser: Pseudonymiser, record: FormRecord) -> str:
    """The keyed stand-in of a record id, event and repeat instance (never the id)."""
    return pseudonymiser.token(
        TOKEN_PURPOSE, f"{record.record_id}|{record.event}|{record.instance}"
    )


def _value_row(value: Value, field_id: int) -> dict[str, Any]:
    return {
        "e_form_field_id": field_id,
        "item": value.item,
        "raw": value.raw,
        "value_number": value.number,
        "value_date": value.date,
        "value_code": value.code,
        "code_system": value.system,
        "unit": value.unit,
    }


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_batch(
    conn: Connection,
    collection_id: int,
    forms: dict[str, StoredForm],
    batch: Sequence[FormRecord],
    pseudonymiser: Pseudonymiser,
    summary: WriteSummary,
) -> None:
    r, v = T["clinical_record"], T["clinical_value"]
    donors = donor_ids(conn, (pseudonymiser.donor(rec.donor_source) for rec in batch))
    keyed = [(record_key(pseudonymiser, rec), rec) for rec in batch]
    existing: dict[tuple[int, str], Any] = {}
    for chunk in _chunks([k for k, _ in keyed], IN_CHUNK):
        for row in conn.execute(
            select(r).where(r.c.collection_id == collection_id, r.c.record_key.in_(chunk))
        ):
            existing[(row.e_form_id, row.record_key)] = row
    stored_values: dict[int, dict[tuple[int, int], Any]] = {}
    ids = [row.id for row in existing.values()]
    for chunk in _chunks(ids, IN_CHUNK):
        for row in conn.execute(select(v).where(v.c.clinical_record_id.in_(chunk))):
            stored_values.setdefault(row.clinical_record_id, {})[
                (row.e_form_field_id, row.item)
            ] = row
    for key, rec in keyed:
        form = forms[rec.form]
        attributes = {
            "sample_donor_id": donors[pseudonymiser.donor(rec.donor_source)],
            "event_name": rec.event or None,
            "repeat_instance": int(rec.instance) if rec.instance else None,
            "completion": rec.completion,
        }
        wanted = {
            (form.field_ids[value.field], value.item): _value_row(
                value, form.field_ids[value.field]
            )
            for value in rec.values
        }
        old = existing.get((form.id, key))
        if old is None:
            record_id = conn.execute(
                insert(r)
                .values(
                    collection_id=collection_id, e_form_id=form.id, record_key=key, **attributes
                )
                .returning(r.c.id)
            ).scalar_one()
            if wanted:
                conn.execute(
                    insert(v), [{"clinical_record_id": record_id, **new} for new in wanted.values()]
                )
            summary.stored += 1
            continue
        changed = False
        if any(getattr(old, name) != value for name, value in attributes.items()):
            changed = True
        have = stored_values.get(old.id, {})
        gone = [stored.id for slot, stored in have.items() if slot not in wanted]
        if gone:
            conn.execute(delete(v).where(v.c.id.in_(gone)))
            changed = True
        for slot, new in wanted.items():
            current = have.get(slot)
            if current is None:
                conn.execute(insert(v).values(clinical_record_id=old.id, **new))
                changed = True
            elif any(getattr(current, name) != new[name] for name in VALUE_COLUMNS):
                conn.execute(
                    update(v)
                    .where(v.c.id == current.id)
                    .values(**{name: new[name] for name in VALUE_COLUMNS})
                )
                changed = True
        if changed:
            conn.execute(update(r).where(r.c.id == old.id).values(**attributes))
            summary.updated += 1
        else:
            summary.unchanged += 1


def write_records(
    engine: Engine,
    collection_id: int,
    forms: dict[str, StoredForm],
    records: Sequence[FormRecord],
    pseudonymiser: Pseudonymiser,
    batch_size: int = 500,
) -> WriteSummary:
    """Store checked records, one transaction per ``batch_size`` records; the collection's
    derived descriptors (donors, size, sexes) are recomputed in the last one."""
    summary = WriteSummary()
    batches = list(_chunks(records, batch_size)) or [[]]
    for number, batch in enumerate(batches, start=1):
        with engine.begin() as conn:
            _write_batch(conn, collection_id, forms, batch, pseudonymiser, summary)
            if number == len(batches):
                derive_descriptors(conn, collection_id)
    return summary
