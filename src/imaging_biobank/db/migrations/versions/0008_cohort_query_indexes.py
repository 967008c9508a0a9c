"""indexes for cohort queries and facets

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22

A series filter on modality and body part reads the series' donor, study, collection and
instance count from its index, and the slice thickness from an index too (by series, or by
thickness with the series id), without the rows.
Facets count donors per modality, body part, study age, material type, storage temperature,
diagnosis and sex from an index on (value, donor) read in order; a cohort's facets read
(donor, modality, body part, study) from one index per donor. Indexes that a new one starts
with are replaced by it.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (table, index, columns): new indexes, and the single-column ones they replace
NEW = (
    (
        "acquisition_parameters",
        "ix_acquisition_parameters_slice_thickness",
        ["slice_thickness", "imaging_series_id"],
    ),
    (
        "acquisition_parameters",
        "ix_acquisition_parameters_series_slice_thickness",
        ["imaging_series_id", "slice_thickness"],
    ),
    ("event", "ix_event_disease_donor", ["disease_id", "sample_donor_id"]),
    (
        "imaging_series",
        "ix_imaging_series_cohort",
        [
            "modality_id",
            "body_part_examined_id",
            "sample_donor_id",
            "imaging_study_id",
            "image_collection_id",
            "number_of_instances",
            "id",
        ],
    ),
    ("imaging_series", "ix_imaging_series_modality_donor", ["modality_id", "sample_donor_id"]),
    (
        "imaging_series",
        "ix_imaging_series_body_part_donor",
        ["body_part_examined_id", "sample_donor_id"],
    ),
    ("imaging_series", "ix_imaging_series_study_donor", ["imaging_study_id", "sample_donor_id"]),
    (
        "imaging_series",
        "ix_imaging_series_donor_facets",
        ["sample_donor_id", "modality_id", "body_part_examined_id", "imaging_study_id"],
    ),
    ("sample", "ix_sample_material_type_donor", ["material_type_id", "sample_donor_id"]),
    (
        "sample",
        "ix_sample_storage_temperature_donor",
        ["storage_temperature_id", "sample_donor_id"],
    ),
    ("sample_donor", "ix_sample_donor_sex_id", ["sex_id"]),
)
REPLACED = (
    ("acquisition_parameters", "ix_acquisition_parameters_slice_thickness", ["slice_thickness"]),
    ("event", "ix_event_disease_id", ["disease_id"]),
    (
        "imaging_series",
        "ix_imaging_series_modality_body_part",
        ["modality_id", "body_part_examined_id"],
    ),
    ("imaging_series", "ix_imaging_series_imaging_study_id", ["imaging_study_id"]),
    ("imaging_series", "ix_imaging_series_sample_donor_id", ["sample_donor_id"]),
    ("sample", "ix_sample_material_type_id", ["material_type_id"]),
    ("sample", "ix_sample_storage_temperature_id", ["storage_temperature_id"]),
)


def upgrade() -> None:
    for table, name, _ in REPLACED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    for table, name, columns in NEW:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    for table, name, _ in reversed(NEW):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    for table, name, columns in REPLACED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)
