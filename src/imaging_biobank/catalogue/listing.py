"""The catalogue as data for the API and the pages: biobanks, collections with their MIABIS
attributes and derived descriptors, studies. Counts shown to researchers are obfuscated."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session

from imaging_biobank.catalogue.describe import describe_collection
from imaging_biobank.catalogue.stats import collection_counts
from imaging_biobank.clinical.forms import form_overview
from imaging_biobank.db._schema import metadata
from imaging_biobank.query.engine import as_seen

T = metadata.tables
COUNTS = ("donors", "samples", "imaging_studies", "imaging_series", "imaging_instances")


def shown(counts: dict[str, Any], role: str, step: int = 10) -> dict[str, Any]:
    """``counts`` as ``role`` may see them: obfuscated for researchers."""
    return {
        k: as_seen(v, role, step) if k in COUNTS and isinstance(v, int) else v
        for k, v in counts.items()
    }


def biobanks(conn: Connection) -> list[dict[str, Any]]:
    """Every biobank: MIABIS id, acronym, name, URL, juristic person, country, description,
    and how many collections it has."""
    b, j, c, k = T["biobank"], T["juristic_person"], T["country"], T["collection"]
    n = select(func.count()).where(k.c.biobank_id == b.c.id).scalar_subquery()
    rows = conn.execute(
        select(
            b.c.identifier, b.c.acronym, b.c.name, b.c.url, j.c.name, c.c.code, b.c.description, n
        )
        .join(j, j.c.id == b.c.juristic_person_id)
        .join(c, c.c.id == b.c.country_id)
        .order_by(b.c.identifier)
    )
    keys = ("id", "acronym", "name", "url", "juristic_person", "country", "description")
    return [{**dict(zip(keys, row[:7], strict=True)), "collections": row[7]} for row in rows]


def collections(
    conn: Connection, *, role: str, step: int = 10, biobank: str | None = None
) -> list[dict[str, Any]]:
    """Every collection (of one biobank): id, kind, name, acronym, biobank and counts."""
    rows = collection_counts(conn)
    if biobank is not None:
        rows = [r for r in rows if r["biobank"] == biobank]
    return [shown(r, role, step) for r in rows]


def collection(session: Session, identifier: str, *, role: str, step: int = 10) -> dict[str, Any]:
    """One collection: MIABIS attributes, descriptors (declared or derived), counts, studies
    and contacts (``CollectionLookupError`` when there is no such collection)."""
    found = describe_collection(session, identifier)
    c = found.collection
    return {
        "id": c.identifier,
        "kind": c.kind,
        "name": c.name,
        "acronym": c.acronym,
        "description": c.description,
        "biobank": c.biobank.identifier,
        "attributes": [{"name": k, "value": v} for k, v in found.attributes],
        "descriptors": [
            {"name": name, "values": value.split("\n"), "origin": origin}
            for name, value, origin in found.descriptors
        ],
        "counts": shown({k: v for k, v in found.counts.items() if k in COUNTS}, role, step),
        "studies": [{"id": i, "name": n} for i, n in found.studies],
        "contacts": [{"id": i, "name": n} for i, n, _email in found.contacts],
    }


def studies(conn: Connection) -> list[dict[str, Any]]:
    """Every MIABIS study: id, name, description and the collections it spans."""
    s, sc, c = T["study"], T["study_collection"], T["collection"]
    members: dict[int, list[str]] = {}
    for study_id, ident in conn.execute(
        select(sc.c.study_id, c.c.identifier).join(c, c.c.id == sc.c.collection_id)
    ):
        members.setdefault(study_id, []).append(ident)
    return [
        {
            "id": row.identifier,
            "name": row.name,
            "description": row.description,
            "collections": sorted(members.get(row.id, [])),
        }
        for row in conn.execute(
            select(s.c.id, s.c.identifier, s.c.name, s.c.description).order_by(s.c.identifier)
        )
    ]


def e_forms(engine: Engine, *, role: str, step: int = 10) -> list[dict[str, Any]]:
    """Every e-form (``form_overview``) with its record count as ``role`` may see it."""
    return [{**f, "records": as_seen(int(f["records"]), role, step)} for f in form_overview(engine)]
