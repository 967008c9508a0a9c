"""``/health``: the one route without a token (for load balancers and monitors)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from imaging_biobank import __version__
from imaging_biobank.api.deps import settings
from imaging_biobank.db.revision import HEAD_REVISION, current_revision

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    schema_revision: str | None
    schema_expected: str


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(request: Request) -> JSONResponse:
    """Whether the service and its database answer, and at which schema revision."""
    try:
        with settings(request).engine.connect() as conn:
            revision = current_revision(conn)
        ok = revision == HEAD_REVISION
    except SQLAlchemyError:
        revision, ok = None, False
    body = Health(
        status="ok" if ok else "unavailable",
        version=__version__,
        schema_revision=revision,
        schema_expected=HEAD_REVISION,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
