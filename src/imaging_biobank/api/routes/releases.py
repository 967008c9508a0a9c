"""Cohort releases: frozen, citable manifests of a query's series and instances."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from imaging_biobank.api.deps import AuditNote, Conn, DataManager, Settings, Who, audit
from imaging_biobank.api.problems import ProblemError
from imaging_biobank.api.routes.cohorts import CohortRequest, parsed
from imaging_biobank.query import release as releases
from imaging_biobank.query.ast import to_text
from imaging_biobank.query.keys import QueryKeyError

router = APIRouter(prefix="/api", tags=["releases"])


class ReleaseRequest(CohortRequest):
    """The query to freeze, under a name (letters, digits, '.', '_', '-')."""

    name: str = Field(..., min_length=1, max_length=100, examples=["nb-ct-training"])


class ReleaseRef(BaseModel):
    identifier: str


def _errors(error: Exception) -> ProblemError:
    if isinstance(error, releases.ReleaseNotFoundError):
        return ProblemError(404, str(error), kind="not-found")
    return ProblemError(422, str(error), kind="release")


@router.post("/releases", status_code=201)
def create_release(
    request: Request, body: ReleaseRequest, conn: Conn, me: DataManager
) -> dict[str, Any]:
    """Freeze the query's matching series and instances (with content hashes) as the next
    version of release ``name``: data managers."""
    tree, purpose = parsed(body)
    audit(request, AuditNote("release.create", to_text(tree), body.purpose or None))
    try:
        made = releases.freeze(
            conn, tree, name=body.name, created_by=me.name, role=me.role, purpose=purpose
        )
    except (releases.ReleaseError, QueryKeyError) as error:
        raise _errors(error) from None
    audit(request, AuditNote("release.create", made.query_text, made.purpose, made.instances))
    return made.as_json()


@router.get("/releases")
def list_releases(
    request: Request, conn: Conn, settings: Settings, me: Who, name: str | None = None
) -> list[Any]:
    """The releases (of one name), newest version last; counts obfuscated for researchers."""
    found = releases.list_releases(conn, name)
    audit(request, AuditNote("release.list", name, result_count=len(found)))
    step = settings.obfuscation_step
    return [r.as_json(obfuscated=me.role == "researcher", step=step) for r in found]


@router.get("/releases/{name}/{version}")
def get_release(
    request: Request, name: str, version: str, conn: Conn, settings: Settings, me: Who
) -> dict[str, Any]:
    """One release (``name/vN`` or ``name/vN-hash``): metadata, and for data managers its
    series and instances."""
    identifier = f"{name}/{version}"
    try:
        found = releases.get_release(conn, identifier, role=me.role, step=settings.obfuscation_step)
    except releases.ReleaseError as error:
        raise _errors(error) from None
    audit(request, AuditNote("release.show", identifier, result_count=1))
    return found


@router.get(
    "/releases/{name}/{version}/manifest",
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
def release_manifest(
    request: Request,
    name: str,
    version: str,
    conn: Conn,
    me: DataManager,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """The release's manifest, one row per instance (pseudonymised donor, UIDs, content
    hash, size, location): data managers."""
    identifier = f"{name}/{version}"
    try:
        text = releases.export_manifest(conn, identifier, format, role=me.role)
    except releases.ReleaseError as error:
        raise _errors(error) from None
    rows = len(text.splitlines()) - 1 if format == "csv" else len(json.loads(text)["instances"])
    audit(request, AuditNote("release.manifest", identifier, result_count=rows))
    media = "text/csv" if format == "csv" else "application/json"
    return Response(text, media_type=media)


@router.get("/releases/{name}/{version}/diff/{other}")
def release_diff(
    request: Request, name: str, version: str, other: str, conn: Conn, settings: Settings, me: Who
) -> dict[str, Any]:
    """What changed from ``name/version`` to ``name/other`` (series and instances added,
    removed, changed); counts only, obfuscated, for researchers."""
    a, b = f"{name}/{version}", f"{name}/{other}"
    try:
        found = releases.diff(conn, a, b, role=me.role, step=settings.obfuscation_step)
    except releases.ReleaseError as error:
        raise _errors(error) from None
    audit(request, AuditNote("release.diff", f"{a} -> {b}"))
    return found
