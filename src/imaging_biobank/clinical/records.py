"""Records from a REDCap export (CSV, raw values): every cell checked against its form.

Pure: no database, no key. The export's first column is the record id (the dictionary's
first field); ``redcap_event_name``, ``redcap_repeat_instrument`` and
``redcap_repeat_instance`` say which event and repeat a row is; ``<form>_complete`` is the
form's status; a checkbox comes as one ``field___code`` column per choice holding 0 or 1.

A row gives one record per form it holds values of. Each cell is checked: its type
(integer, number, date in Y-M-D or the field's order, e-mail, ...), min/max, choices,
required fields, branching logic (a field it hides must be empty), checkbox 0/1, and codes
of a value set (ICD-10, SNOMED CT, LOINC, ATC). Every bad cell is reported; a record with a
bad cell is refused, the others are kept. Identifier fields (``Identifier? = y``) are PHI:
their values are dropped unread and only counted.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from imaging_biobank.clinical import branching
from imaging_biobank.clinical.dictionary import Field, Form
from imaging_biobank.clinical.validation import InvalidValue, read, read_limit
from imaging_biobank.vocab.codes import SYSTEMS, CodeError

EVENT: Final = "redcap_event_name"
REPEAT_INSTRUMENT: Final = "redcap_repeat_instrument"
REPEAT_INSTANCE: Final = "redcap_repeat_instance"
DROPPED_COLUMNS: Final = ("redcap_data_access_group", "redcap_survey_identifier")
COMPLETION: Final = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}
SLIDER_RANGE: Final = ("0", "100")


class ExportColumnsError(ValueError):
    """Columns that belong to no imported form: nothing is read. ``columns`` lists them."""

    def __init__(self, columns: list[str], forms: list[str]):
        self.columns = columns
        super().__init__(
            f"columns not in any imported form ({', '.join(forms) or 'none imported'}): "
            + ", ".join(columns)
        )


@dataclass(frozen=True)
class BadCell:
    """One refused cell: the file row (the header is row 1), record, field, value, why."""

    row: int
    record: str
    field: str
    value: str
    reason: str


@dataclass(frozen=True)
class Value:
    """One stored answer: as written, typed and coded."""

    field: str
    item: int  # 0, or the ticked choice's position (checkbox)
    raw: str
    number: float | None = None
    date: str | None = None  # ISO 8601 date, date-time or time
    code: str | None = None
    system: str | None = None
    unit: str | None = None


@dataclass
class FormRecord:
    """The values one row holds for one form."""

    row: int
    record_id: str
    donor_source: str  # what the donor pseudonym is made from
    event: str
    instance: str
    form: str
    completion: int | None
    values: list[Value] = field(default_factory=list)


@dataclass
class Export:
    """An export read against its forms: the good records and every bad cell."""

    records: list[FormRecord] = field(default_factory=list)
    bad_cells: list[BadCell] = field(default_factory=list)
    rows: int = 0
    refused: int = 0  # records (a row's values of one form) not kept
    identifier_values: int = 0  # PHI cells dropped unread
    ignored_columns: list[str] = field(default_factory=list)  # other forms, with --form


def checkbox_column(field_name: str, code: str) -> str:
    """The export column of a checkbox choice (REDCap writes codes lower-case, other
    characters than letters and digits as '_')."""
    return f"{field_name}___{re.sub(r'[^a-z0-9_]', '_', code.lower())}"


@dataclass(frozen=True)
class _Column:
    index: int
    name: str
    form: str
    field: Field | None = None  # None: the <form>_complete column
    choice: int = 0  # the checkbox choice's position (1, 2, ...)


@dataclass
class _FormColumns:
    """The columns of one form in an export."""

    status: _Column | None = None
    fields: dict[str, list[_Column]] = field(default_factory=dict)  # in the form's order


class _Layout:
    """What each column of an export is, worked out once from the header."""

    def __init__(
        self,
        header: list[str],
        forms: Sequence[Form],
        only_form: str | None,
        donor_field: str | None,
    ):
        self.forms = {form.name: form for form in forms}
        self.fields = {f.name: f for form in forms for f in form.fields}
        self.record_column = header[0].strip()
        # the record id and the donor field say who, they are not values
        self.not_values = {self.record_column, donor_field or self.record_column}
        self.special: dict[str, int] = {}
        self.ignored: list[str] = []
        by_name: dict[str, tuple[Field, int]] = {}
        for fld in self.fields.values():
            if fld.field_type == "checkbox":
                for position, choice in enumerate(fld.choices, start=1):
                    by_name[checkbox_column(fld.name, choice.code)] = (fld, position)
            else:
                by_name[fld.name] = (fld, 0)
        columns: list[_Column] = []
        unknown = []
        for index, raw in enumerate(header[1:], start=1):
            name = raw.strip()
            owner = name.removesuffix("_complete")
            if name in (EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE, *DROPPED_COLUMNS):
                self.special[name] = index
                continue
            if name.endswith("_complete") and owner in self.forms:
                column = _Column(index, name, owner)
            elif name.endswith("_timestamp") and name.removesuffix("_timestamp") in self.forms:
                self.ignored.append(name)  # a survey's time stamp: not a value of the form
                continue
            elif name in by_name:
                found, position = by_name[name]
                column = _Column(index, name, found.form, found, position)
            else:
                unknown.append(name or f"(column {index + 1} without a header)")
                continue
            keep = column.field is not None and column.field.name == donor_field
            if only_form is not None and column.form != only_form and not keep:
                self.ignored.append(name)
            else:
                columns.append(column)
        if unknown:
            raise ExportColumnsError(unknown, list(self.forms))
        self.value_columns = [c for c in columns if c.field is not None]
        self.present = {c.field.name for c in self.value_columns if c.field is not None}
        self.by_form: dict[str, _FormColumns] = {}
        for form in forms:
            mine = [c for c in columns if c.form == form.name]
            if not mine:
                continue
            found_form = _FormColumns(next((c for c in mine if c.field is None), None))
            for fld in form.fields:
                of_field = [c for c in mine if c.field is fld]
                if of_field and fld.name not in self.not_values:
                    found_form.fields[fld.name] = of_field
            self.by_form[form.name] = found_form


def _limit_reason(fld: Field, key: float | str | None, today: dt.date) -> str | None:
    kind = fld.validation_type
    if kind is None or key is None:
        return None
    low, high = fld.minimum, fld.maximum
    if fld.field_type == "slider":
        low, high = low or SLIDER_RANGE[0], high or SLIDER_RANGE[1]
    for limit, below in ((low, True), (high, False)):
        if limit is None:
            continue
        bound = read_limit(kind, limit, today).key
        if bound is None:
            continue
        if below and key < bound:  # type: ignore[operator]
            return f"below the minimum {limit}"
        if not below and key > bound:  # type: ignore[operator]
            return f"above the maximum {limit}"
    return None


def read_value(fld: Field, text: str, today: dt.date) -> Value:
    """The stored form of a non-empty cell of a (non-checkbox) field, or ``InvalidValue``
    saying why it is not a value of the field."""
    raw = text.strip()
    if fld.field_type in ("dropdown", "radio"):
        choice = fld.choice(raw)
        if choice is None:
            if any(c.label == raw for c in fld.choices):
                raise InvalidValue(f"{raw!r} is a choice's label: export raw data (codes)")
            listed = ", ".join(f"{c.code} ({c.label})" for c in fld.choices)
            raise InvalidValue(f"{raw!r} is not one of the choices: {listed}")
        if choice.coding is not None:
            return Value(fld.name, 0, raw, code=choice.coding.code, system=choice.coding.system)
        return Value(fld.name, 0, raw, code=choice.code)
    if fld.field_type in ("yesno", "truefalse"):
        if raw not in ("0", "1"):
            raise InvalidValue(f"{raw!r} is not 1 or 0 ({fld.field_type})")
        return Value(fld.name, 0, raw, number=float(raw), code=raw)
    if fld.value_set is not None:
        system = SYSTEMS[fld.value_set]
        try:
            code = system.check(raw)
        except CodeError as error:
            raise InvalidValue(str(error)) from None
        return Value(fld.name, 0, raw, code=code, system=system.uri)
    kind = fld.validation_type
    if kind is None:
        return Value(fld.name, 0, raw)
    typed = read(kind, raw)
    reason = _limit_reason(fld, typed.key, today)
    if reason is not None:
        raise InvalidValue(f"{raw!r} is {reason}")
    return Value(fld.name, 0, raw, number=typed.number, date=typed.iso, unit=fld.unit)


class _Reader:
    """Reads the rows of one export against its layout, collecting records and bad cells."""

    def __init__(self, layout: _Layout, donor_field: str | None, today: dt.date):
        self.layout = layout
        self.donor_field = donor_field
        self.today = today
        self.export = Export(ignored_columns=layout.ignored)
        self.base_rows: dict[tuple[str, str], dict[str, str]] = {}
        self.donors: dict[str, str] = {}
        self.seen: dict[tuple[str, str, str, str], int] = {}

    @staticmethod
    def cell(cells: list[str], index: int | None) -> str:
        if index is None or index >= len(cells):
            return ""
        return cells[index].strip(" \t\r\n\x00")

    def special(self, cells: list[str], name: str) -> str:
        return self.cell(cells, self.layout.special.get(name))

    def values_by_field(self, cells: list[str]) -> dict[str, str]:
        """Raw values by field name; a checkbox's ticked codes joined by '|'."""
        found: dict[str, str] = {}
        for column in self.layout.value_columns:
            fld = column.field
            assert fld is not None
            value = self.cell(cells, column.index)
            if column.choice:
                if value == "1":
                    code = fld.choices[column.choice - 1].code
                    found[fld.name] = "|".join(filter(None, [found.get(fld.name, ""), code]))
            elif value:
                found[fld.name] = value
        return found

    def prepare(self, rows: list[tuple[int, list[str]]]) -> None:
        """First pass: each record's non-repeating rows (branching may look there) and
        donor ids (a repeating row may not repeat them)."""
        for _, cells in rows:
            record = self.cell(cells, 0)
            values = self.values_by_field(cells)
            if not self.special(cells, REPEAT_INSTRUMENT):
                self.base_rows.setdefault((record, self.special(cells, EVENT)), values)
            if self.donor_field and values.get(self.donor_field):
                self.donors.setdefault(record, values[self.donor_field])

    def bad(self, row: int, record: str, name: str, value: str, reason: str) -> None:
        self.export.bad_cells.append(BadCell(row, record, name, value, reason))

    def read_row(self, number: int, cells: list[str]) -> None:
        """The records of one row, or its bad cells."""
        layout = self.layout
        record = self.cell(cells, 0)
        event = self.special(cells, EVENT)
        instrument = self.special(cells, REPEAT_INSTRUMENT)
        instance = self.special(cells, REPEAT_INSTANCE)
        values = self.values_by_field(cells)
        holding = [
            name
            for name, columns in layout.by_form.items()
            if (not instrument or name == instrument) and any(f in values for f in columns.fields)
        ]
        faults = len(self.export.bad_cells)
        if not record:
            self.bad(number, "", layout.record_column, "", "the record id is empty")
        if instrument and instrument not in layout.forms:
            self.bad(number, record, REPEAT_INSTRUMENT, instrument, "not an imported form")
        if instance and not re.fullmatch(r"[1-9][0-9]*", instance):
            self.bad(number, record, REPEAT_INSTANCE, instance, "not a whole number from 1")
        key = (record, event, instrument, instance)
        if record and key in self.seen:
            earlier = self.seen[key]
            self.bad(
                number, record, layout.record_column, record, f"the same record as row {earlier}"
            )
        self.seen.setdefault(key, number)
        donor = record
        if self.donor_field:
            donor = self.donors.get(record, "")
            mine = values.get(self.donor_field, "")
            if mine and mine != donor:
                self.bad(number, record, self.donor_field, "(not shown)", "another donor id")
            elif not donor:
                self.bad(number, record, self.donor_field, "", "no donor id for this record")
        if len(self.export.bad_cells) > faults:
            self.export.refused += max(len(holding), 1)
            return
        context = {**self.base_rows.get((record, event), {}), **values}
        for name in holding:
            kept = FormRecord(number, record, donor, event, instance, name, None)
            self.read_form(cells, kept, context)

    def read_form(self, cells: list[str], kept: FormRecord, context: dict[str, str]) -> None:
        """One form's values of a row: kept when all are good."""
        faults = len(self.export.bad_cells)
        columns = self.layout.by_form[kept.form]
        if columns.status is not None:
            status = self.cell(cells, columns.status.index)
            if status and status not in COMPLETION:
                reason = "not 0, 1 or 2 (form status)"
                self.bad(kept.row, kept.record_id, columns.status.name, status, reason)
            elif status:
                kept.completion = int(status)
        for name, of_field in columns.fields.items():
            fld = self.layout.fields[name]
            if fld.identifier:  # PHI: counted, never read into a value
                self.export.identifier_values += sum(
                    1
                    for c in of_field
                    if self.cell(cells, c.index) not in ("", "0" if c.choice else "")
                )
                continue
            self.read_field(cells, kept, fld, of_field, context)
        if len(self.export.bad_cells) > faults:
            self.export.refused += 1
        else:
            self.export.records.append(kept)

    def valid(self, name: str, context: dict[str, str]) -> bool:
        """Whether a field's value in this row (if any) is a value of the field."""
        fld = self.layout.fields[name]
        value = context.get(name, "")
        if not value or fld.field_type == "checkbox" or fld.identifier:
            return True
        try:
            read_value(fld, value, self.today)
        except InvalidValue:
            return False
        return True

    def shown(self, fld: Field, context: dict[str, str]) -> bool | None:
        """Whether branching logic shows the field (None: not checked)."""
        if fld.condition is None:
            return None
        refs = list(fld.condition.refs())
        if any(ref.field not in self.layout.present for ref in refs):
            return None  # the field it depends on is not in this export
        if not all(self.valid(ref.field, context) for ref in refs):
            return None  # that cell is reported already; its logic would mislead

        def value_of(ref: branching.Ref) -> str:
            value = context.get(ref.field, "")
            if ref.code is None:
                return value
            return "1" if ref.code in value.split("|") else "0"

        return branching.evaluate(fld.condition, value_of)

    def read_field(
        self,
        cells: list[str],
        kept: FormRecord,
        fld: Field,
        columns: list[_Column],
        context: dict[str, str],
    ) -> None:
        """Check one field's cell(s); its value goes to ``kept``."""
        row, record = kept.row, kept.record_id
        shown = self.shown(fld, context)
        hidden = f"hidden by its branching logic ({fld.branching_logic}): must be empty"
        if fld.field_type == "checkbox":
            ticked = []
            for column in columns:
                value = self.cell(cells, column.index)
                if value not in ("", "0", "1"):
                    self.bad(row, record, column.name, value, "a checkbox is 0 or 1")
                elif value == "1":
                    ticked.append(column)
            if shown is False and ticked:
                codes = "|".join(fld.choices[c.choice - 1].code for c in ticked)
                self.bad(row, record, fld.name, codes, hidden)
            elif fld.required and shown is not False and not ticked:
                self.bad(row, record, fld.name, "", "required: no choice is ticked")
            for column in ticked:
                choice = fld.choices[column.choice - 1]
                code = choice.coding.code if choice.coding else choice.code
                system = choice.coding.system if choice.coding else None
                kept.values.append(
                    Value(fld.name, column.choice, choice.code, code=code, system=system)
                )
            return
        text = self.cell(cells, columns[0].index)
        if not text:
            if fld.required and shown is not False and fld.has_value:
                self.bad(row, record, fld.name, "", "required but empty")
        elif shown is False:
            self.bad(row, record, fld.name, text, hidden)
        elif fld.has_value:
            try:
                kept.values.append(read_value(fld, text, self.today))
            except InvalidValue as error:
                self.bad(row, record, fld.name, text, str(error))


def read_export(
    data: bytes,
    forms: Sequence[Form],
    *,
    donor_field: str | None = None,
    only_form: str | None = None,
    today: dt.date | None = None,
) -> Export:
    """Read a REDCap export against imported forms. ``ExportColumnsError`` (nothing read)
    when a column belongs to no form; ``ValueError`` for a file that is no CSV export."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason})") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise ValueError(f"not a CSV file ({error})") from None
    if not rows or not rows[0] or not rows[0][0].strip():
        raise ValueError("no header row: the first column must be the record id")
    if only_form is not None and only_form not in {f.name for f in forms}:
        raise ValueError(f"no form {only_form!r}; imported: {', '.join(f.name for f in forms)}")
    layout = _Layout(rows[0], forms, only_form, donor_field)
    if donor_field is not None:
        known = {f.name for form in forms for f in form.fields}
        if donor_field not in known:
            raise ValueError(f"--donor-field {donor_field!r} is not a field of the forms")
        if donor_field not in layout.present:
            raise ValueError(f"--donor-field {donor_field!r} is not a column of the export")
    reader = _Reader(layout, donor_field, today or dt.date.today())
    body = [
        (n, cells) for n, cells in enumerate(rows[1:], start=2) if any(c.strip() for c in cells)
    ]
    reader.prepare(body)
    for number, cells in body:
        reader.read_row(number, cells)
    reader.export.rows = len(body)
    return reader.export
