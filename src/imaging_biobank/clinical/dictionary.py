"""E-form definitions from a REDCap data dictionary (CSV): forms, fields, choices.

Pure: no database. Reads the 18 standard columns, by their display names ("Variable / Field
Name", ...) or their API keys (``field_name``, ...); an unknown column, field type or
validation type refuses the file with the row, the column and what is allowed. Choices
(``1, Yes | 0, No``) become (code, label) pairs, min/max are read by the validation type,
branching logic is kept verbatim and parsed where it can be (``clinical.branching``), and
the Field Annotation's @IB- tags bind fields and choices to codes (``clinical.tags``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from imaging_biobank.clinical import branching
from imaging_biobank.clinical.tags import Bindings, Coding, read_tags
from imaging_biobank.clinical.validation import (
    SLIDER_VALIDATION,
    VALIDATION_TYPES,
    InvalidValue,
    ValidationType,
    has_limits,
    read_limit,
)

# display name -> API key, in REDCap's column order
COLUMNS: Final = {
    "Variable / Field Name": "field_name",
    "Form Name": "form_name",
    "Section Header": "section_header",
    "Field Type": "field_type",
    "Field Label": "field_label",
    "Choices, Calculations, OR Slider Labels": "select_choices_or_calculations",
    "Field Note": "field_note",
    "Text Validation Type OR Show Slider Number": "text_validation_type_or_show_slider_number",
    "Text Validation Min": "text_validation_min",
    "Text Validation Max": "text_validation_max",
    "Identifier?": "identifier",
    "Branching Logic (Show field only if...)": "branching_logic",
    "Required Field?": "required_field",
    "Custom Alignment": "custom_alignment",
    "Question Number (surveys only)": "question_number",
    "Matrix Group Name": "matrix_group_name",
    "Matrix Ranking?": "matrix_ranking",
    "Field Annotation": "field_annotation",
}
REQUIRED_COLUMNS: Final = ("field_name", "form_name", "field_type", "field_label")
FIELD_TYPES: Final = {
    "text": "a line of text (typed by its validation type)",
    "notes": "a paragraph of text",
    "dropdown": "one choice from a list",
    "radio": "one choice from a list",
    "checkbox": "any number of choices from a list",
    "yesno": "Yes (1) or No (0)",
    "truefalse": "True (1) or False (0)",
    "calc": "a number calculated by REDCap",
    "file": "an uploaded file",
    "descriptive": "text shown on the form, no value",
    "slider": "a whole number on a slider (0-100 unless min/max say otherwise)",
    "sql": "one choice from a list a database query makes",
}
CHOICE_TYPES: Final = ("dropdown", "radio", "checkbox")
NUMERIC_TYPES: Final = ("calc", "slider")  # and text with a number or integer validation
NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,99}")  # REDCap's variable and form names
CHOICE_CODE: Final = re.compile(r"[A-Za-z0-9_.-]+")
# names older REDCap versions wrote, read as today's
LEGACY_VALIDATION: Final = {
    "int": "integer",
    "float": "number",
    "date": "date_ymd",
    "datetime": "datetime_ymd",
    "datetime_seconds": "datetime_seconds_ymd",
}
YES: Final = ("y", "yes", "1")
NO: Final = ("", "n", "no", "0")


class DictionaryError(ValueError):
    """A data dictionary that cannot be imported; ``problems`` lists (row, column, message)
    for every fault found (row 1 is the header)."""

    def __init__(self, problems: list[tuple[int, str, str]]):
        self.problems = problems
        lines = [f"row {row}, {column}: {message}" for row, column, message in problems]
        super().__init__("; ".join(lines))


@dataclass(frozen=True)
class Choice:
    """One choice of a dropdown, radio or checkbox field, coded if a tag says so."""

    code: str
    label: str
    coding: Coding | None = None


@dataclass(frozen=True)
class Field:
    """One row of the data dictionary: a field of a form."""

    name: str
    form: str
    position: int  # 1, 2, ... within its form
    row: int  # the row of the dictionary file
    field_type: str
    label: str
    section_header: str = ""
    note: str = ""
    choices: tuple[Choice, ...] = ()
    calculation: str = ""  # calc formula, sql query or slider labels, verbatim
    validation: str | None = None
    minimum: str | None = None
    maximum: str | None = None
    identifier: bool = False
    required: bool = False
    branching_logic: str = ""
    condition: branching.Condition | None = None  # when the logic is evaluated
    not_evaluated: str | None = None  # why the logic is not evaluated
    annotation: str = ""
    code: Coding | None = None
    unit: str | None = None
    value_set: str | None = None

    @property
    def validation_type(self) -> ValidationType | None:
        """How the values are read: the text validation type, or what the field type
        implies (slider: integer; calc: number)."""
        if self.field_type == "text" and self.validation:
            return VALIDATION_TYPES[self.validation]
        if self.field_type == "slider":
            return VALIDATION_TYPES["integer"]
        if self.field_type == "calc":
            return VALIDATION_TYPES["number"]
        return None

    def choice(self, code: str) -> Choice | None:
        for choice in self.choices:
            if choice.code == code:
                return choice
        return None

    @property
    def has_value(self) -> bool:
        """Whether records hold a value of it (descriptive fields are text on the form)."""
        return self.field_type != "descriptive"


@dataclass(frozen=True)
class Form:
    """A REDCap instrument: its unique name and its fields in order."""

    name: str
    fields: tuple[Field, ...]

    @property
    def label(self) -> str:
        """A title from the unique name (the dictionary has no display name)."""
        return self.name.replace("_", " ").strip().capitalize()

    def field(self, name: str) -> Field | None:
        for found in self.fields:
            if found.name == name:
                return found
        return None


@dataclass(frozen=True)
class Notice:
    """Something the importer should know that does not stop the import."""

    row: int
    field: str
    message: str


@dataclass(frozen=True)
class Dictionary:
    """A parsed data dictionary file."""

    forms: tuple[Form, ...]
    sha256: str
    record_id_field: str  # the first field: REDCap's record id
    notices: tuple[Notice, ...] = ()

    def fields(self) -> Iterable[Field]:
        for form in self.forms:
            yield from form.fields


def parse_choices(text: str) -> tuple[list[Choice], list[str]]:
    """``1, Yes | 0, No`` as choices (a label may hold commas), and what is wrong in it."""
    choices: list[Choice] = []
    errors: list[str] = []
    for part in text.split("|"):
        item = part.strip()
        if not item:
            continue
        code, comma, label = item.partition(",")
        code = code.strip()
        if not comma:
            errors.append(f"choice {item!r} has no code (write it as '1, {item}')")
        elif not CHOICE_CODE.fullmatch(code):
            errors.append(f"choice code {code!r} is not letters, digits, '_', '.' or '-'")
        elif any(c.code == code for c in choices):
            errors.append(f"choice code {code!r} is used twice")
        else:
            choices.append(Choice(code, label.strip()))
    return choices, errors


def _flag(value: str) -> bool | None:
    folded = value.strip().lower()
    if folded in YES:
        return True
    if folded in NO:
        return False
    return None


class _Reader:
    """Reads the rows of one dictionary, collecting every problem."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, str, str]] = []
        self.notices: list[Notice] = []

    def problem(self, row: int, column: str, message: str) -> None:
        self.problems.append((row, column, message))

    def header(self, names: list[str]) -> dict[str, int]:
        """API key -> column index; unknown and repeated columns are problems."""
        by_display = {" ".join(d.split()).lower(): key for d, key in COLUMNS.items()}
        keys = set(COLUMNS.values())
        found: dict[str, int] = {}
        for index, raw in enumerate(names):
            name = " ".join(raw.split())
            key = name if name in keys else by_display.get(name.lower())
            if key is None:
                if not name:
                    self.problem(1, f"column {index + 1}", "a column has no header")
                    continue
                allowed = "; ".join(f"{d!r} ({k})" for d, k in COLUMNS.items())
                self.problem(1, repr(name), f"unknown column; allowed: {allowed}")
            elif key in found:
                self.problem(1, repr(name), "the column is given twice")
            else:
                found[key] = index
        for key in REQUIRED_COLUMNS:
            if key not in found:
                display = next(d for d, k in COLUMNS.items() if k == key)
                self.problem(1, repr(display), f"the column {display!r} ({key}) is missing")
        return found

    def field(self, row: int, cells: dict[str, str], position: int) -> Field | None:
        name = cells.get("field_name", "").strip()
        form = cells.get("form_name", "").strip()
        field_type = cells.get("field_type", "").strip().lower()
        before = len(self.problems)
        if not NAME.fullmatch(name):
            self.problem(
                row,
                "Variable / Field Name",
                f"{name!r} is not a field name (a-z, 0-9, _; at most 100)",
            )
        if not NAME.fullmatch(form):
            self.problem(
                row, "Form Name", f"{form!r} is not a form name (a-z, 0-9, _; at most 100)"
            )
        if field_type not in FIELD_TYPES:
            allowed = ", ".join(FIELD_TYPES)
            self.problem(
                row, "Field Type", f"unknown field type {field_type!r}; allowed: {allowed}"
            )
            return None
        label = cells.get("field_label", "").strip()
        if not label:
            self.problem(row, "Field Label", "the label is empty")
        choices, calculation = self.choices(row, field_type, cells)
        validation, minimum, maximum = self.validation(row, field_type, cells)
        flags = {}
        for key, display in (("identifier", "Identifier?"), ("required_field", "Required Field?")):
            flag = _flag(cells.get(key, ""))
            if flag is None:
                self.problem(row, display, f"{cells[key]!r} is not 'y' or empty")
            flags[key] = bool(flag)
        bindings, tag_errors = read_tags(cells.get("field_annotation", ""))
        for message in tag_errors:
            self.problem(row, "Field Annotation", message)
        coded = []
        for choice in choices:
            coded.append(Choice(choice.code, choice.label, bindings.choices.get(choice.code)))
        self.check_bindings(row, field_type, validation, choices, bindings)
        if len(self.problems) > before:
            return None
        return Field(
            name=name,
            form=form,
            position=position,
            row=row,
            field_type=field_type,
            label=label,
            section_header=cells.get("section_header", "").strip(),
            note=cells.get("field_note", "").strip(),
            choices=tuple(coded),
            calculation=calculation,
            validation=validation,
            minimum=minimum,
            maximum=maximum,
            identifier=flags["identifier"],
            required=flags["required_field"],
            branching_logic=cells.get("branching_logic", "").strip(),
            annotation=cells.get("field_annotation", "").strip(),
            code=bindings.code,
            unit=bindings.unit,
            value_set=bindings.value_set,
        )

    def choices(self, row: int, field_type: str, cells: dict[str, str]) -> tuple[list[Choice], str]:
        text = cells.get("select_choices_or_calculations", "").strip()
        column = "Choices, Calculations, OR Slider Labels"
        if field_type in CHOICE_TYPES:
            choices, errors = parse_choices(text)
            for message in errors:
                self.problem(row, column, message)
            if not choices and not errors:
                self.problem(row, column, f"a {field_type} field needs choices ('1, Yes | 0, No')")
            return choices, ""
        if field_type == "calc" and not text:
            self.problem(row, column, "a calc field needs its calculation")
        if text and field_type not in ("calc", "sql", "slider"):
            self.problem(row, column, f"a {field_type} field has no choices or calculation")
        return [], text

    def validation(
        self, row: int, field_type: str, cells: dict[str, str]
    ) -> tuple[str | None, str | None, str | None]:
        name = cells.get("text_validation_type_or_show_slider_number", "").strip()
        minimum = cells.get("text_validation_min", "").strip() or None
        maximum = cells.get("text_validation_max", "").strip() or None
        column = "Text Validation Type OR Show Slider Number"
        kind: ValidationType | None = None
        if field_type == "slider":
            if name and name != SLIDER_VALIDATION:
                self.problem(row, column, f"a slider takes {SLIDER_VALIDATION!r} or nothing here")
            kind = VALIDATION_TYPES["integer"]
            name = ""
        elif name and field_type != "text":
            self.problem(row, column, f"only text fields have a validation type ({field_type})")
        elif name:
            name = LEGACY_VALIDATION.get(name, name)
            kind = VALIDATION_TYPES.get(name)
            if kind is None:
                allowed = ", ".join(f"{v.name} ({v.meaning})" for v in VALIDATION_TYPES.values())
                self.problem(row, column, f"unknown validation type {name!r}; allowed: {allowed}")
                return None, minimum, maximum
        if (minimum or maximum) and (kind is None or not has_limits(kind)):
            self.problem(row, "Text Validation Min", "min/max need a number, date or time type")
            return name or None, minimum, maximum
        keys = []
        for limit, display in ((minimum, "Text Validation Min"), (maximum, "Text Validation Max")):
            if limit is None or kind is None:
                continue
            try:
                keys.append(read_limit(kind, limit).key)
            except InvalidValue as error:
                self.problem(row, display, f"{error} ({kind.meaning})")
        low, high = keys if len(keys) == 2 else (None, None)
        if low is not None and high is not None and low > high:  # type: ignore[operator]
            self.problem(row, "Text Validation Max", f"max {maximum} is below min {minimum}")
        return name or None, minimum, maximum

    def check_bindings(
        self,
        row: int,
        field_type: str,
        validation: str | None,
        choices: list[Choice],
        bindings: Bindings,
    ) -> None:
        column = "Field Annotation"
        numeric = field_type in NUMERIC_TYPES or (
            validation is not None and VALIDATION_TYPES[validation].kind in ("integer", "number")
        )
        if bindings.unit and not numeric:
            self.problem(row, column, f"@IB-UNIT is for numeric fields, not a {field_type} field")
        if bindings.value_set and not (field_type == "text" and validation is None):
            self.problem(row, column, "@IB-VALUESET is for text fields without a validation type")
        if bindings.code and field_type == "descriptive":
            self.problem(row, column, "a descriptive field holds no value to code")
        if bindings.choices and field_type not in CHOICE_TYPES:
            self.problem(row, column, f"@IB-CHOICE is for {', '.join(CHOICE_TYPES)} fields")
        codes = {c.code for c in choices}
        for code in bindings.choices:
            if field_type in CHOICE_TYPES and code not in codes:
                self.problem(
                    row, column, f"@IB-CHOICE names choice {code!r}, not one of {sorted(codes)}"
                )


def _logic(field: Field, fields: dict[str, Field]) -> Field:
    """The field with its branching logic parsed and its references checked."""
    if not field.branching_logic:
        return field
    try:
        condition = branching.parse(field.branching_logic)
        for ref in condition.refs():
            target = fields.get(ref.field)
            if target is None:
                raise branching.NotEvaluated(f"[{ref.field}] is not a field of this dictionary")
            if target.field_type == "checkbox" and ref.code is None:
                raise branching.NotEvaluated(f"{ref} is a checkbox: name an option, [f(code)]")
            if target.field_type != "checkbox" and ref.code is not None:
                raise branching.NotEvaluated(f"{ref}: [{ref.field}] is not a checkbox")
            if ref.code is not None and target.choice(ref.code) is None:
                raise branching.NotEvaluated(f"{ref}: {ref.code!r} is not one of its choices")
    except branching.NotEvaluated as reason:
        return replace(field, not_evaluated=str(reason))
    return replace(field, condition=condition)


def read_dictionary(data: bytes) -> Dictionary:
    """The forms of a REDCap data dictionary file, or ``DictionaryError`` listing every
    fault (row, column, message)."""
    reader = _Reader()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DictionaryError([(1, "file", f"not UTF-8 text ({error.reason})")]) from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise DictionaryError([(1, "file", f"not a CSV file ({error})")]) from None
    if not rows:
        raise DictionaryError([(1, "file", "the file is empty")])
    columns = reader.header(rows[0])
    if reader.problems:
        raise DictionaryError(reader.problems)
    fields: list[Field] = []
    positions: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    closed_forms: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = {key: (row[index] if index < len(row) else "") for key, index in columns.items()}
        form = cells["form_name"].strip()
        if fields and form != fields[-1].form:
            closed_forms.add(fields[-1].form)
            if form in closed_forms:
                reader.problem(number, "Form Name", f"the fields of form {form!r} are not together")
        positions[form] = positions.get(form, 0) + 1
        field = reader.field(number, cells, positions[form])
        if field is None:
            continue
        if field.name in seen_names:
            reader.problem(
                number,
                "Variable / Field Name",
                f"{field.name!r} is also row {seen_names[field.name]}",
            )
            continue
        seen_names[field.name] = number
        fields.append(field)
    if not fields and not reader.problems:
        reader.problem(2, "file", "the dictionary has no fields")
    if reader.problems:
        raise DictionaryError(reader.problems)
    by_name = {f.name: f for f in fields}
    fields = [_logic(f, by_name) for f in fields]
    for field in fields:
        if field.not_evaluated:
            reader.notices.append(
                Notice(
                    field.row, field.name, f"branching logic not evaluated: {field.not_evaluated}"
                )
            )
    forms: dict[str, list[Field]] = {}
    for field in fields:
        forms.setdefault(field.form, []).append(field)
    return Dictionary(
        forms=tuple(Form(name, tuple(members)) for name, members in forms.items()),
        sha256=hashlib.sha256(data).hexdigest(),
        record_id_field=fields[0].name,
        notices=tuple(reader.notices),
    )
