"""The web catalogue's routes: sign-in, the catalogue, collection pages, the cohort builder,
e-forms and the quality report, and their stylesheet and script under ``/static``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from imaging_biobank.web import catalogue, cohort, collection, eforms, quality, session
from imaging_biobank.web.render import STATIC

router = APIRouter(include_in_schema=False)
for module in (session, catalogue, collection, cohort, eforms, quality):
    router.include_router(module.router)

MEDIA_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
STATIC_FILES = {p.name: p for p in STATIC.iterdir() if p.suffix in MEDIA_TYPES}


@router.get("/static/{name}")
def static(name: str) -> Response:
    """One of the package's static files (no token needed: they hold no data)."""
    path = STATIC_FILES.get(name)
    if path is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=3600"},
    )
