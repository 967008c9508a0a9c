"""Validating ARGO clinical TSVs against a dictionary: every problem with file, row, field
and why.

What is checked, as the Lectern client checks it: the header (a column the schema does not
have), each value's type (``integer``, ``number``, ``boolean``; ``isArray`` values split on
``|``), ``required``, ``codeList`` (matched without regard to case, as Lectern's parser
does), ``regex`` (JavaScript semantics: a search, the dictionary's patterns anchor
themselves), ``range``, and the conditional ``script`` rules (see ``argo_scripts``). Then
across files: ``meta.foreignKey`` (a donor in ``donor.tsv`` must be registered in
``sample_registration.tsv``, ...) and ARGO's rule that submitter ids must not start with
the prefixes of its own ids (DO, SP, SA, TR, FU, PD: the submission documentation).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from imaging_biobank.export.argo_dictionary import Dictionary, Field, Schema
from imaging_biobank.export.argo_scripts import RuleRunner, Value

ARRAY_SEPARATOR = "|"
ARGO_ID_PREFIXES = ("DO", "SP", "SA", "TR", "FU", "PD")
_INTEGER = re.compile(r"^[+-]?\d+$")

Severity = Literal["error", "not checked"]


@dataclass(frozen=True)
class Issue:
    """One problem: the file, the data row (1 = first row under the header; 0 = the file
    itself), the field, the value, the rule and why."""

    file: str
    row: int
    field: str
    value: str
    rule: str
    message: str
    severity: Severity = "error"
    checked_by: str = "dictionary"

    def as_dict(self) -> dict[str, Any]:
        """The issue as a JSON object."""
        return asdict(self)


@dataclass
class ValidationReport:
    """All issues of one submission, and how the rules were checked."""

    dictionary: str
    issues: list[Issue] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # file -> data rows
    script_checks: dict[str, int] = field(default_factory=dict)  # checker -> count

    @property
    def errors(self) -> list[Issue]:
        """The issues that make the submission invalid."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def unchecked(self) -> list[Issue]:
        """Rules that could not be checked (no source, no rule of ours)."""
        return [i for i in self.issues if i.severity == "not checked"]

    @property
    def valid(self) -> bool:
        """Whether no restriction failed."""
        return not self.errors


def split_array(raw: str) -> list[str]:
    """The values of an ``isArray`` cell (``a|b``), blanks dropped."""
    return [part.strip() for part in raw.split(ARRAY_SEPARATOR) if part.strip()]


def _parse_scalar(spec: Field, raw: str) -> tuple[Value, str | None]:
    """The typed value of one cell, or an error saying what the type wants."""
    if spec.value_type == "integer":
        if not _INTEGER.match(raw):
            return None, f"{raw!r} is not an integer"
        return int(raw), None
    if spec.value_type == "number":
        try:
            number = float(raw)
        except ValueError:
            return None, f"{raw!r} is not a number"
        if number != number or number in (float("inf"), float("-inf")):
            return None, f"{raw!r} is not a finite number"
        return number, None
    if spec.value_type == "boolean":
        if raw.lower() not in ("true", "false"):
            return None, f"{raw!r} is not true or false"
        return raw.lower() == "true", None
    return raw, None


def _typed(spec: Field, raw: str) -> tuple[Value, list[str]]:
    """The value Lectern hands to rules: strings stay strings ('' when empty), arrays are
    lists, numbers are numbers (None when empty or malformed)."""
    raw = raw.strip()
    if spec.is_array:
        items = split_array(raw)
        errors = [e for e in (_parse_scalar(spec, i)[1] for i in items) if e]
        return items, errors
    if not raw:
        return ("" if spec.value_type == "string" else None), []
    value, error = _parse_scalar(spec, raw)
    return value, [error] if error else []


class Validator:
    """Validates tables (lists of rows of strings) of one submission against a dictionary."""

    def __init__(self, dictionary: Dictionary, use_javascript: bool = True):
        self.dictionary = dictionary
        self.rules = RuleRunner(dictionary, use_javascript=use_javascript)

    def validate(
        self,
        tables: Mapping[str, Sequence[Mapping[str, str]]],
        headers: Mapping[str, Sequence[str]] | None = None,
        file_names: Mapping[str, str] | None = None,
    ) -> ValidationReport:
        """Check ``tables`` (schema name -> rows of raw cells) and their headers."""
        report = ValidationReport(self.dictionary.label)
        names = dict(file_names or {})
        for schema_name, rows in tables.items():
            file = names.get(schema_name, f"{schema_name}.tsv")
            schema = self.dictionary.schemas.get(schema_name)
            if schema is None:
                report.issues.append(
                    Issue(
                        file, 0, "", "", "schema", f"the dictionary has no schema {schema_name!r}"
                    )
                )
                continue
            header = list(headers[schema_name]) if headers and schema_name in headers else None
            self._check_header(report, file, schema, header)
            report.rows[file] = len(rows)
            for number, row in enumerate(rows, start=1):
                self._check_row(report, file, schema, number, row)
        self._check_foreign_keys(report, tables, names)
        return report

    def _check_header(
        self, report: ValidationReport, file: str, schema: Schema, header: list[str] | None
    ) -> None:
        if header is None:
            return
        known = set(schema.field_names)
        for column in header:
            if column not in known:
                report.issues.append(
                    Issue(
                        file,
                        0,
                        column,
                        "",
                        "unknownField",
                        f"{schema.name} has no field {column!r}",
                    )
                )
        for spec in schema.fields:
            if spec.required and spec.name not in header:
                report.issues.append(
                    Issue(file, 0, spec.name, "", "missingColumn", "required column missing")
                )

    def _check_row(
        self,
        report: ValidationReport,
        file: str,
        schema: Schema,
        number: int,
        row: Mapping[str, str],
    ) -> None:
        typed: dict[str, Value] = {}
        for spec in schema.fields:
            raw = (row.get(spec.name) or "").strip()
            value, type_errors = _typed(spec, raw)
            typed[spec.name] = value
            for message in type_errors:
                report.issues.append(Issue(file, number, spec.name, raw, "valueType", message))
            if type_errors:
                continue
            self._check_value(report, file, number, spec, raw, value)
        for spec in schema.fields:
            for rule in spec.scripts:
                outcome = self.rules.check(rule, spec, typed)
                report.script_checks[outcome.checked_by] = (
                    report.script_checks.get(outcome.checked_by, 0) + 1
                )
                if outcome.valid is True:
                    continue
                issue = Issue(
                    file=file,
                    row=number,
                    field=spec.name,
                    value=(row.get(spec.name) or "").strip(),
                    rule=f"script:{rule.name}",
                    message=outcome.message or "invalid by the rule",
                    severity="error" if outcome.valid is False else "not checked",
                    checked_by=outcome.checked_by,
                )
                report.issues.append(issue)

    def _check_value(
        self,
        report: ValidationReport,
        file: str,
        number: int,
        spec: Field,
        raw: str,
        value: Value,
    ) -> None:
        def add(rule: str, message: str) -> None:
            report.issues.append(Issue(file, number, spec.name, raw, rule, message))

        items: list[Any] = value if isinstance(value, list) else [] if raw == "" else [value]
        if spec.required and not items:
            add("required", "a value is required")
            return
        if spec.is_array and spec.value_type != "string":
            items = [_parse_scalar(spec, str(i))[0] for i in items]
        if spec.code_list is not None:
            allowed = {str(c).lower() for c in spec.code_list}
            for item in items:
                if str(item).lower() not in allowed:
                    shown = ", ".join(str(c) for c in spec.code_list[:12])
                    more = (
                        f" (+{len(spec.code_list) - 12} more)" if len(spec.code_list) > 12 else ""
                    )
                    add("codeList", f"{item!r} is not one of: {shown}{more}")
        if spec.regex is not None:
            pattern = re.compile(spec.regex)
            for item in items:
                if not pattern.search(str(item)):
                    add("regex", f"{item!r} does not match {spec.regex}")
        if spec.range is not None:
            for item in items:
                if isinstance(item, int | float) and not spec.range.contains(float(item)):
                    add("range", f"{item} is out of range ({spec.range.describe()})")
        if spec.name.startswith("submitter_") and spec.name.endswith("_id"):
            for item in items:
                if str(item).upper().startswith(ARGO_ID_PREFIXES):
                    add(
                        "argoIdPrefix",
                        f"{item!r} starts with a prefix ARGO keeps for its own ids"
                        f" ({', '.join(ARGO_ID_PREFIXES)})",
                    )

    def _check_foreign_keys(
        self,
        report: ValidationReport,
        tables: Mapping[str, Sequence[Mapping[str, str]]],
        names: Mapping[str, str],
    ) -> None:
        for schema_name, rows in tables.items():
            schema = self.dictionary.schemas.get(schema_name)
            if schema is None:
                continue
            file = names.get(schema_name, f"{schema_name}.tsv")
            for spec in schema.fields:
                if not spec.foreign_key or "." not in spec.foreign_key:
                    continue
                target_schema, target_field = spec.foreign_key.split(".", 1)
                if target_schema not in tables:
                    continue
                known = {(r.get(target_field) or "").strip() for r in tables[target_schema]}
                target_file = names.get(target_schema, f"{target_schema}.tsv")
                for number, row in enumerate(rows, start=1):
                    raw = (row.get(spec.name) or "").strip()
                    if raw and raw not in known:
                        why = f"{raw!r} is not a {target_field} of {target_file}"
                        report.issues.append(Issue(file, number, spec.name, raw, "foreignKey", why))


def read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of one TSV file (UTF-8, tab-separated, no quoting)."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, [])
        header = [h.strip() for h in header]
        rows = [dict(zip(header, cells, strict=False)) for cells in reader if any(cells)]
    return header, rows


def validate_files(
    dictionary: Dictionary, paths: Iterable[Path], use_javascript: bool = True
) -> ValidationReport:
    """Validate TSV files named after their schema (``donor.tsv``; a ``donor_*.tsv`` or
    ``*-donor.tsv`` name is matched too)."""
    tables: dict[str, list[dict[str, str]]] = {}
    headers: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    unmatched: list[str] = []
    for path in paths:
        schema = _schema_of_file(dictionary, path)
        if schema is None:
            unmatched.append(path.name)
            continue
        header, rows = read_tsv(path)
        tables[schema], headers[schema], names[schema] = rows, header, path.name
    report = Validator(dictionary, use_javascript).validate(tables, headers, names)
    for name in unmatched:
        report.issues.append(
            Issue(name, 0, "", "", "schema", "the file name names no schema of the dictionary")
        )
    return report


def _schema_of_file(dictionary: Dictionary, path: Path) -> str | None:
    stem = path.stem.lower()
    if stem in dictionary.schemas:
        return stem
    for name in sorted(dictionary.schemas, key=len, reverse=True):
        if stem.startswith(name + "_") or stem.endswith("-" + name) or stem.endswith("_" + name):
            return name
    return None
