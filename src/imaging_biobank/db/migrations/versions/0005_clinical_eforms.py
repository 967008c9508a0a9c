"""clinical e-forms: form definitions from REDCap data dictionaries, records and values

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
NOW = sa.text("(CURRENT_TIMESTAMP)")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "e_form",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("dictionary_file", sa.String(length=255), nullable=False),
        sa.Column("dictionary_sha256", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["clinical_variable_collection.id"],
            name="fk_e_form_collection_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_e_form"),
        sa.UniqueConstraint("collection_id", "name", name="uq_e_form_collection_id_name"),
    )
    op.create_table(
        "e_form_field",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("e_form_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("section_header", sa.Text(), nullable=True),
        sa.Column("field_type", sa.String(length=16), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("validation_type", sa.String(length=32), nullable=True),
        sa.Column("min_value", sa.String(length=64), nullable=True),
        sa.Column("max_value", sa.String(length=64), nullable=True),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("identifier", sa.Boolean(), nullable=False),
        sa.Column("branching_logic", sa.Text(), nullable=True),
        sa.Column("branching_evaluated", sa.Boolean(), nullable=False),
        sa.Column("branching_note", sa.Text(), nullable=True),
        sa.Column("choices", JSON, nullable=True),
        sa.Column("calculation", sa.Text(), nullable=True),
        sa.Column("annotation", sa.Text(), nullable=True),
        sa.Column("code_system", sa.String(length=255), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.Column("value_set", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["e_form_id"], ["e_form.id"], name="fk_e_form_field_e_form_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_e_form_field"),
        sa.UniqueConstraint("e_form_id", "name", name="uq_e_form_field_e_form_id_name"),
    )
    op.create_table(
        "clinical_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("e_form_id", sa.Integer(), nullable=False),
        sa.Column("sample_donor_id", sa.Integer(), nullable=False),
        sa.Column("record_key", sa.String(length=32), nullable=False),
        sa.Column("event_name", sa.String(length=100), nullable=True),
        sa.Column("repeat_instance", sa.Integer(), nullable=True),
        sa.Column("completion", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["clinical_variable_collection.id"],
            name="fk_clinical_record_collection_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["e_form_id"], ["e_form.id"], name="fk_clinical_record_e_form_id", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sample_donor_id"], ["sample_donor.id"], name="fk_clinical_record_sample_donor_id"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_clinical_record"),
        sa.UniqueConstraint(
            "collection_id",
            "e_form_id",
            "record_key",
            name="uq_clinical_record_collection_id_e_form_id_record_key",
        ),
    )
    op.create_index("ix_clinical_record_e_form_id", "clinical_record", ["e_form_id"])
    op.create_index("ix_clinical_record_sample_donor_id", "clinical_record", ["sample_donor_id"])
    op.create_table(
        "clinical_value",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinical_record_id", sa.Integer(), nullable=False),
        sa.Column("e_form_field_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("value_number", sa.Float(), nullable=True),
        sa.Column("value_date", sa.String(length=32), nullable=True),
        sa.Column("value_code", sa.String(length=64), nullable=True),
        sa.Column("code_system", sa.String(length=255), nullable=True),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinical_record_id"],
            ["clinical_record.id"],
            name="fk_clinical_value_clinical_record_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["e_form_field_id"],
            ["e_form_field.id"],
            name="fk_clinical_value_e_form_field_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_clinical_value"),
        sa.UniqueConstraint(
            "clinical_record_id",
            "e_form_field_id",
            "item",
            name="uq_clinical_value_clinical_record_id_e_form_field_id_item",
        ),
    )
    op.create_index("ix_clinical_value_e_form_field_id", "clinical_value", ["e_form_field_id"])


def downgrade() -> None:
    op.drop_index("ix_clinical_value_e_form_field_id", table_name="clinical_value")
    op.drop_table("clinical_value")
    op.drop_index("ix_clinical_record_sample_donor_id", table_name="clinical_record")
    op.drop_index("ix_clinical_record_e_form_id", table_name="clinical_record")
    op.drop_table("clinical_record")
    op.drop_table("e_form_field")
    op.drop_table("e_form")
