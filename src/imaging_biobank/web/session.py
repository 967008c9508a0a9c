"""Signing in to the pages: the API token pasted once, kept in an HttpOnly, SameSite=Lax
cookie (``ib_token``) that the API reads too, so the pages' scripts call it as the user."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from imaging_biobank.access.tokens import Principal, principal
from imaging_biobank.api.deps import COOKIE, AuditNote, audit, settings, who_optional
from imaging_biobank.web.render import page

router = APIRouter(include_in_schema=False)
# who a visitor without a token is on the landing pages a deployment opens to them
ANONYMOUS = Principal(None, "anonymous", "researcher")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def to_login(request: Request) -> RedirectResponse:
    """Send a visitor without a valid token to the sign-in page, coming back here after."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


def signed_in(request: Request) -> Principal | None:
    """The principal of the request's cookie (or bearer header), if it is valid."""
    return who_optional(request)


def same_origin(request: Request) -> bool:
    """Whether a form post comes from this site (its Origin, when the browser sends one,
    names this host); with the SameSite=Lax cookie this keeps other sites' forms out."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The sign-in form: paste the token ``imaging-biobank token create`` printed."""
    current = signed_in(request)
    return page(
        request,
        "login.html",
        {"next": safe_next(next), "current": current, "error": None},
        me=current,
    )


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the token; when valid, keep it in the session cookie and go on."""
    target = safe_next(next)
    if not same_origin(request):
        return page(
            request,
            "error.html",
            {"title": "Forbidden", "message": "sign-in forms must come from this site"},
            status=403,
            me=None,
        )
    value = token.strip()
    found = None
    if value:
        with settings(request).engine.connect() as conn:
            found = principal(conn, value)
    if found is None:
        message = "paste a token" if not value else "this token is unknown, revoked or expired"
        return page(
            request,
            "login.html",
            {"next": target, "current": None, "error": message},
            status=401,
            me=None,
        )
    request.state.principal = found
    audit(request, AuditNote("web.sign-in"))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        value,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
    return response
