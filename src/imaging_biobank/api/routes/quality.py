"""Quality reports: the default rules (or the deployment's) run on a collection or all."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from imaging_biobank.api.deps import AuditNote, Conn, DataManager, audit
from imaging_biobank.api.problems import ProblemError
from imaging_biobank.db.lookup import CollectionLookupError, find_collection
from imaging_biobank.quality.checks import Target, run_checks
from imaging_biobank.quality.render import report_json
from imaging_biobank.quality.ruleset import load_rules

router = APIRouter(prefix="/api", tags=["quality"])


@router.get("/quality")
def quality(
    request: Request, conn: Conn, me: DataManager, collection: str | None = None
) -> dict[str, Any]:
    """The quality-check report (findings name series and files: for data managers)."""
    target = None
    if collection is not None:
        try:
            found = find_collection(conn, collection)
        except CollectionLookupError as error:
            raise ProblemError(404, str(error), kind="not-found") from None
        target = Target(found.id, found.identifier, found.kind)
    report = run_checks(conn, load_rules(), target)
    body = report_json(report, "error")
    audit(request, AuditNote("quality.report", collection, result_count=len(report.findings)))
    return body
