"""``export fhir`` and ``import fhir``: MIABIS on FHIR / bbmri.de Bundles with ImagingStudy and
Observations from the demo biobank, validated, resolvable, coded, pseudonymised, stable, and
read back (from our own export, a bbmri.de Bundle and one using the other MIABIS on FHIR URL
form) without losing a MIABIS attribute."""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from imaging_biobank.cli import app as cli
from imaging_biobank.db._schema import metadata
from imaging_biobank.db.engine import make_engine
from imaging_biobank.db.migrate import upgrade
from imaging_biobank.deid.pseudonym import Pseudonymiser, generate_key_file
from imaging_biobank.export import fhir as fhir_module
from imaging_biobank.export import fhir_terms
from imaging_biobank.export.fhir import FhirExport, export_fhir
from imaging_biobank.export.fhir_import import FhirBundleError, FhirImport, import_fhir
from imaging_biobank.vocab import catalog
from tests.conftest import EXAMPLE, ROOT

T = metadata.tables
DATA = ROOT / "tests" / "data" / "fhir"
BUNDLE = "bbmri-eric_ID_ES_PRIMAGE.json"
MIABIS_CS = "https://fhir.bbmri-eric.eu/CodeSystem/"
BBMRI_CS = "https://fhir.bbmri.de/CodeSystem/"
SNOMED, DCM = "http://snomed.info/sct", "http://dicom.nema.org/resources/ontology/DCM"
IBSI = "urn:oid:1.2.840.10008.2.16.13"
PSEUDONYM_SYSTEM = "https://imaging-biobank.org/fhir/sid/donor-pseudonym"
VOCABULARY = "https://imaging-biobank.org/fhir/CodeSystem/vocabulary/"
OWN_EXTENSION = "https://imaging-biobank.org/fhir/StructureDefinition/"
MIABIS_TYPES = {"Organization", "Group", "Patient", "Specimen", "Condition"}
BBMRI_SD = "https://fhir.bbmri.de/StructureDefinition/"
ICD10, ORPHA = "http://hl7.org/fhir/sid/icd-10", "http://www.orpha.net"

# the code systems as biobank.md section 3.3 (bbmri.de) and 3.4 (MIABIS on FHIR) list them,
# typed here from the reference, not read from our code-system table
STANDARD_CODES = {
    BBMRI_CS + "StorageTemperature": {
        "temperature2to10",
        "temperature-18to-35",
        "temperature-60to-85",
        "temperatureGN",
        "temperatureLN",
        "temperatureRoom",
        "temperatureOther",
    },
    BBMRI_CS + "SampleMaterialType": {
        "whole-blood",
        "bone-marrow",
        "buffy-coat",
        "dried-whole-blood",
        "peripheral-blood-cells-vital",
        "blood-plasma",
        "blood-serum",
        "ascites",
        "csf-liquor",
        "saliva",
        "stool-faeces",
        "urine",
        "swab",
        "liquid-other",
        "tissue-ffpe",
        "tissue-frozen",
        "tissue-other",
        "dna",
        "rna",
        "derivative-other",
    },
    BBMRI_CS + "CollectionType": {
        "SAMPLE",
        "TWIN_STUDY",
        "RD",
        "NON_HUMAN",
        "BIRTH_COHORT",
        "CASE_CONTROL",
        "COHORT",
        "CROSS_SECTIONAL",
        "DISEASE_SPECIFIC",
        "HOSPITAL",
        "IMAGE",
        "LONGITUDINAL",
        "OTHER",
        "POPULATION_BASED",
        "QUALITY_CONTROL",
    },
    BBMRI_CS + "DataCategory": {
        "BIOLOGICAL_SAMPLES",
        "GENEALOGICAL_RECORDS",
        "IMAGING_DATA",
        "MEDICAL_RECORDS",
        "NATIONAL_REGISTRIES",
        "NAV",
        "OTHER",
        "PHYSIOLOGICAL_BIOCHEMICAL_MEASUREMENTS",
        "SURVEY_DATA",
    },
    MIABIS_CS + "miabis-storage-temperature-cs": {
        "RT",
        "2to10",
        "-18to-35",
        "-60to-85",
        "LN",
        "Other",
    },
    MIABIS_CS + "miabis-sex-cs": {"Male", "Female", "Unknown", "Undifferentiated", "NotApplicable"},
    MIABIS_CS + "miabis-collection-sample-type-cs": {
        "Blood",
        "BuffyCoat",
        "CancerCellLine",
        "DNA",
        "EntireOrgan",
        "Faeces",
        "EmbryoFetal",
        "ImmortalizedCellLine",
        "IsolatedMicrobe",
        "OtherBodyFluid",
        "Plasma",
        "PrimaryCells",
        "PostMortemTissue",
        "RNA",
        "Saliva",
        "Serum",
        "SpecimenEnvironment",
        "Swab",
        "TissueFrozen",
        "TissueFFPE",
        "Urine",
        "Other",
    },
    MIABIS_CS + "miabis-collection-dataset-typeCS": {
        "Lifesyle",
        "Environmental",
        "Physiological",
        "Biochemical",
        "Clinical",
        "Psychological",
        "Genomic",
        "Proteomic",
        "Metabolomic",
        "BodyImage",
        "WholeSlideImage",
        "PhotoImage",
        "GenealogicalRecords",
        "Other",
    },
}


def _code_system(url: str) -> set[str]:
    """The codes the shipped code-system table lists for ``url``."""
    path = ROOT / "src" / "imaging_biobank" / "export" / "data" / "fhir_code_systems.csv"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line[:1] != "#"]
    return {r["code"] for r in csv.DictReader(lines) if r["system"] == url}


def _export(
    url: str, out: Path, profile: str = "miabis", key: Path | None = None
) -> tuple[FhirExport, dict[str, Any]]:
    engine = make_engine(url)
    fingerprint = Pseudonymiser.from_file(key).fingerprint if key else None
    try:
        result = export_fhir(engine, out, profile=profile, key_fingerprint=fingerprint)
    finally:
        engine.dispose()
    return result, json.loads((out / BUNDLE).read_text(encoding="utf-8"))


def _backup(url: str, target: Path) -> str:
    """A copy of a SQLite database made with SQLite's backup API: the engine runs in WAL
    mode, so a copy of the file alone misses what is still in the write-ahead log."""
    source = sqlite3.connect(url.removeprefix("sqlite:///"))
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return f"sqlite:///{target}"


def _sql(url: str, *statements: str) -> None:
    """Run SQL statements on a SQLite database (sqlite3: no bind parameters to mind)."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        with conn:
            for statement in statements:
                conn.execute(statement)
    finally:
        conn.close()


def _resources(bundle: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    found = [e["resource"] for e in bundle["entry"]]
    return [r for r in found if kind is None or r["resourceType"] == kind]


def _profile(resource: dict[str, Any]) -> str:
    return str(resource.get("meta", {}).get("profile", [""])[0])


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _miabis(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The MIABIS part of a Bundle by fullUrl: biobank, collections, donors, samples, their
    diagnoses and other events (Observations without a category)."""
    found = {}
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] in MIABIS_TYPES or (
            r["resourceType"] == "Observation" and "category" not in r
        ):
            found[entry["fullUrl"]] = r
    return found


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another key than the biobank's: an import with it pseudonymises every identifier."""
    return generate_key_file(tmp_path_factory.mktemp("fhir_key") / "import.key")


@pytest.fixture(scope="module")
def biobank_key(full_biobank: str) -> Path:
    """The key full_biobank's pseudonyms were made with (tests.biobanks keeps it beside)."""
    return Path(full_biobank.removeprefix("sqlite:///")).parent / "biobank.key"


@pytest.fixture(scope="module")
def current(full_biobank: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of ``full_biobank`` with every collection's derived descriptors recomputed.

    The demo build imports events after the donors' images and samples, and an import
    re-derives only the collection it names, so NB_IMAGING and NB_TISSUE keep diagnoses
    derived before the events came (reported to the lead); the import here re-derives every
    collection it touches, so a round trip compares against a current database."""
    from imaging_biobank.catalogue.descriptors import derive_descriptors

    url = _backup(full_biobank, tmp_path_factory.mktemp("fhir_current") / "biobank.db")
    engine = make_engine(url)
    with engine.begin() as conn:
        for collection_id in conn.execute(select(T["collection"].c.id)).scalars():
            derive_descriptors(conn, int(collection_id))
    engine.dispose()
    return url


Exported = tuple[FhirExport, dict[str, Any], Path]


def _exported(url: str, out: Path, profile: str, key: Path) -> Exported:
    """An export with the biobank's key: its result, the Bundle and its path."""
    result, bundle = _export(url, out, profile, key)
    return result, bundle, out / BUNDLE


@pytest.fixture(scope="module")
def exported_current(current: str, biobank_key: Path, tmp_path_factory: Any) -> Exported:
    return _exported(current, tmp_path_factory.mktemp("fhir_current"), "miabis", biobank_key)


@pytest.fixture(scope="module")
def exported(full_biobank: str, biobank_key: Path, tmp_path_factory: Any) -> Exported:
    return _exported(full_biobank, tmp_path_factory.mktemp("fhir_miabis"), "miabis", biobank_key)


@pytest.fixture(scope="module")
def exported_bbmri(current: str, biobank_key: Path, tmp_path_factory: Any) -> Exported:
    return _exported(current, tmp_path_factory.mktemp("fhir_bbmri"), "bbmri-de", biobank_key)


# a copy of the demo with what the demo lacks: a series with a legacy SNOMED CT anatomic
# region code (CHEST 43799004, its body part term the current 816094009) and one with a SNOMED
# CT code but no term; a study whose series belong to two donors; a sample and an e-form
# answer with free text; a biobank without a description; a collection whose Organization
# cannot be written
LEGACY_SERIES, UNTERMED_SERIES, MOVED_SERIES = 21, 12, 33
ALTERATIONS = (
    "UPDATE imaging_series SET body_part_examined_id = (SELECT b.id FROM body_part_examined b"
    " JOIN vocabulary v ON v.id = b.vocabulary_id WHERE b.code = 'CHEST' AND b.snomed_code ="
    " '816094009'), anatomic_region_scheme = 'SCT', anatomic_region_code = '43799004',"
    f" anatomic_region_meaning = 'Chest' WHERE id = {LEGACY_SERIES}",
    "UPDATE imaging_series SET body_part_examined_id = NULL, anatomic_region_scheme = 'SCT',"
    " anatomic_region_code = '818981001', anatomic_region_meaning = 'Abdomen'"
    f" WHERE id = {UNTERMED_SERIES}",
    "UPDATE imaging_series SET sample_donor_id = (SELECT sample_donor_id FROM imaging_series"
    f" WHERE id = 35) WHERE id = {MOVED_SERIES}",
    "UPDATE sample SET anatomical_site_free_text = 'left adrenal, seen by Dr Fulano'"
    " WHERE anatomical_site_code = 'C74.0'",
    "UPDATE clinical_value SET raw = 'seen by Dr Fulano', value_code = NULL, code_system ="
    " NULL, value_number = NULL, value_date = NULL WHERE id = (SELECT min(v.id) FROM"
    " clinical_value v JOIN e_form_field f ON f.id = v.e_form_field_id WHERE f.name ="
    " 'diagnosis_icd10')",
    "UPDATE biobank SET description = NULL",
    "UPDATE collection SET name = '' WHERE identifier LIKE '%:NB_CLINICAL'",
)


@pytest.fixture(scope="module")
def altered(full_biobank: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _backup(full_biobank, tmp_path_factory.mktemp("fhir_altered") / "biobank.db")
    _sql(url, *ALTERATIONS)
    return url


@pytest.fixture(scope="module")
def exported_altered(
    altered: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[FhirExport, dict[str, Any]]]:
    return {
        profile: _export(altered, tmp_path_factory.mktemp(f"fhir_altered_{profile}"), profile)
        for profile in ("miabis", "bbmri-de")
    }


def _fresh(url: str) -> str:
    """``url`` upgraded to the current schema and vocabularies, nothing else."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


# what the export leaves out by design: free text and birth dates but their year
NOT_EXPORTED = ("donor birth date", "event description", "sample free text")


def _miabis_rows(url: str) -> dict[str, set[tuple[Any, ...]]]:
    """Every MIABIS attribute of the biobank, collections, donors, samples and events in a
    database, by value (codes, not row ids), for comparing two databases; the collections'
    descriptors with their origin (declared or derived)."""
    queries = {
        "biobank": "SELECT b.identifier, b.acronym, b.name, b.url, b.description, c.code,"
        " j.name, jc.code, j.url, ci.identifier FROM biobank b JOIN country c ON c.id ="
        " b.country_id JOIN juristic_person j ON j.id = b.juristic_person_id LEFT JOIN country"
        " jc ON jc.id = j.country_id LEFT JOIN contact_information ci ON ci.id = b.contact_id",
        # contacts of the biobank and its collections (a MIABIS study's, not exported, aside)
        "contact": "SELECT identifier, first_name, last_name, role, phone, email, address, zip,"
        " city, juristic_person, department, orcid FROM contact_information WHERE id IN"
        " (SELECT contact_id FROM biobank UNION SELECT contact_information_id FROM"
        " collection_contact_information)",
        "collection": "SELECT c.identifier, c.kind, c.acronym, c.name, c.description, c.url,"
        " p.identifier, c.age_low, c.age_high, u.code, c.access_fee, c.access_joint_project,"
        " c.access_description, c.access_uri, c.collaboration_commercial,"
        " c.collaboration_non_for_profit FROM collection c LEFT JOIN collection p ON p.id ="
        " c.parent_collection_id LEFT JOIN age_unit u ON u.id = c.age_unit_id",
        "collection links": "SELECT c.identifier, 'type', t.code FROM collection c JOIN"
        " collection_collection_category l ON l.collection_id = c.id JOIN collection_category t"
        " ON t.id = l.collection_category_id UNION SELECT c.identifier, 'category', t.code FROM"
        " collection c JOIN collection_data_category l ON l.collection_id = c.id JOIN"
        " data_category t ON t.id = l.data_category_id UNION SELECT c.identifier, 'contact',"
        " t.identifier FROM collection c JOIN collection_contact_information l ON"
        " l.collection_id = c.id JOIN contact_information t ON t.id = l.contact_information_id",
        "collection descriptors": "SELECT c.identifier, 'sex', t.code, '', l.origin FROM"
        " collection c JOIN collection_sex l ON l.collection_id = c.id JOIN sex t ON t.id ="
        " l.sex_id UNION SELECT c.identifier, 'disease', t.code, '', l.origin FROM collection c"
        " JOIN collection_disease l ON l.collection_id = c.id JOIN disease t ON t.id ="
        " l.disease_id UNION SELECT c.identifier, 'material', t.code, v.name, l.origin FROM"
        " collection c JOIN sample_tissue_collection_material_type l ON"
        " l.sample_tissue_collection_id = c.id JOIN material_type t ON t.id = l.material_type_id"
        " JOIN vocabulary v ON v.id = t.vocabulary_id UNION SELECT c.identifier, 'temperature',"
        " t.code, v.name, l.origin FROM collection c JOIN"
        " sample_tissue_collection_storage_temperature l ON l.sample_tissue_collection_id = c.id"
        " JOIN storage_temperature t ON t.id = l.storage_temperature_id JOIN vocabulary v ON"
        " v.id = t.vocabulary_id",
        "donor": "SELECT d.pseudonym, s.code, substr(d.birth_date, 1, 4) FROM sample_donor d"
        " JOIN sex s ON s.id = d.sex_id",
        "donor birth date": "SELECT pseudonym, birth_date FROM sample_donor",
        "donor links": "SELECT d.pseudonym, t.code FROM sample_donor d JOIN"
        " sample_donor_miabis_dataset_type l ON l.sample_donor_id = d.id JOIN"
        " miabis_dataset_type t ON t.id = l.miabis_dataset_type_id UNION SELECT d.pseudonym,"
        " t.code FROM sample_donor d JOIN sample_donor_use_access_condition l ON"
        " l.sample_donor_id = d.id JOIN use_access_condition t ON t.id ="
        " l.use_access_condition_id",
        "sample": "SELECT c.identifier, s.identifier, d.pseudonym, m.code, t.code,"
        " s.creation_date, s.anatomical_site_ontology, s.anatomical_site_version,"
        " s.anatomical_site_code, s.anatomical_site_description, src.code FROM sample s JOIN"
        " collection c ON c.id = s.collection_id JOIN sample_donor d ON d.id = s.sample_donor_id"
        " JOIN material_type m ON m.id = s.material_type_id LEFT JOIN storage_temperature t ON"
        " t.id = s.storage_temperature_id LEFT JOIN sample_source src ON src.id ="
        " s.sample_source_id",
        "sample free text": "SELECT identifier, anatomical_site_free_text FROM sample",
        "sample links": "SELECT s.identifier, x.code FROM sample s JOIN sample_disease l ON"
        " l.sample_id = s.id JOIN disease x ON x.id = l.disease_id UNION SELECT s.identifier,"
        " x.code FROM sample s JOIN sample_use_access_condition l ON l.sample_id = s.id JOIN"
        " use_access_condition x ON x.id = l.use_access_condition_id",
        "event": "SELECT e.identifier, d.pseudonym, e.event_type, e.event_date, e.age_at_event,"
        " u.code, x.code FROM event e JOIN sample_donor d ON d.id = e.sample_donor_id LEFT JOIN"
        " age_unit u ON u.id = e.age_unit_id LEFT JOIN disease x ON x.id = e.disease_id",
        "event description": "SELECT identifier, description FROM event",
    }
    engine = create_engine(url)
    with engine.connect() as conn:
        found = {name: {tuple(r) for r in conn.execute(text(q))} for name, q in queries.items()}
    engine.dispose()
    return found


def _exported_part(rows: dict[str, set[tuple[Any, ...]]]) -> dict[str, set[tuple[Any, ...]]]:
    return {k: v for k, v in rows.items() if k not in NOT_EXPORTED}


def _import(url: str, bundle_path: Path, key: Path) -> FhirImport:
    engine = make_engine(url)
    try:
        return import_fhir(engine, bundle_path, Pseudonymiser.from_file(key))
    finally:
        engine.dispose()


def _round_trip(
    bundle_path: Path, url: str, key: Path, out: Path, profile: str = "miabis"
) -> tuple[FhirImport, dict[str, Any]]:
    """Import into ``url`` (made a new database) with ``key``, and export it again."""
    imported = _import(_fresh(url), bundle_path, key)
    result, again = _export(url, out, profile, key)
    assert result.problems == []
    return imported, again


# ---- the export ----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["exported", "exported_bbmri"])
def test_every_bundle_validates_and_every_reference_resolves(
    which: str, request: pytest.FixtureRequest
) -> None:
    result, bundle, path = request.getfixturevalue(which)
    assert result.problems == []
    parsed = Bundle.model_validate_json(path.read_text(encoding="utf-8"))
    assert parsed.type == "transaction"
    assert len(parsed.entry) == len(bundle["entry"]) == sum(f.entries for f in result.files)
    full_urls = set()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
        full_urls.add(entry["fullUrl"])
    assert len(full_urls) == len(bundle["entry"])  # ids are unique
    references = [n["reference"] for n in _walk(bundle) if isinstance(n.get("reference"), str)]
    assert len(references) > len(bundle["entry"])  # a Patient, Group, study, ... each
    assert set(references) <= full_urls
    # the key the pseudonyms were made with, by its fingerprint (never the key)
    (said,) = bundle["meta"]["extension"]
    assert said["url"] == OWN_EXTENSION + "pseudonym-key"
    key = Pseudonymiser.from_file(request.getfixturevalue("biobank_key"))
    assert said["valueString"] == key.fingerprint and key.key.hex() not in path.read_text()


def test_codes_are_in_their_value_sets(
    exported: tuple[FhirExport, dict[str, Any], Path],
    exported_bbmri: tuple[FhirExport, dict[str, Any], Path],
) -> None:
    _, bundle, _ = exported
    _, bbmri, _ = exported_bbmri
    assert {p["gender"] for p in _resources(bundle, "Patient")} <= {
        "male",
        "female",
        "other",
        "unknown",
    }
    modalities = {t.code for t in catalog.terms("modality.cid33")}
    series = [s for study in _resources(bundle, "ImagingStudy") for s in study["series"]]
    coded = [s["modality"] for s in series if "code" in s["modality"]]
    assert coded and all(m["system"] == DCM and m["code"] in modalities for m in coded)
    for s in series:  # a series without a CID 33 modality says so, it is not invented
        if "code" not in s["modality"]:
            absent = s["modality"]["extension"][0]
            assert (
                absent["url"].endswith("/data-absent-reason") and absent["valueCode"] == "unknown"
            )
    sop = re.compile(r"urn:oid:[0-9]+(\.[0-9]+)*")
    assert all(
        i["sopClass"]["system"] == "urn:ietf:rfc:3986" and sop.fullmatch(i["sopClass"]["code"])
        for s in series
        for i in s.get("instance", [])
    )
    icd10 = {t.code for t in catalog.terms("disease.icd-10")}
    codings = [n for n in _walk(bundle) if "system" in n and "code" in n]
    for coding in codings:
        if coding["system"] == "http://hl7.org/fhir/sid/icd-10":
            assert coding["code"] in icd10
        if coding["system"] == "http://unitsofmeasure.org":
            assert " " not in coding["code"] and "^" not in coding["code"]
    checks = {
        MIABIS_CS + "miabis-detailed-samply-type-cs": [
            s["type"] for s in _resources(bundle, "Specimen")
        ],
        MIABIS_CS + "miabis-storage-temperature-cs": [
            p["extension"][0]["valueCodeableConcept"]
            for s in _resources(bundle, "Specimen")
            for p in s.get("processing", [])
        ],
        BBMRI_CS + "SampleMaterialType": [s["type"] for s in _resources(bbmri, "Specimen")],
        BBMRI_CS + "StorageTemperature": [
            e["valueCodeableConcept"]
            for s in _resources(bbmri, "Specimen")
            for e in s["extension"]
            if e["url"].endswith("/StorageTemperature")
        ],
    }
    for system_url, concepts in checks.items():
        allowed = _code_system(system_url)
        assert concepts and allowed
        for concept in concepts:
            profile_code, exact = concept["coding"]
            assert profile_code["system"] == system_url and profile_code["code"] in allowed
            if system_url in STANDARD_CODES:
                assert profile_code["code"] in STANDARD_CODES[system_url]
            # the exact MIABIS term beside it, a term of the vocabulary it names
            assert exact["system"].startswith(VOCABULARY)
            vocabulary = exact["system"].removeprefix(VOCABULARY)
            assert catalog.term(vocabulary, exact["code"]).code == exact["code"]
    # MIABIS check 3: -80 °C is -60to-85 / temperature-60to-85 in the two code systems
    assert "-60to-85" in {
        c["coding"][0]["code"] for c in checks[MIABIS_CS + "miabis-storage-temperature-cs"]
    }
    assert "temperature-60to-85" in {
        c["coding"][0]["code"] for c in checks[BBMRI_CS + "StorageTemperature"]
    }


def test_code_lists_are_the_standards_and_every_code_written_is_in_them(
    exported: tuple[FhirExport, dict[str, Any], Path],
    exported_bbmri: tuple[FhirExport, dict[str, Any], Path],
) -> None:
    """Our code-system table holds the lists of biobank.md 3.3 and 3.4 (bbmri.de's legacy
    detailed material codes besides, each rolling up to a listed one), and every Coding of
    those systems in both Bundles is one of the listed codes."""
    for system_url, listed in STANDARD_CODES.items():
        ours = _code_system(system_url)
        if system_url == BBMRI_CS + "SampleMaterialType":
            path = ROOT / "src" / "imaging_biobank" / "export" / "data" / "fhir_code_systems.csv"
            lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x[:1] != "#"]
            parents = {
                r["code"]: r["parent"] for r in csv.DictReader(lines) if r["system"] == system_url
            }
            assert listed <= ours
            assert all(parents[code] in listed for code in ours - listed)
        else:
            assert ours == listed, system_url
    written = Counter()
    for bundle in (exported[1], exported_bbmri[1]):
        for coding in _walk(bundle):
            if coding.get("system") in STANDARD_CODES and "code" in coding:
                assert coding["code"] in STANDARD_CODES[coding["system"]], coding
                written[coding["system"]] += 1
    assert len(written) == len(STANDARD_CODES)  # each list is used


def test_every_shipped_term_has_a_code_that_reads_back() -> None:
    """Each MIABIS storage temperature, sample type and sex has a code in both profile
    families, and reading that code back gives a term with the same code (the round trip)."""
    collection_codes = {  # MIABIS on FHIR's collection sample types a 2.0 term has
        fhir_terms.material_code(fhir_terms.family("miabis"), t, "collection")
        for t in catalog.terms("material-type.miabis-2.0")
    }
    for key in ("miabis", "bbmri-de"):
        fam = fhir_terms.family(key)
        for info in catalog.vocabularies_of("storage_temperature"):
            for term in catalog.terms(info.name):
                code = fhir_terms.storage_temperature_code(fam, term)
                back = fhir_terms.storage_temperature_term(key, code)
                assert back is not None and fhir_terms.storage_temperature_code(fam, back) == code
        for info in catalog.vocabularies_of("material_type"):
            for term in catalog.terms(info.name):
                for level in ("sample", "collection"):
                    code = fhir_terms.material_code(fam, term, level)
                    if term.code == "Not available":  # a Directory value, no sample type
                        assert code == ""
                        continue
                    system_url = fhir_terms.material_system(fam, level)
                    back = fhir_terms.material_term(fam, system_url, code)
                    assert back is not None, (key, term.code, level)
                    again = fhir_terms.material_code(fam, back, level)
                    if key == "bbmri-de" and again != code:
                        # bbmri.de's catch-alls (liquid-other, tissue-other) read as MIABIS
                        # Other; our export writes the exact term beside them
                        assert back.code == "Other", (term.code, code)
                    elif level == "sample" or key == "bbmri-de" or code in collection_codes:
                        assert again == code, (key, term.code, level)
                    else:  # a collection declares MIABIS 2.0 material types (2.0-14): a
                        # finer collection code (OtherBodyFluid) reads as its 2.0 group
                        assert back.vocabulary == "material-type.miabis-2.0"
    bbmri = fhir_terms.family("bbmri-de")
    vapour = catalog.resolve("storage_temperature", "Liquid nitrogen vapor-phase")
    assert fhir_terms.storage_temperature_code(bbmri, vapour) == "temperatureGN"
    assert fhir_terms.storage_temperature_term("bbmri-de", "temperatureGN") == vapour
    expected = {  # biobank.md section 7, check 7
        "Tissue (FFPE)": "tissue-ffpe",
        "Tissue (Frozen)": "tissue-frozen",
        "Faeces": "stool-faeces",
        "Plasma": "blood-plasma",
    }
    for code, bbmri_code in expected.items():
        term = catalog.term("material-type.miabis-2.0", code)
        assert fhir_terms.material_code(bbmri, term, "sample") == bbmri_code
    for term in catalog.terms("sex.miabis"):  # check 6: Undifferentiated, Not applicable: other
        assert fhir_terms.gender(term) in {"male", "female", "unknown", "other"}
        code = fhir_terms.miabis_sex_code(term)
        assert fhir_terms.term_by_column("sex", "miabis_fhir_code", code) == term
    not_applicable = catalog.resolve("sex", "Not applicable")
    assert fhir_terms.gender(not_applicable) == "other"


def test_bbmri_de_biobank_collection_and_specimen(
    exported_bbmri: tuple[FhirExport, dict[str, Any], Path],
) -> None:
    """biobank.md section 7, checks 13 and 14."""
    _, bundle, _ = exported_bbmri
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    organizations = _resources(bundle, "Organization")
    (biobank,) = [o for o in organizations if _profile(o).endswith("/StructureDefinition/Biobank")]
    assert biobank["identifier"] == [
        {"system": "http://www.bbmri-eric.eu/", "value": "bbmri-eric:ID:ES_PRIMAGE"}
    ]
    urls = Counter(e["url"].rsplit("/", 1)[1] for e in biobank["extension"])
    assert urls["OrganizationDescription"] == 1 and urls["JuridicalPerson"] == 1
    collections = [o for o in organizations if _profile(o).endswith("/Collection")]
    software = [
        o
        for o in organizations
        if {
            "url": OWN_EXTENSION + "collection-kind",
            "valueCoding": {
                "system": "https://imaging-biobank.org/fhir/CodeSystem/collection-kind",
                "code": "software_source_code",
            },
        }
        in o.get("extension", [])
    ]
    # a software collection is no bbmri.de Collection: a plain Organization
    assert software and all("meta" not in o for o in software)
    assert len(collections) + len(software) == len(_resources(bundle, "Group")) > 1
    for collection in collections:
        assert collection["identifier"][0]["system"] == "http://www.bbmri-eric.eu/"
        assert collection["identifier"][0]["value"].startswith(
            "bbmri-eric:ID:ES_PRIMAGE:collection:"
        )
        assert by_url[collection["partOf"]["reference"]] is biobank
    for specimen in _resources(bundle, "Specimen"):
        custodian = [e for e in specimen["extension"] if e["url"].endswith("/Custodian")]
        assert len(custodian) == 1
        target = by_url[custodian[0]["valueReference"]["reference"]]
        assert target in collections and target["name"] == "Neuroblastoma tumour tissue"


def _extension_urls(resource: dict[str, Any]) -> Counter[str]:
    return Counter(e["url"] for e in resource.get("extension", []))


def test_bbmri_de_profile_cardinalities(
    exported_bbmri: tuple[FhirExport, dict[str, Any], Path],
    exported_altered: dict[str, tuple[FhirExport, dict[str, Any]]],
) -> None:
    """biobank.md 3.1-3.2: a bbmri.de Biobank has its OrganizationDescription and
    JuridicalPerson and a head (ADMIN) contact; a Collection its OrganizationDescription, at
    least one CollectionType and DataCategory and a Biobank as partOf; a Specimen's
    SampleDiagnosis codes only from the closed slices' systems; a Condition's onset is a
    dateTime. A resource that cannot claim its profile goes out without the claim, noted."""
    result, bundle, _ = exported_bbmri
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    claimed = Counter(_profile(r) for r in _resources(bundle))
    assert claimed[BBMRI_SD + "Biobank"] == 1 and claimed[BBMRI_SD + "Collection"] > 1
    assert claimed[BBMRI_SD + "Specimen"] > 0 and claimed[BBMRI_SD + "Patient"] > 0
    slices = {ICD10, "http://fhir.de/CodeSystem/dimdi/icd-10-gm", "http://hl7.org/fhir/sid/icd-9"}
    slices.add(BBMRI_CS + "OtherSampleDiagnosis")
    for r in _resources(bundle):
        urls, profile = _extension_urls(r), _profile(r)
        if profile == BBMRI_SD + "Biobank":
            assert urls[BBMRI_SD + "OrganizationDescription"] == 1
            assert urls[BBMRI_SD + "JuridicalPerson"] == 1
            heads = [c for c in r["contact"] if c["purpose"]["coding"][0]["code"] == "ADMIN"]
            assert heads and heads[0]["name"]["family"] and heads[0]["name"]["given"]
        elif profile == BBMRI_SD + "Collection":
            assert urls[BBMRI_SD + "OrganizationDescription"] == 1
            assert urls[BBMRI_SD + "CollectionType"] >= 1 and urls[BBMRI_SD + "DataCategory"] >= 1
            assert _profile(by_url[r["partOf"]["reference"]]) == BBMRI_SD + "Biobank"
        elif profile == BBMRI_SD + "Specimen":
            for e in r["extension"]:
                if e["url"] == BBMRI_SD + "SampleDiagnosis":
                    assert {c["system"] for c in e["valueCodeableConcept"]["coding"]} <= slices
        elif r["resourceType"] == "Condition" and profile == BBMRI_SD + "Condition":
            assert "onsetAge" not in r
    unclaimed = [r for r in _resources(bundle, "Condition") if "meta" not in r]
    assert unclaimed and all("onsetAge" in r for r in unclaimed)  # bbmri.de: dateTime only
    notes = [str(n) for n in result.notices]
    assert sum("onsetAge is not allowed" in n for n in notes) == len(unclaimed)
    assert sum("no bbmri.de" in n and "software_source_code" in n for n in notes) == 3
    # without a biobank description: no Biobank claim, and so no Collection claim either
    altered_result, altered_bundle = exported_altered["bbmri-de"]
    organizations = _resources(altered_bundle, "Organization")
    assert organizations and not any(
        _profile(o) in (BBMRI_SD + "Biobank", BBMRI_SD + "Collection") for o in organizations
    )
    notes = [str(n) for n in altered_result.notices]
    assert any(
        n.startswith("biobank bbmri-eric:ID:ES_PRIMAGE:")
        and "extension(description) is required" in n
        for n in notes
    )
    assert any("partOf does not point at a bbmri.de" in n for n in notes)


def test_miabis_profile_claims_follow_its_rules(
    exported: tuple[FhirExport, dict[str, Any], Path],
) -> None:
    """MIABIS on FHIR: a miabis-collection Group has sex and material type characteristics
    and only ICD-10 diagnoses (an ORPHA code goes in our own diagnosis extension); a
    miabis-observation has an identifier, a specimen and an ICD-10 value; a Condition cannot
    claim miabis-condition (it requires stage.assessment, a report per sample)."""
    result, bundle, _ = exported
    groups = _resources(bundle, "Group")
    profiled = [g for g in groups if _profile(g).endswith("/miabis-collection")]
    assert profiled and len(profiled) < len(groups)
    for group in profiled:
        codes = [c["code"]["coding"][0]["code"] for c in group["characteristic"]]
        assert "Sex" in codes and "MaterialType" in codes
    for group in groups:
        for item in group.get("characteristic", []):
            if item["code"]["coding"][0]["code"] == "Diagnosis":
                assert item["valueCodeableConcept"]["coding"][0]["system"] == ICD10
    orpha = [
        e["valueCoding"]
        for g in groups
        for e in g["extension"]
        if e["url"] == OWN_EXTENSION + "diagnosis"
    ]
    assert {(c["system"], c["code"]) for c in orpha} == {(ORPHA, "635")}
    notes = [str(n) for n in result.notices]
    assert any("orpha.net#635 goes in" in n for n in notes)
    unprofiled = [g for g in groups if "meta" not in g]
    assert all(
        any(g["identifier"][0]["value"] in n and "miabis-collection" in n for n in notes)
        for g in unprofiled
    )
    diagnoses = [
        o
        for o in _resources(bundle, "Observation")
        if o["code"].get("coding", [{}])[0].get("code") == "52797-8"
    ]
    assert diagnoses and all(_profile(o).endswith("/miabis-observation") for o in diagnoses)
    assert all(
        o["identifier"] and o["valueCodeableConcept"]["coding"][0]["system"] == ICD10
        for o in diagnoses
    )
    conditions = _resources(bundle, "Condition")
    assert conditions and all("meta" not in c for c in conditions)
    assert sum("stage.assessment is required" in n for n in notes) == len(conditions)


def test_a_crash_mid_export_leaves_no_bundle(
    full_biobank: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Bundle is written under a temporary name and renamed when complete: an export that
    fails half way leaves the previous file as it was, and nothing else."""
    (tmp_path / BUNDLE).write_text("the previous export", encoding="utf-8")

    def crash(ctx: Any) -> None:
        raise RuntimeError("the disk is gone")

    monkeypatch.setattr(fhir_module, "write_imaging", crash)
    engine = make_engine(full_biobank)
    try:
        with pytest.raises(RuntimeError):
            export_fhir(engine, tmp_path)
    finally:
        engine.dispose()
    assert (tmp_path / BUNDLE).read_text(encoding="utf-8") == "the previous export"
    assert [p.name for p in tmp_path.iterdir()] == [BUNDLE]


def test_a_refused_organization_takes_what_points_at_it(
    exported_altered: dict[str, tuple[FhirExport, dict[str, Any]]],
) -> None:
    """NB_CLINICAL's name is empty, so its Organization is refused: its Group, which points
    at it, is left out and reported too, and every reference of the Bundle resolves."""
    result, bundle = exported_altered["miabis"]
    clinical = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_CLINICAL"
    problems = [str(p) for p in result.problems]
    assert any(p.startswith(f"collection {clinical}: name") for p in problems)
    assert any(
        p.startswith(f"collection {clinical} (Group): it points at")
        and f"collection {clinical}, which was left out" in p
        for p in problems
    )
    assert not any(
        r.get("identifier", [{}])[0].get("value") == clinical
        for r in _resources(bundle, "Group") + _resources(bundle, "Organization")
    )
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    assert {
        n["reference"] for n in _walk(bundle) if isinstance(n.get("reference"), str)
    } <= full_urls


def test_one_imaging_study_per_study_with_the_stored_counts(
    full_biobank: str, exported: tuple[FhirExport, dict[str, Any], Path]
) -> None:
    _, bundle, _ = exported
    by_uid = {s["identifier"][0]["value"]: s for s in _resources(bundle, "ImagingStudy")}
    engine = create_engine(full_biobank)
    st, se, inst = T["imaging_study"], T["imaging_series"], T["imaging_instance"]
    with engine.connect() as conn:
        studies = conn.execute(select(st.c.id, st.c.study_instance_uid)).all()
        series_rows = conn.execute(
            select(se.c.id, se.c.imaging_study_id, se.c.series_instance_uid)
        ).all()
        instances = conn.execute(
            select(inst.c.imaging_series_id, inst.c.sop_instance_uid, inst.c.sop_class_uid)
        ).all()
    engine.dispose()
    assert len(by_uid) == len(studies) > 1
    for study_id, uid in studies:
        resource = by_uid[f"urn:oid:{uid}"]
        assert resource["identifier"][0]["system"] == "urn:dicom:uid"
        ours = {r.series_instance_uid: r.id for r in series_rows if r.imaging_study_id == study_id}
        assert resource["numberOfSeries"] == len(ours) == len(resource["series"])
        written = {s["uid"]: s for s in resource["series"]}
        assert set(written) == set(ours)
        total = 0
        for series_uid, series_id in ours.items():
            stored = {
                (i.sop_instance_uid, i.sop_class_uid)
                for i in instances
                if i.imaging_series_id == series_id
            }
            items = written[series_uid].get("instance", [])
            assert written[series_uid]["numberOfInstances"] == len(items) == len(stored)
            assert {
                (i["uid"], i["sopClass"]["code"].removeprefix("urn:oid:")) for i in items
            } == stored
            total += len(stored)
        assert resource["numberOfInstances"] == total


def test_body_site_is_the_annex_l_snomed_code(
    full_biobank: str, exported: tuple[FhirExport, dict[str, Any], Path]
) -> None:
    _, bundle, _ = exported
    engine = create_engine(full_biobank)
    se = T["imaging_series"]
    with engine.connect() as conn:
        rows = conn.execute(select(se.c.series_instance_uid, se.c.body_part_examined_value))
        parts = {uid: value for uid, value in rows}
    engine.dispose()
    sites = {
        s["uid"]: s.get("bodySite")
        for study in _resources(bundle, "ImagingStudy")
        for s in study["series"]
    }
    # PS3.16 Annex L (current edition): STS_001 is EXTREMITY; pydicom's test files have
    # HEAD, ABDOMEN, CSPINE and the non-standard "WHOLE BODY" (normalised to WHOLEBODY)
    expected = {
        "EXTREMITY": "66019005",
        "HEAD": "69536005",
        "ABDOMEN": "818981001",
        "CSPINE": "122494005",
        "WHOLE BODY": "38266002",
    }
    seen = Counter()
    for uid, value in parts.items():
        if value in expected:
            assert sites[uid] is not None and sites[uid]["system"] == SNOMED
            assert sites[uid]["code"] == expected[value], (uid, value)
            seen[value] += 1
        elif value is None:
            assert sites[uid] is None
    assert seen["EXTREMITY"] and seen["ABDOMEN"] and seen["WHOLE BODY"]


def _series_donors(url: str, ids: tuple[int, ...]) -> dict[int, tuple[str, str, str]]:
    """Series id -> (series UID, study UID, donor pseudonym)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT se.id, se.series_instance_uid, st.study_instance_uid, d.pseudonym FROM"
                " imaging_series se JOIN imaging_study st ON st.id = se.imaging_study_id JOIN"
                " sample_donor d ON d.id = se.sample_donor_id WHERE se.id IN"
                f" ({', '.join(str(i) for i in ids)})"
            )
        ).all()
    engine.dispose()
    return {int(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in rows}


def test_body_site_is_the_current_code_of_the_body_part_term(
    altered: str, exported_altered: dict[str, tuple[FhirExport, dict[str, Any]]]
) -> None:
    """A series whose Anatomic Region Sequence holds the legacy CHEST code 43799004 has the
    body part term CHEST (816094009, as ingest normalises it): that is its bodySite; a series
    with no term found has the sequence's own SNOMED CT code."""
    _, bundle = exported_altered["miabis"]
    found = _series_donors(altered, (LEGACY_SERIES, UNTERMED_SERIES))
    sites = {
        s["uid"]: s.get("bodySite")
        for study in _resources(bundle, "ImagingStudy")
        for s in study["series"]
    }
    assert sites[found[LEGACY_SERIES][0]] == {
        "system": SNOMED,
        "code": "816094009",
        "display": sites[found[LEGACY_SERIES][0]]["display"],
    }
    assert sites[found[UNTERMED_SERIES][0]] == {
        "system": SNOMED,
        "code": "818981001",
        "display": "Abdomen",
    }


def test_a_study_of_two_donors_is_one_imaging_study_per_donor(
    altered: str, exported_altered: dict[str, tuple[FhirExport, dict[str, Any]]]
) -> None:
    """One donor's images are never written under another: the study whose series belong to
    two donors (one series moved in the altered copy) is two ImagingStudies, with distinct
    ids, each with its donor's series; a notice says so."""
    result, bundle = exported_altered["miabis"]
    found = _series_donors(altered, (31, 32, MOVED_SERIES))
    study_uid = found[MOVED_SERIES][1]
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    studies = [
        s
        for s in _resources(bundle, "ImagingStudy")
        if s["identifier"][0]["value"] == f"urn:oid:{study_uid}"
    ]
    assert len(studies) == 2 and studies[0]["id"] != studies[1]["id"]
    written = {}
    for study in studies:
        patient = by_url[study["subject"]["reference"]]
        written[patient["identifier"][0]["value"]] = {s["uid"] for s in study["series"]}
    expected: dict[str, set[str]] = {}
    for series_uid, _, pseudonym in found.values():
        expected.setdefault(pseudonym, set()).add(series_uid)
    assert written == expected and len(expected) == 2
    assert any(study_uid in str(n) and "belong to 2 donors" in str(n) for n in result.notices)


def test_radiomic_observations_derive_from_their_imaging_study(
    full_biobank: str, exported: tuple[FhirExport, dict[str, Any], Path]
) -> None:
    _, bundle, _ = exported
    engine = create_engine(full_biobank)
    ib, se, st = T["imaging_biomarker"], T["imaging_series"], T["imaging_study"]
    with engine.connect() as conn:
        stored = conn.execute(
            select(st.c.study_instance_uid, ib.c.name, ib.c.code, ib.c.value)
            .join(se, se.c.id == ib.c.imaging_series_id)
            .join(st, st.c.id == se.c.imaging_study_id)
        ).all()
    engine.dispose()
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    radiomic = [
        o
        for o in _resources(bundle, "Observation")
        if any(c["coding"][0]["code"] == "imaging" for c in o.get("category", []))
    ]
    assert len(radiomic) == len(stored) > 0
    written = Counter()
    for o in radiomic:
        (source,) = o["derivedFrom"]
        study = by_url[source["reference"]]
        assert study["resourceType"] == "ImagingStudy"
        assert o["subject"] == study["subject"]
        focus = by_url[o["focus"][0]["reference"]]
        assert focus["resourceType"] == "BodyStructure" and focus["patient"] == o["subject"]
        codes = [c["code"] for c in o["code"].get("coding", []) if c["system"] == IBSI]
        uid = study["identifier"][0]["value"].removeprefix("urn:oid:")
        written[
            (uid, o["code"]["text"], codes[0] if codes else None, o["valueQuantity"]["value"])
        ] += 1
    assert written == Counter((r.study_instance_uid, r.name, r.code, r.value) for r in stored)
    volume = next(o for o in radiomic if o["code"]["text"] == "morph_volume")
    assert volume["code"]["coding"][0]["code"] == "RNU0"
    assert volume["valueQuantity"]["code"] == "mm3"  # UCUM, from IBSI's mm^3


def test_clinical_observations_are_coded_with_ucum_units(
    exported: tuple[FhirExport, dict[str, Any], Path],
) -> None:
    _, bundle, _ = exported
    survey = [
        o
        for o in _resources(bundle, "Observation")
        if any(c["coding"][0]["code"] == "survey" for c in o.get("category", []))
    ]
    ldh = [o for o in survey if o["code"].get("coding", [{}])[0].get("code") == "2532-0"]
    assert ldh and all(o["code"]["coding"][0]["system"] == "http://loinc.org" for o in ldh)
    assert {o["valueQuantity"]["code"] for o in ldh} == {"U/L"}
    assert 1450 in {o["valueQuantity"]["value"] for o in ldh}
    # the sex choice is coded in SNOMED CT by its @IB-CHOICE tag
    sexes = [o for o in survey if o["code"]["text"].lower().startswith("sex")]
    assert {c["code"] for o in sexes for c in o["valueCodeableConcept"]["coding"]} <= {
        "248153007",
        "248152002",
    }
    assert {q["name"] for q in _resources(bundle, "Questionnaire")} == {
        "NbDiagnosis",
        "NbFollowUp",
        "DipgClinical",
    }  # the two e-form files define these three forms


def test_no_direct_identifier(exported: tuple[FhirExport, dict[str, Any], Path]) -> None:
    _, bundle, path = exported
    for patient in _resources(bundle, "Patient"):
        assert set(patient) <= {
            "resourceType",
            "id",
            "meta",
            "extension",
            "identifier",
            "gender",
            "birthDate",
        }
        (identifier,) = patient["identifier"]
        assert identifier["system"] == PSEUDONYM_SYSTEM
        assert re.fullmatch(r"[0-9a-f]{32}", identifier["value"])
        assert len(patient.get("birthDate", "")) <= 4
    text = path.read_text(encoding="utf-8")
    sources = set()
    for name in ("neuroblastoma_records.csv", "dipg_records.csv"):
        with (EXAMPLE.parent / "forms" / name).open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                sources.add(row["record_id"])
                if row.get("hospital_number"):
                    sources.add(row["hospital_number"])
    with (EXAMPLE.parent / "samples" / "donors.csv").open(encoding="utf-8") as f:
        sources |= {row["donor_id"] for row in csv.DictReader(f)}
    assert sources and not any(f'"{s}"' in text or s in text for s in sources)
    assert "2016-04" not in text and "2015-11" not in text  # birth months of the donors


def test_no_free_text(
    full_biobank: str,
    exported: tuple[FhirExport, dict[str, Any], Path],
    exported_altered: dict[str, tuple[FhirExport, dict[str, Any]]],
) -> None:
    """Typed text may name the patient: no event description, segment (ROI) label,
    anatomical-site free text or free-text e-form answer is written (noted); segmentations
    keep their neutral identifiers."""
    _, bundle, path = exported
    engine = create_engine(full_biobank)
    with engine.connect() as conn:
        labels = set(conn.execute(text("SELECT label FROM segmentation")).scalars())
        descriptions = set(
            conn.execute(text("SELECT description FROM event WHERE description <> ''")).scalars()
        )
    engine.dispose()
    written = path.read_text(encoding="utf-8")
    assert labels and descriptions
    assert not any(value in written for value in labels | descriptions)
    structures = _resources(bundle, "BodyStructure")
    assert structures and all("description" not in b for b in structures)
    assert all(b["identifier"][0]["value"].endswith("|1") for b in structures)  # segment 1
    _, altered_bundle = exported_altered["miabis"]
    sites = [
        s["collection"]["bodySite"]
        for s in _resources(altered_bundle, "Specimen")
        if "bodySite" in s.get("collection", {})
    ]
    assert sites and all("text" not in site for site in sites)
    assert "Fulano" not in json.dumps(altered_bundle)
    altered_result, _ = exported_altered["miabis"]
    assert any(
        "field diagnosis_icd10: free-text answers are not written" in str(n)
        for n in altered_result.notices
    )


def test_same_database_same_bytes(
    full_biobank: str,
    biobank_key: Path,
    exported: tuple[FhirExport, dict[str, Any], Path],
    tmp_path: Path,
) -> None:
    _, _, path = exported
    _export(full_biobank, tmp_path, key=biobank_key)
    assert (tmp_path / BUNDLE).read_bytes() == path.read_bytes()


def test_cli_exports_one_collection(full_biobank: str, biobank_key: Path, tmp_path: Path) -> None:
    """``--collection`` exports that collection, its samples and the donors it holds;
    ``--key-file`` names the key in the Bundle by its fingerprint."""
    args = ["export", "fhir", str(tmp_path), "-c", "NB_TISSUE", "--db", full_biobank]
    result = CliRunner().invoke(cli, [*args, "--key-file", str(biobank_key)])
    assert result.exit_code == 0, result.output
    bundle = json.loads((tmp_path / BUNDLE).read_text(encoding="utf-8"))
    fingerprint = Pseudonymiser.from_file(biobank_key).fingerprint
    assert bundle["meta"]["extension"][0]["valueString"] == fingerprint
    counts = Counter(r["resourceType"] for r in _resources(bundle))
    engine = create_engine(full_biobank)
    with engine.connect() as conn:
        tissue = conn.execute(
            text("SELECT id FROM collection WHERE identifier = :i"),
            {"i": "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE"},
        ).scalar_one()
        samples = conn.execute(
            text("SELECT count(*) FROM sample WHERE collection_id = :c"), {"c": tissue}
        ).scalar_one()
        donors = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT sample_donor_id FROM sample WHERE collection_id"
                " = :c UNION SELECT sample_donor_id FROM collection_sample_donor WHERE"
                " collection_id = :c) AS d"
            ),
            {"c": tissue},
        ).scalar_one()
    engine.dispose()
    assert counts["Specimen"] == samples > 0 and counts["Group"] == 1
    assert counts["Patient"] == donors > 0 and "ImagingStudy" not in counts
    bad = CliRunner().invoke(
        cli, ["export", "fhir", str(tmp_path), "--profile", "x", "--db", full_biobank]
    )
    assert bad.exit_code == 2 and "miabis" in bad.output


def test_a_key_the_database_does_not_know_is_refused(
    full_biobank: str, biobank_key: Path, tmp_path: Path
) -> None:
    """When the database recorded the key of its de-identification runs, an export naming
    another key would lie about its pseudonyms: a usage error, nothing written."""
    url = _backup(full_biobank, tmp_path / "runs.db")
    _sql(
        url,
        "INSERT INTO deidentification_run (command, started_at, finished_at, os_user, options,"
        " uid_root, accept_burned_in, key_fingerprint, profile_edition, tool_version, counts)"
        " VALUES ('ingest --deidentify', '2024-01-01', '2024-01-01', 'x', '[]', '2.25', 0,"
        " '0123456789abcdef', 'PS3.15 2024b', '0.1.0', '{}')",
    )
    out = tmp_path / "out"
    args = ["export", "fhir", str(out), "--db", url, "--key-file", str(biobank_key)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "0123456789abcdef" in result.output
    assert not out.exists() or not any(out.iterdir())


# ---- the import -----------------------------------------------------------------------------


def test_round_trip_loses_no_miabis_attribute(
    current: str,
    exported_current: tuple[FhirExport, dict[str, Any], Path],
    biobank_key: Path,
    tmp_path: Path,
) -> None:
    """Export, import into a new database with the biobank's key, export again: the same
    MIABIS resources, and in the databases the same MIABIS attributes, declared and derived
    descriptors each as they were; only what the export leaves out by design differs (birth
    dates but their year, free text)."""
    _, bundle, path = exported_current
    url = f"sqlite:///{tmp_path / 'rt.db'}"
    imported, again = _round_trip(path, url, biobank_key, tmp_path / "out")
    assert imported.problems == []
    counts = Counter(r["resourceType"] for r in _resources(bundle))
    assert imported.stored["Patient"] == counts["Patient"] > 0
    assert imported.stored["Specimen"] == counts["Specimen"] > 0
    assert imported.not_imported["ImagingStudy"] == counts["ImagingStudy"] > 0
    before, after = _miabis(bundle), _miabis(again)
    assert {r["resourceType"] for r in before.values()} == MIABIS_TYPES | {"Observation"}
    assert before == after
    original, copy = _miabis_rows(current), _miabis_rows(url)
    assert original["sample"] and original["event"] and original["collection links"]
    descriptors = original["collection descriptors"]
    declared = {r[:4] for r in descriptors if r[4] == "declared"}
    imaging, tissue = (
        f"bbmri-eric:ID:ES_PRIMAGE:collection:{c}" for c in ("NB_IMAGING", "NB_TISSUE")
    )
    # what review found lost: NB_IMAGING's declared Female, NB_TISSUE's declared MIABIS 2.0
    # "Tissue (Frozen)" (its samples hold the 2020 "Tissue (fresh frozen)", derived)
    assert (imaging, "sex", "Female", "") in declared
    assert (tissue, "material", "Tissue (Frozen)", "material-type.miabis-2.0") in declared
    assert {r[4] for r in descriptors} == {"declared", "derived"}
    assert _exported_part(original) == _exported_part(copy)


def test_importing_into_the_database_that_holds_the_data_changes_nothing(
    current: str,
    exported_current: tuple[FhirExport, dict[str, Any], Path],
    biobank_key: Path,
    tmp_path: Path,
) -> None:
    """Our Bundle imported with its key into (a copy of) the database it came from: every
    MIABIS attribute as it was, declared and derived descriptors, events (their identifiers
    match), and what the export leaves out (full birth dates, free text) too."""
    _, _, path = exported_current
    url = _backup(current, tmp_path / "same.db")
    before = _miabis_rows(url)
    imported = _import(url, path, biobank_key)
    assert imported.problems == []
    assert _miabis_rows(url) == before
    assert _count(url, "event") == len(before["event"]) > 0


def test_another_key_pseudonymises_again_and_a_reimport_matches(
    exported_current: tuple[FhirExport, dict[str, Any], Path], key_file: Path, tmp_path: Path
) -> None:
    """Imported with another key than the one the Bundle names, our pseudonyms are source
    identifiers: pseudonymised with that key (and noted); event identifiers too, so importing
    again with that key finds every event again instead of adding it twice."""
    _, bundle, path = exported_current
    url = _fresh(f"sqlite:///{tmp_path / 'other.db'}")
    first = _import(url, path, key_file)
    assert first.problems == []
    assert any("another key" in str(n) for n in first.notices)
    pseudonymiser = Pseudonymiser.from_file(key_file)
    written = {p["identifier"][0]["value"] for p in _resources(bundle, "Patient")}
    stored = {r[0] for r in _miabis_rows(url)["donor"]}
    assert stored == {pseudonymiser.donor(p) for p in written} and not stored & written
    events = _count(url, "event")
    assert events == imported_events(first) > 0
    again = _import(url, path, key_file)
    assert again.problems == [] and _count(url, "event") == events


def imported_events(result: FhirImport) -> int:
    """How many events an import stored (Conditions and event Observations)."""
    return result.stored["Condition"] + result.stored["Observation (event)"]


def test_a_bundle_that_does_not_name_its_key_is_pseudonymised(
    exported_current: tuple[FhirExport, dict[str, Any], Path], biobank_key: Path, tmp_path: Path
) -> None:
    """A Bundle with 32-hex identifiers under our pseudonym system but no key fingerprint
    (any file can claim our system): its identifiers are pseudonymised, never kept."""
    _, bundle, _ = exported_current
    anonymous = {k: v for k, v in bundle.items() if k != "meta"}
    path = tmp_path / "no_key.json"
    path.write_text(json.dumps(anonymous), encoding="utf-8")
    url = _fresh(f"sqlite:///{tmp_path / 'no_key.db'}")
    assert _import(url, path, biobank_key).problems == []
    written = {p["identifier"][0]["value"] for p in _resources(bundle, "Patient")}
    stored = {r[0] for r in _miabis_rows(url)["donor"]}
    assert len(stored) == len(written) and not stored & written


def test_round_trip_through_the_bbmri_de_profile(
    exported_bbmri: tuple[FhirExport, dict[str, Any], Path], biobank_key: Path, tmp_path: Path
) -> None:
    _, bundle, path = exported_bbmri
    imported, again = _round_trip(
        path, f"sqlite:///{tmp_path / 'rt.db'}", biobank_key, tmp_path / "out", "bbmri-de"
    )
    assert imported.problems == []
    assert _miabis(bundle) == _miabis(again)


def test_round_trip_with_the_other_miabis_url_form(
    exported_current: tuple[FhirExport, dict[str, Any], Path], biobank_key: Path, tmp_path: Path
) -> None:
    """The MIABIS-on-FHIR library writes https://fhir.bbmri-eric.eu/fhir/CodeSystem/...:
    the same Bundle in that form reads the same."""
    _, bundle, path = exported_current
    other = tmp_path / "fhir_form.json"
    text = path.read_text(encoding="utf-8").replace(
        "https://fhir.bbmri-eric.eu/", "https://fhir.bbmri-eric.eu/fhir/"
    )
    assert text.count("https://fhir.bbmri-eric.eu/fhir/CodeSystem/") > 50
    other.write_text(text, encoding="utf-8")
    imported, again = _round_trip(
        other, f"sqlite:///{tmp_path / 'rt.db'}", biobank_key, tmp_path / "out"
    )
    assert imported.problems == []
    assert _miabis(bundle) == _miabis(again)


def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = int(conn.execute(select(func.count()).select_from(T[table])).scalar_one())
    engine.dispose()
    return found


def test_a_bbmri_de_bundle_imports(key_file: Path, tmp_path: Path) -> None:
    url = _fresh(f"sqlite:///{tmp_path / 'gba.db'}")
    engine = make_engine(url)
    pseudonymiser = Pseudonymiser.from_file(key_file)
    result = import_fhir(engine, DATA / "bbmri_de.json", pseudonymiser)
    assert result.problems == []
    with engine.connect() as conn:
        collection = conn.execute(
            text("SELECT id, kind, name FROM collection WHERE identifier = :i"),
            {"i": "bbmri-eric:ID:DE_MUSTER:collection:BREAST"},
        ).one()
        types = set(
            conn.execute(
                text(
                    "SELECT t.directory_id FROM collection_collection_category l"
                    " JOIN collection_category t ON t.id = l.collection_category_id"
                    " WHERE l.collection_id = :c"
                ),
                {"c": collection.id},
            ).scalars()
        )
        samples = {
            r.identifier: r
            for r in conn.execute(
                text(
                    "SELECT s.identifier, m.code AS material, t.code AS temperature,"
                    " s.creation_date, d.pseudonym FROM sample s"
                    " JOIN material_type m ON m.id = s.material_type_id"
                    " JOIN storage_temperature t ON t.id = s.storage_temperature_id"
                    " JOIN sample_donor d ON d.id = s.sample_donor_id"
                )
            )
        }
        diagnoses = conn.execute(
            text(
                "SELECT s.identifier, x.code FROM sample_disease l JOIN sample s ON s.id ="
                " l.sample_id JOIN disease x ON x.id = l.disease_id"
            )
        ).all()
        events = conn.execute(
            text("SELECT e.event_date, x.code FROM event e JOIN disease x ON x.id = e.disease_id")
        ).all()
    engine.dispose()
    assert collection.kind == "sample_tissue" and types == {"CASE_CONTROL", "SAMPLE"}
    # a bbmri.de Patient has no identifier: its id is pseudonymised with the key
    assert {s.pseudonym for s in samples.values()} == {pseudonymiser.donor("p-1")}
    # the legacy detailed code rolls up to tissue-frozen; gaseous nitrogen stays the vapour
    # phase (checks 4 and 7 of biobank.md section 7), never liquid nitrogen
    assert samples["s-1"].material == "Tissue (fresh frozen)"
    assert samples["s-1"].temperature == "Liquid nitrogen vapor-phase"
    assert samples["s-1"].creation_date == "2019-03-01"
    assert samples["s-2"].material == "Plasma" and samples["s-2"].temperature == "-60 °C to -85 °C"
    assert diagnoses == [("s-1", "C50.9")]  # "healthy" is no ICD-10 diagnosis
    assert events == [("2019-02-15", "C50.9")]
    assert _count(url, "biobank") == 1 and _count(url, "contact_information") == 1
    tables = ("sample_donor", "sample", "event", "collection", "sample_disease")
    before = {table: _count(url, table) for table in tables}
    engine = make_engine(url)
    again = import_fhir(engine, DATA / "bbmri_de.json", pseudonymiser)  # changes nothing
    engine.dispose()
    assert again.problems == [] and {table: _count(url, table) for table in tables} == before


def test_a_miabis_bundle_in_the_fhir_url_form_imports(key_file: Path, tmp_path: Path) -> None:
    url = _fresh(f"sqlite:///{tmp_path / 'mof.db'}")
    engine = make_engine(url)
    result = import_fhir(
        engine, DATA / "miabis_fhir_url_form.json", Pseudonymiser.from_file(key_file)
    )
    assert result.problems == []
    with engine.connect() as conn:
        sample = conn.execute(
            text(
                "SELECT m.code AS material, t.code AS temperature, s.creation_date FROM sample s"
                " JOIN material_type m ON m.id = s.material_type_id"
                " JOIN storage_temperature t ON t.id = s.storage_temperature_id"
            )
        ).one()
        declared = conn.execute(
            text(
                "SELECT c.age_low, c.age_high, u.code AS unit FROM collection c"
                " JOIN age_unit u ON u.id = c.age_unit_id"
            )
        ).one()
        materials = set(
            conn.execute(
                text(
                    "SELECT m.code FROM sample_tissue_collection_material_type l JOIN"
                    " material_type m ON m.id = l.material_type_id WHERE l.origin = 'declared'"
                )
            ).scalars()
        )
        designs = set(
            conn.execute(
                text(
                    "SELECT t.code FROM collection_collection_category l JOIN"
                    " collection_category t ON t.id = l.collection_category_id"
                )
            ).scalars()
        )
        juristic = conn.execute(text("SELECT name FROM juristic_person")).scalar_one()
        sample_diagnosis = conn.execute(
            text("SELECT x.code FROM sample_disease l JOIN disease x ON x.id = l.disease_id")
        ).scalar_one()
    engine.dispose()
    assert tuple(sample) == ("Tissue (fresh frozen)", "LN", "2011-04-05")
    assert tuple(declared) == (18.0, 65.0, "Years")
    assert materials == {"Tissue (Frozen)"} and designs == {"Case-control"}
    assert juristic == "Masarykův onkologický ústav" and sample_diagnosis == "C50.9"


def test_a_bad_entry_is_reported_and_the_rest_stored(
    exported: tuple[FhirExport, dict[str, Any], Path], key_file: Path, tmp_path: Path
) -> None:
    _, bundle, _ = exported
    broken = json.loads(json.dumps(bundle))
    entries = broken["entry"]
    specimen = next(i for i, e in enumerate(entries) if e["resource"]["resourceType"] == "Specimen")
    sample_type = entries[specimen]["resource"]["type"]
    sample_type["coding"] = [{**sample_type["coding"][0], "code": "NoSuchSampleType"}]
    condition = next(
        i for i, e in enumerate(entries) if e["resource"]["resourceType"] == "Condition"
    )
    del entries[condition]["resource"]["subject"]  # required in R4
    patient = next(i for i, e in enumerate(entries) if e["resource"]["resourceType"] == "Patient")
    entries[patient]["resource"]["gender"] = "F"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    url = _fresh(f"sqlite:///{tmp_path / 'bad.db'}")
    result = CliRunner().invoke(
        cli,
        [
            "import",
            "fhir",
            str(path),
            "--db",
            url,
            "--key-file",
            str(key_file),
            "--report",
            str(tmp_path / "r.jsonl"),
        ],
    )
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    where = {line["path"].rsplit("#", 1)[1]: line["reason"] for line in lines}
    ids = {i: entries[i]["resource"]["id"] for i in (specimen, condition, patient)}
    assert f"Specimen/{ids[specimen]} Specimen.type" in where[str(specimen)]
    assert "NoSuchSampleType" in where[str(specimen)]
    assert f"Condition/{ids[condition]} Condition.subject" in where[str(condition)]
    assert f"Patient/{ids[patient]} Patient.gender" in where[str(patient)]
    assert len(lines) == 3
    counts = Counter(r["resourceType"] for r in _resources(bundle))
    events = counts["Condition"] + sum(
        1 for o in _resources(bundle, "Observation") if "category" not in o and "specimen" not in o
    )
    assert _count(url, "sample") == counts["Specimen"] - 1
    assert _count(url, "sample_donor") == counts["Patient"]
    assert _count(url, "event") == events - 1 and _count(url, "collection") == counts["Group"]


def _write(tmp_path: Path, name: str, bundle: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(bundle) if not isinstance(bundle, str) else bundle, encoding="utf-8")
    return path


def test_collections_without_their_biobank_are_reported_once(
    exported_current: tuple[FhirExport, dict[str, Any], Path], key_file: Path, tmp_path: Path
) -> None:
    _, bundle, _ = exported_current
    entries = [
        e for e in bundle["entry"] if not _profile(e["resource"]).endswith("/miabis-biobank")
    ]
    path = _write(tmp_path, "no_biobank.json", {**bundle, "entry": entries})
    result = _import(_fresh(f"sqlite:///{tmp_path / 'x.db'}"), path, key_file)
    organizations = {
        i: e["resource"]
        for i, e in enumerate(entries)
        if e["resource"]["resourceType"] == "Organization"
        and ":collection:" in e["resource"].get("identifier", [{}])[0].get("value", "")
    }
    reported = [p for p in result.problems if p.element == "Organization.partOf"]
    assert sorted(p.entry for p in reported) == sorted(organizations)
    assert all("its biobank is not in the Bundle" in p.message for p in reported)
    assert result.stored["collection"] == 0


def test_icd_10_gm_diagnoses_read_as_who_icd_10(key_file: Path, tmp_path: Path) -> None:
    """ICD-10-GM (DIMDI and BfArM URLs): a German 5th character is cut (E11.91 is E11.9),
    a mark dropped (G63.2* is G63.2), each with a notice; a code WHO lacks is refused."""
    bundle = json.loads((DATA / "bbmri_de.json").read_text(encoding="utf-8"))
    entries = bundle["entry"]
    condition = next(e for e in entries if e["resource"]["resourceType"] == "Condition")
    condition["resource"]["code"] = {
        "coding": [{"system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "code": "E11.91"}]
    }
    unknown = json.loads(json.dumps(condition))
    unknown["resource"]["id"] = "c-2"
    unknown["fullUrl"] = "http://example.com/Condition/c-2"
    unknown["resource"]["code"]["coding"][0]["code"] = "U99.0!"
    unknown["resource"]["onsetDateTime"] = "2019-04-01"
    entries.append(unknown)
    specimen = entries[3]["resource"]
    specimen["extension"][2]["valueCodeableConcept"]["coding"] = [
        {"system": "http://fhir.de/CodeSystem/dimdi/icd-10-gm", "code": "G63.2*"}
    ]
    url = _fresh(f"sqlite:///{tmp_path / 'gm.db'}")
    result = _import(url, _write(tmp_path, "gm.json", bundle), key_file)
    assert [(p.entry, p.element) for p in result.problems] == [(len(entries) - 1, "Condition.code")]
    assert "U99.0!" in result.problems[0].message
    notes = [str(n) for n in result.notices]
    assert any("ICD-10-GM E11.91 read as WHO ICD-10 E11.9" in n for n in notes)
    assert any("ICD-10-GM G63.2* read as WHO ICD-10 G63.2" in n for n in notes)
    engine = create_engine(url)
    with engine.connect() as conn:
        events = (
            conn.execute(text("SELECT x.code FROM event e JOIN disease x ON x.id = e.disease_id"))
            .scalars()
            .all()
        )
        samples = (
            conn.execute(
                text("SELECT x.code FROM sample_disease l JOIN disease x ON x.id = l.disease_id")
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert events == ["E11.9"] and samples == ["G63.2"]


def _cli_import(path: Path, url: str, key: Path) -> Any:
    return CliRunner().invoke(
        cli, ["import", "fhir", str(path), "--db", url, "--key-file", str(key)]
    )


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": ', "line 1"),
        ('{"resourceType": "Bundle",\n "type": "collection",\n "entry": [}', "line 3 column"),
        (json.dumps({"resourceType": "Bundle", "type": "foo", "entry": []}), "Bundle.type 'foo'"),
        (json.dumps({"resourceType": "Bundle", "entry": []}), "Bundle.type None"),
        (json.dumps({"resourceType": "Patient"}), "not a FHIR Bundle"),
        (json.dumps([{"resourceType": "Bundle"}]), "not a JSON object"),
        (json.dumps({"resourceType": "Bundle", "type": "batch", "entry": {}}), "not a list"),
        (
            json.dumps(
                {
                    "resourceType": "Bundle",
                    "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/Bundle|5.0.0"]},
                    "type": "collection",
                }
            ),
            "FHIR 5.0.0",
        ),
        (
            json.dumps({"resourceType": "Bundle", "type": "collection", "issues": {}}),
            "Bundle.issues is not an R4 element",
        ),
    ],
)
def test_what_is_no_r4_bundle_is_a_usage_error(
    content: str, said: str, key_file: Path, tmp_path: Path
) -> None:
    """Malformed JSON (with where it stops being JSON), a Bundle.type R4 lacks, a Bundle
    that says another FHIR release: nothing is imported, exit 2."""
    url = _fresh(f"sqlite:///{tmp_path / 'x.db'}")
    path = _write(tmp_path, "bad.json", content)
    with pytest.raises(FhirBundleError, match=re.escape(said)):
        _import(url, path, key_file)
    result = _cli_import(path, url, key_file)
    assert result.exit_code == 2 and said in " ".join(result.output.split())
    assert _count(url, "biobank") == 0


def test_entries_it_cannot_read_are_each_reported_once(
    current: str,
    exported_current: tuple[FhirExport, dict[str, Any], Path],
    biobank_key: Path,
    tmp_path: Path,
) -> None:
    """A nested Bundle, a DELETE, an element R4 does not have (said: not FHIR R4?) are each
    reported; a donor refused (its birth year is not the stored one) is reported once, not
    once per collection it is in."""
    _, bundle, _ = exported_current
    broken = json.loads(json.dumps(bundle))
    entries = broken["entry"]
    patients = [e for e in entries if e["resource"]["resourceType"] == "Patient"]
    memberships = Counter(
        m["entity"]["reference"]
        for e in entries
        if e["resource"]["resourceType"] == "Group"
        for m in e["resource"].get("member", [])
    )
    donor = max(patients, key=lambda e: memberships[e["fullUrl"]])
    assert memberships[donor["fullUrl"]] > 1  # in several collections
    donor["resource"]["birthDate"] = "1901"
    r5 = next(e for e in entries if e["resource"]["resourceType"] == "Specimen")
    r5["resource"]["combined"] = "grouped"  # an element of R5's Specimen
    entries.append({"resource": {"resourceType": "Bundle", "type": "collection"}})
    entries.append(
        {
            "resource": {"resourceType": "Patient", "id": "x"},
            "request": {"method": "DELETE", "url": "Patient/x"},
        }
    )
    url = _backup(current, tmp_path / "same.db")
    result = _import(url, _write(tmp_path, "odd.json", broken), biobank_key)
    by_entry = Counter(p.entry for p in result.problems)
    index = entries.index
    assert by_entry[index(donor)] == 1
    assert "birth_date" in next(p.message for p in result.problems if p.entry == index(donor))
    (specimen,) = [p for p in result.problems if p.entry == index(r5)]
    assert specimen.element == "Specimen.combined" and "not FHIR R4?" in specimen.message
    assert "a Bundle inside the Bundle" in next(
        p.message for p in result.problems if p.entry == len(entries) - 2
    )
    assert "DELETE" in next(p.message for p in result.problems if p.entry == len(entries) - 1)
    assert len(result.problems) == 4


# ---- PostgreSQL -----------------------------------------------------------------------------


def test_postgresql_export_and_round_trip(
    full_biobank_pg: str,
    postgres: Any,
    exported: tuple[FhirExport, dict[str, Any], Path],
    exported_current: tuple[FhirExport, dict[str, Any], Path],
    biobank_key: Path,
    tmp_path: Path,
) -> None:
    _, sqlite_bundle, _ = exported
    result, bundle = _export(full_biobank_pg, tmp_path / "pg")
    assert result.problems == []
    Bundle.model_validate(bundle)
    # the PostgreSQL build has its own pseudonymisation key, so donors differ; all else is
    # the same as from SQLite
    assert Counter(r["resourceType"] for r in _resources(bundle)) == Counter(
        r["resourceType"] for r in _resources(sqlite_bundle)
    )
    for kind in ("Organization", "Questionnaire"):
        assert _resources(bundle, kind) == _resources(sqlite_bundle, kind)

    def anonymous(studies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in s.items() if k not in ("subject",)} for s in studies]

    assert anonymous(_resources(bundle, "ImagingStudy")) == anonymous(
        _resources(sqlite_bundle, "ImagingStudy")
    )
    # the round trip into a new PostgreSQL database and out of it again
    _, current_bundle, current_path = exported_current
    target = postgres.create_database(f"fhir_round_trip_{os.getpid()}")
    imported, again = _round_trip(current_path, target, biobank_key, tmp_path / "pg2")
    assert imported.problems == []
    assert _miabis(current_bundle) == _miabis(again)
