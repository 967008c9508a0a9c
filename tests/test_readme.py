"""The README: the two commands at the top, and an ER diagram that matches the ORM."""

from __future__ import annotations

import re

import imaging_biobank.model  # noqa: F401
from imaging_biobank.model.base import Base
from imaging_biobank.model.diagram import mermaid_er
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_two_commands_are_at_the_top() -> None:
    top = README.split("\n## ", 1)[0]
    assert "make demo" in top and "make test" in top


def test_the_er_diagram_is_generated_from_the_orm() -> None:
    block = re.search(r"<!-- erd:start -->\n```mermaid\n(.*?)```\n<!-- erd:end -->", README, re.S)
    assert block is not None, "README lacks the erd markers"
    assert block.group(1) == mermaid_er(Base.metadata), (
        "the README diagram is stale: run `python tools/generate.py`"
    )


def test_generated_table_roles_are_current() -> None:
    from tools.generate import tables_text

    generated = (ROOT / "src" / "imaging_biobank" / "db" / "_tables.py").read_text()
    assert generated == tables_text(), "db/_tables.py is stale: run `python tools/generate.py`"


def test_generated_core_schema_and_tags_are_current() -> None:
    from tools.generate import DICOM_TAGS, SCHEMA, dicom_tags_text, schema_text

    assert SCHEMA.read_text() == schema_text(), "run `python tools/generate.py`"
    assert DICOM_TAGS.read_text() == dicom_tags_text(), "run `python tools/generate.py`"


def test_generated_core_schema_matches_the_orm() -> None:
    """Same tables, columns, types, keys and defaults as the ORM the migrations come from."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateTable

    from imaging_biobank.db._schema import metadata

    assert set(metadata.tables) == set(Base.metadata.tables)
    for name, table in Base.metadata.tables.items():
        core = metadata.tables[name]
        for column in table.columns:
            other = core.c[column.name]
            assert (other.nullable, other.primary_key, bool(other.onupdate)) == (
                column.nullable,
                column.primary_key,
                bool(column.onupdate),
            ), (name, column.name)
            assert {fk.target_fullname for fk in other.foreign_keys} == {
                fk.target_fullname for fk in column.foreign_keys
            }
        for dialect in (sqlite.dialect(), postgresql.dialect()):

            def columns(t: object, dialect: object = dialect) -> list[str]:
                ddl = str(CreateTable(t).compile(dialect=dialect))  # type: ignore[arg-type]
                return [
                    line.strip().rstrip(",")
                    for line in ddl.splitlines()
                    if line.startswith("\t")
                    and not line.strip().startswith(
                        ("CONSTRAINT", "PRIMARY", "FOREIGN", "UNIQUE", "CHECK")
                    )
                ]

            assert columns(core) == columns(table), name


def test_head_revision_constant_is_alembics_head() -> None:
    from imaging_biobank.db.migrate import head_revision
    from imaging_biobank.db.revision import HEAD_REVISION

    assert head_revision() == HEAD_REVISION


def test_the_diagram_shows_every_table_and_foreign_key() -> None:
    diagram = mermaid_er(Base.metadata)
    for table in Base.metadata.tables.values():
        assert f"    {table.name} {{" in diagram
        for fk in table.foreign_keys:
            assert re.search(
                rf"    {fk.column.table.name} \S+ {table.name} : \"{fk.parent.name}\"", diagram
            ), (table.name, fk.parent.name)
