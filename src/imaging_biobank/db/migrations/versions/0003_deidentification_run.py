"""audit records of de-identifying runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deidentification_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("command", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("os_user", sa.String(length=128), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("uid_root", sa.String(length=64), nullable=False),
        sa.Column("accept_burned_in", sa.Boolean(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=32), nullable=False),
        sa.Column("profile_edition", sa.String(length=255), nullable=False),
        sa.Column("tool_version", sa.String(length=32), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collection.id"],
            name="fk_deidentification_run_collection_id",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deidentification_run"),
    )
    op.create_index(
        "ix_deidentification_run_collection_id", "deidentification_run", ["collection_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_deidentification_run_collection_id", table_name="deidentification_run")
    op.drop_table("deidentification_run")
