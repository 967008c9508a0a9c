"""the series' slice thickness on imaging_series (from its acquisition parameters, kept by
the ingest writer), in the cohort index after modality and body part

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22

A cohort filter on modality, body part and slice thickness then reads one index range of
imaging_series instead of looking up every candidate series' acquisition parameters.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COHORT = "ix_imaging_series_cohort"
AFTER = ["sample_donor_id", "imaging_study_id", "image_collection_id", "number_of_instances", "id"]


def upgrade() -> None:
    with op.batch_alter_table("imaging_series", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slice_thickness", sa.Float(), nullable=True))
    op.execute(
        "UPDATE imaging_series SET slice_thickness = (SELECT a.slice_thickness"
        " FROM acquisition_parameters a WHERE a.imaging_series_id = imaging_series.id)"
    )
    op.drop_index(COHORT, table_name="imaging_series")
    op.create_index(
        COHORT,
        "imaging_series",
        ["modality_id", "body_part_examined_id", "slice_thickness", *AFTER],
    )


def downgrade() -> None:
    op.drop_index(COHORT, table_name="imaging_series")
    op.create_index(COHORT, "imaging_series", ["modality_id", "body_part_examined_id", *AFTER])
    with op.batch_alter_table("imaging_series", schema=None) as batch_op:
        batch_op.drop_column("slice_thickness")
