"""Cohort queries: counts for everyone with a token (obfuscated for researchers), manifests
for data managers, the query keys. One engine behind the CLI, the API and the pages."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from imaging_biobank.access.tokens import Principal
from imaging_biobank.api.deps import AuditNote, Conn, DataManager, Settings, Who, audit
from imaging_biobank.api.problems import ProblemError
from imaging_biobank.query.ast import Query as Tree
from imaging_biobank.query.ast import QuerySyntaxError, parse_json, parse_text, to_json, to_text
from imaging_biobank.query.engine import count, manifest
from imaging_biobank.query.keys import KEYS, QueryKeyError
from imaging_biobank.samples.consent import Purpose, PurposeError

router = APIRouter(prefix="/api", tags=["cohorts"])
STRATA = Literal["sex", "age", "modality"]


class CohortRequest(BaseModel):
    """A query in one of its two forms, the declared purpose and the strata wanted."""

    query: str | None = Field(
        None,
        description="The text form",
        examples=["modality = CT and body_part = ABDOMEN and slice_thickness <= 3"],
    )
    locator: dict[str, Any] | None = Field(
        None, description="The Locator's JSON form: {operand, children: [{key, type, value}]}"
    )
    purpose: list[str] = Field(
        default_factory=list, description="What the use is: commercial, genetic, ..."
    )
    by: list[STRATA] = Field(default_factory=list, description="Count donors also by these")


class Counts(BaseModel):
    donors: int
    samples: int
    studies: int
    series: int
    instances: int


class CohortAnswer(BaseModel):
    query: str
    locator: dict[str, Any]
    totals: Counts
    by_collection: list[dict[str, Any]]
    strata: dict[str, dict[str, int]]
    obfuscated: bool


class Key(BaseModel):
    name: str
    level: str
    kind: str
    unit: str | None
    help: str


def parsed(body: CohortRequest) -> tuple[Tree, Purpose | None]:
    """The query tree and purpose of a request; 422 problems say what is wrong."""
    try:
        if body.locator is not None:
            tree = parse_json(body.locator)
        elif body.query is not None and body.query.strip():
            tree = parse_text(body.query)
        else:
            raise ProblemError(422, "give query (text form) or locator (JSON form)", kind="query")
        return tree, parsed_purpose(body.purpose)
    except QuerySyntaxError as error:
        raise ProblemError(422, str(error), kind="query") from None


def answer(
    request: Request, conn: Conn, settings: Settings, me: Principal, body: CohortRequest
) -> CohortAnswer:
    tree, purpose = parsed(body)
    text = to_text(tree)
    audit(request, AuditNote("cohort.count", text, body.purpose or None))
    try:
        result = count(
            conn,
            tree,
            text=text,
            role=me.role,
            purpose=purpose,
            by=body.by,
            step=settings.obfuscation_step,
        )
    except QueryKeyError as error:
        raise ProblemError(422, str(error), kind="query") from None
    audit(request, AuditNote("cohort.count", text, body.purpose or None, result.totals.donors))
    data = result.as_json()
    return CohortAnswer(
        query=text,
        locator=to_json(tree),
        totals=Counts(**result.totals.__dict__),
        by_collection=data["by_collection"],
        strata=data["strata"],
        obfuscated=result.obfuscated,
    )


@router.post("/cohorts/count", response_model=CohortAnswer)
def cohort_count(
    request: Request, body: CohortRequest, conn: Conn, settings: Settings, me: Who
) -> CohortAnswer:
    """Counts of donors, samples, studies, series and instances matching the query, in
    total and per collection; small counts obfuscated for researchers."""
    return answer(request, conn, settings, me, body)


@router.get("/cohorts/count", response_model=CohortAnswer)
def cohort_count_get(
    request: Request,
    conn: Conn,
    settings: Settings,
    me: Who,
    q: Annotated[str, Query(description="The query in its text form")],
    purpose: Annotated[list[str] | None, Query()] = None,
    by: Annotated[list[STRATA] | None, Query()] = None,
) -> CohortAnswer:
    """The same as POST, with the text form in ``q``."""
    body = CohortRequest(query=q, purpose=purpose or [], by=by or [])
    return answer(request, conn, settings, me, body)


@router.post(
    "/cohorts/manifest",
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
def cohort_manifest(
    request: Request,
    body: CohortRequest,
    conn: Conn,
    me: DataManager,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """The matching series (pseudonymised donor, collection, study and series UIDs,
    modality, body part, instances, file folder or DICOMweb URL): for data managers."""
    tree, purpose = parsed(body)
    text = to_text(tree)
    audit(request, AuditNote("cohort.manifest", text, body.purpose or None))
    try:
        rows = manifest(conn, tree, role=me.role, purpose=purpose)
    except QueryKeyError as error:
        raise ProblemError(422, str(error), kind="query") from None
    audit(request, AuditNote("cohort.manifest", text, body.purpose or None, len(rows)))
    if format == "json":
        import json

        return Response(json.dumps(rows, default=str), media_type="application/json")
    out = io.StringIO()
    writer = csv.writer(out)
    if rows:
        writer.writerow(list(rows[0]))
        writer.writerows([list(r.values()) for r in rows])
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="manifest.csv"'},
    )


@router.get("/query/keys", response_model=list[Key])
def query_keys(me: Who) -> list[Key]:
    """The criteria a query can use, with their level, kind and unit."""
    return [
        Key(name=k.name, level=k.level, kind=k.kind, unit=k.unit, help=k.help)
        for k in KEYS.values()
    ]


@router.get("/facets", response_model=dict[str, dict[str, int]])
def cohort_facets(
    request: Request,
    conn: Conn,
    settings: Settings,
    me: Who,
    q: Annotated[str | None, Query(description="Only donors matching this query")] = None,
    purpose: Annotated[list[str] | None, Query()] = None,
) -> dict[str, dict[str, int]]:
    """Donors per value of each catalogue facet (collection kind, modality, body part,
    material type, storage temperature, diagnosis, sex, age band), of all donors or of those
    matching ``q``; obfuscated for researchers."""
    from imaging_biobank.query.facets import facets

    tree, declared = (
        parsed(CohortRequest(query=q, purpose=purpose or []))
        if q
        else (None, parsed_purpose(purpose))
    )
    text = to_text(tree) if tree is not None else None
    audit(request, AuditNote("cohort.facets", text, purpose or None))
    try:
        found = facets(conn, tree, role=me.role, purpose=declared, step=settings.obfuscation_step)
    except QueryKeyError as error:
        raise ProblemError(422, str(error), kind="query") from None
    return found


def parsed_purpose(purpose: list[str] | None) -> Purpose | None:
    try:
        return Purpose.of(purpose) if purpose else None
    except PurposeError as error:
        raise ProblemError(422, str(error), kind="query") from None
