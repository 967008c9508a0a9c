"""How the model's N:M relationships are stored: one link table per pair, composite key."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table
from sqlalchemy.schema import SchemaItem

from imaging_biobank.model.base import Base

DECLARED = "declared"
DERIVED = "derived"


def link_table(name: str, left: str, right: str, *, origin: bool = False) -> Table:
    """An N:M table ``name`` between tables ``left`` and ``right``.

    With ``origin``, each link says whether a data manager declared it (registration)
    or the writer derived it from individual-level rows; both may coexist.
    """
    left_col = f"{left}_id"
    right_col = f"{right}_id" if right != left else f"related_{right}_id"
    items: list[SchemaItem] = [
        Column(left_col, ForeignKey(f"{left}.id", ondelete="CASCADE"), primary_key=True),
        Column(right_col, ForeignKey(f"{right}.id", ondelete="CASCADE"), primary_key=True),
    ]
    items.append(Index(None, right_col))
    if origin:
        items.append(Column("origin", String(8), primary_key=True, default=DECLARED))
        items.append(CheckConstraint(f"origin IN ('{DECLARED}', '{DERIVED}')", name="origin"))
    return Table(name, Base.metadata, *items)
