"""The web catalogue: sign-in, the catalogue with facets, collection pages with their charts
and JSON-LD, the cohort builder, e-form entry and the quality page, on a database built from
real data as ``make demo`` builds it (STS_001's CT, MR and PET, pydicom's test files, the
example registry files and the two PRIMAGE e-forms with their records).

Two kinds of tests: fast ones through FastAPI's TestClient, and end-to-end ones that drive
Debian's headless Chromium (Playwright) against a real uvicorn server on loopback, saving
screenshots to ``test-artifacts/screenshots/``."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from imaging_biobank.access.tokens import create_token
from imaging_biobank.api.app import create_app
from imaging_biobank.api.deps import COOKIE, ApiSettings
from imaging_biobank.cli import app as cli
from imaging_biobank.db._schema import metadata
from imaging_biobank.db.engine import make_engine
from imaging_biobank.quality.checks import run_checks
from imaging_biobank.quality.ruleset import load_rules
from imaging_biobank.query.ast import parse_text, to_json
from imaging_biobank.query.engine import count, manifest
from tests.biobanks import imaging_biobank
from tests.conftest import IN_CI, ROOT

T = metadata.tables
PREFIX = "bbmri-eric:ID:ES_PRIMAGE:collection:"
REFERENCE = PREFIX + "REFERENCE_IMAGING"
NB_IMAGING = PREFIX + "NB_IMAGING"
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VALID_RECORD = {
    "age_at_diagnosis": "30",
    "sex": "1",
    "diagnosis_icd10": "C74.9",
    "inrg_stage": "1",
    "mycn_status": "0",
    "primary_site": "1",
}


# --- the database ----------------------------------------------------------------------


@dataclass
class Site:
    """The built database (a file to copy for tests that write), its key and tokens."""

    folder: Path
    db: Path
    key_file: Path
    tokens: dict[str, str]

    def url(self, db: Path | None = None) -> str:
        return f"sqlite:///{db or self.db}"

    def copy(self, folder: Path) -> Path:
        """A private copy of the database, for a test that writes."""
        target = folder / "copy.db"
        shutil.copyfile(self.db, target)
        return target


def build(folder: Path) -> Site:
    """What ``make demo`` loads, minus the radiomics: STS_001 in NB_IMAGING, pydicom's test
    files in REFERENCE_IMAGING, the example donors, samples, events and biomarkers, the two
    PRIMAGE e-forms with their records; and a token per role."""
    db = folder / "biobank.db"
    url = f"sqlite:///{db}"
    engine, key_file = imaging_biobank(url, folder)
    runner = CliRunner()
    examples = ROOT / "examples"
    keyed = ["--key-file", str(key_file)]
    for args in (
        ["import", "donors", str(examples / "samples/donors.csv"), "-c", "NB_TISSUE", *keyed],
        ["import", "samples", str(examples / "samples/samples.csv"), "-c", "NB_TISSUE", *keyed],
        ["import", "events", str(examples / "samples/events.csv"), "-c", "NB_CLINICAL", *keyed],
        ["import", "biomarkers", str(examples / "samples/biomarkers.csv"), "-c", "NB_MOLECULAR",
         *keyed],
        ["import", "form", str(examples / "forms/neuroblastoma.csv"), "-c", "NB_CLINICAL"],
        ["import", "records", str(examples / "forms/neuroblastoma_records.csv"), "-c",
         "NB_CLINICAL", *keyed],
        ["import", "form", str(examples / "forms/dipg.csv"), "-c", "DIPG_CLINICAL"],
        ["import", "records", str(examples / "forms/dipg_records.csv"), "-c", "DIPG_CLINICAL",
         *keyed],
    ):  # fmt: skip
        result = runner.invoke(cli, [*args, "--db", url])
        assert result.exit_code == 0, (args, result.output)
    with engine.begin() as conn:
        tokens = {
            role: create_token(conn, f"{role}-web", role)
            for role in ("researcher", "data_manager", "admin")
        }
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return Site(folder, db, key_file, tokens)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def engine(site: Site) -> Iterator[Engine]:
    engine = make_engine(site.url())
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def app(site: Site, engine: Engine) -> FastAPI:
    return create_app(ApiSettings(engine, key_file=site.key_file))


def client(app: FastAPI, token: str | None = None) -> TestClient:
    """A browser-like client: it keeps cookies and does not follow redirects."""
    browser = TestClient(app, follow_redirects=False)
    if token is not None:
        browser.cookies.set(COOKIE, token)
    return browser


# --- reading pages -----------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return re.sub(r"\s+", " ", " ".join(parts)).strip()

    def all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants with this tag and these attribute values (``class_`` matches one of
        the classes)."""
        found = []
        for child in self.children:
            if isinstance(child, str):
                continue
            if (tag is None or child.tag == tag) and all(
                _attribute_matches(child, name, value) for name, value in attrs.items()
            ):
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


def _attribute_matches(element: Element, name: str, value: str) -> bool:
    if name == "class_":
        return value in element.attrs.get("class", "").split()
    return element.attrs.get(name.rstrip("_").replace("_", "-")) == value


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.root


def number(text_: str) -> int:
    return int(text_.replace("\u202f", "").replace(",", "").strip())


def cards(doc: Element) -> dict[str, Element]:
    """The collection cards of a catalogue page by collection id."""
    found = {}
    for card in doc.all("article", class_="card"):
        link = card.one("h3").one("a")
        found[link.attrs["href"].removeprefix("/collections/")] = card
    return found


def card_counts(card: Element) -> dict[str, int]:
    return {
        div.one("dt").text(): number(div.one("dd").text())
        for div in card.one("dl", class_="counts").all("div")
    }


def chart_values(doc: Element, title: str) -> dict[str, str]:
    """The values of a chart, read from its SVG description (``label: value; ...``)."""
    svg = next(s for s in doc.all("svg") if s.all("title")[0].text() == title)
    described = svg.one("desc").text()
    return dict(part.rsplit(": ", 1) for part in described.split("; "))


def sql(engine: Engine, query: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(query), params).all())


def audit_actions(engine: Engine, actor: str) -> list[tuple[str, str | None]]:
    log = T["audit_log"]
    with engine.connect() as conn:
        rows = conn.execute(
            select(log.c.action, log.c.query).where(log.c.actor == actor).order_by(log.c.id)
        )
        return [(a, q) for a, q in rows]


# --- sign-in -------------------------------------------------------------------------------


def test_every_page_needs_a_signed_in_token(app: FastAPI) -> None:
    anonymous = client(app)
    for path in ("/", "/collections/NB_IMAGING", "/cohort?q=modality%20%3D%20CT", "/forms",
                 "/forms/NB_CLINICAL/nb_diagnosis", "/quality"):  # fmt: skip
        response = anonymous.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=%2F"), path
    # a revoked or made-up token is no better than none
    assert client(app, "ibk_made-up").get("/").status_code == 303
    # the stylesheet and script hold no data
    assert anonymous.get("/static/style.css").status_code == 200
    assert anonymous.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert anonymous.get("/static/../pages.py").status_code == 404
    login = parse(anonymous.get("/login?next=/forms").text)
    form = login.one("form", action="/login")
    assert form.one("input", name="next").attrs["value"] == "/forms"
    assert form.one("input", name="token").attrs["type"] == "password"
    assert login.one("label", for_="token").text() == "Token"


def test_sign_in_keeps_the_token_in_a_lax_httponly_cookie(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    browser = client(app)
    refused = browser.post("/login", data={"token": "ibk_nope", "next": "/forms"})
    assert refused.status_code == 401
    assert "unknown, revoked or expired" in parse(refused.text).one(id="login-error").text()
    assert COOKIE not in browser.cookies
    accepted = browser.post("/login", data={"token": site.tokens["researcher"], "next": "/forms"})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/forms"
    cookie = accepted.headers["set-cookie"].lower()
    assert cookie.startswith(f"{COOKIE}=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    page = parse(browser.get("/forms").text)
    who = page.one("div", class_="who")
    assert "researcher-web" in who.text() and who.one("span", class_="role").text() == "researcher"
    # the navigation shows what the role may use: no quality page for researchers
    assert [a.text() for a in page.one("header").all("a") if a.attrs["href"].startswith("/")] == [
        "imaging-biobank",
        "Catalogue",
        "Cohort builder",
        "E-forms",
    ]
    assert audit_actions(engine, "researcher-web")[-2:] == [
        ("web.sign-in", None),
        ("web.forms", None),
    ]
    # never sent on to another site after signing in
    elsewhere = client(app).post(
        "/login", data={"token": site.tokens["researcher"], "next": "//evil.example/"}
    )
    assert elsewhere.headers["location"] == "/"
    # a sign-in form posted from another site is refused
    forged = client(app).post(
        "/login",
        data={"token": site.tokens["researcher"]},
        headers={"origin": "https://evil.example"},
    )
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    assert browser.get("/logout").status_code == 405  # another site's link cannot sign out
    out = browser.post("/logout")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert browser.get("/").status_code == 303


# --- the catalogue -------------------------------------------------------------------------


def test_the_catalogue_shows_every_collection_with_counts_as_the_role_may_see_them(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    collections = {row[0] for row in sql(engine, "SELECT identifier FROM collection")}
    [(series, donors)] = sql(
        engine,
        "SELECT count(*), count(DISTINCT sample_donor_id) FROM imaging_series s"
        " JOIN collection c ON c.id = s.image_collection_id WHERE c.identifier = :c",
        c=NB_IMAGING,
    )
    assert (series, donors) == (6, 1)  # STS_001: CT, MR, PET and three RTSTRUCTs
    manager = parse(client(app, site.tokens["data_manager"]).get("/").text)
    researcher = parse(client(app, site.tokens["researcher"]).get("/").text)
    assert set(cards(manager)) == set(cards(researcher)) == collections
    exact = card_counts(cards(manager)[NB_IMAGING])
    shown = card_counts(cards(researcher)[NB_IMAGING])
    assert exact["series"] == 6 and exact["donors"] == 1
    assert shown["series"] == 10 and shown["donors"] == 10  # 1-9 show as 10
    assert exact["instances"] == shown["instances"] == 180
    card = cards(manager)[NB_IMAGING]
    assert card.one("h3").text() == "Neuroblastoma imaging"
    assert "Image collection" in card.one("p", class_="kind").text()
    assert {li.text() for li in card.one("ul", class_="chips").all("li")} >= {"CT", "MR", "PT"}
    # the biobank the cards belong to
    assert (
        "PRIMAGE Paediatric Cancer Imaging Biobank"
        in manager.one("section", class_="biobank").text()
    )
    # each facet lists the values with the donors having them (obfuscated for researchers)
    ct = researcher.one("input", name="modality", value="CT")
    assert ct.attrs.get("checked") is None
    facet = researcher.one("fieldset", id="facet-modality")
    ct_line = next(li for li in facet.all("li") if li.one("input").attrs["value"] == "CT")
    assert ct_line.one("span", class_="n").text() == "10"
    assert "Computed Tomography" in ct_line.text()


def test_facets_and_search_filter_the_cards_and_keep_a_url(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    browser = client(app, site.tokens["researcher"])
    with_ct = {
        row[0]
        for row in sql(
            engine,
            "SELECT DISTINCT c.identifier FROM imaging_series s JOIN collection c"
            " ON c.id = s.image_collection_id WHERE s.modality_value = 'CT'",
        )
    }
    assert with_ct == {NB_IMAGING, REFERENCE}
    page = parse(browser.get("/", params={"modality": "CT"}).text)
    assert set(cards(page)) == with_ct
    assert page.one("input", name="modality", value="CT").attrs.get("checked") == ""
    assert page.one("h2", id="results-heading").text().startswith(f"{len(with_ct)} of ")
    # the selection as a cohort query
    link = page.one("a", id="cohort-link").attrs["href"]
    assert link == "/cohort?q=modality+in+%28CT%29"
    # facets combine: CT and a frozen tissue sample is no single collection
    frozen = parse(browser.get("/", params={"material_type": "Tissue (fresh frozen)"}).text)
    assert set(cards(frozen)) == {PREFIX + "NB_TISSUE"}
    both = parse(
        browser.get("/", params={"modality": "CT", "material_type": "Tissue (fresh frozen)"}).text
    )
    assert cards(both) == {} and "No collection matches" in both.text()
    # two values of one facet: either
    either = parse(
        browser.get("/?collection_kind=sample_tissue&collection_kind=software_source_code").text
    )
    kinds = dict(sql(engine, "SELECT identifier, kind FROM collection"))
    assert set(cards(either)) == {
        c for c, k in kinds.items() if k in ("sample_tissue", "software_source_code")
    }
    # free text over names, descriptions and ids, every word
    words = parse(browser.get("/", params={"q": "FFPE biopsies"}).text)
    assert set(cards(words)) == {PREFIX + "NB_TISSUE"}
    by_id = parse(browser.get("/", params={"q": "reference_imaging"}).text)
    assert set(cards(by_id)) == {REFERENCE}
    chosen = by_id.one("ul", class_="chosen")
    assert "Search: reference_imaging" in chosen.text()


# --- collection pages ----------------------------------------------------------------------


def test_a_collection_page_describes_the_collection_and_draws_its_data(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    response = client(app, site.tokens["data_manager"]).get("/collections/NB_IMAGING")
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page = parse(response.text)
    assert page.one("h1").text() == "Neuroblastoma imaging (NB-IMG)"
    attributes = {
        tr.one("th").text(): tr.one("td").text()
        for tr in page.one("table", class_="attributes").all("tr")
    }
    assert attributes["ID (MIABIS-2.0-01)"] == NB_IMAGING
    assert attributes["Access"] == "Access through the PRIMAGE data access committee."
    descriptors = {
        tr.one("th").text(): tr.all("td")[-1].text()
        for tr in page.one("table", class_="descriptors").one("tbody").all("tr")
    }
    assert descriptors["Body parts examined"] == "derived"
    by_modality = dict(
        sql(
            engine,
            "SELECT modality_value, count(*) FROM imaging_series s JOIN collection c"
            " ON c.id = s.image_collection_id WHERE c.identifier = :c GROUP BY modality_value",
            c=NB_IMAGING,
        )
    )
    drawn = chart_values(page, "Series by modality")
    assert {k.split(" \u2013 ")[0]: int(v) for k, v in drawn.items()} == by_modality
    assert "CT \u2013 Computed Tomography" in drawn
    thickness = [
        float(t)
        for (t,) in sql(
            engine,
            "SELECT a.slice_thickness FROM acquisition_parameters a JOIN imaging_series s"
            " ON s.id = a.imaging_series_id JOIN collection c ON c.id = s.image_collection_id"
            " WHERE c.identifier = :c AND a.slice_thickness IS NOT NULL",
            c=NB_IMAGING,
        )
    ]
    histogram = chart_values(page, "Series by slice thickness (mm)")
    assert sum(int(v) for v in histogram.values()) == len(thickness) >= 2
    for value in thickness:
        low = int(value) if value < 6 else None
        if low is not None:
            assert int(histogram[f"{low}\u2013{low + 1}"]) >= 1
    completeness = chart_values(page, "Data completeness (share of series with a value)")
    assert completeness["Modality"] == "100 %"
    assert completeness["Slice thickness"] == f"{round(100 * len(thickness) / 6)} %"
    sexes = chart_values(page, "Donors by sex")
    assert sexes == {"Male": "1"}
    titles = [f.one("figcaption").text() for f in page.all("figure", class_="figure")]
    assert titles[:2] == ["Series by modality", "Series by body part examined"]
    # schema.org Dataset JSON-LD: findable by machines
    ld = json.loads(page.one("script", type="application/ld+json").text())
    assert ld["@context"] == "https://schema.org" and ld["@type"] == "Dataset"
    assert ld["identifier"] == NB_IMAGING and ld["name"] == "Neuroblastoma imaging"
    assert ld["url"] == f"http://testserver/collections/{NB_IMAGING}"
    assert "CT (Computed Tomography)" in ld["measurementTechnique"]
    assert {v["value"] for v in ld["variableMeasured"] if v["name"] == "Imaging modality"} == set(
        by_modality
    )
    assert ld["includedInDataCatalog"]["name"] == "PRIMAGE Paediatric Cancer Imaging Biobank"
    assert ld["conditionsOfAccess"] == attributes["Access"]
    # what the collection holds: its donor's diagnosis (C74.9, from the sample import), which
    # replaces the registration's declared C74.9 and C47.9 once derived
    assert {a["code"]["code"] for a in ld["about"]} == {"C74.9"}


def test_researchers_see_the_charts_obfuscated(app: FastAPI, site: Site) -> None:
    page = parse(client(app, site.tokens["researcher"]).get("/collections/NB_IMAGING").text)
    drawn = chart_values(page, "Series by modality")
    assert set(drawn.values()) == {"10"}  # 1 and 3 series both show as 10
    counts = {
        div.one("dt").text(): div.one("dd").text()
        for div in page.one("dl", class_="counts").all("div")
    }
    assert counts["series"] == "10" and counts["instances"] == "180"
    # of 6 series, shares say none, some or all: finer ones would narrow the total down
    shares = chart_values(page, "Data completeness (share of series with a value)")
    assert set(shares.values()) <= {"0 %", "50 %", "100 %"} and "50 %" in shares.values()


def test_a_sample_collection_draws_its_samples(app: FastAPI, site: Site, engine: Engine) -> None:
    page = parse(client(app, site.tokens["admin"]).get(f"/collections/{PREFIX}NB_TISSUE").text)
    materials = chart_values(page, "Samples by material type")
    expected = dict(
        sql(
            engine,
            "SELECT m.label, count(*) FROM sample x"
            " JOIN material_type m ON m.id = x.material_type_id"
            " JOIN collection c ON c.id = x.collection_id WHERE c.identifier = :c GROUP BY m.label",
            c=PREFIX + "NB_TISSUE",
        )
    )
    assert {k: int(v) for k, v in materials.items()} == expected and len(expected) >= 2
    assert "Data completeness (share of samples with a value)" in page.text()


def test_every_collection_page_renders_with_its_json_ld(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    browser = client(app, site.tokens["researcher"])
    for identifier, kind, name in sql(engine, "SELECT identifier, kind, name FROM collection"):
        response = browser.get(f"/collections/{identifier}")
        assert response.status_code == 200, identifier
        ld = json.loads(parse(response.text).one("script", type="application/ld+json").text())
        assert (ld["identifier"], ld["name"]) == (identifier, name)
        assert ld["keywords"][0] == kind.replace("_", " ").capitalize() + " collection"
        if identifier == PREFIX + "RADIOMICS_PIPELINE":  # registered with its licence
            assert ld["license"] == "https://spdx.org/licenses/Apache-2.0"
            assert ld["sameAs"] == "https://example.org/primage/radiomics-pipeline"


def test_a_deployment_can_open_landing_pages_to_harvesters(site: Site, engine: Engine) -> None:
    """With public landing pages, a visitor without a token sees a collection page with its
    JSON-LD as a researcher does (obfuscated), audited as anonymous; nothing else opens."""
    closed = client(create_app(ApiSettings(engine))).get("/collections/NB_IMAGING")
    assert closed.status_code == 303
    public = client(create_app(ApiSettings(engine, public_landing_pages=True)))
    response = public.get("/collections/NB_IMAGING")
    assert response.status_code == 200
    page = parse(response.text)
    ld = json.loads(page.one("script", type="application/ld+json").text())
    assert ld["identifier"] == PREFIX + "NB_IMAGING" and ld["@type"] == "Dataset"
    counts = {
        div.one("dt").text(): div.one("dd").text()
        for div in page.one("dl", class_="counts").all("div")
    }
    assert counts["series"] == "10"  # 6 series, shown as a researcher sees them
    last = sql(engine, "SELECT actor, role, path FROM audit_log ORDER BY id DESC LIMIT 1")[0]
    assert tuple(last) == ("anonymous", "researcher", "/collections/NB_IMAGING")
    for closed_path in ("/", "/cohort", "/forms", "/api/collections"):
        assert public.get(closed_path).status_code in (303, 401), closed_path


def test_an_unknown_collection_is_a_404_page_naming_the_collections(
    app: FastAPI, site: Site
) -> None:
    response = client(app, site.tokens["researcher"]).get("/collections/NO_SUCH")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "NB_IMAGING" in parse(response.text).one("p", class_="alert").text()


# --- the cohort builder --------------------------------------------------------------------


def totals(page: Element) -> dict[str, int]:
    return {
        dd.attrs["data-count"]: number(dd.text()) for dd in page.one("dl", id="totals").all("dd")
    }


def test_the_builder_counts_its_criteria_without_script(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    browser = client(app, site.tokens["data_manager"])
    query = "modality = CT and slice_thickness <= 3"
    with engine.connect() as conn:
        exact = count(conn, parse_text(query), role="data_manager", by=["sex"])
        wider = count(conn, parse_text("modality = CT or modality = MR"), role="data_manager")
    response = browser.get(
        "/cohort",
        params=[("match", "AND"), ("key", "modality"), ("op", "EQUALS"), ("value", "CT"),
                ("key", "slice_thickness"), ("op", "LESS_OR_EQUAL"), ("value", "3"),
                ("key", ""), ("op", "EQUALS"), ("value", ""), ("by", "sex")],
    )  # fmt: skip
    assert response.status_code == 200
    page = parse(response.text)
    assert totals(page) == exact.totals.__dict__
    assert page.one("pre", id="query-text").text() == query
    assert json.loads(page.one("pre", id="query-json").text()) == to_json(parse_text(query))
    assert page.one("textarea", id="q").text() == query
    # the criteria stay in their menus, plus empty rows to add more
    keys = [s for s in page.all("select", name="key")]
    chosen = [
        next((o.attrs["value"] for o in s.all("option") if "selected" in o.attrs), "") for s in keys
    ]
    assert chosen[:2] == ["modality", "slice_thickness"] and chosen[2:] == ["", ""]
    stratum = page.one("table", class_="stratum")
    assert {
        tr.one("th").text(): number(tr.one("td").text()) for tr in stratum.all("tr")
    } == exact.strata["sex"]
    # OR at the top
    either = parse(
        browser.get(
            "/cohort",
            params=[("match", "OR"), ("key", "modality"), ("op", "EQUALS"), ("value", "CT"),
                    ("key", "modality"), ("op", "EQUALS"), ("value", "MR")],
        ).text
    )  # fmt: skip
    assert totals(either) == wider.totals.__dict__
    assert either.one("pre", id="query-text").text() == "modality = CT or modality = MR"
    # the text form, with "in"
    written = parse(
        browser.get("/cohort", params={"q": "modality in (CT, MR)", "source": "text"}).text
    )
    assert totals(written)["donors"] == wider.totals.donors
    rows = [s for s in written.all("input", name="value") if s.attrs.get("value")]
    assert [r.attrs["value"] for r in rows] == ["CT, MR"]


def test_the_builder_offers_keys_operators_and_coded_values(app: FastAPI, site: Site) -> None:
    page = parse(client(app, site.tokens["researcher"]).get("/cohort").text)
    first = page.all("select", name="key")[0]
    groups = {
        g.attrs["label"]: [o.attrs["value"] for o in g.all("option")] for g in first.all("optgroup")
    }
    assert "modality" in groups["imaging (one series)"]
    assert "material_type" in groups["samples (one sample)"]
    assert "sex" in groups["donor"] and "diagnosis" in groups["donor"]
    modalities = {
        o.attrs["value"]: o.text() for o in page.one("datalist", id="values-modality").all("option")
    }
    assert modalities["CT"].startswith("Computed Tomography")
    assert "MR" in modalities and len(modalities) > 20  # the DICOM modalities, not only ours
    diagnoses = {
        o.attrs["value"] for o in page.one("datalist", id="values-diagnosis").all("option")
    }
    assert {"C74", "C71"} <= diagnoses
    menus = json.loads(page.one("script", id="menus").text())
    assert menus["keys"]["slice_thickness"]["unit"] == "mm"
    assert "BETWEEN" in menus["keys"]["slice_thickness"]["operators"]
    assert "BETWEEN" not in menus["keys"]["modality"]["operators"]
    # no manifest for researchers
    assert page.all("form", id="manifest") == []
    # key families take the name after the dot, offered from what the database holds
    assert menus["keys"]["eform.<field>"]["family"] == "eform"
    fields = {o.attrs["value"] for o in page.one("datalist", id="names-eform-field").all("option")}
    assert {"ldh", "relapse"} <= fields
    # a field of two forms is named with its form
    assert {"nb_diagnosis.age_at_diagnosis", "dipg_clinical.age_at_diagnosis"} <= fields
    assert "age_at_diagnosis" not in fields
    assert "record_id" not in fields and "hospital_number" not in fields
    genes = {
        o.attrs["value"] for o in page.one("datalist", id="names-biomarker-gene-name").all("option")
    }
    assert "MYCN" in genes


def test_the_builder_names_e_form_fields_after_the_dot(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    browser = client(app, site.tokens["data_manager"])
    query = "eform.ldh > 1000"
    with engine.connect() as conn:
        exact = count(conn, parse_text(query), role="data_manager")
    assert exact.totals.donors >= 1
    row = [("key", "eform.<field>"), ("name", "ldh"), ("op", "GREATER_THAN"), ("value", "1000")]
    page = parse(browser.get("/cohort", params=row).text)
    assert page.one("pre", id="query-text").text() == query
    assert totals(page) == exact.totals.__dict__
    written = parse(browser.get("/cohort", params={"q": query}).text)
    names = [i.attrs["value"] for i in written.all("input", name="name") if i.attrs.get("value")]
    assert names == ["ldh"] and totals(written) == totals(page)
    missing = browser.get(
        "/cohort", params=[("key", "eform.<field>"), ("op", "EQUALS"), ("value", "1")]
    )
    assert "needs the name after the dot" in parse(missing.text).one("p", id="count-error").text()


def test_researchers_get_obfuscated_counts_and_bad_criteria_a_message(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    browser = client(app, site.tokens["researcher"])
    page = parse(browser.get("/cohort", params={"q": "modality = PT"}).text)
    assert totals(page)["donors"] == 10 and "Obfuscated" in page.one(id="count-body").text()
    wrong = browser.get("/cohort", params={"q": "modality = CTX"})
    assert wrong.status_code == 422
    assert "CTX" in parse(wrong.text).one("p", id="count-error").text()
    broken = browser.get("/cohort", params={"q": "modality = CT and"})
    assert "ends too early" in parse(broken.text).one("p", id="count-error").text()
    incomplete = browser.get("/cohort", params=[("key", "age"), ("op", "BETWEEN"), ("value", "3")])
    assert "between takes two values" in parse(incomplete.text).one("p", id="count-error").text()
    nested = parse(
        browser.get("/cohort", params={"q": "sex = Male and (modality = CT or modality = MR)"}).text
    )
    assert "edit it as text" in nested.text() and totals(nested)["donors"] >= 10
    assert ("cohort.count", "modality = PT") in audit_actions(engine, "researcher-web")


def test_data_managers_download_the_manifest(app: FastAPI, site: Site, engine: Engine) -> None:
    query = "modality = CT"
    with engine.connect() as conn:
        rows = manifest(conn, parse_text(query), role="data_manager")
    browser = client(app, site.tokens["data_manager"])
    page = parse(browser.get("/cohort", params={"q": query}).text)
    form = page.one("form", id="manifest")
    assert form.one("input", name="q").attrs["value"] == query
    got = browser.post("/cohort/manifest", data={"q": query, "format": "csv"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    listed = list(csv.DictReader(io.StringIO(got.text)))
    assert [r["series_instance_uid"] for r in listed] == [r["series_instance_uid"] for r in rows]
    as_json = browser.post("/cohort/manifest", data={"q": query, "format": "json"})
    assert json.loads(as_json.text) == json.loads(json.dumps(rows, default=str))
    assert 'filename="manifest.json"' in as_json.headers["content-disposition"]
    refused = client(app, site.tokens["researcher"]).post(
        "/cohort/manifest", data={"q": query, "format": "csv"}
    )
    assert refused.status_code == 403 and "data managers" in refused.text


def test_the_api_takes_the_session_cookie_the_builder_sends(app: FastAPI, site: Site) -> None:
    browser = client(app, site.tokens["researcher"])
    answer = browser.post(
        "/api/cohorts/count", json={"locator": {"key": "modality", "type": "EQUALS", "value": "CT"}}
    )
    assert answer.status_code == 200 and answer.json()["obfuscated"]


# --- e-forms -------------------------------------------------------------------------------


def records_of(engine: Engine, form: str) -> int:
    [(n,)] = sql(
        engine,
        "SELECT count(*) FROM clinical_record r JOIN e_form f ON f.id = r.e_form_id"
        " WHERE f.name = :f",
        f=form,
    )
    return int(n)


def test_the_forms_list_and_a_form_drawn_from_its_definition(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    manager = client(app, site.tokens["data_manager"])
    listing = parse(manager.get("/forms").text)
    rows = {
        tr.one("th").one("a").text(): [td.text() for td in tr.all("td")]
        for tr in listing.one("table", class_="forms").one("tbody").all("tr")
    }
    assert set(rows) == {"Nb diagnosis", "Nb follow up", "Dipg clinical"}
    assert rows["Nb diagnosis"][2] == str(records_of(engine, "nb_diagnosis"))
    page = parse(manager.get("/forms/NB_CLINICAL/nb_diagnosis").text)
    form = page.one("form", class_="eform")
    assert form.attrs["method"] == "post" and "novalidate" in form.attrs
    # the record id, then each field by its type
    assert page.one("input", id="field-record_id-input").attrs["name"] == "record_id"
    age = page.one("div", id="field-age_at_diagnosis")
    assert (
        "Age at diagnosis (months)" in age.one("label").text()
        and age.one("span", class_="unit").text() == "mo"
    )
    assert age.one("input").attrs["aria-required"] == "true"
    assert "a whole number; from 0 to 300" in age.text()
    sex = page.one("div", id="field-sex")
    assert [i.attrs["value"] for i in sex.all("input", type="radio")] == ["1", "2", "9"]
    stage = page.one("div", id="field-inrg_stage").one("select")
    assert [o.text() for o in stage.all("option")] == ["—", "L1", "L2", "M", "MS"]
    sites = page.one("div", id="field-metastatic_sites")
    assert len(sites.all("input", type="checkbox")) == 8
    assert "[inrg_stage] = '3' or [inrg_stage] = '4'" in sites.text()
    ldh = page.one("div", id="field-ldh")
    assert "http://loinc.org|2532-0" in ldh.text()
    hospital = page.one("div", id="field-hospital_number")
    assert "disabled" in hospital.one("input").attrs and "never stored" in hospital.text()
    assert [h.text() for h in page.all("h2", class_="section")][:2] == ["Patient", "Staging"]
    assert page.all("fieldset", disabled="") == []


def newest_record(engine: Engine) -> dict[str, str]:
    """The answers of the record stored last, by field name."""
    return dict(
        sql(
            engine,
            "SELECT ff.name, v.raw FROM clinical_value v JOIN e_form_field ff"
            " ON ff.id = v.e_form_field_id"
            " JOIN clinical_record r ON r.id = v.clinical_record_id"
            " WHERE r.id = (SELECT max(id) FROM clinical_record)",
        )
    )


def test_data_managers_enter_a_record_checked_as_an_import_is(site: Site, tmp_path: Path) -> None:
    engine = make_engine(site.url(site.copy(tmp_path)))
    try:
        app = create_app(ApiSettings(engine, key_file=site.key_file))
        manager = client(app, site.tokens["data_manager"])
        before = records_of(engine, "nb_diagnosis")
        bad = {**VALID_RECORD, "record_id": "PRIMAGE-NB-0090", "age_at_diagnosis": "999",
               "inrg_stage": "3", "ldh": "lots"}  # fmt: skip
        refused = manager.post("/forms/NB_CLINICAL/nb_diagnosis", data=bad)
        assert refused.status_code == 422
        page = parse(refused.text)
        assert "nothing was stored" in page.one(id="refused").text()
        errors = {
            div.attrs["id"].removeprefix("field-"): div.one("p", class_="field-error").text()
            for div in page.all("div", class_="has-error")
        }
        assert set(errors) == {"age_at_diagnosis", "ldh", "metastatic_sites"}
        assert "300" in errors["age_at_diagnosis"] and "required" in errors["metastatic_sites"]
        # what was typed stays in the form
        assert page.one("input", id="field-age_at_diagnosis-input").attrs["value"] == "999"
        assert records_of(engine, "nb_diagnosis") == before
        good = {**VALID_RECORD, "record_id": "PRIMAGE-NB-0090", "symptoms": ["1", "3"]}
        stored = manager.post("/forms/NB_CLINICAL/nb_diagnosis", data=good)
        assert stored.status_code == 200, stored.text
        assert parse(stored.text).one(id="stored").text() == "Record PRIMAGE-NB-0090 stored."
        assert records_of(engine, "nb_diagnosis") == before + 1
        values = newest_record(engine)
        assert values["age_at_diagnosis"] == "30" and values["diagnosis_icd10"] == "C74.9"
        # the record id is stored only as its keyed pseudonym
        assert not sql(engine, "SELECT 1 FROM sample_donor WHERE pseudonym = 'PRIMAGE-NB-0090'")
        # the same id again: refused, unless the data manager asks to change the record
        again = manager.post("/forms/NB_CLINICAL/nb_diagnosis", data=good)
        assert again.status_code == 409 and "stored already" in again.text
        assert records_of(engine, "nb_diagnosis") == before + 1
        change = {**good, "update": "1", "age_at_diagnosis": "31", "diagnosis_icd10": ""}
        changed = manager.post("/forms/NB_CLINICAL/nb_diagnosis", data=change)
        assert parse(changed.text).one(id="stored").text() == "Record PRIMAGE-NB-0090 updated."
        values = newest_record(engine)
        assert values["age_at_diagnosis"] == "31" and values["diagnosis_icd10"] == "C74.9"
        # posted from another site: refused
        forged = manager.post(
            "/forms/NB_CLINICAL/nb_diagnosis", data=good, headers={"origin": "http://evil.example"}
        )
        assert forged.status_code == 403
    finally:
        engine.dispose()


def test_researchers_see_forms_read_only_and_cannot_post(
    app: FastAPI, site: Site, engine: Engine
) -> None:
    researcher = client(app, site.tokens["researcher"])
    listing = parse(researcher.get("/forms").text)
    shown = {
        tr.one("th").one("a").text(): number(tr.all("td")[2].text())
        for tr in listing.one("table", class_="forms").one("tbody").all("tr")
    }
    assert records_of(engine, "dipg_clinical") == 3 and shown["Dipg clinical"] == 10  # obfuscated
    page = parse(researcher.get("/forms/DIPG_CLINICAL/dipg_clinical").text)
    assert "read-only" in page.one(id="read-only").text()
    assert page.one("form", class_="eform").all("fieldset")[0].attrs.get("disabled") == ""
    assert page.all("button", type="submit")[-1].text() == "Sign out"  # no "Store" button
    before = records_of(engine, "dipg_clinical")
    posted = researcher.post("/forms/DIPG_CLINICAL/dipg_clinical", data={"record_id": "X-1"})
    assert posted.status_code == 403 and records_of(engine, "dipg_clinical") == before
    unknown = researcher.get("/forms/NB_CLINICAL/no_form")
    assert unknown.status_code == 404 and "nb_diagnosis" in unknown.text


def test_without_a_key_file_the_form_says_records_cannot_be_entered(
    site: Site, engine: Engine
) -> None:
    keyless = create_app(ApiSettings(engine, key_file=None))
    manager = client(keyless, site.tokens["data_manager"])
    page = parse(manager.get("/forms/NB_CLINICAL/nb_diagnosis").text)
    assert "--key-file" in page.one(id="no-key").text()
    assert page.one("form", class_="eform").all("fieldset")[0].attrs.get("disabled") == ""
    posted = manager.post(
        "/forms/NB_CLINICAL/nb_diagnosis", data={**VALID_RECORD, "record_id": "K-1"}
    )
    assert posted.status_code == 409 and "--key-file" in posted.text


# --- quality -------------------------------------------------------------------------------


def test_the_quality_page_is_for_data_managers(app: FastAPI, site: Site, engine: Engine) -> None:
    refused = client(app, site.tokens["researcher"]).get("/quality")
    assert refused.status_code == 403 and "data managers" in refused.text
    manager = client(app, site.tokens["data_manager"])
    page = parse(manager.get("/quality", params={"collection": "NB_IMAGING"}).text)
    from imaging_biobank.db.lookup import find_collection
    from imaging_biobank.quality.checks import Target

    with engine.connect() as conn:
        found = find_collection(conn, "NB_IMAGING")
        report = run_checks(conn, load_rules(), Target(found.id, found.identifier, found.kind))
    shown = page.all("table", class_="findings")
    assert sum(len(t.one("tbody").all("tr")) for t in shown) == len(report.findings)
    rules = page.one("table", class_="rules").one("tbody").all("tr")
    assert [tr.all("td")[0].text() for tr in rules] == [r.rule.id for r in report.rules]
    summary = {
        li.text().split()[1].rstrip("s"): int(li.text().split()[0])
        for li in page.one("ul", class_="severity-summary").all("li")
    }
    assert summary == {k: v for k, v in report.counts().items()}
    assert (
        page.one("select", id="collection").one("option", selected="").attrs["value"] == NB_IMAGING
    )
    assert manager.get("/quality", params={"collection": "NOPE"}).status_code == 404
    assert ("quality.report", "NB_IMAGING") in audit_actions(engine, "data_manager-web")


def test_page_views_are_audited_like_api_calls(app: FastAPI, site: Site, engine: Engine) -> None:
    browser = client(app, site.tokens["admin"])
    browser.get("/", params={"modality": "MR"})
    browser.get("/collections/NB_TISSUE")
    browser.get("/forms/NB_CLINICAL/nb_follow_up")
    log = T["audit_log"]
    with engine.connect() as conn:
        rows = conn.execute(
            select(log.c.action, log.c.query, log.c.path, log.c.status, log.c.role)
            .where(log.c.actor == "admin-web")
            .order_by(log.c.id)
        ).all()
    assert [tuple(r) for r in rows[-3:]] == [
        ("web.catalogue", "modality=MR", "/?modality=MR", 200, "admin"),
        ("web.collection", PREFIX + "NB_TISSUE", "/collections/NB_TISSUE", 200, "admin"),
        ("web.form", PREFIX + "NB_CLINICAL|nb_follow_up", "/forms/NB_CLINICAL/nb_follow_up", 200,
         "admin"),
    ]  # fmt: skip


# --- end to end in headless Chromium --------------------------------------------------------


def need_browser() -> None:
    """Chromium and Playwright must be there in CI; elsewhere their absence skips."""
    problems = []
    if not Path(CHROMIUM).exists():
        problems.append(f"chromium is not installed ({CHROMIUM}): run scripts/install-test-deps.sh")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("playwright is not installed (pip install -e '.[test]')")
    if not problems:
        return
    if IN_CI:
        pytest.fail("the browser tests must run in CI: " + "; ".join(problems))
    pytest.skip("; ".join(problems))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    url: str
    engine: Engine
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def live(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A real uvicorn server on loopback, on a private copy of the database."""
    import uvicorn

    need_browser()
    engine = make_engine(site.url(site.copy(tmp_path_factory.mktemp("live"))))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(ApiSettings(engine, key_file=site.key_file)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:  # waiting for start-up, not timing anything
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Live(f"http://127.0.0.1:{port}", engine, site.tokens)
    server.should_exit = True
    thread.join(timeout=30)
    engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    need_browser()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    # generous waits for a busy CI machine (waits end as soon as the page is ready)
    tab.set_default_timeout(30_000)
    expect.set_options(timeout=15_000)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], errors  # no script error on any page


def sign_in(page: Any, live: Live, role: str, start: str = "/") -> None:
    page.goto(live.url + start)
    assert "/login?next=" in page.url
    page.fill("#token", live.tokens[role])
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(live.url + start)


def shown_cards(page: Any) -> set[str]:
    links = page.locator("article.card h3 a")
    return {
        links.nth(i).get_attribute("href").removeprefix("/collections/")
        for i in range(links.count())
    }


@pytest.mark.browser
def test_browser_sign_in_browse_filter_and_open_a_collection(page: Any, live: Live) -> None:
    from playwright.sync_api import expect

    page.goto(live.url + "/")
    page.fill("#token", "ibk_wrong")
    page.click("form[action='/login'] button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("unknown, revoked or expired")
    sign_in(page, live, "researcher")
    expect(page.locator(".who .role")).to_have_text("researcher")
    everything = {row[0] for row in sql(live.engine, "SELECT identifier FROM collection")}
    assert shown_cards(page) == everything
    page.screenshot(path=str(SHOTS / "catalogue.png"), full_page=True)
    # a facet filters the cards at once (the checkbox submits its form) and the URL keeps it
    page.check("input[name=modality][value=CT]")
    page.wait_for_url("**/?*modality=CT*")
    expect(page.locator("#results-heading")).to_contain_text("2 of")
    assert shown_cards(page) == {NB_IMAGING, REFERENCE}
    page.screenshot(path=str(SHOTS / "catalogue-filtered.png"), full_page=True)
    page.click(f"a[href='/collections/{NB_IMAGING}']")
    page.wait_for_url(f"**/collections/{NB_IMAGING}")
    expect(page.locator("h1")).to_contain_text("Neuroblastoma imaging")
    charts = page.locator("figure.figure svg.chart")
    assert charts.count() >= 5
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 20
    expect(page.locator("#figure-modality")).to_contain_text("CT \u2013 Computed Tomography")
    expect(page.locator("#figure-modality rect.bar")).to_have_count(4)
    ld = json.loads(page.locator("script[type='application/ld+json']").text_content())
    assert ld["@type"] == "Dataset" and ld["url"] == f"{live.url}/collections/{NB_IMAGING}"
    page.screenshot(path=str(SHOTS / "collection.png"), full_page=True)
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    page.goto(live.url + "/forms")
    assert "/login?next=" in page.url


@pytest.mark.browser
def test_browser_cohort_builder_counts_live_from_the_menus(page: Any, live: Live) -> None:
    from playwright.sync_api import expect

    with live.engine.connect() as conn:
        ct = count(conn, parse_text("modality = CT"), role="data_manager")
        thin = count(
            conn, parse_text("modality = CT and slice_thickness <= 3"), role="data_manager"
        )
        frozen = count(
            conn,
            parse_text(
                'modality = CT and slice_thickness <= 3 and material_type = "Tissue (fresh frozen)"'
            ),
            role="data_manager",
        )
    assert ct.totals.series != thin.totals.series  # the second criterion changes the count
    sign_in(page, live, "data_manager", "/cohort")
    rows = page.locator("#criteria li.criterion")
    expect(rows).to_have_count(1)  # the script keeps one empty row to start from
    rows.nth(0).locator("select.key").select_option("modality")
    rows.nth(0).locator("select.op").select_option("EQUALS")
    rows.nth(0).locator("input.value").fill("CT")
    series = page.locator("#totals dd[data-count=series]")
    expect(series).to_have_text(str(ct.totals.series))
    expect(page.locator("#query-text")).to_have_text("modality = CT")
    # a second criterion from the menus: the operators follow the key
    page.click("#add-criterion")
    second = rows.nth(1)
    second.locator("select.key").select_option("slice_thickness")
    operators = second.locator("select.op option")
    assert "between" in operators.all_text_contents()
    second.locator("select.op").select_option("LESS_OR_EQUAL")
    second.locator("input.value").fill("3")
    expect(page.locator("#query-text")).to_have_text("modality = CT and slice_thickness <= 3")
    expect(series).to_have_text(str(thin.totals.series))
    expect(page.locator("#totals dd[data-count=donors]")).to_have_text(str(thin.totals.donors))
    locator = json.loads(page.locator("#query-json").text_content())
    assert locator == to_json(parse_text("modality = CT and slice_thickness <= 3"))
    assert "key=slice_thickness" in page.url  # the builder's state has a URL
    page.click("#add-criterion")
    third = rows.nth(2)
    third.locator("select.key").select_option("material_type")
    third.locator("input.value").fill("Tissue (fresh frozen)")
    expect(page.locator("#totals dd[data-count=samples]")).to_have_text(str(frozen.totals.samples))
    third.locator("button.remove").click()
    expect(series).to_have_text(str(thin.totals.series))
    page.screenshot(path=str(SHOTS / "cohort-builder.png"), full_page=True)
    # a bad value gets the engine's message, the counts stay
    second.locator("input.value").fill("thin")
    expect(page.locator("#count-error")).to_contain_text("slice_thickness takes a number")
    second.locator("input.value").fill("3")
    expect(page.locator("#count-error")).to_be_hidden()
    # the manifest of the matching series
    with page.expect_download() as download:
        page.click("#manifest button[type=submit]")
    listed = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(listed) == thin.totals.series
    assert {r["modality"] for r in listed} == {"CT"}


@pytest.mark.browser
def test_browser_eform_entry_stores_a_record_and_refuses_a_bad_value(page: Any, live: Live) -> None:
    from playwright.sync_api import expect

    before = records_of(live.engine, "nb_diagnosis")
    sign_in(page, live, "data_manager", "/forms")
    page.click("a[href='/forms/NB_CLINICAL/nb_diagnosis']")
    page.wait_for_url("**/forms/NB_CLINICAL/nb_diagnosis")
    page.fill("#field-record_id-input", "PRIMAGE-NB-0077")
    page.fill("#field-age_at_diagnosis-input", "999")
    page.check("#field-sex input[value='2']")
    page.fill("#field-diagnosis_icd10-input", "C74.9")
    page.select_option("#field-inrg_stage-input", label="L2")
    page.check("#field-mycn_status input[value='0']")
    page.select_option("#field-primary_site-input", label="Adrenal gland")
    page.check("#field-symptoms input[value='1']")
    page.click("form.eform button[type=submit]")
    error = page.locator("#field-age_at_diagnosis .field-error")
    expect(error).to_contain_text("300")
    expect(page.locator("#refused")).to_contain_text("nothing was stored")
    assert records_of(live.engine, "nb_diagnosis") == before
    expect(page.locator("#field-age_at_diagnosis-input")).to_have_value("999")
    expect(page.locator("#field-sex input[value='2']")).to_be_checked()
    page.screenshot(path=str(SHOTS / "eform-refused.png"), full_page=True)
    page.fill("#field-age_at_diagnosis-input", "14")
    page.click("form.eform button[type=submit]")
    expect(page.locator("#stored")).to_have_text("Record PRIMAGE-NB-0077 stored.")
    assert records_of(live.engine, "nb_diagnosis") == before + 1
    page.screenshot(path=str(SHOTS / "eform.png"), full_page=True)
    page.goto(live.url + "/forms")
    row = page.locator("table.forms tr", has_text="Nb diagnosis")
    expect(row.locator("td").nth(2)).to_have_text(str(before + 1))


@pytest.mark.browser
def test_browser_quality_page_for_a_data_manager(page: Any, live: Live) -> None:
    from playwright.sync_api import expect

    sign_in(page, live, "data_manager", "/quality")
    expect(page.locator("table.rules tbody tr")).to_have_count(len(load_rules()))
    page.select_option("#collection", value=NB_IMAGING)  # submits on change
    page.wait_for_url("**/quality?collection=*")
    expect(page.locator("p.meta")).to_contain_text(f"collection {NB_IMAGING}")
    page.screenshot(path=str(SHOTS / "quality.png"), full_page=True)
