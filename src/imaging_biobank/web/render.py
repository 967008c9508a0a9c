"""The pages' templates (Jinja2, autoescaped) and what every page is given: who is signed
in, with which role, and the navigation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from imaging_biobank import __version__
from imaging_biobank.access.tokens import Principal

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
STATIC = HERE / "static"

# everything from this site only; no inline script (the JSON-LD and menu data are data
# blocks, which browsers never run)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
ROLE_LABELS = {"researcher": "researcher", "data_manager": "data manager", "admin": "admin"}
NAV = (
    ("/", "Catalogue", None),
    ("/cohort", "Cohort builder", None),
    ("/forms", "E-forms", None),
    ("/quality", "Quality", "data_manager"),
)


def short_name(identifier: str) -> str:
    """A collection's short name: the part after ``:collection:`` (or the last colon)."""
    if ":collection:" in identifier:
        return identifier.split(":collection:", 1)[1]
    return identifier.rsplit(":", 1)[-1]


def kind_label(kind: str) -> str:
    """``sample_tissue`` as people write it: ``Sample tissue``."""
    text = kind.replace("_", " ")
    return text[:1].upper() + text[1:]


def number(value: Any) -> str:
    """Counts with thousands separated by a thin space."""
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    return "" if value is None else str(value)


TEMPLATES.env.filters["short"] = short_name
TEMPLATES.env.filters["kind"] = kind_label
TEMPLATES.env.filters["number"] = number
TEMPLATES.env.globals["version"] = __version__
TEMPLATES.env.trim_blocks = True
TEMPLATES.env.lstrip_blocks = True


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    me: Principal | None = None,
) -> HTMLResponse:
    """Render ``template`` with the signed-in principal (``me``, else the request's) and
    the navigation their role may use."""
    who = me if me is not None else getattr(request.state, "principal", None)
    nav = [
        (href, label)
        for href, label, role in NAV
        if who is not None and (role is None or who.may(role))
    ]
    here = request.url.path
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "me": who,
            "role_label": ROLE_LABELS.get(who.role, who.role) if who else None,
            "nav": nav,
            "here": here,
            **context,
        },
        status_code=status,
    )
    response.headers["Cache-Control"] = "no-store"  # pages show data: not for shared caches
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def error_page(
    request: Request, status: int, title: str, message: str, me: Principal | None = None
) -> HTMLResponse:
    """An error as a page (the API answers problem details; people get words)."""
    return page(request, "error.html", {"title": title, "message": message}, status=status, me=me)
