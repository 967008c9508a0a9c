"""the individual level: donor consent, collection membership, molecular biomarker results,
HGNC genes, GA4GH DUO and ORPHA codes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from imaging_biobank.db.vocabulary_load import load_vocabularies

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
NOW = sa.text("(CURRENT_TIMESTAMP)")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# use-access-condition.miabis-2020 gained its `restricts` column and sex.miabis the
# synonyms M and F: loaded again
EDITIONS = [
    "sex.miabis",
    "use-access-condition.miabis-2020",
    "use-access-condition.duo",
    "disease.orphanet",
    "gene.hgnc-mii-cgp",
]


def _link(name: str, left: str, right: str) -> None:
    op.create_table(
        name,
        sa.Column(f"{left}_id", sa.Integer(), nullable=False),
        sa.Column(f"{right}_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            [f"{left}_id"], [f"{left}.id"], name=op.f(f"fk_{name}_{left}_id"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            [f"{right}_id"],
            [f"{right}.id"],
            name=op.f(f"fk_{name}_{right}_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(f"{left}_id", f"{right}_id", name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_{right}_id"), name, [f"{right}_id"])


def upgrade() -> None:
    op.add_column(
        "use_access_condition", sa.Column("restricts", sa.String(length=128), nullable=True)
    )
    op.add_column("collection", sa.Column("donor_age_low_years", sa.Float(), nullable=True))
    op.add_column("collection", sa.Column("donor_age_high_years", sa.Float(), nullable=True))
    op.create_table(
        "gene",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column("synonyms", JSON, nullable=True),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["maps_to_id"], ["gene.id"], name=op.f("fk_gene_maps_to_id")),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_gene_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gene")),
        sa.UniqueConstraint("vocabulary_id", "code", name=op.f("uq_gene_vocabulary_id_code")),
    )
    op.create_index(op.f("ix_gene_vocabulary_id"), "gene", ["vocabulary_id"])
    _link("sample_donor_use_access_condition", "sample_donor", "use_access_condition")
    _link("collection_sample_donor", "collection", "sample_donor")
    op.create_table(
        "molecular_biomarker_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("sample_donor_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("biomarker", sa.String(length=255), nullable=False),
        sa.Column("gene_id", sa.Integer(), nullable=True),
        sa.Column("gene_symbol", sa.String(length=64), nullable=True),
        sa.Column("loinc_code", sa.String(length=16), nullable=True),
        sa.Column("alteration", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=255), nullable=True),
        sa.Column("value_number", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.Column("value_category", sa.String(length=128), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("result_date", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "value_number IS NOT NULL OR value_category IS NOT NULL OR value_text IS NOT NULL",
            name="has_value",
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["molecular_biomarker_collection.id"],
            name=op.f("fk_molecular_biomarker_result_collection_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["gene_id"], ["gene.id"], name=op.f("fk_molecular_biomarker_result_gene_id")
        ),
        sa.ForeignKeyConstraint(
            ["sample_donor_id"],
            ["sample_donor.id"],
            name=op.f("fk_molecular_biomarker_result_sample_donor_id"),
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.id"], name=op.f("fk_molecular_biomarker_result_sample_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_molecular_biomarker_result")),
        sa.UniqueConstraint(
            "collection_id",
            "identifier",
            name=op.f("uq_molecular_biomarker_result_collection_id_identifier"),
        ),
    )
    for column in (
        "biomarker",
        "collection_id",
        "gene_id",
        "loinc_code",
        "sample_donor_id",
        "sample_id",
        "value_category",
    ):
        op.create_index(
            op.f(f"ix_molecular_biomarker_result_{column}"), "molecular_biomarker_result", [column]
        )
    load_vocabularies(op.get_bind(), EDITIONS)


def downgrade() -> None:
    op.drop_table("molecular_biomarker_result")
    op.drop_table("collection_sample_donor")
    op.drop_table("sample_donor_use_access_condition")
    op.drop_table("gene")
    with op.batch_alter_table("collection") as batch_op:
        batch_op.drop_column("donor_age_high_years")
        batch_op.drop_column("donor_age_low_years")
    with op.batch_alter_table("use_access_condition") as batch_op:
        batch_op.drop_column("restricts")
