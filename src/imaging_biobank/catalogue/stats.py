"""Counts per entity and per collection, as a stable JSON-ready structure.

The structure is documented in the README (``imaging-biobank stats --json``); its
``format`` changes only when a key changes meaning or disappears, never when keys are added.
Written in SQL on the Core (no ORM import), so ``stats`` starts fast.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from imaging_biobank.db._tables import ENTITY_TABLES, VOCABULARY_TABLES

FORMAT = "imaging-biobank/stats@1"


def entity_counts(conn: Connection) -> dict[str, int]:
    """Rows per entity table, in one round trip."""
    union = " UNION ALL ".join(
        f"SELECT '{name}' AS entity, count(*) AS n FROM {name}" for name in ENTITY_TABLES
    )
    counts = {name: int(n) for name, n in conn.execute(text(union))}
    return {name: counts[name] for name in ENTITY_TABLES}


def _grouped(conn: Connection, sql: str) -> dict[int, tuple[int, ...]]:
    return {row[0]: tuple(int(v) for v in row[1:]) for row in conn.execute(text(sql))}


def collection_counts(conn: Connection, identifier: str | None = None) -> list[dict[str, Any]]:
    """Per collection (or the one ``identifier``): donors, samples, imaging studies,
    series and instances."""
    series = _grouped(
        conn,
        "SELECT image_collection_id, count(DISTINCT sample_donor_id),"
        " count(DISTINCT imaging_study_id), count(*)"
        " FROM imaging_series GROUP BY image_collection_id",
    )
    instances = _grouped(
        conn,
        "SELECT s.image_collection_id, count(*) FROM imaging_instance i"
        " JOIN imaging_series s ON s.id = i.imaging_series_id GROUP BY s.image_collection_id",
    )
    samples = _grouped(
        conn,
        "SELECT collection_id, count(DISTINCT sample_donor_id), count(*)"
        " FROM sample GROUP BY collection_id",
    )
    query = (
        "SELECT c.id, c.identifier, c.kind, c.name, c.acronym, b.identifier, c.number_of_donors"
        " FROM collection c"
        " JOIN biobank b ON b.id = c.biobank_id"
    )
    params = {}
    if identifier is not None:
        query += " WHERE c.identifier = :identifier"
        params["identifier"] = identifier
    result = []
    for cid, ident, kind, name, acronym, biobank, members in conn.execute(
        text(query + " ORDER BY c.identifier"), params
    ):
        image_donors, n_studies, n_series = series.get(cid, (0, 0, 0))
        sample_donors, n_samples = samples.get(cid, (0, 0))
        result.append(
            {
                "id": ident,
                "kind": kind,
                "name": name,
                "acronym": acronym,
                "biobank": biobank,
                # image collections: the donors of their series; the others: their derived
                # donor count (samples', records', results' and declared donors)
                "donors": image_donors if kind == "image" else (members or sample_donors),
                "samples": n_samples,
                "imaging_studies": n_studies,
                "imaging_series": n_series,
                "imaging_instances": instances.get(cid, (0,))[0],
            }
        )
    return result


def vocabulary_counts(conn: Connection) -> list[dict[str, Any]]:
    """Per loaded vocabulary edition: its table, edition and number of terms."""
    result = []
    rows = conn.execute(
        text("SELECT id, name, table_name, edition FROM vocabulary ORDER BY table_name, priority")
    ).all()
    for vid, name, table, edition in rows:
        if table not in VOCABULARY_TABLES:
            continue  # a table a newer version added; not ours to count
        terms = conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE vocabulary_id = :v"), {"v": vid}
        ).scalar_one()
        result.append({"name": name, "table": table, "edition": edition, "terms": int(terms)})
    return result


def stats(conn: Connection, revision: str | None = None) -> dict[str, Any]:
    """Everything ``imaging-biobank stats`` reports."""
    return {
        "format": FORMAT,
        "schema_revision": revision,
        "entities": entity_counts(conn),
        "collections": collection_counts(conn),
        "vocabularies": vocabulary_counts(conn),
    }
