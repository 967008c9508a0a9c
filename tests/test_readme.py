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
