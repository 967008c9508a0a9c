"""Load vocabulary editions from the shipped data files into their tables.

Called by migrations (so a database gets its vocabularies when it is created or upgraded)
with the names of the editions to load. Works on the tables as they exist in the database
(reflected), so an old migration keeps working after the ORM has grown. Loading is an
upsert keyed on (vocabulary, code): running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Float,
    Integer,
    MetaData,
    Numeric,
    Table,
    bindparam,
    insert,
    select,
    update,
)

from imaging_biobank.vocab import catalog

REFERENCE_COLUMNS = {"maps_to": "maps_to_id", "parent": "parent_id"}


class VocabularyLoadError(RuntimeError):
    """A data file does not fit its table (a packaging error, not a user error)."""


def _convert(table: Table, column: str, raw: str) -> Any:
    col = table.c[column]
    if raw == "":
        return None
    if isinstance(col.type, JSON):
        return [v.strip() for v in raw.split("|") if v.strip()]
    if isinstance(col.type, Boolean):
        return raw.lower() in ("true", "1", "yes", "y")
    if isinstance(col.type, Float | Numeric):
        return float(raw)
    if isinstance(col.type, Integer):
        return int(raw)
    return raw


class _Loader:
    def __init__(self, connection: Connection):
        self.connection = connection
        self.meta = MetaData()
        self.tables: dict[str, Table] = {}
        self.vocabulary = self.table("vocabulary")

    def table(self, name: str) -> Table:
        if name not in self.tables:
            self.tables[name] = Table(name, self.meta, autoload_with=self.connection)
        return self.tables[name]

    def vocabulary_id(self, info: catalog.VocabularyInfo) -> int:
        values = {
            "table_name": info.table,
            "edition": info.edition,
            "source": info.source,
            "licence": info.licence,
            "file_name": info.file,
            "sha256": catalog.file_sha256(info),
            "priority": info.priority,
        }
        v = self.vocabulary
        found = self.connection.execute(select(v.c.id).where(v.c.name == info.name)).scalar()
        if found is None:
            result = self.connection.execute(insert(v).values(name=info.name, **values))
            return int(result.inserted_primary_key[0])  # type: ignore[index]
        self.connection.execute(update(v).where(v.c.id == found).values(**values))
        return int(found)

    def codes(self, table: Table, vocabulary_id: int) -> dict[str, int]:
        query = select(table.c.code, table.c.id).where(table.c.vocabulary_id == vocabulary_id)
        return {code: id_ for code, id_ in self.connection.execute(query)}

    def load_terms(self, info: catalog.VocabularyInfo) -> int:
        table = self.table(info.table)
        vocabulary_id = self.vocabulary_id(info)
        rows = catalog.rows(info.name)
        # an old revision loads today's file into the table as it was then: columns added
        # later are left out here, and the revision that adds them loads the file again
        # (tests check that every file column has a column in the current model)
        columns = (
            [c for c in rows[0] if c not in REFERENCE_COLUMNS and c in table.c] if rows else []
        )
        existing = self.codes(table, vocabulary_id)
        new, changed = [], []
        for row in rows:
            values = {c: _convert(table, c, row[c]) for c in columns}
            values["vocabulary_id"] = vocabulary_id
            if row["code"] in existing:
                values["_id"] = existing[row["code"]]
                changed.append(values)
            else:
                new.append(values)
        if new:
            self.connection.execute(insert(table), new)
        if changed:
            statement = (
                update(table)
                .where(table.c.id == bindparam("_id"))
                .values({c: bindparam(c) for c in [*columns, "vocabulary_id"]})
            )
            self.connection.execute(statement, changed)
        return len(rows)

    def link_references(self, info: catalog.VocabularyInfo) -> None:
        """Fill ``maps_to_id`` and ``parent_id`` once every target edition is loaded."""
        table = self.table(info.table)
        v = self.vocabulary
        vocabulary_id = self.connection.execute(
            select(v.c.id).where(v.c.name == info.name)
        ).scalar_one()
        ids_by_vocabulary: dict[str, dict[str, int]] = {}

        def target_id(vocabulary: str, code: str) -> int:
            if vocabulary not in ids_by_vocabulary:
                target_vid = self.connection.execute(
                    select(v.c.id).where(v.c.name == vocabulary)
                ).scalar()
                if target_vid is None:
                    raise VocabularyLoadError(f"{info.name} refers to unloaded {vocabulary}")
                ids_by_vocabulary[vocabulary] = self.codes(table, int(target_vid))
            try:
                return ids_by_vocabulary[vocabulary][code]
            except KeyError:
                raise VocabularyLoadError(
                    f"{info.name}: {code!r} is not a term of {vocabulary}"
                ) from None

        own = self.codes(table, vocabulary_id)
        for reference, column in REFERENCE_COLUMNS.items():
            if column not in table.c:
                continue
            updates = []
            for term in catalog.terms(info.name):
                raw = term.get(reference)
                if not raw:
                    continue
                if reference == "maps_to":
                    target = term.maps_to
                    assert target is not None
                    updates.append({"_id": own[term.code], "_ref": target_id(*target)})
                else:
                    updates.append({"_id": own[term.code], "_ref": own[raw]})
            if updates:
                statement = (
                    update(table)
                    .where(table.c.id == bindparam("_id"))
                    .values({column: bindparam("_ref")})
                )
                self.connection.execute(statement, updates)


def load_vocabularies(connection: Connection, names: Iterable[str]) -> dict[str, int]:
    """Load (or refresh) the named editions; returns the number of terms of each."""
    infos = [catalog.vocabulary(name) for name in names]
    loader = _Loader(connection)
    counts = {info.name: loader.load_terms(info) for info in infos}
    for info in infos:
        loader.link_references(info)
    return counts


def stale_vocabularies(connection: Connection) -> list[str]:
    """Editions whose shipped file differs from what this database loaded (or never loaded)."""
    table = Table("vocabulary", MetaData(), autoload_with=connection)
    loaded = dict(connection.execute(select(table.c.name, table.c.sha256)).all())
    return [
        info.name
        for info in catalog.manifest()
        if loaded.get(info.name) != catalog.file_sha256(info)
    ]
