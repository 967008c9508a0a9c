"""The quality page (``/quality``, data managers): the quality-check report of the whole
database or of one collection, from the same rules and report as ``imaging-biobank check``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from imaging_biobank.api.deps import AuditNote, audit, settings
from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import CollectionLookupError, find_collection
from imaging_biobank.quality.checks import Target, run_checks
from imaging_biobank.quality.render import report_json
from imaging_biobank.quality.ruleset import SEVERITIES, load_rules
from imaging_biobank.web.render import error_page, page
from imaging_biobank.web.session import signed_in, to_login

router = APIRouter(include_in_schema=False)
FAIL_ON = "error"


@router.get("/quality")
def quality_page(request: Request, collection: str = "") -> Response:
    """The report: counts by severity, the findings, the rules that were run."""
    me = signed_in(request)
    if me is None:
        return to_login(request)
    if not me.may("data_manager"):
        return error_page(
            request,
            403,
            "Forbidden",
            f"quality reports name series and files: they are for data managers; your role is"
            f" {me.role}",
            me,
        )
    c = metadata.tables["collection"]
    with settings(request).engine.connect() as conn:
        choices = [
            (ident, name)
            for ident, name in conn.execute(
                select(c.c.identifier, c.c.name).order_by(c.c.identifier)
            )
        ]
        target = None
        if collection:
            try:
                found = find_collection(conn, collection)
            except CollectionLookupError as error:
                return error_page(request, 404, "No such collection", str(error), me)
            target = Target(found.id, found.identifier, found.kind)
        report = run_checks(conn, load_rules(), target)
    body = report_json(report, FAIL_ON)
    audit(
        request,
        AuditNote("quality.report", collection or None, result_count=len(report.findings)),
    )
    return page(
        request,
        "quality.html",
        {
            "report": body,
            "severities": SEVERITIES,
            "choices": choices,
            "collection": target.identifier if target else "",
        },
        me=me,
    )
