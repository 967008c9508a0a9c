"""Vocabulary terms to row ids on a Core connection (the import path uses no ORM)."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from imaging_biobank.db._schema import metadata
from imaging_biobank.vocab import catalog

T = metadata.tables
ORPHANET = "disease.orphanet"


class TermRows:
    """Looks up (and caches) the row id of each term on one connection."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._ids: dict[tuple[str, str], int] = {}
        self._vocabularies: dict[str, int] = {}

    def vocabulary_id(self, name: str) -> int:
        if name not in self._vocabularies:
            v = T["vocabulary"]
            found = self.conn.execute(select(v.c.id).where(v.c.name == name)).scalar()
            if found is None:
                raise LookupError(f"vocabulary {name} is not loaded: run `imaging-biobank init`")
            self._vocabularies[name] = int(found)
        return self._vocabularies[name]

    def id(self, term: catalog.Term) -> int:
        key = (term.vocabulary, term.code)
        if key not in self._ids:
            table = T[catalog.vocabulary(term.vocabulary).table]
            found = self.conn.execute(
                select(table.c.id).where(
                    table.c.vocabulary_id == self.vocabulary_id(term.vocabulary),
                    table.c.code == term.code,
                )
            ).scalar()
            if found is None:
                raise LookupError(
                    f"{term.code!r} of {term.vocabulary} is not in this database:"
                    " run `imaging-biobank init` to upgrade it"
                )
            self._ids[key] = int(found)
        return self._ids[key]

    def orpha_id(self, code: str) -> int:
        """The disease row of an ORPHA code, added the first time an import uses it."""
        key = (ORPHANET, code)
        if key not in self._ids:
            disease = T["disease"]
            vocabulary_id = self.vocabulary_id(ORPHANET)
            found = self.conn.execute(
                select(disease.c.id).where(
                    disease.c.vocabulary_id == vocabulary_id, disease.c.code == code
                )
            ).scalar()
            if found is None:
                found = self.conn.execute(
                    insert(disease)
                    .values(
                        code=code,
                        label=code,
                        uri=f"http://www.orpha.net/ORDO/Orphanet_{code.split(':')[1]}",
                        vocabulary_id=vocabulary_id,
                    )
                    .returning(disease.c.id)
                ).scalar_one()
            self._ids[key] = int(found)
        return self._ids[key]

    def disease_id(self, code: str, term: catalog.Term | None) -> int:
        """The disease row of a checked diagnosis (``values.diagnosis``)."""
        return self.id(term) if term is not None else self.orpha_id(code)
