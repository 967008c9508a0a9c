"""The documented column set of each import file: our names, the MIABIS attribute each one
holds, and the other headers accepted for it (MIABIS codes, readable labels).

Headers match ignoring case, spaces, dashes and underscores, so `Sample ID`, `sample_id`
and `MIABIS-SAMPLE-01` are the same column. A header that is none of these is refused
before anything is stored: a misspelt column must not be silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imaging_biobank.samples.table import TableError


@dataclass(frozen=True)
class Column:
    name: str
    miabis: str  # the MIABIS attribute (or "" for our own)
    meaning: str
    aliases: tuple[str, ...] = ()
    required: bool = False


DONOR = (
    Column(
        "donor_id",
        "SAMPLEDONOR-01",
        "the donor's id at the source; stored only as the"
        " keyed pseudonym (the same as the donor's DICOM PatientID gives)",
        ("donor", "patient_id", "participant_id"),
        True,
    ),
    Column(
        "sex",
        "SAMPLEDONOR-02",
        "Male, Female, Unknown, Undifferentiated, Not applicable"
        " (or the Directory / bbmri.de / FHIR codes)",
        ("gender",),
    ),
    Column(
        "birth_date",
        "SAMPLEDONOR-04",
        "ISO 8601, partial allowed (YYYY, YYYY-MM); needed when an event date is given",
        ("date_of_birth", "birthdate"),
    ),
)
DONOR_ONLY = (
    Column(
        "dataset_type",
        "SAMPLEDONOR-03",
        "MIABIS dataset types, several separated by |",
        ("dataset_types",),
    ),
    Column(
        "use_access_conditions",
        "SAMPLE-11",
        "consent: MIABIS Use & Access conditions or"
        " GA4GH DUO codes (DUO:0000046, NCU, ...), several separated by |",
        ("use_access_condition", "consent", "duo", "data_use"),
    ),
)
EVENT = (
    Column(
        "event_id",
        "EVENT-01",
        "the event's id at the source (optional; made from the other columns when absent)",
        ("event",),
    ),
    Column("event_type", "", "what happened: diagnosis, sample collection, relapse, death, ..."),
    Column(
        "event_date",
        "EVENT-02",
        "ISO 8601, partial allowed; not together with an age",
        ("date_of_event",),
    ),
    Column("age_at_event", "EVENT-03", "a decimal; not together with a date", ("age",)),
    Column(
        "age_unit",
        "EVENT-04",
        "Years, Months, Weeks, Days, Gestational weeks",
        ("age_at_event_unit", "unit_of_age"),
    ),
)
EVENT_ONLY = (
    Column(
        "diagnosis",
        "",
        "ICD-10 (C74.9) or ORPHA (ORPHA:635) code of a diagnosis event",
        ("icd10", "disease"),
    ),
    Column("description", "", "free text (no names or identifiers)"),
)
SAMPLE = (
    Column("sample_id", "SAMPLE-01", "the sample's id in its collection", ("sample",), True),
    Column(
        "sample_type",
        "SAMPLE-02",
        "MIABIS sample type (Tissue (fresh frozen), Plasma,"
        " ...), a MIABIS 2.0 material type or a Directory / bbmri.de code",
        ("material_type", "material"),
        True,
    ),
    Column(
        "storage_temperature",
        "SAMPLE-03",
        "MIABIS label (-60 °C to -85 °C), Directory id"
        " (temperature-60to-85), bbmri.de code or a temperature (-80)",
        ("temperature", "sample_storage_temperature"),
    ),
    Column(
        "creation_date",
        "SAMPLE-04",
        "ISO 8601, partial allowed",
        (
            "sampling_date",
            "collection_date",
            "sample_creation_date",
            "sample_creation_date_and_time",
        ),
    ),
    Column(
        "anatomical_site_ontology",
        "SAMPLE-05-01",
        "e.g. ICD-O-3 (with a version, needed when any anatomical site column is given)",
    ),
    Column("anatomical_site_version", "SAMPLE-05-02", "e.g. 3.2"),
    Column("anatomical_site_code", "SAMPLE-05-03", "e.g. C74.9", ("anatomical_site",)),
    Column("anatomical_site_description", "SAMPLE-05-04", ""),
    Column("anatomical_site_free_text", "SAMPLE-05-05", ""),
    Column(
        "diagnosis",
        "SAMPLE-10",
        "ICD-10 or ORPHA codes of the sample content, several separated by |",
        ("sample_diagnosis", "sample_content_diagnosis", "icd10", "disease"),
    ),
    Column(
        "use_access_conditions",
        "SAMPLE-11",
        "MIABIS conditions or DUO codes, several separated by |",
        ("use_access_condition", "consent", "duo", "data_use"),
    ),
    Column("sample_source", "SAMPLE-12", "Human, Animal, Environment"),
)
BIOMARKER = (
    Column(
        "donor_id",
        "SAMPLEDONOR-01",
        "the donor's id at the source (pseudonymised)",
        ("donor", "patient_id"),
        True,
    ),
    Column("sample_id", "SAMPLE-01", "the sample tested, if the result is per sample"),
    Column("result_id", "", "the result's id at the source (optional)", ("id",)),
    Column(
        "biomarker",
        "",
        "what was tested, as reported: MYCN amplification, ALK mutation, 11q loss, LDH",
        ("test", "marker"),
        True,
    ),
    Column("gene", "", "HGNC symbol or id (MYCN, HGNC:7559)", ("gene_symbol", "hgnc")),
    Column("loinc", "", "LOINC code of a lab test (check digit verified)", ("loinc_code",)),
    Column("method", "", "FISH, NGS, MLPA, IHC, ...", ("technique",)),
    Column(
        "value", "", "a number (with unit) or a category (amplified, positive, ...)", ("result",)
    ),
    Column("unit", "", "UCUM unit of a numeric value (U/L, ng/mL, 1, %)", ("units",)),
    Column(
        "variant",
        "",
        "HGVS or free description of the alteration (p.F1174L)",
        ("hgvs", "alteration_detail"),
    ),
    Column("result_date", "", "ISO 8601, partial allowed", ("date",)),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "donors": DONOR + DONOR_ONLY,
    "samples": SAMPLE[:1] + DONOR + SAMPLE[1:] + tuple(c for c in EVENT),
    "events": DONOR + EVENT + EVENT_ONLY,
    "biomarkers": BIOMARKER,
}


def key(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.casefold().removeprefix("miabis-"))


def map_headers(kind: str, headers: list[str]) -> dict[str, str]:
    """Each header of a file of ``kind``, mapped to its column name; ``TableError`` naming
    the unknown and the missing ones."""
    columns = COLUMNS[kind]
    known: dict[str, str] = {}
    for column in columns:
        for alias in (column.name, *column.aliases, column.miabis):
            if alias:
                known.setdefault(key(alias), column.name)
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for header in headers:
        name = known.get(key(header))
        if name is None:
            unknown.append(header)
        elif name in mapping.values():
            raise TableError(f"columns {header!r} and another header both give {name}")
        else:
            mapping[header] = name
    problems = []
    if unknown:
        problems.append(f"unknown columns {', '.join(repr(h) for h in unknown)}")
    missing = [c.name for c in columns if c.required and c.name not in mapping.values()]
    if missing:
        problems.append(f"required columns missing: {', '.join(missing)}")
    if problems:
        allowed = ", ".join(c.name for c in columns)
        raise TableError(f"{'; '.join(problems)}. Columns of a {kind} file: {allowed}")
    return mapping
