"""``export omop``: the biobank as OMOP CDM 5.4 with the Oncology and Medical Imaging
(MI-CDM) extensions, written into a database given by URL (SQLite, PostgreSQL, DuckDB).

The tables are created from the field-level specifications (``omop_schema``) with their
NOT NULL, primary and foreign key constraints on; every row written satisfies them (the
database checks it). Concepts come from the shipped subset (``omop_concepts``); a code
with no concept gets 0 and keeps its source value.

What goes where
- PERSON: one per donor of the exported collections; ``person_id`` is the donor's database
  id, ``person_source_value`` its pseudonym (never a name), ``gender_concept_id`` MALE or
  FEMALE (other and unknown sexes: 0, the sex in ``gender_source_value``), race and
  ethnicity 0 (not recorded by MIABIS; OMOP's ethnicity is the US OMB one).
- OBSERVATION_PERIOD: one per person, from the first to the last date of the person's rows
  that the source dates (see below).
- VISIT_OCCURRENCE and PROCEDURE_OCCURRENCE: one per DICOM study (and donor), the
  procedure's source value is the study's modalities (``CT\\RTSTRUCT``).
- IMAGE_OCCURRENCE: one per DICOM series (``image_occurrence_id`` = the series' database
  id), study and series UIDs as stored (pseudonymised at ingest), modality and body part as
  the OHDSI Medical Imaging WG's DICOM concepts, linked to the study's procedure and visit.
- MEASUREMENT + IMAGE_FEATURE: one measurement per radiomic feature value (concept: the
  IBSI feature's local concept), and one image feature (``image_feature_id`` = the
  biomarker's database id) pointing at it through ``image_feature_event_id`` and the field
  concept of ``measurement.measurement_id``; ``alg_system`` names the software, its version
  and the analysis, ``alg_datetime`` when it ran; ``image_finding_id`` the segmentation.
- CONDITION_OCCURRENCE: MIABIS diagnosis events and e-form ICD-10 answers (one per donor
  and code), concept 0 with the ICD-10 code as source value (no ICD-10 concept is in the
  shipped subset). EPISODE ``Disease First Occurrence`` for each, with an EPISODE_EVENT
  pointing at the condition; relapse events become ``Disease Recurrence`` episodes.
- MEASUREMENT: e-form numbers and choices (Case Report Form), molecular biomarker results
  (Lab); those of a donor with a diagnosis are diagnostic modifiers of it
  (``measurement_event_id`` = the condition, field concept of
  ``condition_occurrence.condition_occurrence_id``). A choice is written as its label (from
  the e-form's definition); a yes/no or true/false answer, whose definition has no labels,
  as its stored number (1 or 0) with its code as ``value_source_value``.
- OBSERVATION: e-form answers that are dates (a date field's answer: ``observation_date``
  is that date, ``value_source_value`` the date as answered; the CDM 5.4 observation has no
  ``value_as_date``), times and codes of other systems.
- Text is not exported: an e-form answer that is text only (free text, or an e-mail, phone
  or record number) may name or identify a person even where its field is not flagged as
  an identifier, so it is left out (counted in a note); so are MIABIS event descriptions
  (a condition without a disease code has the source value ``diagnosis``, a recurrence
  episode ``relapse``).
- SPECIMEN: one per sample (``specimen_source_id`` the biobank's sample id).
- CDM_SOURCE: one row (CDM 5.4, the vocabulary release of the concept subset), holder the
  juristic persons of the exported collections' biobanks.

PERSONs are the donors of the exported collections as the catalogue counts them
(``export.source.collection_donors``: declared members and the donors of the items), so the
OMOP, ARGO and Directory exports agree on who is in a collection; a donor with nothing to
export (no row of any table) gets no PERSON (counted in a note).

Dates the CDM requires but the source lacks
- A row's date is taken from what the source says: series date, else study date; event
  date, else birth date plus age at event (an age in gestational weeks is before birth and
  gives no date); a date answer its own date, the record's other answers the latest date
  answered in the record, else the donor's diagnosis date; a result's date, else its
  sample's. Partial dates (``2018-02``) become the first day of their period.
- A row with no date still (``incomplete`` = ``placeholder``, the default) is dated by its
  person's earliest date (counted in ``estimated_dates``), so that every series stays in
  the export and every period covers real dates only. Only a person with no date at all
  has rows, and an observation period, dated 1900-01-01 (``UNKNOWN_DATE``: recognisable;
  counted in ``placeholder_dates``). ``drop`` follows the CDM's ETL convention instead: a
  row without a date is left out (and what hangs on it).
- ``year_of_birth`` is required: it is the donor's birth year, else estimated from an
  imaging study's date and the patient's age then; else 1900 (``UNKNOWN_YEAR``, counted),
  or with ``drop`` the person is left out with all their rows. Birth dates are written as a
  year only (privacy).

Re-exporting into the same database replaces the previous export: its rows are deleted
and the new ones written (in one transaction on SQLite and PostgreSQL; on DuckDB, whose
foreign keys forbid deleting parents in the transaction that deleted their children, the
deletions are committed table by table first). Vocabulary rows are only ever added. A
database whose clinical tables hold rows that another program wrote (no ``cdm_source``
row of ours) is refused.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, text
from sqlalchemy.engine import make_url

from imaging_biobank.db._schema import metadata
from imaging_biobank.export.omop_concepts import ConceptSubset, concept_subset, write_vocabulary
from imaging_biobank.export.omop_schema import (
    EXPORT_TABLES,
    SchemaReport,
    build_metadata,
    create_schema,
    insert_order,
    specification,
    tables_needed,
)
from imaging_biobank.export.scope import Scope, export_scope
from imaging_biobank.export.source import (
    Age,
    Answer,
    Record,
    Series,
    biobanks_of,
    donor_events,
    donors_of,
    first_day,
    form_records,
    image_series,
    read_terms,
)

UNKNOWN_YEAR = 1900
UNKNOWN_DATE = dt.date(1900, 1, 1)
ETL_REFERENCE = "imaging-biobank export omop"
Incomplete = Literal["placeholder", "drop"]
Row = dict[str, Any]
T = metadata.tables
# the samples and the molecular results of the collections (:ids), for SPECIMEN and MEASUREMENT
SAMPLES = (
    "SELECT sa.id, sa.identifier, sa.sample_donor_id, mt.code AS material, sa.creation_date,"
    " sa.anatomical_site_code FROM sample sa JOIN material_type mt ON mt.id = sa.material_type_id"
    " WHERE sa.collection_id IN :ids ORDER BY sa.id"
)
RESULTS = (
    "SELECT r.id, r.sample_donor_id, r.biomarker, r.loinc_code, r.value_number, r.unit,"
    " r.value_category, r.value_text, r.result_date, sa.creation_date AS sample_date"
    " FROM molecular_biomarker_result r LEFT JOIN sample sa ON sa.id = r.sample_id"
    " WHERE r.collection_id IN :ids ORDER BY r.id"
)


class OmopExportError(Exception):
    """The export cannot be written as asked (the message says why and what to do)."""


@dataclass
class OmopResult:
    """What one export wrote, and how many rows had to be dated, estimated or left out."""

    url: str
    counts: dict[str, int]
    schema: SchemaReport
    replaced: bool = False
    vocabulary_rows_added: int = 0
    placeholder_birth_years: int = 0
    placeholder_dates: dict[str, int] = field(default_factory=dict)
    estimated_dates: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    truncated: dict[str, int] = field(default_factory=dict)
    text_left_out: int = 0
    notes: list[str] = field(default_factory=list)


# --- building the rows ----------------------------------------------------------------


def _ids_query(sql: str) -> Any:
    return text(sql).bindparams(bindparam("ids", expanding=True))


def _to_datetime(value: object) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            return None
    if moment.tzinfo is not None:  # the CDM's datetime has no zone: UTC
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


@dataclass(frozen=True)
class _Undated:
    """The date of a row the source does not date, until all of its person's dates are
    known (then: the person's earliest date, else ``UNKNOWN_DATE``)."""

    person: int


Day = dt.date | _Undated


@dataclass
class _Person:
    id: int
    pseudonym: str
    sex: str
    birth: dt.date | None
    year: int | None
    dates: list[dt.date] = field(default_factory=list)  # the dates the source gives
    rows: int = 0
    first_condition: int | None = None
    first_episode: int | None = None
    diagnosis_date: dt.date | None = None


class _Builder:
    """Reads the source and assembles the OMOP rows (table -> rows)."""

    def __init__(self, conn: Connection, scope: Scope, incomplete: Incomplete) -> None:
        self.conn = conn
        self.scope = scope
        self.ids = {
            kind: [c.id for c in scope.of_kind(kind)]
            for kind in ("image", "sample_tissue", "clinical_variable", "molecular_biomarker")
        }
        self.incomplete = incomplete
        self.subset: ConceptSubset = concept_subset()
        self.rows: dict[str, list[Row]] = defaultdict(list)
        self.counters: dict[str, int] = defaultdict(int)
        self.persons: dict[int, _Person] = {}
        self.placeholder_dates: dict[str, int] = defaultdict(int)
        self.estimated_dates: dict[str, int] = defaultdict(int)
        self.dropped: dict[str, int] = defaultdict(int)
        self.notes: list[str] = []
        self.placeholder_years = 0
        self.texts = 0
        self.registry = self.subset.required("type", "registry")
        self.crf = self.subset.required("type", "case_report_form")
        self.lab = self.subset.required("type", "lab")
        self.algorithm = self.subset.required("type", "algorithm")
        self.condition_field = self.subset.required(
            "field", "condition_occurrence.condition_occurrence_id"
        )
        self.measurement_field = self.subset.required("field", "measurement.measurement_id")
        self.conditions: dict[tuple[int, str], int] = {}

    def next_id(self, table: str) -> int:
        self.counters[table] += 1
        return self.counters[table]

    def query(self, sql: str, kind: str) -> list[Any]:
        return list(self.conn.execute(_ids_query(sql), {"ids": self.ids[kind]}))

    def add(self, table: str, p: _Person, row: Row) -> None:
        """Write a row of person ``p``."""
        p.rows += 1
        self.rows[table].append(row)

    def dated(self, p: _Person, what: str, when: dt.date | None) -> Day | None:
        """The date a row of ``p`` gets: ``when``; when the source gives none, a stand-in
        resolved once the person's dates are all known (``resolve_dates``), or None with
        ``drop`` (the row is left out, counted as ``what``)."""
        if when is not None:
            p.dates.append(when)
            return when
        if self.incomplete == "drop":
            self.dropped[f"{what} (no date)"] += 1
            return None
        return _Undated(p.id)

    def resolve_dates(self) -> None:
        """Date the rows the source does not date by their person's earliest date (the
        placeholder 1900-01-01 when the person has no date at all), counted per table."""
        for table, table_rows in self.rows.items():
            for row in table_rows:
                pending = [k for k, v in row.items() if isinstance(v, _Undated)]
                if not pending:
                    continue
                p = self.persons[row[pending[0]].person]
                day = min(p.dates) if p.dates else UNKNOWN_DATE
                for key in pending:
                    row[key] = day
                (self.estimated_dates if p.dates else self.placeholder_dates)[table] += 1

    # persons --------------------------------------------------------------------------

    def load_persons(self, series: list[Series]) -> None:
        donor_ids = donors_of(self.conn, self.scope.collections)
        if not donor_ids:
            return
        estimates: dict[int, int] = {}
        for s in sorted(series, key=lambda s: (s.study_date or dt.date.max, s.id)):
            if s.study_date and s.patient_age_years is not None and s.donor_id not in estimates:
                born = Age(s.patient_age_years, "a").birth(s.study_date)
                if born:
                    estimates[s.donor_id] = born.year
        d, sex = T["sample_donor"], T["sex"]
        rows = self.conn.execute(
            select(d.c.id, d.c.pseudonym, d.c.birth_date, sex.c.code.label("sex"))
            .join(sex, sex.c.id == d.c.sex_id)
            .where(d.c.id.in_(sorted(donor_ids)))
            .order_by(d.c.id)
        )
        for r in rows:
            birth = first_day(r.birth_date)
            year = birth.year if birth else estimates.get(int(r.id))
            if year is None:
                if self.incomplete == "drop":
                    self.dropped["person (no year of birth)"] += 1
                    continue
                self.placeholder_years += 1
            self.persons[int(r.id)] = _Person(int(r.id), str(r.pseudonym), str(r.sex), birth, year)

    def write_persons(self) -> None:
        """PERSON and OBSERVATION_PERIOD rows of every person with a row (after
        ``resolve_dates``): the period spans the dates the source gives."""
        empty = 0
        for p in self.persons.values():
            if not p.rows:
                empty += 1  # nothing of the person to export (or every row was dropped)
                continue
            self.rows["person"].append(
                {
                    "person_id": p.id,
                    "gender_concept_id": self.subset.concept_id("sex", p.sex),
                    "year_of_birth": p.year if p.year is not None else UNKNOWN_YEAR,
                    "race_concept_id": 0,
                    "ethnicity_concept_id": 0,
                    "person_source_value": p.pseudonym,
                    "gender_source_value": p.sex,
                    "gender_source_concept_id": 0,
                    "race_source_value": "not recorded",
                    "ethnicity_source_value": "not recorded",
                    "race_source_concept_id": 0,
                    "ethnicity_source_concept_id": 0,
                }
            )
            self.rows["observation_period"].append(
                {
                    "observation_period_id": self.next_id("observation_period"),
                    "person_id": p.id,
                    "observation_period_start_date": min(p.dates, default=UNKNOWN_DATE),
                    "observation_period_end_date": max(p.dates, default=UNKNOWN_DATE),
                    "period_type_concept_id": self.registry,
                }
            )
            if not p.dates:
                self.placeholder_dates["observation_period"] += 1
        if empty:
            self.notes.append(
                f"{empty} donor(s) of the collections with no row to export: no PERSON"
            )

    # conditions and episodes ----------------------------------------------------------

    def condition(self, p: _Person, code: str, when: Day, type_id: int) -> int:
        """The condition occurrence of a donor's diagnosis (one per donor and code), with
        its Disease First Occurrence episode."""
        key = (p.id, code)
        if key in self.conditions:
            return self.conditions[key]
        concept = self.subset.concept_id("icd10", code)
        cid = self.next_id("condition_occurrence")
        self.add(
            "condition_occurrence",
            p,
            {
                "condition_occurrence_id": cid,
                "person_id": p.id,
                "condition_concept_id": concept,
                "condition_start_date": when,
                "condition_type_concept_id": type_id,
                "condition_source_value": code,
                "condition_source_concept_id": 0,
            },
        )
        eid = self.next_id("episode")
        self.add(
            "episode",
            p,
            {
                "episode_id": eid,
                "person_id": p.id,
                "episode_concept_id": self.subset.required("episode", "disease_first_occurrence"),
                "episode_start_date": when,
                "episode_object_concept_id": concept,
                "episode_type_concept_id": type_id,
                "episode_source_value": code,
                "episode_source_concept_id": 0,
            },
        )
        self.rows["episode_event"].append(
            {
                "episode_id": eid,
                "event_id": cid,
                "episode_event_field_concept_id": self.condition_field,
            }
        )
        self.conditions[key] = cid
        known = when if isinstance(when, dt.date) else None  # an undated row dates nothing
        if p.first_condition is None or (
            known and (p.diagnosis_date is None or known < p.diagnosis_date)
        ):
            p.first_condition, p.first_episode = cid, eid
            p.diagnosis_date = known or p.diagnosis_date
        return cid

    def events(self) -> None:
        relapses = []
        skipped: dict[str, int] = defaultdict(int)
        gestational = 0
        for e in donor_events(self.conn, self.persons):
            p = self.persons[e.donor_id]
            when = first_day(e.date)
            if when is None and e.age is not None:
                if e.age.gestational:
                    gestational += 1
                elif p.birth is not None:
                    when = e.age.on(p.birth)
            if e.kind == "diagnosis":
                date = self.dated(p, "condition_occurrence", when)
                if date is not None:
                    self.condition(p, (e.disease or "diagnosis")[:50], date, self.registry)
            elif e.kind == "relapse":
                relapses.append((p, when))
            else:
                skipped[e.kind] += 1
        for p, when in relapses:  # after the diagnoses: a relapse's parent is one
            date = self.dated(p, "episode", when)
            if date is None:
                continue
            self.add(
                "episode",
                p,
                {
                    "episode_id": self.next_id("episode"),
                    "person_id": p.id,
                    "episode_concept_id": self.subset.required("episode", "disease_recurrence"),
                    "episode_start_date": date,
                    "episode_parent_id": p.first_episode,
                    "episode_object_concept_id": 0,
                    "episode_type_concept_id": self.registry,
                    "episode_source_value": "relapse",
                    "episode_source_concept_id": 0,
                },
            )
        if gestational:
            self.notes.append(
                f"{gestational} event(s) given as a gestational age (before birth, which no"
                " birth date places on the calendar): not dated by it"
            )
        for kind, n in sorted(skipped.items()):
            self.notes.append(
                f"{n} MIABIS event(s) of type {kind!r} have no OMOP table here: not exported"
            )

    # imaging ----------------------------------------------------------------------------

    def imaging(self, series: list[Series]) -> dict[int, Row]:
        """Visits, procedures and image occurrences; returns image_occurrence by series id."""
        modalities = read_terms(
            self.conn, "modality", (s.modality_id for s in series if s.modality_id)
        )
        parts = read_terms(
            self.conn, "body_part_examined", (s.body_part_id for s in series if s.body_part_id)
        )

        def modality(s: Series) -> str | None:
            return modalities[s.modality_id].code if s.modality_id else s.modality_value

        def site(s: Series) -> tuple[str | None, str | None]:
            """The body part code the concept comes from (the term's, else the one it maps
            to), and the body part as recorded."""
            term = parts.get(s.body_part_id) if s.body_part_id else None
            if term is None:
                return None, s.body_part_value
            if ("body_part", term.code) in self.subset.mapping or term.maps_to is None:
                return term.code, term.code
            return term.maps_to.code, term.code

        by_study: dict[tuple[int, int], list[Series]] = defaultdict(list)
        for s in series:
            if s.donor_id in self.persons:
                by_study[(s.study_id, s.donor_id)].append(s)
        occurrences: dict[int, Row] = {}
        visit_concept = self.subset.concept_id("visit", "imaging_study")
        for (_study, donor), members in sorted(by_study.items()):
            p = self.persons[donor]
            series_dates = [s.series_date for s in members if s.series_date]
            when = members[0].study_date or (min(series_dates) if series_dates else None)
            date = self.dated(p, "procedure_occurrence", when)
            if date is None:
                self.dropped["image_occurrence (study without a date)"] += len(members)
                continue
            source = "\\".join(sorted({m for m in map(modality, members) if m})) or "DICOM study"
            visit_id = self.next_id("visit_occurrence")
            self.add(
                "visit_occurrence",
                p,
                {
                    "visit_occurrence_id": visit_id,
                    "person_id": p.id,
                    "visit_concept_id": visit_concept,
                    "visit_start_date": date,
                    "visit_end_date": date,
                    "visit_type_concept_id": self.registry,
                    "visit_source_value": "imaging study",
                    "visit_source_concept_id": 0,
                },
            )
            procedure_id = self.next_id("procedure_occurrence")
            self.add(
                "procedure_occurrence",
                p,
                {
                    "procedure_occurrence_id": procedure_id,
                    "person_id": p.id,
                    "procedure_concept_id": self.subset.concept_id("procedure", source),
                    "procedure_date": date,
                    "procedure_type_concept_id": self.registry,
                    "visit_occurrence_id": visit_id,
                    "procedure_source_value": source,
                    "procedure_source_concept_id": 0,
                },
            )
            for s in members:
                site_code, site_value = site(s)
                occurred: Day = s.series_date or date
                if s.series_date:
                    p.dates.append(s.series_date)
                row = {
                    "image_occurrence_id": s.id,
                    "person_id": p.id,
                    "procedure_occurrence_id": procedure_id,
                    "visit_occurrence_id": visit_id,
                    "anatomic_site_concept_id": self.subset.concept_id("body_part", site_code)
                    if site_value
                    else None,
                    "image_occurrence_date": occurred,
                    "image_study_uid": s.study_uid,
                    "image_series_uid": s.uid,
                    "modality_concept_id": self.subset.concept_id("modality", modality(s)),
                }
                self.add("image_occurrence", p, row)
                occurrences[s.id] = row
        return occurrences

    def radiomics(self, occurrences: dict[int, Row]) -> None:
        algorithms: dict[int, tuple[str, dt.datetime | None]] = {}
        for a in self.query(
            "SELECT l.imaging_biomarker_id, a.name, a.performed_at, s.repository_url, s.version,"
            " c.name AS software FROM image_analysis_imaging_biomarker l"
            " JOIN image_analysis a ON a.id = l.image_analysis_id"
            " LEFT JOIN software_source_code s ON s.id = a.software_source_code_id"
            " LEFT JOIN collection c ON c.id = s.id"
            " JOIN imaging_biomarker b ON b.id = l.imaging_biomarker_id"
            " JOIN imaging_series se ON se.id = b.imaging_series_id"
            " WHERE se.image_collection_id IN :ids ORDER BY l.imaging_biomarker_id, a.id",
            "image",
        ):
            software = " ".join(str(v) for v in (a.repository_url or a.software, a.version) if v)
            system = f"{software} ({a.name})" if software else str(a.name)
            algorithms.setdefault(
                int(a.imaging_biomarker_id), (system, _to_datetime(a.performed_at))
            )
        without_value = 0
        for b in self.query(
            "SELECT b.id, b.imaging_series_id, b.segmentation_id, b.name, b.code_scheme, b.code,"
            " b.value, b.unit, b.value_code, b.value_code_meaning FROM imaging_biomarker b"
            " JOIN imaging_series se ON se.id = b.imaging_series_id"
            " WHERE se.image_collection_id IN :ids ORDER BY b.id",
            "image",
        ):
            occurrence = occurrences.get(int(b.imaging_series_id))
            if occurrence is None:
                continue
            if b.value is None and b.value_code is None:
                without_value += 1
                continue
            concept = self.subset.concept_id("ibsi", b.code) if b.code_scheme == "IBSI" else 0
            source = f"{b.code_scheme}:{b.code}" if b.code else str(b.name)
            p = self.persons[int(occurrence["person_id"])]
            measurement_id = self.measurement(
                p,
                occurrence["image_occurrence_date"],
                self.algorithm,
                source,
                b.value,
                b.value_code_meaning or b.value_code,
                b.unit,
                concept=concept,
                visit=occurrence["visit_occurrence_id"],
            )
            system, moment = algorithms.get(int(b.id), ("", None))
            self.add(
                "image_feature",
                p,
                {
                    "image_feature_id": int(b.id),
                    "person_id": occurrence["person_id"],
                    "image_occurrence_id": occurrence["image_occurrence_id"],
                    "image_feature_event_field_concept_id": self.measurement_field,
                    "image_feature_event_id": measurement_id,
                    "image_feature_concept_id": concept,
                    "image_feature_type_concept_id": self.algorithm,
                    "image_finding_id": b.segmentation_id,
                    "anatomic_site_concept_id": occurrence["anatomic_site_concept_id"],
                    "alg_system": system or None,
                    "alg_datetime": moment,
                },
            )
        if without_value:
            self.notes.append(
                f"{without_value} imaging biomarker(s) without a value were not exported"
            )

    # samples and molecular results ----------------------------------------------------

    def dated_rows(
        self, sql: str, kind: str, table: str, *date_columns: str
    ) -> Iterator[tuple[Any, _Person, Day]]:
        """The source rows of ``sql`` (collections of ``kind``) of exported persons, each
        with its person and the date its first dated ``date_columns`` give (``dated``)."""
        for r in self.query(sql, kind):
            p = self.persons.get(int(r.sample_donor_id))
            if p is None:
                continue
            when = next(filter(None, (first_day(r._mapping[c]) for c in date_columns)), None)
            date = self.dated(p, table, when)
            if date is not None:
                yield r, p, date

    def specimens(self) -> None:
        rows = self.dated_rows(SAMPLES, "sample_tissue", "specimen", "creation_date")
        for s, p, date in rows:
            self.add(
                "specimen",
                p,
                {
                    "specimen_id": int(s.id),
                    "person_id": p.id,
                    "specimen_concept_id": self.subset.concept_id("specimen", s.material),
                    "specimen_type_concept_id": self.registry,
                    "specimen_date": date,
                    "anatomic_site_concept_id": 0 if s.anatomical_site_code else None,
                    "specimen_source_id": s.identifier,
                    "specimen_source_value": s.material,
                    "anatomic_site_source_value": s.anatomical_site_code,
                },
            )

    def measurement(
        self,
        p: _Person,
        date: Day,
        type_id: int,
        source: str,
        number: float | None,
        value: str | None,
        unit: str | None,
        *,
        link: tuple[int | None, int | None] = (None, None),
        concept: int = 0,
        visit: int | None = None,
    ) -> int:
        """A MEASUREMENT of ``p``: a number and/or a value without a concept (0, the value
        as its source value), a unit as its source value, and the event it modifies
        (``link``: id and field concept); returns its id."""
        measurement_id = self.next_id("measurement")
        self.add(
            "measurement",
            p,
            {
                "measurement_id": measurement_id,
                "person_id": p.id,
                "measurement_concept_id": concept,
                "measurement_date": date,
                "measurement_type_concept_id": type_id,
                "value_as_number": number,
                "value_as_concept_id": 0 if value else None,
                "unit_concept_id": 0 if unit else None,
                "visit_occurrence_id": visit,
                "measurement_source_value": source,
                "measurement_source_concept_id": concept,
                "unit_source_value": unit,
                "value_source_value": value,
                "measurement_event_id": link[0],
                "meas_event_field_concept_id": link[1],
            },
        )
        return measurement_id

    def modifier_link(self, p: _Person) -> tuple[int | None, int | None]:
        if p.first_condition is None:
            return None, None
        return p.first_condition, self.condition_field

    def molecular(self) -> None:
        rows = self.dated_rows(
            RESULTS, "molecular_biomarker", "measurement", "result_date", "sample_date"
        )
        for r, p, date in rows:
            value = " ".join(str(v) for v in (r.value_category, r.value_text) if v) or None
            self.measurement(
                p,
                date,
                self.lab,
                r.loinc_code or r.biomarker,
                r.value_number,
                value,
                r.unit,
                link=self.modifier_link(p),
            )

    # e-forms ----------------------------------------------------------------------------

    def eform_diagnoses(self) -> None:
        """Read the e-form records; their ICD-10 answers become conditions (before the
        other rows, which point at the donor's condition)."""
        self.records: list[Record] = form_records(self.conn, self.ids["clinical_variable"])
        self.record_condition: dict[int, int] = {}
        for record in self.records:
            p = self.persons.get(record.donor_id)
            if p is None:
                continue
            for a in record.answers:
                if not a.is_icd10:
                    continue
                date = self.dated(p, "condition_occurrence", self.record_date(record, p))
                if date is not None:
                    code = str(a.code or a.raw)[:50]
                    self.record_condition[record.id] = self.condition(p, code, date, self.crf)

    def eform_values(self) -> None:
        """The other answers: measurements (numbers, choices) and observations (dates,
        times, other codes), modifiers of the record's (else the donor's) condition. Text
        answers are left out (counted)."""
        for record in self.records:
            p = self.persons.get(record.donor_id)
            if p is None:
                continue
            record_date = self.record_date(record, p)
            condition = self.record_condition.get(record.id, p.first_condition)
            for a in record.answers:
                if a.is_icd10:
                    continue
                if a.is_text:
                    self.texts += 1
                    continue
                day = a.day
                date = self.dated(p, "e-form answer", day.first_day if day else record_date)
                if date is not None:
                    self.eform_answer(p, record.form, a, date, condition)

    @staticmethod
    def record_date(record: Record, p: _Person) -> dt.date | None:
        """The date of a record's answers that are not dates themselves: the latest date
        answered in the record, else the donor's diagnosis date."""
        days = [d.first_day for d in (a.day for a in record.answers) if d]
        return max(days) if days else p.diagnosis_date

    def eform_answer(
        self, p: _Person, form: str, a: Answer, date: Day, condition: int | None
    ) -> None:
        """One answer as a MEASUREMENT (numbers and choices) or an OBSERVATION (dates,
        times, codes of other systems)."""
        spec = a.field
        source = spec.code or f"{form}.{spec.name}"
        link = (condition, self.condition_field) if condition is not None else (None, None)
        if a.day is not None or (a.number is None and not spec.is_choice):
            self.add(
                "observation",
                p,
                {
                    "observation_id": self.next_id("observation"),
                    "person_id": p.id,
                    "observation_concept_id": 0,
                    "observation_date": date,
                    "observation_type_concept_id": self.crf,
                    "value_as_string": None if a.day is not None else a.raw,
                    "value_source_value": a.date if a.day is not None else a.code,
                    "observation_source_value": source,
                    "observation_source_concept_id": 0,
                    "observation_event_id": link[0],
                    "obs_event_field_concept_id": link[1],
                },
            )
            return
        label = a.label if spec.is_choice else None
        self.measurement(
            p,
            date,
            self.crf,
            source,
            None if label is not None else a.number,
            label if label is not None else (a.raw if spec.is_choice else None),
            None if spec.is_choice else a.unit,
            link=link,
        )

    # cdm_source -------------------------------------------------------------------------

    def cdm_source(self, today: dt.date) -> None:
        biobanks = biobanks_of(self.conn, self.scope.ids)
        name = "; ".join(b.name for b in biobanks) or "imaging biobank"
        self.rows["cdm_source"].append(
            {
                "cdm_source_name": name,
                "cdm_source_abbreviation": (biobanks[0].acronym or biobanks[0].name)
                if biobanks
                else "biobank",
                "cdm_holder": "; ".join(sorted({b.juristic_person for b in biobanks})) or name,
                "source_description": "; ".join(b.description for b in biobanks if b.description)
                or None,
                "source_documentation_reference": next((b.url for b in biobanks if b.url), None),
                "cdm_etl_reference": f"{ETL_REFERENCE} ({_version()})",
                "source_release_date": today,
                "cdm_release_date": today,
                "cdm_version": "5.4",
                "cdm_version_concept_id": self.subset.required("cdm", "version"),
                "vocabulary_version": self.subset.vocabulary_version,
            }
        )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"imaging-biobank {version('imaging-biobank')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "imaging-biobank"


def build_rows(
    conn: Connection,
    collections: Sequence[str] = (),
    incomplete: Incomplete = "placeholder",
    today: dt.date | None = None,
) -> tuple[dict[str, list[Row]], _Builder]:
    """The OMOP rows of the collections named (all when none), before writing."""
    scope = export_scope(conn, collections)
    builder = _Builder(conn, scope, incomplete)
    series = image_series(conn, builder.ids["image"])
    builder.load_persons(series)
    builder.events()
    occurrences = builder.imaging(series)
    builder.radiomics(occurrences)
    builder.eform_diagnoses()
    builder.specimens()
    builder.molecular()
    builder.eform_values()
    builder.resolve_dates()
    builder.write_persons()
    builder.cdm_source(today or dt.date.today())
    return dict(builder.rows), builder


# --- checking and writing ---------------------------------------------------------------


def conform(rows: dict[str, list[Row]]) -> dict[str, int]:
    """Check every row against the specification (unknown columns, NOT NULL) and cut
    strings to their ``varchar(n)``; returns how many values were cut, per field."""
    spec = specification()
    cut: dict[str, int] = defaultdict(int)
    for table, table_rows in rows.items():
        fields = {f.name: f for f in spec[table].fields}
        required = [f.name for f in fields.values() if f.required]
        for row in table_rows:
            unknown = set(row) - set(fields)
            if unknown:
                raise OmopExportError(f"{table} has no field {', '.join(sorted(unknown))}")
            for name in required:
                if row.get(name) is None:
                    raise OmopExportError(
                        f"{table}.{name} is required by the OMOP specification: {row}"
                    )
            for name, value in row.items():
                length = fields[name].length
                if isinstance(value, str) and length is not None and len(value) > length:
                    row[name] = value[:length]
                    cut[f"{table}.{name}"] += 1
    return dict(cut)


def _check_duckdb(url: str) -> None:
    if make_url(url).get_backend_name() == "duckdb":
        try:
            import duckdb_engine  # noqa: F401
        except ImportError as error:
            raise OmopExportError(
                f"{url!r} is a DuckDB URL, which needs the duckdb extra:"
                " pip install 'imaging-biobank[duckdb]' (duckdb and duckdb-engine)"
            ) from error


def _previous_export(conn: Connection, tables: dict[str, Any]) -> bool:
    """Whether the database holds an export of ours (True) or nothing (False); refuses
    rows another program wrote."""
    filled = [
        n
        for n in EXPORT_TABLES
        if conn.execute(select(func.count()).select_from(tables[n])).scalar()
    ]
    if not filled:
        return False
    ours = conn.execute(
        select(func.count())
        .select_from(tables["cdm_source"])
        .where(tables["cdm_source"].c.cdm_etl_reference.like(f"{ETL_REFERENCE}%"))
    ).scalar()
    if not ours:
        raise OmopExportError(
            f"the database already holds OMOP data ({', '.join(filled)}) that imaging-biobank did"
            " not write: export into an empty database (or one an earlier `export omop` wrote)"
        )
    return True


def export_omop(
    source: Engine,
    target_url: str,
    collections: Sequence[str] = (),
    *,
    incomplete: Incomplete = "placeholder",
    today: dt.date | None = None,
) -> OmopResult:
    """Export the collections named (all when none) from ``source`` into the OMOP database
    at ``target_url`` (created when empty; a previous export of ours is replaced)."""
    from imaging_biobank.db.engine import display_url, make_engine

    if incomplete not in ("placeholder", "drop"):
        raise OmopExportError(f"incomplete must be placeholder or drop, not {incomplete!r}")
    _check_duckdb(target_url)
    with source.connect() as conn:
        rows, builder = build_rows(conn, collections, incomplete, today)
    truncated = conform(rows)
    target = make_engine(target_url)
    try:
        names = tables_needed()
        schema = create_schema(target, names)
        backend = target.dialect.name
        metadata, _ = build_metadata(backend, names)
        tables = dict(metadata.tables)
        order = [n for n in insert_order(names) if n in EXPORT_TABLES]
        with target.connect() as conn:
            replaced = _previous_export(conn, tables)
        if replaced and backend == "duckdb":
            for name in reversed(order):  # children first, one transaction each (see module)
                with target.begin() as conn:
                    conn.execute(delete(tables[name]))
        with target.begin() as conn:
            if replaced and backend != "duckdb":
                for name in reversed(order):
                    conn.execute(delete(tables[name]))
            added = write_vocabulary(conn, tables)
            for name in order:
                for chunk in _chunks(rows.get(name, []), 2000):
                    conn.execute(tables[name].insert(), _complete(chunk, tables[name].c.keys()))
    finally:
        target.dispose()
    notes = list(builder.notes)
    if builder.placeholder_years:
        notes.append(
            f"{builder.placeholder_years} person(s) without a known year of birth:"
            f" year_of_birth {UNKNOWN_YEAR}"
        )
    for table, n in sorted(builder.estimated_dates.items()):
        notes.append(
            f"{n} {table} row(s) without a date in the source: dated by the person's earliest date"
        )
    for table, n in sorted(builder.placeholder_dates.items()):
        notes.append(
            f"{n} {table} row(s) of persons with no date at all in the source: dated"
            f" {UNKNOWN_DATE.isoformat()}"
        )
    if builder.texts:
        notes.append(
            f"{builder.texts} e-form text answer(s) not exported (free text, e-mail, phone"
            " or record numbers may name or identify a person)"
        )
    for what, n in sorted(builder.dropped.items()):
        notes.append(f"{n} {what} left out (--incomplete drop)")
    for name, n in sorted(truncated.items()):
        notes.append(f"{n} value(s) of {name} cut to the specification's length")
    if schema.not_declared:
        notes.append(
            "foreign keys DuckDB cannot declare (cycles): " + ", ".join(schema.not_declared)
        )
    return OmopResult(
        url=display_url(target_url),
        counts={n: len(rows.get(n, [])) for n in EXPORT_TABLES},
        schema=schema,
        replaced=replaced,
        vocabulary_rows_added=added,
        placeholder_birth_years=builder.placeholder_years,
        placeholder_dates=dict(builder.placeholder_dates),
        estimated_dates=dict(builder.estimated_dates),
        dropped=dict(builder.dropped),
        truncated=truncated,
        text_left_out=builder.texts,
        notes=notes,
    )


def _chunks(rows: list[Row], size: int) -> Iterable[list[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _complete(rows: list[Row], columns: Iterable[str]) -> list[Row]:
    """Every row with every column (executemany needs the same keys in each row)."""
    names = list(columns)
    return [{c: r.get(c) for c in names} for r in rows]
