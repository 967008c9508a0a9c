"""The criteria a cohort query can use, each at the level where it is true: a series
(imaging), a sample, or a donor. Values of coded keys are resolved through the shipped
vocabularies, so MIABIS labels, Directory ids and codes all work (``TISSUE_FROZEN`` and
``Tissue (Frozen)`` are one material type) and a term matches its counterparts in other
editions; ICD-10 diagnoses match their descendants (``C74`` matches ``C74.9``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from imaging_biobank.vocab import catalog

SERIES, SAMPLE, DONOR = "series", "sample", "donor"


@dataclass(frozen=True)
class Key:
    name: str
    level: str
    kind: str  # term, number, date, text, diagnosis, collection
    column: str  # table.column the criterion reads
    vocabulary: str | None = None  # the vocabulary table of a term key
    unit: str | None = None
    help: str = ""


NUMERIC_ACQUISITION: Final = {
    "slice_thickness": "mm",
    "spacing_between_slices": "mm",
    "pixel_spacing": "mm",
    "kvp": "kV",
    "xray_tube_current": "mA",
    "exposure": "mAs",
    "ctdi_vol": "mGy",
    "magnetic_field_strength": "T",
    "repetition_time": "ms",
    "echo_time": "ms",
    "inversion_time": "ms",
    "flip_angle": "deg",
    "radionuclide_total_dose": "Bq",
}

KEYS: Final[dict[str, Key]] = {
    key.name: key
    for key in (
        Key("modality", SERIES, "term", "imaging_series.modality_id", "modality",
            help="DICOM modality: CT, MR, PT, ..."),
        Key("body_part", SERIES, "term", "imaging_series.body_part_examined_id",
            "body_part_examined", help="Body Part Examined: ABDOMEN, CHEST, ..."),
        Key("dataset_type", SERIES, "term", "imaging_series.dataset_type_id", "dataset_type",
            help="SOP class UID or name"),
        Key("manufacturer", SERIES, "text", "modality_information.manufacturer"),
        Key("model", SERIES, "text", "modality_information.manufacturer_model_name"),
        Key("kernel", SERIES, "text", "reconstruction_parameters.convolution_kernel"),
        Key("reconstruction_diameter", SERIES, "number",
            "reconstruction_parameters.reconstruction_diameter", unit="mm"),
        *(
            Key(name, SERIES, "number",
                "acquisition_parameters." + ("pixel_spacing_row" if name == "pixel_spacing"
                                             else name), unit=unit)
            for name, unit in NUMERIC_ACQUISITION.items()
        ),
        Key("study_date", SERIES, "date", "imaging_study.study_date", help="YYYY-MM-DD"),
        Key("age", SERIES, "number", "imaging_study.patient_age_years", unit="years",
            help="the donor's age at the imaging study"),
        Key("image_collection", SERIES, "collection", "imaging_series.image_collection_id"),
        Key("material_type", SAMPLE, "term", "sample.material_type_id", "material_type",
            help="TISSUE_FROZEN, Tissue (FFPE), Plasma, ..."),
        Key("storage_temperature", SAMPLE, "term", "sample.storage_temperature_id",
            "storage_temperature", help="-80, temperature-60to-85, LN, ..."),
        Key("sample_collection", SAMPLE, "collection", "sample.collection_id"),
        Key("sex", DONOR, "term", "sample_donor.sex_id", "sex", help="Male, Female, ..."),
        Key("diagnosis", DONOR, "diagnosis", "disease.code",
            help="ICD-10 (with its sub-codes) or ORPHA:<n>, of an event or a sample"),
        Key("collection", DONOR, "collection", "collection_sample_donor.collection_id",
            help="any collection holding data of the donor"),
    )
}  # fmt: skip


class QueryKeyError(ValueError):
    """A key, operator or value the engine does not know; the message says what it does."""


def key(name: str) -> Key:
    found = KEYS.get(name)
    if found is None:
        raise QueryKeyError(f"unknown key {name!r}; keys: {', '.join(sorted(KEYS))}")
    return found


@cache
def equivalent_terms(table: str, value: str) -> frozenset[tuple[str, str]]:
    """(vocabulary, code) of the term ``value`` names and of its counterparts in the other
    editions of ``table`` (terms that map to it, the term it maps to); cached, as every
    query with the value asks again."""
    try:
        term = catalog.resolve(table, value)
    except catalog.UnknownTermError as error:
        raise QueryKeyError(str(error)) from None
    found = {(term.vocabulary, term.code)}
    if term.maps_to:
        found.add(term.maps_to)
    for info in catalog.vocabularies_of(table):
        for other in catalog.terms(info.name):
            if other.maps_to and (other.maps_to in found):
                found.add((other.vocabulary, other.code))
    return frozenset(found)


@cache
def _icd10_children() -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for t in catalog.terms("disease.icd-10"):
        parent = t.get("parent")
        if parent:
            children.setdefault(parent, []).append(t.code)
    return children


def diagnosis_codes(value: str) -> set[str]:
    """An ICD-10 code and every code below it in the hierarchy, or one ORPHA code."""
    text = str(value).strip()
    if text.upper().startswith("ORPHA"):
        number = "".join(c for c in text if c.isdigit())
        if not number:
            raise QueryKeyError(f"{value!r}: ORPHA codes are written ORPHA:<number>")
        return {f"ORPHA:{int(number)}"}
    index = catalog.index("disease")
    term = index.find(text)
    if term is None or term.vocabulary != "disease.icd-10":
        close = index.suggest(text)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise QueryKeyError(f"{value!r} is not an ICD-10 code nor ORPHA:<n>{hint}")
    children = _icd10_children()
    codes, stack = set(), [term.code]
    while stack:
        code = stack.pop()
        codes.add(code)
        stack.extend(children.get(code, []))
    return codes
