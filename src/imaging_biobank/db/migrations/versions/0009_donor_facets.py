"""donor facets: the values each donor has for the catalogue's facets, derived by the writers
with the collections' descriptors (facet counts then group these rows)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22

Empty after the upgrade: the first write that derives descriptors fills it for every donor,
and until then facets are counted from the data itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "donor_facet",
        sa.Column("facet", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("sample_donor_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_donor_id"],
            ["sample_donor.id"],
            name=op.f("fk_donor_facet_sample_donor_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("facet", "value", "sample_donor_id", name=op.f("pk_donor_facet")),
    )
    with op.batch_alter_table("donor_facet", schema=None) as batch_op:
        batch_op.create_index(
            "ix_donor_facet_donor", ["sample_donor_id", "facet", "value"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("donor_facet", schema=None) as batch_op:
        batch_op.drop_index("ix_donor_facet_donor")

    op.drop_table("donor_facet")
