"""``export omop``: the demo biobank as OMOP CDM 5.4 + Oncology + MI-CDM, written into
databases whose tables are created from the OMOP field-level specifications with their
constraints on (SQLite, PostgreSQL, DuckDB)."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from imaging_biobank.db.engine import make_engine
from imaging_biobank.export.omop import (
    UNKNOWN_DATE,
    UNKNOWN_YEAR,
    OmopExportError,
    OmopResult,
    export_omop,
)
from imaging_biobank.export.omop_concepts import concept_subset
from imaging_biobank.export.omop_schema import (
    EXPORT_TABLES,
    ONCOLOGY_RENAMED,
    oncology_fields,
    specification,
    tables_needed,
)
from tests.conftest import EXAMPLE, NB_IMAGING, SHARED, server_unavailable
from tests.servers import PostgresServer

TODAY = dt.date(2026, 1, 15)
# what the source's owner knows a donor by (never to appear in an export)
SOURCE_IDS = EXAMPLE.parent
# the date column of every table whose rows are dated
DATED = dict(
    visit_occurrence="visit_start_date",
    procedure_occurrence="procedure_date",
    image_occurrence="image_occurrence_date",
    condition_occurrence="condition_start_date",
    measurement="measurement_date",
    observation="observation_date",
    specimen="specimen_date",
    episode="episode_start_date",
)
# text written into a copy of the demo (a name, a hospital number, an e-mail address), and
# the text fields added for it (a free-text one, an e-mail one)
FREE_TEXT = ("Dr Ana Ruiz", "HN-0048213", "ana.ruiz@example.org")
TEXT_FIELDS = ("clinician_notes", "contact_email")


def copy_database(url: str, path: Path, *statements: str) -> str:
    """A copy of the SQLite database at ``url`` (write-ahead log included) at ``path``,
    changed by ``statements``; its URL."""
    source, target = sqlite3.connect(url.removeprefix("sqlite:///")), sqlite3.connect(path)
    source.backup(target)
    source.close()
    with target:
        for statement in statements:
            target.execute(statement)
    target.close()
    return f"sqlite:///{path}"


def _export(source: str, target: str, **kwargs: Any) -> OmopResult:
    engine = make_engine(source)
    try:
        return export_omop(engine, target, today=TODAY, **kwargs)
    finally:
        engine.dispose()


def _into(source: str, url: str) -> tuple[str, OmopResult]:
    return url, _export(source, url)


@pytest.fixture(scope="module")
def omop_sqlite(
    full_biobank: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, OmopResult]:
    return _into(full_biobank, f"sqlite:///{tmp_path_factory.mktemp('omop') / 'omop.db'}")


@pytest.fixture(scope="module")
def omop_duckdb(
    full_biobank: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, OmopResult]:
    return _into(full_biobank, f"duckdb:///{tmp_path_factory.mktemp('omop') / 'omop.duckdb'}")


@pytest.fixture(scope="module")
def omop_pg(full_biobank: str, postgres: PostgresServer) -> tuple[str, OmopResult]:
    return _into(full_biobank, postgres.create_database("omop_export"))


@pytest.fixture(scope="module")
def edited(
    full_biobank: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, OmopResult]:
    """The demo changed where it lacked a case (source URL, OMOP URL, result): the age-dated
    diagnosis event in gestational weeks, a free-text field answered with a name and a
    hospital number and an e-mail field with an address (neither flagged as an identifier),
    and event descriptions naming the same person."""
    folder = tmp_path_factory.mktemp("omop_edited")
    source = copy_database(
        full_biobank,
        folder / "source.db",
        "UPDATE event SET age_at_event = 30, age_unit_id = (SELECT id FROM age_unit"
        " WHERE code = 'Gestational weeks') WHERE event_type = 'diagnosis'"
        " AND age_at_event IS NOT NULL",
        "INSERT INTO e_form_field (e_form_id, position, name, field_type, validation_type,"
        " label, required, identifier, branching_evaluated) SELECT e.id, 98 + n.i, n.name,"
        " n.type, n.validation, n.name, 0, 0, 0 FROM e_form e, (SELECT 0 AS i,"
        f" '{TEXT_FIELDS[0]}' AS name, 'notes' AS type, NULL AS validation UNION ALL SELECT 1,"
        f" '{TEXT_FIELDS[1]}', 'text', 'email') n WHERE e.name = 'nb_follow_up'",
        "INSERT INTO clinical_value (clinical_record_id, e_form_field_id, item, raw)"
        " SELECT (SELECT min(r.id) FROM clinical_record r JOIN e_form e ON e.id = r.e_form_id"
        " WHERE e.name = 'nb_follow_up'), f.id, 0, CASE f.name"
        f" WHEN '{TEXT_FIELDS[0]}' THEN 'seen by {FREE_TEXT[0]}, hospital number {FREE_TEXT[1]}'"
        f" ELSE '{FREE_TEXT[2]}' END FROM e_form_field f WHERE f.name IN {TEXT_FIELDS}",
        f"UPDATE event SET disease_id = NULL, description = 'biopsy by {FREE_TEXT[0]}'"
        " WHERE event_type = 'diagnosis' AND event_date = '2020-05'",
        f"UPDATE event SET description = 'relapse seen by {FREE_TEXT[0]}'"
        " WHERE event_type = 'relapse'",
    )
    return (source, *_into(source, f"sqlite:///{folder / 'omop.db'}"))


@pytest.fixture(params=["sqlite", "postgresql", "duckdb"])
def omop(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, OmopResult]]:
    """The demo's export on each backend (built once per module and backend)."""
    url, result = request.getfixturevalue(f"omop_{request.param.replace('postgresql', 'pg')}")
    engine = make_engine(url)
    yield engine, result
    engine.dispose()


def rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


def source_rows(url: str, sql: str, **params: Any) -> list[Any]:
    """The rows ``sql`` (with bound ``params``) reads from the database at ``url``."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


# --- the schema is the specification ----------------------------------------------------


def test_tables_are_created_from_the_specification(omop_sqlite: tuple[str, OmopResult]) -> None:
    url, result = omop_sqlite
    spec = specification()
    assert set(result.schema.created) == set(tables_needed())
    engine = make_engine(url)
    try:
        insp = inspect(engine)
        for name in tables_needed():
            columns = {c["name"]: c for c in insp.get_columns(name)}
            table = spec[name]
            assert list(columns) == [f.name for f in table.fields], name
            for f in table.fields:
                assert columns[f.name]["nullable"] is (not f.required), f"{name}.{f.name}"
            assert insp.get_pk_constraint(name)["constrained_columns"] == table.primary_key
            declared = {
                (fk["constrained_columns"][0], fk["referred_table"], fk["referred_columns"][0])
                for fk in insp.get_foreign_keys(name)
            }
            expected = {
                (f.name, f.fk_table, f.fk_field)
                for f in table.fields
                if f.fk_table and f.fk_table in tables_needed()
            }
            assert declared == expected, name
    finally:
        engine.dispose()
    # the MI-CDM tables and the NOT NULL columns the reference lists (clinical.md 1.2)
    assert {"image_occurrence", "image_feature", "episode", "episode_event"} <= set(tables_needed())
    assert spec["person"].field("year_of_birth").required
    assert spec["image_occurrence"].field("image_series_uid").required
    assert not spec["image_occurrence"].field("anatomic_site_concept_id").required


def test_oncology_extension_is_in_the_core_specification() -> None:
    core = specification()
    for f in oncology_fields():
        name = ONCOLOGY_RENAMED.get((f.table, f.name), f.name)
        assert core[f.table].field(name).required == f.required, f"{f.table}.{f.name}"


def test_shipped_specifications_are_the_reference_files() -> None:
    if not (SHARED / "reference" / "omop").exists():
        server_unavailable("../shared/reference/omop is not here")
    data = Path(__file__).resolve().parents[1] / "src/imaging_biobank/export/data"
    for ours, theirs in (
        ("omop_cdm_v5.4_field_level.csv", "OMOP_CDMv5.4_Field_Level.csv"),
        ("omop_oncology_field_level.csv", "OMOP_CDM_Oncology_Ex_Field_Level.csv"),
        ("omop_medical_imaging_field_level.csv", "OMOP_CDM_Medical_Imaging_Ex_Field_Level.csv"),
    ):
        assert (data / ours).read_bytes() == (SHARED / "reference/omop" / theirs).read_bytes()


@pytest.mark.postgres
def test_postgresql_holds_real_deferrable_constraints(
    omop_pg: tuple[str, OmopResult], full_biobank: str
) -> None:
    url, first = omop_pg
    again = _export(full_biobank, url)  # replaces the previous export, constraints still on
    assert again.replaced and again.counts == first.counts
    engine = make_engine(url)
    try:
        found = rows(
            engine,
            "SELECT conrelid::regclass::text AS tab, contype, condeferrable FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace",
        )
    finally:
        engine.dispose()
    fks = [r for r in found if r.contype == "f"]
    expected = sum(
        1
        for name in tables_needed()
        for f in specification()[name].fields
        if f.fk_table and f.fk_table in tables_needed()
    )
    assert len(fks) == expected
    assert all(r.condeferrable for r in fks)
    assert {r.tab for r in found if r.contype == "p"} >= {"person", "image_occurrence", "concept"}


def test_duckdb_declares_what_it_can(omop_duckdb: tuple[str, OmopResult]) -> None:
    url, result = omop_duckdb
    # DuckDB cannot hold the cycle CONCEPT <-> VOCABULARY/DOMAIN/CONCEPT_CLASS
    assert sorted(result.schema.not_declared) == [
        "concept_class.concept_class_concept_id",
        "domain.domain_concept_id",
        "vocabulary.vocabulary_concept_id",
    ]
    engine = make_engine(url)
    try:
        kinds = Counter(
            r[0] for r in rows(engine, "SELECT constraint_type FROM duckdb_constraints()")
        )
    finally:
        engine.dispose()
    spec, needed = specification(), tables_needed()
    fields = [f for name in needed for f in spec[name].fields]
    assert kinds["NOT NULL"] == sum(f.required for f in fields)
    assert kinds["FOREIGN KEY"] == sum(f.fk_table in needed for f in fields) - 3
    assert kinds["PRIMARY KEY"] == sum(1 for name in needed if spec[name].primary_key)


# --- the constraints are on: the export passes them, a bad row does not ---------------------


def test_constraints_refuse_a_bad_row(omop: tuple[Engine, OmopResult]) -> None:
    engine, _ = omop
    orphan = (
        "INSERT INTO measurement (measurement_id, person_id, measurement_concept_id,"
        " measurement_date, measurement_type_concept_id) VALUES (999999, 424242, 0,"
        " '2020-01-01', 32879)"
    )
    unknown_concept = (
        "INSERT INTO measurement (measurement_id, person_id, measurement_concept_id,"
        " measurement_date, measurement_type_concept_id) VALUES (999998, 1, 123456789,"
        " '2020-01-01', 32879)"
    )
    no_year = (
        "INSERT INTO person (person_id, gender_concept_id, race_concept_id,"
        " ethnicity_concept_id) VALUES (999997, 0, 0, 0)"
    )
    for statement in (orphan, unknown_concept, no_year):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(statement))


def test_export_passes_the_constraints_on_every_backend(omop: tuple[Engine, OmopResult]) -> None:
    engine, result = omop
    for name, count in result.counts.items():
        assert rows(engine, f"SELECT count(*) FROM {name}")[0][0] == count, name
    assert result.counts["person"] == 37
    if engine.dialect.name == "sqlite":
        with sqlite3.connect(engine.url.database or "") as conn:
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


# --- images ---------------------------------------------------------------------------------


def test_every_series_is_one_image_occurrence(
    omop: tuple[Engine, OmopResult], full_biobank: str
) -> None:
    engine, _ = omop
    source = source_rows(
        full_biobank,
        "SELECT st.study_instance_uid, se.series_instance_uid FROM imaging_series se"
        " JOIN imaging_study st ON st.id = se.imaging_study_id",
    )
    written = rows(engine, "SELECT image_study_uid, image_series_uid FROM image_occurrence")
    assert len(written) == len(source) == 44
    assert Counter(map(tuple, written)) == Counter(map(tuple, source))


def test_one_imaging_procedure_per_study(
    omop: tuple[Engine, OmopResult], full_biobank: str
) -> None:
    engine, _ = omop
    studies = source_rows(full_biobank, "SELECT count(*) FROM imaging_study")[0][0]
    assert rows(engine, "SELECT count(*) FROM procedure_occurrence")[0][0] == studies
    per_study = rows(
        engine,
        "SELECT i.image_study_uid, count(DISTINCT i.procedure_occurrence_id),"
        " count(DISTINCT p.person_id), min(p.procedure_source_value)"
        " FROM image_occurrence i JOIN procedure_occurrence p"
        " ON p.procedure_occurrence_id = i.procedure_occurrence_id"
        " AND p.person_id = i.person_id AND p.visit_occurrence_id = i.visit_occurrence_id"
        " GROUP BY i.image_study_uid",
    )
    assert len(per_study) == studies
    assert all(r[1] == 1 and r[2] == 1 for r in per_study)
    # STS_001's study: CT, MR and PET with their contours
    assert "CT\\MR\\PT\\RTSTRUCT" in {r[3] for r in per_study}


def test_modality_and_body_part_are_imaging_wg_concepts(
    omop: tuple[Engine, OmopResult], full_biobank: str
) -> None:
    engine, _ = omop
    named = dict(
        rows(
            engine,
            "SELECT c.concept_code, count(*) FROM image_occurrence i JOIN concept c"
            " ON c.concept_id = i.modality_concept_id AND c.concept_id <> 0"
            " GROUP BY c.concept_code",
        )
    )
    expected = dict(
        source_rows(
            full_biobank,
            "SELECT m.code, count(*) FROM imaging_series s JOIN modality m ON m.id = s.modality_id"
            " GROUP BY m.code",
        )
    )
    assert named == expected and named["PT"] == 1
    sites = dict(
        rows(
            engine,
            "SELECT c.concept_code, c.vocabulary_id FROM image_occurrence i"
            " JOIN concept c ON c.concept_id = i.anatomic_site_concept_id",
        )
    )
    assert sites["ABDOMEN"] == "DICOM" and sites["EXTREMITY"] == "DICOM"
    # three series have no modality in their headers: concept 0
    assert (
        rows(engine, "SELECT count(*) FROM image_occurrence WHERE modality_concept_id = 0")[0][0]
        == 3
    )


def test_image_features_point_at_the_measurement_with_their_value(
    omop: tuple[Engine, OmopResult], full_biobank: str
) -> None:
    engine, _ = omop
    values = {
        r.id: (r.value, r.code)
        for r in source_rows(full_biobank, "SELECT id, value, code FROM imaging_biomarker")
    }
    linked = rows(
        engine,
        "SELECT f.image_feature_id, m.value_as_number, c.concept_code,"
        " f.image_feature_event_field_concept_id,"
        " f.alg_system, m.person_id = f.person_id AS same_person, f.image_occurrence_id"
        " FROM image_feature f JOIN measurement m ON m.measurement_id = f.image_feature_event_id"
        " LEFT JOIN concept c ON c.concept_id = f.image_feature_concept_id"
        " AND c.concept_id <> 0",
    )
    assert len(linked) == len(values) == 384
    field = concept_subset().required("field", "measurement.measurement_id")
    for r in linked:
        value, code = values[r[0]]
        assert r[1] == pytest.approx(value), r
        assert r[2] == code  # the IBSI local concept of the feature (None: no code)
        assert r[3] == field
        assert "mirp 2.7.0" in r[4]
        assert r[5]
    volume = rows(
        engine,
        "SELECT m.value_as_number, m.unit_source_value FROM measurement m"
        " WHERE m.measurement_source_value = 'IBSI:RNU0' ORDER BY m.value_as_number",
    )
    assert len(volume) == 3 and all(r[1] == "mm^3" for r in volume)


# --- clinical side -------------------------------------------------------------------------


def test_persons_are_pseudonyms_and_birth_years(
    omop: tuple[Engine, OmopResult], full_biobank: str
) -> None:
    engine, result = omop
    pseudonyms = {
        r[0]: r[1] for r in source_rows(full_biobank, "SELECT id, pseudonym FROM sample_donor")
    }
    persons = {
        r.person_id: r
        for r in rows(
            engine,
            "SELECT person_id, person_source_value, year_of_birth, gender_concept_id,"
            " gender_source_value, month_of_birth, day_of_birth, birth_datetime FROM person",
        )
    }
    assert {p: r.person_source_value for p, r in persons.items()} == pseudonyms
    assert all(r.month_of_birth is None and r.birth_datetime is None for r in persons.values())
    by_pseudonym = {r.person_source_value: r for r in persons.values()}
    sts = source_rows(full_biobank, "SELECT pseudonym FROM sample_donor WHERE birth_date = '2000'")
    assert by_pseudonym[sts[0][0]].year_of_birth == 2000
    assert by_pseudonym[sts[0][0]].gender_concept_id == 8507
    # the 76-year-old's CT of 2019-10-19: born in 1943 (estimated from the study)
    assert 1943 in {r.year_of_birth for r in persons.values()}
    unknown = [r for r in persons.values() if r.year_of_birth == UNKNOWN_YEAR]
    assert len(unknown) == result.placeholder_birth_years == 25
    others = [r for r in persons.values() if r.gender_source_value not in ("Male", "Female")]
    assert others and all(r.gender_concept_id == 0 for r in others)


def test_observation_periods_cover_every_date(omop: tuple[Engine, OmopResult]) -> None:
    engine, _ = omop
    periods = {
        r[0]: (r[1], r[2])
        for r in rows(
            engine,
            "SELECT person_id, observation_period_start_date, observation_period_end_date"
            " FROM observation_period",
        )
    }
    assert len(periods) == 37
    for table, column in DATED.items():
        for person, day in rows(engine, f"SELECT person_id, {column} FROM {table}"):
            start, end = periods[person]
            assert str(start) <= str(day) <= str(end), (table, person, day)


def test_undated_rows_take_their_persons_earliest_date(omop: tuple[Engine, OmopResult]) -> None:
    """A row the source does not date is dated by its person's earliest date; 1900-01-01
    only for a person with no date at all, so no period stretches back to 1900."""
    engine, result = omop
    unknown = UNKNOWN_DATE.isoformat()
    days: dict[int, list[str]] = {}
    for table, column in DATED.items():
        for person, day in rows(engine, f"SELECT person_id, {column} FROM {table}"):
            days.setdefault(person, []).append(str(day)[:10])
    periods = rows(
        engine,
        "SELECT person_id, observation_period_start_date, observation_period_end_date"
        " FROM observation_period",
    )
    placeholder_rows = 0
    for person, start, end in periods:
        if str(start)[:10] == unknown:  # a person the source dates nowhere
            assert str(end)[:10] == unknown and set(days[person]) == {unknown}, person
            placeholder_rows += len(days[person])
        else:
            assert unknown not in days[person], (person, str(start), str(end))
    assert 0 < placeholder_rows < sum(len(d) for d in days.values())
    counted = {t: n for t, n in result.placeholder_dates.items() if t != "observation_period"}
    assert sum(counted.values()) == placeholder_rows
    assert sum(result.estimated_dates.values()) > 0
    assert any("dated by the person's earliest date" in n for n in result.notes)


def test_date_answers_date_themselves(omop: tuple[Engine, OmopResult], full_biobank: str) -> None:
    """An e-form answer that is a date (a relapse date) is an observation on that date, not
    on its record's latest date."""
    engine, _ = omop
    answered = Counter(
        (r[0], f"{r[1]}.{r[2]}", str(r[3]))
        for r in source_rows(
            full_biobank,
            "SELECT d.pseudonym, e.name, f.name, v.value_date FROM clinical_value v"
            " JOIN e_form_field f ON f.id = v.e_form_field_id JOIN e_form e ON e.id = f.e_form_id"
            " JOIN clinical_record r ON r.id = v.clinical_record_id"
            " JOIN sample_donor d ON d.id = r.sample_donor_id WHERE v.value_date IS NOT NULL",
        )
    )
    assert sum(n for (_, source, _), n in answered.items() if source.endswith("relapse_date")) == 3
    written = Counter(
        (r[0], r[1], str(r[2])[:10])
        for r in rows(
            engine,
            "SELECT p.person_source_value, o.observation_source_value, o.observation_date"
            " FROM observation o JOIN person p ON p.person_id = o.person_id"
            " WHERE o.value_source_value = CAST(o.observation_date AS VARCHAR(10))",
        )
    )
    assert written == answered


def test_persons_are_the_collections_donors(full_biobank: str, tmp_path: Path) -> None:
    """The persons of a collection's export are its donors as the catalogue counts them:
    declared members (collection_sample_donor) too, not only the donors of its records."""
    url = f"sqlite:///{tmp_path / 'clinical.db'}"
    result = _export(full_biobank, url, collections=["NB_CLINICAL"])
    members = source_rows(
        full_biobank,
        "SELECT d.pseudonym FROM sample_donor d WHERE d.id IN (SELECT sample_donor_id FROM"
        " collection_sample_donor l JOIN collection c ON c.id = l.collection_id"
        " WHERE c.identifier LIKE '%\\:NB_CLINICAL' UNION SELECT r.sample_donor_id"
        " FROM clinical_record r JOIN collection c ON c.id = r.collection_id"
        " WHERE c.identifier LIKE '%\\:NB_CLINICAL')",
    )
    counted = source_rows(
        full_biobank,
        "SELECT number_of_donors FROM collection WHERE identifier LIKE '%\\:NB_CLINICAL'",
    )
    engine = make_engine(url)
    try:
        persons = {r[0] for r in rows(engine, "SELECT person_source_value FROM person")}
    finally:
        engine.dispose()
    assert persons == {r[0] for r in members} and len(persons) == counted[0][0] == 7
    assert result.counts["person"] == 7


def test_a_gestational_age_is_not_an_age_after_birth(
    edited: tuple[str, str, OmopResult],
) -> None:
    """A diagnosis at 30 gestational weeks is before birth: never birth + 30 weeks; the
    condition is dated as an undated row (the person's earliest date)."""
    source, url, result = edited
    ((pseudonym, birth),) = source_rows(
        source,
        "SELECT d.pseudonym, d.birth_date FROM event e JOIN sample_donor d"
        " ON d.id = e.sample_donor_id JOIN age_unit u ON u.id = e.age_unit_id"
        " WHERE u.code = 'Gestational weeks'",
    )
    born = dt.date.fromisoformat(f"{birth}-01")
    engine = make_engine(url)
    try:
        ((start, first),) = rows(
            engine,
            "SELECT min(c.condition_start_date), min(o.observation_period_start_date)"
            " FROM condition_occurrence c JOIN person p ON p.person_id = c.person_id"
            " JOIN observation_period o ON o.person_id = p.person_id"
            f" WHERE p.person_source_value = '{pseudonym}' AND c.condition_type_concept_id = 32879",
        )
    finally:
        engine.dispose()
    assert str(start)[:10] != (born + dt.timedelta(weeks=30)).isoformat()
    assert str(start)[:10] == str(first)[:10] != UNKNOWN_DATE.isoformat()
    assert any("gestational age" in n for n in result.notes)


def test_text_is_not_exported(edited: tuple[str, str, OmopResult]) -> None:
    """E-form text answers (free text, an e-mail address) and event descriptions may name
    or identify people: none is written, the text answers are counted."""
    _, url, result = edited
    engine = make_engine(url)
    try:
        found = [
            (name, value)
            for name in EXPORT_TABLES
            for row in rows(engine, f"SELECT * FROM {name}")
            for value in row
            if isinstance(value, str) and any(t in value for t in FREE_TEXT)
        ]
        sources = {
            r[0] for r in rows(engine, "SELECT condition_source_value FROM condition_occurrence")
        }
    finally:
        engine.dispose()
    assert found == []
    assert result.text_left_out == 2
    assert "2 e-form text answer(s) not exported" in " ".join(result.notes)
    assert "diagnosis" in sources  # the diagnosis event without a disease code


def test_diagnoses_conditions_episodes_and_modifiers(
    omop: tuple[Engine, OmopResult], full_biobank: str
) -> None:
    engine, _ = omop
    condition_field = concept_subset().required(
        "field", "condition_occurrence.condition_occurrence_id"
    )
    conditions = {
        r[0]: r
        for r in rows(
            engine,
            "SELECT condition_occurrence_id, person_id, condition_source_value,"
            " condition_concept_id FROM condition_occurrence",
        )
    }
    assert {r[2] for r in conditions.values()} >= {"C74.9", "C74.0", "C48.0", "C71.7"}
    assert all(r[3] == 0 for r in conditions.values())  # no ICD-10 concept is shipped
    events = rows(
        engine,
        "SELECT e.episode_id, e.event_id, e.episode_event_field_concept_id,"
        " p.episode_concept_id, p.person_id"
        " FROM episode_event e JOIN episode p ON p.episode_id = e.episode_id",
    )
    assert len(events) == len(conditions)
    for _episode, event, field, kind, person in events:
        assert field == condition_field and kind == 32528
        assert conditions[event][1] == person
    # the relapse of the third neuroblastoma donor: a recurrence under the first occurrence
    relapse = rows(
        engine,
        "SELECT r.person_id, f.episode_concept_id FROM episode r"
        " JOIN episode f ON f.episode_id = r.episode_parent_id"
        " WHERE r.episode_concept_id = 32529",
    )
    assert len(relapse) == 1 and relapse[0][1] == 32528
    # MYCN is a diagnostic modifier of the donor's condition (Oncology extension)
    mycn = rows(
        engine,
        "SELECT m.value_source_value, m.meas_event_field_concept_id, c.person_id = m.person_id"
        " FROM measurement m JOIN condition_occurrence c"
        " ON c.condition_occurrence_id = m.measurement_event_id"
        " WHERE m.measurement_source_value IN ('MYCN amplification', 'nb_diagnosis.mycn_status')",
    )
    assert len(mycn) == 2 + 6
    assert all(r[1] == condition_field and r[2] for r in mycn)
    assert {"amplified", "not amplified", "Amplified", "Not amplified"} <= {r[0] for r in mycn}
    # e-form records: Case Report Form; numbers keep their UCUM unit as source value
    ldh = rows(
        engine,
        "SELECT value_as_number, unit_source_value, measurement_type_concept_id,"
        " unit_concept_id FROM measurement WHERE measurement_source_value = '2532-0'",
    )
    answered = source_rows(
        full_biobank,
        "SELECT v.value_number FROM clinical_value v JOIN e_form_field f"
        " ON f.id = v.e_form_field_id WHERE f.name = 'ldh'",
    )
    assert sorted(r[0] for r in ldh) == sorted(r[0] for r in answered) and len(ldh) == 6
    assert all(r[1] == "U/L" and r[2] == 32809 and r[3] == 0 for r in ldh)


def test_specimens_and_cdm_source(omop: tuple[Engine, OmopResult]) -> None:
    engine, _ = omop
    specimens = rows(
        engine,
        "SELECT specimen_source_id, specimen_concept_id, specimen_source_value,"
        " anatomic_site_source_value FROM specimen",
    )
    assert sorted(r[0] for r in specimens) == [
        "NB-B-0003",
        "NB-T-0001",
        "NB-T-0002",
        "NB-T-0003",
        "NB-T-0004",
        "NB-T-0005",
    ]
    assert all(r[1] == 4048506 for r in specimens)
    (source,) = rows(
        engine,
        "SELECT cdm_version_concept_id, vocabulary_version, cdm_source_abbreviation,"
        " cdm_etl_reference, cdm_release_date FROM cdm_source",
    )
    assert source[0] == 756265 and source[1] == concept_subset().vocabulary_version != ""
    assert source[2] == "PRIMAGE" and source[3].startswith("imaging-biobank export omop")
    assert str(source[4])[:10] == TODAY.isoformat()


def test_concepts_are_shipped_or_zero_with_a_source_value(omop: tuple[Engine, OmopResult]) -> None:
    engine, _ = omop
    shipped = set(concept_subset().concepts)
    spec = specification()
    special = {
        ("episode", "episode_object_concept_id"): "episode_source_value",
        ("measurement", "value_as_concept_id"): "value_source_value",
        ("measurement", "measurement_source_concept_id"): "measurement_source_value",
        ("condition_occurrence", "condition_source_concept_id"): "condition_source_value",
    }
    checked = 0
    for name in EXPORT_TABLES:
        columns = [f.name for f in spec[name].fields]
        for f in spec[name].fields:
            if not f.is_concept:
                continue
            source = special.get((name, f.name), f.name.replace("_concept_id", "_source_value"))
            has_source = (source in columns and not f.name.endswith("_source_concept_id")) or (
                name,
                f.name,
            ) in special
            value_column = source if has_source else "NULL"
            select = f"SELECT {f.name}, {value_column} FROM {name} WHERE {f.name} IS NOT NULL"
            for concept, value in rows(engine, select):
                checked += 1
                assert concept in shipped, f"{name}.{f.name} = {concept}"
                if concept == 0 and has_source:
                    assert value, f"{name}.{f.name} is 0 without {source}"
    assert checked > 3000


def test_no_direct_identifier(omop_sqlite: tuple[str, OmopResult]) -> None:
    url, _ = omop_sqlite
    forbidden: set[str] = set()
    for path, columns in (
        (SOURCE_IDS / "samples" / "donors.csv", ("donor_id",)),
        (SOURCE_IDS / "forms" / "neuroblastoma_records.csv", ("record_id", "hospital_number")),
        (SOURCE_IDS / "forms" / "dipg_records.csv", ("record_id",)),
    ):
        with path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                forbidden |= {row[c] for c in columns if row.get(c)}
    assert "HN-0048213" in forbidden and "STS_001" in forbidden
    engine = make_engine(url)
    try:
        text_values = []
        for name in EXPORT_TABLES:
            for row in rows(engine, f"SELECT * FROM {name}"):
                text_values += [v for v in row if isinstance(v, str)]
    finally:
        engine.dispose()
    leaked = {v for v in text_values for f in forbidden if f in v}
    assert not leaked


# --- PostgreSQL as the source gives the same export ------------------------------------------


def canonical(engine: Engine) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table's rows with the generated ids replaced by whether they are set, and
    what each build pseudonymises with its own key (pseudonyms, DICOM UIDs) left out: a
    person stands as its year of birth and sex."""
    persons = {
        r[0]: (r[1], r[2])
        for r in rows(engine, "SELECT person_id, year_of_birth, gender_source_value FROM person")
    }
    keyed = {"person_source_value", "image_study_uid", "image_series_uid"}
    ids = {
        "person_id",
        "observation_period_id",
        "visit_occurrence_id",
        "procedure_occurrence_id",
        "condition_occurrence_id",
        "measurement_id",
        "observation_id",
        "specimen_id",
        "episode_id",
        "episode_parent_id",
        "event_id",
        "image_occurrence_id",
        "image_feature_id",
        "image_feature_event_id",
        "measurement_event_id",
        "observation_event_id",
        "image_finding_id",
        "alg_datetime",
    }
    out = {}
    for name in EXPORT_TABLES:
        with engine.connect() as conn:
            result = conn.execute(text(f"SELECT * FROM {name}"))
            keys = list(result.keys())
            table: Counter[tuple[Any, ...]] = Counter()
            for row in result:
                values: list[Any] = []
                for key, value in zip(keys, row, strict=True):
                    if key == "person_id":
                        values.append(persons[value])
                    elif key in keyed:
                        values.append(None)
                    elif key in ids:
                        values.append(value is None)
                    elif isinstance(value, float):
                        values.append(round(value, 9))
                    else:
                        values.append(str(value) if value is not None else None)
                table[tuple(values)] += 1
        out[name] = table
    return out


@pytest.mark.postgres
def test_postgresql_source_gives_the_same_rows(
    omop_sqlite: tuple[str, OmopResult], full_biobank_pg: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'from_pg.db'}"
    _export(full_biobank_pg, url)
    ours, theirs = make_engine(omop_sqlite[0]), make_engine(url)
    try:
        assert canonical(theirs) == canonical(ours)
    finally:
        ours.dispose()
        theirs.dispose()


# --- options and re-export -----------------------------------------------------------------


def test_collection_limits_the_export(full_biobank: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nb.db'}"
    result = _export(full_biobank, url, collections=[NB_IMAGING])
    assert result.counts["image_occurrence"] == 6
    assert result.counts["person"] == 1
    assert result.counts["specimen"] == 0 and result.counts["image_feature"] == 384
    engine = make_engine(url)
    try:
        # the donor's diagnosis is person-level: exported with the images
        assert rows(engine, "SELECT condition_source_value FROM condition_occurrence") == [
            ("C74.9",)
        ]
    finally:
        engine.dispose()
    with pytest.raises(LookupError, match="NO_SUCH"):
        _export(full_biobank, url, collections=["NO_SUCH"])


def test_reexport_replaces_and_foreign_data_is_refused(full_biobank: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'again.db'}"
    first = _export(full_biobank, url)
    second = _export(full_biobank, url)
    assert second.replaced and not first.replaced
    assert second.counts == first.counts and second.vocabulary_rows_added == 0
    engine = make_engine(url)
    try:
        assert rows(engine, "SELECT count(*) FROM image_occurrence")[0][0] == 44
        assert rows(engine, "SELECT count(*) FROM cdm_source")[0][0] == 1
        with engine.begin() as conn:  # now someone else's data
            conn.execute(text("UPDATE cdm_source SET cdm_etl_reference = 'another ETL'"))
    finally:
        engine.dispose()
    with pytest.raises(OmopExportError, match="did not write"):
        _export(full_biobank, url)


def test_duckdb_reexport_replaces(omop_duckdb: tuple[str, OmopResult], full_biobank: str) -> None:
    url, first = omop_duckdb
    second = _export(full_biobank, url)
    assert second.replaced and second.counts == first.counts


def test_incomplete_drop_follows_the_cdm_convention(full_biobank: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'drop.db'}"
    result = _export(full_biobank, url, incomplete="drop")
    assert result.dropped["person (no year of birth)"] == 25
    engine = make_engine(url)
    try:
        assert (
            rows(engine, f"SELECT count(*) FROM person WHERE year_of_birth = {UNKNOWN_YEAR}")[0][0]
            == 0
        )
        for table, column in (
            ("measurement", "measurement_date"),
            ("condition_occurrence", "condition_start_date"),
            ("image_occurrence", "image_occurrence_date"),
        ):
            assert (
                rows(engine, f"SELECT count(*) FROM {table} WHERE {column} = '{UNKNOWN_DATE}'")[0][
                    0
                ]
                == 0
            )
        assert rows(engine, "SELECT count(*) FROM person")[0][0] == result.counts["person"] == 12
    finally:
        engine.dispose()


def test_drop_counts_each_answer_left_out(
    edited: tuple[str, str, OmopResult], tmp_path: Path
) -> None:
    """With --incomplete drop, every e-form answer (ICD-10 codes and text aside) of a
    person with a year of birth is written, or counted once as left out for want of a
    date (the records of the donor diagnosed at a gestational age have none)."""
    source = edited[0]
    url = f"sqlite:///{tmp_path / 'drop.db'}"
    result = _export(source, url, incomplete="drop")
    engine = make_engine(url)
    try:
        written = sum(
            rows(engine, f"SELECT count(*) FROM {t} WHERE {t}_type_concept_id = 32809")[0][0]
            for t in ("measurement", "observation")
        )
    finally:
        engine.dispose()
    answers = source_rows(
        source,
        "SELECT count(*) FROM clinical_value v JOIN e_form_field f ON f.id = v.e_form_field_id"
        " JOIN clinical_record r ON r.id = v.clinical_record_id"
        " JOIN sample_donor d ON d.id = r.sample_donor_id"
        f" WHERE (f.value_set IS NULL OR f.value_set <> 'icd-10') AND f.name NOT IN {TEXT_FIELDS}"
        " AND (d.birth_date IS NOT NULL OR d.id IN (SELECT s.sample_donor_id"
        " FROM imaging_series s JOIN imaging_study st ON st.id = s.imaging_study_id"
        " WHERE st.study_date IS NOT NULL AND st.patient_age_years IS NOT NULL))",
    )[0][0]
    left_out = result.dropped["e-form answer (no date)"]
    assert left_out > 0 and written + left_out == answers
    assert f"{left_out} e-form answer (no date) left out (--incomplete drop)" in result.notes
    assert not any(k.startswith("e-form record") for k in result.dropped)


def test_duckdb_without_its_extra_is_a_clear_error(
    full_biobank: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "duckdb_engine", None)
    with pytest.raises(OmopExportError, match=r"imaging-biobank\[duckdb\]"):
        _export(full_biobank, f"duckdb:///{tmp_path / 'x.duckdb'}")


def test_cli_exports_and_reports(full_biobank: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from imaging_biobank.cli import app

    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = runner.invoke(app, ["export", "omop", url, "--db", full_biobank, "-c", "NB_IMAGING"])
    assert done.exit_code == 0, done.output
    assert "image_occurrence" in done.output and "384" in done.output
    bad = runner.invoke(app, ["export", "omop", url, "--db", full_biobank, "--incomplete", "guess"])
    assert bad.exit_code == 2 and "placeholder or drop" in bad.output
    unknown = runner.invoke(app, ["export", "omop", url, "--db", full_biobank, "-c", "NOPE"])
    assert unknown.exit_code == 2 and "NOPE" in unknown.output


def test_concept_subset_is_closed_and_maps_the_demo() -> None:
    subset = concept_subset()
    vocabularies = {r["vocabulary_id"] for r in subset.vocabularies}
    domains = {r["domain_id"] for r in subset.domains}
    classes = {r["concept_class_id"] for r in subset.concept_classes}
    for row in subset.concepts.values():
        assert row["vocabulary_id"] in vocabularies and row["domain_id"] in domains
        assert row["concept_class_id"] in classes and row["source"]
    for table, column in (
        (subset.vocabularies, "vocabulary_concept_id"),
        (subset.domains, "domain_concept_id"),
        (subset.concept_classes, "concept_class_concept_id"),
    ):
        assert all(int(r[column]) in subset.concepts for r in table)
    assert all(cid in subset.concepts for cid in subset.mapping.values())
    for code in ("CT", "MR", "PT", "US", "NM", "RTSTRUCT", "SEG", "SR"):
        assert subset.concept_id("modality", code) >= 2_000_000_000
    assert subset.concept_id("body_part", "ABDOMEN") == 2128021384
    assert subset.concept_id("ibsi", "RNU0") >= 2_000_000_000
    assert subset.concept_id("sex", "Male") == 8507 and subset.concept_id("sex", "Unknown") == 0
