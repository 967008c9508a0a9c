"""For administrators: the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from imaging_biobank.access.audit import entries
from imaging_biobank.api.deps import Admin, AuditNote, Conn, audit

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/audit")
def audit_log(
    request: Request,
    conn: Conn,
    me: Admin,
    actor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, Any]]:
    """The newest audit entries: who, when, what query, how many results."""
    found = entries(conn, actor=actor, limit=limit)
    audit(request, AuditNote("audit.read", result_count=len(found)))
    return found
