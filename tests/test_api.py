"""The REST API: tokens and roles, obfuscated counts, the audit log, problem details, the
same answers as the Python API and the CLI, record entry, and Schemathesis on its schema."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hypothesis
import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from typer.testing import CliRunner

from imaging_biobank.access.tokens import create_token
from imaging_biobank.api.app import create_app
from imaging_biobank.api.deps import ApiSettings
from imaging_biobank.cli import app as cli
from imaging_biobank.db._schema import metadata
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.query.ast import parse_text
from imaging_biobank.query.engine import count, manifest
from tests.biobanks import imaging_biobank
from tests.conftest import ROOT
from tests.test_query import EXAMPLE as EXAMPLE_QUERY

NB_TISSUE = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE"
NB_CLINICAL = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_CLINICAL"
THREE_DONORS = "modality = OT"  # pydicom's secondary captures: three patients


@dataclass
class Api:
    url: str
    engine: Engine
    key_file: Path
    client: TestClient
    researcher: str
    data_manager: str
    admin: str

    def as_(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def build(url: str, folder: Path) -> Api:
    """STS_001 and pydicom's test files, a frozen C74.9 tumour sample of STS_001 (consent
    without commercial use), the neuroblastoma e-form, and three tokens."""
    engine, key_file = imaging_biobank(url, folder)
    samples = folder / "samples.csv"
    samples.write_text(
        "sample_id,donor_id,sample_type,storage_temperature,diagnosis\n"
        "T1,STS_001,Tissue (fresh frozen),-80,C74.9\n"
    )
    donors = folder / "donors.csv"
    donors.write_text("donor_id,sex,use_access_conditions\nSTS_001,Male,NCU\n")
    runner = CliRunner()
    db = engine.url.render_as_string(hide_password=False)
    for args in (
        ["import", "samples", str(samples), "-c", NB_TISSUE, "--key-file", str(key_file)],
        ["import", "donors", str(donors), "-c", NB_TISSUE, "--key-file", str(key_file)],
        ["import", "form", str(ROOT / "examples/forms/neuroblastoma.csv"), "-c", NB_CLINICAL],
    ):
        result = runner.invoke(cli, [*args, "--db", db])
        assert result.exit_code == 0, result.output
    with engine.begin() as conn:
        tokens = [
            create_token(conn, role, role) for role in ("researcher", "data_manager", "admin")
        ]
    client = TestClient(create_app(ApiSettings(engine, key_file=key_file)))
    return Api(db, engine, key_file, client, *tokens)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("api")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'biobank.db'}"
    else:
        server = request.getfixturevalue("postgres")
        url = server.create_database(f"api_{os.getpid()}_{folder.name}")
    built = build(url, folder)
    yield built
    built.engine.dispose()


def audit_rows(api: Api, actor: str) -> list[dict[str, object]]:
    log = metadata.tables["audit_log"]
    with api.engine.connect() as conn:
        rows = conn.execute(select(log).where(log.c.actor == actor).order_by(log.c.id))
        return [dict(r._mapping) for r in rows]


def test_every_route_but_health_needs_a_token(api: Api) -> None:
    assert api.client.get("/health").json()["status"] == "ok"
    assert api.client.get("/openapi.json").status_code == 401
    assert api.client.get("/docs").status_code == 401
    paths = api.client.get("/openapi.json", headers=api.as_(api.researcher)).json()["paths"]
    assert len(paths) >= 10
    for path, operations in paths.items():
        concrete = path.replace("{collection}", "NB_CLINICAL").replace("{form}", "nb_diagnosis")
        concrete = concrete.replace("{identifier}", "NB_IMAGING")
        for method in operations:
            response = api.client.request(method, concrete, json={})
            if path == "/health":
                assert response.status_code == 200
                continue
            assert response.status_code == 401, (method, path)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"] == "Bearer"
            problem = response.json()
            assert problem["status"] == 401 and problem["instance"] == concrete
    wrong = api.client.get("/api/collections", headers=api.as_("ibk_not-a-token"))
    assert wrong.status_code == 401 and "unknown, revoked or expired" in wrong.json()["detail"]


def test_researchers_get_obfuscated_counts_and_every_query_is_audited(api: Api) -> None:
    before = len(audit_rows(api, "researcher"))
    shown = api.client.post(
        "/api/cohorts/count", json={"query": THREE_DONORS}, headers=api.as_(api.researcher)
    )
    exact = api.client.get(
        "/api/cohorts/count", params={"q": THREE_DONORS}, headers=api.as_(api.data_manager)
    )
    assert shown.status_code == exact.status_code == 200
    assert exact.json()["totals"]["donors"] == 3 and not exact.json()["obfuscated"]
    assert shown.json()["totals"]["donors"] == 10 and shown.json()["obfuscated"]
    # the same query always gets the same answer
    again = api.client.post(
        "/api/cohorts/count", json={"query": THREE_DONORS}, headers=api.as_(api.researcher)
    )
    assert again.json() == shown.json()
    entries = audit_rows(api, "researcher")[before:]
    assert [(e["action"], e["query"], e["result_count"], e["status"]) for e in entries] == [
        ("cohort.count", THREE_DONORS, 10, 200),
        ("cohort.count", THREE_DONORS, 10, 200),
    ]
    last = audit_rows(api, "data_manager")[-1]
    assert (last["action"], last["result_count"], last["role"]) == (
        "cohort.count",
        3,
        "data_manager",
    )
    assert last["path"].startswith("/api/cohorts/count?q=")


def test_the_example_query_is_the_same_in_python_the_cli_and_rest(api: Api) -> None:
    tree = parse_text(EXAMPLE_QUERY)
    with api.engine.connect() as conn:
        python = count(conn, tree, role="data_manager")
        python_rows = manifest(conn, tree, role="data_manager")
    result = CliRunner().invoke(
        cli, ["query", EXAMPLE_QUERY, "--db", api.url, "--role", "data_manager", "--json"]
    )
    assert result.exit_code == 0, result.output
    rest = api.client.post(
        "/api/cohorts/count", json={"query": EXAMPLE_QUERY}, headers=api.as_(api.data_manager)
    ).json()
    assert python.totals.donors == 1 and python.totals.series == 1  # STS_001's PET series
    assert json.loads(result.output)["totals"] == rest["totals"] == python.totals.__dict__
    # the Locator JSON form gives the same answer
    by_json = api.client.post(
        "/api/cohorts/count", json={"locator": rest["locator"]}, headers=api.as_(api.admin)
    ).json()
    assert by_json["totals"] == rest["totals"] and by_json["query"] == rest["query"]
    listed = api.client.post(
        "/api/cohorts/manifest", json={"query": EXAMPLE_QUERY}, headers=api.as_(api.data_manager)
    )
    assert listed.status_code == 200 and listed.json() == json.loads(
        json.dumps(python_rows, default=str)
    )
    # a commercial purpose leaves out STS_001 (consent NCU)
    commercial = api.client.post(
        "/api/cohorts/count",
        json={"query": EXAMPLE_QUERY, "purpose": ["commercial"]},
        headers=api.as_(api.data_manager),
    ).json()
    assert commercial["totals"]["donors"] == 0


ISSUE_QUERY = (
    "modality = CT and body_part = ABDOMEN and slice_thickness <= 3"
    " and material_type = TISSUE_FROZEN and diagnosis in C74"
)


@pytest.mark.parametrize(
    "text",
    [
        ISSUE_QUERY,
        "modality = CT and body_part = ABDOMEN and slice_thickness <= 3",
        "body_part = ABDOMEN and not modality = NM",
        "modality = MR and slice_thickness <= 3 or material_type = TISSUE_FROZEN",
    ],
)
def test_python_cli_and_rest_give_the_same_donors_and_series(api: Api, text: str) -> None:
    tree = parse_text(text)
    with api.engine.connect() as conn:
        python = count(conn, tree, role="data_manager").totals.__dict__
        rows = json.loads(json.dumps(manifest(conn, tree, role="data_manager"), default=str))
    result = CliRunner().invoke(
        cli, ["query", text, "--db", api.url, "--role", "data_manager", "--manifest", "json"]
    )
    assert result.exit_code == 0, result.output
    h = api.as_(api.data_manager)
    rest = api.client.post("/api/cohorts/count", json={"query": text}, headers=h).json()
    listed = api.client.post("/api/cohorts/manifest", json={"query": text}, headers=h).json()
    assert rest["totals"] == python and json.loads(result.output) == listed == rows
    assert python["series"] == len(rows)


def test_manifests_are_for_data_managers(api: Api) -> None:
    body = {"query": "modality = PT"}
    refused = api.client.post("/api/cohorts/manifest", json=body, headers=api.as_(api.researcher))
    assert refused.status_code == 403
    assert refused.json()["detail"] == "this needs the role data_manager; your token has researcher"
    assert audit_rows(api, "researcher")[-1]["status"] == 403
    listed = api.client.post(
        "/api/cohorts/manifest?format=csv", json=body, headers=api.as_(api.data_manager)
    )
    assert listed.status_code == 200 and listed.headers["content-type"].startswith("text/csv")
    header, row, *rest = listed.text.splitlines()
    assert header.split(",")[:4] == [
        "donor",
        "collection",
        "study_instance_uid",
        "series_instance_uid",
    ]
    assert not rest and ",PT," in row and "STS_001" not in listed.text  # pseudonymised
    assert audit_rows(api, "data_manager")[-1]["result_count"] == 1


def test_errors_are_problem_details_that_say_what_is_allowed(api: Api) -> None:
    h = api.as_(api.researcher)
    cases = [
        ({"query": "modality = CT and"}, "query"),
        ({"query": "colour = red"}, "colour"),
        ({"query": "slice_thickness <= thin"}, "thin"),
        ({"locator": {"operand": "XOR", "children": []}}, "AND, OR or NOT"),
        ({}, "give query"),
        ({"query": "modality = CT", "purpose": ["space travel"]}, "space travel"),
    ]
    for body, mentioned in cases:
        response = api.client.post("/api/cohorts/count", json=body, headers=h)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["title"] == "Unprocessable content" and mentioned in problem["detail"]
        assert "Traceback" not in response.text
    unknown = api.client.post("/api/cohorts/count", json={"query": "colour = red"}, headers=h)
    assert "modality" in unknown.json()["detail"]  # the allowed keys are listed
    malformed = api.client.post(
        "/api/cohorts/count",
        content=b"{not json",
        headers={**h, "content-type": "application/json"},
    )
    assert malformed.status_code == 422 and malformed.json()["errors"]
    missing = api.client.get("/api/collections/NO_SUCH", headers=h)
    assert missing.status_code == 404 and "NO_SUCH" in missing.json()["detail"]


def test_revoked_and_expired_tokens_are_refused(api: Api) -> None:
    with api.engine.begin() as conn:
        token = create_token(conn, "leaver", "researcher")
    h = api.as_(token)
    assert api.client.get("/api/collections", headers=h).status_code == 200
    result = CliRunner().invoke(cli, ["token", "revoke", "leaver", "--db", api.url])
    assert result.exit_code == 0, result.output
    assert api.client.get("/api/collections", headers=h).status_code == 401
    with api.engine.begin() as conn:
        token = create_token(conn, "visitor", "researcher")
        tokens = metadata.tables["api_token"]
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        conn.execute(update(tokens).where(tokens.c.name == "visitor").values(expires_at=past))
    assert api.client.get("/api/collections", headers=api.as_(token)).status_code == 401


def test_a_replaced_token_stops_working_and_the_new_one_works(api: Api) -> None:
    made = [
        CliRunner().invoke(
            cli, ["token", "create", "demo", "--role", "data_manager", "--replace", "--db", api.url]
        )
        for _ in range(2)
    ]
    assert [m.exit_code for m in made] == [0, 0], made[0].output
    first, second = (m.output.strip() for m in made)
    assert api.client.get("/api/collections", headers=api.as_(first)).status_code == 401
    assert api.client.get("/api/collections", headers=api.as_(second)).status_code == 200
    again = CliRunner().invoke(cli, ["token", "create", "demo", "--db", api.url])
    assert again.exit_code == 2 and "exists" in again.output
    listed = CliRunner().invoke(cli, ["token", "list", "--json", "--db", api.url])
    names = {t["name"]: t for t in json.loads(listed.output)}
    assert names["demo"]["revoked_at"] is None
    assert [n for n in names if n.startswith("demo#")] and "token_sha256" not in listed.output


def test_catalogue_counts_are_obfuscated_for_researchers(api: Api) -> None:
    shown = api.client.get("/api/collections/REFERENCE_IMAGING", headers=api.as_(api.researcher))
    exact = api.client.get("/api/collections/REFERENCE_IMAGING", headers=api.as_(api.admin))
    assert shown.status_code == exact.status_code == 200
    true_donors = exact.json()["counts"]["donors"]
    assert 0 < true_donors < 50 and true_donors % 10 != 0
    assert shown.json()["counts"]["donors"] == max(10, (true_donors + 5) // 10 * 10)
    names = {d["name"] for d in exact.json()["descriptors"]}
    assert "Body parts examined" in names
    biobank = api.client.get("/api/biobanks/bbmri-eric:ID:ES_PRIMAGE", headers=api.as_(api.admin))
    assert biobank.status_code == 200 and len(biobank.json()["collections"]) == 8


def test_e_form_records_entered_through_the_api_are_checked_as_imports_are(api: Api) -> None:
    records = metadata.tables["clinical_record"]

    def stored() -> int:
        with api.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(records)).scalar_one())

    listed = api.client.get("/api/forms", headers=api.as_(api.researcher)).json()
    assert {f["records"] for f in listed} <= {0, 10}  # obfuscated for researchers
    definition = api.client.get(
        "/api/forms/NB_CLINICAL/nb_diagnosis", headers=api.as_(api.researcher)
    ).json()
    required = [f["name"] for f in definition["fields"] if f["required"]]
    assert "mycn_status" in required
    questionnaire = api.client.get(
        "/api/forms/NB_CLINICAL/nb_diagnosis/questionnaire", headers=api.as_(api.researcher)
    )
    assert questionnaire.json()["resourceType"] == "Questionnaire"
    path = "/api/forms/NB_CLINICAL/nb_diagnosis/records"
    good = {
        "record_id": "API-0001",
        "values": {
            "age_at_diagnosis": "14",
            "sex": "1",
            "diagnosis_icd10": "C74.9",
            "inrg_stage": "2",
            "mycn_status": "1",
            "primary_site": "1",
        },
    }
    before = stored()
    refused = api.client.post(path, json=good, headers=api.as_(api.researcher))
    assert refused.status_code == 403 and stored() == before
    bad = {"record_id": "API-0002", "values": {**good["values"], "age_at_diagnosis": "old"}}
    answer = api.client.post(path, json=bad, headers=api.as_(api.data_manager))
    assert answer.status_code == 422 and stored() == before
    assert answer.json()["errors"] == [
        {"where": "age_at_diagnosis", "value": "old", "message": "'old' is not a whole number"}
    ]
    unknown = api.client.post(
        path, json={"record_id": "X", "values": {"shoe_size": "42"}}, headers=api.as_(api.admin)
    )
    assert unknown.status_code == 422 and "shoe_size" in unknown.json()["detail"]
    entered = api.client.post(path, json=good, headers=api.as_(api.data_manager))
    assert entered.status_code == 201, entered.text
    assert entered.json()["stored"] == 1 and stored() == before + 1
    values = metadata.tables["clinical_value"]

    def answers() -> dict[int, str]:
        with api.engine.connect() as conn:
            return dict(conn.execute(select(values.c.e_form_field_id, values.c.raw)).all())

    kept = answers()
    again = api.client.post(path, json=good, headers=api.as_(api.data_manager))
    assert again.status_code == 409 and "stored already" in again.json()["detail"]
    assert stored() == before + 1 and answers() == kept  # no duplicate, nothing erased
    change = {"record_id": "API-0001", "values": {"age_at_diagnosis": "15"}, "update": True}
    changed = api.client.post(path, json=change, headers=api.as_(api.data_manager))
    assert changed.status_code == 201 and changed.json()["updated"] == 1
    after = answers()
    assert sorted(after.values()) == sorted(["15" if v == "14" else v for v in kept.values()])
    for unknown_code in ({"metastatic_sites": ["zz"]}, {"metastatic_sites": "1,zz"}):
        refused_code = api.client.post(
            path,
            json={"record_id": "API-0003", "values": {**good["values"], **unknown_code}},
            headers=api.as_(api.data_manager),
        )
        assert refused_code.status_code == 422 and stored() == before + 1
        assert refused_code.json()["errors"][0]["where"] == "metastatic_sites"
    no_form = api.client.post(
        "/api/forms/NB_CLINICAL/no_such_form/records", json=good, headers=api.as_(api.admin)
    )
    assert no_form.status_code == 404
    nested_id = {"record_id": "X", "values": {"record_id": "Y"}}
    assert api.client.post(path, json=nested_id, headers=api.as_(api.admin)).status_code == 422
    donors = metadata.tables["sample_donor"]
    pseudonym = Pseudonymiser.from_file(api.key_file).donor("API-0001")
    with api.engine.connect() as conn:
        assert conn.execute(select(donors.c.id).where(donors.c.pseudonym == pseudonym)).first()


def test_quality_reports_and_the_audit_log_follow_roles(api: Api) -> None:
    assert api.client.get("/api/quality", headers=api.as_(api.researcher)).status_code == 403
    report = api.client.get(
        "/api/quality", params={"collection": "NB_IMAGING"}, headers=api.as_(api.data_manager)
    )
    assert report.status_code == 200 and report.json()["collection"].endswith("NB_IMAGING")
    assert api.client.get("/api/audit", headers=api.as_(api.data_manager)).status_code == 403
    log = api.client.get("/api/audit", params={"actor": "data_manager"}, headers=api.as_(api.admin))
    assert log.status_code == 200
    denied, reported = log.json()[:2]  # newest first: a refused request is audited too
    assert (denied["action"], denied["status"]) == ("get /api/audit", 403)
    assert (reported["action"], reported["status"]) == ("quality.report", 200)


# ---- Schemathesis: no request the schema allows makes the server fail ----------------------


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("schemathesis")
    built = build(f"sqlite:///{folder / 'biobank.db'}", folder)
    yield built
    built.engine.dispose()


def test_schemathesis_finds_no_server_error(sqlite_api: Api) -> None:
    """Every operation of the OpenAPI schema, with data Schemathesis generates from it (valid
    and invalid), as an administrator and as a researcher: no 5xx, errors as problems."""
    app = sqlite_api.client.app
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers={"Authorization": f"Bearer {sqlite_api.researcher}"}
    )
    failures: list[str] = []
    operations = calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            for token in (sqlite_api.admin, sqlite_api.researcher):
                response = case.call(headers={"Authorization": f"Bearer {token}"})
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.text}")
                elif response.status_code >= 400:
                    # (Schemathesis gives header values as lists)
                    assert "application/problem+json" in response.headers["content-type"]

        call()
    assert operations >= 10 and calls >= 5 * operations
    assert not failures, failures[:5]


# ---- the real server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_over_http(sqlite_api: Api) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imaging_biobank",
            "serve",
            "--db",
            sqlite_api.url,
            "--port",
            str(port),
            "--key-file",
            str(sqlite_api.key_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = requests.get(f"{base}/health", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not answer")
        assert health.json()["status"] == "ok"
        assert requests.get(f"{base}/api/collections", timeout=5).status_code == 401
        answer = requests.post(
            f"{base}/api/cohorts/count",
            json={"query": THREE_DONORS},
            headers=sqlite_api.as_(sqlite_api.researcher),
            timeout=10,
        )
        assert answer.json()["totals"]["donors"] == 10
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_facets_count_donors_per_value_obfuscated_for_researchers(api: Api) -> None:
    exact = api.client.get("/api/facets", headers=api.as_(api.data_manager)).json()
    shown = api.client.get("/api/facets", headers=api.as_(api.researcher)).json()
    assert exact["modality"]["OT"] == 3 and shown["modality"]["OT"] == 10
    assert set(exact) == set(shown) and set(exact["modality"]) == set(shown["modality"])
    narrowed = api.client.get(
        "/api/facets", params={"q": "modality = PT"}, headers=api.as_(api.data_manager)
    ).json()
    assert narrowed["modality"]["PT"] == 1 and "OT" not in narrowed["modality"]
    bad = api.client.get("/api/facets", params={"q": "modality ="}, headers=api.as_(api.admin))
    assert bad.status_code == 422


def test_releases_freeze_a_cohort_for_data_managers_and_show_researchers_counts(
    api: Api,
) -> None:
    body = {"name": "pet-training", "query": "modality = PT"}
    refused = api.client.post("/api/releases", json=body, headers=api.as_(api.researcher))
    assert refused.status_code == 403
    made = [
        api.client.post("/api/releases", json=body, headers=api.as_(api.data_manager))
        for _ in range(2)
    ]
    assert [m.status_code for m in made] == [201, 201], made[0].text
    first, second = (m.json() for m in made)
    assert first["identifier"].startswith("pet-training/v1-")
    assert second["identifier"].startswith("pet-training/v2-")
    assert first["manifest_sha256"] == second["manifest_sha256"]
    assert first["created_by"] == "data_manager" and first["counts"]["instances"] == 59
    listed = api.client.get(
        "/api/releases", params={"name": "pet-training"}, headers=api.as_(api.researcher)
    ).json()
    assert [r["counts"]["donors"] for r in listed] == [10, 10] and listed[0]["obfuscated"]
    manifest = api.client.get(
        "/api/releases/pet-training/v1/manifest?format=csv", headers=api.as_(api.data_manager)
    )
    assert manifest.status_code == 200 and len(manifest.text.splitlines()) == 1 + 59
    no_manifest = api.client.get(
        "/api/releases/pet-training/v1/manifest", headers=api.as_(api.researcher)
    )
    assert no_manifest.status_code == 403
    changed = api.client.get(
        "/api/releases/pet-training/v1/diff/v2", headers=api.as_(api.data_manager)
    ).json()
    assert changed["same_content"] is True
    stricter = TestClient(create_app(ApiSettings(api.engine, obfuscation_step=20)))
    shown = stricter.get("/api/releases/pet-training/v1", headers=api.as_(api.researcher))
    assert shown.json()["counts"]["donors"] == 20 and "series" not in shown.json()
    missing = api.client.get("/api/releases/pet-training/v9", headers=api.as_(api.admin))
    assert missing.status_code == 404 and "pet-training" in missing.json()["detail"]
    empty = api.client.post(
        "/api/releases",
        json={"name": "nothing", "query": "modality = CT and modality = PT"},
        headers=api.as_(api.admin),
    )
    assert empty.status_code == 422 and "nothing to release" in empty.json()["detail"]
    log = audit_rows(api, "data_manager")
    assert ("release.create", "modality = PT", 59) in {
        (e["action"], e["query"], e["result_count"]) for e in log
    }
