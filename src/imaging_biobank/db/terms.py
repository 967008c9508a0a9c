"""From vocabulary terms (pure, ``vocab.catalog``) to the ids of their database rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from imaging_biobank.model.vocab import TERM_TABLES, Term, Vocabulary
from imaging_biobank.vocab import catalog

T = TypeVar("T", bound=Term)


class VocabularyNotLoadedError(LookupError):
    """The database lacks a shipped term: it was created by an older version."""


class TermIds:
    """Looks up (and caches) the row id of each term in one session's database."""

    def __init__(self, session: Session):
        self.session = session
        self._ids: dict[tuple[str, str], int] = {}

    def id(self, term: catalog.Term) -> int:
        key = (term.vocabulary, term.code)
        if key not in self._ids:
            table = catalog.vocabulary(term.vocabulary).table
            cls = TERM_TABLES[table]
            found = self.session.scalar(
                select(cls.id)
                .join(Vocabulary, Vocabulary.id == cls.vocabulary_id)
                .where(Vocabulary.name == term.vocabulary, cls.code == term.code)
            )
            if found is None:
                raise VocabularyNotLoadedError(
                    f"{term.code!r} of {term.vocabulary} is not in this database;"
                    " run `imaging-biobank init` to upgrade it"
                )
            self._ids[key] = found
        return self._ids[key]

    def row(self, cls: type[T], term: catalog.Term) -> T:
        row = self.session.get(cls, self.id(term))
        assert row is not None
        return row

    def rows(self, cls: type[T], terms: Iterable[catalog.Term]) -> list[T]:
        unique: dict[int, T] = {}
        for term in terms:
            row = self.row(cls, term)
            unique.setdefault(row.id, row)
        return list(unique.values())
