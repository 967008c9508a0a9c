"""``/api/sparql``: SPARQL over the biobank's RDF, per the SPARQL 1.1 Protocol.

A query comes as ``GET ?query=``, as a form post (``query=``) or as an
``application/sparql-query`` body; results come as ``application/sparql-results+json`` or
``text/csv`` (SELECT, ASK), Turtle, JSON-LD or N-Triples (CONSTRUCT, DESCRIBE), by ``Accept``.

Who sees what: data managers and administrators query the full graph (donors by pseudonym,
samples, diagnoses, DICOM studies and series, analyses; exact counts); researchers the
catalogue's graph (biobanks, collections with their descriptors, studies, the terms they use)
with counts as researchers see them everywhere (1-9 shown as 10, others rounded to tens), so
no individual-level row, no exact small count and no exact age reaches them (ages as 10-year
bands). Only queries are run: SPARQL Update, ``SERVICE``, ``FROM`` and ``GRAPH`` are refused.

Limits (``SparqlLimits``; ``app.state.sparql_limits`` overrides the defaults): a query text
over ``MAX_QUERY_CHARS`` characters is refused (413); a result over ``max_rows`` rows (or
triples) is refused rather than cut (422); parsing and evaluation run in a child process
(Linux) killed after ``timeout`` seconds or when it needs more than ``memory_mb`` MiB (422),
so one bad query never holds up other requests; at most ``rdf_sandbox.MAX_CHILDREN`` queries
run at once (503 beyond). An error of the query engine is a 400 problem, logged here with its
traceback. On systems without ``fork`` the query runs in the server's process without the
time and memory limits (a warning is logged once).

Built graphs are cached (``rdf_cache.GraphCache``): the database's state is looked at every
30 s at most, so answers may lag writes by up to 30 s.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from imaging_biobank.access.tokens import Principal
from imaging_biobank.api.deps import ApiSettings, AuditNote, Who, audit, settings
from imaging_biobank.api.problems import ProblemError
from imaging_biobank.export.rdf import FORMATS
from imaging_biobank.export.rdf_build import RdfOptions
from imaging_biobank.export.rdf_cache import GraphCache
from imaging_biobank.export.rdf_sparql import (
    HARD_LIMITS,
    MAX_QUERY_CHARS,
    MEMORY_MB,
    RESULTS_CSV,
    RESULTS_JSON,
    TIMEOUT,
    SparqlError,
    SparqlResult,
    run,
)

router = APIRouter(prefix="/api", tags=["sparql"])

MAX_ROWS: Final = 10_000
SPARQL_QUERY: Final = "application/sparql-query"
FORM: Final = "application/x-www-form-urlencoded"
TABLES: Final = [RESULTS_JSON, "application/json", RESULTS_CSV]
GRAPHS: Final = {media: name for name, (_, media, _) in FORMATS.items()}
STATUS: Final = {
    "syntax": 400, "update": 400, "remote": 400, "dataset": 400, "evaluation": 400,
    "too-long": 413, "too-large": 422, "timeout": 422, "memory": 422, "busy": 503,
}  # fmt: skip
log = logging.getLogger("imaging_biobank.api.sparql")
QUERY_HELP: Final = (
    "A SPARQL 1.1 query (SELECT, ASK, CONSTRUCT, DESCRIBE); the export's prefixes (ib:, dicom:,"
    " dcm:, bp:, sct:, icd:, dcat:, dcterms:, skos:, ...) are declared."
)
EXAMPLE: Final = (
    "SELECT ?series WHERE { ?series ib:modality dcm:CT ;"
    " ib:bodyPart/ib:covers?/skos:broader* bp:ABDOMEN ; dicom:SliceThickness ?t"
    " FILTER(?t <= 3) }"
)
RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "SELECT/ASK: SPARQL results; CONSTRUCT/DESCRIBE: a graph",
        "content": {
            RESULTS_JSON: {},
            RESULTS_CSV: {},
            "text/turtle": {},
            "application/ld+json": {},
            "application/n-triples": {},
        },
    },
    400: {
        "description": "Not a SPARQL query; an Update, SERVICE, FROM or GRAPH; or the query"
        " failed while running (problem details)"
    },
    406: {"description": "None of the accepted media types can hold this result"},
    413: {"description": f"The query is longer than {MAX_QUERY_CHARS} characters"},
    415: {"description": "A body that is neither a form nor application/sparql-query"},
    422: {"description": "The result is too large, or the query ran too long or used too much"},
    503: {"description": "Too many queries are running: try again shortly"},
}


@dataclass(frozen=True)
class SparqlLimits:
    """What one query may take: seconds (parsing included), MiB beyond the graph, rows."""

    timeout: float = TIMEOUT
    memory_mb: int = MEMORY_MB
    max_rows: int = MAX_ROWS


def _limits(request: Request) -> SparqlLimits:
    """The application's limits (``app.state.sparql_limits``), else those of its settings
    (``serve --sparql-timeout``), else the defaults."""
    found = getattr(request.app.state, "sparql_limits", None)
    if isinstance(found, SparqlLimits):
        return found
    chosen = settings(request)
    return SparqlLimits(
        timeout=TIMEOUT if chosen.sparql_timeout is None else chosen.sparql_timeout,
        memory_mb=MEMORY_MB if chosen.sparql_memory_mb is None else chosen.sparql_memory_mb,
    )


_warned: list[bool] = []
_making = threading.Lock()  # one graph cache per application


def _warn_without_limits() -> None:
    if not HARD_LIMITS and not _warned:
        _warned.append(True)
        log.warning(
            "SPARQL queries run in the server's process without time and memory limits:"
            " hard limits need Linux (fork); consider not exposing /api/sparql here"
        )


def _graphs(request: Request) -> GraphCache:
    """The application's cache of built graphs (made on first use)."""
    state = request.app.state
    with _making:
        cache: GraphCache | None = getattr(state, "rdf_graphs", None)
        if cache is None:
            cache = GraphCache()
            state.rdf_graphs = cache
    return cache


def _options(me: Principal, found: ApiSettings) -> RdfOptions:
    """The graph a principal may query: the catalogue's for researchers, the full one else."""
    if me.may("data_manager"):
        return RdfOptions(level="full", role="data_manager", step=found.obfuscation_step)
    return RdfOptions(level="catalogue", role="researcher", step=found.obfuscation_step)


def _accepted(header: str | None) -> list[str]:
    """Media types of an Accept header, most wanted first (q=0 left out)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "*/*").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            ranked.append((-q, index, media.lower()))
    return [media for _, _, media in sorted(ranked)]


def _choose(header: str | None, offered: list[str]) -> str:
    for media in _accepted(header):
        if media in offered:
            return media
        if media in ("*/*", "application/*", "text/*"):
            kind = media.split("/")[0]
            for candidate in offered:
                if kind == "*" or candidate.startswith(kind + "/"):
                    return candidate
    raise ProblemError(
        406,
        f"this result can be sent as {', '.join(offered)}; Accept asked for {header}",
        kind="not-acceptable",
    )


def _answer(request: Request, me: Principal, text: str) -> Response:
    """Run the query on the principal's graph and send the result as Accept asks."""
    if len(text) > MAX_QUERY_CHARS:
        raise ProblemError(
            413,
            f"the query has {len(text)} characters; at most {MAX_QUERY_CHARS} are accepted",
            kind="sparql-too-long",
        )
    audit(request, AuditNote("sparql", text))
    limits = _limits(request)
    _warn_without_limits()
    try:
        found = settings(request)
        graph = _graphs(request).graph(found.engine, _options(me, found))
        result = run(
            graph,
            text,
            max_rows=limits.max_rows,
            timeout=limits.timeout,
            memory_mb=limits.memory_mb,
        )
    except SparqlError as error:
        if error.kind == "evaluation":
            log.warning("SPARQL query failed: %s\nquery: %s\n%s", error, text, error.trace or "")
        raise ProblemError(
            STATUS.get(error.kind, 400),
            str(error),
            kind=f"sparql-{error.kind}",
            headers={"Retry-After": "5"} if error.kind == "busy" else None,
        ) from None
    audit(request, AuditNote("sparql", text, result_count=result.size))
    return _send(request, result, result.form)


def _send(request: Request, result: SparqlResult, form: str) -> Response:
    accept = request.headers.get("accept")
    if form in ("CONSTRUCT", "DESCRIBE"):
        media = _choose(accept, list(GRAPHS))
        return Response(result.graph_bytes(GRAPHS[media]), media_type=media)
    media = _choose(accept, TABLES)
    if media == RESULTS_CSV:
        return Response(result.to_csv(), media_type="text/csv; charset=utf-8")
    return JSONResponse(result.to_json(), media_type=media)


def _one_graph(request: Request) -> None:
    """The protocol's dataset parameters: this endpoint has one graph, so they are refused."""
    for name in ("default-graph-uri", "named-graph-uri"):
        if name in request.query_params:
            raise ProblemError(
                400, f"{name} is not accepted: the endpoint queries one graph", kind="sparql-remote"
            )


@router.get("/sparql", responses=RESPONSES)
async def sparql_get(
    request: Request,
    me: Who,
    query: Annotated[str | None, Query(description=QUERY_HELP, examples=[EXAMPLE])] = None,
) -> Response:
    """Run a SPARQL query given as ``?query=`` (SPARQL 1.1 Protocol, query via GET).
    Researchers query the catalogue's graph (obfuscated counts); data managers the full
    graph."""
    _one_graph(request)
    if query is None:
        raise ProblemError(400, "give the query as ?query=...", kind="sparql-syntax")
    return await run_in_threadpool(_answer, request, me, query)


@router.post(
    "/sparql",
    responses=RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                SPARQL_QUERY: {"schema": {"type": "string"}, "example": EXAMPLE},
                FORM: {
                    "schema": {
                        "type": "object",
                        "properties": {"query": {"type": "string", "description": QUERY_HELP}},
                        "required": ["query"],
                    }
                },
            },
        }
    },
)
async def sparql_post(request: Request, me: Who) -> Response:
    """Run a SPARQL query posted as a form (``query=``) or as an ``application/sparql-query``
    body (SPARQL 1.1 Protocol, query via POST). SPARQL Update is refused."""
    _one_graph(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError(400, "the body is not UTF-8", kind="sparql-syntax") from None
    if media == SPARQL_QUERY:
        query = text
    elif media == FORM:
        fields = parse_qs(text, keep_blank_values=True)
        if "update" in fields:
            raise ProblemError(
                400, "SPARQL Update is not accepted: the graph is read-only", kind="sparql-update"
            )
        if len(fields.get("query", [])) != 1:
            raise ProblemError(400, "give one query=... field", kind="sparql-syntax")
        query = fields["query"][0]
    elif media == "application/sparql-update":
        raise ProblemError(
            400, "SPARQL Update is not accepted: the graph is read-only", kind="sparql-update"
        )
    else:
        raise ProblemError(
            415,
            f"post the query as {SPARQL_QUERY} or as a form ({FORM}), not {media or 'no type'}",
            kind="unsupported-media-type",
        )
    return await run_in_threadpool(_answer, request, me, query)
