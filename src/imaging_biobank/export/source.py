"""What the exports read from the biobank, read one way for all of them.

Every export (Directory, OMOP, ARGO, and any other that wants to) takes from here:

- the donors of the exported collections: declared members (``collection_sample_donor``)
  and the donors of the collections' items, exactly as the catalogue counts them
  (``catalogue.descriptors.member_donors``), so that no two exports disagree on who is in
  a collection (``collection_donors``, ``donors_of``);
- partial ISO 8601 dates (``2018``, ``2018-02``) as their first day, with their precision
  (``partial_date``, ``first_day``, ``years_between``);
- ages in the UCUM units of the ``age_unit`` vocabulary (``a``, ``mo``, ``wk``, ``d``), a
  gestational age told apart from an age after birth (``Age``, ``AgeUnit``);
- MIABIS events with their age and disease (``donor_events``);
- the biobanks of the exported collections with their juristic persons (``biobanks_of``);
- vocabulary terms with the term each ``maps_to`` (``read_terms``);
- e-form records with their answers, field definitions and choice labels, and one rule for
  "this answer is an ICD-10 code" (``form_fields``, ``form_records``, ``is_icd10``);
- DICOM series with their study (``image_series``).

All SQL goes through SQLAlchemy Core on the model's tables: SQLite and PostgreSQL read
alike. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import Connection, func, select

from imaging_biobank.catalogue.descriptors import member_donors
from imaging_biobank.catalogue.donor_facets import ICD10
from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import FoundCollection
from imaging_biobank.vocab.codes import SYSTEMS

T = metadata.tables

# --- the donors of collections --------------------------------------------------------------


def collection_donors(
    conn: Connection, collections: Iterable[FoundCollection]
) -> dict[int, set[int]]:
    """Per collection (database id), the ids of its donors: its declared members
    (``collection_sample_donor``) and the donors of its series, samples, records or results,
    as the catalogue counts them (``catalogue.descriptors.member_donors``)."""
    return {
        c.id: {int(d) for d in conn.execute(member_donors(c.id, c.kind)).scalars()}
        for c in collections
    }


def donors_of(conn: Connection, collections: Iterable[FoundCollection]) -> set[int]:
    """The ids of every donor of ``collections`` (see ``collection_donors``)."""
    return set().union(set(), *collection_donors(conn, collections).values())


# --- partial dates ----------------------------------------------------------------------------

Precision = Literal["year", "month", "day"]
_PARTIAL_DATE: Final = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:[T ].*)?")


@dataclass(frozen=True, order=True)
class PartialDate:
    """A date known to the year, the month or the day: ``first_day`` is the first day of
    that year or month (``2018-02`` -> 2018-02-01)."""

    first_day: dt.date
    precision: Precision

    @property
    def exact(self) -> bool:
        """Whether the day is known (not only the month or the year)."""
        return self.precision == "day"


def partial_date(value: object) -> PartialDate | None:
    """``value`` as a PartialDate: a date or datetime as a backend returns it, or ISO 8601
    text (``2018``, ``2018-02``, ``2018-02-11``, optionally followed by a time). None when
    empty or not such a date (a time of day, a malformed or impossible date)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return PartialDate(value.date(), "day")
    if isinstance(value, dt.date):
        return PartialDate(value, "day")
    match = _PARTIAL_DATE.fullmatch(str(value).strip())
    if match is None:
        return None
    year, month, day = match.groups()
    try:
        first = dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return None
    return PartialDate(first, "day" if day else "month" if month else "year")


def first_day(value: object) -> dt.date | None:
    """The first day of a (partial) date; None when ``value`` is none (``partial_date``)."""
    found = partial_date(value)
    return found.first_day if found else None


# --- ages ---------------------------------------------------------------------------------

UCUM_DAYS: Final[Mapping[str, float]] = {"a": 365.25, "mo": 365.25 / 12, "wk": 7.0, "d": 1.0}
"""Days in each UCUM unit of time the ``age_unit`` vocabulary's ``ucum_code`` column uses:
UCUM's ``a`` is the Julian year of 365.25 days, ``mo`` a twelfth of it, ``wk`` 7 days."""
GESTATIONAL_WEEKS: Final = "Gestational weeks"
"""The ``age_unit`` code (MIABIS EVENT-04) of an age counted from the start of pregnancy."""


@dataclass(frozen=True)
class Age:
    """An age: ``value`` UCUM units of time (``a``, ``mo``, ``wk``, ``d``) after birth or,
    when ``gestational``, after the start of pregnancy: a gestational age is before birth
    and no birth date puts it on the calendar."""

    value: float
    ucum: str
    gestational: bool = False

    @property
    def days(self) -> float | None:
        """Days after birth; None for a gestational age, a unit that is not a UCUM unit of
        time, or a number that is not finite."""
        per = UCUM_DAYS.get(self.ucum)
        if self.gestational or per is None or not math.isfinite(self.value):
            return None
        return self.value * per

    @property
    def years(self) -> float | None:
        """Years after birth (fractional), or None as for ``days``."""
        days = self.days
        return None if days is None else days / UCUM_DAYS["a"]

    def on(self, birth: dt.date) -> dt.date | None:
        """The day someone born on ``birth`` has this age (None as for ``days``)."""
        return _shift(birth, self.days)

    def birth(self, on: dt.date) -> dt.date | None:
        """The birth date of someone who has this age on ``on`` (None as for ``days``)."""
        days = self.days
        return _shift(on, -days if days is not None else None)

    def shown(self) -> str:
        """The age as a person reads it (``25 mo``, ``20 wk (gestational)``)."""
        return f"{self.value:g} {self.ucum}" + (" (gestational)" if self.gestational else "")


def _shift(day: dt.date, days: float | None) -> dt.date | None:
    if days is None:
        return None
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        return None


def years_between(start: object, end: object) -> float | None:
    """Years (fractional, UCUM ``a``) from one (partial) date to a later one, each taken at
    its first day; None when either is not a date or ``end`` is before ``start``."""
    first, last = first_day(start), first_day(end)
    if first is None or last is None or last < first:
        return None
    return (last - first).days / UCUM_DAYS["a"]


@dataclass(frozen=True)
class AgeUnit:
    """A term of the ``age_unit`` vocabulary: its MIABIS code and its UCUM code."""

    id: int
    code: str
    ucum: str | None

    @property
    def gestational(self) -> bool:
        """Whether ages in this unit count from the start of pregnancy."""
        return self.code == GESTATIONAL_WEEKS

    def age(self, value: float) -> Age | None:
        """``value`` of this unit as an Age (None when the unit has no UCUM code)."""
        return Age(float(value), self.ucum, self.gestational) if self.ucum else None


def age_units(conn: Connection) -> dict[int, AgeUnit]:
    """Every term of the ``age_unit`` vocabulary, by database id."""
    u = T["age_unit"]
    return {
        int(r.id): AgeUnit(int(r.id), str(r.code), r.ucum_code or None)
        for r in conn.execute(select(u.c.id, u.c.code, u.c.ucum_code))
    }


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A MIABIS event of a donor (diagnosis, relapse, death, ...): its date as stored, or
    the donor's age at it, and its disease."""

    id: int
    donor_id: int
    kind: str  # event_type, lower case
    date: str | None  # (partial) ISO date as stored
    age: Age | None
    disease: str | None  # the disease term's code
    disease_vocabulary: str | None  # the vocabulary's name (disease.icd-10, ...)
    description: str | None  # free text: never exported as such


def donor_events(conn: Connection, donor_ids: Iterable[int]) -> list[Event]:
    """The events of these donors, in id order, with their ages (from the ``age_unit``
    vocabulary) and disease codes."""
    wanted = sorted(set(donor_ids))
    if not wanted:
        return []
    e, d, v = T["event"], T["disease"], T["vocabulary"]
    units = age_units(conn)
    rows = conn.execute(
        select(e, d.c.code.label("disease"), v.c.name.label("vocabulary"))
        .outerjoin(d, d.c.id == e.c.disease_id)
        .outerjoin(v, v.c.id == d.c.vocabulary_id)
        .where(e.c.sample_donor_id.in_(wanted))
        .order_by(e.c.id)
    )
    events = []
    for r in rows:
        unit = units.get(int(r.age_unit_id)) if r.age_unit_id is not None else None
        age = unit.age(r.age_at_event) if unit and r.age_at_event is not None else None
        events.append(
            Event(
                int(r.id),
                int(r.sample_donor_id),
                str(r.event_type).strip().lower(),
                str(r.event_date) if r.event_date else None,
                age,
                str(r.disease) if r.disease else None,
                str(r.vocabulary) if r.vocabulary else None,
                r.description,
            )
        )
    return events


# --- biobanks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Biobank:
    """A biobank as the exports describe it, with its juristic person's name and its
    country's ISO 3166 code."""

    id: int
    identifier: str
    name: str
    acronym: str | None
    description: str | None
    url: str | None
    country_id: int
    country: str
    contact_id: int | None
    juristic_person: str


def biobanks_of(conn: Connection, collection_ids: Iterable[int]) -> list[Biobank]:
    """The biobanks that hold these collections, in identifier order (not every biobank in
    the database: only those of the collections exported)."""
    wanted = sorted(set(collection_ids))
    if not wanted:
        return []
    b, j, c, col = T["biobank"], T["juristic_person"], T["country"], T["collection"]
    rows = conn.execute(
        select(b, j.c.name.label("juristic_person_name"), c.c.code.label("country_code"))
        .join(j, j.c.id == b.c.juristic_person_id)
        .join(c, c.c.id == b.c.country_id)
        .where(b.c.id.in_(select(col.c.biobank_id).where(col.c.id.in_(wanted))))
        .order_by(b.c.identifier)
    )
    return [
        Biobank(
            id=int(r.id),
            identifier=str(r.identifier),
            name=str(r.name),
            acronym=r.acronym,
            description=r.description,
            url=r.url,
            country_id=int(r.country_id),
            country=str(r.country_code),
            contact_id=_int(r.contact_id),
            juristic_person=str(r.juristic_person_name),
        )
        for r in rows
    ]


# --- vocabulary terms ----------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A term of a vocabulary table, with the columns asked for (``directory_id``,
    ``fhir_code``, ...) and the term it ``maps_to`` (a legacy or local term's standard one)."""

    id: int
    code: str
    label: str
    values: Mapping[str, str | None] = field(default_factory=dict, compare=False)
    maps_to: Term | None = None

    def value(self, column: str) -> str | None:
        """The term's own value of ``column``, else that of the term it maps to."""
        own = self.values.get(column)
        if own:
            return own
        return (self.maps_to.values.get(column) or None) if self.maps_to else None


def read_terms(
    conn: Connection, table: str, ids: Iterable[int], columns: Sequence[str] = ()
) -> dict[int, Term]:
    """The terms of vocabulary table ``table`` with these database ids, each with its
    ``columns`` and the term it maps to (with the same columns)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    t = T[table]
    m = t.alias("target")
    rows = conn.execute(
        select(
            t.c.id,
            t.c.code,
            t.c.label,
            *(t.c[name] for name in columns),
            m.c.id.label("t_id"),
            m.c.code.label("t_code"),
            m.c.label.label("t_label"),
            *(m.c[name].label(f"t_{name}") for name in columns),
        )
        .outerjoin(m, m.c.id == t.c.maps_to_id)
        .where(t.c.id.in_(wanted))
    )
    terms: dict[int, Term] = {}
    for r in rows:
        row = r._mapping
        target = None
        if row["t_id"] is not None:
            target = Term(
                int(row["t_id"]),
                str(row["t_code"]),
                str(row["t_label"]),
                {name: row[f"t_{name}"] for name in columns},
            )
        terms[int(row["id"])] = Term(
            int(row["id"]),
            str(row["code"]),
            str(row["label"]),
            {name: row[name] for name in columns},
            target,
        )
    return terms


# --- e-forms ------------------------------------------------------------------------------

CHOICE_TYPES: Final = ("dropdown", "radio", "checkbox", "yesno", "truefalse")
"""REDCap field types whose answer is a code (of the field's choices, or 1/0)."""
ICD10_SYSTEM: Final = SYSTEMS["icd-10"].uri


def is_icd10(system: str | None) -> bool:
    """Whether a code of ``system`` is an ICD-10 code: the system URI an e-form answer of an
    ICD-10 field carries (``vocab.codes``), or the name of the ICD-10 vocabulary a disease
    term belongs to. The one rule of every export."""
    return system in (ICD10_SYSTEM, ICD10)


@dataclass(frozen=True)
class FormField:
    """A field of an e-form as its data dictionary defines it; ``choices`` maps each choice
    code to its label."""

    id: int
    form: str
    name: str
    label: str
    field_type: str
    validation_type: str | None
    identifier: bool
    code_system: str | None
    code: str | None
    unit: str | None
    value_set: str | None
    choices: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def source(self) -> str:
        """The field as exports name a source: ``form:<e-form>.<field>``."""
        return f"form:{self.form}.{self.name}"

    @property
    def is_choice(self) -> bool:
        """Whether an answer is a code (a choice, or yes/no, true/false)."""
        return self.field_type in CHOICE_TYPES


@dataclass(frozen=True)
class Answer:
    """One stored value of a record: as typed (``raw``) and as read (number, date or time,
    code and its system); ``unit`` is the value's unit, else its field's."""

    field: FormField
    item: int
    raw: str
    number: float | None
    date: str | None  # ISO date, date and time, or time of day, as stored
    code: str | None
    system: str | None
    unit: str | None

    @property
    def label(self) -> str | None:
        """The label of the chosen choice, when the field's definition has one."""
        return self.field.choices.get(self.raw) or self.field.choices.get(self.code or "")

    @property
    def day(self) -> PartialDate | None:
        """The answer as a date, when it is one (a date or date-time field's answer)."""
        return partial_date(self.date)

    @property
    def is_icd10(self) -> bool:
        """Whether the answer is an ICD-10 code (``is_icd10``)."""
        return is_icd10(self.system)

    @property
    def is_text(self) -> bool:
        """Whether the answer is text only: not a choice, a code, a number, a date or a time
        (free text, or text of a validation type such as e-mail, phone or record number).
        Such text may name or identify a person even where the field is not flagged as an
        identifier (identifier fields are never stored at all)."""
        return (
            not self.field.is_choice
            and self.code is None
            and self.number is None
            and self.date is None
        )


@dataclass
class Record:
    """An e-form record of a donor with its answers (in field order, then item order)."""

    id: int
    collection_id: int
    form: str
    donor_id: int
    key: str
    event_name: str | None
    repeat_instance: int | None
    answers: list[Answer] = field(default_factory=list)


def _choices(value: Any) -> dict[str, str]:
    listed = json.loads(value) if isinstance(value, str) else value
    return {str(c["code"]): str(c["label"]) for c in listed or []}


def form_fields(conn: Connection, collection_ids: Iterable[int]) -> list[FormField]:
    """Every field of the e-forms of these collections (identifier fields included: they
    are defined, never stored), by form name and position."""
    wanted = sorted(set(collection_ids))
    if not wanted:
        return []
    f, e = T["e_form_field"], T["e_form"]
    rows = conn.execute(
        select(f, e.c.name.label("form"))
        .join(e, e.c.id == f.c.e_form_id)
        .where(e.c.collection_id.in_(wanted))
        .order_by(e.c.name, f.c.position)
    )
    return [
        FormField(
            int(r.id),
            str(r.form),
            str(r.name),
            str(r.label),
            str(r.field_type),
            r.validation_type or None,
            bool(r.identifier),
            r.code_system or None,
            r.code or None,
            r.unit or None,
            r.value_set or None,
            _choices(r.choices),
        )
        for r in rows
    ]


def form_records(
    conn: Connection, collection_ids: Iterable[int], fields: Sequence[FormField] | None = None
) -> list[Record]:
    """The e-form records of these collections in id order, each with its answers (in
    field position, then item order). Answers of identifier fields are left out (never
    stored; never exported either). ``fields``: those of ``form_fields``, when read."""
    wanted = sorted(set(collection_ids))
    if not wanted:
        return []
    specs = {f.id: f for f in (fields if fields is not None else form_fields(conn, wanted))}
    r, e, v = T["clinical_record"], T["e_form"], T["clinical_value"]
    records = {
        int(row.id): Record(
            int(row.id),
            int(row.collection_id),
            str(row.form),
            int(row.sample_donor_id),
            str(row.record_key),
            row.event_name,
            int(row.repeat_instance) if row.repeat_instance is not None else None,
        )
        for row in conn.execute(
            select(
                r.c.id,
                r.c.collection_id,
                r.c.sample_donor_id,
                r.c.record_key,
                r.c.event_name,
                r.c.repeat_instance,
                e.c.name.label("form"),
            )
            .join(e, e.c.id == r.c.e_form_id)
            .where(r.c.collection_id.in_(wanted))
            .order_by(r.c.id)
        )
    }
    values = conn.execute(
        select(v)
        .join(r, r.c.id == v.c.clinical_record_id)
        .where(r.c.collection_id.in_(wanted))
        .order_by(v.c.clinical_record_id, v.c.e_form_field_id, v.c.item)
    )
    for row in values:
        spec = specs[int(row.e_form_field_id)]
        if spec.identifier:
            continue
        records[int(row.clinical_record_id)].answers.append(
            Answer(
                spec,
                int(row.item),
                str(row.raw).strip(),
                float(row.value_number) if row.value_number is not None else None,
                str(row.value_date) if row.value_date else None,
                str(row.value_code) if row.value_code else None,
                str(row.code_system) if row.code_system else None,
                str(row.unit or spec.unit or "") or None,
            )
        )
    position = {f.id: i for i, f in enumerate(specs.values())}
    for record in records.values():
        record.answers.sort(key=lambda a: (position[a.field.id], a.item))
    return list(records.values())


# --- images -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A DICOM series with what the exports need of its study (UIDs as stored: already
    pseudonymised at ingest) and its number of images (instances)."""

    id: int
    uid: str
    collection_id: int
    donor_id: int
    study_id: int
    study_uid: str
    series_date: dt.date | None
    study_date: dt.date | None
    patient_age_years: float | None
    modality_id: int | None
    modality_value: str | None
    body_part_id: int | None
    body_part_value: str | None
    dataset_type_id: int | None
    instances: int

    @property
    def date(self) -> dt.date | None:
        """The series' date, else its study's."""
        return self.series_date or self.study_date


def image_series(conn: Connection, collection_ids: Iterable[int]) -> list[Series]:
    """The series of these image collections, in id order, with their study and their
    number of instances."""
    wanted = sorted(set(collection_ids))
    if not wanted:
        return []
    s, st, i = T["imaging_series"], T["imaging_study"], T["imaging_instance"]
    counts = (
        select(i.c.imaging_series_id, func.count().label("n"))
        .where(i.c.imaging_series_id.in_(select(s.c.id).where(s.c.image_collection_id.in_(wanted))))
        .group_by(i.c.imaging_series_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            s.c.id,
            s.c.series_instance_uid,
            s.c.image_collection_id,
            s.c.sample_donor_id,
            s.c.imaging_study_id,
            st.c.study_instance_uid,
            s.c.series_date,
            st.c.study_date,
            st.c.patient_age_years,
            s.c.modality_id,
            s.c.modality_value,
            s.c.body_part_examined_id,
            s.c.body_part_examined_value,
            s.c.dataset_type_id,
            counts.c.n,
        )
        .join(st, st.c.id == s.c.imaging_study_id)
        .outerjoin(counts, counts.c.imaging_series_id == s.c.id)
        .where(s.c.image_collection_id.in_(wanted))
        .order_by(s.c.id)
    )
    return [
        Series(
            int(r.id),
            str(r.series_instance_uid),
            int(r.image_collection_id),
            int(r.sample_donor_id),
            int(r.imaging_study_id),
            str(r.study_instance_uid),
            first_day(r.series_date),
            first_day(r.study_date),
            float(r.patient_age_years) if r.patient_age_years is not None else None,
            _int(r.modality_id),
            r.modality_value or None,
            _int(r.body_part_examined_id),
            r.body_part_examined_value or None,
            _int(r.dataset_type_id),
            int(r.n or 0),
        )
        for r in rows
    ]


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


__all__ = [
    "CHOICE_TYPES",
    "GESTATIONAL_WEEKS",
    "ICD10_SYSTEM",
    "UCUM_DAYS",
    "Age",
    "AgeUnit",
    "Answer",
    "Biobank",
    "Event",
    "FormField",
    "PartialDate",
    "Record",
    "Series",
    "Term",
    "age_units",
    "biobanks_of",
    "collection_donors",
    "donor_events",
    "donors_of",
    "first_day",
    "form_fields",
    "form_records",
    "image_series",
    "is_icd10",
    "partial_date",
    "read_terms",
    "years_between",
]
