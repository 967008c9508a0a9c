"""image analysis runs with provenance: run types and input series, segmentation sources and
sizes, quantitative/qualitative biomarkers, SR-reported biomarkers, harmonised values

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FEATURE_KINDS = "'textural', 'deep', 'dynamic_signal', 'reported'"
OLD_FEATURE_KINDS = "'textural', 'deep', 'dynamic_signal'"
ANALYSIS_TYPES = (
    "'radiomics', 'radiomics_import', 'segmentation_import', 'registration_import',"
    " 'structured_report_import', 'deep_features_import', 'dynamic_signal', 'harmonisation',"
    " 'simulation'"
)


def upgrade() -> None:
    op.create_table(
        "image_analysis_imaging_series",
        sa.Column("image_analysis_id", sa.Integer(), nullable=False),
        sa.Column("imaging_series_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_analysis_id"],
            ["image_analysis.id"],
            name=op.f("fk_image_analysis_imaging_series_image_analysis_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["imaging_series_id"],
            ["imaging_series.id"],
            name=op.f("fk_image_analysis_imaging_series_imaging_series_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "image_analysis_id", "imaging_series_id", name=op.f("pk_image_analysis_imaging_series")
        ),
    )
    op.create_index(
        op.f("ix_image_analysis_imaging_series_imaging_series_id"),
        "image_analysis_imaging_series",
        ["imaging_series_id"],
    )
    op.create_table(
        "harmonised_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("imaging_biomarker_id", sa.Integer(), nullable=False),
        sa.Column("image_analysis_id", sa.Integer(), nullable=False),
        sa.Column("batch", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_analysis_id"],
            ["image_analysis.id"],
            name=op.f("fk_harmonised_value_image_analysis_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["imaging_biomarker_id"],
            ["imaging_biomarker.id"],
            name=op.f("fk_harmonised_value_imaging_biomarker_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harmonised_value")),
        sa.UniqueConstraint(
            "imaging_biomarker_id",
            "image_analysis_id",
            name=op.f("uq_harmonised_value_imaging_biomarker_id_image_analysis_id"),
        ),
    )
    op.create_index(
        op.f("ix_harmonised_value_image_analysis_id"), "harmonised_value", ["image_analysis_id"]
    )
    op.create_index(
        op.f("ix_harmonised_value_imaging_biomarker_id"),
        "harmonised_value",
        ["imaging_biomarker_id"],
    )
    op.create_table(
        "reported_biomarker",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sr_sop_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("tracking_identifier", sa.String(length=255), nullable=True),
        sa.Column("tracking_uid", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"],
            ["imaging_biomarker.id"],
            name=op.f("fk_reported_biomarker_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reported_biomarker")),
    )
    op.create_index(
        op.f("ix_reported_biomarker_sr_sop_instance_uid"),
        "reported_biomarker",
        ["sr_sop_instance_uid"],
    )
    with op.batch_alter_table("image_analysis") as batch_op:
        batch_op.add_column(sa.Column("analysis_type", sa.String(length=32), nullable=True))
        batch_op.create_index(op.f("ix_image_analysis_analysis_type"), ["analysis_type"])
        batch_op.create_check_constraint(
            "analysis_type", f"analysis_type IS NULL OR analysis_type IN ({ANALYSIS_TYPES})"
        )
    # SQLite's batch mode rebuilds the table from its reflection, which has no CHECK
    # constraints: the old kind check is gone with the rebuild; elsewhere it is dropped
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "imaging_biomarker", recreate="always" if sqlite else "auto"
    ) as batch_op:
        batch_op.add_column(
            sa.Column(
                "value_type", sa.String(length=16), server_default="quantitative", nullable=False
            )
        )
        if not sqlite:
            batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({FEATURE_KINDS})")
        batch_op.create_check_constraint(
            "value_type", "value_type IN ('quantitative', 'qualitative')"
        )
    with op.batch_alter_table("segmentation") as batch_op:
        batch_op.add_column(sa.Column("source_sop_instance_uid", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("source_location", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("voxel_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("volume_mm3", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("mask_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index(
            op.f("ix_segmentation_source_sop_instance_uid"), ["source_sop_instance_uid"]
        )


def downgrade() -> None:
    with op.batch_alter_table("segmentation") as batch_op:
        batch_op.drop_index(op.f("ix_segmentation_source_sop_instance_uid"))
        for column in (
            "mask_sha256",
            "volume_mm3",
            "voxel_count",
            "source_location",
            "source_sop_instance_uid",
        ):
            batch_op.drop_column(column)
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "imaging_biomarker", recreate="always" if sqlite else "auto"
    ) as batch_op:
        if not sqlite:
            batch_op.drop_constraint("value_type", type_="check")
            batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({OLD_FEATURE_KINDS})")
        batch_op.drop_column("value_type")
    with op.batch_alter_table("image_analysis") as batch_op:
        if not sqlite:
            batch_op.drop_constraint("analysis_type", type_="check")
        batch_op.drop_index(op.f("ix_image_analysis_analysis_type"))
        batch_op.drop_column("analysis_type")
    op.drop_table("reported_biomarker")
    op.drop_table("harmonised_value")
    op.drop_table("image_analysis_imaging_series")
