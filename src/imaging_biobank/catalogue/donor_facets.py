"""The values each donor has for the catalogue's facets, kept in ``donor_facet``.

Facet counts (donors per modality, body part, material type, storage temperature, ICD-10
category, sex, age band at imaging, collection kind) are then a grouping of small rows
instead of distinct-donor counts over every series, sample and event. The rows of a
collection's donors are recomputed with its derived descriptors, that is after every ingest
and import; a donor's rows always come from all of the donor's data. The table is empty
until the first such write (an upgraded database), and counts are then made from the data.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union,
)

from imaging_biobank.db._schema import metadata

T = metadata.tables
FACETS = (
    "collection_kind",
    "modality",
    "body_part",
    "material_type",
    "storage_temperature",
    "diagnosis",
    "sex",
    "age",
)
TERM_FACETS = {  # facet: (the row's table, its term column, the term table)
    "modality": ("imaging_series", "modality_id", "modality"),
    "body_part": ("imaging_series", "body_part_examined_id", "body_part_examined"),
    "material_type": ("sample", "material_type_id", "material_type"),
    "storage_temperature": ("sample", "storage_temperature_id", "storage_temperature"),
}
# the kind of every collection an item table's rows belong to (their foreign keys point at
# that kind's table); a donor's other collections are those linked in collection_sample_donor
ITEM_KINDS = (
    ("imaging_series", "image"),
    ("sample", "sample_tissue"),
    ("clinical_record", "clinical_variable"),
    ("molecular_biomarker_result", "molecular_biomarker"),
)
ICD10 = "disease.icd-10"
ICD10_CATEGORY = re.compile(r"[A-Z][0-9][0-9A-Z]")
MAX_CASE = 64  # more diseases in use than this: join the disease rows instead of a CASE


def categories_in_use(conn: Connection) -> dict[int, str]:
    """The ICD-10 category (``C74``) of every disease row that an event or a sample names:
    a category or a code below one (a chapter or block has none)."""
    e, link = T["event"], T["sample_disease"]
    disease, vocabulary = T["disease"], T["vocabulary"]
    used = union(
        select(e.c.disease_id).where(e.c.disease_id.is_not(None)).group_by(e.c.disease_id),
        select(link.c.disease_id).group_by(link.c.disease_id),
    ).subquery()
    rows = conn.execute(
        select(disease.c.id, disease.c.code)
        .join(vocabulary, vocabulary.c.id == disease.c.vocabulary_id)
        .where(disease.c.id.in_(select(used.c.disease_id)), vocabulary.c.name == ICD10)
    )
    return {
        int(i): str(code)[:3]
        for i, code in rows
        if ICD10_CATEGORY.fullmatch(str(code)[:3]) and (len(code) == 3 or code[3] == ".")
    }


def _pairs(conn: Connection, name: str) -> list[Select[Any]]:
    """(donor id, value) rows of one facet, over all donors."""
    if name in TERM_FACETS:
        table_name, column_name, term_name = TERM_FACETS[name]
        table, term = T[table_name], T[term_name]
        return [
            select(table.c.sample_donor_id, cast(term.c.code, String)).join(
                term, term.c.id == table.c[column_name]
            )
        ]
    if name == "sex":
        d, sex = T["sample_donor"], T["sex"]
        return [select(d.c.id, cast(sex.c.code, String)).join(sex, sex.c.id == d.c.sex_id)]
    if name == "age":
        s, study = T["imaging_series"], T["imaging_study"]
        band = cast(cast(func.floor(study.c.patient_age_years / 10), Integer), String)
        return [
            select(s.c.sample_donor_id, band)
            .join(study, study.c.id == s.c.imaging_study_id)
            .where(study.c.patient_age_years.is_not(None))
        ]
    if name == "collection_kind":
        link, c = T["collection_sample_donor"], T["collection"]
        parts: list[Select[Any]] = [
            select(link.c.sample_donor_id, cast(c.c.kind, String)).join(
                c, c.c.id == link.c.collection_id
            )
        ]
        for item_table, kind in ITEM_KINDS:
            if item_table in T:
                items = T[item_table]
                parts.append(
                    select(items.c.sample_donor_id, literal(kind, String)).group_by(
                        items.c.sample_donor_id
                    )
                )
        return parts
    assert name == "diagnosis"
    e, x, link = T["event"], T["sample"], T["sample_disease"]
    diagnosed = union(
        select(e.c.sample_donor_id.label("donor"), e.c.disease_id.label("disease")).where(
            e.c.disease_id.is_not(None)
        ),
        select(x.c.sample_donor_id, link.c.disease_id).join(link, link.c.sample_id == x.c.id),
    ).subquery()
    categories = categories_in_use(conn)
    if not categories:
        return []
    if len(categories) <= MAX_CASE:  # other diseases fall to a NULL category
        category = case(categories, value=diagnosed.c.disease)
        return [select(diagnosed.c.donor, cast(category, String)).where(category.is_not(None))]
    disease, vocabulary = T["disease"], T["vocabulary"]
    prefix = func.substr(disease.c.code, 1, 3)
    return [
        select(diagnosed.c.donor, cast(prefix, String))
        .join(disease, disease.c.id == diagnosed.c.disease)
        .join(vocabulary, vocabulary.c.id == disease.c.vocabulary_id)
        .where(
            vocabulary.c.name == ICD10,
            or_(func.length(disease.c.code) == 3, func.substr(disease.c.code, 4, 1) == "."),
        )
    ]


def built(conn: Connection) -> bool:
    """Whether the table has been filled (by any write since the upgrade that made it)."""
    f = T["donor_facet"]
    return conn.execute(select(literal(1)).select_from(f).limit(1)).first() is not None


def refresh_donor_facets(conn: Connection, donors: Select[Any] | None = None) -> None:
    """Recompute the facet rows of ``donors`` (a select of donor ids; all donors when None,
    or when the table was never filled)."""
    f = T["donor_facet"]
    if donors is not None and not built(conn):
        donors = None
    conn.execute(delete(f) if donors is None else delete(f).where(f.c.sample_donor_id.in_(donors)))
    parts = []
    for name in FACETS:
        for pairs in _pairs(conn, name):
            if donors is not None:  # inside the pairs' select, so only these donors are read
                pairs = pairs.where(pairs.selected_columns[0].in_(donors))
            found = pairs.subquery()
            donor, value = found.c[0], found.c[1]
            parts.append(select(literal(name, String), value, donor).where(value.is_not(None)))
    conn.execute(insert(f).from_select(["facet", "value", "sample_donor_id"], union(*parts)))
