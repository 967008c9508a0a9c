"""The RDF export, ``imaging-biobank sparql`` and ``/api/sparql`` on the demo biobank: the graph
parses back from every format, two exports are the same graph, known terms carry the
standards' IRIs, SPARQL finds the same series as the cohort query engine (body-part hierarchy
included), the API's roles and errors, PostgreSQL gives the same graph, and no direct
identifier gets into it."""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.uid import CTImageStorage
from rdflib import RDF, RDFS, BNode, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from sqlalchemy import Engine, create_engine, select, update
from typer.testing import CliRunner

from imaging_biobank.access.tokens import create_token
from imaging_biobank.api.app import create_app
from imaging_biobank.api.deps import ApiSettings
from imaging_biobank.api.routes.sparql import SparqlLimits
from imaging_biobank.cli import app as cli
from imaging_biobank.db._schema import metadata
from imaging_biobank.export.rdf import build_graph, serialize
from imaging_biobank.export.rdf_build import RdfOptions
from imaging_biobank.export.rdf_cache import GraphCache
from imaging_biobank.export.rdf_sparql import MAX_QUERY_CHARS, SparqlError, run
from imaging_biobank.export.rdf_terms import (
    BP,
    DCM,
    DICOM,
    IB,
    SCT,
    SKOS,
    attributes,
    ontology,
)
from imaging_biobank.query.ast import parse_text
from imaging_biobank.query.engine import as_seen, manifest
from imaging_biobank.query.facets import collection_facets
from imaging_biobank.vocab import catalog
from imaging_biobank.vocab.regions import ANNEX_L
from tests.conftest import EXAMPLE, STS_001
from tests.test_ingest import PYDICOM_FILES

T = metadata.tables
DCTERMS = URIRef("http://purl.org/dc/terms/")
PARSERS = {".ttl": "turtle", ".jsonld": "json-ld", ".nt": "nt"}
# a regular expression that backtracks exponentially: Python's re (C code, holding the
# interpreter) would need hours for 40 a's
CATASTROPHIC = 'ASK { BIND("' + "a" * 40 + 'b" AS ?x) FILTER(REGEX(?x, "^(a+)+$")) }'
# every triple with every triple, sorted: memory grows until something stops it
CROSS_PRODUCT = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f } ORDER BY ?f"
# the study totals the API's copy of the demo gets (small: a researcher must not see them)
STUDY_TOTALS = {"total_participants": 7, "total_donors": 3}


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(full_biobank: str) -> Iterator[Engine]:
    found = create_engine(full_biobank)
    yield found
    found.dispose()


@pytest.fixture(scope="module")
def graph(engine: Engine) -> Graph:
    """The data managers' graph of the whole demo biobank, with its instances."""
    with engine.connect() as conn:
        found, _ = build_graph(conn, options=RdfOptions(instances=True))
    return found


@pytest.fixture(scope="module")
def exported(full_biobank: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The CLI's exports: Turtle (twice), JSON-LD and N-Triples."""
    folder = tmp_path_factory.mktemp("rdf")
    runner = CliRunner()
    files = {}
    for name in ("biobank.ttl", "again.ttl", "biobank.jsonld", "biobank.nt"):
        result = runner.invoke(cli, ["export", "rdf", str(folder / name), "--db", full_biobank])
        assert result.exit_code == 0, result.output
        assert "triples" in result.output
        files[name] = folder / name
    return files


def series_query(modality: str | None, region: str | None, thickness: float | None) -> str:
    """SPARQL for the series of a modality showing a region (the engine's body-part rule:
    the series' body part, a region it lies within, or one a combined part covers) with a
    slice thickness of at most ``thickness`` mm."""
    patterns = ["?series a ib:ImagingSeries ; dicom:SeriesInstanceUID ?uid ."]
    if modality:
        patterns.append(f"?series ib:modality dcm:{modality} .")
    if region:
        patterns.append(f"?series ib:bodyPart/ib:covers?/skos:broader* bp:{region} .")
    if thickness is not None:
        patterns.append(f"?series dicom:SliceThickness ?t . FILTER(?t <= {thickness})")
    return "SELECT ?uid WHERE { " + " ".join(patterns) + " }"


def engine_query(modality: str | None, region: str | None, thickness: float | None) -> str:
    parts = [
        f"modality = {modality}" if modality else "",
        f"body_part = {region}" if region else "",
    ]
    parts.append(f"slice_thickness <= {thickness}" if thickness is not None else "")
    return " and ".join(p for p in parts if p)


# --- formats and stable IRIs ----------------------------------------------------------------


def test_every_format_parses_back_to_the_same_graph(
    exported: dict[str, Path], engine: Engine
) -> None:
    with engine.connect() as conn:
        built, counts = build_graph(conn)
    graphs = {
        name: Graph().parse(path, format=PARSERS[path.suffix]) for name, path in exported.items()
    }
    for name, parsed in graphs.items():
        assert len(parsed) == len(built), name
        assert isomorphic(parsed, built), name
    assert counts["series"] == len(set(built.subjects(RDF.type, IB.ImagingSeries)))


def test_two_exports_are_the_same_graph_and_the_same_turtle(exported: dict[str, Path]) -> None:
    first, second = exported["biobank.ttl"], exported["again.ttl"]
    assert first.read_bytes() == second.read_bytes()
    assert isomorphic(Graph().parse(first), Graph().parse(second))


def test_the_base_names_only_the_biobanks_own_rows(engine: Engine) -> None:
    """Another base changes the IRIs of biobanks, collections, donors, ...; standard IRIs
    (DICOM UIDs, SNOMED CT, ICD-10, DCM) stay; a base no IRI can follow is refused."""
    base = "https://biobank.example.org/rdf/"
    with engine.connect() as conn:
        default, _ = build_graph(conn, ["NB_IMAGING"])
        other, _ = build_graph(conn, ["NB_IMAGING"], RdfOptions(base=base))
        with pytest.raises(ValueError, match="absolute IRI"):
            build_graph(conn, options=RdfOptions(base="not an iri"))

    def rebased(term: Any) -> Any:
        if isinstance(term, URIRef) and str(term).startswith("urn:imaging-biobank:"):
            return URIRef(base + str(term).removeprefix("urn:imaging-biobank:"))
        return term

    moved = Graph()
    for s, p, o in default:
        moved.add((rebased(s), rebased(p), rebased(o)))
    assert isomorphic(moved, other)
    assert any(str(s).startswith(base + "collection/") for s in other.subjects())
    assert any(str(s).startswith("urn:oid:") for s in other.subjects(RDF.type, IB.ImagingSeries))


# --- vocabularies -----------------------------------------------------------------------------


def test_known_terms_carry_the_standards_iris(graph: Graph, engine: Engine) -> None:
    s, st, d, v = T["imaging_series"], T["imaging_study"], T["disease"], T["event"]
    with engine.connect() as conn:
        cts = (
            conn.execute(select(s.c.series_instance_uid).where(s.c.modality_value == "CT"))
            .scalars()
            .all()
        )
        parts = conn.execute(
            select(s.c.series_instance_uid, s.c.body_part_examined_value).where(
                s.c.body_part_examined_flag.is_(None), s.c.body_part_examined_value.isnot(None)
            )
        ).all()
        diagnoses = conn.execute(
            select(v.c.identifier, d.c.uri, d.c.code).join(d, d.c.id == v.c.disease_id)
        ).all()
        study_of = dict(
            conn.execute(
                select(s.c.series_instance_uid, st.c.study_instance_uid).join(
                    st, st.c.id == s.c.imaging_study_id
                )
            ).all()
        )
    assert cts and parts and diagnoses
    for uid in cts:
        series = URIRef(f"urn:oid:{uid}")
        assert (series, IB.modality, DCM.CT) in graph
        assert (series, IB.imagingStudy, URIRef(f"urn:oid:{study_of[uid]}")) in graph
        assert (series, IB.datasetType, URIRef(f"urn:oid:{CTImageStorage}")) in graph
    for uid, written in parts:
        term = BP[written]
        assert (URIRef(f"urn:oid:{uid}"), IB.bodyPart, term) in graph
        snomed = catalog.term(ANNEX_L, written).get("snomed_code")
        assert (term, SKOS.exactMatch, SCT[snomed]) in graph
    # the Annex L hierarchy as the shipped edition curates it
    abdomen = catalog.term(ANNEX_L, "ABDOMEN")
    assert (BP.ABDOMEN, SKOS.broader, BP[abdomen.get("within")]) in graph
    for identifier, uri, code in diagnoses:
        event = next(graph.subjects(DCTERMS_ID, Literal(identifier)))
        assert (event, IB.diagnosis, URIRef(uri)) in graph
        assert (URIRef(uri), SKOS.notation, Literal(code)) in graph
        if "." in code:  # a sub-category lies under its category
            category = next(graph.objects(URIRef(uri), SKOS.broader))
            assert graph.value(category, SKOS.notation) == Literal(code.split(".")[0])


DCTERMS_ID = URIRef(str(DCTERMS) + "identifier")


def test_dicom_properties_are_the_dictionarys_attributes(graph: Graph) -> None:
    """Every dicom: property is a DICOM keyword whose tag is the one the mapping names, and
    every ib: class and property the graph uses is defined in the ontology."""
    for attribute in attributes():
        if str(attribute.predicate).startswith(str(DICOM)):
            keyword = str(attribute.predicate).removeprefix(str(DICOM))
            tag = tag_for_keyword(keyword)
            assert tag is not None, keyword
            assert f"({tag >> 16:04X},{tag & 0xFFFF:04X})" == attribute.dicom_tag, keyword
            assert keyword_for_tag(tag) == keyword
    defined = set(ontology().subjects(RDFS.label, None))
    used = {p for p in graph.predicates() if str(p).startswith(str(IB))}
    used |= {o for o in graph.objects(None, RDF.type) if str(o).startswith(str(IB))}
    assert used and used <= defined, sorted(used - defined)
    assert any(str(p).startswith(str(DICOM)) for p in graph.predicates())


# --- SPARQL = the cohort query engine ---------------------------------------------------------

CASES = [
    ("CT", "ABDOMEN", 3),  # the question (the demo has no such series)
    ("MR", "ABDOMEN", 5),
    ("CT", "HEAD", 3),
    ("MR", "TRUNK", None),  # an abdomen series lies within the trunk
    ("CR", "SPINE", None),  # cervical spine series lie within the spine
    ("NM", "SPINE", None),  # a whole-body series covers the spine
    (None, "HEAD", None),
    ("MR", None, 4),
]


@pytest.mark.parametrize(("modality", "region", "thickness"), CASES)
def test_sparql_finds_the_series_the_cohort_engine_finds(
    graph: Graph, engine: Engine, modality: str | None, region: str | None, thickness: float | None
) -> None:
    query = engine_query(modality, region, thickness)
    with engine.connect() as conn:
        rows = manifest(conn, parse_text(query), role="data_manager")
    found = run(graph, series_query(modality, region, thickness))
    assert {str(r[0]) for r in found.rows} == {r["series_instance_uid"] for r in rows}, query


def test_the_variants_select_real_series_through_the_hierarchy(engine: Engine) -> None:
    """The cases above are not all empty, and some match series whose body part is not the
    region asked for (the hierarchy at work)."""
    with engine.connect() as conn:
        matched = {
            case: manifest(conn, parse_text(engine_query(*case)), role="data_manager")
            for case in CASES
        }
    assert sum(1 for rows in matched.values() if rows) >= 6
    through = [
        case
        for case, rows in matched.items()
        if case[1] and rows and any(r["body_part"] != case[1] for r in rows)
    ]
    assert len(through) >= 3, through


# --- the CLI --------------------------------------------------------------------------------


def test_cli_sparql_prints_table_csv_and_json(
    full_biobank: str, graph: Graph, tmp_path: Path
) -> None:
    runner = CliRunner()
    query = series_query("CT", "HEAD", 3)
    expected = run(graph, query)
    assert expected.rows
    as_csv = runner.invoke(cli, ["sparql", query, "--format", "csv", "--db", full_biobank])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["uid"] and sorted(r[0] for r in rows[1:]) == sorted(
        str(r[0]) for r in expected.rows
    )
    as_json = runner.invoke(cli, ["sparql", "--format", "json", "--db", full_biobank], input=query)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == expected.to_json()
    file = tmp_path / "q.rq"
    file.write_text("ASK { ?s ib:modality dcm:CT }")
    asked = runner.invoke(cli, ["sparql", "--file", str(file), "--db", full_biobank])
    assert asked.exit_code == 0 and asked.stdout.strip() == "true"
    table = runner.invoke(cli, ["sparql", query, "--db", full_biobank])
    assert table.exit_code == 0 and f"{len(expected.rows)} rows" in table.stdout
    constructed = runner.invoke(
        cli,
        [
            "sparql",
            "CONSTRUCT { ?s ib:modality ?m } WHERE { ?s ib:modality ?m }",
            "--db",
            full_biobank,
        ],
    )
    assert constructed.exit_code == 0
    assert len(Graph().parse(data=constructed.stdout, format="turtle")) > 0


def test_cli_sparql_refuses_bad_queries_and_updates(full_biobank: str) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["sparql", "SELECT ?x WHERE { ?x ?y }", "--db", full_biobank])
    assert bad.exit_code == 2 and "line 1, column 19" in bad.output
    for update_query in ("DELETE WHERE { ?s ?p ?o }", "INSERT DATA { ib:a ib:b ib:c }"):
        refused = runner.invoke(cli, ["sparql", update_query, "--db", full_biobank])
        assert refused.exit_code == 2 and "read-only" in refused.output
    unknown = runner.invoke(cli, ["sparql", "ASK {}", "-c", "NO_SUCH", "--db", full_biobank])
    assert unknown.exit_code == 2 and "NB_IMAGING" in unknown.output
    graph = runner.invoke(cli, ["sparql", "ASK { GRAPH ?g { ?s ?p ?o } }", "--db", full_biobank])
    assert graph.exit_code == 2 and "GRAPH is not accepted" in graph.output
    stopped = runner.invoke(cli, ["sparql", CATASTROPHIC, "--timeout", "1", "--db", full_biobank])
    assert stopped.exit_code == 2 and "longer than 1 s" in stopped.output


def test_export_of_one_collection_and_of_instances(
    full_biobank: str, engine: Engine, tmp_path: Path
) -> None:
    s, i, c = T["imaging_series"], T["imaging_instance"], T["collection"]
    in_nb = (
        select(s.c.id, s.c.series_instance_uid)
        .join(c, c.c.id == s.c.image_collection_id)
        .where(c.c.identifier.like("%:NB_IMAGING"))
        .subquery()
    )
    with engine.connect() as conn:
        nb = conn.execute(select(in_nb.c.series_instance_uid)).scalars().all()
        instances = (
            conn.execute(
                select(i.c.sop_instance_uid).where(i.c.imaging_series_id.in_(select(in_nb.c.id)))
            )
            .scalars()
            .all()
        )
    out = tmp_path / "nb.nt"
    result = CliRunner().invoke(
        cli, ["export", "rdf", str(out), "-c", "NB_IMAGING", "--instances", "--db", full_biobank]
    )
    assert result.exit_code == 0, result.output
    found = Graph().parse(out, format="nt")
    assert {str(x) for x in found.subjects(RDF.type, IB.ImagingSeries)} == {
        f"urn:oid:{u}" for u in nb
    }
    assert {str(x) for x in found.subjects(RDF.type, IB.ImagingInstance)} == {
        f"urn:oid:{u}" for u in instances
    }
    assert not set(found.subjects(RDF.type, IB.Sample))  # NB_TISSUE is not in scope
    assert set(found.subjects(RDF.type, IB.ImagingBiomarker))
    wrong = CliRunner().invoke(
        cli, ["export", "rdf", str(tmp_path / "x.csv"), "--db", full_biobank]
    )
    assert wrong.exit_code == 2 and ".ttl" in wrong.output


# --- the API --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(full_biobank: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The API on a copy of the demo biobank (tokens and audit entries are written)."""
    source = Path(full_biobank.removeprefix("sqlite:///"))
    copy = tmp_path_factory.mktemp("rdf_api") / "biobank.db"
    # SQLite's backup (not a file copy): rows still in the write-ahead log come along
    with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    engine = create_engine(f"sqlite:///{copy}")
    with engine.begin() as conn:
        tokens = {role: create_token(conn, role, role) for role in ("researcher", "data_manager")}
        conn.execute(update(T["study"]).values(**STUDY_TOTALS))  # the demo's study has none
    client = TestClient(create_app(ApiSettings(engine)))
    yield {"client": client, "engine": engine, **tokens}
    engine.dispose()


def _as(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def test_api_needs_a_token(api: dict[str, Any]) -> None:
    answer = api["client"].get("/api/sparql", params={"query": "ASK {}"})
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_api_answers_data_managers_from_the_full_graph(api: dict[str, Any]) -> None:
    client, token = api["client"], api["data_manager"]
    query = series_query("MR", "TRUNK", None)
    with api["engine"].connect() as conn:
        expected = {
            r["series_instance_uid"]
            for r in manifest(
                conn, parse_text(engine_query("MR", "TRUNK", None)), role="data_manager"
            )
        }
    assert expected
    got = client.get("/api/sparql", params={"query": query}, headers=_as(token))
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/sparql-results+json")
    body = got.json()
    assert body["head"]["vars"] == ["uid"]
    assert {b["uid"]["value"] for b in body["results"]["bindings"]} == expected
    as_csv = client.post(
        "/api/sparql",
        content=query,
        headers=_as(token, **{"Content-Type": "application/sparql-query", "Accept": "text/csv"}),
    )
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["uid"] and {r[0] for r in rows[1:]} == expected
    form = client.post("/api/sparql", data={"query": query}, headers=_as(token))
    assert form.status_code == 200 and form.json() == body
    turtle = client.get(
        "/api/sparql",
        params={"query": "CONSTRUCT { ?s ib:bodyPart ?b } WHERE { ?s ib:bodyPart ?b }"},
        headers=_as(token, Accept="text/turtle"),
    )
    assert turtle.status_code == 200 and turtle.headers["content-type"].startswith("text/turtle")
    assert len(Graph().parse(data=turtle.text, format="turtle")) > 0
    log = T["audit_log"]
    with api["engine"].connect() as conn:
        entry = conn.execute(
            select(log.c.query, log.c.result_count, log.c.role)
            .where(log.c.action == "sparql", log.c.query == query)
            .order_by(log.c.id)
        ).first()
    assert entry is not None and entry.result_count == len(expected)
    assert entry.role == "data_manager"


def test_api_gives_researchers_the_catalogue_with_obfuscated_counts(api: dict[str, Any]) -> None:
    client = api["client"]
    series = client.get(
        "/api/sparql",
        params={
            "query": "SELECT ?s WHERE { { ?s a ib:ImagingSeries } UNION { ?s a ib:SampleDonor }"
            " UNION { ?s a ib:Sample } UNION { ?s a ib:Event } }"
        },
        headers=_as(api["researcher"]),
    )
    assert series.status_code == 200 and series.json()["results"]["bindings"] == []
    query = (
        "SELECT ?id ?n WHERE { ?c a ib:Collection ; dcterms:identifier ?id ; ib:numberOfDonors ?n }"
    )
    c = T["collection"]
    with api["engine"].connect() as conn:
        exact = dict(conn.execute(select(c.c.identifier, c.c.number_of_donors)).all())
    for role in ("researcher", "data_manager"):
        got = client.get("/api/sparql", params={"query": query}, headers=_as(api[role]))
        assert got.status_code == 200
        shown = {b["id"]["value"]: int(b["n"]["value"]) for b in got.json()["results"]["bindings"]}
        assert shown == {k: as_seen(v, role) for k, v in exact.items() if v is not None}
    assert any(0 < v < 10 for v in exact.values() if v is not None)  # a small count to hide


def test_api_researchers_see_age_bands_and_obfuscated_study_totals(api: dict[str, Any]) -> None:
    """A researcher's graph has the donors' ages only as the catalogue's 10-year bands and
    the MIABIS study totals as researchers see counts; a data manager's has them exact."""
    client = api["client"]
    ages = (
        "SELECT ?id ?p ?v WHERE { ?c a ib:Collection ; dcterms:identifier ?id ; ?p ?v"
        " FILTER(?p IN (ib:donorAgeLowYears, ib:donorAgeHighYears, ib:ageBand)) }"
    )
    totals = "SELECT ?p ?n WHERE { ?s a ib:Study ; ib:totalParticipants ?p ; ib:totalDonors ?n }"
    c = T["collection"]
    with api["engine"].connect() as conn:
        exact = {
            r.identifier: (r.donor_age_low_years, r.donor_age_high_years)
            for r in conn.execute(select(c))
            if r.donor_age_low_years is not None
        }
        declared = {v for r in conn.execute(select(c.c.age_low, c.c.age_high)) for v in r}
        bands = {k: v["age"] for k, v in collection_facets(conn).items() if v["age"]}
    assert exact and bands and any(i in exact for i in bands)
    for role in ("researcher", "data_manager"):
        got = client.get("/api/sparql", params={"query": ages}, headers=_as(api[role]))
        assert got.status_code == 200
        found: dict[tuple[str, str], set[str]] = {}
        for b in got.json()["results"]["bindings"]:
            name = b["p"]["value"].removeprefix(str(IB))
            found.setdefault((b["id"]["value"], name), set()).add(b["v"]["value"])
        shown_bands = {i: sorted(v, key=lambda x: int(x.split("-")[0]))
                       for (i, name), v in found.items() if name == "ageBand"}  # fmt: skip
        assert shown_bands == bands, role
        shown_exact = {
            (i, name): {float(x) for x in v} for (i, name), v in found.items() if name != "ageBand"
        }
        if role == "researcher":
            assert not shown_exact
        else:
            assert shown_exact == {
                (i, name): {value}
                for i, pair in exact.items()
                for name, value in zip(("donorAgeLowYears", "donorAgeHighYears"), pair, strict=True)
            }
        answer = client.get("/api/sparql", params={"query": totals}, headers=_as(api[role]))
        rows = [
            (int(b["p"]["value"]), int(b["n"]["value"]))
            for b in answer.json()["results"]["bindings"]
        ]
        assert rows == [
            (
                as_seen(STUDY_TOTALS["total_participants"], role),
                as_seen(STUDY_TOTALS["total_donors"], role),
            )
        ], role
    # nowhere in the researcher's graph is an exact donor age (that is not a declared one)
    everything = client.get(
        "/api/sparql",
        params={"query": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"},
        headers=_as(api["researcher"], Accept="application/n-triples"),
    )
    assert everything.status_code == 200
    values = {
        o.toPython()
        for o in Graph().parse(data=everything.text, format="nt").objects()
        if isinstance(o, Literal)
    }
    hidden = {float(v) for pair in exact.values() for v in pair} - {
        float(v) for v in declared if v is not None
    }
    assert (
        hidden and not {float(v) for v in values if isinstance(v, (int, float, Decimal))} & hidden
    )
    assert STUDY_TOTALS["total_donors"] not in values


def test_api_errors_are_problems(api: dict[str, Any]) -> None:
    client, token = api["client"], api["data_manager"]
    cases = [
        ({"query": "SELECT ?x WHERE { ?x ?y }"}, 400, "sparql-syntax"),
        ({"query": "DELETE WHERE { ?s ?p ?o }"}, 400, "sparql-update"),
        (
            {"query": "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }"},
            400,
            "sparql-remote",
        ),
        (
            {"query": "SELECT * FROM <http://example.org/g> WHERE { ?s ?p ?o }"},
            400,
            "sparql-remote",
        ),
        (
            {"query": "SELECT * WHERE { GRAPH <http://example.org/g> { ?s ?p ?o } }"},
            400,
            "sparql-dataset",
        ),
        ({"query": "SELECT * WHERE { GRAPH ?g { ?s ?p ?o } }"}, 400, "sparql-dataset"),
        ({}, 400, "sparql-syntax"),
    ]
    for params, status, kind in cases:
        got = client.get("/api/sparql", params=params, headers=_as(token))
        assert got.status_code == status, params
        assert got.headers["content-type"].startswith("application/problem+json")
        assert got.json()["type"].endswith(kind)
    update = client.post(
        "/api/sparql",
        content="INSERT DATA { ib:a ib:b ib:c }",
        headers=_as(token, **{"Content-Type": "application/sparql-update"}),
    )
    assert update.status_code == 400 and update.json()["type"].endswith("sparql-update")
    as_form = client.post("/api/sparql", data={"update": "CLEAR ALL"}, headers=_as(token))
    assert as_form.status_code == 400
    other = client.post(
        "/api/sparql", content="x", headers=_as(token, **{"Content-Type": "text/plain"})
    )
    assert other.status_code == 415
    unacceptable = client.get(
        "/api/sparql", params={"query": "ASK {}"}, headers=_as(token, Accept="image/png")
    )
    assert unacceptable.status_code == 406
    product = (
        "SELECT * WHERE { ?a a ib:ImagingSeries . ?b a ib:ImagingSeries . ?c a ib:Collection }"
    )
    big = client.get("/api/sparql", params={"query": product}, headers=_as(token))
    assert big.status_code == 422 and "LIMIT" in big.json()["detail"]
    # and nothing was changed by the updates
    still = client.get(
        "/api/sparql", params={"query": "ASK { ?s a ib:ImagingSeries }"}, headers=_as(token)
    )
    assert still.json()["boolean"] is True


def test_api_turns_a_failing_query_into_a_logged_problem(
    api: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """rdflib raising while it evaluates (SUM over IRIs, an invalid regular expression) is a
    400 problem saying so, with the traceback in the server's log; not a 500."""
    client, token = api["client"], api["data_manager"]
    for query, what in (
        ("SELECT (SUM(?s) AS ?n) WHERE { ?s a ib:ImagingSeries }", "AttributeError"),
        ('ASK { ?s dcterms:identifier ?id FILTER(REGEX(?id, "(")) }', "error"),
    ):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="imaging_biobank.api.sparql"):
            got = client.get("/api/sparql", params={"query": query}, headers=_as(token))
        assert got.status_code == 400, query
        assert got.headers["content-type"].startswith("application/problem+json")
        assert got.json()["type"].endswith("sparql-evaluation")
        assert "failed while running" in got.json()["detail"] and what in got.json()["detail"]
        logged = [r for r in caplog.records if r.name == "imaging_biobank.api.sparql"]
        assert logged and query in logged[0].getMessage()
        assert "Traceback" in logged[0].getMessage()


def test_api_refuses_an_over_long_query_before_parsing_it(api: dict[str, Any]) -> None:
    """A long arithmetic expression takes pyparsing minutes: such a text is refused."""
    client, token = api["client"], api["data_manager"]
    long = "ASK { FILTER(" + "1+" * (MAX_QUERY_CHARS // 2) + "1 > 0) }"
    assert len(long) > MAX_QUERY_CHARS
    for got in (
        client.get("/api/sparql", params={"query": long}, headers=_as(token)),
        client.post(
            "/api/sparql",
            content=long,
            headers=_as(token, **{"Content-Type": "application/sparql-query"}),
        ),
    ):
        assert got.status_code == 413
        assert got.json()["type"].endswith("sparql-too-long")
        assert str(MAX_QUERY_CHARS) in got.json()["detail"]
    with pytest.raises(SparqlError) as error:
        run(Graph(), long)
    assert error.value.kind == "too-long"


@pytest.fixture
def limits(api: dict[str, Any]) -> Iterator[Any]:
    """Set the API's SPARQL limits for one test (restored after)."""
    state = api["client"].app.state

    def set_limits(found: SparqlLimits) -> None:
        state.sparql_limits = found

    yield set_limits
    state.sparql_limits = SparqlLimits()


class SignallingCache(GraphCache):
    """The API's graph cache, telling the test when it has handed a graph to a query (the
    query runs next)."""

    def __init__(self) -> None:
        super().__init__()
        self.handed = threading.Event()

    def graph(self, *args: Any, **kwargs: Any) -> Graph:
        found = super().graph(*args, **kwargs)
        self.handed.set()
        return found


def test_a_catastrophic_regex_is_stopped_while_other_requests_are_answered(
    api: dict[str, Any], limits: Any
) -> None:
    """Python's re holds the interpreter while it backtracks: the query runs in a child
    process, so /health and another query are answered meanwhile, and the regex is stopped
    at the time limit with a problem."""
    client, token = api["client"], api["data_manager"]
    limits(SparqlLimits(timeout=3.0))
    cache = SignallingCache()
    client.app.state.rdf_graphs = cache
    answers: dict[str, Any] = {}

    def ask(name: str, path: str, params: dict[str, str] | None = None) -> None:
        answers[name] = client.get(path, params=params, headers=_as(token))

    bad = threading.Thread(target=ask, args=("bad", "/api/sparql", {"query": CATASTROPHIC}))
    bad.start()
    assert cache.handed.wait(120)  # the bad query has its graph: it is running now
    others = [
        threading.Thread(target=ask, args=("health", "/health")),
        threading.Thread(
            target=ask, args=("simple", "/api/sparql", {"query": "ASK { ?s a ib:ImagingSeries }"})
        ),
    ]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(120)
        assert not thread.is_alive()  # answered: the regex does not hold the server
    bad.join(120)
    assert not bad.is_alive()
    assert answers["health"].status_code == 200
    assert answers["simple"].status_code == 200 and answers["simple"].json()["boolean"] is True
    assert answers["bad"].status_code == 422
    assert answers["bad"].json()["type"].endswith("sparql-timeout")
    assert "3 s" in answers["bad"].json()["detail"]


def test_a_query_that_needs_too_much_memory_is_refused(api: dict[str, Any], limits: Any) -> None:
    """A cross product sorted in full grows without bound: the child's memory limit stops
    it (with time to spare, so it is memory that stops it), as a problem."""
    client, token = api["client"], api["data_manager"]
    limits(SparqlLimits(timeout=300.0, memory_mb=32))
    got = client.get("/api/sparql", params={"query": CROSS_PRODUCT}, headers=_as(token))
    assert got.status_code == 422
    assert got.json()["type"].endswith("sparql-memory")
    assert "32 MiB" in got.json()["detail"]
    after = client.get(
        "/api/sparql", params={"query": "ASK { ?s a ib:ImagingSeries }"}, headers=_as(token)
    )
    assert after.status_code == 200 and after.json()["boolean"] is True


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_api_graph_is_cached_and_the_database_looked_at_every_30_s(api: dict[str, Any]) -> None:
    """The database's state is not looked at within 30 s of the last look (answers may lag
    writes by that much); after that a changed database gives a new graph, an unchanged one
    keeps the old one; at most 2 graphs are kept."""
    client, token = api["client"], api["data_manager"]
    clock = Clock()
    cache = GraphCache(clock=clock)
    client.app.state.rdf_graphs = cache
    query = (
        "SELECT ?d WHERE { ?c dcterms:identifier ?id ; dcterms:description ?d"
        ' FILTER(STRENDS(?id, ":NB_IMAGING")) }'
    )

    def described() -> list[str]:
        got = client.get("/api/sparql", params={"query": query}, headers=_as(token))
        return [b["d"]["value"] for b in got.json()["results"]["bindings"]]

    first = described()
    assert (cache.builds, cache.checks) == (1, 1)
    clock.now += 29
    assert described() == first and (cache.builds, cache.checks) == (1, 1)
    clock.now += 2
    assert described() == first and (cache.builds, cache.checks) == (1, 2)  # unchanged
    c = T["collection"]
    with api["engine"].begin() as conn:
        conn.execute(
            update(c).where(c.c.identifier.like("%:NB_IMAGING")).values(description="Changed.")
        )
    clock.now += 10
    assert described() == first  # within 30 s of the last look: the cached graph
    clock.now += 25
    assert described() == ["Changed."] and (cache.builds, cache.checks) == (2, 3)
    for step in (5, 20, 30):
        cache.graph(api["engine"], RdfOptions(level="catalogue", role="researcher", step=step))
    assert len(cache._entries) == cache.size == 2


def test_a_query_that_runs_too_long_is_stopped(graph: Graph) -> None:
    with pytest.raises(SparqlError, match="longer than") as error:
        run(graph, "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }", timeout=0.5)
    assert error.value.kind == "timeout"


def test_run_refuses_graph_and_reports_evaluation_errors_in_process(graph: Graph) -> None:
    """Without limits (in this process) the same refusals and errors as with them."""
    for limits in ({}, {"timeout": 60.0, "memory_mb": 512}):
        with pytest.raises(SparqlError) as refused:
            run(graph, "SELECT * WHERE { GRAPH ?g { ?s ?p ?o } }", **limits)
        assert refused.value.kind == "dataset" and "GRAPH" in str(refused.value)
        with pytest.raises(SparqlError) as failed:
            run(graph, "SELECT (SUM(?s) AS ?n) WHERE { ?s a ib:ImagingSeries }", **limits)
        assert failed.value.kind == "evaluation" and failed.value.trace
        found = run(graph, "CONSTRUCT { ?s ib:modality ?m } WHERE { ?s ib:modality ?m }", **limits)
        assert found.graph is not None and len(found.graph) == len(
            list(graph.triples((None, IB.modality, None)))
        )


# --- PostgreSQL -----------------------------------------------------------------------------

# what the de-identification key (each build makes its own) and the clock decide: donor
# pseudonyms, event tokens, when an analysis ran. Everything else must be equal.
KEYED_KINDS = ("donor/", "event/")
KEYED_PREDICATES = {DCTERMS_ID, URIRef("http://www.w3.org/ns/prov#endedAtTime")}


def without_keys(graph: Graph) -> Graph:
    """The graph with donors and events as blank nodes and keyed values left out."""
    nodes: dict[URIRef, BNode] = {}
    keyed = {
        s
        for s in graph.subjects()
        if isinstance(s, URIRef) and any(f"imaging-biobank:{k}" in str(s) for k in KEYED_KINDS)
    }

    def blank(term: Any) -> Any:
        return nodes.setdefault(term, BNode()) if term in keyed else term

    out = Graph()
    for s, p, o in graph:
        if p in KEYED_PREDICATES and (s in keyed or p != DCTERMS_ID):
            continue
        out.add((blank(s), p, blank(o)))
    return out


def test_postgresql_gives_the_same_graph(engine: Engine, full_biobank_pg: str) -> None:
    pg = create_engine(full_biobank_pg)
    try:
        catalogue = RdfOptions(level="catalogue", role="researcher")
        with engine.connect() as a, pg.connect() as b:
            assert isomorphic(
                build_graph(a, options=catalogue)[0], build_graph(b, options=catalogue)[0]
            )
            full_a, counts_a = build_graph(a)
            full_b, counts_b = build_graph(b)
    finally:
        pg.dispose()
    assert counts_a == counts_b
    assert len(full_a) == len(full_b)
    assert isomorphic(without_keys(full_a), without_keys(full_b))


# --- privacy ----------------------------------------------------------------------------------

DONOR_PREDICATES = {
    DCTERMS_ID,
    RDF.type,
    IB.sex,
    IB.birthYear,
    IB.collection,
    IB.miabisDatasetType,
    IB.useAccessCondition,
}


def direct_identifiers() -> set[str]:
    """The donors' identifiers before pseudonymisation: the example CSVs' donor ids and the
    patient names and ids in the DICOM files the demo ingests."""
    found: set[str] = set()
    for name in ("donors.csv", "samples.csv", "events.csv", "biomarkers.csv"):
        with (EXAMPLE.parent / "samples" / name).open(encoding="utf-8") as f:
            found |= {row["donor_id"] for row in csv.DictReader(f)}
    for root in (STS_001, PYDICOM_FILES / "test_files"):
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            try:
                ds = pydicom.dcmread(
                    path,
                    stop_before_pixels=True,
                    force=True,
                    specific_tags=["PatientName", "PatientID"],
                )
            except Exception:
                continue
            for keyword in ("PatientName", "PatientID"):
                value = str(ds.get(keyword, "") or "").strip()
                if len(value) >= 4 and any(ch.isalnum() for ch in value):
                    found.add(value)
    return found


def test_no_direct_identifier_in_the_graph(graph: Graph) -> None:
    identifiers = direct_identifiers()
    assert "STS_001" in identifiers and len(identifiers) > 20
    values = {str(o) for o in graph.objects() if isinstance(o, Literal)}
    segments = {
        part
        for term in graph.all_nodes()
        if isinstance(term, URIRef)
        for part in str(term).replace(":", "/").split("/")
    }
    leaked = {i for i in identifiers if i in values or i in segments}
    # names and mixed ids may also hide inside a longer text
    text = serialize(graph, "nt").decode("utf-8")
    leaked |= {i for i in identifiers if not i.isdigit() and i in text}
    assert not leaked
    donors = set(graph.subjects(RDF.type, IB.SampleDonor))
    assert donors
    for donor in donors:
        assert set(graph.predicates(donor, None)) <= DONOR_PREDICATES
        for year in graph.objects(donor, IB.birthYear):
            assert len(str(year)) == 4
