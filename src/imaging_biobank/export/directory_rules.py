"""The BBMRI-ERIC Directory's rules, checked on an export before anything is written.

The rules are data shipped in ``export/data`` (see the header of each file for its source):

- ``directory_emx1_attributes.csv``: the 139 attributes of the 2017 EMX1 model (which are
  required, ``nillable=FALSE``; their types; which list or entity each refers to);
- ``directory_emx1_lookups.csv``: the ids of the Directory's lookup lists (materials,
  temperatures, data categories, collection types, sex, age units, order of magnitude,
  countries, body parts, imaging modalities, image data types, ...). The disease list
  (11,480 ICD-10 ``urn:miriam:icd:`` ids) is the shipped ``disease.icd-10`` vocabulary
  itself, so it is read from the database (``Lookups.diseases``);
- ``directory_emx2_columns.csv`` and ``directory_emx2_age_ranges.csv``: the columns this
  package writes in the current (EMX2) model and the CollectionFacts age ranges.

Checks: required values filled, values of the declared type, lookup ids that exist,
references that resolve inside the export, unique ids, and the Directory id rules
(``vocab.identifiers``: ``bbmri-eric:ID:<CC>_...``, collection ids under their biobank's id,
``bbmri-eric:contactID:``, ``bbmri-eric:networkID:``, ``bbmri-eric:factID:``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final

from imaging_biobank.export.data_files import data_rows
from imaging_biobank.vocab.identifiers import (
    ALLOWED_CHARACTERS,
    InvalidIdentifierError,
    check_biobank_id,
    check_collection_id,
    check_network_id,
    check_person_id,
)

Value = str | int | bool | list[str] | None
Row = dict[str, Value]

DISEASES: Final = "eu_bbmri_eric_disease_types"
COUNTRIES: Final = "eu_bbmri_eric_countries"
AGE_RANGES: Final = "age_ranges"
STAR: Final = "*"  # "any" in a CollectionFacts dimension
FACT_PREFIX: Final = "bbmri-eric:factID:"
ORPHA: Final = re.compile(r"^ORPHA:[0-9]+$")
LIST_TYPES: Final = frozenset({"mref", "categorical_mref", "ontology_array", "ref_array"})
NOT_WRITTEN: Final = frozenset({"compound", "one_to_many"})  # headings; mappedBy (computed)
URL: Final = re.compile(r"^https?://\S+$")
EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SHOWN_ALLOWED: Final = 20  # lists up to this size are spelled out in a message


@dataclass(frozen=True)
class Column:
    """One attribute (EMX1) or column (EMX2) of a Directory table: what a value must be."""

    table: str
    name: str
    type: str
    required: bool
    ref: str  # a lookup list, a table of the export, or ""
    description: str = ""


@dataclass(frozen=True)
class Problem:
    """One broken rule: which table, row, attribute, and why."""

    table: str
    row_id: str
    attribute: str
    reason: str

    def __str__(self) -> str:
        return f"{self.table} {self.row_id or '(no id)'}: {self.attribute}: {self.reason}"


class DirectoryExportError(ValueError):
    """The export breaks the Directory's rules; nothing was written. ``problems`` lists
    every broken rule (table, row id, attribute, reason)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(
            f"the Directory export breaks {len(self.problems)} rule"
            f"{'s' if len(self.problems) != 1 else ''}: {shown}{more}"
        )


@cache
def emx1_attributes() -> dict[str, tuple[Column, ...]]:
    """The EMX1 attributes per entity, in the model's order (compound headings and
    one_to_many back-references included; ``written_columns`` leaves them out)."""
    out: dict[str, list[Column]] = {}
    for r in data_rows("directory_emx1_attributes.csv"):
        column = Column(
            table=r["entity"],
            name=r["name"],
            type=r["dataType"],
            required=r["nillable"].upper() == "FALSE" and r["dataType"] not in NOT_WRITTEN,
            ref=r["refEntity"],
            description=r["description"],
        )
        out.setdefault(column.table, []).append(column)
    return {k: tuple(v) for k, v in out.items()}


def written_columns(entity: str) -> list[Column]:
    """The EMX1 attributes an import sheet carries: all but compound headings and the
    one_to_many back-references MOLGENIS computes from the other side."""
    return [c for c in emx1_attributes()[entity] if c.type not in NOT_WRITTEN]


@cache
def emx2_columns() -> dict[str, tuple[Column, ...]]:
    """The EMX2 tables this package writes and their columns, in order."""
    out: dict[str, list[Column]] = {}
    for r in data_rows("directory_emx2_columns.csv"):
        column = Column(r["table"], r["column"], r["type"], r["required"] == "true", r["ref"])
        out.setdefault(column.table, []).append(column)
    return {k: tuple(v) for k, v in out.items()}


@cache
def lookup_ids() -> dict[str, frozenset[str]]:
    """The Directory's lookup lists (EMX1 entity name -> ids), diseases excepted."""
    out: dict[str, set[str]] = {}
    for r in data_rows("directory_emx1_lookups.csv"):
        out.setdefault(r["entity"], set()).add(r["id"])
    return {k: frozenset(v) for k, v in out.items()}


@cache
def lookup_labels(entity: str) -> dict[str, str]:
    """Id -> label of one shipped lookup list (for messages and the countries sheet)."""
    return {
        r["id"]: r["label"]
        for r in data_rows("directory_emx1_lookups.csv")
        if r["entity"] == entity
    }


@dataclass(frozen=True)
class AgeRange:
    """A CollectionFacts age range: donors aged ``[low, high)`` years (None = open)."""

    id: str
    low: float | None
    high: float | None


@cache
def age_ranges() -> tuple[AgeRange, ...]:
    """The Directory's fact age ranges, youngest first; ``Unknown`` has no bounds."""
    return tuple(
        AgeRange(
            r["id"],
            float(r["low_years"]) if r["low_years"] else None,
            float(r["high_years"]) if r["high_years"] else None,
        )
        for r in data_rows("directory_emx2_age_ranges.csv")
    )


def age_range(years: float | None) -> str:
    """The id of the fact age range an age in years falls in (``Unknown`` when None)."""
    unknown = next(r.id for r in age_ranges() if r.low is None and r.high is None)
    if years is None:
        return unknown
    for r in age_ranges():
        if r.low is None:
            continue
        if years >= r.low and (r.high is None or years < r.high):
            return r.id
    return unknown


def order_of_magnitude(count: int) -> int:
    """The Directory's ``biobank_size`` id for a count: ``k`` with ``10**k <= n < 10**(k+1)``;
    0 for fewer than 10 (``0`` reads "<10"). Integer arithmetic, no rounding of logs."""
    return max(len(str(count)) - 1, 0) if count > 0 else 0


@dataclass(frozen=True)
class Lookups:
    """The id lists a check resolves references against: the shipped Directory lists, the
    disease ids (from the database's ``disease.icd-10`` vocabulary), and the countries an
    export adds beyond the 2017 list (see ``directory.py``)."""

    diseases: frozenset[str]
    extra_countries: frozenset[str] = frozenset()
    orpha_allowed: bool = False  # EMX2: the current Directory lists ORPHA codes too

    def allows(self, ref: str, value: str) -> bool:
        """Whether ``value`` is an id of the lookup list ``ref``."""
        if ref == DISEASES:
            return value in self.diseases or bool(self.orpha_allowed and ORPHA.match(value))
        if ref == COUNTRIES and value in self.extra_countries:
            return True
        if ref == AGE_RANGES:
            return value in {r.id for r in age_ranges()}
        return value in lookup_ids().get(ref, frozenset())

    def describe(self, ref: str) -> str:
        """The allowed ids of a list, spelled out when the list is short."""
        if ref == DISEASES:
            extra = " or ORPHA:<n>" if self.orpha_allowed else ""
            return f"an ICD-10 id of the Directory's disease list (urn:miriam:icd:<code>){extra}"
        ids = (
            sorted(r.id for r in age_ranges())
            if ref == AGE_RANGES
            else sorted(lookup_ids().get(ref, frozenset()) | self.extra_countries)
            if ref == COUNTRIES
            else sorted(lookup_ids().get(ref, frozenset()))
        )
        if len(ids) <= SHOWN_ALLOWED:
            return "one of " + ", ".join(ids)
        return f"an id of the Directory's {ref} list ({len(ids)} ids)"


def _empty(value: Value) -> bool:
    return value is None or value == "" or value == []


def _type_problem(column: Column, value: Value) -> str | None:
    """Why ``value`` is not of the column's type (None if it is)."""
    kind = column.type
    if kind in LIST_TYPES:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return f"expected a list of ids, got {value!r}"
        if any("," in v for v in value):
            return "an id holds a comma, which separates the ids of a list"
        return None
    if isinstance(value, list):
        return f"expected one value, got a list {value!r}"
    if kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "not an int"
    if kind == "bool":
        return None if isinstance(value, bool) else "not true/false"
    if isinstance(value, bool):
        return f"expected {kind}, got a boolean"
    text = str(value)
    if kind == "hyperlink" and not URL.match(text):
        return f"{text!r} is not an http(s) URL"
    if kind == "email" and not EMAIL.match(text):
        return f"{text!r} is not an e-mail address"
    if kind == "date":
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            return f"{text!r} is not an ISO date (YYYY-MM-DD)"
    if kind in ("string", "text", "hyperlink", "email") and not isinstance(value, str):
        return f"expected text, got {value!r}"
    return None


# which Directory id rule applies to the id of each table (EMX1 and EMX2 names)
ID_KINDS: Final = {
    "eu_bbmri_eric_biobanks": "biobank",
    "Biobanks": "biobank",
    "eu_bbmri_eric_collections": "collection",
    "Collections": "collection",
    "eu_bbmri_eric_persons": "person",
    "Persons": "person",
    "eu_bbmri_eric_networks": "network",
    "Networks": "network",
    "CollectionFacts": "fact",
}


def _id_problem(table: str, row: Row, biobank_column: str) -> str | None:
    """Why a row's id breaks the Directory's id rules (None if it keeps them)."""
    kind = ID_KINDS.get(table)
    value = row.get("id")
    if kind is None or not isinstance(value, str):
        return None
    checks: dict[str, Callable[[str], object]] = {
        "biobank": check_biobank_id,
        "person": check_person_id,
        "network": check_network_id,
    }
    try:
        if kind in checks:
            checks[kind](value)
        elif kind == "collection":
            check_collection_id(value, str(row.get(biobank_column) or ""))
        else:  # fact
            if not value.startswith(FACT_PREFIX) or len(value) == len(FACT_PREFIX):
                return f"{value!r} does not start with {FACT_PREFIX!r}"
            if not ALLOWED_CHARACTERS.match(value) or "::" in value:
                return f"{value!r} has characters outside [A-Za-z0-9:_-] or an empty segment"
    except InvalidIdentifierError as error:
        return str(error)
    return None


def check_tables(
    tables: Mapping[str, Sequence[Row]],
    schema: Mapping[str, Sequence[Column]],
    lookups: Lookups,
    *,
    model: str,
) -> list[Problem]:
    """Every broken rule of the tables of one export: required values, types, lookup ids,
    references inside the export, unique ids, id patterns. ``model`` names the model in
    messages ("EMX1 attributes.csv", "EMX2")."""
    problems: list[Problem] = []
    ids = {name: {str(r.get("id")) for r in rows} for name, rows in tables.items()}
    for name, rows in tables.items():
        columns = {c.name: c for c in schema[name]}
        seen: set[str] = set()
        for row in rows:
            row_id = str(row.get("id") or "")
            if row_id and row_id in seen:
                problems.append(Problem(name, row_id, "id", "the id occurs more than once"))
            seen.add(row_id)
            for key in row:
                if key not in columns:
                    problems.append(Problem(name, row_id, key, f"not a column of {name}"))
            for column in columns.values():
                value = row.get(column.name)
                if _empty(value):
                    if column.required:
                        problems.append(
                            Problem(
                                name,
                                row_id,
                                column.name,
                                f"required ({model}) but empty",
                            )
                        )
                    continue
                wrong = _type_problem(column, value)
                if wrong:
                    problems.append(Problem(name, row_id, column.name, wrong))
                    continue
                problems += _reference_problems(name, row_id, column, value, ids, lookups)
            bad_id = _id_problem(name, row, "biobank")
            if bad_id:
                problems.append(Problem(name, row_id, "id", bad_id))
    return problems


def _reference_problems(
    table: str,
    row_id: str,
    column: Column,
    value: Value,
    ids: Mapping[str, set[str]],
    lookups: Lookups,
) -> list[Problem]:
    if not column.ref:
        return []
    values: Iterable[str] = value if isinstance(value, list) else [str(value)]
    out = []
    for v in values:
        if column.ref in ids:  # a table of this export
            if v not in ids[column.ref]:
                out.append(
                    Problem(table, row_id, column.name, f"{v!r} is not a row of {column.ref}")
                )
        elif column.table == "CollectionFacts" and v == STAR:
            continue
        elif not lookups.allows(column.ref, v):
            out.append(
                Problem(
                    table,
                    row_id,
                    column.name,
                    f"{v!r} is not an id of {column.ref}; expected {lookups.describe(column.ref)}",
                )
            )
    return out


def check_fact_rules(
    facts: Sequence[Row], collections: Sequence[Row], *, k: int = 10
) -> list[Problem]:
    """The star-model rules of a CollectionFacts table (directory-scripts
    ``checks/FactTables.py``): exactly one all-``*`` row per collection, no row with
    ``0 < number_of_donors < k``, and the collection's ``size`` equal to its all-``*``
    ``number_of_samples``."""
    dims = ("sex", "age_range", "sample_type", "disease")
    problems: list[Problem] = []
    stars: dict[str, list[Row]] = {}
    for row in facts:
        if all(row.get(d) == STAR for d in dims):
            stars.setdefault(str(row.get("collection")), []).append(row)
        donors = row.get("number_of_donors")
        if isinstance(donors, int) and 0 < donors < k:
            problems.append(
                Problem(
                    "CollectionFacts",
                    str(row.get("id")),
                    "number_of_donors",
                    f"{donors} donors: a fact row must not count 1 to {k - 1} donors",
                )
            )
    for collection in collections:
        cid = str(collection.get("id"))
        found = stars.get(cid, [])
        if len(found) != 1:
            problems.append(
                Problem(
                    "CollectionFacts",
                    cid,
                    "sex, age_range, sample_type, disease",
                    f"expected exactly one all-'*' row for the collection, found {len(found)}",
                )
            )
            continue
        size, samples = collection.get("size"), found[0].get("number_of_samples")
        if isinstance(size, int) and size != samples:
            problems.append(
                Problem(
                    "CollectionFacts",
                    str(found[0].get("id")),
                    "number_of_samples",
                    f"{samples} differs from the collection's size {size}",
                )
            )
    return problems
