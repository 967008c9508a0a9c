"""``export argo``: the biobank as an ICGC-ARGO clinical submission, with its coverage report.

One TSV per ARGO schema the data fills (sample_registration, donor, specimen,
primary_diagnosis, treatment, follow_up, biomarker, radiation), header in the dictionary's
field order, arrays joined with ``|``. What goes where is our mapping
(``export/data/argo_mapping.csv``), not code: e-form fields and model attributes, value
mappings to ARGO's permitted values, notes. Submitter ids come from pseudonyms and sample
identifiers only: a donor is its ``sample_donor.pseudonym``, never a name or a record id.

ARGO registers donors through their samples: a sample enters ``sample_registration`` with the
analyte (DNA/RNA) a molecular test of it shows, and a donor's clinical rows are written only
once the donor is registered. Everything that could not go in is a finding, not a silent
drop: unregistered donors and samples, values with no ARGO equivalent, infants diagnosed
under one year (ARGO's age is in whole years above 0: we write 0 completed years and the
dictionary rejects it), variables ARGO lacks (INRG stage, MYCN, ALK), curated defaults,
conflicting sources. The TSVs are written even when they do not validate (a submission
draft); the validation report says per file, row and field what fails and why. When no
donor is registered there is nothing to submit: no TSV is written (``ArgoExport.empty``).

The donors are those of the exported sample, clinical and molecular collections as the
catalogue counts them (``export.source``: declared members too), the program id comes from
the exported collections' biobank (its acronym and country). Day 0 of every interval is the
primary diagnosis: its date, else the age at diagnosis that the mapping's rows for
``primary_diagnosis.age_at_diagnosis`` give first, read by their transform (so intervals
and the age written agree). Ages are read in UCUM units (``export.source.Age``); a
gestational age is before birth and gives no age in years.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, text

from imaging_biobank.db._schema import metadata
from imaging_biobank.export.argo_dictionary import Dictionary, Schema
from imaging_biobank.export.argo_mapping import (
    AGE_TRANSFORMS,
    CoverageEntry,
    Mapping,
    Rule,
    coverage,
    load_mapping,
    percentage,
)
from imaging_biobank.export.argo_validate import (
    ARRAY_SEPARATOR,
    ValidationReport,
    Validator,
    validate_files,
)
from imaging_biobank.export.data_files import data_rows
from imaging_biobank.export.scope import export_scope
from imaging_biobank.export.source import (
    Age,
    Answer,
    Biobank,
    FormField,
    Record,
    biobanks_of,
    donor_events,
    donors_of,
    form_fields,
    form_records,
    is_icd10,
    partial_date,
)

T = metadata.tables
DIAGNOSIS_AGE = "primary_diagnosis.age_at_diagnosis"  # the ARGO field whose sources date day 0
KINDS = ("sample_tissue", "clinical_variable", "molecular_biomarker")  # ARGO's collections
ID_FIELDS = {
    "program_id",
    "submitter_donor_id",
    "submitter_specimen_id",
    "submitter_sample_id",
    "submitter_primary_diagnosis_id",
    "submitter_treatment_id",
    "submitter_follow_up_id",
}
RECORD_SCHEMAS = ("treatment", "follow_up", "biomarker", "radiation")
REPORT_FILES = {
    "validation": "report.validation.tsv",
    "coverage": "report.coverage.tsv",
    "findings": "report.findings.tsv",
    "summary": "report.json",
}
_SAFE_ID = re.compile(r"[^A-Za-z0-9\-._]+")


@dataclass(frozen=True)
class Finding:
    """Something the export could not carry over as it was, and why."""

    kind: str  # not registered | no ARGO field | value not mapped | infant | conflict | ...
    schema: str
    field: str
    donor: str  # pseudonym ('' when not about one donor)
    source: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The finding as a JSON object."""
        return asdict(self)

    @classmethod
    def no_argo_field(cls, source: str, message: str) -> Finding:
        """Values of ``source`` not exported: ARGO has no field for them."""
        return cls("no ARGO field", "", "", "", source, message)


@dataclass(frozen=True)
class SourceValue:
    """One value of a source: a code (choice or term code), number, date or age, its UCUM
    unit (an age's: ``gestational`` when counted from the start of pregnancy) and, for a
    choice, its label."""

    code: str | None = None
    label: str | None = None
    system: str | None = None
    number: float | None = None
    unit: str | None = None
    gestational: bool = False
    date: str | None = None

    def age(self, unit: str | None = None) -> Age | None:
        """The value as an age in ``unit`` (default: its own unit); None without a number."""
        chosen = unit or self.unit
        if self.number is None or not chosen:
            return None
        return Age(self.number, chosen, self.gestational and unit is None)

    def shown(self) -> str:
        """The value as a person reads it."""
        if self.label and self.code:
            return f"{self.code} ({self.label})"
        for value in (self.code, self.date):
            if value:
                return value
        age = self.age()
        if age is not None:
            return age.shown()
        if self.number is not None:
            return f"{self.number:g}"
        return ""

    @classmethod
    def of_answer(cls, answer: Answer) -> SourceValue:
        """An e-form answer: a choice as its code and label, else its code, number or date
        (a text without any of these as its code), with its unit and code system."""
        if answer.field.is_choice:
            return cls(code=answer.raw, label=answer.label)
        text_only = answer.number is None and answer.date is None
        return cls(
            code=answer.code or (answer.raw if text_only else None),
            number=answer.number,
            date=answer.date,
            unit=answer.unit,
            system=answer.system,
        )


@dataclass
class Context:
    """The source values one ARGO row is made from."""

    donor: str
    values: dict[str, list[SourceValue]] = field(default_factory=dict)

    def get(self, source: str) -> list[SourceValue]:
        """The values of ``source`` (empty when absent)."""
        return self.values.get(source, [])

    def overlaid(self, values: dict[str, list[SourceValue]]) -> Context:
        """A copy with ``values`` replacing the same sources."""
        return Context(self.donor, {**self.values, **values})


@dataclass
class ArgoExport:
    """What an export wrote and found."""

    out_dir: Path
    dictionary: Dictionary
    mapping: Mapping
    program_id: str
    tables: dict[str, list[dict[str, str]]]
    files: dict[str, Path]
    validation: ValidationReport
    coverage: list[CoverageEntry]
    findings: list[Finding]

    @property
    def valid(self) -> bool:
        """Whether every file validates against the dictionary (vacuously when none was
        written: see ``empty``)."""
        return self.validation.valid

    @property
    def empty(self) -> bool:
        """Whether there is nothing to submit (no donor registered with a sample)."""
        return not self.files

    @property
    def left_out_unsubmitted(self) -> bool:
        """Whether nothing is submitted although donors were left out (not registered)."""
        return self.empty and any(f.kind == "not registered" for f in self.findings)

    @property
    def coverage_percent(self) -> float:
        """Mapped variables (e-form fields and model attributes) as a percentage."""
        return percentage(self.coverage)


# ---------------------------------------------------------------------------------------
# reading the database


def _in(sql: str, *names: str) -> Any:
    return text(sql).bindparams(*(bindparam(n, expanding=True) for n in names))


def _site_groups() -> dict[str, str]:
    return {row["code"]: row["site_group"] for row in data_rows("argo_site_groups.csv")}


@dataclass
class _Donor:
    """A donor read: pseudonym, birth date as stored, the values its rows are made of and
    its day 0 (the primary diagnosis as a date, else as an age in days)."""

    id: int
    pseudonym: str
    birth_date: str | None
    context: Context
    diagnosis_date: str | None = None
    diagnosis_age_days: float | None = None


class _Reader:
    """Reads the scoped part of the database into contexts (portable SQL). The donors are
    those of the exported sample, clinical and molecular collections as the catalogue
    counts them (declared members and the donors of their items)."""

    def __init__(self, conn: Connection, collections: Sequence[str]):
        scope = export_scope(conn, collections)
        self.conn = conn
        self.scope = [c for c in scope.collections if c.kind in KINDS]
        self.tissue = [c.id for c in scope.of_kind("sample_tissue")]
        self.clinical = [c.id for c in scope.of_kind("clinical_variable")]
        self.molecular = [c.id for c in scope.of_kind("molecular_biomarker")]
        self.biobanks: list[Biobank] = biobanks_of(conn, scope.ids)
        self.donors: dict[int, _Donor] = {}
        self.samples: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self.records: list[Record] = []  # of the donors read, in form and event order
        self.record_values: dict[int, dict[str, list[SourceValue]]] = {}  # by record id
        self.form_fields: list[FormField] = []
        self.field_values: dict[str, int] = {}  # source -> values present

    def read(self) -> None:
        d, x = T["sample_donor"], T["sex"]
        rows = self.conn.execute(
            select(d.c.id, d.c.pseudonym, d.c.birth_date, x.c.code.label("sex"))
            .outerjoin(x, x.c.id == d.c.sex_id)
            .where(d.c.id.in_(sorted(donors_of(self.conn, self.scope))))
        ).all()
        for r in sorted(rows, key=lambda r: str(r.pseudonym)):
            context = Context(str(r.pseudonym))
            context.values["model:sample_donor.pseudonym"] = [SourceValue(code=str(r.pseudonym))]
            if r.sex:
                context.values["model:sample_donor.sex"] = [SourceValue(code=str(r.sex))]
            if r.birth_date:
                context.values["model:sample_donor.birth_date"] = [
                    SourceValue(date=str(r.birth_date))
                ]
            self.donors[int(r.id)] = _Donor(int(r.id), str(r.pseudonym), r.birth_date, context)
        self._read_events()
        self._read_samples()
        self._read_forms()

    def _read_events(self) -> None:
        events = donor_events(self.conn, self.donors)
        for e in sorted(events, key=lambda e: (e.date or "", (e.age and e.age.days) or 0.0)):
            prefix = f"model:event.{e.kind}"
            values = self.donors[e.donor_id].context.values
            if e.date:
                values.setdefault(f"{prefix}.date", []).append(SourceValue(date=e.date))
            elif e.age is not None:
                age = SourceValue(
                    number=e.age.value, unit=e.age.ucum, gestational=e.age.gestational
                )
                values.setdefault(f"{prefix}.age", []).append(age)
                values.setdefault(f"{prefix}.date", []).append(age)  # dated by an age
            if e.disease:
                values.setdefault(f"{prefix}.disease", []).append(
                    SourceValue(code=e.disease, system=e.disease_vocabulary)
                )

    def _read_samples(self) -> None:
        rows = self.conn.execute(
            _in(
                "SELECT s.id, s.identifier, s.sample_donor_id AS donor, m.code AS material,"
                " t.code AS temperature, s.creation_date, s.anatomical_site_ontology AS ontology,"
                " s.anatomical_site_code AS site"
                " FROM sample s JOIN material_type m ON m.id = s.material_type_id"
                " LEFT JOIN storage_temperature t ON t.id = s.storage_temperature_id"
                " WHERE s.collection_id IN :st",
                "st",
            ),
            {"st": self.tissue},
        ).all()
        self.samples = [dict(r._mapping) for r in sorted(rows, key=lambda r: str(r.identifier))]
        rows = self.conn.execute(
            _in(
                "SELECT sample_id, sample_donor_id AS donor, biomarker, method FROM"
                " molecular_biomarker_result WHERE collection_id IN :mb",
                "mb",
            ),
            {"mb": self.molecular},
        ).all()
        self.results = [dict(r._mapping) for r in rows]

    def _read_forms(self) -> None:
        self.form_fields = form_fields(self.conn, self.clinical)
        records = form_records(self.conn, self.clinical, self.form_fields)

        def order(r: Record) -> tuple[str, str, int, str]:
            return (r.form, r.event_name or "", r.repeat_instance or 0, r.key)

        for record in sorted(records, key=order):
            values: dict[str, list[SourceValue]] = {}
            for answer in record.answers:
                source = answer.field.source
                values.setdefault(source, []).append(SourceValue.of_answer(answer))
                self.field_values[source] = self.field_values.get(source, 0) + 1
            if record.donor_id not in self.donors:
                continue
            self.records.append(record)
            self.record_values[record.id] = values
            # a donor-level view: the donor's last record of each form
            self.donors[record.donor_id].context.values.update(values)


# ---------------------------------------------------------------------------------------
# dates, ages and intervals


def _age_of(rule: Rule, value: SourceValue) -> Age | None:
    """The age a value of an age rule gives: its number in the unit the rule's transform
    reads (``AGE_TRANSFORMS``), or in the value's own unit."""
    return value.age(AGE_TRANSFORMS.get(rule.transform or ""))


# ---------------------------------------------------------------------------------------
# building the rows


class _Builder:
    """Turns contexts into ARGO rows through the mapping, collecting findings."""

    def __init__(self, dictionary: Dictionary, mapping: Mapping, program_id: str):
        self.dictionary = dictionary
        self.mapping = mapping
        self.program_id = program_id
        self.findings: list[Finding] = []
        self.site_groups = _site_groups()
        self.donor: _Donor | None = None

    def find(self, kind: str, target: str, source: str, message: str) -> None:
        schema, _, name = target.partition(".")
        donor = self.donor.pseudonym if self.donor else ""
        finding = Finding(kind, schema, name, donor, source, message)
        if finding not in self.findings:
            self.findings.append(finding)

    # -- transforms ------------------------------------------------------------------

    def _years(self, rule: Rule, value: SourceValue) -> str | None:
        age = _age_of(rule, value)
        if age is not None and age.gestational:
            self.find(
                "value not mapped",
                rule.target,
                rule.source,
                f"{value.shown()}: a gestational age is before birth, ARGO's"
                f" {rule.field} counts years from birth",
            )
            return None
        years_after_birth = age.years if age is not None else None
        if years_after_birth is None:
            self.find("value not mapped", rule.target, rule.source, f"{value.shown()}: no age unit")
            return None
        years = math.floor(years_after_birth + 1e-9)
        if years < 1:
            self.find(
                "infant",
                rule.target,
                rule.source,
                f"diagnosed at {value.shown()} (under one year): ARGO's age_at_diagnosis is"
                " whole years above 0; written as 0 completed years, which the dictionary"
                " rejects (not rounded up)",
            )
        return str(years)

    def _days_since_diagnosis(self, rule: Rule, value: SourceValue) -> str | None:
        donor = self.donor
        assert donor is not None
        approximate = False
        days: float | None = None
        if value.date and donor.diagnosis_date:
            end, start = partial_date(value.date), partial_date(donor.diagnosis_date)
            if end and start:
                days = float((end.first_day - start.first_day).days)
                approximate = not (end.exact and start.exact)
        elif value.number is not None and donor.diagnosis_age_days is not None:
            at = _age_of(rule, value)
            if at is not None and at.days is not None:
                days, approximate = at.days - donor.diagnosis_age_days, True
        elif value.date and donor.diagnosis_age_days is not None and donor.birth_date:
            end, born = partial_date(value.date), partial_date(donor.birth_date)
            if end and born:
                days = (end.first_day - born.first_day).days - donor.diagnosis_age_days
                approximate = True
        if days is None:
            self.find(
                "no interval",
                rule.target,
                rule.source,
                "no date or age of the primary diagnosis to count days from",
            )
            return None
        if approximate:
            self.find(
                "approximate",
                rule.target,
                rule.source,
                "days counted from a date of month or year precision, or from ages: approximate",
            )
        return str(round(days))

    def apply(self, rule: Rule, values: list[SourceValue]) -> tuple[list[str], list[SourceValue]]:
        """ARGO values of ``values`` by ``rule``, and the values that gave none."""
        out: list[str] = []
        dropped: list[SourceValue] = []
        for value in values:
            produced = self._one(rule, value)
            if produced is None:
                dropped.append(value)
            else:
                out.extend(produced)
        return out, dropped

    def _one(self, rule: Rule, value: SourceValue) -> list[str] | None:
        if rule.values:
            mapped = rule.values.get(value.code or "", rule.values.get("*"))
            if not mapped:
                return None
            return [v.strip() for v in mapped.split(ARRAY_SEPARATOR) if v.strip()]
        transform = rule.transform
        result: str | None = None
        if transform == "pseudonym":
            result = self.donor.pseudonym if self.donor else None
        elif transform in ("copy", "number"):
            result = value.code or value.date
            if value.number is not None:
                result = f"{value.number:g}"
        elif transform == "icd10":
            result = value.code if is_icd10(value.system) else None
        elif transform == "icdo3_topography":
            coded = is_icd10(value.system) or (value.system or "").upper().startswith("ICD-O")
            result = value.code if coded else None
        elif transform == "site_group":
            code = (value.code or "").strip().upper()
            result = self.site_groups.get(code[:3])
        elif transform in ("months_to_years", "years", "age_years"):
            result = self._years(rule, value)
        elif transform == "months_to_days":
            age = _age_of(rule, value)
            days = age.days if age is not None else None
            result = str(round(days)) if days is not None else None
        elif transform == "days_since_diagnosis":
            result = self._days_since_diagnosis(rule, value)
        elif transform == "integer":
            if value.number is not None and float(value.number).is_integer():
                result = str(int(value.number))
            elif value.number is not None:
                self.find(
                    "value not mapped",
                    rule.target,
                    rule.source,
                    f"{value.shown()}: ARGO takes a whole number here; not rounded",
                )
                return []
        return [result] if result else None

    # -- one row ---------------------------------------------------------------------

    def _when_holds(self, rule: Rule, context: Context) -> bool:
        if rule.when is None:
            return True
        form = rule.source.rsplit(".", 1)[0]
        name, code = rule.when
        return any(v.code == code for v in context.get(f"{form}.{name}"))

    def _combine(
        self,
        schema: Schema,
        name: str,
        is_array: bool,
        produced_by: list[tuple[Rule, list[str]]],
        dropped_by: list[tuple[Rule, list[SourceValue]]],
    ) -> tuple[str, list[tuple[Rule, list[SourceValue]]]]:
        """The field's value from what each rule produced (by each rule's ``combine``), and
        the dropped values worth reporting."""
        chosen: list[str] = []
        first: Rule | None = None
        others: list[tuple[Rule, list[str]]] = []
        for rule, out in produced_by:
            if first is None:
                first, chosen = rule, list(out)
            elif rule.combine == "add":
                chosen.extend(v for v in out if v not in chosen)
            elif rule.combine == "":
                others.append((rule, out))
        for rule, out in others:
            if sorted(set(out)) != sorted(set(chosen)):
                said = "; ".join(
                    f"{r.source} gives {ARRAY_SEPARATOR.join(o)!r}"
                    for r, o in [(first, chosen), (rule, out)]
                    if r is not None
                )
                self.find(
                    "conflict",
                    f"{schema.name}.{name}",
                    first.source if first else rule.source,
                    f"sources disagree ({said}): wrote the first, by the mapping's order",
                )
        if not is_array:
            chosen = chosen[:1]
        value = ARRAY_SEPARATOR.join(chosen)
        # a dropped value matters when nothing took its place, or when it is one of several
        report = [(r, d) for r, d in dropped_by if is_array or not value]
        return value, report

    def fill(self, schema: Schema, context: Context) -> dict[str, str]:
        """One ARGO row of ``schema`` from ``context``: each field from its rules in order."""
        row: dict[str, str] = {}
        rules = self.mapping.rules_for(schema.name)
        for spec in schema.fields:
            if spec.name in ID_FIELDS:
                continue
            field_rules = [
                r for r in rules if r.field == spec.name and self._when_holds(r, context)
            ]
            produced_by: list[tuple[Rule, list[str]]] = []
            dropped_by: list[tuple[Rule, list[SourceValue]]] = []
            for rule in field_rules:
                values = context.get(rule.source)
                if not values:
                    continue
                out, dropped = self.apply(rule, values)
                if out:
                    produced_by.append((rule, out))
                if dropped:
                    dropped_by.append((rule, dropped))
            value, report_dropped = self._combine(
                schema, spec.name, spec.is_array, produced_by, dropped_by
            )
            for rule, dropped in report_dropped:
                for item in dropped:
                    if rule.transform in ("days_since_diagnosis", "integer"):
                        continue  # reported by the transform
                    self.find(
                        "value not mapped",
                        rule.target,
                        rule.source,
                        f"{item.shown()} has no ARGO {spec.name} value"
                        + (f" ({rule.note})" if rule.note and not rule.values else ""),
                    )
            if not value:
                for default in self.mapping.defaults:
                    if default.target == f"{schema.name}.{spec.name}":
                        value = default.values.get("*", "")
                        self.find(
                            "default",
                            default.target,
                            "default",
                            f"{value!r}: {default.note}",
                        )
                        break
            if value:
                row[spec.name] = value
        return row


def _safe_id(value: str) -> str:
    return _SAFE_ID.sub("-", value).strip("-")[:64]


def _program_id(biobanks: Sequence[Biobank]) -> str:
    """The program id of the exported collections' biobank: its acronym and country code
    (the first biobank's, by identifier, when they come from several)."""
    if not biobanks or not biobanks[0].acronym:
        return "PROGRAM"
    return _safe_id(f"{biobanks[0].acronym}-{biobanks[0].country}").upper()


def _schema_rows(
    dictionary: Dictionary, builder: _Builder, reader: _Reader
) -> dict[str, list[dict[str, str]]]:
    tables: dict[str, list[dict[str, str]]] = {}
    program = builder.program_id

    def add(schema_name: str, ids: dict[str, str], context: Context) -> dict[str, str] | None:
        schema = dictionary.schemas.get(schema_name)
        if schema is None:
            return None
        row = {"program_id": program, **ids, **builder.fill(schema, context)}
        tables.setdefault(schema_name, []).append(row)
        return row

    # the analyte of each sample: the sample types its molecular tests give
    type_rules = [
        r for r in builder.mapping.rules_for("sample_registration") if r.field == "sample_type"
    ]
    registered: dict[int, str] = {}  # donor id -> primary diagnosis id
    specimens: list[tuple[dict[str, Any], Context]] = []
    for sample in reader.samples:
        donor = reader.donors[int(sample["donor"])]
        builder.donor = donor
        methods = [
            SourceValue(code=str(r["method"]))
            for r in reader.results
            if r["sample_id"] == sample["id"] and r["method"]
        ]
        context = donor.context.overlaid(
            {
                "model:sample.identifier": [SourceValue(code=str(sample["identifier"]))],
                "model:sample.material_type": [SourceValue(code=str(sample["material"]))],
                "model:molecular_biomarker_result.method": methods,
            }
        )
        if sample["temperature"]:
            context.values["model:sample.storage_temperature"] = [
                SourceValue(code=str(sample["temperature"]))
            ]
        if sample["creation_date"]:
            context.values["model:sample.creation_date"] = [
                SourceValue(date=str(sample["creation_date"]))
            ]
        if sample["site"]:
            context.values["model:sample.anatomical_site"] = [
                SourceValue(code=str(sample["site"]), system=str(sample["ontology"] or ""))
            ]
        analytes: dict[str, None] = {}
        for rule in type_rules:
            out, _ = builder.apply(rule, context.get(rule.source))
            analytes.update(dict.fromkeys(out))
        specimen_id = _safe_id(str(sample["identifier"]))
        if not analytes:
            builder.find(
                "not registered",
                "sample_registration.submitter_specimen_id",
                "model:sample.identifier",
                f"sample {specimen_id}: no molecular test shows an analyte (DNA/RNA), and ARGO"
                " registers samples by their analyte: not exported",
            )
            continue
        for analyte in analytes:
            ids = {
                "submitter_donor_id": donor.pseudonym,
                "submitter_specimen_id": specimen_id,
                "submitter_sample_id": _safe_id(f"{specimen_id}-{analyte.replace(' ', '')}"),
            }
            row = add("sample_registration", ids, context)
            if row is not None:
                row["sample_type"] = analyte
        registered[donor.id] = _safe_id(f"{donor.pseudonym}-DX1")
        specimens.append((sample, context))

    for donor in reader.donors.values():
        if donor.id in registered:
            continue
        if any(r.donor_id == donor.id for r in reader.records) or any(
            k.startswith("model:event.") for k in donor.context.values
        ):
            builder.donor = donor
            builder.find(
                "not registered",
                "donor.submitter_donor_id",
                "model:sample_donor.pseudonym",
                "no registered sample: ARGO accepts clinical data only for donors registered"
                " with a sample, so this donor's records are not exported",
            )
    builder.donor = None

    for donor_id, diagnosis_id in registered.items():
        donor = reader.donors[donor_id]
        builder.donor = donor
        ids = {"submitter_donor_id": donor.pseudonym}
        add("donor", ids, donor.context)
        add(
            "primary_diagnosis",
            {**ids, "submitter_primary_diagnosis_id": diagnosis_id},
            donor.context,
        )

    designation = {
        (r["submitter_specimen_id"]): r.get("tumour_normal_designation", "")
        for r in tables.get("sample_registration", [])
    }
    for sample, context in specimens:
        donor = reader.donors[int(sample["donor"])]
        builder.donor = donor
        specimen_id = _safe_id(str(sample["identifier"]))
        row = add(
            "specimen",
            {
                "submitter_donor_id": donor.pseudonym,
                "submitter_specimen_id": specimen_id,
                "submitter_primary_diagnosis_id": registered[donor.id],
            },
            context,
        )
        if row is not None and designation.get(specimen_id) != "Tumour":
            for name in ("tumour_histological_type",):
                if row.pop(name, None):
                    builder.find(
                        "cleared",
                        f"specimen.{name}",
                        "",
                        f"specimen {specimen_id} is not designated Tumour: no tumour histology",
                    )

    counters: dict[tuple[int, str], int] = {}
    for record in reader.records:
        if record.donor_id not in registered:
            continue
        donor = reader.donors[record.donor_id]
        builder.donor = donor
        values = reader.record_values[record.id]
        context = donor.context.overlaid(values)
        treatment_id = ""
        for schema_name in RECORD_SCHEMAS:
            sources = {
                r.source
                for r in builder.mapping.rules_for(schema_name)
                if r.source.startswith(f"form:{record.form}.") and r.transform != "pseudonym"
            }
            if not any(values.get(s) for s in sources):
                continue
            number = counters.get((donor.id, schema_name), 0) + 1
            counters[(donor.id, schema_name)] = number
            ids = {
                "submitter_donor_id": donor.pseudonym,
                "submitter_primary_diagnosis_id": registered[donor.id],
            }
            if schema_name == "treatment":
                treatment_id = _safe_id(f"{donor.pseudonym}-TX{number}")
                ids["submitter_treatment_id"] = treatment_id
            elif schema_name == "follow_up":
                ids["submitter_follow_up_id"] = _safe_id(f"{donor.pseudonym}-FU{number}")
            elif schema_name == "radiation":
                ids = {
                    "submitter_donor_id": donor.pseudonym,
                    "submitter_treatment_id": treatment_id,
                }
            row = add(schema_name, ids, context)
            if row is not None and schema_name == "treatment":
                _no_treatment_details(builder, row)
    builder.donor = None
    return tables


def _no_treatment_details(builder: _Builder, row: dict[str, str]) -> None:
    """ARGO takes no treatment detail for 'No treatment': move what we had to the findings."""
    if row.get("treatment_type") != "No treatment":
        return
    for name in list(row):
        if name in ID_FIELDS or name in ("treatment_type", "is_primary_treatment"):
            continue
        value = row.pop(name)
        builder.find(
            "cleared",
            f"treatment.{name}",
            f"treatment.{name}",
            f"{value!r} not written: ARGO takes no {name} when treatment_type is 'No treatment'"
            " (the follow-up keeps the disease status)",
        )


def _prepare_donors(reader: _Reader, mapping: Mapping) -> None:
    """Each donor's day 0: the primary diagnosis as a date, else as an age: the first value
    of the sources the mapping fills ``primary_diagnosis.age_at_diagnosis`` from (in its
    order of preference), read by the rule's transform."""
    rules = [r for r in mapping.rules_to(DIAGNOSIS_AGE) if r.transform in AGE_TRANSFORMS]
    for donor in reader.donors.values():
        values = donor.context.values
        dated = [v.date for v in values.get("model:event.diagnosis.date", []) if v.date]
        if dated:
            donor.diagnosis_date = dated[0]
            continue
        for rule in rules:
            ages = (_age_of(rule, v) for v in values.get(rule.source, []))
            days = next((a.days for a in ages if a is not None and a.days is not None), None)
            if days is not None:
                donor.diagnosis_age_days = days
                break


def _write_tsv(path: Path, header: Sequence[str], rows: Iterable[dict[str, str]]) -> None:
    def clean(value: str) -> str:
        return re.sub(r"[\t\r\n]+", " ", value)

    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(clean(row.get(h, "")) for h in header) + "\n")


def export_argo(
    engine: Engine,
    out_dir: Path,
    dictionary: Dictionary,
    *,
    collections: Sequence[str] = (),
    program_id: str | None = None,
    mapping: Mapping | None = None,
    use_javascript: bool = True,
) -> ArgoExport:
    """Write the ARGO submission of the scoped collections to ``out_dir``, validate it
    against ``dictionary`` and write the validation, coverage and findings reports."""
    mapping = mapping or load_mapping()
    with engine.connect() as conn:
        reader = _Reader(conn, collections)
        reader.read()
    program = _safe_id(program_id) if program_id else _program_id(reader.biobanks)
    _prepare_donors(reader, mapping)
    builder = _Builder(dictionary, mapping, program)
    if not program_id and len(reader.biobanks) > 1:
        builder.find(
            "program",
            "donor.program_id",
            "model:biobank.acronym",
            f"the collections come from {len(reader.biobanks)} biobanks"
            f" ({', '.join(b.identifier for b in reader.biobanks)}): program id {program}"
            " from the first; give --program-id to choose",
        )
    tables = _schema_rows(dictionary, builder, reader)
    findings = builder.findings
    entries = coverage(mapping, reader.form_fields)
    for entry in entries:
        if entry.mapped or entry.kind != "e-form field":
            continue
        count = reader.field_values.get(entry.source, 0)
        if count:
            findings.append(
                Finding.no_argo_field(entry.source, f"{count} value(s) not exported: {entry.note}")
            )
    lacking: dict[str, int] = {}
    for test in reader.results:
        lacking[str(test["biomarker"])] = lacking.get(str(test["biomarker"]), 0) + 1
    if lacking and "model:molecular_biomarker_result.result" in mapping.unmapped:
        listed = ", ".join(f"{name} ({count})" for name, count in sorted(lacking.items()))
        source = "model:molecular_biomarker_result.result"
        why = mapping.unmapped[source]
        findings.append(Finding.no_argo_field(source, f"results not exported: {listed}: {why}"))

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    headers: dict[str, list[str]] = {}
    for name, schema in dictionary.schemas.items():
        path = out_dir / f"{name}.tsv"
        if name not in tables:
            if path.exists():
                path.unlink()  # a file of an earlier export that has no rows now
            continue
        headers[name] = schema.field_names
        _write_tsv(path, headers[name], tables[name])
        files[name] = path
    validation = Validator(dictionary, use_javascript).validate(tables, headers)
    result = ArgoExport(
        out_dir, dictionary, mapping, program, tables, files, validation, entries, findings
    )
    write_reports(result)
    return result


def write_reports(result: ArgoExport) -> None:
    """The validation, coverage and findings reports (TSV) and a JSON summary of all three."""
    out = result.out_dir
    write_validation(out / REPORT_FILES["validation"], result.validation)
    with (out / REPORT_FILES["coverage"]).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["source", "kind", "label", "mapped", "argo_fields", "note"])
        for entry in result.coverage:
            writer.writerow(
                [
                    entry.source,
                    entry.kind,
                    entry.label,
                    "yes" if entry.mapped else "no",
                    ARRAY_SEPARATOR.join(entry.targets),
                    entry.note,
                ]
            )
    with (out / REPORT_FILES["findings"]).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["kind", "schema", "field", "donor", "source", "message"])
        for finding in result.findings:
            writer.writerow(list(finding.as_dict().values()))
    forms = [e for e in result.coverage if e.kind == "e-form field"]
    summary = {
        "dictionary": result.dictionary.label,
        "mapping": result.mapping.source_file,
        "program_id": result.program_id,
        "files": {
            name: {"file": p.name, "rows": len(result.tables[name])}
            for name, p in result.files.items()
        },
        "valid": result.valid,
        "empty": result.empty,
        "validation": {
            "errors": len(result.validation.errors),
            "not_checked": len(result.validation.unchecked),
            "script_checks": result.validation.script_checks,
            "issues": [i.as_dict() for i in result.validation.issues],
        },
        "coverage": {
            "variables": len(result.coverage),
            "mapped": sum(e.mapped for e in result.coverage),
            "percent": round(result.coverage_percent, 1),
            "e_form_fields": len(forms),
            "e_form_fields_mapped": sum(e.mapped for e in forms),
            "e_form_percent": round(percentage(forms), 1),
            "entries": [e.as_dict() for e in result.coverage],
        },
        "findings": [f.as_dict() for f in result.findings],
    }
    (out / REPORT_FILES["summary"]).write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )


def write_validation(path: Path, report: ValidationReport) -> None:
    """The validation issues as TSV: file, row, field, value, rule, severity, checker, why."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(
            ["file", "row", "field", "value", "rule", "severity", "checked_by", "message"]
        )
        for issue in report.issues:
            writer.writerow(
                [
                    issue.file,
                    issue.row,
                    issue.field,
                    issue.value,
                    issue.rule,
                    issue.severity,
                    issue.checked_by,
                    issue.message,
                ]
            )


def check_submission(
    out_dir: Path, dictionary: Dictionary, use_javascript: bool = True
) -> ValidationReport:
    """Validate the ARGO TSVs in ``out_dir`` as they are now (after a hand edit, say) and
    rewrite its validation report."""
    paths = sorted(p for p in out_dir.glob("*.tsv") if not p.name.startswith("report."))
    report = validate_files(dictionary, paths, use_javascript)
    write_validation(out_dir / REPORT_FILES["validation"], report)
    return report
