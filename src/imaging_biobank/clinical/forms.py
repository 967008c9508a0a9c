"""E-form definitions in the database: store a data dictionary's forms, read them back.

Core SQL on the generated schema (the ORM is not needed on this path). Storing the same
dictionary again changes nothing; a changed one updates its forms field by field. A field
whose values are stored cannot disappear from its form (that would lose data): the whole
dictionary is refused, naming the fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from imaging_biobank.clinical import branching
from imaging_biobank.clinical.dictionary import Choice, Dictionary, Field, Form
from imaging_biobank.clinical.tags import Coding
from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import CollectionLookupError, FoundCollection, find_collection

T = metadata.tables
KIND = "clinical_variable"
FIELD_COLUMNS = [c.name for c in T["e_form_field"].columns if c.name not in ("id", "e_form_id")]


class FormConflictError(ValueError):
    """A dictionary that would break what is stored (a field name another form of the
    collection uses, a field with stored values removed)."""


@dataclass(frozen=True)
class StoredForm:
    """A form as stored: its definition and the row ids records refer to."""

    id: int
    form: Form
    field_ids: dict[str, int]
    dictionary_file: str
    dictionary_sha256: str
    imported_at: dt.datetime


@dataclass(frozen=True)
class FormResult:
    """What storing did to one form."""

    name: str
    status: Literal["new", "updated", "unchanged"]
    fields: int


def clinical_collection(conn: Connection, identifier: str) -> FoundCollection:
    """The clinical variable collection a user named, or ``CollectionLookupError``."""
    found = find_collection(conn, identifier, kind=KIND)
    if found.kind != KIND:
        raise CollectionLookupError(
            f"{found.identifier} is a {found.kind} collection, not a clinical variable one"
        )
    return found


def field_row(field: Field) -> dict[str, Any]:
    """The e_form_field columns of a field (without ids)."""
    choices = None
    if field.choices:
        choices = [
            {
                "code": c.code,
                "label": c.label,
                "system": c.coding.system if c.coding else None,
                "system_code": c.coding.code if c.coding else None,
            }
            for c in field.choices
        ]
    return {
        "position": field.position,
        "name": field.name,
        "section_header": field.section_header or None,
        "field_type": field.field_type,
        "label": field.label,
        "note": field.note or None,
        "validation_type": field.validation,
        "min_value": field.minimum,
        "max_value": field.maximum,
        "required": field.required,
        "identifier": field.identifier,
        "branching_logic": field.branching_logic or None,
        "branching_evaluated": field.condition is not None,
        "branching_note": field.not_evaluated,
        "choices": choices,
        "calculation": field.calculation or None,
        "annotation": field.annotation or None,
        "code_system": field.code.system if field.code else None,
        "code": field.code.code if field.code else None,
        "unit": field.unit,
        "value_set": field.value_set,
    }


def field_from_row(row: Any, form: str) -> Field:
    """A stored field as the definition records are checked against."""
    choices = tuple(
        Choice(
            c["code"],
            c["label"],
            Coding(c["system"], c["system_code"]) if c.get("system") else None,
        )
        for c in row.choices or []
    )
    logic = row.branching_logic or ""
    condition = branching.parse(logic) if row.branching_evaluated and logic else None
    return Field(
        name=row.name,
        form=form,
        position=row.position,
        row=0,
        field_type=row.field_type,
        label=row.label,
        section_header=row.section_header or "",
        note=row.note or "",
        choices=choices,
        calculation=row.calculation or "",
        validation=row.validation_type,
        minimum=row.min_value,
        maximum=row.max_value,
        identifier=row.identifier,
        required=row.required,
        branching_logic=logic,
        condition=condition,
        not_evaluated=row.branching_note,
        annotation=row.annotation or "",
        code=Coding(row.code_system, row.code) if row.code_system and row.code else None,
        unit=row.unit,
        value_set=row.value_set,
    )


def stored_forms(conn: Connection, collection_id: int) -> dict[str, StoredForm]:
    """The forms of a collection by name, with their fields in order."""
    f, ff = T["e_form"], T["e_form_field"]
    forms = conn.execute(select(f).where(f.c.collection_id == collection_id).order_by(f.c.id)).all()
    fields: dict[int, list[Any]] = {row.id: [] for row in forms}
    if forms:
        rows = conn.execute(
            select(ff).where(ff.c.e_form_id.in_(list(fields))).order_by(ff.c.position)
        )
        for row in rows:
            fields[row.e_form_id].append(row)
    found = {}
    for row in forms:
        members = tuple(field_from_row(r, row.name) for r in fields[row.id])
        found[row.name] = StoredForm(
            id=row.id,
            form=Form(row.name, members),
            field_ids={r.name: r.id for r in fields[row.id]},
            dictionary_file=row.dictionary_file,
            dictionary_sha256=row.dictionary_sha256,
            imported_at=row.imported_at,
        )
    return found


def _check(conn: Connection, dictionary: Dictionary, stored: dict[str, StoredForm]) -> None:
    """Refuse names used by other forms and removed fields that hold values."""
    ours = {form.name for form in dictionary.forms}
    taken = {
        name: other.form.name
        for other in stored.values()
        if other.form.name not in ours
        for name in other.field_ids
    }
    clashes = [f"{f.name} (form {taken[f.name]})" for f in dictionary.fields() if f.name in taken]
    if clashes:
        raise FormConflictError(
            "field names already used by other forms of the collection: " + ", ".join(clashes)
        )
    removed: dict[int, str] = {}
    for form in dictionary.forms:
        old = stored.get(form.name)
        if old is None:
            continue
        new_names = {f.name for f in form.fields}
        removed.update(
            {i: f"{form.name}.{n}" for n, i in old.field_ids.items() if n not in new_names}
        )
    if removed:
        v = T["clinical_value"]
        with_values = conn.execute(
            select(v.c.e_form_field_id).where(v.c.e_form_field_id.in_(list(removed))).distinct()
        ).scalars()
        names = sorted(removed[i] for i in with_values)
        if names:
            raise FormConflictError(
                "these fields hold stored values and cannot be removed: " + ", ".join(names)
            )


def _sync_fields(conn: Connection, form_id: int, fields: Iterable[Field]) -> bool:
    """Make the form's stored fields these; whether anything changed."""
    ff = T["e_form_field"]
    old = {row.name: row for row in conn.execute(select(ff).where(ff.c.e_form_id == form_id))}
    changed = False
    new_names = set()
    for field in fields:
        row = field_row(field)
        new_names.add(field.name)
        current = old.get(field.name)
        if current is None:
            conn.execute(insert(ff).values(e_form_id=form_id, **row))
            changed = True
        elif any(getattr(current, k) != v for k, v in row.items()):
            conn.execute(update(ff).where(ff.c.id == current.id).values(**row))
            changed = True
    gone = [row.id for name, row in old.items() if name not in new_names]
    if gone:
        conn.execute(delete(ff).where(ff.c.id.in_(gone)))
        changed = True
    return changed


def store_dictionary(
    conn: Connection, collection_id: int, dictionary: Dictionary, file_name: str
) -> list[FormResult]:
    """Store every form of a dictionary in a collection (in the caller's transaction)."""
    f = T["e_form"]
    stored = stored_forms(conn, collection_id)
    _check(conn, dictionary, stored)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    results = []
    for form in dictionary.forms:
        values = {
            "label": form.label,
            "dictionary_file": file_name,
            "dictionary_sha256": dictionary.sha256,
        }
        old = stored.get(form.name)
        if old is None:
            form_id = conn.execute(
                insert(f)
                .values(collection_id=collection_id, name=form.name, imported_at=now, **values)
                .returning(f.c.id)
            ).scalar_one()
            _sync_fields(conn, form_id, form.fields)
            results.append(FormResult(form.name, "new", len(form.fields)))
            continue
        fields_changed = _sync_fields(conn, old.id, form.fields)
        if fields_changed or old.dictionary_sha256 != dictionary.sha256:
            conn.execute(update(f).where(f.c.id == old.id).values(imported_at=now, **values))
        status: Literal["updated", "unchanged"] = "updated" if fields_changed else "unchanged"
        results.append(FormResult(form.name, status, len(form.fields)))
    return results


def form_overview(engine: Engine, collection: str | None = None) -> list[dict[str, Any]]:
    """Every form (of one collection, if named): its collection, fields, records, fields
    whose branching logic is not evaluated, and the dictionary it came from."""
    c, f, ff, r = T["collection"], T["e_form"], T["e_form_field"], T["clinical_record"]
    fields = select(func.count()).where(ff.c.e_form_id == f.c.id).scalar_subquery()
    not_evaluated = (
        select(func.count())
        .where(
            ff.c.e_form_id == f.c.id,
            ff.c.branching_logic.is_not(None),
            ff.c.branching_evaluated.is_(False),
        )
        .scalar_subquery()
    )
    records = select(func.count()).where(r.c.e_form_id == f.c.id).scalar_subquery()
    query = (
        select(
            c.c.identifier,
            f.c.name,
            f.c.label,
            fields,
            records,
            not_evaluated,
            f.c.dictionary_file,
            f.c.dictionary_sha256,
            f.c.imported_at,
        )
        .join(c, c.c.id == f.c.collection_id)
        .order_by(c.c.identifier, f.c.id)
    )
    with engine.connect() as conn:
        if collection is not None:
            query = query.where(f.c.collection_id == clinical_collection(conn, collection).id)
        rows = conn.execute(query).all()
    keys = (
        "collection",
        "form",
        "label",
        "fields",
        "records",
        "branching_not_evaluated",
        "dictionary_file",
        "dictionary_sha256",
        "imported_at",
    )
    return [
        {
            k: (v.isoformat() if isinstance(v, dt.datetime) else v)
            for k, v in zip(keys, row, strict=True)
        }
        for row in rows
    ]
