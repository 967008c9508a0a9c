"""What the builders of one FHIR Bundle share: the connection, the profile family, the writer,
the collections of the export and the donors they hold, and the vocabulary rows as terms."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from imaging_biobank.catalogue.descriptors import member_donors
from imaging_biobank.db._schema import metadata
from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir_bundle import BundleWriter, Problem
from imaging_biobank.export.fhir_terms import Family
from imaging_biobank.vocab import catalog

T = metadata.tables
IN_CHUNK = 500
V = TypeVar("V")


@dataclass(frozen=True)
class Row:
    """A vocabulary row: its edition, code and label (and the shipped term, if shipped)."""

    vocabulary: str
    code: str
    label: str
    term: catalog.Term | None


@dataclass(frozen=True)
class CollectionInfo:
    """A collection of the export, as its Bundle needs it."""

    id: int
    identifier: str
    kind: str
    name: str


class Terms:
    """Vocabulary rows by table and row id, read once per table."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._tables: dict[str, dict[int, Row]] = {}
        self._columns: dict[tuple[str, str], dict[int, Any]] = {}

    def table(self, name: str) -> dict[int, Row]:
        """Every row of one vocabulary table, by row id."""
        if name not in self._tables:
            t, v = T[name], T["vocabulary"]
            rows = self.conn.execute(
                select(t.c.id, v.c.name, t.c.code, t.c.label).join(v, v.c.id == t.c.vocabulary_id)
            )
            self._tables[name] = {
                int(r.id): Row(r.name, r.code, r.label, fhir_terms.term(r.name, r.code))
                for r in rows
            }
        return self._tables[name]

    def get(self, table: str, row_id: int | None) -> Row | None:
        """One vocabulary row, or None."""
        return None if row_id is None else self.table(table).get(int(row_id))

    def column(self, table: str, row_id: int | None, column: str) -> Any:
        """One more column of a vocabulary row (``snomed_code``, ...), read once per table."""
        if (table, column) not in self._columns:
            t = T[table]
            rows = self.conn.execute(select(t.c.id, t.c[column]))
            self._columns[(table, column)] = {int(i): v for i, v in rows}
        return None if row_id is None else self._columns[(table, column)].get(int(row_id))


@dataclass
class Context:
    """One Bundle being built: a biobank and the collections of it the export covers."""

    conn: Connection
    fam: Family
    base: str
    writer: BundleWriter
    terms: Terms
    collections: list[CollectionInfo]
    country: str  # the biobank's ISO 3166 code: every collection's address
    members: dict[int, set[int]] = field(default_factory=dict)  # collection -> donor ids
    pseudonyms: dict[int, str] = field(default_factory=dict)  # donor id -> pseudonym
    specimens: dict[int, list[str]] = field(default_factory=dict)  # collection -> sample keys

    @property
    def problems(self) -> list[Problem]:
        """The writer's problem list (left out), which every builder adds to."""
        return self.writer.problems

    @property
    def notices(self) -> list[Problem]:
        """The writer's notices (written, with something worth knowing)."""
        return self.writer.notices

    def links(
        self, table: str, owner: str, target: str, ids: Iterable[int]
    ) -> dict[int, list[int]]:
        """The rows of a link table for the owners ``ids``: owner id -> target ids (sorted)."""
        link = T[table]
        found: dict[int, list[int]] = {}
        for batch in chunks(sorted(set(ids))):
            rows = self.conn.execute(
                select(link.c[f"{owner}_id"], link.c[f"{target}_id"]).where(
                    link.c[f"{owner}_id"].in_(batch)
                )
            )
            for owner_id, target_id in rows:
                found.setdefault(int(owner_id), []).append(int(target_id))
        return {k: sorted(v) for k, v in found.items()}

    def use_access_extensions(self, ids: list[int], where: str) -> list[dict[str, Any]]:
        """Our use-access-condition extensions for these ``use_access_condition`` rows, each
        the exact MIABIS term; a row that is no shipped term is reported and left out."""
        found = []
        for i in ids:
            row = self.terms.get("use_access_condition", i)
            if row is None or row.term is None:
                what = row.code if row else i
                self.problems.append(
                    Problem(
                        where, f"use and access condition {what!r} is no shipped term; left out"
                    )
                )
                continue
            found.append(
                fhir_terms.ext(
                    fhir_terms.own("extensions", "use-access-condition"),
                    "valueCoding",
                    fhir_terms.vocabulary_coding(row.term),
                )
            )
        return found

    def of_kind(self, kind: str) -> list[CollectionInfo]:
        """The collections of the export of one kind."""
        return [c for c in self.collections if c.kind == kind]

    def donors(self) -> set[int]:
        """Every donor of the export's collections."""
        return set().union(*self.members.values()) if self.members else set()

    def patient(self, donor_id: int) -> str | None:
        """The natural key of the donor's Patient, if it is in the Bundle."""
        pseudonym = self.pseudonyms.get(donor_id)
        if pseudonym is None or not self.writer.has("Patient", pseudonym):
            return None
        return pseudonym

    def load_members(self) -> None:
        """The donors of each collection: declared members and those of its items."""
        for c in self.collections:
            self.members[c.id] = set(self.conn.execute(member_donors(c.id, c.kind)).scalars())


def chunks(values: Iterable[V], size: int = IN_CHUNK) -> Iterable[list[V]]:
    """``values`` in lists of at most ``size``, for ``IN`` clauses."""
    batch: list[V] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
