"""Running quality rules on a database: one query (or two) per rule, findings out.

Each finding names its rule, the object (a study, series or SOP Instance UID, a donor
pseudonym, a collection id), the collection it belongs to, the actual value and why it is
wrong. Reading only: nothing is written.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, and_, exists, func, not_, or_, select

from imaging_biobank.db._schema import metadata
from imaging_biobank.quality import scopes
from imaging_biobank.quality.ruleset import (
    SEVERITIES,
    DeidentifiedRule,
    InstanceFileRule,
    LoadedRule,
    OneValueRule,
    RangeRule,
    RequiredRule,
    StudyHasSeriesRule,
    StudyOneDonorRule,
    _Rule,
)

T = metadata.tables
FORMAT = "imaging-biobank/check@1"
RUN_SLACK = dt.timedelta(seconds=2)  # timestamps of runs and rows: second resolution on SQLite
LISTED = 5  # objects named in a reason about many


@dataclass(frozen=True)
class Finding:
    """One object that breaks one rule."""

    rule: str
    severity: str
    scope: str
    object: str  # UID, pseudonym or collection id
    collection: str | None
    reason: str
    value: Any = None  # the actual value (JSON-able)
    context: dict[str, str] = field(default_factory=dict)  # e.g. the series' study UID

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "scope": self.scope,
            "object": self.object,
            "collection": self.collection,
            "context": self.context,
            "value": self.value,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Target:
    """The collection a check is limited to (None: the whole database)."""

    id: int
    identifier: str
    kind: str


@dataclass
class CheckReport:
    """The outcome of a check: the rules run and what they found."""

    rules: list[LoadedRule]
    findings: list[Finding]
    collection: str | None = None

    def counts(self) -> dict[str, int]:
        found = Counter(f.severity for f in self.findings)
        return {severity: found[severity] for severity in SEVERITIES}

    def per_rule(self) -> dict[str, int]:
        found = Counter(f.rule for f in self.findings)
        return {loaded.rule.id: found[loaded.rule.id] for loaded in self.rules}

    def failing(self, fail_on: str) -> list[Finding]:
        """The findings at ``fail_on`` or more severe."""
        worst = SEVERITIES[: SEVERITIES.index(fail_on) + 1]
        return [f for f in self.findings if f.severity in worst]


def run_checks(
    conn: Connection,
    rules: Sequence[LoadedRule],
    target: Target | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckReport:
    """Run ``rules`` (on one collection when ``target`` is given); findings sorted by
    severity, then rule order, collection and object."""
    findings: list[Finding] = []
    order = {loaded.rule.id: i for i, loaded in enumerate(rules)}
    for loaded in rules:
        if progress is not None:
            progress(loaded.rule.id)
        findings.extend(_CHECKS[type(loaded.rule)](conn, loaded.rule, target))
    findings.sort(
        key=lambda f: (
            SEVERITIES.index(f.severity),
            order[f.rule],
            f.collection or "",
            f.object,
        )
    )
    return CheckReport(list(rules), findings, target.identifier if target else None)


# ---- helpers -----------------------------------------------------------------------------


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _filters(scope: scopes.Scope, rule: _Rule, target: Target | None) -> list[ColumnElement[bool]]:
    where = getattr(rule, "where", {}) or {}
    found = scopes.conditions(scope, where)
    if target is not None:
        found.append(scope.in_collection(target.id, target.kind))
    return found


def _collections_of(conn: Connection, scope: str, ids: Iterable[int]) -> dict[int, str]:
    """The collections of studies or donors (an object may be in several: joined by ', ')."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    s, c = T["imaging_series"], T["collection"]
    found: dict[int, set[str]] = defaultdict(set)
    key = s.c.imaging_study_id if scope == "study" else s.c.sample_donor_id
    queries = [select(key, c.c.identifier).join(c, c.c.id == s.c.image_collection_id)]
    if scope == "donor":
        link = T["collection_sample_donor"]
        queries.append(
            select(link.c.sample_donor_id, c.c.identifier).join(c, c.c.id == link.c.collection_id)
        )
        for table in ("sample", "clinical_record"):
            if table in T:
                t = T[table]
                queries.append(
                    select(t.c.sample_donor_id, c.c.identifier).join(c, c.c.id == t.c.collection_id)
                )
    for query in queries:
        first = query.selected_columns[0]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for id_, identifier in conn.execute(query.where(first.in_(chunk)).distinct()):
                found[id_].add(identifier)
    return {id_: ", ".join(sorted(names)) for id_, names in found.items()}


def _findings(
    conn: Connection,
    rule: _Rule,
    rows: Iterable[Any],
    reason: Callable[[Any], tuple[str, Any]],
) -> list[Finding]:
    """Findings from rows carrying the scope's identity columns."""
    rows = list(rows)
    collections: dict[int, str] = {}
    if rule.scope in ("study", "donor"):
        collections = _collections_of(conn, rule.scope, (row.row_id for row in rows))
    out = []
    for row in rows:
        mapping = row._mapping
        context = {
            k: str(mapping[k])
            for k in ("study_instance_uid", "series_instance_uid")
            if k in mapping and mapping[k] is not None
        }
        if "row_id" in mapping:
            collection = collections.get(mapping["row_id"])
        else:
            collection = mapping.get("collection")
        text, value = reason(row)
        out.append(
            Finding(
                rule.id,
                rule.severity,
                rule.scope,
                str(mapping["object"]),
                collection,
                text,
                _json_value(value),
                context,
            )
        )
    return out


# ---- parametrised checks -----------------------------------------------------------------


def _range(conn: Connection, rule: _Rule, target: Target | None) -> list[Finding]:
    assert isinstance(rule, RangeRule)
    scope = scopes.SCOPE[rule.scope]
    column = scope.resolve(rule.field)
    table = column.table
    low = table.c.get(f"{column.name}_min")
    high = table.c.get(f"{column.name}_max")
    outside: list[ColumnElement[bool]] = []
    for bound, limit, op in ((rule.min, low, "lt"), (rule.max, high, "gt")):
        if bound is None:
            continue
        for candidate in (column, limit):
            if candidate is not None:
                outside.append(candidate < bound if op == "lt" else candidate > bound)
    extra = [
        c.label(n) for c, n in ((column, "value"), (low, "low"), (high, "high")) if c is not None
    ]
    query = scopes.select_scope(scope, *extra).where(or_(*outside), *_filters(scope, rule, target))
    name = scopes.label(column)
    condition = scopes.where_text(rule.where)
    suffix = f" ({condition})" if condition else ""

    def reason(row: Any) -> tuple[str, Any]:
        m = row._mapping
        values = [v for v in (m["value"], m.get("low"), m.get("high")) if v is not None]
        spread = ""
        if m.get("low") is not None and m.get("high") is not None and m["low"] != m["high"]:
            spread = f", {_number(m['low'])} to {_number(m['high'])} over its instances"
        shown = _number(m["value"]) if m["value"] is not None else "none"
        parts = []
        if rule.max is not None and max(values) > rule.max:
            parts.append(f"above the maximum {_number(rule.max)}")
        if rule.min is not None and min(values) < rule.min:
            parts.append(f"below the minimum {_number(rule.min)}")
        text = f"{name} = {shown}{spread}: {' and '.join(parts)}{suffix}"
        return text, m["value"] if not spread else [m["low"], m["high"]]

    return _findings(conn, rule, conn.execute(query), reason)


def _absent(column: Column[Any]) -> ColumnElement[bool]:
    if scopes.is_text(column):
        return or_(column.is_(None), func.trim(column) == "")
    return column.is_(None)


def _required(conn: Connection, rule: _Rule, target: Target | None) -> list[Finding]:
    assert isinstance(rule, RequiredRule)
    scope = scopes.SCOPE[rule.scope]
    condition = scopes.where_text(rule.where)
    suffix = f" ({condition})" if condition else ""
    if rule.related is not None:
        missing = not_(scopes.related_exists(scope, rule.related, rule.related_where))
        wanted = rule.related.partition(".")[0]
        filtered = scopes.where_text(rule.related_where)
        text = f"no {wanted} row" + (f" with {filtered}" if filtered else "") + suffix
        query = scopes.select_scope(scope).where(missing, *_filters(scope, rule, target))
        return _findings(conn, rule, conn.execute(query), lambda _row: (text, None))
    columns = [scope.resolve(name) for name in rule.fields]
    names = ", ".join(scopes.label(c) for c in columns)
    query = scopes.select_scope(scope).where(
        and_(*(_absent(c) for c in columns)), *_filters(scope, rule, target)
    )
    what = "no value" if len(columns) == 1 else "none of"
    text = f"{what} {names}{suffix}"
    return _findings(conn, rule, conn.execute(query), lambda _row: (text, None))


_LEADING_LETTERS = re.compile(r"[A-Za-z]+")


def normalise(value: Any, how: str) -> str:
    """A value as a one-value-per-collection rule compares it."""
    text = str(value).strip()
    if how == "casefold":
        return text.casefold()
    if how == "alpha_prefix":
        first = text.split("\\")[0].strip()  # multi-valued (1-n): the first value
        match = _LEADING_LETTERS.match(first)
        return match.group(0).upper() if match else first
    return text


def _one_value(conn: Connection, rule: _Rule, target: Target | None) -> list[Finding]:
    assert isinstance(rule, OneValueRule)
    series = scopes.SCOPE["series"]
    column = series.resolve(rule.field)
    c = T["collection"]
    query = (
        select(c.c.identifier, column, func.count())
        .select_from(series.from_clause())
        .where(column.is_not(None), *_filters(series, rule, target))
        .group_by(c.c.identifier, column)
    )
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for identifier, value, count in conn.execute(query):
        if str(value).strip():
            per[identifier][normalise(value, rule.normalise)] += count
    condition = scopes.where_text(rule.where)
    how = {"exact": "", "casefold": " (ignoring case)", "alpha_prefix": " (leading letters)"}
    out = []
    for identifier, counts in sorted(per.items()):
        if len(counts) <= rule.max_values:
            continue
        listed = ", ".join(f"{v} ({n} series)" for v, n in counts.most_common())
        allowed = "one" if rule.max_values == 1 else f"at most {rule.max_values}"
        text = (
            f"{len(counts)} values of {scopes.label(column)}{how[rule.normalise]}"
            f"{' where ' + condition if condition else ''}, {allowed} expected: {listed}"
        )
        out.append(
            Finding(
                rule.id,
                rule.severity,
                rule.scope,
                identifier,
                identifier,
                text,
                dict(counts.most_common()),
            )
        )
    return out


# ---- built-in linkage checks -------------------------------------------------------------


def _study_one_donor(conn: Connection, rule: _Rule, target: Target | None) -> list[Finding]:
    assert isinstance(rule, StudyOneDonorRule)
    s, st, d, c = T["imaging_series"], T["imaging_study"], T["sample_donor"], T["collection"]
    shared = (
        select(s.c.imaging_study_id)
        .group_by(s.c.imaging_study_id)
        .having(func.count(func.distinct(s.c.sample_donor_id)) > 1)
    )
    query = (
        select(
            st.c.id,
            st.c.study_instance_uid,
            d.c.pseudonym,
            s.c.series_instance_uid,
            c.c.identifier,
        )
        .select_from(
            s.join(st, st.c.id == s.c.imaging_study_id)
            .join(d, d.c.id == s.c.sample_donor_id)
            .join(c, c.c.id == s.c.image_collection_id)
        )
        .where(s.c.imaging_study_id.in_(shared))
        .order_by(st.c.study_instance_uid, d.c.pseudonym, s.c.series_instance_uid)
    )
    if target is not None:
        query = query.where(scopes.SCOPE["study"].in_collection(target.id, target.kind))
    studies: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    collections: dict[str, set[str]] = defaultdict(set)
    for _id, uid, pseudonym, series_uid, identifier in conn.execute(query):
        studies[uid][pseudonym].append(series_uid)
        collections[uid].add(identifier)
    out = []
    for uid, donors in studies.items():
        listed = "; ".join(
            f"donor {p}: {len(series)} series ({', '.join(series[:LISTED])}"
            f"{', ...' if len(series) > LISTED else ''})"
            for p, series in donors.items()
        )
        out.append(
            Finding(
                rule.id,
                rule.severity,
                rule.scope,
                uid,
                ", ".join(sorted(collections[uid])),
                f"its series belong to {len(donors)} donors (PatientIDs): {listed}",
                {p: list(series) for p, series in donors.items()},
            )
        )
    return out


def _study_has_series(conn: Connection, rule: _Rule, target: Target | None) -> list[Finding]:
    assert isinstance(rule, StudyHasSeriesRule)
    if target is not None:
        return []  # a study without series belongs to no collection
    s, st = T["imaging_series"], T["imaging_study"]
    query = select(
        st.c.study_instance_uid.label("object"),
        st.c.id.label("row_id"),
        st.c.study_date,
        st.c.study_description,
    ).where(~exists().where(s.c.imaging_study_id == st.c.id))

    def reason(row: Any) -> tuple[str, Any]:
        known = [str(v) for v in (row.study_date, row.study_description) if v is not None]
        about = f" (study {', '.join(known)})" if known else ""
        return (
            "no series belongs to this study"
            f"{about}: a series whose instances name two Study Instance UIDs was filed"
            " under its other study, or its instances were refused as conflicts",
            None,
        )

    return _findings(conn, rule, conn.execute(query), reason)


def _instance_file(conn: Connection, rule: _Rule, target: Target | None) -> list[Finding]:
    assert isinstance(rule, InstanceFileRule)
    scope = scopes.SCOPE["instance"]
    i = T["imaging_instance"]
    query = scopes.select_scope(scope, i.c.location, i.c.file_size).where(
        i.c.location.is_not(None), *_filters(scope, rule, target)
    )
    problems: dict[str, tuple[str, Any]] = {}
    rows = []
    for row in conn.execute(query.execution_options(yield_per=2000)):
        location = row.location
        if "://" in location or "!/" in location or not os.path.isabs(location):
            continue  # PACS objects, archive members, de-identified views (clean paths)
        try:
            size = os.stat(location).st_size
        except FileNotFoundError:
            if rule.missing:
                problems[row.object] = (f"file missing: {location}", None)
                rows.append(row)
            continue
        except OSError as error:
            problems[row.object] = (f"cannot read {location}: {error.strerror}", None)
            rows.append(row)
            continue
        if rule.size and row.file_size is not None and size != row.file_size:
            problems[row.object] = (
                f"{location} is {size:,} bytes, {row.file_size:,} when ingested: its content"
                " changed under the same SOP Instance UID (ingest it again to update)",
                size,
            )
            rows.append(row)
    return _findings(conn, rule, rows, lambda row: problems[row.object])


def _utc(value: Any) -> dt.datetime:
    """A timestamp as the database gives it back (naive UTC on SQLite) in UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


def _deidentified(conn: Connection, rule: _Rule, target: Target | None) -> list[Finding]:
    assert isinstance(rule, DeidentifiedRule)
    run = T["deidentification_run"]
    windows: dict[int, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for collection_id, started, finished in conn.execute(
        select(run.c.collection_id, run.c.started_at, run.c.finished_at).where(
            run.c.collection_id.is_not(None)
        )
    ):
        windows[collection_id].append((_utc(started) - RUN_SLACK, _utc(finished) + RUN_SLACK))
    scope = scopes.SCOPE["series"]
    s = T["imaging_series"]
    query = scopes.select_scope(scope, s.c.image_collection_id, s.c.created_at).where(
        *_filters(scope, rule, target)
    )
    outside = []
    totals: Counter[str] = Counter()
    for row in conn.execute(query):
        totals[row.collection] += 1
        created = _utc(row.created_at)
        if not any(a <= created <= b for a, b in windows.get(row.image_collection_id, ())):
            outside.append(row)
    if rule.scope == "series":
        return _findings(
            conn,
            rule,
            outside,
            lambda row: (
                f"ingested {_utc(row.created_at):%Y-%m-%d %H:%M:%S} UTC, outside any recorded"
                " de-identification run (ingest --deidentify) of its collection",
                None,
            ),
        )
    per: dict[str, list[str]] = defaultdict(list)
    for row in outside:
        per[row.collection].append(row.object)
    out = []
    for identifier, uids in sorted(per.items()):
        first = ", ".join(sorted(uids)[:LISTED]) + (", ..." if len(uids) > LISTED else "")
        out.append(
            Finding(
                rule.id,
                rule.severity,
                rule.scope,
                identifier,
                identifier,
                f"{len(uids)} of {totals[identifier]} series were not ingested through a"
                f" recorded de-identification run (ingest --deidentify): {first}",
                {"series": len(uids), "of": totals[identifier]},
            )
        )
    return out


_CHECKS: dict[type[_Rule], Callable[[Connection, _Rule, Target | None], list[Finding]]] = {
    RangeRule: _range,
    RequiredRule: _required,
    OneValueRule: _one_value,
    StudyOneDonorRule: _study_one_donor,
    StudyHasSeriesRule: _study_has_series,
    InstanceFileRule: _instance_file,
    DeidentifiedRule: _deidentified,
}
