"""The relational model: every table of DESIGN.md, keys enforced, migrations that match it."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError

from imaging_biobank.db.engine import make_engine
from imaging_biobank.db.migrate import current_revision, head_revision, upgrade
from imaging_biobank.model.base import Base
from tests.conftest import row_counts, table_contents

# DESIGN.md section 2, table names exactly as written there
DESIGN_TABLES = [
    "biobank",
    "juristic_person",
    "contact_information",
    "country",
    "collection",
    "image_collection",
    "sample_tissue_collection",
    "clinical_variable_collection",
    "molecular_biomarker_collection",
    "software_source_code",
    "study",
    "collection_category",
    "data_category",
    "storage_temperature",
    "material_type",
    "body_part_examined",
    "dataset_type",
    "modality_information",
    "modality",
    "acquisition_parameters",
    "reconstruction_parameters",
    "algorithm",
    "registration_parameters",
    "intra_sequence",
    "inter_sequence",
    "inter_modal",
    "image_analysis",
    "preprocessing_parameters",
    "segmentation",
    "segmentation_type",
    "manual_segmentation",
    "semi_automated_segmentation",
    "automated_segmentation",
    "imaging_biomarker",
    "textural_features",
    "deep_features",
    "dynamic_signal_features",
    "sample_donor",
    "sample",
    "event",
    "imaging_study",
    "imaging_series",
    "imaging_instance",
]

# the N:M links DESIGN.md names
DESIGN_LINKS = [
    ("study", "collection"),
    ("collection", "collection_category"),
    ("collection", "data_category"),
    ("collection", "contact_information"),
    ("sample_tissue_collection", "storage_temperature"),
    ("sample_tissue_collection", "material_type"),
    ("image_collection", "body_part_examined"),
    ("image_collection", "dataset_type"),
    ("image_collection", "modality_information"),
    ("image_analysis", "preprocessing_parameters"),
    ("image_analysis", "segmentation"),
    ("image_analysis", "imaging_biomarker"),
]


def test_new_database_has_every_design_table(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    missing = [t for t in DESIGN_TABLES if t not in tables]
    assert not missing, f"tables of DESIGN.md missing: {missing}"
    for left, right in DESIGN_LINKS:
        assert f"{left}_{right}" in tables


def test_one_row_per_uid_and_indexes_for_cohort_joins(engine: Engine) -> None:
    insp = inspect(engine)

    def unique_columns(table: str) -> set[str]:
        found = {c for u in insp.get_unique_constraints(table) for c in u["column_names"]}
        found |= {c for i in insp.get_indexes(table) if i["unique"] for c in i["column_names"]}
        return found

    assert "series_instance_uid" in unique_columns("imaging_series")
    assert "study_instance_uid" in unique_columns("imaging_study")
    assert "sop_instance_uid" in unique_columns("imaging_instance")
    assert "pseudonym" in unique_columns("sample_donor")
    indexed = {c for i in insp.get_indexes("imaging_series") for c in i["column_names"]}
    assert {"image_collection_id", "sample_donor_id", "imaging_study_id", "modality_id"} <= indexed
    indexed = {c for i in insp.get_indexes("sample") for c in i["column_names"]}
    assert {"sample_donor_id", "collection_id", "material_type_id"} <= indexed


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(Base.metadata.tables["imaging_instance"]).values(
                sop_instance_uid="1.2.3",
                imaging_series_id=424242,
                sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
            )
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(Base.metadata.tables["sample_donor"]).values(pseudonym="d1", sex_id=999999)
        )


def test_event_takes_age_or_date_not_both(engine: Engine) -> None:
    with engine.begin() as conn:
        sex = conn.execute(text("SELECT id FROM sex WHERE code = 'Female'")).scalar_one()
        unit = conn.execute(text("SELECT id FROM age_unit WHERE code = 'Years'")).scalar_one()
        conn.execute(
            insert(Base.metadata.tables["sample_donor"]).values(id=1, pseudonym="d1", sex_id=sex)
        )
    event = Base.metadata.tables["event"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(event).values(
                identifier="e1",
                sample_donor_id=1,
                event_type="diagnosis",
                event_date="2020-01-01",
                age_at_event=3,
                age_unit_id=unit,
            )
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(event).values(
                identifier="e2", sample_donor_id=1, event_type="diagnosis", age_at_event=3
            )
        )
    with engine.begin() as conn:
        conn.execute(
            insert(event).values(
                identifier="e3",
                sample_donor_id=1,
                event_type="diagnosis",
                age_at_event=3,
                age_unit_id=unit,
            )
        )


def test_init_twice_changes_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    first = upgrade(engine)
    assert first.before is None and first.after == head_revision()
    before = table_contents(engine)
    second = upgrade(engine)
    assert not second.changed
    assert table_contents(engine) == before
    assert current_revision(engine) == head_revision()


def test_migrations_match_the_orm(engine: Engine) -> None:
    """A model change without its migration fails here."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_schema_is_the_same_on_both_backends(sqlite_url: str, postgres_url: str) -> None:
    counts = {}
    for url in (sqlite_url, postgres_url):
        engine = make_engine(url)
        upgrade(engine)
        counts[url] = row_counts(engine)
        engine.dispose()
    assert counts[sqlite_url] == counts[postgres_url]
