"""Facets of the catalogue: how many donors have each value of the descriptors a researcher
filters on (collection kind, modality, body part, material type, storage temperature,
diagnosis, sex, age band), over all donors or over the donors of a cohort query; and, for
each collection, the values it has (so the web catalogue can filter collection cards).

Values are the codes the query keys take (``CT``, ``ABDOMEN``, ``Tissue (Frozen)``, ``C74``,
``Male``), so a facet value can be turned into a criterion as it is. Diagnoses are counted by
ICD-10 3-character category (``C74.9`` and ``C74.0`` both count under ``C74``, a donor once);
ages by 10-year band of the donor's age at an imaging study (the ``age`` key's meaning). A
donor counts once per value, and under every value they have (a donor with a CT and an MR
counts under both). For researchers the counts are obfuscated like cohort counts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    case,
    cast,
    distinct,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    union,
    union_all,
)

from imaging_biobank.catalogue.donor_facets import (
    FACETS,
    ICD10,
    ICD10_CATEGORY,
    ITEM_KINDS,
    MAX_CASE,
    TERM_FACETS,
    built,
    categories_in_use,
)
from imaging_biobank.db._schema import metadata
from imaging_biobank.query.ast import Query
from imaging_biobank.query.engine import ROLES, as_seen, compile_query, matched
from imaging_biobank.query.keys import QueryKeyError
from imaging_biobank.samples.consent import Purpose, ruled_out

T = metadata.tables
YEARS_PER_UNIT = {"Years": 1.0, "Months": 1 / 12, "Weeks": 7 / 365.25, "Days": 1 / 365.25}


def age_band(years: float) -> str:
    """The 10-year band of an age: ``0-9``, ``10-19``, ..."""
    low = int(years // 10) * 10
    return f"{low}-{low + 9}"


def facets(
    conn: Connection,
    query: Query | None = None,
    *,
    role: str = "researcher",
    purpose: Purpose | None = None,
    step: int = 10,
    live: bool = False,
) -> dict[str, dict[str, int]]:
    """Donors per value of every facet (``FACETS``), of the donors matching ``query`` (all
    donors when None) that the declared ``purpose`` may use; obfuscated for researchers.

    Counted from ``donor_facet`` (the values the writers derived for each donor); with a
    purpose, before that table is built, or with ``live``, from the data itself."""
    if role not in ROLES:
        raise QueryKeyError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    donor = T["sample_donor"]
    donors: Any = None
    excluded_samples: Select[Any] | None = None
    if query is not None:
        donors = matched(compile_query(conn, query, purpose)).donors
    if purpose is not None:
        excluded_donors, excluded_samples = ruled_out(conn, purpose)
        if donors is None:
            donors = (
                select(donor.c.id)
                .where(donor.c.id.not_in(excluded_donors))
                .cte("cohort_donor")
                .prefix_with("MATERIALIZED")
            )
    if purpose is None and not live and built(conn):
        found = _summary_counts(conn, donors)
    else:
        found = _live_counts(conn, donors, excluded_samples)
    counts: dict[str, dict[str, int]] = {}
    for name, values in found.items():
        values = {k: as_seen(v, role, step) for k, v in values.items()}
        counts[name] = dict(sorted(values.items(), key=_order(name)))
    return counts


def _summary_counts(conn: Connection, donors: Any) -> dict[str, dict[str, int]]:
    """Donors per facet value from ``donor_facet`` (of the cohort's donors, or all)."""
    f = T["donor_facet"]
    statement = select(f.c.facet, f.c.value, func.count()).group_by(f.c.facet, f.c.value)
    if donors is not None:
        statement = statement.where(f.c.sample_donor_id.in_(select(donors.c.id)))
    found: dict[str, dict[str, int]] = {name: {} for name in FACETS}
    for name, value, n in conn.execute(statement):
        label = _label(name, value) if name in found else None
        if label is not None:
            found[name][label] = int(n)
    return found


def _live_counts(
    conn: Connection, donors: Any, excluded_samples: Select[Any] | None
) -> dict[str, dict[str, int]]:
    """Donors per facet value counted from the data itself: for a declared purpose (whose
    excluded samples change what a donor counts under) and before ``donor_facet`` is built.
    One statement counts every facet (the cohort's donors computed once, as a materialised
    CTE). Coded facets are grouped by term row, which the indexes on (term, donor) serve in
    order, and named by code after; should two editions' terms with one code both occur,
    that facet is counted again by code, so a donor is never counted twice."""
    c = T["collection"]
    kinds = sorted(conn.execute(select(c.c.kind).distinct()).scalars())
    scope = _Scope(donors, excluded_samples, kinds, categories_in_use(conn))
    parts = [
        part
        for number, name in enumerate(FACETS)
        for part in (
            _kinds(number, scope) if name == "collection_kind" else [_facet(number, name, scope)]
        )
    ]
    found: dict[str, dict[str, int]] = {name: {} for name in FACETS}
    repeated: set[str] = set()
    for number, value, n in conn.execute(union_all(*parts)):
        name = FACETS[int(number)]
        label = None if value is None else _label(name, value)
        if label is None or not n:
            continue
        if label in found[name] and name in TERM_FACETS:
            repeated.add(name)
        found[name][label] = found[name].get(label, 0) + int(n)
    for name in repeated:  # two terms with one code: count the donors by code
        found[name] = {}
        for value, n in conn.execute(_by_code(name, scope)):
            if n:
                found[name][str(value)] = int(n)
    return found


class _Scope:
    """Which donors and samples facets count: the cohort's donors (all when None), and the
    samples a purpose rules out."""

    def __init__(
        self,
        donors: Any,
        excluded_samples: Select[Any] | None,
        kinds: list[str],
        categories: dict[int, str],
    ):
        self.donors = donors
        self.excluded_samples = excluded_samples
        self.kinds = kinds  # the collection kinds registered
        self.categories = categories  # ICD-10 category of each disease id in use

    def of(self, column: Any) -> list[ColumnElement[bool]]:
        """The condition that ``column`` (a donor id) is one of the donors counted."""
        return [] if self.donors is None else [column.in_(select(self.donors.c.id))]

    def samples(self) -> list[ColumnElement[bool]]:
        x = T["sample"]
        if self.excluded_samples is None:
            return self.of(x.c.sample_donor_id)
        return [*self.of(x.c.sample_donor_id), x.c.id.not_in(self.excluded_samples)]


FacetRows = Select[Any, Any, Any]  # (facet number, value, donors)


def _facet(number: int, name: str, scope: _Scope) -> FacetRows:
    """(facet number, value, donors) rows of one facet."""
    tag = literal(number, Integer)
    if name in TERM_FACETS:
        table_name, column_name, term_name = TERM_FACETS[name]
        table, term = T[table_name], T[term_name]
        column = table.c[column_name]
        kept = scope.samples() if table_name == "sample" else scope.of(table.c.sample_donor_id)
        grouped = (
            select(
                column.label("term_id"), func.count(distinct(table.c.sample_donor_id)).label("n")
            )
            .where(column.is_not(None), *kept)
            .group_by(column)
            .subquery()
        )
        return select(tag, cast(term.c.code, String), grouped.c.n).join(
            term, term.c.id == grouped.c.term_id
        )
    if name == "sex":
        d, sex = T["sample_donor"], T["sex"]
        grouped = (
            select(d.c.sex_id, func.count().label("n"))
            .where(*scope.of(d.c.id))
            .group_by(d.c.sex_id)
            .subquery()
        )
        return select(tag, cast(sex.c.code, String), grouped.c.n).join(
            sex, sex.c.id == grouped.c.sex_id
        )
    if name == "age":
        s, study = T["imaging_series"], T["imaging_study"]
        pairs = (  # GROUP BY, not DISTINCT: SQLite then reads the index in order
            select(s.c.imaging_study_id, s.c.sample_donor_id)
            .where(*scope.of(s.c.sample_donor_id))
            .group_by(s.c.imaging_study_id, s.c.sample_donor_id)
            .subquery()
        )
        band = cast(func.floor(study.c.patient_age_years / 10), Integer)
        return (
            select(tag, cast(band, String), func.count(distinct(pairs.c.sample_donor_id)))
            .join(study, study.c.id == pairs.c.imaging_study_id)
            .where(study.c.patient_age_years.is_not(None))
            .group_by(band)
        )
    assert name == "diagnosis"
    return _diagnoses(tag, scope)


def _kinds(number: int, scope: _Scope) -> list[FacetRows]:
    """(facet number, collection kind, donors) of each registered kind: the donors with an
    item in a collection of the kind (their foreign key says which kind) or declared
    members of one. Over all donors, the union of the item tables' donors (read in index
    order); over a cohort, a look-up per cohort donor."""
    d, link, c = T["sample_donor"], T["collection_sample_donor"], T["collection"]
    tag = literal(number, Integer)
    parts = []
    for kind in scope.kinds:
        items = [T[table] for table, of in ITEM_KINDS if of == kind and table in T]
        of_kind = link.c.collection_id.in_(select(c.c.id).where(c.c.kind == kind))
        if scope.donors is None:
            members = [
                select(t.c.sample_donor_id.label("donor")).group_by(t.c.sample_donor_id)
                for t in items
            ]
            members.append(select(link.c.sample_donor_id).where(of_kind))
            counted = select(tag, literal(kind, String), func.count()).select_from(
                union(*members).subquery()
            )
        else:
            tests = [exists().where(t.c.sample_donor_id == d.c.id) for t in items]
            tests.append(exists().where(link.c.sample_donor_id == d.c.id, of_kind))
            counted = (
                select(tag, literal(kind, String), func.count())
                .select_from(d)
                .where(*scope.of(d.c.id), or_(*tests))
            )
        parts.append(counted)
    return parts


def _diagnoses(tag: Any, scope: _Scope) -> FacetRows:
    """(facet number, ICD-10 category, donors) of the diagnoses of events and samples. The
    categories of the diseases in use are known (``categories_in_use``): a short CASE names
    them without a join per diagnosis; with many, the disease rows are joined instead."""
    e, x, link = T["event"], T["sample"], T["sample_disease"]
    pairs = union_all(
        select(e.c.sample_donor_id, e.c.disease_id).where(
            e.c.disease_id.is_not(None), *scope.of(e.c.sample_donor_id)
        ),
        select(x.c.sample_donor_id, link.c.disease_id)
        .join(link, link.c.sample_id == x.c.id)
        .where(*scope.samples()),
    ).subquery()
    donors = func.count(distinct(pairs.c.sample_donor_id))
    if not scope.categories:  # no ICD-10 diagnosis anywhere: no rows
        return select(tag, cast(null(), String), literal(0, Integer)).where(false())
    if len(scope.categories) <= MAX_CASE:  # other diseases fall to a NULL category
        category = case(scope.categories, value=pairs.c.disease_id)
        return select(tag, cast(category, String), donors).group_by(category)
    disease, vocabulary = T["disease"], T["vocabulary"]
    prefix = func.substr(disease.c.code, 1, 3)
    return (
        select(tag, cast(prefix, String), donors)
        .join(disease, disease.c.id == pairs.c.disease_id)
        .join(vocabulary, vocabulary.c.id == disease.c.vocabulary_id)
        .where(
            vocabulary.c.name == ICD10,
            or_(func.length(disease.c.code) == 3, func.substr(disease.c.code, 4, 1) == "."),
        )
        .group_by(prefix)
    )


def _by_code(name: str, scope: _Scope) -> Select[Any, Any]:
    """(code, donors) of a coded facet, grouped by code (exact when editions share codes)."""
    table_name, column_name, term_name = TERM_FACETS[name]
    table, term = T[table_name], T[term_name]
    kept = scope.samples() if table_name == "sample" else scope.of(table.c.sample_donor_id)
    return (
        select(term.c.code, func.count(distinct(table.c.sample_donor_id)))
        .join(term, term.c.id == table.c[column_name])
        .where(*kept)
        .group_by(term.c.code)
    )


def _label(name: str, value: Any) -> str | None:
    """A facet value as shown and queried; None for values outside the facet (an ICD-10
    chapter or block that is not a category)."""
    if name == "age":
        return age_band(int(value) * 10)
    text = str(value)
    if name == "diagnosis" and not ICD10_CATEGORY.fullmatch(text):
        return None
    return text


def _order(name: str) -> Any:
    """Age bands in age order, other values by descending count then value."""
    if name == "age":
        return lambda item: int(item[0].split("-")[0])
    return lambda item: (-item[1], item[0])


def collection_facets(conn: Connection) -> dict[str, dict[str, list[str]]]:
    """For each collection (by identifier), the values it has of every facet, as its
    catalogue card shows them: derived from its rows where the writers derived them, else
    as declared at registration."""
    c = T["collection"]
    out: dict[str, dict[str, list[str]]] = {}
    ident: dict[int, str] = {}
    for cid, identifier, kind in conn.execute(select(c.c.id, c.c.identifier, c.c.kind)):
        ident[cid] = identifier
        out[identifier] = {name: [] for name in FACETS}
        out[identifier]["collection_kind"] = [kind]
    found: dict[tuple[str, str], set[str]] = {}

    def add(rows: Any, name: str) -> None:
        for cid, value in rows:
            if cid in ident and value is not None:
                found.setdefault((ident[cid], name), set()).add(str(value))

    s = T["imaging_series"]
    for name, column, term in (
        ("modality", s.c.modality_id, T["modality"]),
        ("body_part", s.c.body_part_examined_id, T["body_part_examined"]),
    ):
        add(
            conn.execute(
                select(s.c.image_collection_id, term.c.code)
                .join(term, term.c.id == column)
                .distinct()
            ),
            name,
        )
    for name, link, owner in (
        ("sex", "collection_sex", "collection_id"),
        ("material_type", "sample_tissue_collection_material_type", "sample_tissue_collection_id"),
        (
            "storage_temperature",
            "sample_tissue_collection_storage_temperature",
            "sample_tissue_collection_id",
        ),
    ):
        add(_shown_links(conn, name, link, owner), name)
    for cid, code in _shown_links(conn, "diagnosis", "collection_disease", "collection_id"):
        if cid in ident and ICD10_CATEGORY.fullmatch(code[:3]) and (len(code) == 3 or "." in code):
            found.setdefault((ident[cid], "diagnosis"), set()).add(code[:3])
    unit = T["age_unit"]
    for cid, low, high, d_low, d_high, unit_code in conn.execute(
        select(
            c.c.id,
            c.c.age_low,
            c.c.age_high,
            c.c.donor_age_low_years,
            c.c.donor_age_high_years,
            unit.c.code,
        ).outerjoin(unit, unit.c.id == c.c.age_unit_id)
    ):
        if d_low is not None and d_high is not None:
            low_years, high_years = float(d_low), float(d_high)
        elif low is not None and high is not None and unit_code in YEARS_PER_UNIT:
            factor = YEARS_PER_UNIT[unit_code]
            low_years, high_years = low * factor, high * factor
        else:
            continue
        bands = range(int(low_years // 10), int(high_years // 10) + 1)
        found[(ident[cid], "age")] = {age_band(b * 10) for b in bands}
    for (identifier, name), values in found.items():
        if name == "diagnosis":
            values = {v for v in values if ICD10_CATEGORY.fullmatch(v)}
        key = (lambda v: int(v.split("-")[0])) if name == "age" else None
        out[identifier][name] = sorted(values, key=key)
    return out


def _shown_links(conn: Connection, name: str, link: str, owner: str) -> list[tuple[int, str]]:
    """(collection id, term code) of a descriptor link table: the derived links of a
    collection that has any, else its declared ones."""
    table = T[link]
    term = T[{"sex": "sex", "diagnosis": "disease"}.get(name, name)]
    rows = conn.execute(
        select(table.c[owner], table.c.origin, term.c.code).join(
            term, term.c.id == table.c[f"{term.name}_id"]
        )
    ).all()
    derived = {cid for cid, origin, _ in rows if origin == "derived"}
    return [
        (cid, code)
        for cid, origin, code in rows
        if origin == ("derived" if cid in derived else "declared")
    ]


__all__ = ["FACETS", "age_band", "collection_facets", "facets"]
