"""The query keys that reach the whole model, on real data through the real importers:
e-form fields (the example PRIMAGE forms and records), molecular biomarker results (the
example results file), radiomic features raw and ComBat-harmonised (real pyradiomics output
on pydicom's CT_small, and sva's ComBat test matrix harmonised by the CLI), MIABIS study
membership (the example biobank's study) and sample counts (the example samples file).

Expected donors are worked out here from the input files (or, for harmonised values, from
what the harmonisation stored), never from the query engine. One database per backend is
built for the module, as building it takes a few seconds.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from imaging_biobank.analysis.runs import new_run, software_entry
from imaging_biobank.analysis.store import BiomarkerRow, add_biomarkers
from imaging_biobank.cli import app
from imaging_biobank.db._schema import metadata
from imaging_biobank.db.engine import session_factory
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.model import (
    AcquisitionParameters,
    Collection,
    HarmonisedValue,
    ImagingSeries,
    ModalityInformation,
    TexturalFeatures,
)
from imaging_biobank.query.ast import Leaf, Node, parse_json, parse_text, to_json, to_text
from imaging_biobank.query.engine import compile_query
from imaging_biobank.query.keys import KEYS, QueryKeyError
from tests.biobanks import REFERENCE, imaging_biobank
from tests.conftest import ROOT, SHARED, server_unavailable
from tests.test_ingest import PYDICOM_FILES

FORMS = ROOT / "examples" / "forms"
REGISTRY = ROOT / "examples" / "samples"
PYRADIOMICS = ROOT / "tests" / "data" / "pyradiomics_ct_small.csv"
COMBAT_MATRIX = SHARED / "reference" / "combat" / "testdata.csv"
CT_SMALL = PYDICOM_FILES / "test_files" / "CT_small.dcm"
PHILIPS = "Philips Medical Systems, Inc."
_numbers = itertools.count()


@dataclass
class Biobank:
    """The module's database: its engine and URL, the pseudonymiser its imports used, and
    the series the ComBat matrix went on (with their raw values of ``feature_000``)."""

    engine: Engine
    url: str
    pseudonymiser: Pseudonymiser
    raw_feature_000: dict[int, float]


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    """Exit code and output, the terminal's line wrapping undone."""
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, " ".join(result.output.split())


def reference_series(session: Session, manufacturer: str) -> list[ImagingSeries]:
    """The first four series of the reference collection acquired by a manufacturer."""
    found = session.scalars(
        select(ImagingSeries)
        .join(AcquisitionParameters, AcquisitionParameters.imaging_series_id == ImagingSeries.id)
        .join(
            ModalityInformation,
            ModalityInformation.id == AcquisitionParameters.modality_information_id,
        )
        .join(Collection, Collection.id == ImagingSeries.image_collection_id)
        .where(ModalityInformation.manufacturer == manufacturer, Collection.identifier == REFERENCE)
        .order_by(ImagingSeries.id)
    ).all()
    assert len(found) >= 4, (manufacturer, len(found))
    return list(found[:4])


def store_combat_matrix(engine: Engine) -> dict[int, float]:
    """sva's ComBat test matrix (200 features) as radiomic features of four GE and four
    Philips series of the reference collection; their values of ``feature_000``."""
    with COMBAT_MATRIX.open() as f:
        data = np.array([[float(v) for v in row] for row in list(csv.reader(f))[1:]])
    with session_factory(engine).begin() as session:
        ge, philips = (reference_series(session, name) for name in ("GE MEDICAL SYSTEMS", PHILIPS))
        samples = list(zip(ge + philips, [0, 1, 2, 3, 5, 6, 7, 8], strict=True))
        collection = ge[0].image_collection
        software = software_entry(session, collection, "test radiomics", "0.1")
        analysis = new_run(
            session, collection, "radiomics_import", "matrix", software, {}, ge + philips
        )
        for series, column in samples:
            rows = [
                BiomarkerRow("textural", f"feature_{i:03}", float(data[i, column]))
                for i in range(data.shape[0])
            ]
            add_biomarkers(session, analysis, series, None, rows)
        return {series.id: float(data[0, column]) for series, column in samples}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def biobank(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Biobank]:
    """The example biobank registered; STS_001 and pydicom's test files ingested; the
    example donors, samples, biomarker results, e-forms and records imported through the
    CLI; the ComBat matrix stored and harmonised twice (by manufacturer, then onto the
    Philips batch); pyradiomics' output on CT_small imported."""
    folder = tmp_path_factory.mktemp("keys")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'biobank.db'}"
    else:
        server = request.getfixturevalue("postgres")
        url = server.create_database(f"keys_{os.getpid()}_{next(_numbers)}")
    engine, key_file = imaging_biobank(url, folder)
    runner = CliRunner()
    keyed = ("--db", url, "--key-file", str(key_file))
    for args in (
        ("donors", str(REGISTRY / "donors.csv"), "-c", "NB_TISSUE", *keyed),
        ("samples", str(REGISTRY / "samples.csv"), "-c", "NB_TISSUE", *keyed),
        ("biomarkers", str(REGISTRY / "biomarkers.csv"), "-c", "NB_MOLECULAR", *keyed),
        ("form", str(FORMS / "neuroblastoma.csv"), "-c", "NB_CLINICAL", "--db", url),
        ("records", str(FORMS / "neuroblastoma_records.csv"), "-c", "NB_CLINICAL", *keyed),
        ("form", str(FORMS / "dipg.csv"), "-c", "DIPG_CLINICAL", "--db", url),
        ("records", str(FORMS / "dipg_records.csv"), "-c", "DIPG_CLINICAL", *keyed),
    ):
        code, out = invoke(runner, "import", *args)
        assert code == 0, (args, out)
    raw: dict[int, float] = {}
    if COMBAT_MATRIX.exists():
        raw = store_combat_matrix(engine)
        for options in ((), ("--reference-batch", PHILIPS)):
            code, out = invoke(runner, "harmonise", "combat", "-c", REFERENCE, "--batch",
                               "manufacturer", *options, "--db", url)  # fmt: skip
            assert code == 0, out
    code, out = invoke(runner, "import", "radiomics", str(PYRADIOMICS), "--db", url)
    assert code == 0, out
    yield Biobank(engine, url, Pseudonymiser.from_file(key_file), raw)
    engine.dispose()


def donors(biobank: Biobank, query: str) -> set[str]:
    """The pseudonyms of the donors a text query matches."""
    d = metadata.tables["sample_donor"]
    with biobank.engine.connect() as conn:
        cohort = compile_query(conn, parse_text(query))
        return set(conn.execute(select(d.c.pseudonym).where(d.c.id.in_(cohort.donors))).scalars())


def matching_series(biobank: Biobank, query: str) -> set[int]:
    with biobank.engine.connect() as conn:
        return set(conn.execute(compile_query(conn, parse_text(query)).series).scalars())


def pseudonyms(biobank: Biobank, ids: set[str]) -> set[str]:
    return {biobank.pseudonymiser.donor(i) for i in ids}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


NB = rows(FORMS / "neuroblastoma_records.csv")
DIPG = rows(FORMS / "dipg_records.csv")


def nb(test: Callable[[dict[str, str]], object]) -> set[str]:
    """Record ids of the neuroblastoma records a test on the row holds for."""
    return {r["record_id"] for r in NB if test(r)}


# --- the written forms ------------------------------------------------------------------


def test_text_and_json_forms_round_trip_for_the_new_keys() -> None:
    query = (
        'biomarker."11q loss" = absent and feature."Volume (mm3)" > 3'
        " and eform.nb_diagnosis.ldh between 100 and 500 and samples >= 2"
        " and study = PRIMAGE-NB-DIPG and gene in (MYCN, ALK) and harmonised.8ZQL < 0.2"
        " and eform.inss_stage = 'Stage 4S' and not eform.relapse_date < 2022-01"
    )
    tree = parse_text(query)
    assert isinstance(tree, Node) and len(tree.children) == 9
    assert tree.children[0] == Leaf("biomarker.11q loss", "EQUALS", "absent")
    assert tree.children[1] == Leaf("feature.Volume (mm3)", "GREATER_THAN", 3)
    assert tree.children[2] == Leaf("eform.nb_diagnosis.ldh", "BETWEEN", [100, 500])
    assert tree.children[7] == Leaf("eform.inss_stage", "EQUALS", "Stage 4S")
    assert parse_json(json.dumps(to_json(tree))) == tree
    assert parse_text(to_text(tree)) == tree
    assert 'feature."Volume (mm3)" > 3' in to_text(tree)
    # the Locator form with a name that is not a word, and a value with a non-ASCII sign
    locator = {
        "operand": "AND",
        "children": [
            {"key": "feature.Long axis (mm)", "type": "GREATER_THAN", "value": 20},
            {"key": "storage_temperature", "type": "EQUALS", "value": "-60 °C to -85 °C"},
        ],
    }
    tree = parse_json(locator)
    assert to_text(tree) == (
        'feature."Long axis (mm)" > 20 and storage_temperature = "-60 °C to -85 °C"'
    )
    assert parse_text(to_text(tree)) == tree
    # a key quoted whole reads the same
    assert parse_text('"biomarker.11q loss" = absent') == parse_text(
        'biomarker."11q loss" = absent'
    )


def test_the_keys_list_shows_the_families_with_their_syntax(runner: CliRunner) -> None:
    code, out = invoke(runner, "query", "--keys")
    assert code == 0, out
    for name in ("eform.<field>", "biomarker.<gene|name>", "feature.<name|code>",
                 "harmonised.<name|code>", "gene", "study", "samples"):  # fmt: skip
        assert name in KEYS and name in out


# --- e-form fields ----------------------------------------------------------------------


def test_eform_fields_compare_by_their_type(biobank: Biobank) -> None:
    def check(query: str, record_ids: set[str]) -> None:
        assert record_ids, f"{query}: the example data should hold a donor for it"
        assert donors(biobank, query) == pseudonyms(biobank, record_ids), query

    # numbers with their ranges
    check("eform.ldh > 1000", nb(lambda r: r["ldh"] and float(r["ldh"]) > 1000))
    check("eform.ferritin between 50 and 150",
          nb(lambda r: r["ferritin"] and 50 <= float(r["ferritin"]) <= 150))  # fmt: skip
    # choices by code or label, any case; several at once
    stage_m = nb(lambda r: r["inrg_stage"] == "3")
    check("eform.inrg_stage = M", stage_m)
    check("eform.inrg_stage = 3", stage_m)
    check("eform.inrg_stage in (m, MS)", nb(lambda r: r["inrg_stage"] in ("3", "4")))
    check("eform.inss_stage = 'Stage 4S'", nb(lambda r: r["inss_stage"] == "4s"))
    # a choice coded with SNOMED CT is found by its code too
    check("eform.sex = 248153007", nb(lambda r: r["sex"] == "1"))
    # checkboxes: ticked, or answered and not ticked
    check("eform.metastatic_sites = 'Bone marrow'", nb(lambda r: r["metastatic_sites___1"] == "1"))
    check("eform.metastatic_sites != 'Bone marrow'",
          nb(lambda r: r["metastatic_sites___1"] != "1"))  # fmt: skip
    # yes/no, and dates at the precision written
    relapsed = nb(lambda r: r["relapse"] == "1")
    check("eform.relapse = yes", relapsed)
    check("eform.relapse != no", relapsed)
    check("eform.relapse_date < 2022",
          nb(lambda r: r["relapse_date"] != "" and r["relapse_date"][:4] < "2022"))  # fmt: skip
    check(
        "eform.relapse_date between 2021-01 and 2021-03-15",
        nb(lambda r: r["relapse_date"][:7] >= "2021-01" and r["relapse_date"] <= "2021-03-15"),
    )
    # a field of two forms defined alike is one key (vital status 2 = Dead in both)
    check("eform.vital_status = Dead",
          nb(lambda r: r["vital_status"] == "2")
          | {r["record_id"] for r in DIPG if r["vital_status"] == "2"})  # fmt: skip
    # an ICD-10 value set matches the codes below the one given, in both forms
    c74 = nb(lambda r: r["diagnosis_icd10"].startswith("C74"))
    check("eform.diagnosis_icd10 = C74", c74)
    check("eform.diagnosis_icd10 != C74",
          nb(lambda r: r["diagnosis_icd10"] != "" and not r["diagnosis_icd10"].startswith("C74"))
          | {r["record_id"] for r in DIPG if r["diagnosis_icd10"]})  # fmt: skip
    # the form named when forms differ (age in years here, in months in nb_diagnosis)
    check("eform.dipg_clinical.age_at_diagnosis >= 6",
          {r["record_id"] for r in DIPG if int(r["age_at_diagnosis"]) >= 6})  # fmt: skip
    check("eform.nb_diagnosis.age_at_diagnosis < 12",
          nb(lambda r: int(r["age_at_diagnosis"]) < 12))  # fmt: skip
    # with images: STS_001 is the only donor with both
    check("modality = CT and eform.inrg_stage = M", {"STS_001"} & stage_m)
    # "not" keeps donors without any record, "!=" does not
    without_relapse = donors(biobank, "not eform.relapse = yes")
    assert without_relapse.isdisjoint(pseudonyms(biobank, relapsed))
    assert pseudonyms(biobank, {"PRIMAGE-NB-0007", "PRIMAGE-DIPG-0001"}) <= without_relapse


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("eform.ldhh > 3", r"unknown e-form field 'ldhh' \(did you mean eform\.ldh\?\); fields: "),
        ("eform.ldh > high", r"eform\.ldh \(a number \[U/L\]\) takes a number"),
        ("eform.inrg_stage = M5", r"choices: 1 \(L1\), 2 \(L2\), 3 \(M\), 4 \(MS\)"),
        ("eform.inrg_stage > 2", r"choice .*use =, !=, in, not in"),
        ("eform.relapse = maybe", r"yes/no: give yes, no"),
        ("eform.relapse_date > 15/03/2021", r"is a date: give YYYY, YYYY-MM, YYYY-MM-DD"),
        ("eform.hospital_number = HN-0048213", r"identifier field: its values are never stored"),
        ("eform.record_id = STS_001", r"is the record id"),
        (
            "eform.age_at_diagnosis > 5",
            r"dipg_clinical: number \[a\]; nb_diagnosis: number \[mo\]\);"
            r" write eform\.dipg_clinical\.age_at_diagnosis"
            r" or eform\.nb_diagnosis\.age_at_diagnosis",
        ),
        (
            "eform.nb_follow_up.ldh > 3",
            r"form 'nb_follow_up' has no field 'ldh'; it is a field"
            r" of nb_diagnosis",
        ),
        ("eform.diagnosis_icd10 = C749", r"is not an ICD-10 code"),
        ("gene = MYCNN", r"not an HGNC gene symbol .*did you mean MYCN"),
        ("gene > MYCN", r"takes =, !=, in or not in"),
        (
            "biomarker.MYCN = amplifed",
            r"no result of gene MYCN is 'amplifed' \(did you mean"
            r" amplified.*its results: amplified, not amplified, numbers in \{copies\}",
        ),
        ("biomarker.ALK > 3", r"results of gene ALK are not numbers .*use = or in"),
        ("biomarker.NOPE = 1", r"not an HGNC gene, a LOINC code nor .* results are of: 11q loss"),
        ("feature.JointEnergyy > 0", r"did you mean original_glcm_JointEnergy"),
        ("feature.8ZQL = high", r"numeric feature: give numbers"),
        ("harmonised.8ZQL > 0", r"no harmonised values .*harmonised features: "),
        ("study = PRIMAGE", r"unknown study 'PRIMAGE' .*studies: PRIMAGE-NB-DIPG"),
        ("samples >= two", r"samples takes a number"),
        ("samples >= 1.5", r"give a whole number"),
        ("harmonized.8ZQL > 0", r"did you mean harmonised\.<name\|code>"),
    ],
)
def test_bad_names_and_values_say_what_is_allowed(
    biobank: Biobank, query: str, message: str
) -> None:
    with pytest.raises(QueryKeyError, match=message):
        donors(biobank, query)


# --- molecular biomarkers ---------------------------------------------------------------

RESULTS = rows(REGISTRY / "biomarkers.csv")


def results(test: Callable[[dict[str, str]], object]) -> set[str]:
    """Donor ids of the example biomarker results a test on the row holds for."""
    return {r["donor_id"] for r in RESULTS if test(r)}


def test_genes_and_biomarker_results(biobank: Biobank) -> None:
    def check(query: str, ids: set[str]) -> None:
        assert ids, f"{query}: the example data should hold a donor for it"
        assert donors(biobank, query) == pseudonyms(biobank, ids), query

    mycn = results(lambda r: r["gene"] == "MYCN")
    check("gene = MYCN", mycn)
    check("gene = HGNC:7559", mycn)  # the HGNC id of MYCN
    check("gene in (ALK, MYCN)", results(lambda r: r["gene"] in ("ALK", "MYCN")))
    check("biomarker.MYCN = amplified",
          results(lambda r: r["gene"] == "MYCN" and r["value"] == "amplified"))  # fmt: skip
    check("biomarker.mycn = 'NOT AMPLIFIED'",
          results(lambda r: r["gene"] == "MYCN" and r["value"] == "not amplified"))  # fmt: skip
    numeric = results(lambda r: r["gene"] == "MYCN" and r["unit"] and float(r["value"]) >= 10)
    check("biomarker.MYCN >= 10", numeric)
    check("biomarker.MYCN != amplified",
          mycn - results(lambda r: r["gene"] == "MYCN" and r["value"] == "amplified"))  # fmt: skip
    # by the name it was reported with (no gene), and by its variant
    check('biomarker."11q loss" = absent',
          results(lambda r: r["biomarker"] == "11q loss" and r["value"] == "absent"))  # fmt: skip
    check("biomarker.ALK = p.F1174L", results(lambda r: r["variant"] == "p.F1174L"))
    # "!=" on a gene: donors without a result on it
    others = donors(biobank, "gene != ALK")
    assert others.isdisjoint(pseudonyms(biobank, results(lambda r: r["gene"] == "ALK")))
    assert pseudonyms(biobank, mycn - results(lambda r: r["gene"] == "ALK")) <= others
    # a gene of the list without results is no error: nobody has it
    assert donors(biobank, "gene = TP53") == set()


# --- radiomic features ------------------------------------------------------------------


def ct_small_features() -> dict[str, list[float]]:
    return {
        name: [float(r[name]) for r in rows(PYRADIOMICS)]
        for name in ("original_glcm_JointEnergy", "original_firstorder_Mean")
    }


def test_raw_features_are_series_criteria(biobank: Biobank) -> None:
    ct_small = biobank.pseudonymiser.donor(pydicom.dcmread(CT_SMALL).PatientID)
    energy = ct_small_features()["original_glcm_JointEnergy"]
    low, high = min(energy), max(energy)
    # by IBSI code (8ZQL: joint energy) or by pyradiomics' name: the same values
    assert donors(biobank, f"feature.8ZQL between {low} and {high}") == {ct_small}
    assert donors(biobank, f"feature.IBSI:8ZQL <= {low}") == {ct_small}
    assert donors(biobank, f"feature.original_glcm_JointEnergy >= {high}") == {ct_small}
    assert donors(biobank, f"feature.8ZQL > {high}") == set()
    # with other series criteria the feature is of the one series that meets them all
    assert donors(biobank, f"modality = CT and feature.8ZQL >= {low}") == {ct_small}
    assert donors(biobank, f"modality = MR and feature.8ZQL >= {low}") == set()
    if not biobank.raw_feature_000:
        server_unavailable(f"{COMBAT_MATRIX} is missing (../shared beside the clone)")
    with Session(biobank.engine) as session:
        modality = dict(
            session.execute(select(ImagingSeries.id, ImagingSeries.modality_value)).all()
        )
        donor_of = dict(
            session.execute(select(ImagingSeries.id, ImagingSeries.sample_donor_id)).all()
        )
    raw = biobank.raw_feature_000
    for threshold in (2.0, 5.0, 8.0):
        for mod in ("CT", "MR"):
            query = f"modality = {mod} and feature.feature_000 > {threshold}"
            expected = {s for s, v in raw.items() if modality[s] == mod and v > threshold}
            assert matching_series(biobank, query) == expected, query
    # CT at > 5: no CT series has it, though a donor with such CT series has MR series with
    # it; a per-donor reading would have found that donor
    assert not any(modality[s] == "CT" and v > 5 for s, v in raw.items())
    mixed = {donor_of[s] for s, v in raw.items() if modality[s] == "MR" and v > 5}
    mixed &= {donor_of[s] for s in raw if modality[s] == "CT"}
    assert mixed and donors(biobank, "modality = CT and feature.feature_000 > 5") == set()
    # != : series with the feature, none of whose values is the one given
    some = next(iter(raw))
    assert matching_series(biobank, f"feature.feature_000 != {raw[some]}") == set(raw) - {some}


def test_harmonised_values_are_those_of_the_latest_run(biobank: Biobank) -> None:
    if not biobank.raw_feature_000:
        server_unavailable(f"{COMBAT_MATRIX} is missing (../shared beside the clone)")
    with Session(biobank.engine) as session:
        stored = session.execute(
            select(
                TexturalFeatures.imaging_series_id,
                HarmonisedValue.image_analysis_id,
                HarmonisedValue.value,
            )
            .join(HarmonisedValue, HarmonisedValue.imaging_biomarker_id == TexturalFeatures.id)
            .where(TexturalFeatures.name == "feature_000")
        ).all()
    runs = sorted({run_id for _, run_id, _ in stored})
    assert len(runs) == 2
    by_run = {r: {s: v for s, run_id, v in stored if run_id == r} for r in runs}
    latest, earlier, raw = by_run[runs[1]], by_run[runs[0]], biobank.raw_feature_000
    assert set(latest) == set(raw)
    threshold = float(np.median(list(latest.values())))

    def above(values: dict[int, float]) -> set[int]:
        return {s for s, v in values.items() if v > threshold}

    # the threshold tells the three sets of values apart, so the test shows which is read
    assert len({frozenset(above(latest)), frozenset(above(earlier)), frozenset(above(raw))}) == 3
    assert matching_series(biobank, f"harmonised.feature_000 > {threshold}") == above(latest)
    assert matching_series(biobank, f"feature.feature_000 > {threshold}") == above(raw)
    low, high = sorted(latest.values())[1:3]
    assert matching_series(biobank, f"harmonised.feature_000 between {low} and {high}") == {
        s for s, v in latest.items() if low <= v <= high
    }


# --- studies and sample counts ----------------------------------------------------------


def test_study_membership_spans_its_collections(biobank: Biobank) -> None:
    # PRIMAGE-NB-DIPG holds NB_IMAGING, DIPG_IMAGING, NB_TISSUE and NB_CLINICAL
    in_study = (
        {"STS_001"}
        | {r["donor_id"] for r in rows(REGISTRY / "samples.csv")}
        | {r["donor_id"] for r in rows(REGISTRY / "donors.csv")}
        | {r["record_id"] for r in NB}
    )
    assert donors(biobank, "study = PRIMAGE-NB-DIPG") == pseudonyms(biobank, in_study)
    assert donors(biobank, "study = primage-nb-dipg") == pseudonyms(biobank, in_study)
    outside = donors(biobank, "study != PRIMAGE-NB-DIPG")
    assert pseudonyms(biobank, {r["record_id"] for r in DIPG}) <= outside
    assert outside.isdisjoint(pseudonyms(biobank, in_study))
    # collections of every kind hold donors: e-form records and biomarker results too
    assert donors(biobank, "collection = DIPG_CLINICAL") == pseudonyms(
        biobank, {r["record_id"] for r in DIPG}
    )
    assert donors(biobank, "collection = NB_MOLECULAR") == pseudonyms(biobank, results(bool))


def test_sample_counts(biobank: Biobank) -> None:
    samples = rows(REGISTRY / "samples.csv")
    per_donor = {
        d: [s for s in samples if s["donor_id"] == d] for d in {s["donor_id"] for s in samples}
    }
    frozen = {d: sum(s["sample_type"] == "Tissue (fresh frozen)" for s in mine)
              for d, mine in per_donor.items()}  # fmt: skip

    def check(query: str, ids: set[str]) -> None:
        assert ids, f"{query}: the example data should hold a donor for it"
        assert donors(biobank, query) == pseudonyms(biobank, ids), query

    check("samples >= 2", {d for d, mine in per_donor.items() if len(mine) >= 2})
    check("samples = 1", {d for d, mine in per_donor.items() if len(mine) == 1})
    check(
        "samples between 1 and 1 and sex = Female",
        {d for d, mine in per_donor.items() if len(mine) == 1}
        & {r["donor_id"] for r in rows(REGISTRY / "donors.csv") if r["sex"] == "Female"},
    )
    # with sample criteria in the same AND, the samples meeting them are counted
    check("samples >= 1 and material_type = 'Tissue (fresh frozen)'",
          {d for d, n in frozen.items() if n >= 1})  # fmt: skip
    check("samples >= 2 and material_type in ('Tissue (fresh frozen)', 'Tissue (FFPE)')",
          {d for d, mine in per_donor.items()
           if sum(s["sample_type"].startswith("Tissue") for s in mine) >= 2})  # fmt: skip
    # no sample at all, or none of a kind
    none = donors(biobank, "samples = 0")
    assert pseudonyms(biobank, {r["record_id"] for r in DIPG}) <= none
    assert none.isdisjoint(pseudonyms(biobank, set(per_donor)))
    no_frozen = donors(biobank, "samples = 0 and material_type = 'Tissue (fresh frozen)'")
    assert pseudonyms(biobank, {d for d, n in frozen.items() if n == 0}) <= no_frozen
    assert no_frozen.isdisjoint(pseudonyms(biobank, {d for d, n in frozen.items() if n}))


def test_the_cli_answers_with_the_new_keys(biobank: Biobank, runner: CliRunner) -> None:
    code, out = invoke(runner, "query", "gene = MYCN and eform.inrg_stage = M", "--db",
                       biobank.url, "--role", "data_manager", "--json")  # fmt: skip
    assert code == 0, out
    expected = results(lambda r: r["gene"] == "MYCN") & nb(lambda r: r["inrg_stage"] == "3")
    assert json.loads(out)["totals"]["donors"] == len(expected) >= 1
    code, out = invoke(runner, "query", "eform.ldhh > 3", "--db", biobank.url)
    assert code == 2 and "eform.ldh" in out
    code, out = invoke(runner, "query", "eform = 3", "--db", biobank.url)
    assert code == 2 and "eform.<field>" in out  # the syntax, not a bare "unknown key"
