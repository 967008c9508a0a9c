"""A collection's page (``/collections/{id}``): its MIABIS description, charts drawn on the
server as SVG, and its schema.org Dataset JSON-LD."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from imaging_biobank.api.deps import AuditNote, audit, settings
from imaging_biobank.catalogue import listing
from imaging_biobank.db.lookup import CollectionLookupError, find_collection
from imaging_biobank.query.ast import Leaf
from imaging_biobank.query.facets import collection_facets, facets
from imaging_biobank.web import charts
from imaging_biobank.web.figures import collection_figures
from imaging_biobank.web.jsonld import dataset
from imaging_biobank.web.render import error_page, page
from imaging_biobank.web.session import ANONYMOUS, signed_in, to_login
from imaging_biobank.web.terms import label

router = APIRouter(include_in_schema=False)


def _labelled(key: str, rows: list[tuple[str, int]]) -> list[tuple[str, int]]:
    out = []
    for code, n in rows:
        words = label(key, code)
        out.append((f"{code} \u2013 {words}" if words else code, n))
    return out


def figures_of(
    conn: Connection, identifier: str, role: str, step: int
) -> tuple[list[tuple[str, str, Markup]], str]:
    """The collection's charts as (id, heading, SVG), and what its shares are of."""
    found = find_collection(conn, identifier)
    numbers = collection_figures(conn, found, role=role, step=step)
    donors = facets(conn, Leaf("collection", "EQUALS", found.identifier), role=role, step=step)
    drawn: list[tuple[str, str, Markup]] = []

    def add(ident: str, title: str, chart: Markup) -> None:
        drawn.append((ident, title, chart))

    if numbers.series_by_modality:
        title = "Series by modality"
        add(
            "modality",
            title,
            charts.bar_chart(title, _labelled("modality", numbers.series_by_modality)),
        )
    if numbers.series_by_body_part:
        title = "Series by body part examined"
        add("body-part", title, charts.bar_chart(title, numbers.series_by_body_part))
    if donors.get("sex"):
        title = "Donors by sex"
        add("sex", title, charts.bar_chart(title, list(donors["sex"].items())))
    if donors.get("sex") or donors.get("age"):
        title = "Donors by age band (years, at imaging)"
        add("age", title, charts.histogram(title, list(donors["age"].items()), axis="age (years)"))
    if numbers.samples_by_material:
        title = "Samples by material type"
        add("material", title, charts.bar_chart(title, numbers.samples_by_material))
    if numbers.samples_by_temperature:
        title = "Samples by storage temperature"
        add("temperature", title, charts.bar_chart(title, numbers.samples_by_temperature))
    if numbers.slice_thickness and any(n for _, n in numbers.slice_thickness):
        title = "Series by slice thickness (mm)"
        add(
            "slice-thickness",
            title,
            charts.histogram(title, numbers.slice_thickness, axis="slice thickness (mm)"),
        )
    if numbers.completeness:
        title = f"Data completeness (share of {numbers.completeness_of} with a value)"
        add(
            "completeness",
            title,
            charts.bar_chart(title, numbers.completeness, unit=" %", scale_max=100),
        )
    return drawn, numbers.completeness_of


@router.get("/collections/{identifier}")
def collection_page(request: Request, identifier: str) -> Response:
    """One collection: attributes, descriptors, counts, studies, contacts, charts, JSON-LD."""
    me = signed_in(request)
    if me is None and settings(request).public_landing_pages:
        me = request.state.principal = ANONYMOUS
    if me is None:
        return to_login(request)
    step = settings(request).obfuscation_step
    with settings(request).engine.connect() as conn:
        try:
            with Session(bind=conn) as session:
                described = listing.collection(session, identifier, role=me.role, step=step)
        except CollectionLookupError as error:
            return error_page(request, 404, "No such collection", str(error), me)
        drawn, shares_of = figures_of(conn, described["id"], me.role, step)
        banks = {b["id"]: b for b in listing.biobanks(conn)}
        values = collection_facets(conn).get(described["id"], {})
    url = str(request.url_for("collection_page", identifier=described["id"]))
    biobank = banks.get(described["biobank"])
    audit(request, AuditNote("web.collection", described["id"], result_count=1))
    return page(
        request,
        "collection.html",
        {
            "c": described,
            "biobank": biobank,
            "charts": drawn,
            "shares_of": shares_of,
            "jsonld": dataset(described, biobank, values, url, str(request.url_for("catalogue"))),
            "obfuscated": me.role == "researcher",
            "step": step,
        },
        me=me,
    )
