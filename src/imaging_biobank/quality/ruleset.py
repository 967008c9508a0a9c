"""Quality rules: YAML files in, validated rules out, or every problem with its file and line.

The package ships a default set (``quality/rules/default.yaml``); users add files of their
own. A rule in a later file with the id of an earlier one overrides it field by field (so
``{id: ct-slice-thickness, max: 3}`` changes only the threshold, ``enabled: false`` turns a
rule off); a rule with a new id is added. A rule is a small set of parameters of one of a
few check kinds, never SQL: every field it names is checked against the schema here.

    format: imaging-biobank/rules@1        # optional
    rules:
      - id: ct-slice-thickness
        title: CT slice thickness at most 5 mm
        severity: warning                   # error | warning | info
        scope: series                       # series | study | donor | instance | collection
        check: range
        field: acquisition_parameters.slice_thickness
        max: 5
        where: {modality: CT}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy import Column

from imaging_biobank.quality import scopes
from imaging_biobank.yaml_lines import Problem, YamlSource, YamlSyntaxError, load_yaml

FORMAT = "imaging-biobank/rules@1"
SEVERITIES = ("error", "warning", "info")  # most severe first
YamlPath = tuple[str | int, ...]


# ---- problems ----------------------------------------------------------------------------


class RulesError(ValueError):
    """The rules were refused; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# ---- YAML with the line of every element ------------------------------------------------


def _load_yaml(text: str, name: str) -> YamlSource:
    """One YAML document (safe loader) with its lines; ``RulesError`` if it is not YAML."""
    try:
        return load_yaml(text, name)
    except YamlSyntaxError as error:
        raise RulesError([Problem(name, error.line, (), error.problem)]) from None


# ---- the rule models --------------------------------------------------------------------


def _where(value: Any) -> dict[str, Any]:
    """A ``where`` filter: field -> value, list of values, null, or {not: value(s)}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "where", "expected a mapping of field: value (e.g. {{modality: CT}})"
        )
    for key, wanted in value.items():
        if not isinstance(key, str):
            raise PydanticCustomError("where", "field names are text, got {key!r}", {"key": key})
        if isinstance(wanted, dict):
            if set(wanted) != {"not"}:
                raise PydanticCustomError(
                    "where",
                    "{key}: a mapping here must be {{not: value or [values]}}",
                    {"key": key},
                )
            wanted = wanted["not"]
        values = wanted if isinstance(wanted, list) else [wanted]
        for item in values:
            if item is not None and not isinstance(item, str | int | float | dt.date):
                raise PydanticCustomError(
                    "where",
                    "{key}: values are text, numbers or dates, got {got}",
                    {"key": key, "got": type(item).__name__},
                )
    return dict(value)


def _fields(value: Any) -> Any:
    """``field`` of a required rule: one field name, or a list (any one present is enough)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise PydanticCustomError("fields", "expected a field name or a list of field names")


Where = Annotated[dict[str, Any], BeforeValidator(_where)]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]
Severity = Literal["error", "warning", "info"]
ScopeName = Literal["series", "study", "donor", "instance", "collection"]


class _Rule(BaseModel):
    """What every rule has. Unknown fields are refused, naming the allowed ones."""

    model_config = ConfigDict(str_strip_whitespace=True, frozen=True, extra="forbid")

    id: RuleId
    title: Annotated[str, Field(min_length=1)]
    severity: Severity
    scope: ScopeName
    description: str | None = None
    enabled: bool = True
    check: str

    SCOPES: ClassVar[tuple[str, ...]] = ()  # the scopes the check kind supports

    def semantics(self) -> list[tuple[YamlPath, str]]:
        """Problems only the schema can tell (fields that do not exist, wrong scope)."""
        if self.SCOPES and self.scope not in self.SCOPES:
            return [(("scope",), f"a {self.check} check works on {', '.join(self.SCOPES)}")]
        return []

    def parameters(self) -> dict[str, Any]:
        """The check's own parameters (for listings and the JSON report)."""
        common = set(_Rule.model_fields)
        return {
            k: v
            for k, v in self.model_dump(exclude_none=True).items()
            if k not in common and v not in ({}, None)
        }


def _where_problems(
    columns: Callable[[str], Column[Any]], where: dict[str, Any], key: str = "where"
) -> list[tuple[YamlPath, str]]:
    """Fields of a ``where`` filter that do not exist, and values their columns cannot hold."""
    problems: list[tuple[YamlPath, str]] = []
    for name, wanted in where.items():
        try:
            column = columns(name)
            if scopes.is_json(column):
                raise scopes.FieldError(f"{scopes.label(column)} is JSON; not filterable")
            inner = wanted["not"] if isinstance(wanted, dict) else wanted
            for value in inner if isinstance(inner, list) else [inner]:
                scopes.coerce(column, value)
        except scopes.FieldError as error:
            problems.append(((key, name), str(error)))
    return problems


class RangeRule(_Rule):
    """A numeric field between ``min`` and ``max`` (inclusive). Where the table also keeps
    the field's min and max over the series' instances, those must be in range too."""

    check: Literal["range"]
    field: str
    min: float | None = None
    max: float | None = None
    where: Where = {}

    SCOPES: ClassVar[tuple[str, ...]] = scopes.SCOPES

    def semantics(self) -> list[tuple[YamlPath, str]]:
        problems = super().semantics()
        if problems:
            return problems
        scope = scopes.SCOPE[self.scope]
        try:
            column = scope.resolve(self.field)
            if not scopes.is_numeric(column):
                problems.append((("field",), f"{scopes.label(column)} is not a number"))
        except scopes.FieldError as error:
            problems.append((("field",), str(error)))
        if self.min is None and self.max is None:
            problems.append(((), "a range check needs min, max or both"))
        elif self.min is not None and self.max is not None and self.min > self.max:
            problems.append((("min",), f"min ({self.min:g}) is above max ({self.max:g})"))
        return problems + _where_problems(scope.resolve, self.where)


class OneValueRule(_Rule):
    """At most ``max_values`` distinct values of a series field per collection (after
    ``normalise``: exact, casefold, or alpha_prefix: the leading letters, e.g. a kernel
    family B of B30f and B70f)."""

    check: Literal["one_value_per_collection"]
    field: str
    normalise: Literal["exact", "casefold", "alpha_prefix"] = "exact"
    max_values: Annotated[int, Field(ge=1)] = 1
    where: Where = {}

    SCOPES: ClassVar[tuple[str, ...]] = ("collection",)

    def semantics(self) -> list[tuple[YamlPath, str]]:
        problems = super().semantics()  # the fields are the series' whatever the scope
        series = scopes.SCOPE["series"]
        try:
            column = series.resolve(self.field)
            if scopes.is_json(column):
                problems.append((("field",), f"{scopes.label(column)} is JSON; not comparable"))
        except scopes.FieldError as error:
            problems.append((("field",), str(error)))
        return problems + _where_problems(series.resolve, self.where)


class RequiredRule(_Rule):
    """A value must be present (``field``: one name, or a list of which any one will do),
    or a related row must exist (``related``: a table pointing at the scope's table,
    filtered by ``related_where``), e.g. donors without a diagnosis event."""

    check: Literal["required"]
    field: Annotated[str | list[str] | None, BeforeValidator(_fields)] = None
    related: str | None = None
    related_where: Where = {}
    where: Where = {}

    SCOPES: ClassVar[tuple[str, ...]] = scopes.SCOPES

    @property
    def fields(self) -> list[str]:
        if self.field is None:
            return []
        return [self.field] if isinstance(self.field, str) else list(self.field)

    def semantics(self) -> list[tuple[YamlPath, str]]:
        problems = super().semantics()
        if problems:
            return problems
        scope = scopes.SCOPE[self.scope]
        if (self.field is None) == (self.related is None):
            return [((), "a required check needs one of field or related")]
        for i, name in enumerate(self.fields):
            path: YamlPath = ("field", i) if isinstance(self.field, list) else ("field",)
            try:
                scope.resolve(name)
            except scopes.FieldError as error:
                problems.append((path, str(error)))
        if self.related is not None:
            try:
                table, _ = scopes.related_table(scope, self.related)
            except scopes.FieldError as error:
                problems.append((("related",), str(error)))
            else:

                def column(name: str) -> Column[Any]:
                    if name not in table.c:
                        raise scopes.FieldError(f"{table.name} has no column {name!r}")
                    return table.c[name]

                problems += _where_problems(column, self.related_where, "related_where")
        elif self.related_where:
            problems.append((("related_where",), "related_where goes with related"))
        return problems + _where_problems(scope.resolve, self.where)


class StudyOneDonorRule(_Rule):
    """Linkage: the series of one Study Instance UID belong to one donor (one PatientID)."""

    check: Literal["study_one_donor"]
    SCOPES: ClassVar[tuple[str, ...]] = ("study",)


class StudyHasSeriesRule(_Rule):
    """Linkage: every study has a series. The writer files an instance under its series, so
    a series whose instances name two Study Instance UIDs leaves the other study empty."""

    check: Literal["study_has_series"]
    SCOPES: ClassVar[tuple[str, ...]] = ("study",)


class InstanceFileRule(_Rule):
    """The file an instance was read from is still there (``missing``) with the size it had
    (``size``): different content under a catalogued SOP Instance UID."""

    check: Literal["instance_file"]
    missing: bool = True
    size: bool = True

    SCOPES: ClassVar[tuple[str, ...]] = ("instance",)


class DeidentifiedRule(_Rule):
    """Series ingested outside any recorded de-identification run (``ingest --deidentify``,
    table deidentification_run) of their collection."""

    check: Literal["deidentified"]
    SCOPES: ClassVar[tuple[str, ...]] = ("series", "collection")


Rule = Annotated[
    RangeRule
    | OneValueRule
    | RequiredRule
    | StudyOneDonorRule
    | StudyHasSeriesRule
    | InstanceFileRule
    | DeidentifiedRule,
    Field(discriminator="check"),
]
CHECKS: dict[str, type[_Rule]] = {
    "range": RangeRule,
    "one_value_per_collection": OneValueRule,
    "required": RequiredRule,
    "study_one_donor": StudyOneDonorRule,
    "study_has_series": StudyHasSeriesRule,
    "instance_file": InstanceFileRule,
    "deidentified": DeidentifiedRule,
}
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Rule)


@dataclass(frozen=True)
class LoadedRule:
    """A validated rule and where it was written (``default`` and/or ``file:line``)."""

    rule: _Rule
    sources: tuple[str, ...]

    @property
    def source(self) -> str:
        return ", overridden by ".join(self.sources)


# ---- loading and merging ----------------------------------------------------------------


def default_rules_text() -> str:
    """The default rules shipped in the package."""
    from importlib.resources import files

    return (files("imaging_biobank.quality") / "rules" / "default.yaml").read_text("utf-8")


@dataclass
class _Entry:
    """One rule id while files are merged: its fields and where each was written."""

    data: dict[str, Any]
    origin: dict[str, tuple[YamlSource, YamlPath]]
    item: tuple[YamlSource, YamlPath]
    sources: list[str]

    def where(self, path: YamlPath) -> tuple[str, int | None, YamlPath]:
        """File, line and in-file path of ``path`` (relative to the rule): the file that
        wrote that field, else the last file that wrote the rule."""
        key = path[0] if path else None
        source, prefix = (
            self.origin[key] if isinstance(key, str) and key in self.origin else self.item
        )
        full = (*prefix, *path)
        return source.name, source.line_of(full), full


def _items(source: YamlSource, problems: list[Problem]) -> Iterable[tuple[int, dict[str, Any]]]:
    """The rule mappings of one file, after its top-level checks."""
    name, data = source.name, source.data
    if not isinstance(data, dict):
        problems.append(Problem(name, 1, (), "expected a mapping with a 'rules' list"))
        return
    for key in data:
        if key not in ("format", "rules"):
            problems.append(
                Problem(name, source.line_of((key,)), (key,), "unknown key; allowed: format, rules")
            )
    if "format" in data and data["format"] != FORMAT:
        problems.append(
            Problem(
                name,
                source.line_of(("format",)),
                ("format",),
                f"{data['format']!r} is not a format this version reads ({FORMAT})",
            )
        )
    rules = data.get("rules")
    if not isinstance(rules, list):
        message = "required list is missing" if rules is None else "expected a list of rules"
        problems.append(Problem(name, source.line_of(("rules",)), ("rules",), message))
        return
    seen: dict[str, int] = {}
    for i, item in enumerate(rules):
        path: YamlPath = ("rules", i)
        if not isinstance(item, dict):
            problems.append(Problem(name, source.line_of(path), path, "expected a mapping"))
            continue
        rule_id = item.get("id")
        if not isinstance(rule_id, str) or not rule_id.strip():
            where = source.line_of((*path, "id"))
            problems.append(Problem(name, where, (*path, "id"), "every rule needs an id"))
            continue
        if rule_id in seen:
            problems.append(
                Problem(
                    name,
                    source.line_of((*path, "id")),
                    (*path, "id"),
                    f"rule {rule_id!r} is defined twice in this file"
                    f" (first at rules[{seen[rule_id]}])",
                )
            )
            continue
        seen[rule_id] = i
        yield i, item


def _merge(entries: dict[str, _Entry], source: YamlSource, problems: list[Problem]) -> None:
    for i, item in _items(source, problems):
        prefix: YamlPath = ("rules", i)
        rule_id = item["id"].strip()
        where = f"{source.name}:{source.line_of(prefix)}"
        known = entries.get(rule_id)
        replace = known is None or ("check" in item and item["check"] != known.data.get("check"))
        if known is None or replace:
            previous = known.sources if known is not None else []
            entries[rule_id] = _Entry(
                dict(item),
                {key: (source, prefix) for key in item},
                (source, prefix),
                [*previous, where],
            )
            continue
        known.data.update(item)
        known.origin.update({key: (source, prefix) for key in item})
        known.item = (source, prefix)
        known.sources.append(where)


def _validate(entry: _Entry, problems: list[Problem]) -> _Rule | None:
    def problem(path: YamlPath, message: str) -> None:
        file, line, full = entry.where(path)
        problems.append(Problem(file, line, full, message))

    try:
        rule: _Rule = _ADAPTER.validate_python(entry.data)
    except ValidationError as error:
        for item in error.errors(include_url=False):
            loc: YamlPath = tuple(p for p in item["loc"] if isinstance(p, str | int))
            if loc and loc[0] in CHECKS and loc[0] == entry.data.get("check"):
                loc = loc[1:]  # the tag pydantic puts first
            ctx = item.get("ctx") or {}
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                check = entry.data["check"]
                allowed = ", ".join(sorted(CHECKS[check].model_fields))
                message = f"unknown field for a {check} check; allowed: {allowed}"
            elif item["type"] == "missing":
                message = "required field is missing"
            elif item["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc = ("check",)
                message = (
                    f"unknown check {entry.data.get('check')!r}; allowed: {', '.join(CHECKS)}"
                    if "check" in entry.data
                    else f"required field is missing; allowed checks: {', '.join(CHECKS)}"
                )
            elif item["type"] == "literal_error" and "expected" in ctx:
                message = f"{item['input']!r} is not allowed; allowed: {ctx['expected']}"
            elif item["type"] == "string_pattern_mismatch" and loc == ("id",):
                message = "ids are lower case letters, digits, '.', '_' and '-'"
            problem(loc, message)
        return None
    found = rule.semantics()
    for path, message in found:
        problem(path, message)
    return None if found else rule


def parse_rules(texts: Sequence[tuple[str, str]]) -> list[LoadedRule]:
    """The enabled rules of ``(name, text)`` documents, later ones overriding earlier ones
    by id; ``RulesError`` listing every problem (file, line, field) otherwise."""
    problems: list[Problem] = []
    entries: dict[str, _Entry] = {}
    for name, text in texts:
        try:
            source = _load_yaml(text, name)
        except RulesError as error:
            problems.extend(error.problems)
            continue
        _merge(entries, source, problems)
    loaded: list[LoadedRule] = []
    for entry in entries.values():
        enabled = entry.data.get("enabled", True)
        if enabled is False:
            continue
        rule = _validate(entry, problems)
        if rule is not None:
            loaded.append(LoadedRule(rule, tuple(entry.sources)))
    if problems:
        problems.sort(key=lambda p: (p.file, p.line or 0, p.field))
        raise RulesError(problems)
    return loaded


def load_rules(files: Sequence[Path] = (), *, defaults: bool = True) -> list[LoadedRule]:
    """The default rules (unless ``defaults`` is false) extended and overridden by
    ``files``, in order; ``RulesError`` with every problem, file and line otherwise."""
    texts: list[tuple[str, str]] = [("default", default_rules_text())] if defaults else []
    problems: list[Problem] = []
    for path in files:
        try:
            texts.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as error:
            problems.append(Problem(str(path), None, (), f"cannot read: {error.strerror}"))
        except UnicodeDecodeError:
            problems.append(Problem(str(path), None, (), "not UTF-8 text"))
    try:
        rules = parse_rules(texts)
    except RulesError as error:
        problems.extend(error.problems)
    if problems:
        raise RulesError(problems)
    return rules
