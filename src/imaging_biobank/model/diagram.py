"""The entity-relationship diagram of the model, generated from the ORM metadata (Mermaid)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)


def _type(column: Column[object]) -> str:
    t = column.type
    for cls, name in (
        (Boolean, "bool"),
        (BigInteger, "bigint"),
        (Integer, "int"),
        (Float, "float"),
        (DateTime, "datetime"),
        (Date, "date"),
        (JSON, "json"),
        (Text, "text"),
        (String, "string"),
    ):
        if isinstance(t, cls):
            return name
    return type(t).__name__.lower()


def _unique_columns(table: Table) -> set[str]:
    unique = {c.name for c in table.columns if c.unique}
    for constraint in table.constraints:
        cols = getattr(constraint, "columns", None)
        if type(constraint).__name__ == "UniqueConstraint" and cols is not None and len(cols) == 1:
            unique |= {c.name for c in cols}
    return unique


def _keys(column: Column[object], unique: set[str]) -> str:
    keys = []
    if column.primary_key:
        keys.append("PK")
    if column.foreign_keys:
        keys.append("FK")
    if column.name in unique and not column.primary_key:
        keys.append("UK")
    return ",".join(keys)


def mermaid_er(metadata: MetaData) -> str:
    """A Mermaid ``erDiagram`` of every table, its columns and its foreign keys.

    A foreign key reads parent ``||--o{`` child (``|o`` when optional); a unique or
    primary-key foreign key (1:1, e.g. a kind table joined to its parent) ends ``o|``.
    """
    lines = ["erDiagram"]
    tables = sorted(metadata.tables.values(), key=lambda t: t.name)
    for table in tables:
        unique = _unique_columns(table)
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            keys = _keys(column, unique)
            lines.append(f"        {_type(column)} {column.name}{' ' + keys if keys else ''}")
        lines.append("    }")
    relations = []
    for table in tables:
        unique = _unique_columns(table)
        pk = {c.name for c in table.primary_key.columns}
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            column = fk.parent
            parent = fk.column.table.name
            left = "|o" if column.nullable else "||"
            one_to_one = column.name in unique or pk == {column.name}
            right = "o|" if one_to_one else "o{"
            relations.append(f'    {parent} {left}--{right} {table.name} : "{column.name}"')
    lines.extend(relations)
    return "\n".join(lines) + "\n"
