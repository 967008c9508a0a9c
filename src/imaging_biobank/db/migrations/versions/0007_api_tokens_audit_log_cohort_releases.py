"""api tokens, audit log, cohort releases

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('researcher', 'data_manager', 'admin')", name="role"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("name", name=op.f("uq_api_token_name")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_token_token_sha256")),
    )
    op.create_table(
        "cohort_release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("query_text", sa.Text(), nullable=False),
        sa.Column("query_json", JSON, nullable=False),
        sa.Column("purpose", JSON, nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("software_version", sa.String(length=32), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("donors", sa.Integer(), nullable=False),
        sa.Column("studies", sa.Integer(), nullable=False),
        sa.Column("series", sa.Integer(), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["previous_id"], ["cohort_release.id"], name=op.f("fk_cohort_release_previous_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_release")),
        sa.UniqueConstraint("identifier", name=op.f("uq_cohort_release_identifier")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_cohort_release_name_version")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("api_token_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("purpose", JSON, nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_token_id"],
            ["api_token.id"],
            name=op.f("fk_audit_log_api_token_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_log_api_token_id"), ["api_token_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "cohort_release_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cohort_release_id", sa.Integer(), nullable=False),
        sa.Column("donor", sa.String(length=255), nullable=False),
        sa.Column("collection", sa.String(length=255), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("body_part", sa.String(length=64), nullable=True),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_release_id"],
            ["cohort_release.id"],
            name=op.f("fk_cohort_release_series_cohort_release_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_release_series")),
        sa.UniqueConstraint(
            "cohort_release_id",
            "series_instance_uid",
            name=op.f("uq_cohort_release_series_cohort_release_id_series_instance_uid"),
        ),
    )
    with op.batch_alter_table("cohort_release_series", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cohort_release_series_cohort_release_id"),
            ["cohort_release_id"],
            unique=False,
        )

    op.create_table(
        "cohort_release_instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cohort_release_series_id", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["cohort_release_series_id"],
            ["cohort_release_series.id"],
            name=op.f("fk_cohort_release_instance_cohort_release_series_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_release_instance")),
        sa.UniqueConstraint(
            "cohort_release_series_id",
            "sop_instance_uid",
            name=op.f("uq_cohort_release_instance_cohort_release_series_id_so_e42d45e4"),
        ),
    )
    with op.batch_alter_table("cohort_release_instance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cohort_release_instance_cohort_release_series_id"),
            ["cohort_release_series_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("cohort_release_instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_release_instance_cohort_release_series_id"))

    op.drop_table("cohort_release_instance")
    with op.batch_alter_table("cohort_release_series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_release_series_cohort_release_id"))

    op.drop_table("cohort_release_series")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index(batch_op.f("ix_audit_log_api_token_id"))

    op.drop_table("audit_log")
    op.drop_table("cohort_release")
    op.drop_table("api_token")
