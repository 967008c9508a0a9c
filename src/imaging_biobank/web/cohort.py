"""The cohort builder (``/cohort``): criteria picked from menus (query key, operator,
value), joined by AND or OR, counted as the API counts them. It works as a plain GET form
(the server counts and shows both written forms of the query) and, with the page's small
script, counts live through ``POST /api/cohorts/count`` with the session cookie. Data
managers download the manifest of matching series."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import Connection, select

from imaging_biobank.access.tokens import Principal
from imaging_biobank.api.deps import AuditNote, audit, settings
from imaging_biobank.api.problems import ProblemError
from imaging_biobank.api.routes.cohorts import CohortAnswer, CohortRequest, answer, cohort_manifest
from imaging_biobank.catalogue import listing
from imaging_biobank.db._schema import metadata
from imaging_biobank.query.ast import (
    Leaf,
    Node,
    Query,
    QuerySyntaxError,
    parse_text,
    to_json,
    to_text,
)
from imaging_biobank.query.facets import collection_facets, facets
from imaging_biobank.query.keys import FAMILY_NAMES, KEYS
from imaging_biobank.samples.consent import PURPOSE_FLAGS
from imaging_biobank.web.render import error_page, page, short_name
from imaging_biobank.web.session import same_origin, signed_in, to_login
from imaging_biobank.web.terms import label, preferred_terms

router = APIRouter(include_in_schema=False)
T = metadata.tables

OPERATORS = {
    "EQUALS": "=",
    "NOT_EQUALS": "\u2260",
    "IN": "in",
    "NOT_IN": "not in",
    "LESS_THAN": "<",
    "LESS_OR_EQUAL": "\u2264",
    "GREATER_THAN": ">",
    "GREATER_OR_EQUAL": "\u2265",
    "BETWEEN": "between",
}
MEMBERSHIP = ("EQUALS", "NOT_EQUALS", "IN", "NOT_IN")
ORDERED = ("EQUALS", "NOT_EQUALS", "LESS_THAN", "LESS_OR_EQUAL", "GREATER_THAN",
           "GREATER_OR_EQUAL", "BETWEEN")  # fmt: skip
# the operators each kind of key is offered (the engine refuses a misfit with a message);
# the families (e-form fields, biomarkers, features) and kinds added later get them all
OPERATORS_OF_KIND = {
    **dict.fromkeys(("term", "collection", "text", "diagnosis", "study", "gene"), MEMBERSHIP),
    **dict.fromkeys(("number", "date", "count"), ORDERED),
}
STRATA = ("sex", "age", "modality")
STRATA_TITLES = {"sex": "Sex", "age": "Age band (years)", "modality": "Modality"}
LEVEL_TITLES = {
    "series": "imaging (one series)",
    "sample": "samples (one sample)",
    "donor": "donor",
}
COLLECTION_KINDS_OF_KEY = {"image_collection": ("image",), "sample_collection": ("sample_tissue",)}
FAMILY_OF = {listed: prefix for prefix, listed in FAMILY_NAMES.items()}  # eform.<field> -> eform
BLANK_ROWS = 2  # empty criteria rows offered without script
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def operators_of(kind: str) -> tuple[str, ...]:
    """The operators the menus offer for a kind of key."""
    return OPERATORS_OF_KIND.get(kind, tuple(OPERATORS))


def slug(name: str) -> str:
    """A key name as part of an HTML id (``eform.<field>`` -> ``eform-field``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class Row:
    """One criterion as the form holds it: a key of the menu (a family's listed name such
    as ``eform.<field>`` with the ``name`` after its dot), an operator and the value."""

    key: str = ""
    op: str = "EQUALS"
    value: str = ""
    name: str = ""

    @property
    def query_key(self) -> str:
        """The key the query names: ``eform.ldh`` for the family row named ``ldh``."""
        prefix = FAMILY_OF.get(self.key)
        return f"{prefix}.{self.name.strip()}" if prefix else self.key


class CriterionError(ValueError):
    """A criterion of the form that cannot become a query leaf; says which and why."""


def scalar(text: str) -> Any:
    """A value as the text form reads it: a number when it reads as one, else the text."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    return text


def row_leaf(number: int, row: Row) -> Leaf:
    """The query leaf of criterion ``number`` (1-based)."""
    if row.key not in KEYS:
        raise CriterionError(f"criterion {number}: unknown key {row.key!r}")
    if row.key in FAMILY_OF and not row.name.strip():
        raise CriterionError(f"criterion {number}: {row.key} needs the name after the dot")
    if row.op not in OPERATORS:
        raise CriterionError(f"criterion {number}: unknown operator {row.op!r}")
    if row.op in ("IN", "NOT_IN", "BETWEEN"):
        parts = [p.strip() for p in row.value.split(",") if p.strip()]
        if row.op == "BETWEEN" and len(parts) != 2:
            raise CriterionError(f"criterion {number}: between takes two values: low, high")
        if not parts:
            raise CriterionError(f"criterion {number}: give one value or more, comma-separated")
        return Leaf(row.query_key, row.op, [scalar(p) for p in parts])
    if not row.value.strip():
        raise CriterionError(f"criterion {number}: give a value for {row.query_key}")
    return Leaf(row.query_key, row.op, scalar(row.value))


def rows_query(rows: list[Row], match: str) -> Query | None:
    """The query of the filled criteria, joined by ``match`` (AND or OR)."""
    leaves = [row_leaf(i, row) for i, row in enumerate(rows, start=1) if row.key]
    if not leaves:
        return None
    return leaves[0] if len(leaves) == 1 else Node(match, tuple(leaves))


def _value_text(leaf: Leaf) -> str:
    if isinstance(leaf.value, list):
        return ", ".join(str(v) for v in leaf.value)
    return str(leaf.value)


def leaf_row(leaf: Leaf) -> Row | None:
    """The builder row of a leaf; None for a key or operator the menus do not have."""
    if leaf.type not in OPERATORS:
        return None
    if leaf.key in KEYS and leaf.key not in FAMILY_OF:
        return Row(leaf.key, leaf.type, _value_text(leaf))
    prefix, dot, name = leaf.key.partition(".")
    if dot and prefix in FAMILY_NAMES and name:
        return Row(FAMILY_NAMES[prefix], leaf.type, _value_text(leaf), name)
    return None


def query_rows(tree: Query) -> tuple[str, list[Row]] | None:
    """The builder rows of a flat query (one AND or OR of criteria); None when the query
    nests deeper than the menus can show (it stays editable as text)."""
    if isinstance(tree, Leaf):
        children: tuple[Query, ...] = (tree,)
        match = "AND"
    elif tree.operand in ("AND", "OR") and all(isinstance(c, Leaf) for c in tree.children):
        children, match = tree.children, tree.operand
    else:
        return None
    rows = []
    for child in children:
        row = leaf_row(child) if isinstance(child, Leaf) else None
        if row is None:
            return None
        rows.append(row)
    return match, rows


def _distinct(conn: Connection, *columns: Any, limit: int = 2000) -> list[str]:
    found: dict[str, None] = {}
    for column in columns:
        for (value,) in conn.execute(select(column).distinct().order_by(column).limit(limit)):
            if value not in (None, ""):
                found[str(value)] = None
    return sorted(found, key=str.lower)


def value_options(conn: Connection, role: str, step: int) -> dict[str, list[tuple[str, str]]]:
    """(value, label) offered for each key: values in the biobank first (with their donors),
    then the rest of the vocabulary's preferred edition."""
    counts = facets(conn, role=role, step=step)
    per_collection = collection_facets(conn)
    options: dict[str, list[tuple[str, str]]] = {}
    for name, key in KEYS.items():
        found: dict[str, str] = {}
        if key.kind in ("term", "diagnosis") and name in counts:
            present = dict(counts.get(name, {}))
            for values in per_collection.values():
                for value in values.get(name, []):
                    present.setdefault(value, 0)
            for value, n in present.items():
                words = label(name, value)
                shown = f"{words} \u00b7 {n} donors" if n else words
                found[value] = shown.strip(" \u00b7")
        if key.kind == "term":
            for code, words in preferred_terms(name):
                found.setdefault(code, words if words != code else "")
        elif key.kind == "collection":
            kinds = COLLECTION_KINDS_OF_KEY.get(name)
            for identifier, values in per_collection.items():
                kind = values.get("collection_kind", [""])[0]
                if kinds is None or kind in kinds:
                    found[short_name(identifier)] = identifier
        elif key.kind == "study":
            for study in listing.studies(conn):
                found[study["id"]] = study["name"]
        elif key.kind == "gene":
            m = T["molecular_biomarker_result"]
            found.update(dict.fromkeys(_distinct(conn, m.c.gene_symbol), ""))
        elif name in ("manufacturer", "model"):
            info = T["modality_information"]
            column = (
                info.c.manufacturer if name == "manufacturer" else info.c.manufacturer_model_name
            )
            found.update(dict.fromkeys(_distinct(conn, column), ""))
        if found:
            options[name] = list(found.items())
    return options


def family_names(conn: Connection) -> dict[str, list[str]]:
    """The names each key family can take in this database: e-form fields (form-qualified
    when several forms have the field), biomarkers, stored imaging features."""
    ff, f = T["e_form_field"], T["e_form"]
    fields = conn.execute(
        select(f.c.collection_id, f.c.id, f.c.name, ff.c.name, ff.c.position, ff.c.field_type,
               ff.c.identifier)
        .join(f, f.c.id == ff.c.e_form_id)
        .order_by(f.c.id, ff.c.position)
    ).all()  # fmt: skip
    first_form: dict[int, int] = {}
    for collection_id, form_id, *_ in fields:
        first_form.setdefault(collection_id, form_id)
    usable = [
        (form, field)
        for collection_id, form_id, form, field, position, field_type, identifier in fields
        if not identifier
        and field_type not in ("descriptive", "file")
        and not (position == 1 and first_form[collection_id] == form_id)  # the record id
    ]
    forms_of: dict[str, set[str]] = {}
    for form, field in usable:
        forms_of.setdefault(field, set()).add(form)
    eform = [field if len(forms_of[field]) == 1 else f"{form}.{field}" for form, field in usable]
    m, b = T["molecular_biomarker_result"], T["imaging_biomarker"]
    features = _distinct(conn, b.c.name)
    names = {
        "eform": list(dict.fromkeys(eform)),
        "biomarker": _distinct(conn, m.c.gene_symbol, m.c.biomarker),
        "feature": features,
        "harmonised": features,
    }
    return {FAMILY_NAMES[prefix]: values for prefix, values in names.items() if values}


def menus(options: dict[str, list[tuple[str, str]]], names: dict[str, list[str]]) -> dict[str, Any]:
    """What the page's script needs to keep the menus right: each key's operators, unit,
    help, family prefix and the ids of its value and name suggestion lists."""
    return {
        "operators": OPERATORS,
        "strata_titles": STRATA_TITLES,
        "keys": {
            name: {
                "kind": key.kind,
                "level": key.level,
                "unit": key.unit,
                "help": key.help,
                "operators": list(operators_of(key.kind)),
                "values": f"values-{slug(name)}" if name in options else None,
                "family": FAMILY_OF.get(name),
                "names": f"names-{slug(name)}" if name in names else None,
            }
            for name, key in KEYS.items()
        },
    }


def form_rows(request: Request) -> list[Row]:
    """The criteria rows of the query string (``key``, ``op``, ``value`` repeated)."""
    params = request.query_params
    keys, ops, values = params.getlist("key"), params.getlist("op"), params.getlist("value")
    names = params.getlist("name")

    def nth(items: list[str], i: int, default: str = "") -> str:
        return items[i] if i < len(items) else default

    return [
        Row(key.strip(), nth(ops, i, "EQUALS"), nth(values, i), nth(names, i))
        for i, key in enumerate(keys)
    ]


def _count(
    request: Request, me: Principal, tree: Query, purposes: list[str], by: list[str]
) -> tuple[CohortAnswer | None, str | None]:
    body = CohortRequest(locator=to_json(tree), purpose=purposes, by=by)
    with settings(request).engine.begin() as conn:
        try:
            return answer(request, conn, settings(request), me, body), None
        except ProblemError as error:
            return None, error.detail


@router.get("/cohort")
def cohort_page(request: Request, q: str = "", match: str = "AND", source: str = "") -> Response:
    """The builder; with criteria (or a text query in ``q``) also their counts."""
    me = signed_in(request)
    if me is None:
        return to_login(request)
    step = settings(request).obfuscation_step
    params = request.query_params
    purposes = [p for p in params.getlist("purpose") if p]
    by = [b for b in params.getlist("by") if b in STRATA] if "by" in params else list(STRATA)
    match = "OR" if match.upper() == "OR" else "AND"
    rows = form_rows(request)
    error: str | None = None
    tree: Query | None = None
    nested = False
    try:
        if source != "text" and any(r.key for r in rows):
            tree = rows_query(rows, match)
        elif q.strip():
            tree = parse_text(q)
            flat = query_rows(tree)
            if flat is None:
                nested, rows = True, []
            else:
                match, rows = flat
    except (CriterionError, QuerySyntaxError) as problem:
        error = str(problem)
    result = None
    audit(request, AuditNote("web.cohort"))  # a count below writes its own note
    if tree is not None and error is None:
        result, error = _count(request, me, tree, purposes, by)
    with settings(request).engine.connect() as conn:
        options = value_options(conn, me.role, step)
        names = family_names(conn)
    shown_rows = [r for r in rows if r.key] + [Row() for _ in range(BLANK_ROWS)]
    text = to_text(tree) if tree is not None else q
    return page(
        request,
        "cohort.html",
        {
            "rows": shown_rows,
            "match": match,
            "q": text,
            "nested": nested,
            "keys": KEYS,
            "level_titles": LEVEL_TITLES,
            "operators": OPERATORS,
            "options": options,
            "names": names,
            "families": FAMILY_OF,
            "slug": slug,
            "operators_of": operators_of,
            "menus": menus(options, names),
            "purposes": PURPOSE_FLAGS,
            "chosen_purposes": purposes,
            "strata": STRATA,
            "strata_titles": STRATA_TITLES,
            "chosen_strata": by,
            "result": result,
            "locator": to_json(tree) if tree is not None else None,
            "error": error,
            "may_manifest": me.may("data_manager"),
            "step": step,
        },
        status=422 if error else 200,
        me=me,
    )


@router.post("/cohort/manifest")
def cohort_manifest_download(
    request: Request,
    q: Annotated[str, Form()] = "",
    format: Annotated[str, Form()] = "csv",
    purpose: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The manifest of the matching series as a file (data managers), made by the API's
    manifest route so both give the same rows."""
    me = signed_in(request)
    if me is None:
        return to_login(request)
    if not same_origin(request):
        return error_page(request, 403, "Forbidden", "forms must come from this site", me)
    if not me.may("data_manager"):
        return error_page(
            request,
            403,
            "Forbidden",
            f"a manifest of series is for data managers; your role is {me.role}",
            me,
        )
    if format not in ("csv", "json"):
        return error_page(request, 422, "Unknown format", "the manifest is csv or json", me)
    body = CohortRequest(query=q, purpose=[p for p in purpose or [] if p])
    with settings(request).engine.begin() as conn:
        try:
            response = cohort_manifest(request, body, conn, me, format)  # type: ignore[arg-type]
        except ProblemError as error:
            return error_page(request, error.status, "The query cannot be run", error.detail, me)
    if format == "json":
        response.headers["Content-Disposition"] = 'attachment; filename="manifest.json"'
    return response
