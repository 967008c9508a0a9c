"""Errors as RFC 9457 problem details (``application/problem+json``), never stack traces.

A database that cannot be reached (connection pool exhausted past its timeout, server down
or restarting) is a 503 with ``Retry-After``, not a 500: the request was fine and the same
request a little later is answered.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"
TYPES = "https://imaging-biobank.org/problems/"  # stable names; 'about:blank' for plain HTTP
log = logging.getLogger("imaging_biobank.api")

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
}

# seconds a client should wait before trying again (the Retry-After header)
RETRY_BUSY = 1  # every pooled connection was in use: a burst, over in a moment
RETRY_DOWN = 5  # the database did not answer: a restart or failover takes seconds


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None  # extension: where the request was wrong


class ProblemError(Exception):
    """Raised by routes: becomes a problem response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.errors = errors
        self.headers = headers


def problem_response(
    request: Request,
    status: int,
    detail: str | None,
    *,
    kind: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    title: str | None = None,
) -> JSONResponse:
    body = Problem(
        type=TYPES + kind if kind else "about:blank",
        title=title or TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in error.errors()
    ]


def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    """503 for a database the request could not use: every pooled connection busy past the
    pool's timeout, or the server not answering (down, restarting, refusing connections)."""
    if isinstance(error, PoolTimeoutError):
        log.warning("no free database connection for %s %s", request.method, request.url.path)
        return problem_response(
            request,
            503,
            "every database connection of this server is in use; try again in a moment",
            kind="database-busy",
            title="Database busy",
            headers={"Retry-After": str(RETRY_BUSY)},
        )
    log.error("database unavailable on %s %s: %s", request.method, request.url.path, error)
    return problem_response(
        request,
        503,
        "the database did not answer; try again shortly",
        kind="database-unavailable",
        title="Database unavailable",
        headers={"Retry-After": str(RETRY_DOWN)},
    )


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem details."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> JSONResponse:
        return problem_response(
            request,
            error.status,
            error.detail,
            kind=error.kind,
            errors=error.errors,
            headers=error.headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            request,
            error.status_code,
            str(error.detail),
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return problem_response(
            request,
            422,
            "the request does not match the API's schema",
            kind="invalid-request",
            errors=_validation_errors(error),
        )

    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(OperationalError)
    async def _database(request: Request, error: Exception) -> JSONResponse:
        return database_unavailable(request, error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # raised outside the routes (the audit middleware writing its entry): the same 503
        if isinstance(error, PoolTimeoutError | OperationalError):
            return database_unavailable(request, error)
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(
            request, 500, "the server failed on this request; it is logged", kind="server-error"
        )
