"""``imaging-biobank check``: data-quality rules over a database built from real DICOM through
the command line, on SQLite and PostgreSQL; problems planted with SQL (and with DICOM files
ingest handles its own way) are each reported once, with the right rule and object."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

import imaging_biobank.cli.quality  # noqa: F401  (registers `check` on the app)
from imaging_biobank.cli import app
from imaging_biobank.db.engine import make_engine
from imaging_biobank.quality import FORMAT, RulesError, load_rules, parse_rules
from imaging_biobank.quality.checks import normalise
from tests.conftest import DIPG_IMAGING, EXAMPLE, NB_IMAGING, STS_001

LINKAGE = ("study-one-donor", "study-has-series", "instance-file")


def invoke(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def check(runner: CliRunner, url: str, *args: str) -> tuple[int, dict[str, Any]]:
    """``check --json``: the exit code and the document."""
    result = invoke(runner, "check", "--db", url, "--json", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def findings(document: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [f for f in document["findings"] if f["rule"] == rule]


def query(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def execute(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


@pytest.fixture
def biobank(db_url: str, tmp_path: Path, runner: CliRunner) -> tuple[str, Path, Path]:
    """A database built the way a data manager does: init, register, keygen, ingest (copies
    of sts_001's CT, its RT structure set and the MR: one donor, one study, three series).
    Returns the URL, the key file and the folder of the ingested copies."""
    copies = tmp_path / "dicom"
    for part in ("CT/image", "CT/mask", "MR_T1/image"):
        shutil.copytree(STS_001 / part, copies / part)
    key = tmp_path / "biobank.key"
    for args in (
        ("init", "--db", db_url),
        ("register", EXAMPLE, "--db", db_url),
        ("keygen", key),
        ("ingest", copies, "-c", NB_IMAGING, "--db", db_url, "--key-file", key, "--workers", 0),
    ):
        result = invoke(runner, *args)
        assert result.exit_code == 0, result.output
    return db_url, key, copies


def series_uids(engine: Engine) -> dict[str, str]:
    rows = query(engine, "SELECT modality_value, series_instance_uid FROM imaging_series")
    return {modality: uid for modality, uid in rows}


# ---- on a database ------------------------------------------------------------------------


def test_clean_data_passes_and_user_rules_override(
    biobank: tuple[str, Path, Path], runner: CliRunner, tmp_path: Path
) -> None:
    url, key, _ = biobank
    # a second collection ingested through the de-identifier: its series pass the de-id rule
    pet = tmp_path / "pet"
    pet.mkdir()
    for path in sorted((STS_001 / "PET" / "image").glob("*.dcm"))[:3]:
        shutil.copy(path, pet / path.name)
    result = invoke(
        runner, "ingest", pet, "-c", DIPG_IMAGING, "--db", url, "--key-file", key,
        "--workers", 0, "--deidentify",
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    code, document = check(runner, url)
    assert code == 0
    assert document["format"] == FORMAT == "imaging-biobank/check@1"
    assert document["counts"]["error"] == 0 and not document["failed"]
    ids = [rule["id"] for rule in document["rules"]]
    assert set(LINKAGE) | {"ct-slice-thickness", "series-body-part"} <= set(ids)
    for rule in LINKAGE:
        assert findings(document, rule) == [], rule
    # NB_IMAGING was ingested as it is, DIPG_IMAGING de-identified: only the first is flagged
    [deid] = findings(document, "collection-deidentified")
    assert (deid["object"], deid["severity"]) == (NB_IMAGING, "warning")
    assert deid["value"] == {"series": 3, "of": 3}
    assert "3 of 3 series" in deid["reason"]
    # the terminal view and exit codes
    result = invoke(runner, "check", "--db", url)
    assert result.exit_code == 0, result.output
    assert "1 warning" in result.stdout and "passed" in result.stdout
    assert invoke(runner, "check", "--db", url, "--fail-on", "warning").exit_code == 1
    assert invoke(runner, "check", "--db", url, "--fail-on", "fatal").exit_code == 2
    result = invoke(runner, "check", "--db", url, "-c", "NOPE")
    assert result.exit_code == 2 and NB_IMAGING in result.output
    code, document = check(runner, url, "-c", "DIPG_IMAGING")
    assert code == 0 and findings(document, "collection-deidentified") == []
    assert document["collection"] == DIPG_IMAGING

    # a user file: a stricter threshold at error level, a rule off, a rule of its own
    engine = make_engine(url)
    ct = series_uids(engine)["CT"]
    execute(
        engine,
        "UPDATE imaging_series SET series_description = :d WHERE series_instance_uid = :u",
        d="<script>alert('x')</script> & co",
        u=ct,
    )
    rules = tmp_path / "site.yaml"
    rules.write_text(
        "rules:\n"
        "  - id: ct-slice-thickness\n"
        "    max: 3\n"
        "    severity: error\n"
        "  - id: donor-diagnosis\n"
        "    enabled: false\n"
        "  - {id: collection-deidentified, scope: series}\n"
        "  - id: one-description\n"
        "    title: One series description per collection\n"
        "    severity: info\n"
        "    scope: collection\n"
        "    check: one_value_per_collection\n"
        "    field: series_description\n"
        "    where: {modality: [CT, MR]}\n",
        encoding="utf-8",
    )
    code, document = check(runner, url, "--rules", str(rules))
    assert code == 1
    [thick] = findings(document, "ct-slice-thickness")
    assert (thick["object"], thick["severity"], thick["collection"]) == (ct, "error", NB_IMAGING)
    assert thick["value"] == pytest.approx(3.27)
    assert "above the maximum 3" in thick["reason"]
    [rule] = [r for r in document["rules"] if r["id"] == "ct-slice-thickness"]
    assert rule["parameters"]["max"] == 3 and rule["parameters"]["min"] == 0.1  # merged
    assert rule["source"][0].startswith("default:") and rule["source"][1] == f"{rules}:2"
    assert findings(document, "donor-diagnosis") == []
    per_series = findings(document, "collection-deidentified")
    nb_series = {uid for modality, uid in series_uids(engine).items() if modality != "PT"}
    assert {f["object"] for f in per_series} == nb_series
    assert all(f["collection"] == NB_IMAGING for f in per_series)
    assert "donor-diagnosis" not in [r["id"] for r in document["rules"]]
    [mixed] = findings(document, "one-description")
    assert mixed["object"] == NB_IMAGING and len(mixed["value"]) == 2
    # the HTML page: self-contained, values escaped
    page = tmp_path / "check.html"
    result = invoke(runner, "check", "--db", url, "--rules", rules, "--html", page)
    assert result.exit_code == 1, result.output
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in html
    assert ct in html and "ct-slice-thickness" in html and "http" not in html
    assert invoke(runner, "check", "--db", url, "--json", "--html", page).exit_code == 2


def test_planted_problems_are_each_reported_once(
    biobank: tuple[str, Path, Path], runner: CliRunner, tmp_path: Path
) -> None:
    url, key, copies = biobank
    engine = make_engine(url)
    uids = series_uids(engine)
    ct, mr = uids["CT"], uids["MR"]
    [(study,)] = query(engine, "SELECT study_instance_uid FROM imaging_study")
    [(donor, sex_id)] = query(engine, "SELECT pseudonym, sex_id FROM sample_donor")

    # 1. one study, two donors: the MR series moved to another donor
    execute(engine, "INSERT INTO sample_donor (pseudonym, sex_id) VALUES ('planted', :s)", s=sex_id)
    execute(
        engine,
        "UPDATE imaging_series SET sample_donor_id ="
        " (SELECT id FROM sample_donor WHERE pseudonym = 'planted')"
        " WHERE series_instance_uid = :u",
        u=mr,
    )
    # 3. a series without body part
    execute(
        engine,
        "UPDATE imaging_series SET body_part_examined_id = NULL,"
        " body_part_examined_value = NULL, body_part_examined_flag = NULL,"
        " anatomic_region_code = NULL WHERE series_instance_uid = :u",
        u=mr,
    )
    # 4. duplicate SOP Instance UIDs: the schema refuses them ...
    ct_files = sorted((copies / "CT" / "image").glob("*.dcm"))
    original = pydicom.dcmread(ct_files[10])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO imaging_instance (sop_instance_uid, imaging_series_id,"
                " sop_class_uid, content_hash) SELECT sop_instance_uid, imaging_series_id,"
                " sop_class_uid, 'other' FROM imaging_instance WHERE sop_instance_uid = :u"
            ),
            {"u": original.SOPInstanceUID},
        )
    # ... ingest skips a changed copy under the same UID as a duplicate (its report says so)
    other = tmp_path / "other"
    other.mkdir()
    original.SeriesDescription = "changed content, same SOP Instance UID"
    original.save_as(other / "copy.dcm")
    report = tmp_path / "report.jsonl"
    result = invoke(
        runner, "ingest", other, "-c", NB_IMAGING, "--db", url, "--key-file", key,
        "--workers", 0, "--report", report,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [line] = [json.loads(x) for x in report.read_text().splitlines()]
    assert line["status"] == "duplicate" and str(ct_files[10]) in line["reason"]
    # ... and a catalogued file rewritten in place with other content is what check sees
    original.save_as(ct_files[10])
    # 5. a series split across studies: one of its instances names another study
    split = pydicom.dcmread(ct_files[30])
    split.SOPInstanceUID = split.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    split.StudyInstanceUID = other_study = generate_uid()
    (tmp_path / "split").mkdir()
    split.save_as(tmp_path / "split" / "split.dcm")
    result = invoke(
        runner, "ingest", tmp_path / "split", "-c", NB_IMAGING, "--db", url,
        "--key-file", key, "--workers", 0,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # 2. a CT series 7 mm thick (after ingest, which would merge its range again)
    execute(
        engine,
        "UPDATE acquisition_parameters SET slice_thickness = 7, slice_thickness_min = 7,"
        " slice_thickness_max = 7 WHERE imaging_series_id ="
        " (SELECT id FROM imaging_series WHERE series_instance_uid = :u)",
        u=ct,
    )

    code, document = check(runner, url)
    assert code == 1 and document["failed"]
    expected = {
        "study-one-donor": (study, "error"),
        "study-has-series": (other_study, "error"),
        "ct-slice-thickness": (ct, "warning"),
        "series-body-part": (mr, "warning"),
        "instance-file": (original.SOPInstanceUID, "warning"),
    }
    for rule, (uid, severity) in expected.items():
        found = findings(document, rule)
        assert [(f["object"], f["severity"]) for f in found] == [(uid, severity)], rule
    errors = {f["rule"] for f in document["findings"] if f["severity"] == "error"}
    assert errors == {"study-one-donor", "study-has-series"}
    [two] = findings(document, "study-one-donor")
    assert {k: sorted(v) for k, v in two["value"].items()} == {
        donor: sorted([ct, uids["RTSTRUCT"]]),
        "planted": [mr],
    }
    assert "2 donors" in two["reason"] and two["collection"] == NB_IMAGING
    [thick] = findings(document, "ct-slice-thickness")
    assert thick["value"] == 7 and "= 7: above the maximum 5" in thick["reason"]
    assert thick["context"] == {"study_instance_uid": study}
    [body] = findings(document, "series-body-part")
    assert "body_part_examined_value" in body["reason"]
    [changed] = findings(document, "instance-file")
    assert changed["context"]["series_instance_uid"] == ct
    assert str(ct_files[10]) in changed["reason"] and "changed" in changed["reason"]
    [empty] = findings(document, "study-has-series")
    assert empty["collection"] is None
    # the donors without diagnosis: both, at info level
    assert sorted(f["object"] for f in findings(document, "donor-diagnosis")) == sorted(
        [donor, "planted"]
    )
    # one collection: the empty study belongs to none, the rest is the same
    code, one = check(runner, url, "-c", "NB_IMAGING")
    assert code == 1 and findings(one, "study-has-series") == []
    assert len(findings(one, "study-one-donor")) == 1
    # the terminal view groups by severity
    result = invoke(runner, "check", "--db", url)
    assert result.exit_code == 1
    out = result.stdout
    assert out.index("2 errors") < out.index("warnings") < out.index("info")


# ---- rules files (no database needed) ----------------------------------------------------


def test_bad_rules_file_is_a_usage_error_with_file_and_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n"
        "  - id: ct-slice-thickness\n"
        "    max: three\n"
        "  - id: mine\n"
        "    title: Mine\n"
        "    severity: error\n"
        "    scope: series\n"
        "    check: range\n"
        "    field: acquisition_parameters.no_such_column\n"
        "    max: 1\n",
        encoding="utf-8",
    )
    result = invoke(runner, "check", "--rules", bad, "--db", "sqlite:///never-opened.db")
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert f"{bad}:3: rules[0].max: Input should be a valid number" in output
    assert f"{bad}:9: rules[1].field: acquisition_parameters has no column" in output
    assert "2 problems" in output and not Path("never-opened.db").exists()
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - id: x\n    title: [unclosed\n", encoding="utf-8")
    result = invoke(runner, "check", "--rules", broken)
    assert result.exit_code == 2 and f"{broken}:4: (document): not valid YAML" in result.output
    result = invoke(runner, "check", "--rules", tmp_path / "missing.yaml")
    assert result.exit_code == 2 and "cannot read" in result.output


def test_the_default_rules_load_and_list(runner: CliRunner) -> None:
    rules = load_rules()
    assert len({r.rule.id for r in rules}) == len(rules) >= 10
    assert all(r.sources[0].startswith("default:") for r in rules)
    result = invoke(runner, "check", "--list-rules")
    assert result.exit_code == 0 and "study-one-donor" in result.stdout


def test_merging_by_id_and_where_problems_are() -> None:
    base = (
        "rules:\n"
        "  - id: thick\n"
        "    title: Thin slices\n"
        "    severity: warning\n"
        "    scope: series\n"
        "    check: range\n"
        "    field: slice_thickness\n"
        "    max: 5\n"
        "    where: {modality: CT}\n"
        "  - id: gone\n"
        "    title: Off later\n"
        "    severity: info\n"
        "    scope: study\n"
        "    check: study_has_series\n"
    )
    user = (
        "format: imaging-biobank/rules@1\n"
        "rules:\n"
        "  - {id: thick, max: 2.5}\n"
        "  - {id: gone, enabled: false}\n"
        "  - id: body\n"
        "    title: Body part\n"
        "    severity: info\n"
        "    scope: series\n"
        "    check: required\n"
        "    field: [body_part, anatomic_region_code]\n"
    )
    rules = parse_rules([("base", base), ("user", user)])
    assert [r.rule.id for r in rules] == ["thick", "body"]
    thick = rules[0]
    assert thick.rule.parameters()["max"] == 2.5
    assert thick.rule.parameters()["where"] == {"modality": "CT"}
    assert thick.sources == ("base:2", "user:3")
    # a problem in a field the user file changed points at the user file
    with pytest.raises(RulesError) as error:
        parse_rules([("base", base), ("user", "rules:\n  - id: thick\n    min: 9\n")])
    [problem] = error.value.problems
    assert (problem.file, problem.line, problem.field) == ("user", 3, "rules[0].min")
    assert "above max" in problem.message
    # a second rule with the same id in one file; a bad where; a scope the check refuses
    bad = (
        "rules:\n"
        "  - {id: a, title: A, severity: info, scope: study, check: study_has_series}\n"
        "  - {id: a, title: A, severity: info, scope: study, check: study_has_series}\n"
        "  - id: b\n"
        "    title: B\n"
        "    severity: info\n"
        "    scope: donor\n"
        "    check: study_one_donor\n"
        "  - id: c\n"
        "    title: C\n"
        "    severity: info\n"
        "    scope: series\n"
        "    check: required\n"
        "    field: modality\n"
        "    where: {modality: {is: CT}}\n"
        "  - id: d\n"
        "    title: D\n"
        "    severity: info\n"
        "    scope: series\n"
        "    check: range\n"
        "    field: series_number\n"
        "    max: 10\n"
        "    where: {series_number: many, series_date: yesterday, modality: {not: [CT, null]}}\n"
    )
    with pytest.raises(RulesError) as error:
        parse_rules([("bad.yaml", bad)])
    found = {(p.line, p.field): p.message for p in error.value.problems}
    assert "defined twice" in found[(3, "rules[1].id")]
    assert "works on study" in found[(7, "rules[2].scope")]
    assert "{not: value or [values]}" in found[(15, "rules[3].where")]
    assert "'many' is not one" in found[(23, "rules[4].where.series_number")]
    assert "holds date values" in found[(23, "rules[4].where.series_date")]
    assert len(found) == 5


def test_kernel_families() -> None:
    assert normalise("B30f", "alpha_prefix") == "B"
    assert normalise("B70f\\B30f", "alpha_prefix") == "B"
    assert normalise("FC13", "alpha_prefix") == "FC"
    assert normalise("soft", "alpha_prefix") == "SOFT"
    assert normalise("Lung ", "casefold") == "lung"
