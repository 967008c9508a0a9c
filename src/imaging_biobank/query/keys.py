"""The criteria a cohort query can use, each at the level where it is true: a series
(imaging), a sample, or a donor. Values of coded keys are resolved through the shipped
vocabularies, so MIABIS labels, Directory ids and codes all work (``TISSUE_FROZEN`` and
``Tissue (Frozen)`` are one material type) and a term matches its counterparts in other
editions; ICD-10 diagnoses match their descendants (``C74`` matches ``C74.9``).

Besides the fixed keys, four families name what the database holds: ``eform.<field>`` (a
field of an imported e-form, ``eform.<form>.<field>`` when forms differ), ``biomarker.<gene,
LOINC code or reported name>`` (a molecular biomarker result), ``feature.<name or code>`` and
``harmonised.<name or code>`` (an imaging biomarker of a series, raw or ComBat-harmonised).
A name that is not a plain word is quoted after the dot: ``biomarker."11q loss" = absent``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Final

from imaging_biobank.clinical.validation import VALIDATION_TYPES
from imaging_biobank.vocab import catalog, regions

SERIES, SAMPLE, DONOR = "series", "sample", "donor"


@dataclass(frozen=True)
class Key:
    name: str
    level: str
    # term, number, date, text, diagnosis, collection, gene, study, count (of samples), and
    # the families eform, biomarker, feature, harmonised
    kind: str
    column: str  # table.column the criterion reads
    vocabulary: str | None = None  # the vocabulary table of a term key
    unit: str | None = None
    help: str = ""
    parameter: str | None = None  # a family key's name after its prefix: ldh in eform.ldh


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

# key families: the prefix, and how the family is listed among the keys
FAMILY_NAMES: Final = {
    "eform": "eform.<field>",
    "biomarker": "biomarker.<gene|name>",
    "feature": "feature.<name|code>",
    "harmonised": "harmonised.<name|code>",
}

KEYS: Final[dict[str, Key]] = {
    key.name: key
    for key in (
        Key("modality", SERIES, "term", "imaging_series.modality_id", "modality",
            help="DICOM modality: CT, MR, PT, ..."),
        Key("body_part", SERIES, "term", "imaging_series.body_part_examined_id",
            "body_part_examined", help="Body Part Examined with its regions: ABDOMEN also"
            " matches PANCREAS, KIDNEY, CHESTABDPELVIS... series"),
        Key("dataset_type", SERIES, "term", "imaging_series.dataset_type_id", "dataset_type",
            help="SOP class UID or name"),
        Key("manufacturer", SERIES, "text", "modality_information.manufacturer"),
        Key("model", SERIES, "text", "modality_information.manufacturer_model_name"),
        Key("kernel", SERIES, "text", "reconstruction_parameters.convolution_kernel"),
        Key("reconstruction_diameter", SERIES, "number",
            "reconstruction_parameters.reconstruction_diameter", unit="mm"),
        *(
            Key(name, SERIES, "number",
                # the series' slice thickness is kept on the series too (the cohort index)
                "imaging_series.slice_thickness" if name == "slice_thickness" else
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
        Key("study", DONOR, "study", "study_collection.collection_id",
            help="MIABIS study identifier: donors in any collection of the study"),
        Key("samples", DONOR, "count", "sample.sample_donor_id", unit="samples",
            help="how many samples the donor has (samples >= 2); in an AND with sample"
                 " criteria, how many samples meet them"),
        Key("gene", DONOR, "gene", "molecular_biomarker_result.gene_id", "gene",
            help="HGNC symbol or id of a molecular biomarker result of the donor: MYCN"),
        Key(FAMILY_NAMES["biomarker"], DONOR, "biomarker",
            "molecular_biomarker_result.value_category",
            help="a molecular biomarker result by gene, LOINC code or reported name:"
                 ' biomarker.MYCN = amplified, biomarker.MYCN >= 10, biomarker."11q loss" = absent;'
                 " != is 'tested, and not'"),
        Key(FAMILY_NAMES["eform"], DONOR, "eform", "clinical_value.raw",
            help="a field of an imported e-form (eform.<form>.<field> when forms differ):"
                 " numbers and dates (YYYY[-MM[-DD]]) with < <= > >= between, choices by code or"
                 " label, yes/no, codes, text; != is 'answered, and not'"),
        Key(FAMILY_NAMES["feature"], SERIES, "feature", "imaging_biomarker.value",
            help="a radiomic feature of the series by name or IBSI code:"
                 " feature.8ZQL between 0.1 and 0.3"),
        Key(FAMILY_NAMES["harmonised"], SERIES, "harmonised", "harmonised_value.value",
            help="a feature's ComBat-harmonised value (its latest harmonisation run):"
                 " harmonised.original_firstorder_Mean > 10"),
    )
}  # fmt: skip


class QueryKeyError(ValueError):
    """A key, operator or value the engine does not know; the message says what it does."""


def key(name: str) -> Key:
    """The key a criterion names: a fixed key, or a family key with its parameter
    (``eform.ldh``); ``QueryKeyError`` listing the keys for an unknown one."""
    found = KEYS.get(name)
    if found is not None and found.name not in FAMILY_NAMES.values():
        return found
    prefix, dot, parameter = name.partition(".")
    if dot and prefix in FAMILY_NAMES and parameter.strip():
        return replace(KEYS[FAMILY_NAMES[prefix]], name=name, parameter=parameter.strip())
    if dot and prefix in FAMILY_NAMES:
        raise QueryKeyError(f"{name!r}: give a name after the dot, as in {FAMILY_NAMES[prefix]}")
    plain = sorted(k for k in KEYS if k not in FAMILY_NAMES.values())
    close = difflib.get_close_matches(prefix if dot else name, [*plain, *FAMILY_NAMES], n=2)
    hint = did_you_mean([FAMILY_NAMES.get(c, c) for c in close])
    raise QueryKeyError(f"unknown key {name!r}{hint}; keys: {', '.join(sorted(KEYS))}")


def did_you_mean(close: list[str]) -> str:
    """`` (did you mean a, b?)`` for the close names, or nothing."""
    if not close:
        return ""
    names = " or ".join(close) if len(close) <= 2 else ", ".join(close)
    return f" (did you mean {names}?)"


def nearest(value: str, names: list[str], n: int = 5) -> list[str]:
    """The names closest to ``value`` (case-insensitive), for a "did you mean" hint."""
    lowered = {name.lower(): name for name in names}
    close = difflib.get_close_matches(value.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[c] for c in close]


def listed(names: list[str], limit: int = 40) -> str:
    """Names for a message: all of them when few, else how many there are."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])}, ... ({len(names)} in all)"


# --- e-form fields ----------------------------------------------------------------------

EFORM_OPERATORS: Final = {
    "number": "=, !=, <, <=, >, >=, between, in",
    "date": "=, !=, <, <=, >, >=, between, in (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm)",
    "time": "=, !=, <, <=, >, >=, between, in (hh:mm)",
    "choice": "=, !=, in, not in (a choice's code or label)",
    "checkbox": "=, !=, in, not in (a choice's code or label: ticked, or not)",
    "yesno": "= or != yes / no",
    "code": "=, !=, in, not in (a code of the field's value set)",
    "text": "=, !=, in, not in (the text, any case)",
}
ORDERED: Final = ("LESS_THAN", "LESS_OR_EQUAL", "GREATER_THAN", "GREATER_OR_EQUAL", "BETWEEN")
YES_NO: Final = {"yes": "1", "y": "1", "true": "1", "1": "1", "no": "0", "n": "0", "false": "0",
                 "0": "0"}  # fmt: skip


def eform_value_kind(
    field_type: str, validation_type: str | None, value_set: str | None, identifier: bool
) -> str:
    """How the values of a stored e-form field compare: number, date, time, choice,
    checkbox, yesno, code, text; or identifier / none when they cannot be queried."""
    if identifier:
        return "identifier"
    if field_type in ("dropdown", "radio"):
        return "choice"
    if field_type in ("checkbox", "yesno"):
        return field_type
    if field_type == "truefalse":
        return "yesno"
    if field_type in ("descriptive", "file"):
        return "none"
    if value_set:
        return "code"
    name = {"slider": "integer", "calc": "number"}.get(field_type, validation_type or "")
    validation = VALIDATION_TYPES.get(name)
    if validation is None:
        return "text"
    if validation.kind in ("integer", "number", "duration"):
        return "number"
    if validation.kind in ("date", "datetime"):
        return "date"
    return "time" if validation.kind == "time" else "text"


_PARTIAL_DATE: Final = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?)?)?)?")
_TIME: Final = re.compile(r"\d{2}:\d{2}(?::\d{2})?")


def _parses(parse: Callable[[str], object], text: str) -> bool:
    """Whether ``parse`` reads ``text`` (a ``fromisoformat``: ValueError when it does not)."""
    try:
        parse(text)
    except ValueError:
        return False
    return True


def iso_prefix(name: str, kind: str, value: object) -> str:
    """A date (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``, with ``Thh:mm[:ss]``) or a time
    (``hh:mm[:ss]``) to compare with stored ISO values at the precision written."""
    text = str(value).strip()
    if kind == "time":
        if _TIME.fullmatch(text) and _parses(dt.time.fromisoformat, text):
            return text
        raise QueryKeyError(f"{name} is a time: give hh:mm or hh:mm:ss, not {value!r}")
    parts = text[:10].split("-")
    if (
        _PARTIAL_DATE.fullmatch(text)
        and _parses(dt.date.fromisoformat, "-".join(parts + ["01"] * (3 - len(parts))))
        and (len(text) <= 10 or _parses(dt.time.fromisoformat, text[11:]))
    ):
        return text
    raise QueryKeyError(
        f"{name} is a date: give YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm, not {value!r}"
    )


def yes_no(name: str, value: object) -> str:
    """The stored code (1 or 0) of a yes/no (true/false) answer."""
    code = YES_NO.get(str(value).strip().lower())
    if code is None:
        raise QueryKeyError(f"{name} is yes/no: give yes, no, true, false, 1 or 0, not {value!r}")
    return code


def choice_codes(name: str, choices: list[dict[str, str]], value: object) -> set[str]:
    """The codes of the choices a value names: by code (``3``), label (``M``, any case) or
    the choice's coding (a SNOMED CT code, ...)."""
    text = str(value).strip()
    by_code = {str(c["code"]) for c in choices if str(c["code"]) == text}
    if not by_code and isinstance(value, int | float):
        by_code = {str(c["code"]) for c in choices if _same_number(str(c["code"]), float(value))}
    if by_code:
        return by_code
    found = {str(c["code"]) for c in choices if str(c.get("label", "")).lower() == text.lower()}
    found |= {str(c["code"]) for c in choices if c.get("system_code") and c["system_code"] == text}
    if found:
        return found
    allowed = ", ".join(f"{c['code']} ({c['label']})" for c in choices)
    labels = [str(c["label"]) for c in choices]
    hint = did_you_mean(nearest(text, labels, 2))
    raise QueryKeyError(f"{name}: {value!r} is not one of its choices{hint}; choices: {allowed}")


def _same_number(code: str, value: float) -> bool:
    try:
        return float(code) == value
    except ValueError:
        return False


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


def body_part_codes(value: str) -> frozenset[str]:
    """The Annex L codes of the body parts whose series show ``value``'s region (the region
    itself, the parts within it, the combined regions covering it)."""
    try:
        return regions.showing(str(value))
    except catalog.UnknownTermError as error:
        raise QueryKeyError(str(error)) from None


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
