"""The catalogue: biobanks, collections (MIABIS attributes, derived imaging descriptors,
counts), studies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from imaging_biobank.api.deps import AuditNote, Conn, Settings, Who, audit
from imaging_biobank.api.problems import ProblemError
from imaging_biobank.catalogue import listing
from imaging_biobank.db.lookup import CollectionLookupError

router = APIRouter(prefix="/api", tags=["catalogue"])


@router.get("/biobanks")
def biobanks(request: Request, conn: Conn, me: Who) -> list[dict[str, Any]]:
    """Every biobank with its MIABIS attributes."""
    found = listing.biobanks(conn)
    audit(request, AuditNote("catalogue.biobanks", result_count=len(found)))
    return found


@router.get("/biobanks/{identifier}")
def biobank(
    request: Request, identifier: str, conn: Conn, settings: Settings, me: Who
) -> dict[str, Any]:
    """One biobank and its collections."""
    found = [b for b in listing.biobanks(conn) if b["id"] == identifier]
    if not found:
        raise ProblemError(404, f"no biobank {identifier!r}", kind="not-found")
    members = listing.collections(
        conn, role=me.role, step=settings.obfuscation_step, biobank=identifier
    )
    audit(request, AuditNote("catalogue.biobank", identifier, result_count=1))
    return {**found[0], "collections": members}


@router.get("/collections")
def collections(request: Request, conn: Conn, settings: Settings, me: Who) -> list[dict[str, Any]]:
    """Every collection with its counts (obfuscated for researchers)."""
    found = listing.collections(conn, role=me.role, step=settings.obfuscation_step)
    audit(request, AuditNote("catalogue.collections", result_count=len(found)))
    return found


@router.get("/collections/{identifier}")
def collection(
    request: Request, identifier: str, conn: Conn, settings: Settings, me: Who
) -> dict[str, Any]:
    """One collection: its MIABIS description, descriptors (declared or derived from the
    data), counts, studies and contacts. The short name (``NB_IMAGING``) works too."""
    try:
        with Session(bind=conn) as session:
            found = listing.collection(
                session, identifier, role=me.role, step=settings.obfuscation_step
            )
    except CollectionLookupError as error:
        raise ProblemError(404, str(error), kind="not-found") from None
    audit(request, AuditNote("catalogue.collection", identifier, result_count=1))
    return found


@router.get("/studies")
def studies(request: Request, conn: Conn, me: Who) -> list[dict[str, Any]]:
    """Every MIABIS study and the collections it spans."""
    found = listing.studies(conn)
    audit(request, AuditNote("catalogue.studies", result_count=len(found)))
    return found
