"""OMOP CDM 5.4 tables (with the Oncology and Medical Imaging extensions) created from the
field-level specification files, not from a hand-written DDL.

The specifications (``export/data/omop_*_field_level.csv``, copied from OHDSI's
repositories by ``tools/build_omop_concepts.py``) give every field its datatype, whether it
is required (NOT NULL), primary key and foreign key. Tables are made with those
constraints on every backend:

- SQLite: foreign keys ``DEFERRABLE INITIALLY DEFERRED`` (checked at commit; the engine
  turns ``PRAGMA foreign_keys`` on for every connection);
- PostgreSQL: real constraints, ``DEFERRABLE INITIALLY DEFERRED``; the ones that close a
  cycle between tables (CONCEPT <-> VOCABULARY/DOMAIN/CONCEPT_CLASS) are added with
  ``ALTER TABLE`` once both tables exist;
- DuckDB: as far as it supports them: no deferral and no cycles between tables, so the
  cycle-closing constraints are not declared (``SchemaReport.not_declared`` lists them);
  the others are enforced on every insert. DuckDB does not enforce ``varchar(n)`` lengths:
  the exporter cuts values to the specification's length itself.

The Oncology extension's tables (EPISODE, EPISODE_EVENT) are part of the 5.4 core
specification; its two MEASUREMENT fields ``modifier_of_event_id`` and
``modifier_of_field_concept_id`` are the draft names of 5.4's ``measurement_event_id`` and
``meas_event_field_concept_id``, so the 5.4 names are used (``ONCOLOGY_RENAMED``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
)
from sqlalchemy.schema import AddConstraint
from sqlalchemy.types import TypeEngine

CORE_SPEC = "omop_cdm_v5.4_field_level.csv"
ONCOLOGY_SPEC = "omop_oncology_field_level.csv"
IMAGING_SPEC = "omop_medical_imaging_field_level.csv"

# Oncology extension field (draft name) -> the 5.4 core field that replaced it
ONCOLOGY_RENAMED = {
    ("measurement", "modifier_of_event_id"): "measurement_event_id",
    ("measurement", "modifier_of_field_concept_id"): "meas_event_field_concept_id",
}

# the tables the export fills; the schema adds every table their foreign keys reach
EXPORT_TABLES = (
    "person",
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "procedure_occurrence",
    "measurement",
    "observation",
    "specimen",
    "episode",
    "episode_event",
    "cdm_source",
    "image_occurrence",
    "image_feature",
)
VOCABULARY_TABLES = ("concept", "vocabulary", "domain", "concept_class")

_VARCHAR = re.compile(r"varchar\((\d+|max)\)", re.IGNORECASE)


class OmopSchemaError(Exception):
    """The target database holds a table that does not match the specification."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of the specification."""

    table: str
    name: str
    required: bool
    datatype: str
    primary_key: bool
    fk_table: str | None
    fk_field: str | None
    fk_domain: str | None
    spec: str

    @property
    def length(self) -> int | None:
        """The maximum length of a ``varchar(n)`` field (None for others and ``max``)."""
        match = _VARCHAR.fullmatch(self.datatype)
        if match and match.group(1).lower() != "max":
            return int(match.group(1))
        return None

    @property
    def is_concept(self) -> bool:
        """Whether the field holds a concept id (a foreign key to CONCEPT)."""
        return self.fk_table == "concept"


@dataclass(frozen=True)
class TableSpec:
    """One table of the specification, fields in specification order."""

    name: str
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec:
        """The field called ``name`` (KeyError when the specification has none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name}.{name} is not in the OMOP specification")

    @property
    def primary_key(self) -> list[str]:
        """The primary key's field names (none for a table without one)."""
        return [f.name for f in self.fields if f.primary_key]


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return None if value in ("", "NA") else value


def _read(name: str) -> list[dict[str, str | None]]:
    text = resources.files("imaging_biobank.export").joinpath("data", name).read_text("utf-8-sig")
    rows = []
    for row in csv.DictReader(text.splitlines()):
        # the imaging file has trailing blanks in headers and values, and "fkFrieldName"
        cleaned = {(k or "").strip(): _clean(v) for k, v in row.items()}
        if "fkFrieldName" in cleaned:
            cleaned["fkFieldName"] = cleaned.pop("fkFrieldName")
        rows.append(cleaned)
    return rows


def _fields(name: str) -> list[FieldSpec]:
    out = []
    for row in _read(name):
        table = (row["cdmTableName"] or "").lower()
        is_fk = (row["isForeignKey"] or "").lower() == "yes"
        fk_table = (row.get("fkTableName") or "").lower() or None
        out.append(
            FieldSpec(
                table=table,
                name=(row["cdmFieldName"] or "").lower(),
                required=(row["isRequired"] or "").lower() == "yes",
                datatype=(row["cdmDatatype"] or "").lower(),
                primary_key=(row["isPrimaryKey"] or "").lower() == "yes",
                fk_table=fk_table if is_fk else None,
                fk_field=((row.get("fkFieldName") or "").lower() or None) if is_fk else None,
                fk_domain=row.get("fkDomain"),
                spec=name,
            )
        )
    return out


@lru_cache(maxsize=1)
def specification() -> dict[str, TableSpec]:
    """The OMOP CDM 5.4 tables and the Medical Imaging extension's two tables, as the
    field-level files define them (the Oncology fields are in the core; see the module)."""
    by_table: dict[str, list[FieldSpec]] = {}
    for f in [*_fields(CORE_SPEC), *_fields(IMAGING_SPEC)]:
        by_table.setdefault(f.table, []).append(f)
    return {name: TableSpec(name, tuple(fields)) for name, fields in by_table.items()}


def oncology_fields() -> list[FieldSpec]:
    """The Oncology extension's fields, for checking that the core covers them."""
    return _fields(ONCOLOGY_SPEC)


def tables_needed(roots: Iterable[str] = (*EXPORT_TABLES, *VOCABULARY_TABLES)) -> list[str]:
    """The tables to create: ``roots`` and every table their foreign keys reach."""
    spec = specification()
    found: list[str] = []
    todo = list(roots)
    while todo:
        name = todo.pop(0)
        if name in found:
            continue
        found.append(name)
        todo.extend(f.fk_table for f in spec[name].fields if f.fk_table and f.fk_table not in found)
    return found


def column_type(datatype: str) -> TypeEngine[Any]:
    """The SQLAlchemy type of a specification datatype."""
    match = _VARCHAR.fullmatch(datatype)
    if match:
        size = match.group(1)
        return Text() if size.lower() == "max" else String(int(size))
    types: dict[str, TypeEngine[Any]] = {
        "integer": Integer(),
        "int": Integer(),
        "bigint": BigInteger(),
        "float": Float(),
        "date": Date(),
        "datetime": DateTime(),
    }
    if datatype not in types:
        raise OmopSchemaError(f"unknown datatype {datatype!r} in the OMOP specification")
    return types[datatype]


def cycle_edges(tables: Sequence[str]) -> list[FieldSpec]:
    """The foreign keys (between different tables) that close a cycle, taking the edges in
    specification order: CONCEPT -> DOMAIN is kept, DOMAIN -> CONCEPT closes the cycle."""
    spec = specification()
    graph: dict[str, set[str]] = {t: set() for t in tables}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return False

    closing = []
    for name in tables:
        for f in spec[name].fields:
            if f.fk_table and f.fk_table != name and f.fk_table in graph:
                if reaches(f.fk_table, name):
                    closing.append(f)
                else:
                    graph[name].add(f.fk_table)
    return closing


def insert_order(tables: Sequence[str]) -> list[str]:
    """Tables parents first (ignoring the cycle-closing keys), so that immediate foreign
    keys (DuckDB) hold after every insert."""
    spec = specification()
    skipped = {(f.table, f.name) for f in cycle_edges(tables)}
    order: list[str] = []
    remaining = list(tables)
    while remaining:
        for name in remaining:
            parents = {
                f.fk_table
                for f in spec[name].fields
                if f.fk_table
                and f.fk_table != name
                and f.fk_table in tables
                and (name, f.name) not in skipped
            }
            if parents <= set(order):
                order.append(name)
                remaining.remove(name)
                break
        else:  # pragma: no cover - cycle_edges removed every cycle
            raise OmopSchemaError(f"cannot order {remaining}")
    return order


@dataclass
class SchemaReport:
    """What ``create_schema`` did."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    not_declared: list[str] = field(default_factory=list)  # foreign keys DuckDB cannot hold


def build_metadata(backend: str, tables: Sequence[str]) -> tuple[MetaData, list[FieldSpec]]:
    """SQLAlchemy tables for ``tables`` on ``backend`` (sqlite, postgresql, duckdb) and the
    foreign keys left out (DuckDB's cycles)."""
    spec = specification()
    metadata = MetaData()
    closing = {(f.table, f.name) for f in cycle_edges(tables)}
    left_out: list[FieldSpec] = []
    for name in tables:
        table = spec[name]
        columns = [
            Column(f.name, column_type(f.datatype), nullable=not f.required, autoincrement=False)
            for f in table.fields
        ]
        constraints: list[PrimaryKeyConstraint | ForeignKeyConstraint] = []
        if table.primary_key:
            constraints.append(PrimaryKeyConstraint(*table.primary_key, name=f"pk_{name}"))
        for f in table.fields:
            if not f.fk_table or f.fk_table not in tables:
                continue
            cycle = (name, f.name) in closing
            if backend == "duckdb" and cycle:
                left_out.append(f)
                continue
            deferred = {} if backend == "duckdb" else {"deferrable": True, "initially": "DEFERRED"}
            constraints.append(
                ForeignKeyConstraint(
                    [f.name],
                    [f"{f.fk_table}.{f.fk_field}"],
                    name=f"fk_{name}_{f.name}"[:63],
                    use_alter=cycle and backend == "postgresql",
                    **deferred,  # type: ignore[arg-type]
                )
            )
        Table(name, metadata, *columns, *constraints)
    return metadata, left_out


def create_schema(engine: Engine, tables: Sequence[str] | None = None) -> SchemaReport:
    """Create the tables the export needs that are not there yet (with their constraints)
    and check that those already there have the specification's columns."""
    tables = list(tables or tables_needed())
    backend = engine.dialect.name
    metadata, left_out = build_metadata(backend, tables)
    report = SchemaReport(not_declared=[f"{f.table}.{f.name}" for f in left_out])
    with engine.begin() as conn:
        present = set(inspect(conn).get_table_names())
        for name in insert_order(tables):
            table = metadata.tables[name]
            if name in present:
                # the column names of an empty result (duckdb-engine's reflection fails on
                # DuckDB 2)
                have = {
                    c.lower()
                    for c in conn.execute(select(text("*")).select_from(text(name)).limit(0)).keys()  # noqa: SIM118
                }
                missing = [c.name for c in table.columns if c.name not in have]
                if missing:
                    raise OmopSchemaError(
                        f"table {name} exists but lacks the OMOP CDM 5.4 columns"
                        f" {', '.join(missing)}: use an empty database or an OMOP CDM 5.4 one"
                    )
                report.existing.append(name)
                continue
            table.create(conn)
            report.created.append(name)
        if backend == "postgresql":
            for name in report.created:
                for constraint in metadata.tables[name].foreign_key_constraints:
                    target = next(iter(constraint.elements)).column.table.name
                    if constraint.use_alter and target in report.created:
                        conn.execute(AddConstraint(constraint))
    return report
