"""What a rule can look at: its scope's rows, the fields it may name, and filters on them.

Rules never carry SQL. A field is a column of one of the scope's tables, named
``table.column`` or by its bare name (the first table of the scope that has it), or by one
of a few aliases (``modality``, ``body_part``, ``collection``, ``kernel``, ``sex``). Every
name is checked against the schema when the rules are loaded, so a rules file that names a
missing column is refused with its line before the database is touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Float,
    FromClause,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    and_,
    exists,
    not_,
    or_,
    select,
)

from imaging_biobank.db._schema import metadata

T = metadata.tables

SCOPES = ("series", "study", "donor", "instance", "collection")

# the series and the tables joined 1:1 (or N:1) to it
_SERIES_TABLES = (
    "imaging_series",
    "acquisition_parameters",
    "reconstruction_parameters",
    "imaging_study",
    "modality_information",
    "body_part_examined",
    "sample_donor",
    "collection",
)
_SERIES_ALIASES = {
    "modality": ("imaging_series", "modality_value"),
    "body_part": ("body_part_examined", "code"),
    "collection": ("collection", "identifier"),
    "kernel": ("reconstruction_parameters", "convolution_kernel"),
}


class FieldError(ValueError):
    """A rule names a field its scope does not have (the message says which there are)."""


@dataclass(frozen=True)
class Scope:
    """One kind of object a rule checks: the tables it can name and how they join."""

    name: str
    tables: tuple[str, ...]  # the first is the scope's own table
    aliases: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def base(self) -> Table:
        return T[self.tables[0]]

    def resolve(self, name: str) -> Column[Any]:
        """The column ``name`` designates in this scope; ``FieldError`` when none."""
        if name in self.aliases:
            table, column = self.aliases[name]
            return T[table].c[column]
        if "." in name:
            table, _, column = name.partition(".")
            if table not in self.tables:
                raise FieldError(
                    f"{self.name} rules can name the tables {', '.join(self.tables)}; not {table!r}"
                )
            if column not in T[table].c:
                raise FieldError(f"{table} has no column {column!r}")
            return T[table].c[column]
        for table in self.tables:
            if name in T[table].c:
                return T[table].c[name]
        aliases = f"; aliases: {', '.join(sorted(self.aliases))}" if self.aliases else ""
        raise FieldError(
            f"no field {name!r} in {self.name} scope (name it table.column, tables:"
            f" {', '.join(self.tables)}{aliases})"
        )

    def from_clause(self) -> FromClause:
        """The scope's table with the tables its fields may come from, joined."""
        if self.name in ("series", "instance"):
            s, a, r = (
                T["imaging_series"],
                T["acquisition_parameters"],
                T["reconstruction_parameters"],
            )
            start: FromClause = s
            if self.name == "instance":
                i = T["imaging_instance"]
                start = i.join(s, s.c.id == i.c.imaging_series_id)
            return (
                start.join(T["imaging_study"], T["imaging_study"].c.id == s.c.imaging_study_id)
                .join(T["collection"], T["collection"].c.id == s.c.image_collection_id)
                .join(T["sample_donor"], T["sample_donor"].c.id == s.c.sample_donor_id)
                .outerjoin(a, a.c.imaging_series_id == s.c.id)
                .outerjoin(r, r.c.imaging_series_id == s.c.id)
                .outerjoin(
                    T["modality_information"],
                    T["modality_information"].c.id == a.c.modality_information_id,
                )
                .outerjoin(
                    T["body_part_examined"],
                    T["body_part_examined"].c.id == s.c.body_part_examined_id,
                )
            )
        if self.name == "donor":
            d = T["sample_donor"]
            return d.outerjoin(T["sex"], T["sex"].c.id == d.c.sex_id)
        return self.base

    def identity(self) -> list[ColumnElement[Any]]:
        """The columns that name an object of this scope in a finding: ``object``,
        ``collection`` (when the scope has one) and context UIDs."""
        s, st, c = T["imaging_series"], T["imaging_study"], T["collection"]
        if self.name == "series":
            return [
                s.c.series_instance_uid.label("object"),
                c.c.identifier.label("collection"),
                st.c.study_instance_uid.label("study_instance_uid"),
            ]
        if self.name == "instance":
            return [
                T["imaging_instance"].c.sop_instance_uid.label("object"),
                c.c.identifier.label("collection"),
                st.c.study_instance_uid.label("study_instance_uid"),
                s.c.series_instance_uid.label("series_instance_uid"),
            ]
        if self.name == "study":
            return [st.c.study_instance_uid.label("object"), st.c.id.label("row_id")]
        if self.name == "donor":
            d = T["sample_donor"]
            return [d.c.pseudonym.label("object"), d.c.id.label("row_id")]
        return [c.c.identifier.label("object"), c.c.identifier.label("collection")]

    def in_collection(self, collection_id: int, kind: str) -> ColumnElement[bool]:
        """The condition that keeps the objects of one collection."""
        s = T["imaging_series"]
        if self.name in ("series", "instance"):
            return s.c.image_collection_id == collection_id
        if self.name == "study":
            return T["imaging_study"].c.id.in_(
                select(s.c.imaging_study_id)
                .where(s.c.image_collection_id == collection_id)
                .correlate(None)
            )
        if self.name == "donor":
            from imaging_biobank.catalogue.descriptors import member_donors

            return T["sample_donor"].c.id.in_(member_donors(collection_id, kind))
        return T["collection"].c.id == collection_id


SCOPE = {
    "series": Scope("series", _SERIES_TABLES, _SERIES_ALIASES),
    "instance": Scope("instance", ("imaging_instance", *_SERIES_TABLES), _SERIES_ALIASES),
    "study": Scope("study", ("imaging_study",)),
    "donor": Scope("donor", ("sample_donor", "sex"), {"sex": ("sex", "code")}),
    "collection": Scope("collection", ("collection",)),
}


def is_numeric(column: Column[Any]) -> bool:
    """Whether a range can be checked on the column."""
    return isinstance(column.type, Float | Integer | BigInteger | Numeric)


def is_text(column: Column[Any]) -> bool:
    return isinstance(column.type, String | Text)


def is_json(column: Column[Any]) -> bool:
    return isinstance(column.type, JSON)


def label(column: Column[Any]) -> str:
    """How a field is shown in findings: ``table.column``."""
    return f"{column.table.name}.{column.name}"


# ---- where filters -------------------------------------------------------------------------


def coerce(column: Column[Any], value: Any) -> Any:
    """A value from a rules file as the column's type wants it; ``FieldError`` when it
    cannot be one (a word for a number, a date that is not ISO 8601)."""
    if value is None:
        return None
    kind = column.type
    try:
        if isinstance(kind, Boolean):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(kind, Float | Integer | BigInteger | Numeric):
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            return int(number) if isinstance(kind, Integer) and number.is_integer() else number
        if isinstance(kind, DateTime):
            return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        if isinstance(kind, Date):
            if isinstance(value, dt.date):
                return value
            return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        expected = type(kind).__name__.lower()
        raise FieldError(f"{label(column)} holds {expected} values; {value!r} is not one") from None
    return str(value)


def _values(column: Column[Any], wanted: Any) -> tuple[list[Any], bool]:
    """The non-null values of a ``where`` entry, coerced, and whether null is one of them."""
    values = list(wanted) if isinstance(wanted, list | tuple) else [wanted]
    return [coerce(column, v) for v in values if v is not None], None in values


def where_condition(column: Column[Any], wanted: Any) -> ColumnElement[bool]:
    """One ``where`` entry as a condition: a value (equal), a list (one of), null (absent),
    or ``{not: value | list}``."""
    if isinstance(wanted, Mapping):
        values, null = _values(column, wanted["not"])
        outside = not_(column.in_(values))
        if null:  # not null and none of the values
            return and_(column.is_not(None), outside) if values else column.is_not(None)
        # NOT IN leaves out NULLs in SQL; an absent value is "not CT" too
        return or_(column.is_(None), outside)
    values, null = _values(column, wanted)
    found: list[ColumnElement[bool]] = []
    if values:
        found.append(column.in_(values) if len(values) > 1 else column == values[0])
    if null:
        found.append(column.is_(None))
    return or_(*found)


def where_text(where: Mapping[str, Any]) -> str:
    """A ``where`` filter as words, for the reasons of findings."""
    parts = []
    for name, wanted in where.items():
        if isinstance(wanted, Mapping):
            inner = wanted["not"]
            shown = ", ".join(map(str, inner)) if isinstance(inner, list | tuple) else str(inner)
            negated = f"not in ({shown})" if isinstance(inner, list) else f"!= {shown}"
            parts.append(f"{name} {negated}")
        elif isinstance(wanted, list | tuple):
            parts.append(f"{name} in ({', '.join(map(str, wanted))})")
        else:
            parts.append(f"{name} = {wanted}")
    return " and ".join(parts)


def conditions(scope: Scope, where: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """The ``where`` filter of a rule as conditions on the scope's columns."""
    return [where_condition(scope.resolve(name), wanted) for name, wanted in where.items()]


def related_table(scope: Scope, related: str) -> tuple[Table, Column[Any]]:
    """A table holding rows that point at the scope's own table, and the column that points
    (``table`` or ``table.column`` when it has several)."""
    name, _, column_name = related.partition(".")
    if name not in T:
        raise FieldError(f"no table {name!r}")
    table = T[name]
    base = scope.base
    pointing = [
        fk.parent
        for fk in table.foreign_keys
        if fk.column.table is base
        and fk.column.name == "id"
        and (not column_name or fk.parent.name == column_name)
    ]
    if not pointing:
        which = f" through {column_name!r}" if column_name else ""
        raise FieldError(f"{name} does not point at {base.name}{which}")
    if len(pointing) > 1:
        names = ", ".join(f"{name}.{c.name}" for c in pointing)
        raise FieldError(f"{name} points at {base.name} through several columns; name one: {names}")
    return table, pointing[0]


def related_exists(scope: Scope, related: str, where: Mapping[str, Any]) -> ColumnElement[bool]:
    """The condition that a related row (matching ``where``) exists for the scope's row."""
    table, column = related_table(scope, related)
    extra = [where_condition(table.c[k], v) for k, v in where.items()]  # checked at load
    return exists().where(column == scope.base.c.id, and_(*extra))


def select_scope(scope: Scope, *columns: ColumnElement[Any]) -> Any:
    """SELECT the identity of the scope's objects and ``columns`` over its joined tables."""
    return select(*scope.identity(), *columns).select_from(scope.from_clause())
