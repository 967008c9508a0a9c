"""Cohort queries: the two written forms, the engine on real data, obfuscation, consent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from imaging_biobank.cli import app
from imaging_biobank.query.ast import (
    Leaf,
    Node,
    QuerySyntaxError,
    parse_json,
    parse_text,
    to_json,
    to_text,
)
from imaging_biobank.query.engine import count, obfuscate
from imaging_biobank.query.keys import QueryKeyError
from tests.conftest import STS_001
from tests.test_ingest import PYDICOM_FILES, query, run

EXAMPLE = "modality = PT and material_type = TISSUE_FROZEN and diagnosis in C74"
NB_TISSUE = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE"


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_text_and_json_forms_are_one_tree() -> None:
    query = (
        "modality = CT and body_part = ABDOMEN and slice_thickness <= 3"
        " and (material_type = TISSUE_FROZEN or not diagnosis in (C74, C71))"
    )
    tree = parse_text(query)
    assert isinstance(tree, Node) and tree.operand == "AND" and len(tree.children) == 4
    assert tree.children[2] == Leaf("slice_thickness", "LESS_OR_EQUAL", 3)
    assert parse_json(json.dumps(to_json(tree))) == tree
    assert parse_text(to_text(tree)) == tree
    locator = {
        "operand": "AND",
        "children": [
            {"key": "sex", "type": "EQUALS", "system": "", "value": "Male"},
            {"key": "age", "type": "BETWEEN", "value": {"min": 1, "max": 5}},
        ],
    }
    assert parse_json(locator) == Node(
        "AND", (Leaf("sex", "EQUALS", "Male", ""), Leaf("age", "BETWEEN", [1, 5]))
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("modality CT", "expected an operator"),
        ("modality = CT and", "ends too early"),
        ("(modality = CT", "ends too early"),
        ("(modality = CT or", "ends too early"),
        ("modality = CT)", "unexpected"),
        ("age between 1 5", "needs 'and'"),
        ("modality = CT extra", "unexpected"),
        ("samples >= 99999999999999999999999", "out of range"),
        ("slice_thickness < 1e400", "not a finite number"),
        ("slice_thickness < nan", "not a finite number"),
        ("(" * 400 + "modality = CT" + ")" * 400, "nests more than 32"),
        ("not " * 400 + "modality = CT", "nests more than 32"),
        (" or ".join(["modality = CT"] * 501), "more than 500 criteria"),
    ],
)
def test_syntax_errors_say_where_and_what(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=message):
        parse_text(query)


def test_the_json_form_has_the_same_limits() -> None:
    deep: dict[str, object] = {"key": "modality", "type": "EQUALS", "value": "CT"}
    for _ in range(200):
        deep = {"operand": "NOT", "children": [deep]}
    with pytest.raises(QuerySyntaxError, match="nests more than 32"):
        parse_json(deep)
    with pytest.raises(QuerySyntaxError, match="out of range"):
        parse_json({"key": "samples", "type": "EQUALS", "value": 10**30})


def test_locator_obfuscation_rule() -> None:
    assert [obfuscate(n) for n in (0, 1, 3, 9, 10, 14, 15, 123, 125)] == [
        0, 10, 10, 10, 10, 10, 20, 120, 130,
    ]  # fmt: skip


@pytest.fixture
def cohort_db(registered: Engine, key_file: Path, tmp_path: Path, runner: CliRunner) -> str:
    """STS_001 (CT, MR, PET; a frozen tumour sample, C74.9, consent without commercial use)
    and pydicom's test files in other collections."""
    run(registered, key_file, STS_001)
    run(registered, key_file, PYDICOM_FILES / "test_files",
        collection="bbmri-eric:ID:ES_PRIMAGE:collection:REFERENCE_IMAGING")  # fmt: skip
    db = registered.url.render_as_string(hide_password=False)
    samples = tmp_path / "samples.csv"
    samples.write_text(
        "sample_id,donor_id,sample_type,storage_temperature,diagnosis\n"
        "T1,STS_001,Tissue (fresh frozen),-80,C74.9\n"
        "T2,STS_001,Tissue (FFPE),RT,C74.9\n"
        "T3,OTHER-1,Plasma,-80,C71.7\n"
    )
    donors = tmp_path / "donors.csv"
    donors.write_text("donor_id,sex,use_access_conditions\nSTS_001,Male,NCU\n")
    for kind, path in (("samples", samples), ("donors", donors)):
        code, out = invoke(runner, "import", kind, str(path), "-c", NB_TISSUE, "--db", db,
                           "--key-file", str(key_file))  # fmt: skip
        assert code == 0, out
    return db


def test_the_example_query_counts_the_right_donor_for_each_role(
    cohort_db: str, runner: CliRunner, registered: Engine
) -> None:
    with registered.connect() as conn:
        exact = count(conn, parse_text(EXAMPLE), role="data_manager")
        shown = count(conn, parse_text(EXAMPLE), role="researcher")
    assert exact.totals.donors == 1 and exact.totals.series == 1  # the PET series
    assert exact.totals.instances == 59 and exact.totals.samples == 1  # the frozen one
    assert shown.totals.donors == 10 and shown.totals.instances == 60 and shown.obfuscated
    by_collection = {r["collection"].rsplit(":", 1)[-1]: r for r in exact.by_collection}
    assert by_collection["NB_IMAGING"]["series"] == 1 and by_collection["NB_TISSUE"]["samples"] == 1
    # the CLI and the JSON form give the same answer
    code, out = invoke(runner, "query", EXAMPLE, "--db", cohort_db, "--role", "data_manager",
                       "--json")  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["totals"] == exact.totals.__dict__


def test_series_criteria_hold_for_one_series(registered: Engine, cohort_db: str) -> None:
    with registered.connect() as conn:
        ct_thin = count(conn, parse_text("modality = CT and slice_thickness <= 4"), role="admin")
        mr_thin = count(conn, parse_text("modality = MR and slice_thickness <= 2"), role="admin")
        not_mr = count(conn, parse_text("diagnosis in C74 and not modality = MR"), role="admin")
        orpha = count(conn, parse_text("diagnosis = C71"), role="admin")
    with registered.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT count(*) FROM imaging_series s JOIN acquisition_parameters a"
                " ON a.imaging_series_id = s.id WHERE s.modality_value = 'CT'"
                " AND a.slice_thickness <= 4"
            )
        ).scalar_one()
        mr_all = conn.execute(
            text("SELECT count(*) FROM imaging_series WHERE modality_value = 'MR'")
        ).scalar_one()
    assert ct_thin.totals.series == expected >= 1
    assert mr_thin.totals.series < mr_all  # a real filter: thin MR series only
    # series criteria are true of one series: STS_001's series other than its MR
    assert not_mr.totals.donors == 1 and not_mr.totals.series == 5  # CT, PET, 3 RTSTRUCT
    assert orpha.totals.donors == 1 and orpha.totals.samples == 1  # C71.7 is under C71


def test_series_keep_their_slice_thickness_for_the_cohort_index(
    registered: Engine, cohort_db: str
) -> None:
    """Ingest copies each series' slice thickness onto the series (the cohort index reads it
    there), equal to its acquisition parameters'."""
    rows = query(
        registered,
        "SELECT s.slice_thickness, a.slice_thickness FROM imaging_series s"
        " LEFT JOIN acquisition_parameters a ON a.imaging_series_id = s.id",
    )
    assert len(rows) > 10 and sum(1 for kept, _ in rows if kept is not None) >= 5
    assert all(kept == acquired for kept, acquired in rows)


def test_body_parts_match_with_their_regions(registered: Engine, cohort_db: str) -> None:
    """ABDOMEN matches series of the abdomen and of regions covering it (pydicom's whole-body
    NM), TRUNK also the chest and spine; an organ is not matched by a scan of its region."""

    def series_of(*values: str) -> int:
        stored = query(registered, "SELECT body_part_examined_value FROM imaging_series")
        wanted = {v.replace(" ", "") for v in values}
        return sum(1 for (v,) in stored if v and v.upper().replace(" ", "") in wanted)

    def series(text_: str) -> int:
        with registered.connect() as conn:
            return count(conn, parse_text(text_), role="data_manager").totals.series

    assert series_of("WHOLE BODY") == 1 and series_of("ABDOMEN") >= 1
    assert series("body_part = ABDOMEN") == series_of("ABDOMEN", "WHOLE BODY")
    assert series("body_part = TRUNK") == series_of("ABDOMEN", "CHEST", "CSPINE", "WHOLE BODY")
    assert series("body_part = PANCREAS") == 0
    assert series("body_part = ABD") == series("body_part = ABDOMEN")  # a spelling of it


def test_consent_rules_out_a_commercial_purpose(registered: Engine, cohort_db: str) -> None:
    from imaging_biobank.samples.consent import Purpose

    with registered.connect() as conn:
        academic = count(conn, parse_text(EXAMPLE), role="admin", purpose=Purpose.of([]))
        commercial = count(
            conn, parse_text(EXAMPLE), role="admin", purpose=Purpose.of(["commercial"])
        )
    assert academic.totals.donors == 1 and commercial.totals.donors == 0


def test_bad_keys_and_values_say_what_is_allowed(
    runner: CliRunner, cohort_db: str, registered: Engine
) -> None:
    with registered.connect() as conn:
        with pytest.raises(QueryKeyError, match=r"keys: .*modality"):
            count(conn, parse_text("modalty = CT"))
        with pytest.raises(QueryKeyError, match="not a known material type"):
            count(conn, parse_text("material_type = gold"))
        with pytest.raises(QueryKeyError, match="takes a number"):
            count(conn, parse_text("slice_thickness <= thin"))
        with pytest.raises(QueryKeyError, match="did you mean"):
            count(conn, parse_text("diagnosis = C749"))
    code, out = invoke(runner, "query", "modalty = CT", "--db", cohort_db)
    assert code == 2 and "modality" in out


def test_manifests_are_for_data_managers(runner: CliRunner, cohort_db: str) -> None:
    code, out = invoke(runner, "query", EXAMPLE, "--db", cohort_db, "--manifest", "json")
    assert code == 1 and "data_manager" in out
    code, out = invoke(runner, "query", EXAMPLE, "--db", cohort_db, "--manifest", "json",
                       "--role", "data_manager")  # fmt: skip
    assert code == 0, out
    (row,) = json.loads(out)
    assert row["modality"] == "PT" and row["instances"] == 59
    assert row["location"].endswith("sts_001/PET/image")
    assert "STS_001" not in out  # the donor is pseudonymised
