"""Which collections an export covers: those the user named, or all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

from imaging_biobank.db.lookup import FoundCollection, find_collection


@dataclass(frozen=True)
class Scope:
    """The collections of one export (database ids, identifiers and kinds), in id order."""

    collections: tuple[FoundCollection, ...]

    @property
    def ids(self) -> list[int]:
        """The database ids of the collections, for ``IN`` clauses."""
        return [c.id for c in self.collections]

    def of_kind(self, kind: str) -> list[FoundCollection]:
        """The collections of one kind (``image``, ``sample_tissue``, ...)."""
        return [c for c in self.collections if c.kind == kind]


def export_scope(conn: Connection, identifiers: Sequence[str] = ()) -> Scope:
    """The collections named by ``identifiers`` (full ids or their last part, as
    ``find_collection`` takes them), or every collection when none is named. Raises
    ``CollectionLookupError`` naming the collections there are for an unknown one."""
    if identifiers:
        found = {c.id: c for c in (find_collection(conn, i) for i in identifiers)}
        return Scope(tuple(found[k] for k in sorted(found)))
    rows = conn.execute(text("SELECT id, identifier, kind FROM collection ORDER BY id")).all()
    return Scope(tuple(FoundCollection(int(r.id), str(r.identifier), str(r.kind)) for r in rows))
