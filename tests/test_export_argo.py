"""``export argo``: the ICGC-ARGO submission of the demo biobank, validated against ARGO's own
dictionary (read from ../shared/reference/argo, never shipped: AGPL-3.0), and its coverage
report checked against the e-form definitions and our mapping file."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from imaging_biobank.cli import app
from imaging_biobank.db.engine import make_engine
from imaging_biobank.export.argo import ArgoExport, check_submission, export_argo
from imaging_biobank.export.argo_dictionary import Dictionary, load_dictionary
from imaging_biobank.export.argo_mapping import load_mapping
from imaging_biobank.export.argo_validate import read_tsv, validate_files
from tests.conftest import ROOT, SHARED
from tests.test_export_omop import copy_database, source_rows

ARGO = SHARED / "reference" / "argo"
MAPPING = ROOT / "src" / "imaging_biobank" / "export" / "data" / "argo_mapping.csv"
SITE_GROUPS = ROOT / "src" / "imaging_biobank" / "export" / "data" / "argo_site_groups.csv"
FORMS = ROOT / "examples" / "forms"


def _csv_rows(path: Path) -> list[dict[str, str]]:
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    ]
    return list(csv.DictReader(lines))


def _raw_schema(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((ARGO / "schemas" / f"{name}.json").read_text())
    return data


def _raw_lists() -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads((ARGO / "references" / "list.json").read_text())
    return data


def _tsvs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.tsv") if not p.name.startswith("report."))


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    return load_dictionary(ARGO)


def _export(url: str, out: Path, dictionary: Dictionary, **options: Any) -> ArgoExport:
    """The ARGO export of the database at ``url`` into ``out``."""
    engine = make_engine(url)
    try:
        return export_argo(engine, out, dictionary, **options)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def exported(
    full_biobank: str, dictionary: Dictionary, tmp_path_factory: pytest.TempPathFactory
) -> ArgoExport:
    return _export(full_biobank, tmp_path_factory.mktemp("argo"), dictionary)


def test_every_value_written_passes_the_dictionary(
    exported: ArgoExport, dictionary: Dictionary
) -> None:
    """Re-read from disk, every cell we filled passes ARGO's types, code lists, regexes,
    ranges and conditional rules; what fails is either a field ARGO requires that our data
    does not hold (an empty cell) or the infant's age, reported as a finding."""
    paths = _tsvs(exported.out_dir)
    assert {p.stem for p in paths} >= {
        "sample_registration",
        "donor",
        "specimen",
        "primary_diagnosis",
        "treatment",
        "follow_up",
        "biomarker",
    }
    for path in paths:
        header, _ = read_tsv(path)
        assert header == dictionary.schema(path.stem).field_names  # schema order
    report = validate_files(dictionary, paths)
    assert report.unchecked == []  # every conditional rule on these rows was checked
    infants = {(f.donor, f.schema, f.field) for f in exported.findings if f.kind == "infant"}
    for issue in report.errors:
        if issue.value:
            _, rows = read_tsv(exported.out_dir / issue.file)
            donor = rows[issue.row - 1]["submitter_donor_id"]
            assert (donor, "primary_diagnosis", "age_at_diagnosis") in infants, issue
            assert (issue.rule, issue.value) == ("range", "0"), issue
    # what the export itself found agrees with the files re-read from disk
    assert {(i.file, i.row, i.field, i.rule) for i in report.errors} == {
        (i.file, i.row, i.field, i.rule) for i in exported.validation.errors
    }


def test_code_lists_and_patterns_hold_by_the_raw_dictionary(exported: ArgoExport) -> None:
    """An oracle apart from our validator: each value we wrote is in the field's code list
    and matches its regex, read straight from the dictionary's JSON."""
    lists, regexes = _raw_lists(), json.loads((ARGO / "references" / "regex.json").read_text())
    checked = 0
    for path in _tsvs(exported.out_dir):
        fields = {f["name"]: f for f in _raw_schema(path.stem)["fields"]}  # type: ignore[index, union-attr]
        for row in read_tsv(path)[1]:
            for name, value in row.items():
                if not value:
                    continue
                spec = fields[name]
                restrictions = spec.get("restrictions", {})
                items = value.split("|") if spec.get("isArray") else [value]
                codes = restrictions.get("codeList")
                if isinstance(codes, str):
                    codes = lists[codes.rsplit("/", 1)[-1]]
                pattern = restrictions.get("regex")
                if isinstance(pattern, str) and pattern.startswith("#/regex/"):
                    pattern = regexes[pattern.rsplit("/", 1)[-1]]
                for item in items:
                    if codes is not None:
                        assert item in codes, (path.name, name, item)
                        checked += 1
                    if pattern:
                        assert re.search(pattern, item), (path.name, name, item)
                        checked += 1
    assert checked > 50


def test_registered_samples_are_those_with_an_analyte(
    exported: ArgoExport, full_biobank: str
) -> None:
    """A sample is registered with the analyte its molecular tests show (our mapping of the
    test method); the others, and donors without a registered sample, are findings."""
    dna_methods = {
        r["source_value"]
        for r in _csv_rows(MAPPING)
        if r["argo_field"] == "sample_type" and r["source_value"] and r["argo_value"]
    }
    rows = source_rows(
        full_biobank,
        "SELECT s.identifier, r.method FROM sample s"
        " LEFT JOIN molecular_biomarker_result r ON r.sample_id = s.id",
    )
    expected = {str(r.identifier) for r in rows if r.method in dna_methods}
    others = {str(r.identifier) for r in rows} - expected
    _, registered = read_tsv(exported.out_dir / "sample_registration.tsv")
    assert {r["submitter_specimen_id"] for r in registered} == expected
    assert all(r["sample_type"] == "Total DNA" for r in registered)
    not_registered = {
        f.message.split()[1].rstrip(":")
        for f in exported.findings
        if f.kind == "not registered" and f.field == "submitter_specimen_id"
    }
    assert not_registered == others
    donors = {r["submitter_donor_id"] for r in registered}
    for name in ("donor", "primary_diagnosis", "treatment", "follow_up", "biomarker"):
        _, rows_ = read_tsv(exported.out_dir / f"{name}.tsv")
        assert {r["submitter_donor_id"] for r in rows_} == donors


def test_coverage_percentage_from_the_forms_and_the_mapping(exported: ArgoExport) -> None:
    """The coverage report lists every field of the exported e-forms and every model
    attribute of the mapping, and its percentage is mapped / all, computed here from the
    REDCap data dictionaries and the mapping file alone."""
    form_fields = []
    for name in ("neuroblastoma.csv", "dipg.csv"):
        with (FORMS / name).open(encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            form_fields += [f"form:{row[1]}.{row[0]}" for row in reader if row]
    mapping = _csv_rows(MAPPING)
    mapped = {r["source"] for r in mapping if r["argo_field"]}
    model = {r["source"] for r in mapping if r["source"].startswith("model:")}
    variables = set(form_fields) | model
    expected = 100 * len(variables & mapped) / len(variables)

    with (exported.out_dir / "report.coverage.tsv").open(encoding="utf-8") as handle:
        listed = {r["source"]: r for r in csv.DictReader(handle, delimiter="\t")}
    assert set(listed) == variables
    assert {s for s, r in listed.items() if r["mapped"] == "yes"} == variables & mapped
    assert all(r["note"] for r in listed.values() if r["mapped"] == "no")  # a reason each
    summary = json.loads((exported.out_dir / "report.json").read_text())
    assert summary["coverage"]["percent"] == round(expected, 1)
    assert exported.coverage_percent == pytest.approx(expected)
    forms_only = [f for f in form_fields]
    assert summary["coverage"]["e_form_percent"] == round(
        100 * len(set(forms_only) & mapped) / len(forms_only), 1
    )


def test_inrg_stage_mycn_alk_reported_as_unmapped(exported: ArgoExport) -> None:
    entries = {e.source: e for e in exported.coverage}
    for name in ("inrg_stage", "mycn_status", "alk_status"):
        entry = entries[f"form:nb_diagnosis.{name}"]
        assert not entry.mapped and entry.note
    lacking = {f.source: f.message for f in exported.findings if f.kind == "no ARGO field"}
    with (FORMS / "neuroblastoma_records.csv").open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    for name in ("inrg_stage", "mycn_status", "alk_status"):
        given = sum(1 for r in records if r[name])
        assert lacking[f"form:nb_diagnosis.{name}"].startswith(f"{given} value(s) not exported")
    biomarkers = lacking["model:molecular_biomarker_result.result"]
    assert "MYCN amplification (2)" in biomarkers and "ALK mutation (2)" in biomarkers
    assert "INRG" in entries["form:nb_diagnosis.inrg_stage"].note


def test_infants_under_one_year_are_reported_not_rounded(
    exported: ArgoExport, full_biobank: str
) -> None:
    """A registered donor diagnosed under 12 months is written 0 completed years (rejected
    by ARGO's range, > 0) with a finding; never 1."""
    rows = source_rows(
        full_biobank,
        "SELECT d.pseudonym, v.value_number FROM clinical_value v"
        " JOIN e_form_field f ON f.id = v.e_form_field_id"
        " JOIN e_form e ON e.id = f.e_form_id"
        " JOIN clinical_record r ON r.id = v.clinical_record_id"
        " JOIN sample_donor d ON d.id = r.sample_donor_id"
        " WHERE e.name = 'nb_diagnosis' AND f.name = 'age_at_diagnosis'",
    )
    _, diagnoses = read_tsv(exported.out_dir / "primary_diagnosis.tsv")
    ages = {r["submitter_donor_id"]: r["age_at_diagnosis"] for r in diagnoses}
    infants = {str(r.pseudonym) for r in rows if r.value_number < 12 and str(r.pseudonym) in ages}
    assert infants  # the demo has one registered infant (8 months)
    assert {f.donor for f in exported.findings if f.kind == "infant"} == infants
    for donor in infants:
        assert ages[donor] == "0"
    errors = {
        (i.file, diagnoses[i.row - 1]["submitter_donor_id"], i.field, i.rule)
        for i in exported.validation.errors
        if i.file == "primary_diagnosis.tsv"
    }
    assert {e for e in errors if e[3] == "range"} == {
        ("primary_diagnosis.tsv", d, "age_at_diagnosis", "range") for d in infants
    }


def test_no_direct_identifier_in_any_file(exported: ArgoExport, full_biobank: str) -> None:
    with (FORMS / "neuroblastoma_records.csv").open(encoding="utf-8") as handle:
        nb = list(csv.DictReader(handle))
    with (FORMS / "dipg_records.csv").open(encoding="utf-8") as handle:
        dipg = list(csv.DictReader(handle))
    secrets = {r["record_id"] for r in nb + dipg} | {r["hospital_number"] for r in nb} - {""}
    with (ROOT / "examples" / "samples" / "donors.csv").open(encoding="utf-8") as handle:
        donors = list(csv.DictReader(handle))
    secrets |= {r["donor_id"] for r in donors} | {
        r["birth_date"] for r in donors if "-" in r["birth_date"]
    }
    for path in exported.out_dir.iterdir():
        content = path.read_text(encoding="utf-8")
        for secret in secrets:
            assert secret not in content, (path.name, secret)
    pseudonyms = {r[0] for r in source_rows(full_biobank, "SELECT pseudonym FROM sample_donor")}
    for path in _tsvs(exported.out_dir):
        assert {r["submitter_donor_id"] for r in read_tsv(path)[1]} <= pseudonyms


def test_hand_edited_tsvs_are_reported_by_file_row_and_field(
    exported: ArgoExport, dictionary: Dictionary, tmp_path: Path, runner: CliRunner
) -> None:
    folder = tmp_path / "edited"
    shutil.copytree(exported.out_dir, folder)

    def edit(file: str, row: int, **values: str) -> None:
        header, rows = read_tsv(folder / file)
        rows[row - 1].update(values)
        lines = ["\t".join(header)] + ["\t".join(r.get(h, "") for h in header) for r in rows]
        (folder / file).write_text("\n".join(lines) + "\n", encoding="utf-8")

    edit("donor.tsv", 1, vital_status="Deceased")  # no cause of death, no survival time
    edit("donor.tsv", 2, survival_time="100")  # alive, with a survival time
    edit("primary_diagnosis.tsv", 1, cancer_type_code="c74.9")
    edit("primary_diagnosis.tsv", 3, cancer_type_code="C749")
    edit("sample_registration.tsv", 1, gender="Unknown")
    edit("specimen.tsv", 1, submitter_specimen_id="SP123")  # an ARGO id, and unregistered
    report = check_submission(folder, dictionary)
    found = {(i.file, i.row, i.field, i.rule) for i in report.errors}
    assert {
        ("donor.tsv", 1, "cause_of_death", "script:donor/ensureDeceased"),
        ("donor.tsv", 1, "survival_time", "script:donor/ensureDeceased"),
        ("donor.tsv", 2, "survival_time", "script:donor/ensureDeceased"),
        ("primary_diagnosis.tsv", 1, "cancer_type_code", "regex"),
        ("primary_diagnosis.tsv", 3, "cancer_type_code", "regex"),
        ("sample_registration.tsv", 1, "gender", "codeList"),
        ("specimen.tsv", 1, "submitter_specimen_id", "argoIdPrefix"),
        ("specimen.tsv", 1, "submitter_specimen_id", "foreignKey"),
    } <= found
    written = (folder / "report.validation.tsv").read_text(encoding="utf-8")
    assert "donor.tsv\t1\tcause_of_death" in written

    result = runner.invoke(
        app,
        ["export", "argo", str(folder), "--check", "--dictionary", str(ARGO)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1, result.output
    assert "c74.9" in result.output and "primary_diagnosis.tsv" in result.output

    # the dictionary's own example files predate its schemas: reported, column by column
    examples = validate_files(dictionary, sorted((ARGO / "example_files").glob("*.tsv")))
    unknown = {(i.file, i.field) for i in examples.errors if i.rule == "unknownField"}
    assert ("donor.tsv", "prior_malignancy") in unknown


def test_a_bad_code_in_the_database_is_reported(
    full_biobank: str, dictionary: Dictionary, tmp_path: Path
) -> None:
    engine = make_engine(copy_database(full_biobank, tmp_path / "broken.db"))
    with engine.begin() as conn:
        target = conn.execute(
            text(
                "SELECT d.pseudonym, v.id FROM clinical_value v"
                " JOIN e_form_field f ON f.id = v.e_form_field_id"
                " JOIN clinical_record r ON r.id = v.clinical_record_id"
                " JOIN sample_donor d ON d.id = r.sample_donor_id"
                " JOIN sample s ON s.sample_donor_id = d.id"
                " WHERE f.name = 'diagnosis_icd10' ORDER BY d.pseudonym"
            )
        ).first()
        assert target is not None
        conn.execute(
            text("UPDATE clinical_value SET raw = 'C749', value_code = 'C749' WHERE id = :i"),
            {"i": target.id},
        )
    try:
        result = export_argo(engine, tmp_path / "out", dictionary)
    finally:
        engine.dispose()
    assert not result.valid
    _, rows = read_tsv(tmp_path / "out" / "primary_diagnosis.tsv")
    bad = [
        i
        for i in result.validation.errors
        if (i.file, i.field, i.rule) == ("primary_diagnosis.tsv", "cancer_type_code", "regex")
    ]
    assert [(rows[i.row - 1]["submitter_donor_id"], i.value) for i in bad] == [
        (target.pseudonym, "C749")
    ]
    assert (tmp_path / "out" / "primary_diagnosis.tsv").exists()  # still written: a draft


def test_our_mapping_names_only_what_the_dictionary_has(dictionary: Dictionary) -> None:
    """Each ARGO field and permitted value in our curation exists in the dictionary."""
    mapping = load_mapping()
    for rule in mapping.rules + mapping.defaults:
        spec = dictionary.schema(rule.schema).field(rule.field)
        assert spec is not None, rule.target
        for value in rule.values.values():
            for item in filter(None, value.split("|")):
                if spec.code_list is not None:
                    assert item in spec.code_list, (rule.target, item)
                if spec.regex is not None:
                    assert re.search(spec.regex, item), (rule.target, item)
    primary_site = dictionary.schema("donor").field("primary_site")
    assert primary_site is not None and primary_site.code_list is not None
    groups = {r["site_group"] for r in _csv_rows(SITE_GROUPS)}
    assert groups == set(primary_site.code_list)


def test_postgres_gives_the_same_submission(
    exported: ArgoExport, full_biobank_pg: str, dictionary: Dictionary, tmp_path: Path
) -> None:
    """The same TSVs from PostgreSQL, once each donor's pseudonym (keyed per build) is
    replaced by the donor's first registered sample id."""
    pg = _export(full_biobank_pg, tmp_path / "pg", dictionary)

    def canonical(folder: Path) -> dict[str, list[str]]:
        _, registered = read_tsv(folder / "sample_registration.tsv")
        names: dict[str, str] = {}
        for row in registered:
            names.setdefault(row["submitter_donor_id"], f"donor-of-{row['submitter_specimen_id']}")
        out = {}
        for path in _tsvs(folder):
            content = path.read_text(encoding="utf-8")
            for pseudonym, name in names.items():
                content = content.replace(pseudonym, name)
            lines = content.splitlines()
            out[path.name] = [lines[0], *sorted(lines[1:])]
        return out

    assert canonical(pg.out_dir) == canonical(exported.out_dir)
    assert pg.coverage == exported.coverage


def test_cli_prints_coverage_and_says_whether_it_validates(
    full_biobank: str, tmp_path: Path, runner: CliRunner
) -> None:
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        ["export", "argo", str(out), "--db", full_biobank, "--dictionary", str(ARGO)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1, result.output  # the demo lacks fields ARGO requires
    summary = json.loads((out / "report.json").read_text())
    assert f"({summary['coverage']['percent']:.1f}%)" in result.output
    assert "form:nb_diagnosis.inrg_stage" in result.output
    assert "does not validate" in result.output
    missing = runner.invoke(app, ["export", "argo", str(out), "--db", full_biobank], env={})
    assert missing.exit_code == 2 and "--dictionary" in missing.output
    unknown = runner.invoke(
        app,
        ["export", "argo", str(out), "--db", full_biobank, "--dictionary", str(ARGO), "-c", "NOPE"],
    )
    assert unknown.exit_code == 2 and "NOPE" in unknown.output


def test_scoped_to_one_clinical_collection(
    full_biobank: str, dictionary: Dictionary, tmp_path: Path
) -> None:
    """Only the DIPG forms: their donors have no registered sample, so nothing is submitted,
    every donor is a finding, and coverage counts the DIPG form alone."""
    result = _export(full_biobank, tmp_path, dictionary, collections=["DIPG_CLINICAL"])
    assert result.files == {}
    assert len([f for f in result.findings if f.kind == "not registered"]) == 3
    forms = {e.source.split(".")[0] for e in result.coverage if e.kind == "e-form field"}
    assert forms == {"form:dipg_clinical"}


def test_javascript_rules_run_as_lectern_runs_them(exported: ArgoExport, tmp_path: Path) -> None:
    """With a JavaScript engine, a dictionary that carries its rules has them run: modules
    (``module.exports``, arrays, ``require``) and compiled strings, both calling styles.
    The rules here are written for this test; ARGO's own are not in the reference copy."""
    folder = tmp_path / "dictionary"
    shutil.copytree(ARGO / "schemas", folder / "schemas")
    shutil.copytree(ARGO / "references", folder / "references")
    rules = folder / "references" / "validationFunctions"
    (rules / "donor").mkdir(parents=True)
    (rules / "common").mkdir()
    (rules / "common" / "deadOnly.js").write_text(
        "module.exports = () => function validate(inputs) {\n"
        "  const dead = inputs.$row.vital_status === 'Deceased';\n"
        "  if (!!inputs.$field !== dead) return {valid: false, message: 'JS: ' + inputs.$name};\n"
        "  return {valid: true, message: 'Ok'};\n"
        "};\n",
        encoding="utf-8",
    )
    (rules / "donor" / "ensureDeceased.js").write_text(
        "const deadOnly = require('../common/deadOnly');\n"
        "const legacy = ($row, $field, $name) => (function () {\n"
        "  const ok = $name !== 'survival_time' || !$field || $field > 0;\n"
        "  return {valid: ok, message: 'JS legacy'};\n"
        "})();\n"
        "module.exports = [deadOnly, legacy];\n",
        encoding="utf-8",
    )
    module_dictionary = load_dictionary(folder)
    submission = tmp_path / "submission"
    shutil.copytree(exported.out_dir, submission)
    header, rows = read_tsv(submission / "donor.tsv")
    rows[0]["cause_of_death"] = "Died of cancer"  # alive, with a cause of death
    lines = ["\t".join(header)] + ["\t".join(r.get(h, "") for h in header) for r in rows]
    (submission / "donor.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = check_submission(submission, module_dictionary)
    flagged = [i for i in report.errors if i.rule == "script:donor/ensureDeceased"]
    assert [(i.row, i.field, i.message, i.checked_by) for i in flagged] == [
        (1, "cause_of_death", "JS: cause_of_death", "javascript")
    ]
    # the same rule compiled into one JSON dictionary, as Lectern serves it
    raw = {
        "name": "test",
        "version": "0.0",
        "schemas": [_raw_schema("donor")],
        "references": {
            "list": _raw_lists(),
            "regex": json.loads((ARGO / "references" / "regex.json").read_text()),
            "script": {
                "donor": {
                    "ensureDeceased": [
                        "function validate(inputs) { const dead = inputs.$row.vital_status"
                        " === 'Deceased'; return {valid: !!inputs.$field === dead,"
                        " message: 'compiled'}; }"
                    ]
                }
            },
        },
    }
    (tmp_path / "compiled.json").write_text(json.dumps(raw), encoding="utf-8")
    compiled = load_dictionary(tmp_path / "compiled.json")
    assert compiled.version == "0.0"
    report = validate_files(compiled, [submission / "donor.tsv"])
    assert [(i.row, i.field, i.message) for i in report.errors] == [
        (1, "cause_of_death", "compiled")
    ]


def _members(url: str, collection: str) -> set[str]:
    """The pseudonyms of a collection's donors: declared members and its records' donors."""
    found = source_rows(
        url,
        "SELECT d.pseudonym FROM sample_donor d WHERE d.id IN"
        " (SELECT l.sample_donor_id FROM collection_sample_donor l"
        " JOIN collection c ON c.id = l.collection_id WHERE c.identifier LIKE :c"
        " UNION SELECT r.sample_donor_id FROM clinical_record r"
        " JOIN collection c ON c.id = r.collection_id WHERE c.identifier LIKE :c)",
        c=f"%:{collection}",
    )
    return {r[0] for r in found}


def test_donors_are_the_collections_members(
    full_biobank: str, dictionary: Dictionary, tmp_path: Path
) -> None:
    """A collection's donors are those the catalogue counts (declared members too), as in
    the other exports: each unregistered one is a finding."""
    result = _export(full_biobank, tmp_path, dictionary, collections=["NB_CLINICAL"])
    unregistered = {
        f.donor
        for f in result.findings
        if (f.kind, f.field) == ("not registered", "submitter_donor_id")
    }
    assert unregistered == _members(full_biobank, "NB_CLINICAL") and len(unregistered) == 7


def test_program_id_is_the_exported_collections_biobank(
    full_biobank: str, dictionary: Dictionary, tmp_path: Path
) -> None:
    """The program id comes from the biobank of the collections exported, not from the
    first biobank in the database; collections of several biobanks are a finding."""
    url = copy_database(
        full_biobank,
        tmp_path / "two.db",
        "INSERT INTO biobank (identifier, acronym, name, juristic_person_id, country_id)"
        " SELECT 'bbmri-eric:ID:FR_OTHER', 'OTHER', 'Another biobank', juristic_person_id,"
        " (SELECT id FROM country WHERE code = 'FR') FROM biobank",
        "UPDATE collection SET biobank_id = (SELECT id FROM biobank WHERE acronym = 'OTHER')"
        " WHERE identifier LIKE '%:NB_MOLECULAR'",
    )
    other = _export(url, tmp_path / "other", dictionary, collections=["NB_MOLECULAR"])
    both = _export(url, tmp_path / "both", dictionary)
    assert other.program_id == "OTHER-FR"
    assert json.loads((tmp_path / "other" / "report.json").read_text())["program_id"] == "OTHER-FR"
    assert not [f for f in other.findings if f.kind == "program"]
    assert both.program_id == "PRIMAGE-ES"
    (several,) = [f for f in both.findings if f.kind == "program"]
    assert "2 biobanks" in several.message and "--program-id" in several.message


def test_day_zero_is_the_diagnosis_age_the_mapping_prefers(
    exported: ArgoExport, full_biobank: str, dictionary: Dictionary, tmp_path: Path
) -> None:
    """Intervals of a donor whose diagnosis has no date count from the age at diagnosis
    that the mapping's rows for primary_diagnosis.age_at_diagnosis give first, read by
    their transform: the e-form's months by default (the age the file states), the
    diagnosis event's age with a mapping that lacks the e-form rows."""
    answer = (
        "SELECT v.{} FROM clinical_value v JOIN e_form_field f ON f.id = v.e_form_field_id"
        " JOIN clinical_record r ON r.id = v.clinical_record_id"
        " WHERE r.sample_donor_id = d.id AND f.name = '{}'"
    )
    (donor,) = source_rows(
        full_biobank,
        "SELECT d.pseudonym, d.birth_date, e.age_at_event, u.ucum_code,"
        f" ({answer.format('value_number', 'age_at_diagnosis')}) AS months,"
        f" ({answer.format('value_date', 'last_follow_up_date')}) AS last"
        " FROM event e JOIN sample_donor d ON d.id = e.sample_donor_id"
        " JOIN age_unit u ON u.id = e.age_unit_id"
        " WHERE e.event_type = 'diagnosis' AND e.event_date IS NULL",
    )
    assert donor.ucum_code == "mo" and donor.months != donor.age_at_event
    lived = (
        dt.date.fromisoformat(donor.last) - dt.date.fromisoformat(f"{donor.birth_date}-01")
    ).days

    def interval(folder: Path) -> str:
        _, rows = read_tsv(folder / "follow_up.tsv")
        (row,) = [r for r in rows if r["submitter_donor_id"] == donor.pseudonym]
        return row["interval_of_followup"]

    assert interval(exported.out_dir) == str(round(lived - donor.months * 365.25 / 12))
    ages = [
        line
        for line in MAPPING.read_text(encoding="utf-8").splitlines()
        if not re.match(r"form:\w+\.age_at_diagnosis,primary_diagnosis,age_at_diagnosis,", line)
    ]
    (tmp_path / "mapping.csv").write_text("\n".join(ages) + "\n", encoding="utf-8")
    by_event = _export(
        full_biobank,
        tmp_path / "by_event",
        dictionary,
        mapping=load_mapping(tmp_path / "mapping.csv"),
    )
    assert interval(by_event.out_dir) == str(round(lived - donor.age_at_event * 365.25 / 12))


def test_nothing_to_submit_is_said_so(full_biobank: str, tmp_path: Path, runner: CliRunner) -> None:
    """With no donor registered with a sample no TSV is written, and the command says there
    is nothing to submit rather than that the submission validates: exit 1 when donors
    were left out for that, 0 when there were none."""
    base = ["export", "argo", "--db", full_biobank, "--dictionary", str(ARGO), "-c"]
    wide = {"COLUMNS": "200"}
    dipg = runner.invoke(app, [*base, "DIPG_CLINICAL", str(tmp_path / "dipg")], env=wide)
    assert dipg.exit_code == 1, dipg.output
    assert "Nothing to submit" in dipg.output and "validates" not in dipg.output
    assert "3 left out" in dipg.output and _tsvs(tmp_path / "dipg") == []
    software = runner.invoke(app, [*base, "RADIOMICS_PIPELINE", str(tmp_path / "none")], env=wide)
    assert software.exit_code == 0, software.output
    assert "Nothing to submit" in software.output and "validates" not in software.output
    assert json.loads((tmp_path / "none" / "report.json").read_text())["empty"] is True
