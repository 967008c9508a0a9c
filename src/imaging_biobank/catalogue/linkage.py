"""How well images, samples and clinical records meet: per collection, how many of its donors
have each kind of data anywhere in the biobank, and each combination. Counts only: no
pseudonym or identifier leaves this module.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, exists, select

from imaging_biobank.catalogue.descriptors import member_donors
from imaging_biobank.db._schema import metadata

T = metadata.tables
KINDS = ("images", "samples", "clinical")
FORMAT = "imaging-biobank/linkage@1"


@dataclass
class Linkage:
    """Donor counts of one collection (or of the whole biobank: ``collection`` is None)."""

    collection: str | None
    kind: str | None
    donors: int = 0
    with_: dict[str, int] = field(default_factory=dict)
    combinations: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "kind": self.kind,
            "donors": self.donors,
            "with": self.with_,
            "images_without_samples": self.combinations_matching(images=True, samples=False),
            "samples_without_images": self.combinations_matching(images=False, samples=True),
            "combinations": self.combinations,
        }

    def combinations_matching(self, **wanted: bool) -> int:
        total = 0
        for name, count in self.combinations.items():
            present = set(name.split("+")) if name != "none" else set()
            if all((kind in present) == value for kind, value in wanted.items()):
                total += count
        return total


def _has(kind: str, donor_id: Any) -> Any:
    table, column = {
        "images": ("imaging_series", "sample_donor_id"),
        "samples": ("sample", "sample_donor_id"),
        "clinical": ("clinical_record", "sample_donor_id"),
    }[kind]
    if table not in T:
        return None
    return exists().where(T[table].c[column] == donor_id)


def _count(conn: Connection, donors: Any, label: str | None, kind: str | None) -> Linkage:
    d = T["sample_donor"]
    flags = [(k, _has(k, d.c.id)) for k in KINDS]
    columns = [f.label(k) for k, f in flags if f is not None]
    rows = conn.execute(select(*columns).where(d.c.id.in_(donors))).all()
    result = Linkage(label, kind, donors=len(rows))
    present = [k for k, f in flags if f is not None]
    combos: Counter[str] = Counter()
    for row in rows:
        have = [k for k, value in zip(present, row, strict=True) if value]
        combos["+".join(have) or "none"] += 1
    result.with_ = {
        k: sum(1 for row in rows if row[present.index(k)]) if k in present else 0 for k in KINDS
    }
    result.combinations = dict(sorted(combos.items()))
    return result


def linkage_report(conn: Connection) -> dict[str, Any]:
    """The report: one entry per collection that has donors, and one for the biobank."""
    c = T["collection"]
    entries = []
    for id_, identifier, kind in conn.execute(
        select(c.c.id, c.c.identifier, c.c.kind).order_by(c.c.identifier)
    ):
        entry = _count(conn, member_donors(id_, kind).scalar_subquery(), identifier, kind)
        if entry.donors:
            entries.append(entry.as_json())
    everyone = _count(conn, select(T["sample_donor"].c.id).scalar_subquery(), None, None)
    return {"format": FORMAT, "collections": entries, "all": everyone.as_json()}
