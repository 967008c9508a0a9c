"""The conditional rules of an ARGO dictionary (its ``script`` restrictions).

ARGO writes these rules in JavaScript, run by the Lectern client in Node's V8. We run them
the same way where the dictionary carries their source: in V8 through ``mini-racer`` (an
optional dependency, ``imaging-biobank[argo]``), each rule called with ``{$row, $field,
$name}`` and answering ``{valid, message}``, as Lectern calls it. Both forms ARGO has used
are accepted: compiled strings (``function validate(inputs) {...}`` or an immediately
invoked function reading ``$row``/``$field``/``$name``) and the repository's CommonJS
modules (``module.exports = validation`` or an array of them, ``require`` between them).

A dictionary whose rules are only named (``#/script/donor/ensureDeceased`` without the
``validationFunctions`` folder) cannot be run. For those we have our own reading of the
rules that bear on what our export fills (written from the rule names, the fields'
``dependsOn`` and notes, and ARGO's documentation), and say that it was ours that checked.
A rule neither runnable nor known to us is reported as not checked, never as passed, unless
the field and every field it depends on are empty (there is then nothing to check).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from imaging_biobank.export.argo_dictionary import Dictionary, Field, ScriptRule

Value = str | int | float | bool | list[str] | None
Row = Mapping[str, Value]

Checker = Literal["javascript", "ours", "none"]


@dataclass(frozen=True)
class RuleOutcome:
    """What one rule said of one field of one row."""

    valid: bool | None  # None: not checked
    message: str
    checked_by: Checker


PASS_OURS = RuleOutcome(True, "", "ours")

# the Lectern calling convention, written for this module (not ARGO's or Lectern's code)
_PRELUDE = r"""
var __src = {}, __cache = {}, __inline = {};
function __norm(parts) {
  var out = [];
  for (var i = 0; i < parts.length; i++) {
    var p = parts[i];
    if (p === '' || p === '.') continue;
    if (p === '..') out.pop(); else out.push(p);
  }
  return out.join('/');
}
function __resolve(from, spec) {
  var key = __norm(from.split('/').slice(0, -1).concat(spec.split('/')));
  if (!(key in __src) && ((key + '.js') in __src)) key = key + '.js';
  return key;
}
function __load(key) {
  if (key in __cache) return __cache[key].exports;
  if (!(key in __src)) throw new Error('module not found: ' + key);
  var module = {exports: {}};
  __cache[key] = module;
  var body = new Function('module', 'exports', 'require', __src[key]);
  body(module, module.exports, function (spec) { return __load(__resolve(key, spec)); });
  return module.exports;
}
function __setGlobals(inputs) {
  globalThis.$row = inputs.$row; globalThis.$field = inputs.$field; globalThis.$name = inputs.$name;
}
function __answer(list, inputs, call) {
  var result = {valid: true, message: 'Ok'};
  for (var i = 0; i < list.length; i++) {
    __setGlobals(inputs);
    result = call(list[i]);
    if (typeof result === 'function') result = result(inputs);
    if (!result || typeof result !== 'object') {
      return JSON.stringify({valid: false, message: 'the rule returned no {valid, message}'});
    }
    if (!result.valid) break;
  }
  return JSON.stringify({valid: !!result.valid, message: String(result.message || '')});
}
function __runInline(key, inputsJson) {
  var inputs = JSON.parse(inputsJson);
  return __answer(__inline[key], inputs, function (text) {
    var code = /^\s*(async\s+)?function\b/.test(text) ? '(' + text + ')' : text;
    return (0, eval)(code);
  });
}
function __runModule(key, inputsJson) {
  var inputs = JSON.parse(inputsJson);
  var exported = __load(key);
  var list = Array.isArray(exported) ? exported : [exported];
  return __answer(list, inputs, function (fn) {
    return typeof fn === 'function' ? fn(inputs.$row, inputs.$field, inputs.$name) : fn;
  });
}
"""

_REQUIRE = re.compile(r"""require\(\s*['"]([^'"]+)['"]\s*\)""")


def javascript_available() -> bool:
    """Whether a JavaScript engine (``mini-racer``: V8) is installed."""
    try:
        import py_mini_racer  # noqa: F401
    except ImportError:
        return False
    return True


class JavaScriptRules:
    """Runs a dictionary's own rules in V8 (``mini-racer``), as the Lectern client does."""

    TIMEOUT_MS = 5000

    def __init__(self, dictionary: Dictionary):
        from py_mini_racer import MiniRacer

        self.dictionary = dictionary
        self.context = MiniRacer()
        self.context.eval(_PRELUDE)
        self.registered: set[str] = set()

    def _register_module(self, relative: str) -> None:
        pending = [relative]
        while pending:
            key = pending.pop()
            if key in self.registered:
                continue
            text = self.dictionary.module_text(key)
            if text is None:
                continue  # the require fails inside JS, with its message
            self.context.eval(f"__src[{json.dumps(key)}] = {json.dumps(text)};")
            self.registered.add(key)
            folder = key.rsplit("/", 1)[0] if "/" in key else ""
            for spec in _REQUIRE.findall(text):
                parts = [p for p in (folder + "/" + spec).split("/") if p not in ("", ".")]
                resolved: list[str] = []
                for part in parts:
                    if part == "..":
                        if resolved:
                            resolved.pop()
                    else:
                        resolved.append(part)
                path = "/".join(resolved)
                pending.append(path if path.endswith(".js") else path + ".js")

    def run(self, rule: ScriptRule, row: Row, name: str) -> RuleOutcome:
        """Call ``rule`` on field ``name`` of ``row`` (typed values, as Lectern passes them)."""
        from py_mini_racer import JSEvalException, JSTimeoutException

        # as Lectern converts a record: an empty value is absent (undefined), not ''
        present = {k: v for k, v in row.items() if not _blank(v)}
        inputs = json.dumps({"$row": present, "$field": present.get(name), "$name": name})
        try:
            if rule.sources:
                key = f"inline:{rule.name}"
                if key not in self.registered:
                    self.context.eval(f"__inline[{json.dumps(key)}] = {json.dumps(rule.sources)};")
                    self.registered.add(key)
                answer = self.context.call("__runInline", key, inputs, timeout=self.TIMEOUT_MS)
            else:
                assert rule.module is not None
                self._register_module(rule.module)
                answer = self.context.call(
                    "__runModule", rule.module, inputs, timeout=self.TIMEOUT_MS
                )
        except (JSEvalException, JSTimeoutException) as error:
            first = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            return RuleOutcome(False, f"the rule failed to run ({first})", "javascript")
        result = json.loads(str(answer))
        return RuleOutcome(bool(result["valid"]), str(result["message"]), "javascript")


# ---------------------------------------------------------------------------------------
# our reading of the rules, for dictionaries that name a rule without carrying its source


def _blank(value: Value) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return all(_blank(v) for v in value)
    return isinstance(value, str) and not value.strip()


def _low(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "|".join(str(v).strip().lower() for v in value)
    return str(value).strip().lower()


def _fail(message: str) -> RuleOutcome:
    return RuleOutcome(False, message, "ours")


def _ensure_deceased(row: Row, name: str) -> RuleOutcome:
    deceased = _low(row.get("vital_status")) == "deceased"
    if deceased and _blank(row.get(name)):
        return _fail(f"{name} must be provided when the donor's vital_status is Deceased")
    if not deceased and not _blank(row.get(name)):
        return _fail(f"{name} cannot be provided unless the donor's vital_status is Deceased")
    return PASS_OURS


_NORMAL_TYPES = {
    "normal",
    "normal - tissue adjacent to primary tumour",
    "cell line - derived from normal",
}


def _specimen_type_designation(row: Row, name: str) -> RuleOutcome:
    designation = _low(row.get("tumour_normal_designation"))
    specimen_type = _low(row.get(name))
    if designation == "normal" and specimen_type not in _NORMAL_TYPES:
        return _fail("a Normal specimen must have a normal specimen_type")
    if designation == "tumour" and specimen_type in {"normal", "cell line - derived from normal"}:
        return _fail("a Tumour specimen cannot have a normal specimen_type")
    return PASS_OURS


_TREATMENT_CORE = (
    "is_primary_treatment",
    "treatment_start_interval",
    "treatment_duration",
    "treatment_intent",
    "treatment_setting",
    "response_to_treatment",
)


def _no_treatment(row: Row) -> bool:
    types = row.get("treatment_type")
    values = [v.strip().lower() for v in types] if isinstance(types, list) else [_low(types)]
    return values == ["no treatment"]


def _check_when_no_treatment(row: Row, name: str) -> RuleOutcome:
    if _blank(row.get("treatment_type")):
        return PASS_OURS
    if _no_treatment(row):
        if name in _TREATMENT_CORE and not _blank(row.get(name)):
            return _fail(f"{name} cannot be submitted when treatment_type is 'No treatment'")
        return PASS_OURS
    if name in _TREATMENT_CORE and _blank(row.get(name)):
        return _fail(f"{name} must be submitted when a treatment was given")
    return PASS_OURS


def _response_to_treatment(row: Row, name: str) -> RuleOutcome:
    outcome = _check_when_no_treatment(row, name)
    if outcome.valid is False:
        return outcome
    method = row.get("response_to_treatment_criteria_method")
    if not _blank(method) and _blank(row.get(name)):
        return _fail(f"{name} must be submitted when response_to_treatment_criteria_method is set")
    if not _blank(method) and not _blank(row.get(name)):
        # which responses each criteria method allows is the dictionary's own list
        return RuleOutcome(None, "response against its criteria method", "none")
    return PASS_OURS


def _line_of_treatment(row: Row, name: str) -> RuleOutcome:
    value, primary = row.get(name), _low(row.get("is_primary_treatment"))
    if _blank(value) or not primary:
        return PASS_OURS
    if primary == "yes":
        return _fail(f"{name} is not submitted for the primary treatment")
    if primary == "unknown":
        return _fail(f"{name} is not submitted when is_primary_treatment is Unknown")
    if primary == "no" and isinstance(value, int | float) and value <= 1:
        return _fail(f"{name} must be greater than 1 for a treatment that is not primary")
    return PASS_OURS


def _progression(row: Row) -> bool:
    return _low(row.get("disease_status_at_followup")).endswith("progression")


def _relapse(row: Row) -> bool:
    return _low(row.get("disease_status_at_followup")) == "relapse or recurrence"


def _required_iff_progression_or_relapse(row: Row, name: str) -> RuleOutcome:
    applies = _progression(row) or _relapse(row)
    if applies and _blank(row.get(name)):
        return _fail(
            f"{name} is required when disease_status_at_followup is a progression or relapse"
        )
    if not applies and not _blank(row.get(name)):
        return _fail(f"{name} cannot be provided unless the disease progressed or relapsed")
    return PASS_OURS


def _required_when_relapse(row: Row, name: str) -> RuleOutcome:
    if _relapse(row) and _blank(row.get(name)):
        return _fail(f"{name} is required when disease_status_at_followup is Relapse or recurrence")
    return PASS_OURS


def _required_when_progression_or_relapse(row: Row, name: str) -> RuleOutcome:
    if (_progression(row) or _relapse(row)) and _blank(row.get(name)):
        return _fail(
            f"{name} is required when disease_status_at_followup is a progression or relapse"
        )
    return PASS_OURS


def _ajcc(row: Row, name: str) -> RuleOutcome:
    stage = name.strip().lower().split("_tumour_staging_system")[0]
    tnm = [f"{stage}_{c}_category" for c in ("m", "n", "t")]
    empty = [f for f in tnm if _blank(row.get(f))]
    system = row.get(name)
    if _blank(system):
        if len(empty) != len(tnm):
            return _fail(f"{name} must be an AJCC edition when T, N or M categories are given")
        return PASS_OURS
    is_ajcc = re.match(r"AJCC\b", str(system).strip(), re.IGNORECASE) is not None
    if is_ajcc and empty:
        return _fail(f"{', '.join(empty)} required when {name} is an AJCC edition")
    if not is_ajcc and len(empty) != len(tnm):
        return _fail(f"T, N and M categories cannot be given unless {name} is an AJCC edition")
    return PASS_OURS


def _recurrence_staging(row: Row, name: str) -> RuleOutcome:
    outcome = _ajcc(row, name)
    return outcome if outcome.valid is False else _required_when_progression_or_relapse(row, name)


_NOT_EXAMINED = {
    "cannot be determined",
    "no",
    "no lymph nodes found in resected specimen",
    "not applicable",
    "unknown",
}


def _lymph_nodes_method(row: Row, name: str) -> RuleOutcome:
    status = _low(row.get("lymph_nodes_examined_status"))
    if not status:
        return _fail("lymph_nodes_examined_status must be submitted")
    if _blank(row.get(name)) and status == "yes":
        return _fail(f"{name} must be submitted when lymph nodes were examined")
    if not _blank(row.get(name)) and status in _NOT_EXAMINED:
        return _fail(f"{name} is not submitted when lymph_nodes_examined_status is {status!r}")
    return PASS_OURS


def _lymph_nodes_numbers(row: Row, name: str) -> RuleOutcome:
    status = _low(row.get("lymph_nodes_examined_status"))
    value = row.get(name)
    number = value if isinstance(value, int | float) else None
    if name == "number_lymph_nodes_examined" and number is not None:
        if status == "yes" and number <= 0:
            return _fail(f"{name} must be greater than 0 when lymph nodes were examined")
        if status != "yes" and number > 0:
            return _fail(f"{name} must be 0 or blank unless lymph nodes were examined")
    if name == "number_lymph_nodes_positive":
        if status == "yes":
            if number is None:
                return _fail(f"{name} must be submitted when lymph nodes were examined")
            examined = row.get("number_lymph_nodes_examined")
            if isinstance(examined, int | float) and number > examined:
                return _fail(f"{name} cannot exceed number_lymph_nodes_examined")
        elif not _blank(value):
            return _fail(f"{name} is not submitted unless lymph nodes were examined")
    return PASS_OURS


_BIOMARKER_EVENTS = (
    "submitter_specimen_id",
    "submitter_treatment_id",
    "submitter_primary_diagnosis_id",
    "submitter_follow_up_id",
    "test_interval",
)


def _interval_or_id(row: Row, name: str) -> RuleOutcome:
    given = [f for f in _BIOMARKER_EVENTS if not _blank(row.get(f))]
    if _blank(row.get(name)):
        if not given:
            return _fail("a biomarker test needs one clinical event id or test_interval")
        return PASS_OURS
    others = [f for f in given if f != name]
    if others:
        return _fail(f"{name} and {others[0]} cannot both be given: one event per biomarker row")
    return PASS_OURS


BUILTIN_RULES: dict[str, Callable[[Row, str], RuleOutcome]] = {
    "donor/ensureDeceased": _ensure_deceased,
    "sample_registration/specimentypeDesignation": _specimen_type_designation,
    "treatment/checkWhenNoTreatment": _check_when_no_treatment,
    "treatment/responseToTreatmentCheck": _response_to_treatment,
    "treatment/lineOfTreatment": _line_of_treatment,
    "follow_up/relapse_type": _required_iff_progression_or_relapse,
    "follow_up/anatomic_site_progression_or_recurrence": _required_iff_progression_or_relapse,
    "follow_up/relapse_interval": _required_when_relapse,
    "follow_up/method_of_progression_status": _required_when_progression_or_relapse,
    "follow_up/recurrence_tumour_staging_system": _recurrence_staging,
    "follow_up/posttherapy_tumour_staging_system": _ajcc,
    "common/ajccValidation": _ajcc,
    "primary_diagnosis/lymphNodesExaminedMethod": _lymph_nodes_method,
    "primary_diagnosis/lymphNodesExamined": _lymph_nodes_numbers,
    "biomarker/intervalOrId": _interval_or_id,
}


def builtin_rule(rule: ScriptRule, field: Field, row: Row) -> RuleOutcome:
    """Our reading of ``rule`` on ``field`` of ``row``; not checked when we have none and
    there is something to check (the field or a field it depends on has a value)."""
    known = BUILTIN_RULES.get(rule.name)
    if known is not None:
        return known(row, field.name)
    involved = [field.name] + [d.split(".", 1)[-1] for d in field.depends_on]
    if all(_blank(row.get(name)) for name in involved):
        return PASS_OURS
    return RuleOutcome(None, f"no source for rule {rule.name} and no rule of ours", "none")


class RuleRunner:
    """Checks the script rules of one dictionary: its own JavaScript where it carries it
    and an engine is installed, our reading of the rule otherwise."""

    def __init__(self, dictionary: Dictionary, use_javascript: bool = True):
        self.dictionary = dictionary
        self.engine: JavaScriptRules | None = None
        if use_javascript and javascript_available():
            self.engine = JavaScriptRules(dictionary)

    def check(self, rule: ScriptRule, field: Field, row: Row) -> RuleOutcome:
        """Run one rule on one field of one row."""
        if rule.has_source and self.engine is not None:
            return self.engine.run(rule, row, field.name)
        outcome = builtin_rule(rule, field, row)
        if outcome.valid is None and rule.has_source:
            return RuleOutcome(
                None, f"rule {rule.name}: install mini-racer to run its JavaScript", "none"
            )
        return outcome


def describe_checkers(runner: RuleRunner) -> dict[str, Any]:
    """What will check the rules, for reports."""
    return {
        "javascript_engine": "mini-racer (V8)" if runner.engine is not None else None,
        "rules_of_ours": sorted(BUILTIN_RULES),
    }
