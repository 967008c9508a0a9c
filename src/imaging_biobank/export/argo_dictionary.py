"""Reading an ICGC-ARGO data dictionary (Lectern format) the user gives at run time.

The dictionary is AGPL-3.0 and is not shipped: ``--dictionary PATH`` names either a folder
laid out as the ``icgc-argo/argo-dictionary`` repository (``schemas/*.json`` with
``references/list.json``, ``references/regex.json`` and, when present, the conditional
rules as ``references/validationFunctions/**.js`` or compiled in ``references/script.json``),
or one JSON file as Lectern serves or ``compile.js`` writes it (``{name, version, schemas,
references}``, rules inline or referenced). ``#/list/..``, ``#/regex/..`` and
``#/script/..`` references are resolved here; a rule whose source the dictionary does not
carry stays a named, unresolved rule (the validator then says how it was checked).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# the order ARGO lists its clinical files in (submission order: registration first)
SCHEMA_ORDER = (
    "sample_registration",
    "donor",
    "specimen",
    "primary_diagnosis",
    "treatment",
    "chemotherapy",
    "hormone_therapy",
    "radiation",
    "immunotherapy",
    "surgery",
    "follow_up",
    "exposure",
    "family_history",
    "biomarker",
    "comorbidity",
)


class DictionaryError(ValueError):
    """The path given is not an ARGO (Lectern) dictionary, or one of its references is broken."""


@dataclass(frozen=True)
class ScriptRule:
    """One conditional rule of a field: its name (``donor/ensureDeceased``, or ``inline-N``)
    and where its JavaScript is: inline source strings (compiled dictionaries), a CommonJS
    module under ``validationFunctions/`` (the repository layout), or neither."""

    name: str
    sources: tuple[str, ...] = ()
    module: str | None = None  # path relative to ``module_root``

    @property
    def has_source(self) -> bool:
        """Whether the dictionary carries the rule's JavaScript."""
        return bool(self.sources) or self.module is not None


@dataclass(frozen=True)
class Range:
    """A numeric range restriction (Lectern ``range``)."""

    min: float | None = None
    max: float | None = None
    exclusive_min: float | None = None
    exclusive_max: float | None = None

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the range."""
        if self.min is not None and value < self.min:
            return False
        if self.max is not None and value > self.max:
            return False
        if self.exclusive_min is not None and value <= self.exclusive_min:
            return False
        return not (self.exclusive_max is not None and value >= self.exclusive_max)

    def describe(self) -> str:
        """The range as a reader writes it (``> 0 and <= 90``)."""
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.exclusive_min is not None:
            parts.append(f"> {self.exclusive_min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.exclusive_max is not None:
            parts.append(f"< {self.exclusive_max:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Field:
    """One field of an ARGO schema with its restrictions, references resolved."""

    name: str
    value_type: str  # string | integer | number | boolean
    is_array: bool = False
    required: bool = False
    code_list: tuple[str | int | float, ...] | None = None
    regex: str | None = None
    range: Range | None = None
    scripts: tuple[ScriptRule, ...] = ()
    depends_on: tuple[str, ...] = ()  # meta.dependsOn, "schema.field"
    foreign_key: str | None = None  # meta.foreignKey, "schema.field"
    units: str | None = None


@dataclass(frozen=True)
class Schema:
    """One ARGO clinical file: its fields in the dictionary's order."""

    name: str
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> list[str]:
        """The TSV header: field names in schema order."""
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field | None:
        """The field called ``name``, if the schema has one."""
        return next((f for f in self.fields if f.name == name), None)


@dataclass
class Dictionary:
    """An ARGO dictionary: its schemas by name, where it came from and its version."""

    name: str
    version: str | None
    source: str
    schemas: dict[str, Schema]
    module_root: Path | None = None  # folder of validationFunctions/ (repository layout)
    module_sources: dict[str, str] = field(default_factory=dict)  # loaded lazily

    def schema(self, name: str) -> Schema:
        """The schema ``name``; a clear error naming the schemas there are otherwise."""
        if name not in self.schemas:
            known = ", ".join(self.schemas)
            raise DictionaryError(f"the dictionary has no schema {name!r} (it has: {known})")
        return self.schemas[name]

    def module_text(self, relative: str) -> str | None:
        """The JavaScript of one module under ``validationFunctions/``, if present."""
        if self.module_root is None:
            return None
        if relative not in self.module_sources:
            path = self.module_root / relative
            if not path.is_file():
                return None
            self.module_sources[relative] = path.read_text(encoding="utf-8")
        return self.module_sources[relative]

    @property
    def label(self) -> str:
        """Name and version for reports."""
        version = self.version or "version not stated"
        return f"{self.name} ({version}) from {self.source}"


def load_dictionary(path: str | Path) -> Dictionary:
    """Read the ARGO dictionary at ``path`` (a folder or one JSON file, see the module)."""
    path = Path(path)
    if path.is_dir():
        return _load_folder(path)
    if path.is_file():
        return _load_json_file(path)
    raise DictionaryError(f"{path}: no such file or folder (give an ARGO dictionary)")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DictionaryError(f"{path}: not readable JSON ({error})") from error


def _load_folder(folder: Path) -> Dictionary:
    schema_dir = folder / "schemas" if (folder / "schemas").is_dir() else folder
    files = sorted(schema_dir.glob("*.json"))
    raw_schemas = []
    for file in files:
        data = _read_json(file)
        if isinstance(data, dict) and "fields" in data and "name" in data:
            raw_schemas.append(data)
    if not raw_schemas:
        raise DictionaryError(
            f"{folder}: no Lectern schema (a JSON object with 'name' and 'fields') in"
            f" {schema_dir}; give the argo-dictionary folder or its compiled JSON"
        )
    ref_dir = folder / "references"
    references: dict[str, Any] = {}
    for kind in ("list", "regex", "script"):
        file = ref_dir / f"{kind}.json"
        if file.is_file():
            references[kind] = _read_json(file)
    module_root = ref_dir / "validationFunctions"
    version = None
    package = folder / "package.json"
    if package.is_file():
        data = _read_json(package)
        version = (
            str(data.get("version")) if isinstance(data, dict) and data.get("version") else None
        )
    return _build(
        name="ICGC-ARGO Data Dictionary",
        version=version,
        source=str(folder),
        raw_schemas=raw_schemas,
        references=references,
        module_root=module_root if module_root.is_dir() else None,
    )


def _load_json_file(file: Path) -> Dictionary:
    data = _read_json(file)
    if isinstance(data, list):  # the API's list of dictionaries: the last one
        data = data[-1] if data else {}
    if isinstance(data, dict) and "fields" in data and "name" in data:
        data = {"name": data["name"], "schemas": [data]}
    if not isinstance(data, dict) or not isinstance(data.get("schemas"), list):
        raise DictionaryError(
            f"{file}: not a Lectern dictionary (expected an object with 'schemas': [...])"
        )
    references = data.get("references") or {}
    return _build(
        name=str(data.get("name") or "ICGC-ARGO Data Dictionary"),
        version=str(data["version"]) if data.get("version") is not None else None,
        source=str(file),
        raw_schemas=data["schemas"],
        references=references if isinstance(references, dict) else {},
        module_root=None,
    )


def _build(
    *,
    name: str,
    version: str | None,
    source: str,
    raw_schemas: Sequence[Any],
    references: Mapping[str, Any],
    module_root: Path | None,
) -> Dictionary:
    resolver = _Resolver(references, module_root, source)
    schemas = {}
    for raw in raw_schemas:
        schema = resolver.schema(raw)
        schemas[schema.name] = schema
    order = {n: i for i, n in enumerate(SCHEMA_ORDER)}
    ordered = dict(sorted(schemas.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))
    return Dictionary(name, version, source, ordered, module_root)


class _Resolver:
    """Resolves ``#/kind/path`` references of one dictionary."""

    def __init__(self, references: Mapping[str, Any], module_root: Path | None, source: str):
        self.references = references
        self.module_root = module_root
        self.source = source
        self.inline = 0

    def lookup(self, ref: str) -> Any:
        parts = ref[2:].split("/")
        node: Any = self.references
        for part in parts:
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def schema(self, raw: Any) -> Schema:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("fields"), list):
            raise DictionaryError(f"{self.source}: a schema without 'fields'")
        name = str(raw["name"])
        return Schema(name, tuple(self.field(name, f) for f in raw["fields"]))

    def field(self, schema: str, raw: Mapping[str, Any]) -> Field:
        restrictions = raw.get("restrictions") or {}
        meta = raw.get("meta") or {}
        where = f"{schema}.{raw.get('name')}"
        code_list = restrictions.get("codeList")
        if isinstance(code_list, str):
            resolved = self.lookup(code_list) if code_list.startswith("#/") else None
            if not isinstance(resolved, list):
                raise DictionaryError(f"{self.source}: {where}: code list {code_list} not found")
            code_list = resolved
        regex = restrictions.get("regex")
        if isinstance(regex, str) and regex.startswith("#/"):
            resolved = self.lookup(regex)
            if not isinstance(resolved, str):
                raise DictionaryError(f"{self.source}: {where}: regex {regex} not found")
            regex = resolved
        raw_range = restrictions.get("range")
        value_range = None
        if isinstance(raw_range, Mapping):
            value_range = Range(
                raw_range.get("min"),
                raw_range.get("max"),
                raw_range.get("exclusiveMin"),
                raw_range.get("exclusiveMax"),
            )
        depends = meta.get("dependsOn")
        depends_on = tuple(depends) if isinstance(depends, list) else (depends,) if depends else ()
        return Field(
            name=str(raw["name"]),
            value_type=str(raw.get("valueType", "string")),
            is_array=bool(raw.get("isArray", False)),
            required=bool(restrictions.get("required", False)),
            code_list=tuple(code_list) if isinstance(code_list, list) else None,
            regex=regex if isinstance(regex, str) else None,
            range=value_range,
            scripts=self.scripts(restrictions.get("script")),
            depends_on=tuple(str(d) for d in depends_on),
            foreign_key=str(meta["foreignKey"]) if meta.get("foreignKey") else None,
            units=str(meta["units"]) if meta.get("units") else None,
        )

    def scripts(self, raw: Any) -> tuple[ScriptRule, ...]:
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        rules: list[ScriptRule] = []
        inline: list[str] = []
        for item in items:
            if not isinstance(item, str):
                continue
            if item.startswith("#/script/"):
                rules.append(self.named_script(item))
            else:
                inline.append(item)
        if inline:
            self.inline += 1
            rules.append(ScriptRule(f"inline-{self.inline}", tuple(inline)))
        return tuple(rules)

    def named_script(self, ref: str) -> ScriptRule:
        name = ref[len("#/script/") :]
        compiled = self.lookup(ref)
        if isinstance(compiled, str):
            compiled = [compiled]
        if isinstance(compiled, list) and all(isinstance(s, str) for s in compiled):
            return ScriptRule(name, tuple(compiled))
        if self.module_root is not None and (self.module_root / f"{name}.js").is_file():
            return ScriptRule(name, module=f"{name}.js")
        return ScriptRule(name)
