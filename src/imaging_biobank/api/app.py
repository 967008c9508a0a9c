"""The application: routers, problem details for every error, and the audit log written
after every request made with a valid token."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from imaging_biobank import __version__
from imaging_biobank.access.audit import record
from imaging_biobank.api import problems
from imaging_biobank.api.deps import ApiSettings, AuditNote, Who
from imaging_biobank.api.routes import (
    admin,
    catalogue,
    cohorts,
    forms,
    health,
    quality,
    releases,
    sparql,
)

log = logging.getLogger("imaging_biobank.api")

DESCRIPTION = """The DICOM-MIABIS imaging biobank: catalogue, cohort queries, e-forms,
quality reports and SPARQL (`/api/sparql`: researchers query the catalogue graph, data
managers the whole graph). Every route but `/health` needs a token (`Authorization: Bearer TOKEN`,
made with `imaging-biobank token create`). Roles: `researcher` (catalogue, obfuscated
counts), `data_manager` (exact counts, manifests, record entry, quality), `admin`. Errors
are RFC 9457 problem details."""


def _write_audit(settings: ApiSettings, request: Request, status: int) -> None:
    who = getattr(request.state, "principal", None)
    if who is None:
        return
    note: AuditNote = getattr(request.state, "audit", None) or AuditNote(
        f"{request.method.lower()} {request.url.path}"
    )
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    with settings.engine.begin() as conn:
        record(
            conn,
            who,
            action=note.action,
            method=request.method,
            path=path,
            status=status,
            query=note.query,
            purpose=note.purpose,
            result_count=note.result_count,
        )


def create_app(settings: ApiSettings) -> FastAPI:
    """The API (and the pages) of one deployment."""
    app = FastAPI(
        openapi_url=None,  # served below, behind a token like everything but /health
        docs_url=None,
        redoc_url=None,
        title="imaging-biobank",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "catalogue", "description": "Biobanks, collections, studies"},
            {"name": "cohorts", "description": "Cohort queries: counts and manifests"},
            {"name": "releases", "description": "Frozen, citable cohort manifests"},
            {"name": "e-forms", "description": "Clinical e-forms and record entry"},
            {"name": "quality", "description": "Quality-check reports"},
            {"name": "sparql", "description": "SPARQL 1.1 over the biobank as RDF"},
            {"name": "admin", "description": "The audit log"},
            {"name": "health", "description": "Liveness, without a token"},
        ],
    )
    app.state.settings = settings
    problems.install(app)

    @app.middleware("http")
    async def audit_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            response = await call_next(request)
        except Exception:
            await run_in_threadpool(_write_audit, settings, request, 500)
            raise
        await run_in_threadpool(_write_audit, settings, request, response.status_code)
        return response

    for module in (health, catalogue, cohorts, releases, forms, quality, admin, sparql):
        app.include_router(module.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(me: Who) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(me: Who) -> HTMLResponse:
        # Swagger UI's script and style come from its CDN (jsdelivr), as FastAPI serves them
        return get_swagger_ui_html(openapi_url="/openapi.json", title="imaging-biobank API")

    from imaging_biobank.web.pages import router as pages

    app.include_router(pages)
    return app
