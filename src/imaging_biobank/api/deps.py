"""What routes share: the deployment's settings, a database connection per request, the
principal behind the request's token, role checks and the audit entry of the request."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from imaging_biobank.access.tokens import Principal, principal
from imaging_biobank.api.problems import ProblemError

COOKIE = "ib_token"  # the pages' session: the same token, in an HttpOnly cookie


@dataclass
class ApiSettings:
    """One deployment: its database and choices."""

    engine: Engine
    obfuscation_step: int = 10  # the Locator's default: 1-9 show as 10, others to tens
    key_file: Path | None = None  # to pseudonymise donor ids of e-form records entered
    # collection landing pages (with their schema.org JSON-LD) open to visitors without a
    # token, shown as a researcher sees them and audited as "anonymous"
    public_landing_pages: bool = False
    # what one SPARQL query may take (seconds, MiB beyond the graph); None: the defaults
    sparql_timeout: float | None = None
    sparql_memory_mb: int | None = None


@dataclass
class AuditNote:
    """What a route tells the audit log about its request."""

    action: str
    query: str | None = None
    purpose: list[str] | None = None
    result_count: int | None = None


def settings(request: Request) -> ApiSettings:
    found: ApiSettings = request.app.state.settings
    return found


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


def who_optional(request: Request) -> Principal | None:
    """The principal of the request's token, if it has a valid one."""
    if hasattr(request.state, "principal"):
        known: Principal | None = request.state.principal
        return known
    token = token_of(request)
    found = None
    if token is not None:
        with settings(request).engine.connect() as conn:
            found = principal(conn, token)
    request.state.principal = found
    return found


def connection(
    request: Request, _: Annotated[Principal | None, Depends(who_optional)]
) -> Iterator[Connection]:
    """A connection in a transaction, committed when the route returns. Taken after the
    token is checked (``who_optional``, on a connection of its own, given back at once), so
    a request never holds one pooled connection while it waits for another: with as many
    requests as connections, they would all wait until the pool's timeout."""
    with settings(request).engine.begin() as conn:
        yield conn


def who(request: Request) -> Principal:
    """The principal of the request's token; 401 without a valid one."""
    found = who_optional(request)
    if found is None:
        detail = (
            "a valid token is needed (Authorization: Bearer TOKEN)"
            if token_of(request) is None
            else "the token is unknown, revoked or expired"
        )
        raise ProblemError(
            401, detail, kind="unauthenticated", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


def require(*roles: str) -> Any:
    """A dependency: the principal, if their role is one of ``roles`` (admin always)."""

    def check(request: Request) -> Principal:
        found = who(request)
        if not found.may(*roles):
            raise ProblemError(
                403,
                f"this needs the role {' or '.join(roles)}; your token has {found.role}",
                kind="forbidden",
            )
        return found

    return Depends(check)


def audit(request: Request, note: AuditNote) -> None:
    """Set what the audit entry of this request says (written when the response is sent)."""
    request.state.audit = note


# committed before the response is sent (not after, FastAPI's default for yield)
Conn = Annotated[Connection, Depends(connection, scope="function")]
Who = Annotated[Principal, Depends(who)]
Settings = Annotated[ApiSettings, Depends(settings)]
DataManager = Annotated[Principal, require("data_manager")]
Admin = Annotated[Principal, require("admin")]
