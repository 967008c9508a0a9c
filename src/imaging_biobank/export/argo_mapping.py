"""Our mapping to ICGC-ARGO (``export/data/argo_mapping.csv``) and the coverage it gives.

The mapping is data we curate: each e-form field or model attribute, the ARGO
``schema.field`` it fills (or none, with the reason), how its value is turned into ARGO's
(a named transform, or value rows: our code -> ARGO's permitted value) and a note. A user
with other e-forms gives their own file (``--mapping``) in the same columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from imaging_biobank.export.source import FormField

COLUMNS = (
    "source",
    "argo_schema",
    "argo_field",
    "transform",
    "when",
    "combine",
    "source_value",
    "argo_value",
    "note",
)

# what each transform does (argo.py applies them); names are the mapping file's vocabulary
TRANSFORMS = {
    "copy": "the value as recorded (the code of a coded value)",
    "pseudonym": "the donor's pseudonym, never the source value",
    "icd10": "the code, when it comes from ICD-10",
    "icdo3_topography": "the site code, when coded in ICD-O-3 or ICD-10",
    "site_group": "the ICD-O-3 topography group of an ICD-10/ICD-O-3 site code",
    "months_to_years": "completed years of an age in months",
    "years": "completed years of an age in years",
    "age_years": "completed years of an age in its own UCUM unit (a, mo, wk, d)",
    "months_to_days": "months x 30.4375 days (UCUM's mean month), to the nearest day",
    "days_since_diagnosis": "days from the donor's primary diagnosis to a date",
    "integer": "a whole number (a fraction is reported, not rounded)",
    "number": "the number",
}
# the age transforms, and the UCUM unit each reads its number in (None: the value's own unit)
AGE_TRANSFORMS: dict[str, str | None] = {
    "months_to_years": "mo",
    "years": "a",
    "age_years": None,
    "months_to_days": "mo",
}


class MappingError(ValueError):
    """The mapping file is malformed; the message names the line and what is allowed."""


@dataclass(frozen=True)
class Rule:
    """How one source fills one ARGO field (value rows gathered under it)."""

    source: str
    schema: str
    field: str
    transform: str | None
    when: tuple[str, str] | None  # (field of the same record, code)
    combine: str  # '' (same information: first wins), 'else' (fallback), 'add' (arrays)
    values: dict[str, str]  # source code -> ARGO value ('' = none); '*' = any
    note: str
    line: int

    @property
    def target(self) -> str:
        """``schema.field``."""
        return f"{self.schema}.{self.field}"


@dataclass
class Mapping:
    """The whole mapping: rules in order of preference, unmapped sources with reasons,
    curated defaults, and where it was read from."""

    source_file: str
    rules: list[Rule] = field(default_factory=list)
    unmapped: dict[str, str] = field(default_factory=dict)  # source -> reason
    defaults: list[Rule] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # source -> first note

    def rules_for(self, schema: str) -> list[Rule]:
        """The rules filling ``schema``, in preference order."""
        return [r for r in self.rules if r.schema == schema]

    def rules_to(self, target: str) -> list[Rule]:
        """The rules filling one ARGO field (``schema.field``), in preference order."""
        return [r for r in self.rules if r.target == target]

    def targets_of(self, source: str) -> list[str]:
        """The ARGO fields ``source`` fills (``schema.field``), without repeats."""
        seen: dict[str, None] = {}
        for rule in self.rules:
            if rule.source == source:
                seen.setdefault(rule.target, None)
        return list(seen)

    @property
    def sources(self) -> list[str]:
        """Every source the mapping names (mapped or not), in file order."""
        seen: dict[str, None] = {}
        for rule in self.rules:
            seen.setdefault(rule.source, None)
        for source in self.unmapped:
            seen.setdefault(source, None)
        return list(seen)


def _lines(text: str) -> tuple[list[str], list[int]]:
    kept, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#") or not line.strip():
            continue
        kept.append(line)
        numbers.append(number)
    return kept, numbers


def load_mapping(path: str | Path | None = None) -> Mapping:
    """Read the mapping at ``path``, or the one the package ships."""
    if path is None:
        resource = resources.files("imaging_biobank.export").joinpath("data/argo_mapping.csv")
        text, name = resource.read_text(encoding="utf-8"), "argo_mapping.csv (shipped)"
    else:
        try:
            text, name = Path(path).read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as error:
            raise MappingError(f"{path}: cannot read the mapping ({error})") from error
    return parse_mapping(text, name)


def parse_mapping(text: str, name: str) -> Mapping:
    """Parse mapping rows (the columns of ``COLUMNS``) into rules."""
    lines, numbers = _lines(text)
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise MappingError(
            f"{name}: the header must be {','.join(COLUMNS)}"
            f" (found {','.join(reader.fieldnames or [])})"
        )
    mapping = Mapping(name)
    current: dict[tuple[str, str, str, str], Rule] = {}
    for index, row in enumerate(reader):
        line = numbers[index + 1] if index + 1 < len(numbers) else 0
        source = (row["source"] or "").strip()
        schema, target = (row["argo_schema"] or "").strip(), (row["argo_field"] or "").strip()
        note = (row["note"] or "").strip()
        where = f"{name}, line {line}"
        if not source:
            raise MappingError(f"{where}: no source")
        if not (
            source == "default" or source.startswith("form:") or source.startswith("model:")
        ) or (source != "default" and "." not in source):
            raise MappingError(
                f"{where}: source {source!r} must be form:<form>.<field>, model:<table>.<attribute>"
                " or default"
            )
        if bool(schema) != bool(target):
            raise MappingError(f"{where}: give both argo_schema and argo_field, or neither")
        if not schema:
            mapping.unmapped[source] = note or "no ARGO field"
            mapping.notes.setdefault(source, note)
            continue
        transform = (row["transform"] or "").strip() or None
        if transform is not None and transform not in TRANSFORMS:
            raise MappingError(
                f"{where}: unknown transform {transform!r}; known: {', '.join(TRANSFORMS)}"
            )
        when_text = (row["when"] or "").strip()
        when: tuple[str, str] | None = None
        if when_text:
            if "=" not in when_text:
                raise MappingError(f"{where}: when must be field=code, not {when_text!r}")
            left, right = when_text.split("=", 1)
            when = (left.strip(), right.strip())
        combine = (row["combine"] or "").strip()
        if combine not in ("", "else", "add"):
            raise MappingError(f"{where}: combine must be empty, else or add, not {combine!r}")
        source_value = row["source_value"] or ""
        argo_value = (row["argo_value"] or "").strip()
        mapping.notes.setdefault(source, note)
        if source == "default":
            mapping.defaults.append(
                Rule(source, schema, target, None, None, "", {"*": argo_value}, note, line)
            )
            continue
        key = (source, schema, target, when_text)
        if source_value.strip():
            rule = current.get(key)
            if rule is None:
                rule = Rule(source, schema, target, None, when, combine, {}, note, line)
                current[key] = rule
                mapping.rules.append(rule)
            rule.values[source_value.strip()] = argo_value
            continue
        if key in current:
            raise MappingError(f"{where}: {source} -> {schema}.{target} is given twice")
        rule = Rule(source, schema, target, transform, when, combine, {}, note, line)
        current[key] = rule
        mapping.rules.append(rule)
    for rule in mapping.rules:
        if rule.transform is None and not rule.values:
            raise MappingError(
                f"{name}, line {rule.line}: {rule.source} -> {rule.target} needs a transform"
                " or value rows"
            )
    return mapping


@dataclass(frozen=True)
class CoverageEntry:
    """One variable of the coverage report: an e-form field or a model attribute."""

    source: str  # form:<form>.<field> or model:<table>.<attribute>
    kind: str  # e-form field | model attribute
    label: str
    mapped: bool
    targets: tuple[str, ...]
    note: str

    def as_dict(self) -> dict[str, object]:
        """The entry as a JSON object (the targets as ``argo_fields``)."""
        data = {**asdict(self), "targets": list(self.targets)}
        return {("argo_fields" if k == "targets" else k): v for k, v in data.items()}


def coverage(mapping: Mapping, form_fields: Sequence[FormField]) -> list[CoverageEntry]:
    """The coverage of every field of the exported e-forms and of every model attribute the
    mapping names: mapped to which ARGO fields, or why not."""
    entries: list[CoverageEntry] = []
    for spec in form_fields:
        source, label = spec.source, spec.label
        targets = tuple(mapping.targets_of(source))
        if targets:
            note = mapping.notes.get(source, "")
        else:
            note = mapping.unmapped.get(source, "not in the mapping")
        entries.append(CoverageEntry(source, "e-form field", label, bool(targets), targets, note))
    for source in mapping.sources:
        if not source.startswith("model:"):
            continue
        targets = tuple(mapping.targets_of(source))
        note = mapping.notes.get(source, "") if targets else mapping.unmapped.get(source, "")
        label = source[len("model:") :]
        entries.append(
            CoverageEntry(source, "model attribute", label, bool(targets), targets, note)
        )
    return entries


def percentage(entries: list[CoverageEntry]) -> float:
    """Mapped variables as a percentage of all (0 when there are none)."""
    if not entries:
        return 0.0
    return 100.0 * sum(e.mapped for e in entries) / len(entries)
