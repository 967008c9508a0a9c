"""Running a cohort query: the tree compiled to SQL on the model, counts per collection,
small counts obfuscated for researchers, a manifest of the matching series.

Semantics: a donor matches when the query is true of them, where criteria on series are
true of one series and criteria on samples of one sample: within an AND, the series
criteria are one EXISTS over the donor's series (so ``modality = CT and slice_thickness
<= 3`` means one CT series of at most 3 mm), likewise for samples. The matching series
(and samples) are the matching donors' series (samples) that meet the top-level series
(sample) criteria. Donors whose use and access conditions rule out the declared purpose
are left out, as are samples whose own conditions do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    distinct,
    exists,
    func,
    not_,
    or_,
    select,
    true,
)

from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import CollectionLookupError, find_collection
from imaging_biobank.query.ast import Leaf, Node, Query, leaves
from imaging_biobank.query.keys import (
    DONOR,
    SAMPLE,
    SERIES,
    QueryKeyError,
    diagnosis_codes,
    equivalent_terms,
    key,
)
from imaging_biobank.samples.consent import Purpose, ruled_out

T = metadata.tables
ROLES = ("researcher", "data_manager", "admin")
FORMAT = "imaging-biobank/cohort@1"


def obfuscate(n: int, step: int = 10) -> int:
    """The Locator's default: 0 stays 0, 1 to ``step - 1`` become ``step``, others are
    rounded to the nearest multiple of ``step`` (halves up). Deterministic."""
    if n <= 0:
        return 0
    if n < step:
        return step
    return ((n + step // 2) // step) * step


@dataclass
class Counts:
    donors: int = 0
    samples: int = 0
    studies: int = 0
    series: int = 0
    instances: int = 0

    def obfuscated(self, step: int = 10) -> Counts:
        return Counts(*(obfuscate(v, step) for v in self.__dict__.values()))


@dataclass
class CohortResult:
    query: str
    totals: Counts
    by_collection: list[dict[str, Any]] = field(default_factory=list)
    strata: dict[str, dict[str, int]] = field(default_factory=dict)
    obfuscated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "query": self.query,
            "obfuscated": self.obfuscated,
            "totals": self.totals.__dict__,
            "by_collection": self.by_collection,
            "strata": self.strata,
        }


class _Compiler:
    """Leaves to predicates on their level's table, with the vocabulary ids looked up."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.series = T["imaging_series"]
        self.study = T["imaging_study"]
        self.acq = T["acquisition_parameters"]
        self.rec = T["reconstruction_parameters"]
        self.info = T["modality_information"]
        self.sample = T["sample"]
        self.donor = T["sample_donor"]

    # --- values -------------------------------------------------------------------------

    def term_ids(self, table: str, values: Iterable[Any]) -> list[int]:
        pairs: set[tuple[str, str]] = set()
        for value in values:
            pairs |= equivalent_terms(table, str(value))
        t, v = T[table], T["vocabulary"]
        rows = self.conn.execute(
            select(t.c.id, v.c.name, t.c.code)
            .join(v, v.c.id == t.c.vocabulary_id)
            .where(t.c.code.in_({code for _, code in pairs}))
        ).all()
        return [int(r.id) for r in rows if (r.name, r.code) in pairs]

    def collection_ids(self, values: Iterable[Any]) -> list[int]:
        ids = []
        for value in values:
            try:
                ids.append(find_collection(self.conn, str(value)).id)
            except CollectionLookupError as error:
                raise QueryKeyError(str(error)) from None
        return ids

    # --- leaves ---------------------------------------------------------------------------

    def leaf(self, leaf: Leaf) -> ColumnElement[bool]:
        k = key(leaf.key)
        values = _values(leaf)
        if k.kind == "term":
            column = self._column(k.column)
            assert k.vocabulary is not None
            return self._membership(leaf, column.in_(self.term_ids(k.vocabulary, values)))
        if k.kind == "collection":
            if k.level == DONOR:
                return self._membership(leaf, self._donor_in_collections(values))
            return self._membership(leaf, self._column(k.column).in_(self.collection_ids(values)))
        if k.kind == "diagnosis":
            codes: set[str] = set()
            for value in values:
                codes |= diagnosis_codes(value)
            return self._membership(leaf, self._donor_with_diagnosis(codes))
        column = self._column(k.column)
        if k.kind == "text":
            lowered = [str(v).lower() for v in values]
            if leaf.type in ("EQUALS", "NOT_EQUALS", "IN", "NOT_IN"):
                return self._membership(leaf, func.lower(column).in_(lowered))
            raise QueryKeyError(f"{k.name} is text: use =, != or in")
        converted = [_number(k.name, v) if k.kind == "number" else _date(k.name, v) for v in values]
        return _compare(column, leaf.type, converted, k.name)

    def _membership(self, leaf: Leaf, test: ColumnElement[bool]) -> ColumnElement[bool]:
        if leaf.type in ("EQUALS", "IN"):
            return test
        if leaf.type in ("NOT_EQUALS", "NOT_IN"):
            return not_(test)
        raise QueryKeyError(f"{leaf.key} takes =, !=, in or not in, not {leaf.type}")

    def _column(self, dotted: str) -> Any:
        table, column = dotted.split(".")
        return T[table].c[column]

    def _donor_in_collections(self, values: list[Any]) -> ColumnElement[bool]:
        ids = self.collection_ids(values)
        link = T["collection_sample_donor"]
        member = select(link.c.sample_donor_id).where(link.c.collection_id.in_(ids))
        imaged = select(self.series.c.sample_donor_id).where(
            self.series.c.image_collection_id.in_(ids)
        )
        sampled = select(self.sample.c.sample_donor_id).where(self.sample.c.collection_id.in_(ids))
        return self.donor.c.id.in_(member.union(imaged, sampled))

    def _donor_with_diagnosis(self, codes: set[str]) -> ColumnElement[bool]:
        disease, event, link = T["disease"], T["event"], T["sample_disease"]
        ids = select(disease.c.id).where(disease.c.code.in_(codes))
        by_event = select(event.c.sample_donor_id).where(event.c.disease_id.in_(ids))
        by_sample = (
            select(self.sample.c.sample_donor_id)
            .join(link, link.c.sample_id == self.sample.c.id)
            .where(link.c.disease_id.in_(ids))
        )
        return self.donor.c.id.in_(by_event.union(by_sample))

    # --- trees ----------------------------------------------------------------------------

    def level_predicate(self, query: Query) -> ColumnElement[bool]:
        """A one-level tree as a predicate on that level's row."""
        if isinstance(query, Leaf):
            return self.leaf(query)
        parts = [self.level_predicate(c) for c in query.children]
        if query.operand == "NOT":
            return not_(parts[0])
        return and_(*parts) if query.operand == "AND" else or_(*parts)

    def donor_predicate(self, query: Query) -> ColumnElement[bool]:
        """The tree as a predicate on ``sample_donor``."""
        level = _level(query)
        if level == DONOR:
            return self.level_predicate(query)
        if level in (SERIES, SAMPLE):
            return self._exists(level, self.level_predicate(query))
        assert isinstance(query, Node)
        if query.operand == "NOT":
            return not_(self.donor_predicate(query.children[0]))
        if query.operand == "OR":
            return or_(*(self.donor_predicate(c) for c in query.children))
        grouped: dict[str, list[Query]] = {}
        mixed: list[Query] = []
        for child in query.children:
            child_level = _level(child)
            if child_level in (SERIES, SAMPLE):
                grouped.setdefault(child_level, []).append(child)
            else:
                mixed.append(child)
        parts = [
            self._exists(lvl, and_(*(self.level_predicate(c) for c in children)))
            for lvl, children in grouped.items()
        ]
        parts += [self.donor_predicate(c) for c in mixed]
        return and_(*parts)

    def _exists(self, level: str, predicate: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists(self.level_select(level, predicate, self.donor.c.id))

    def level_select(
        self, level: str, predicate: ColumnElement[bool], donor: Any | None = None
    ) -> Select[Any]:
        """The rows of a level meeting ``predicate`` (of one donor, when given)."""
        if level == SERIES:
            s = self.series
            query = (
                select(s.c.id)
                .select_from(
                    s.join(self.study, self.study.c.id == s.c.imaging_study_id)
                    .outerjoin(self.acq, self.acq.c.imaging_series_id == s.c.id)
                    .outerjoin(self.rec, self.rec.c.imaging_series_id == s.c.id)
                    .outerjoin(self.info, self.info.c.id == self.acq.c.modality_information_id)
                )
                .where(predicate)
            )
            return query.where(s.c.sample_donor_id == donor) if donor is not None else query
        x = self.sample
        query = select(x.c.id).where(predicate)
        return query.where(x.c.sample_donor_id == donor) if donor is not None else query


def _values(leaf: Leaf) -> list[Any]:
    if leaf.type in ("IN", "NOT_IN", "BETWEEN"):
        return list(leaf.value)
    return [leaf.value]


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise QueryKeyError(f"{name} takes a number, not {value!r}") from None


def _date(name: str, value: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise QueryKeyError(f"{name} takes a date YYYY-MM-DD, not {value!r}") from None


def _compare(column: Any, kind: str, values: list[Any], name: str) -> ColumnElement[bool]:
    if kind == "EQUALS":
        return column == values[0]  # type: ignore[no-any-return]
    if kind == "NOT_EQUALS":
        return column != values[0]  # type: ignore[no-any-return]
    if kind == "LESS_THAN":
        return column < values[0]  # type: ignore[no-any-return]
    if kind == "LESS_OR_EQUAL":
        return column <= values[0]  # type: ignore[no-any-return]
    if kind == "GREATER_THAN":
        return column > values[0]  # type: ignore[no-any-return]
    if kind == "GREATER_OR_EQUAL":
        return column >= values[0]  # type: ignore[no-any-return]
    if kind == "BETWEEN":
        low, high = sorted(values)
        return column.between(low, high)  # type: ignore[no-any-return]
    if kind in ("IN", "NOT_IN"):
        test = column.in_(values)
        return test if kind == "IN" else not_(test)  # type: ignore[no-any-return]
    raise QueryKeyError(f"{name}: unknown comparison {kind}")


def _level(query: Query) -> str | None:
    """The one level of every leaf of the tree, or None when it mixes levels."""
    found = {key(leaf.key).level for leaf in leaves(query)}
    return found.pop() if len(found) == 1 else None


def _top_filters(query: Query, level: str) -> list[Query]:
    """The parts of the top-level AND that are criteria on ``level`` alone."""
    if _level(query) == level:
        return [query]
    if isinstance(query, Node) and query.operand == "AND":
        return [c for c in query.children if _level(c) == level]
    return []


@dataclass
class Cohort:
    """The compiled query: its matching donors, series and samples as subqueries."""

    donors: Select[Any]
    series: Select[Any]
    samples: Select[Any]


def compile_query(conn: Connection, query: Query, purpose: Purpose | None = None) -> Cohort:
    """The matching donors, series and samples of a query (``QueryKeyError`` for bad keys
    or values)."""
    c = _Compiler(conn)
    donors = select(c.donor.c.id).where(c.donor_predicate(query))
    excluded_samples: Select[Any] | None = None
    if purpose is not None:
        excluded_donors, excluded_samples = ruled_out(conn, purpose)
        donors = donors.where(c.donor.c.id.not_in(excluded_donors))
    series_filter = [c.level_predicate(q) for q in _top_filters(query, SERIES)]
    sample_filter = [c.level_predicate(q) for q in _top_filters(query, SAMPLE)]
    series = c.level_select(SERIES, and_(true(), *series_filter)).where(
        c.series.c.sample_donor_id.in_(donors)
    )
    samples = c.level_select(SAMPLE, and_(true(), *sample_filter)).where(
        c.sample.c.sample_donor_id.in_(donors)
    )
    if excluded_samples is not None:
        samples = samples.where(c.sample.c.id.not_in(excluded_samples))
    return Cohort(donors, series, samples)


def count(
    conn: Connection,
    query: Query,
    *,
    text: str = "",
    role: str = "researcher",
    purpose: Purpose | None = None,
    by: Sequence[str] = (),
    step: int = 10,
) -> CohortResult:
    """Counts of the cohort, in total and per collection (obfuscated for researchers: 1 to
    ``step - 1`` show as ``step``, others are rounded to multiples of ``step``)."""
    if role not in ROLES:
        raise QueryKeyError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    cohort = compile_query(conn, query, purpose)
    s, x, c = T["imaging_series"], T["sample"], T["collection"]
    series_ids = cohort.series.subquery()
    sample_ids = cohort.samples.subquery()
    matched_series = s.c.id.in_(select(series_ids.c.id))
    matched_samples = x.c.id.in_(select(sample_ids.c.id))
    totals = Counts(
        donors=conn.execute(
            select(func.count()).select_from(cohort.donors.subquery())
        ).scalar_one(),
        samples=conn.execute(select(func.count()).where(matched_samples)).scalar_one(),
        studies=conn.execute(
            select(func.count(distinct(s.c.imaging_study_id))).where(matched_series)
        ).scalar_one(),
        series=conn.execute(select(func.count()).where(matched_series)).scalar_one(),
        instances=int(
            conn.execute(
                select(func.coalesce(func.sum(s.c.number_of_instances), 0)).where(matched_series)
            ).scalar_one()
        ),
    )
    rows: list[dict[str, Any]] = []
    for cid, ident, kind in conn.execute(
        select(c.c.id, c.c.identifier, c.c.kind).order_by(c.c.identifier)
    ):
        if kind == "image":
            n_donors, n_studies, n_series, n_instances = conn.execute(
                select(
                    func.count(distinct(s.c.sample_donor_id)),
                    func.count(distinct(s.c.imaging_study_id)),
                    func.count(),
                    func.coalesce(func.sum(s.c.number_of_instances), 0),
                ).where(matched_series, s.c.image_collection_id == cid)
            ).one()
            counts = Counts(int(n_donors), 0, int(n_studies), int(n_series), int(n_instances))
        elif kind == "sample_tissue":
            n_donors, n_samples = conn.execute(
                select(func.count(distinct(x.c.sample_donor_id)), func.count()).where(
                    matched_samples, x.c.collection_id == cid
                )
            ).one()
            counts = Counts(int(n_donors), int(n_samples))
        else:
            continue
        if counts.donors:
            shown = counts.obfuscated(step) if role == "researcher" else counts
            rows.append({"collection": ident, "kind": kind, **shown.__dict__})
    strata = {name: _stratum(conn, cohort, name, role, step) for name in by}
    shown_totals = totals.obfuscated(step) if role == "researcher" else totals
    return CohortResult(text, shown_totals, rows, strata, role == "researcher")


def _stratum(conn: Connection, cohort: Cohort, name: str, role: str, step: int) -> dict[str, int]:
    d, sex, s, study = T["sample_donor"], T["sex"], T["imaging_series"], T["imaging_study"]
    donors = cohort.donors.subquery()
    if name == "sex":
        rows = conn.execute(
            select(sex.c.code, func.count())
            .join(d, d.c.sex_id == sex.c.id)
            .where(d.c.id.in_(select(donors.c.id)))
            .group_by(sex.c.code)
        ).all()
    elif name == "modality":
        series_ids = cohort.series.subquery()
        rows = conn.execute(
            select(
                func.coalesce(s.c.modality_value, "unknown"),
                func.count(distinct(s.c.sample_donor_id)),
            )
            .where(s.c.id.in_(select(series_ids.c.id)))
            .group_by(s.c.modality_value)
        ).all()
    elif name == "age":
        series_ids = cohort.series.subquery()
        band = func.floor(study.c.patient_age_years / 10) * 10
        rows = conn.execute(
            select(band, func.count(distinct(s.c.sample_donor_id)))
            .join(study, study.c.id == s.c.imaging_study_id)
            .where(s.c.id.in_(select(series_ids.c.id)), study.c.patient_age_years.is_not(None))
            .group_by(band)
        ).all()
        return {
            f"{int(b)}-{int(b) + 9}": obfuscate(int(n), step) if role == "researcher" else int(n)
            for b, n in rows
        }
    else:
        raise QueryKeyError(f"unknown stratifier {name!r}; use sex, age or modality")
    return {str(k): obfuscate(int(n), step) if role == "researcher" else int(n) for k, n in rows}


MANIFEST_COLUMNS = (
    "donor",
    "collection",
    "study_instance_uid",
    "series_instance_uid",
    "modality",
    "body_part",
    "instances",
    "location",
)


def manifest(
    conn: Connection, query: Query, *, role: str, purpose: Purpose | None = None
) -> list[dict[str, Any]]:
    """The matching series, one row each, for roles allowed to see them (not researchers):
    pseudonymised donor, study and series UIDs, collection, the folder or URL of its files."""
    if role == "researcher":
        raise PermissionError("a manifest of series is for data managers (role data_manager)")
    cohort = compile_query(conn, query, purpose)
    s, st, d, c, i = (
        T["imaging_series"],
        T["imaging_study"],
        T["sample_donor"],
        T["collection"],
        T["imaging_instance"],
    )
    ids = cohort.series.subquery()
    location = (
        select(func.min(i.c.location)).where(i.c.imaging_series_id == s.c.id).scalar_subquery()
    )
    rows = conn.execute(
        select(
            d.c.pseudonym,
            c.c.identifier,
            st.c.study_instance_uid,
            s.c.series_instance_uid,
            s.c.modality_value,
            s.c.body_part_examined_value,
            s.c.number_of_instances,
            location,
        )
        .join(st, st.c.id == s.c.imaging_study_id)
        .join(d, d.c.id == s.c.sample_donor_id)
        .join(c, c.c.id == s.c.image_collection_id)
        .where(s.c.id.in_(select(ids.c.id)))
        .order_by(s.c.series_instance_uid)
    ).all()
    out = []
    for row in rows:
        record = dict(zip(MANIFEST_COLUMNS, row, strict=True))
        loc = record["location"] or ""
        record["location"] = loc.rsplit("/", 1)[0] if "://" not in loc else loc
        out.append(record)
    return out


__all__ = ["CohortResult", "Counts", "compile_query", "count", "manifest", "obfuscate"]
