"""An e-form as a FHIR R4 Questionnaire, so partner systems read our forms in their standard.

Section headers become ``group`` items; each field an item of the type its field and
validation types imply; choices ``answerOption`` codings (with the code system when an
@IB-CHOICE tag codes them); required, min/max (the ``minValue``/``maxValue`` extensions),
the unit (``questionnaire-unit``) and the field's code (``item.code``) follow. Branching
logic that is one comparison, or comparisons joined by only ``and`` or only ``or``, becomes
``enableWhen`` + ``enableBehavior``; other logic cannot be said that way, so the item has no
``enableWhen`` and the description lists it (every item with logic also carries it verbatim
in an extension).

Not carried: calculations (calc items are read-only decimals), a min/max of ``today`` and
of date-times (FHIR has no value for them: its date-times need a time zone), REDCap's layout
columns (alignment, matrix groups, question numbers).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, Final

from imaging_biobank.clinical import branching
from imaging_biobank.clinical.dictionary import Choice, Field, Form
from imaging_biobank.clinical.validation import InvalidValue, read
from imaging_biobank.vocab.codes import SYSTEMS, UCUM_SYSTEM

if TYPE_CHECKING:
    from fhir.resources.R4B.questionnaire import Questionnaire

DEFAULT_BASE: Final = "http://example.org/fhir"  # replace by the FHIR base of your server
SDC: Final = "http://hl7.org/fhir/StructureDefinition"
ITEM_CONTROL: Final = "http://hl7.org/fhir/questionnaire-item-control"
IMPLICIT_VALUE_SETS: Final = {"loinc": "http://loinc.org/vs"}  # others: <system>?fhir_vs
_KIND_TYPES: Final = {
    "integer": "integer",
    "number": "decimal",
    "date": "date",
    "datetime": "dateTime",
    "time": "time",
    "duration": "string",
    "text": "string",
}
_FIXED_TYPES: Final = {
    "notes": "text",
    "dropdown": "choice",
    "radio": "choice",
    "checkbox": "choice",
    "yesno": "boolean",
    "truefalse": "boolean",
    "calc": "decimal",
    "descriptive": "display",
    "slider": "integer",
    "file": "attachment",
    "sql": "string",
}
_VALUE_KEYS: Final = {
    "integer": "valueInteger",
    "decimal": "valueDecimal",
    "date": "valueDate",
    "dateTime": "valueDateTime",
    "time": "valueTime",
}
_ANSWER_KEYS: Final = {
    "integer": "answerInteger",
    "decimal": "answerDecimal",
    "date": "answerDate",
    "dateTime": "answerDateTime",
    "time": "answerTime",
    "string": "answerString",
    "text": "answerString",
}
_FHIR_OPERATORS: Final = {"=": "=", "<>": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


class NotTranslated(ValueError):
    """Branching logic that enableWhen cannot state; the message says why."""


def item_type(field: Field) -> str:
    """The Questionnaire item type of a field."""
    if field.field_type != "text":
        return _FIXED_TYPES[field.field_type]
    if field.value_set:
        return "choice"
    kind = field.validation_type
    return _KIND_TYPES[kind.kind] if kind is not None else "string"


def plain_text(label: str) -> str:
    """A label without the HTML REDCap allows in it."""
    return " ".join(re.sub(r"<[^>]+>", " ", label).split())


def coding(field: Field, choice: Choice) -> dict[str, str]:
    """The valueCoding of a choice: its standard code when an @IB-CHOICE tag gives one,
    else the REDCap code."""
    if choice.coding is not None:
        return {"system": choice.coding.system, "code": choice.coding.code, "display": choice.label}
    return {"code": choice.code, "display": choice.label}


def _typed(kind: str, field: Field, text: str) -> Any:
    """A constant as the FHIR value of an item of type ``kind`` (``ValueError`` if it has
    none: FHIR date-times with a time need a time zone, which REDCap values lack)."""
    validation = field.validation_type
    if kind in ("integer", "decimal"):
        number = float(text)
        return int(number) if kind == "integer" else number
    if kind == "dateTime":
        raise ValueError("a date-time without a time zone has no FHIR value")
    if kind in ("date", "time") and validation is not None:
        iso = read(validation, text).iso or ""
        return f"{iso}:00" if kind == "time" and len(iso) == 5 else iso  # FHIR: hh:mm:ss
    return text


def _condition(test: tuple[branching.Ref, branching.Operator, str], form: Form) -> dict[str, Any]:
    ref, op, constant = test
    target = form.field(ref.field)
    if target is None:
        raise NotTranslated(f"[{ref.field}] is on another form")
    kind = item_type(target)
    when: dict[str, Any] = {"question": target.name}
    if constant == "" and op in ("=", "<>"):
        return {**when, "operator": "exists", "answerBoolean": op == "<>"}
    if target.field_type == "checkbox":
        choice = target.choice(ref.code or "")
        if choice is None or (op, constant) not in (("=", "1"), ("<>", "0")):
            raise NotTranslated(f"{ref} {op} '{constant}' (only a ticked option is stated)")
        return {**when, "operator": "=", "answerCoding": coding(target, choice)}
    if kind == "choice" and target.value_set is None:
        choice = target.choice(constant)
        if choice is None or op not in ("=", "<>"):
            raise NotTranslated(f"{ref} {op} '{constant}' (a choice is equal or not)")
        return {**when, "operator": _FHIR_OPERATORS[op], "answerCoding": coding(target, choice)}
    if kind == "boolean":
        if constant not in ("0", "1") or op not in ("=", "<>"):
            raise NotTranslated(f"{ref} {op} '{constant}' (yes/no is 1 or 0)")
        return {**when, "operator": _FHIR_OPERATORS[op], "answerBoolean": constant == "1"}
    key = _ANSWER_KEYS.get(kind)
    if key is None:
        raise NotTranslated(f"{ref} is a {kind} item")
    try:
        value = _typed(kind, target, constant)
    except (ValueError, InvalidValue):
        raise NotTranslated(f"'{constant}' is not a value of {ref}") from None
    return {**when, "operator": _FHIR_OPERATORS[op], key: value}


def enable_when(field: Field, form: Form) -> tuple[list[dict[str, Any]], str | None]:
    """The enableWhen conditions and enableBehavior of an evaluated branching logic, or
    ``NotTranslated``."""
    condition = field.condition
    if condition is None:
        raise NotTranslated(field.not_evaluated or "the logic is not evaluated")
    parts: tuple[branching.Condition, ...] = (condition,)
    behavior = None
    if isinstance(condition, branching.Junction):
        parts = condition.parts
        behavior = "all" if condition.op == "and" else "any"
    conditions = []
    for part in parts:
        if not isinstance(part, branching.Comparison):
            raise NotTranslated("and/or are nested")
        test = part.field_test()
        if test is None:
            raise NotTranslated("a comparison of two fields or two values")
        conditions.append(_condition(test, form))
    return conditions, behavior


def _limits(field: Field, kind: str) -> list[dict[str, Any]]:
    key = _VALUE_KEYS.get(kind)
    limits = [("minValue", field.minimum), ("maxValue", field.maximum)]
    if field.field_type == "slider":
        limits = [("minValue", field.minimum or "0"), ("maxValue", field.maximum or "100")]
    found = []
    for name, limit in limits:
        if key is None or limit is None or limit.lower() in ("today", "now"):
            continue
        try:
            found.append({"url": f"{SDC}/{name}", key: _typed(kind, field, limit)})
        except ValueError:
            continue  # no FHIR value for it (see _typed); records are still checked
    return found


def _item(field: Field, form: Form, base: str, untranslated: list[str]) -> dict[str, Any]:
    kind = item_type(field)
    item: dict[str, Any] = {"linkId": field.name, "type": kind, "text": plain_text(field.label)}
    extensions = _limits(field, kind)
    if field.unit:
        unit = {"system": UCUM_SYSTEM, "code": field.unit, "display": field.unit}
        extensions.append({"url": f"{SDC}/questionnaire-unit", "valueCoding": unit})
    if field.branching_logic:
        url = f"{base}/StructureDefinition/redcap-branching-logic"
        extensions.append({"url": url, "valueString": field.branching_logic})
        try:
            conditions, behavior = enable_when(field, form)
            item["enableWhen"] = conditions
            if behavior is not None:
                item["enableBehavior"] = behavior
        except NotTranslated as reason:
            untranslated.append(f"{field.name} ({field.branching_logic}: {reason})")
    if extensions:
        item["extension"] = extensions
    if field.code is not None:
        item["code"] = [{"system": field.code.system, "code": field.code.code}]
    if field.required and kind != "display":
        item["required"] = True
    if field.field_type == "checkbox":
        item["repeats"] = True
    if field.field_type == "calc":
        item["readOnly"] = True
    if field.choices:
        item["answerOption"] = [{"valueCoding": coding(field, c)} for c in field.choices]
    if field.value_set:
        uri = SYSTEMS[field.value_set].uri
        item["answerValueSet"] = IMPLICIT_VALUE_SETS.get(field.value_set, f"{uri}?fhir_vs")
    if field.note and kind != "display":
        control = {"coding": [{"system": ITEM_CONTROL, "code": "help"}]}
        item["item"] = [
            {
                "linkId": f"{field.name}-help",
                "type": "display",
                "text": plain_text(field.note),
                "extension": [
                    {"url": f"{SDC}/questionnaire-itemControl", "valueCodeableConcept": control}
                ],
            }
        ]
    return item


def resource_id(collection: str, form: str) -> str:
    """A FHIR id (letters, digits, '-', '.'; at most 64) from the collection's local name
    and the form's name."""
    local = collection.rsplit(":", 1)[-1]
    text = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{local}-{form}").strip("-").lower()
    return text[:64]


def questionnaire_dict(
    form: Form,
    *,
    collection: str,
    sha256: str,
    imported_at: dt.datetime | None = None,
    base: str = DEFAULT_BASE,
) -> dict[str, Any]:
    """The Questionnaire of a form as JSON-ready data (see ``questionnaire``)."""
    base = base.rstrip("/")
    untranslated: list[str] = []
    items: list[dict[str, Any]] = []
    group: dict[str, Any] | None = None
    for field in form.fields:
        if field.section_header:
            group = {
                "linkId": f"section-{len([i for i in items if i['type'] == 'group']) + 1}",
                "type": "group",
                "text": plain_text(field.section_header),
                "item": [],
            }
            items.append(group)
        item = _item(field, form, base, untranslated)
        (group["item"] if group is not None else items).append(item)
    identifier = resource_id(collection, form.name)
    description = (
        f"REDCap instrument {form.name!r} of collection {collection}, from a data dictionary"
        f" with SHA-256 {sha256}."
    )
    if untranslated:
        description += (
            " Branching logic not stated as enableWhen (these items show whatever the"
            " answers): " + "; ".join(untranslated) + "."
        )
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": identifier,
        "url": f"{base}/Questionnaire/{identifier}",
        "identifier": [{"system": f"{base}/e-form", "value": f"{collection}|{form.name}"}],
        "version": sha256,
        "name": "".join(part.capitalize() for part in form.name.split("_") if part),
        "title": form.label,
        "status": "active",
        "subjectType": ["Patient"],
        "description": description,
        "item": items,
    }
    if imported_at is not None:
        if imported_at.tzinfo is None:  # SQLite gives back naive UTC
            imported_at = imported_at.replace(tzinfo=dt.UTC)
        resource["date"] = imported_at.astimezone(dt.UTC).isoformat(timespec="seconds")
    return resource


def questionnaire(
    form: Form,
    *,
    collection: str,
    sha256: str,
    imported_at: dt.datetime | None = None,
    base: str = DEFAULT_BASE,
) -> Questionnaire:
    """The form as a validated FHIR R4 Questionnaire (fhir.resources, R4B models): url and
    id from the collection and form names, the dictionary's SHA-256 as its version."""
    from fhir.resources.R4B.questionnaire import Questionnaire

    data = questionnaire_dict(
        form, collection=collection, sha256=sha256, imported_at=imported_at, base=base
    )
    return Questionnaire.model_validate(data)
