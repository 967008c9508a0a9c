"""The catalogue page (``/``): biobanks and their collection cards, filtered by facets and
free text, like the BBMRI-ERIC Directory. Every filter is a GET parameter, so a filtered view
has a URL to share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection, select

from imaging_biobank.api.deps import AuditNote, audit, settings
from imaging_biobank.catalogue import listing
from imaging_biobank.db._schema import metadata
from imaging_biobank.query.ast import Leaf, Node, Query, to_text
from imaging_biobank.query.facets import FACETS, collection_facets, facets
from imaging_biobank.web.render import kind_label, page
from imaging_biobank.web.session import signed_in, to_login
from imaging_biobank.web.terms import label

router = APIRouter(include_in_schema=False)
T = metadata.tables

FACET_TITLES = {
    "collection_kind": "Collection kind",
    "modality": "Modality",
    "body_part": "Body part examined",
    "material_type": "Material type",
    "storage_temperature": "Storage temperature",
    "diagnosis": "Diagnosis (ICD-10)",
    "sex": "Sex",
    "age": "Age (years)",
}
COUNT_LABELS = (
    ("donors", "donors"),
    ("samples", "samples"),
    ("imaging_studies", "studies"),
    ("imaging_series", "series"),
    ("imaging_instances", "instances"),
)


@dataclass
class FacetValue:
    value: str
    label: str
    donors: int | None
    checked: bool


@dataclass
class Facet:
    name: str
    title: str
    values: list[FacetValue] = field(default_factory=list)

    @property
    def selected(self) -> int:
        return sum(1 for v in self.values if v.checked)


def selection_of(request: Request) -> dict[str, list[str]]:
    """The facet values the URL selects, by facet."""
    return {
        name: [v for v in dict.fromkeys(request.query_params.getlist(name)) if v] for name in FACETS
    }


def card_matches(values: dict[str, list[str]], selection: dict[str, list[str]]) -> bool:
    """Within a facet any selected value, across facets all of them (the Directory's way)."""
    return all(
        not wanted or set(wanted) & set(values.get(name, [])) for name, wanted in selection.items()
    )


def text_matches(words: list[str], *texts: str | None) -> bool:
    """Whether every word of the search occurs in one of the texts (case-insensitive)."""
    haystack = " ".join(t for t in texts if t).casefold()
    return all(word in haystack for word in words)


def _age_leaf(band: str) -> Query | None:
    low, _, high = band.partition("-")
    if not (low.isdigit() and high.isdigit()):
        return None
    return Node(
        "AND", (Leaf("age", "GREATER_OR_EQUAL", int(low)), Leaf("age", "LESS_THAN", int(high) + 1))
    )


def selection_query(selection: dict[str, list[str]]) -> Query | None:
    """The cohort query of the selected donor facets (values are the query keys' codes), to
    count the donors in the cohort builder; the collection kind has no key and is left out."""
    parts: list[Query] = []
    for name, values in selection.items():
        if not values or name == "collection_kind":
            continue
        if name == "age":
            bands = [leaf for leaf in (_age_leaf(v) for v in values) if leaf is not None]
            if bands:
                parts.append(bands[0] if len(bands) == 1 else Node("OR", tuple(bands)))
            continue
        parts.append(Leaf(name, "IN", list(values)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Node("AND", tuple(parts))


def facet_panel(
    counts: dict[str, dict[str, int]],
    per_collection: dict[str, dict[str, list[str]]],
    selection: dict[str, list[str]],
) -> list[Facet]:
    """Every facet with the values donors or collections have, donors counted where known."""
    panel = []
    for name in FACETS:
        known = dict(counts.get(name, {}))
        for values in per_collection.values():
            for value in values.get(name, []):
                known.setdefault(value, 0)
        for value in selection[name]:
            known.setdefault(value, 0)
        if name == "age":
            order = sorted(known, key=lambda v: int(v.split("-")[0]) if v[:1].isdigit() else 999)
        else:
            order = sorted(known, key=lambda v: (-known[v], v))
        facet = Facet(name, FACET_TITLES.get(name, name))
        for value in order:
            shown = kind_label(value) if name == "collection_kind" else label(name, value)
            facet.values.append(
                FacetValue(value, shown, known[value] or None, value in selection[name])
            )
        panel.append(facet)
    return panel


def descriptions(conn: Connection) -> dict[str, str]:
    """Each collection's MIABIS description (the cards show it and the search reads it)."""
    c = T["collection"]
    return {
        ident: text or "" for ident, text in conn.execute(select(c.c.identifier, c.c.description))
    }


def without(request: Request, name: str, value: str) -> str:
    """The URL of this view with one selected value (or the search, name ``q``) removed."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if (k, v) != (name, value)]
    return "/?" + urlencode(kept) if kept else "/"


@router.get("/")
def catalogue(request: Request, q: str = "") -> Response:
    """Biobanks and collection cards, filtered by the selected facets and the search."""
    me = signed_in(request)
    if me is None:
        return to_login(request)
    step = settings(request).obfuscation_step
    selection = selection_of(request)
    words = [w.casefold() for w in q.split()]
    with settings(request).engine.connect() as conn:
        banks = listing.biobanks(conn)
        members = listing.collections(conn, role=me.role, step=step)
        per_collection = collection_facets(conn)
        counts = facets(conn, role=me.role, step=step)
        texts = descriptions(conn)
    bank_names = {b["id"]: f"{b['name']} {b['acronym'] or ''}" for b in banks}
    cards: dict[str, list[dict[str, Any]]] = {}
    for member in members:
        values = per_collection.get(member["id"], {})
        description = texts.get(member["id"], "")
        if not card_matches(values, selection):
            continue
        if not text_matches(
            words,
            member["id"],
            member["name"],
            member["acronym"],
            description,
            bank_names.get(member["biobank"]),
        ):
            continue
        counts_shown = [(lbl, member[k]) for k, lbl in COUNT_LABELS if member.get(k)]
        chips = [
            (FACET_TITLES[name], value, label(name, value))
            for name in ("modality", "body_part", "material_type", "diagnosis")
            for value in values.get(name, [])
        ]
        cards.setdefault(member["biobank"], []).append(
            {**member, "description": description, "counts": counts_shown, "chips": chips}
        )
    shown = sum(len(v) for v in cards.values())
    chosen = [
        (FACET_TITLES[name], value, without(request, name, value))
        for name in FACETS
        for value in selection[name]
    ]
    if q:
        chosen.append(("Search", q, without(request, "q", q)))
    cohort = selection_query(selection)
    audit(
        request,
        AuditNote("web.catalogue", request.url.query or None, result_count=shown),
    )
    return page(
        request,
        "catalogue.html",
        {
            "q": q,
            "biobanks": [b for b in banks if b["id"] in cards],
            "all_biobanks": len(banks),
            "cards": cards,
            "shown": shown,
            "total": len(members),
            "panel": facet_panel(counts, per_collection, selection),
            "chosen": chosen,
            "cohort_link": "/cohort?" + urlencode({"q": to_text(cohort)}) if cohort else None,
            "obfuscated": me.role == "researcher",
            "step": step,
        },
        me=me,
    )
