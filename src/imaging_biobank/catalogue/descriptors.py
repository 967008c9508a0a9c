"""The generic descriptors of a collection, derived from its donors and items, never typed.

For every kind: the donors (declared by imports, and those of its series, samples, records
or results), their sexes, their diagnoses (of samples and of events), and the age range
known for them (at an imaging study, at sample creation, at an event). For sample tissue
collections also the material types and storage temperatures of the samples. Stored as
``derived`` links beside what was declared at registration; written only where they differ.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Select, delete, func, insert, select, union, update

from imaging_biobank.catalogue.donor_facets import refresh_donor_facets
from imaging_biobank.db._schema import metadata

T = metadata.tables
DERIVED = "derived"
YEARS_PER_UNIT = {"Years": 1.0, "Months": 1 / 12, "Weeks": 7 / 365.25, "Days": 1 / 365.25}


def member_donors(collection_id: int, kind: str) -> Select[Any]:
    """The donor ids of a collection: declared members and the donors of its items."""
    link = T["collection_sample_donor"]
    parts: list[Select[Any]] = [
        select(link.c.sample_donor_id.label("donor_id")).where(
            link.c.collection_id == collection_id
        )
    ]
    if kind in _ITEMS and _ITEMS[kind][0] in T:
        table_name, column = _ITEMS[kind]
        table = T[table_name]
        parts.append(
            select(table.c.sample_donor_id.label("donor_id")).where(
                table.c[column] == collection_id
            )
        )
    return select(union(*parts).subquery().c.donor_id)


_ITEMS = {
    "image": ("imaging_series", "image_collection_id"),
    "sample_tissue": ("sample", "collection_id"),
    "molecular_biomarker": ("molecular_biomarker_result", "collection_id"),
    "clinical_variable": ("clinical_record", "collection_id"),
}


def collections_of_donors(conn: Connection, donor_ids: Iterable[int]) -> set[int]:
    """The collections any of these donors is a member of (declared, or through an item):
    the ones whose descriptors change when the donors' facts (sex, diagnoses) change."""
    found: set[int] = set()
    ids = sorted(set(donor_ids))
    sources = [("collection_sample_donor", "collection_id"), *_ITEMS.values()]
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for table_name, column in sources:
            if table_name not in T:
                continue
            table = T[table_name]
            found.update(
                conn.execute(
                    select(table.c[column])
                    .where(table.c.sample_donor_id.in_(chunk), table.c[column].is_not(None))
                    .distinct()
                ).scalars()
            )
    return found


def derive_descriptors(conn: Connection, collection_id: int) -> None:
    """Recompute the derived descriptors of one collection, and the facet values of its
    donors (idempotent)."""
    c = T["collection"]
    kind = conn.execute(select(c.c.kind).where(c.c.id == collection_id)).scalar_one()
    members = member_donors(collection_id, kind).scalar_subquery()
    donor = T["sample_donor"]
    n_donors = conn.execute(
        select(func.count()).select_from(donor).where(donor.c.id.in_(members))
    ).scalar_one()
    values: dict[str, Any] = {}
    if kind != "image":  # the ingest writer counts series donors and instances
        values["number_of_donors"] = n_donors
        size_of = {
            "sample_tissue": ("sample", "collection_id"),
            "molecular_biomarker": ("molecular_biomarker_result", "collection_id"),
            "clinical_variable": ("clinical_record", "collection_id"),
        }.get(kind)
        if size_of and size_of[0] in T:
            table = T[size_of[0]]
            values["size"] = conn.execute(
                select(func.count()).where(table.c[size_of[1]] == collection_id)
            ).scalar_one()
    low, high = _age_range(conn, collection_id, kind, members)
    values["donor_age_low_years"] = low
    values["donor_age_high_years"] = high
    stored = conn.execute(select(*(c.c[k] for k in values)).where(c.c.id == collection_id)).one()
    if tuple(stored) != tuple(values.values()):
        conn.execute(update(c).where(c.c.id == collection_id).values(**values))
    _set_derived(
        conn,
        "collection_sex",
        "collection_id",
        collection_id,
        "sex_id",
        set(
            conn.execute(select(donor.c.sex_id).where(donor.c.id.in_(members)).distinct()).scalars()
        ),
    )
    _set_derived(
        conn,
        "collection_disease",
        "collection_id",
        collection_id,
        "disease_id",
        _diseases(conn, collection_id, kind, members),
    )
    if kind == "sample_tissue":
        s = T["sample"]
        in_collection = s.c.collection_id == collection_id
        _set_derived(
            conn,
            "sample_tissue_collection_material_type",
            "sample_tissue_collection_id",
            collection_id,
            "material_type_id",
            set(
                conn.execute(select(s.c.material_type_id).where(in_collection).distinct()).scalars()
            ),
        )
        temperatures = conn.execute(
            select(s.c.storage_temperature_id)
            .where(in_collection, s.c.storage_temperature_id.is_not(None))
            .distinct()
        ).scalars()
        _set_derived(
            conn,
            "sample_tissue_collection_storage_temperature",
            "sample_tissue_collection_id",
            collection_id,
            "storage_temperature_id",
            set(temperatures),
        )
    refresh_donor_facets(conn, member_donors(collection_id, kind))


def _diseases(conn: Connection, collection_id: int, kind: str, members: Any) -> set[int]:
    e = T["event"]
    found = set(
        conn.execute(
            select(e.c.disease_id)
            .where(e.c.sample_donor_id.in_(members), e.c.disease_id.is_not(None))
            .distinct()
        ).scalars()
    )
    if kind == "sample_tissue":
        s, link = T["sample"], T["sample_disease"]
        found |= set(
            conn.execute(
                select(link.c.disease_id)
                .join(s, s.c.id == link.c.sample_id)
                .where(s.c.collection_id == collection_id)
                .distinct()
            ).scalars()
        )
    return found


def _age_range(
    conn: Connection, collection_id: int, kind: str, members: Any
) -> tuple[float | None, float | None]:
    ages: list[float] = []
    if kind == "image":
        series, study = T["imaging_series"], T["imaging_study"]
        low, high = conn.execute(
            select(func.min(study.c.patient_age_years), func.max(study.c.patient_age_years))
            .join(series, series.c.imaging_study_id == study.c.id)
            .where(series.c.image_collection_id == collection_id)
        ).one()
        ages += [a for a in (low, high) if a is not None]
    donor, e, unit = T["sample_donor"], T["event"], T["age_unit"]
    births = dict(
        conn.execute(
            select(donor.c.id, donor.c.birth_date).where(
                donor.c.id.in_(members), donor.c.birth_date.is_not(None)
            )
        ).all()
    )
    for donor_id, date, age, unit_code in conn.execute(
        select(e.c.sample_donor_id, e.c.event_date, e.c.age_at_event, unit.c.code)
        .outerjoin(unit, unit.c.id == e.c.age_unit_id)
        .where(e.c.sample_donor_id.in_(members))
    ):
        if age is not None and unit_code in YEARS_PER_UNIT:
            ages.append(age * YEARS_PER_UNIT[unit_code])
        elif date and donor_id in births:
            ages.append(_years_between(births[donor_id], date))
    if kind == "sample_tissue":
        s = T["sample"]
        for donor_id, created in conn.execute(
            select(s.c.sample_donor_id, s.c.creation_date).where(
                s.c.collection_id == collection_id, s.c.creation_date.is_not(None)
            )
        ):
            if donor_id in births:
                ages.append(_years_between(births[donor_id], created))
    if not ages:
        return None, None
    return round(min(ages), 2), round(max(ages), 2)


def _years_between(birth: str, later: str) -> float:
    """Whole-day age between two (partial) ISO dates, each taken at its first day."""
    first = _first_day(birth)
    return max((_first_day(later) - first).days / 365.25, 0.0)


def _first_day(value: str) -> dt.date:
    parts = [int(p) for p in value[:10].split("-")]
    return dt.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)


def _set_derived(
    conn: Connection, name: str, owner: str, owner_id: int, target: str, wanted: set[int]
) -> None:
    table = T[name]
    mine = (table.c[owner] == owner_id) & (table.c.origin == DERIVED)
    stored = set(conn.execute(select(table.c[target]).where(mine)).scalars())
    if stored - wanted:
        conn.execute(delete(table).where(mine, table.c[target].in_(stored - wanted)))
    if wanted - stored:
        conn.execute(
            insert(table),
            [{owner: owner_id, target: t, "origin": DERIVED} for t in sorted(wanted - stored)],
        )
