"""The shipped vocabularies as data: the manifest, the terms, and value resolution.

Pure: reads the versioned files in ``vocab/data`` (never the database), so validation
(YAML registration, CSV imports, DICOM headers) works before a database exists and the
database loader and the validators agree on every term.

A value is resolved against all editions a table holds, lowest ``priority`` first:
its code, then its label or a synonym (ignoring case, spaces and accents of form), then a
code another system uses for it (Directory id, bbmri.de, FHIR, SNOMED CT, ...), then, for
storage temperatures, a temperature in °C that falls in the term's range.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import hashlib
import io
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Final

DATA_PACKAGE: Final = "imaging_biobank.vocab.data"
LIST_SEPARATOR: Final = " | "
# columns whose values are references or lists, not codes another system uses
STRUCTURAL_COLUMNS: Final = frozenset(
    {
        "code",
        "label",
        "description",
        "synonyms",
        "maps_to",
        "parent",
        "min_celsius",
        "max_celsius",
        "laterality_paired",
        "retired",
        "context_groups",
        "iod",
        "uri",
        "dicom_attribute",
        "numeric",
        "restricts",
    }
)
LIST_COLUMNS: Final = frozenset({"synonyms", "legacy_snomed_codes"})
SMALL_LIST: Final = 100  # above this, an error suggests close matches instead of listing all


@dataclass(frozen=True)
class VocabularyInfo:
    """One entry of ``vocabularies.toml``: one edition of one list."""

    name: str
    table: str
    edition: str
    source: str
    licence: str
    file: str
    priority: int
    terms: int
    sha256: str


@dataclass(frozen=True)
class Term:
    """One term of one vocabulary edition, with every column its file has."""

    vocabulary: str
    code: str
    label: str
    fields: dict[str, str] = field(hash=False, compare=False)

    def get(self, column: str) -> str:
        return self.fields.get(column, "")

    def values(self, column: str) -> list[str]:
        raw = self.get(column)
        return [v.strip() for v in raw.split(LIST_SEPARATOR.strip()) if v.strip()] if raw else []

    @property
    def maps_to(self) -> tuple[str, str] | None:
        """(vocabulary, code) of the counterpart term, if any."""
        ref = self.get("maps_to")
        if not ref:
            return None
        vocabulary, _, code = ref.partition(":")
        return (vocabulary, code) if code else (self.vocabulary, vocabulary)

    def display(self) -> str:
        return self.code if self.label == self.code else f"{self.code} ({self.label})"


class UnknownTermError(ValueError):
    """A value that no term of the table matches; the message lists what is allowed."""

    def __init__(self, table: str, value: str, allowed: list[str], suggestions: list[str]):
        self.table = table
        self.value = value
        self.allowed = allowed
        self.suggestions = suggestions
        what = table.replace("_", " ")
        if allowed:
            hint = "allowed: " + ", ".join(allowed)
        else:
            hint = f"see `imaging-biobank vocab terms {table}`"
            if suggestions:
                hint = "did you mean " + ", ".join(suggestions) + "? " + hint
        super().__init__(f"{value!r} is not a known {what}; {hint}")


def normalise(value: str) -> str:
    """Fold case, width and spacing, so `-60°C to -85°C` meets `-60 °C to -85 °C`."""
    text = unicodedata.normalize("NFKC", value).casefold()
    return re.sub(r"[\s_]+", "", text)


@cache
def manifest() -> tuple[VocabularyInfo, ...]:
    """Every shipped vocabulary edition, as ``vocabularies.toml`` lists it."""
    text = resources.files(DATA_PACKAGE).joinpath("vocabularies.toml").read_text("utf-8")
    entries = tomllib.loads(text)["vocabulary"]
    return tuple(VocabularyInfo(**entry) for entry in entries)


def vocabulary(name: str) -> VocabularyInfo:
    for info in manifest():
        if info.name == name:
            return info
    raise KeyError(f"no vocabulary named {name!r}")


def vocabularies_of(table: str) -> list[VocabularyInfo]:
    """The editions a table holds, in resolution order."""
    found = [v for v in manifest() if v.table == table]
    if not found:
        tables = sorted({v.table for v in manifest()})
        raise KeyError(f"no vocabulary table {table!r}; tables: {', '.join(tables)}")
    return sorted(found, key=lambda v: v.priority)


def file_bytes(info: VocabularyInfo) -> bytes:
    return resources.files(DATA_PACKAGE).joinpath(info.file).read_bytes()


def file_sha256(info: VocabularyInfo) -> str:
    return hashlib.sha256(file_bytes(info)).hexdigest()


@cache
def rows(name: str) -> tuple[dict[str, str], ...]:
    """The rows of one vocabulary file, as strings."""
    info = vocabulary(name)
    data = file_bytes(info)
    if info.file.endswith(".gz"):
        data = gzip.decompress(data)
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    return tuple({k: (v or "").strip() for k, v in r.items()} for r in reader)


@cache
def terms(name: str) -> tuple[Term, ...]:
    """The terms of one vocabulary edition, in file order."""
    return tuple(Term(name, r["code"], r.get("label") or r["code"], r) for r in rows(name))


class TermIndex:
    """Resolves values to terms for one table, across its editions."""

    def __init__(self, table: str):
        self.table = table
        self.editions = vocabularies_of(table)
        self._by_code: list[dict[str, Term]] = []
        self._by_name: list[dict[str, Term]] = []
        self._by_other: list[dict[str, Term]] = []
        for info in self.editions:
            by_code: dict[str, Term] = {}
            by_name: dict[str, Term] = {}
            by_other: dict[str, Term] = {}
            for term in terms(info.name):
                by_code.setdefault(term.code, term)
                for key in (term.code, term.label, *term.values("synonyms")):
                    by_name.setdefault(normalise(key), term)
                for column, raw in term.fields.items():
                    if column in STRUCTURAL_COLUMNS or not raw:
                        continue
                    values = term.values(column) if column in LIST_COLUMNS else [raw]
                    for value in values:
                        # several terms may share an external code (many-to-one mappings):
                        # the first in file order answers, unless a synonym already claims it
                        by_other.setdefault(normalise(value), term)
            self._by_code.append(by_code)
            self._by_name.append(by_name)
            self._by_other.append(by_other)

    def find(self, value: str) -> Term | None:
        """The term a value names, or None."""
        value = value.strip()
        if not value:
            return None
        for by_code in self._by_code:
            if value in by_code:
                return by_code[value]
        key = normalise(value)
        for index in (self._by_name, self._by_other):
            for mapping in index:
                if key in mapping:
                    return mapping[key]
        return self._by_temperature(value)

    def resolve(self, value: str) -> Term:
        """The term a value names, or an ``UnknownTermError`` saying what is allowed."""
        term = self.find(value)
        if term is None:
            raise UnknownTermError(self.table, value, self.allowed(), self.suggest(value))
        return term

    def allowed(self) -> list[str]:
        """The values to show a user who gave a wrong one (empty for long lists).

        The preferred edition's terms (with the Directory or bbmri.de id when it differs),
        then the codes only older editions have.
        """
        all_terms = [t for info in self.editions for t in terms(info.name)]
        if len(all_terms) > SMALL_LIST:
            return []
        shown: list[str] = []
        seen: set[str] = set()
        for term in all_terms:
            keys = {normalise(term.code), normalise(term.label)}
            if keys & seen:
                continue
            seen |= keys
            text = term.code
            if normalise(term.label) != normalise(term.code):
                text += f" ({term.label})"
            external = term.get("directory_id") or term.get("bbmri_de_code")
            if external and normalise(external) != normalise(term.code):
                text += f" [{external}]"
            shown.append(text)
        return shown

    def suggest(self, value: str) -> list[str]:
        keys = {normalise(t.code): t.code for info in self.editions for t in terms(info.name)}
        close = difflib.get_close_matches(normalise(value), list(keys), n=3, cutoff=0.75)
        return [keys[k] for k in close]

    def _by_temperature(self, value: str) -> Term | None:
        match = re.fullmatch(r"\s*([+-]?\d+(?:\.\d+)?)\s*(?:°\s*C|C)?\s*", value)
        if match is None:
            return None
        celsius = float(match.group(1))
        best: tuple[float, int, Term] | None = None
        for rank, info in enumerate(self.editions):
            for term in terms(info.name):
                low, high = term.get("min_celsius"), term.get("max_celsius")
                if not low or not high:
                    continue
                lo, hi = sorted((float(low), float(high)))
                if lo <= celsius <= hi and (best is None or (hi - lo, rank) < best[:2]):
                    best = (hi - lo, rank, term)
        return best[2] if best else None


@cache
def index(table: str) -> TermIndex:
    """The (cached) resolver for one vocabulary table."""
    return TermIndex(table)


def resolve(table: str, value: str) -> Term:
    """Resolve ``value`` in ``table`` or raise ``UnknownTermError``."""
    return index(table).resolve(value)


def resolve_all(table: str, values: Iterable[str]) -> list[Term]:
    return [resolve(table, v) for v in values]


def term(name: str, code: str) -> Term:
    """The term with exactly this code in one vocabulary edition."""
    for t in terms(name):
        if t.code == code:
            return t
    raise KeyError(f"{code!r} is not a code of {name}")


def external_code(term: Term, column: str) -> str:
    """The code another system knows ``term`` by (e.g. ``directory_id``), following the
    term's mapping to another edition when it has none itself; "" when there is none."""
    seen: set[tuple[str, str]] = set()
    current: Term | None = term
    while current is not None and (current.vocabulary, current.code) not in seen:
        if current.get(column):
            return current.get(column)
        seen.add((current.vocabulary, current.code))
        current = _term_or_none(current.maps_to)
    return ""


def _term_or_none(ref: tuple[str, str] | None) -> Term | None:
    if ref is None:
        return None
    try:
        return term(*ref)
    except KeyError:
        return None
