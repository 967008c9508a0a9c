"""Finding registered rows by the identifiers users type.

A collection's BBMRI-ERIC id is long (``bbmri-eric:ID:ES_PRIMAGE:collection:NB_IMAGING``);
users may give the whole id or, as in the Directory's own listings, the part after the last
colon (``NB_IMAGING``) when only one collection ends that way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text


class CollectionLookupError(LookupError):
    """No collection, or more than one, answers to what the user typed."""


@dataclass(frozen=True)
class FoundCollection:
    id: int
    identifier: str
    kind: str


def find_collection(conn: Connection, identifier: str, kind: str | None = None) -> FoundCollection:
    """The collection ``identifier`` names: its full id, or the unique id ending in
    ``:identifier``. The error lists the collections there are (of ``kind``, if given)."""
    rows = conn.execute(
        text("SELECT id, identifier, kind FROM collection WHERE identifier = :i"),
        {"i": identifier},
    ).all()
    if not rows and ":" not in identifier:
        rows = conn.execute(
            text("SELECT id, identifier, kind FROM collection WHERE identifier LIKE :s ESCAPE '!'"),
            {"s": "%:" + identifier.replace("!", "!!").replace("%", "!%").replace("_", "!_")},
        ).all()
    if len(rows) == 1:
        row = rows[0]
        return FoundCollection(int(row.id), str(row.identifier), str(row.kind))
    if rows:
        names = ", ".join(sorted(str(r.identifier) for r in rows))
        raise CollectionLookupError(f"{identifier!r} names more than one collection: {names}")
    where, params = ("WHERE kind = :k", {"k": kind}) if kind else ("", {})
    known = conn.execute(text(f"SELECT identifier FROM collection {where} ORDER BY 1"), params)
    listed = ", ".join(known.scalars()) or "none registered yet (imaging-biobank register)"
    label = f"{kind} collections" if kind else "collections"
    raise CollectionLookupError(f"no collection {identifier!r}; {label}: {listed}")
