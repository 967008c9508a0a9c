"""load the shipped vocabulary editions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

from imaging_biobank.db.vocabulary_load import load_vocabularies

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The editions this revision loads (see vocab/data/vocabularies.toml). A later change to
# a file, or a new edition, gets a revision of its own that names it.
EDITIONS = [
    "country.iso3166",
    "sex.miabis",
    "age-unit.miabis",
    "data-category.miabis-2.0",
    "collection-category.miabis-2.0",
    "inclusion-criterion.miabis-2.0",
    "material-type.miabis-2.0",
    "material-type.miabis-2020",
    "storage-temperature.miabis-2.0",
    "storage-temperature.miabis-2020",
    "sample-source.miabis-2020",
    "use-access-condition.miabis-2020",
    "miabis-dataset-type.miabis-3.0",
    "disease.icd-10",
    "body-part-examined.annex-l",
    "body-part-examined.primage",
    "dataset-type.pydicom",
    "dataset-type.primage",
    "modality.cid33",
    "modality.primage",
    "modality.retired",
    "segmentation-type.dicom",
]


def upgrade() -> None:
    load_vocabularies(op.get_bind(), EDITIONS)


def downgrade() -> None:
    bind = op.get_bind()
    for table in sorted({name.split(".")[0].replace("-", "_") for name in EDITIONS}):
        bind.exec_driver_sql(f"UPDATE {table} SET maps_to_id = NULL")
        bind.exec_driver_sql(f"DELETE FROM {table}")
    bind.exec_driver_sql("DELETE FROM vocabulary")
