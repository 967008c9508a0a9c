"""the DICOM-MIABIS schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "algorithm",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_algorithm")),
        sa.UniqueConstraint("name", name=op.f("uq_algorithm_name")),
    )
    op.create_table(
        "imaging_study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("study_description", sa.Text(), nullable=True),
        sa.Column("patient_age_years", sa.Float(), nullable=True),
        sa.Column("patient_weight_kg", sa.Float(), nullable=True),
        sa.Column("patient_size_m", sa.Float(), nullable=True),
        sa.Column("number_of_series", sa.Integer(), nullable=True),
        sa.Column("number_of_instances", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_study")),
        sa.UniqueConstraint("study_instance_uid", name=op.f("uq_imaging_study_study_instance_uid")),
    )
    op.create_table(
        "preprocessing_parameters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=255), nullable=True),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("derivation_code_scheme", sa.String(length=16), nullable=True),
        sa.Column("derivation_code", sa.String(length=64), nullable=True),
        sa.Column("derivation_code_meaning", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preprocessing_parameters")),
    )
    op.create_table(
        "vocabulary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("edition", sa.String(length=255), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("licence", sa.String(length=255), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column(
            "loaded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vocabulary")),
        sa.UniqueConstraint("name", name=op.f("uq_vocabulary_name")),
    )
    op.create_table(
        "age_unit",
        sa.Column("ucum_code", sa.String(length=16), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"], ["age_unit.id"], name=op.f("fk_age_unit_maps_to_id")
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_age_unit_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_age_unit")),
        sa.UniqueConstraint("vocabulary_id", "code", name=op.f("uq_age_unit_vocabulary_id_code")),
    )
    with op.batch_alter_table("age_unit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_age_unit_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "body_part_examined",
        sa.Column("snomed_code", sa.String(length=32), nullable=True),
        sa.Column("laterality_paired", sa.Boolean(), nullable=True),
        sa.Column(
            "legacy_snomed_codes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"], ["body_part_examined.id"], name=op.f("fk_body_part_examined_maps_to_id")
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_body_part_examined_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_body_part_examined")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_body_part_examined_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("body_part_examined", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_body_part_examined_snomed_code"), ["snomed_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_body_part_examined_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "collection_category",
        sa.Column("ontology_code", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"],
            ["collection_category.id"],
            name=op.f("fk_collection_category_maps_to_id"),
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_collection_category_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_category")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_collection_category_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("collection_category", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collection_category_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "country",
        sa.Column("alpha3", sa.String(length=3), nullable=True),
        sa.Column("numeric", sa.String(length=3), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["maps_to_id"], ["country.id"], name=op.f("fk_country_maps_to_id")),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_country_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_country")),
        sa.UniqueConstraint("vocabulary_id", "code", name=op.f("uq_country_vocabulary_id_code")),
    )
    with op.batch_alter_table("country", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_country_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "data_category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"], ["data_category.id"], name=op.f("fk_data_category_maps_to_id")
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_data_category_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_category")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_data_category_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("data_category", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_category_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "dataset_type",
        sa.Column("keyword", sa.String(length=128), nullable=True),
        sa.Column("iod", sa.String(length=255), nullable=True),
        sa.Column("retired", sa.Boolean(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"], ["dataset_type.id"], name=op.f("fk_dataset_type_maps_to_id")
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_dataset_type_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_type")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_dataset_type_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("dataset_type", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_type_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "disease",
        sa.Column("uri", sa.String(length=255), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["maps_to_id"], ["disease.id"], name=op.f("fk_disease_maps_to_id")),
        sa.ForeignKeyConstraint(["parent_id"], ["disease.id"], name=op.f("fk_disease_parent_id")),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_disease_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disease")),
        sa.UniqueConstraint("vocabulary_id", "code", name=op.f("uq_disease_vocabulary_id_code")),
    )
    with op.batch_alter_table("disease", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disease_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_disease_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "inclusion_criterion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"],
            ["inclusion_criterion.id"],
            name=op.f("fk_inclusion_criterion_maps_to_id"),
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_inclusion_criterion_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inclusion_criterion")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_inclusion_criterion_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("inclusion_criterion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inclusion_criterion_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "material_type",
        sa.Column("bbmri_de_code", sa.String(length=64), nullable=True),
        sa.Column("miabis_fhir_code", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"], ["material_type.id"], name=op.f("fk_material_type_maps_to_id")
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_material_type_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_material_type")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_material_type_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("material_type", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_material_type_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "miabis_dataset_type",
        sa.Column("miabis_fhir_code", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"],
            ["miabis_dataset_type.id"],
            name=op.f("fk_miabis_dataset_type_maps_to_id"),
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_miabis_dataset_type_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miabis_dataset_type")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_miabis_dataset_type_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("miabis_dataset_type", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_miabis_dataset_type_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "modality",
        sa.Column("context_groups", sa.String(length=64), nullable=True),
        sa.Column("retired", sa.Boolean(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"], ["modality.id"], name=op.f("fk_modality_maps_to_id")
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_modality_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modality")),
        sa.UniqueConstraint("vocabulary_id", "code", name=op.f("uq_modality_vocabulary_id_code")),
    )
    with op.batch_alter_table("modality", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_modality_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "sample_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"], ["sample_source.id"], name=op.f("fk_sample_source_maps_to_id")
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_sample_source_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_source")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_sample_source_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("sample_source", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sample_source_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "segmentation_type",
        sa.Column("dicom_attribute", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"], ["segmentation_type.id"], name=op.f("fk_segmentation_type_maps_to_id")
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_segmentation_type_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segmentation_type")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_segmentation_type_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("segmentation_type", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segmentation_type_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "sex",
        sa.Column("bbmri_de_code", sa.String(length=64), nullable=True),
        sa.Column("fhir_code", sa.String(length=64), nullable=True),
        sa.Column("miabis_fhir_code", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["maps_to_id"], ["sex.id"], name=op.f("fk_sex_maps_to_id")),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_sex_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sex")),
        sa.UniqueConstraint("vocabulary_id", "code", name=op.f("uq_sex_vocabulary_id_code")),
    )
    with op.batch_alter_table("sex", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sex_vocabulary_id"), ["vocabulary_id"], unique=False)

    op.create_table(
        "storage_temperature",
        sa.Column("bbmri_de_code", sa.String(length=64), nullable=True),
        sa.Column("miabis_fhir_code", sa.String(length=64), nullable=True),
        sa.Column("min_celsius", sa.Float(), nullable=True),
        sa.Column("max_celsius", sa.Float(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"],
            ["storage_temperature.id"],
            name=op.f("fk_storage_temperature_maps_to_id"),
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_storage_temperature_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_temperature")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_storage_temperature_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("storage_temperature", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_storage_temperature_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "use_access_condition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("directory_id", sa.String(length=128), nullable=True),
        sa.Column(
            "synonyms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vocabulary_id", sa.Integer(), nullable=False),
        sa.Column("maps_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["maps_to_id"],
            ["use_access_condition.id"],
            name=op.f("fk_use_access_condition_maps_to_id"),
        ),
        sa.ForeignKeyConstraint(
            ["vocabulary_id"], ["vocabulary.id"], name=op.f("fk_use_access_condition_vocabulary_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_use_access_condition")),
        sa.UniqueConstraint(
            "vocabulary_id", "code", name=op.f("uq_use_access_condition_vocabulary_id_code")
        ),
    )
    with op.batch_alter_table("use_access_condition", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_use_access_condition_vocabulary_id"), ["vocabulary_id"], unique=False
        )

    op.create_table(
        "contact_information",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("role", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("address", sa.String(length=1024), nullable=True),
        sa.Column("zip", sa.String(length=32), nullable=True),
        sa.Column("city", sa.String(length=255), nullable=True),
        sa.Column("country_id", sa.Integer(), nullable=True),
        sa.Column("juristic_person", sa.String(length=512), nullable=True),
        sa.Column("department", sa.String(length=512), nullable=True),
        sa.Column("orcid", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["country_id"], ["country.id"], name=op.f("fk_contact_information_country_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_information")),
        sa.UniqueConstraint("identifier", name=op.f("uq_contact_information_identifier")),
    )
    op.create_table(
        "juristic_person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=True),
        sa.Column("url", sa.String(length=1024), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["country_id"], ["country.id"], name=op.f("fk_juristic_person_country_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_juristic_person")),
        sa.UniqueConstraint("name", name=op.f("uq_juristic_person_name")),
    )
    op.create_table(
        "modality_information",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("modality_id", sa.Integer(), nullable=True),
        sa.Column("manufacturer", sa.String(length=255), nullable=True),
        sa.Column("manufacturer_model_name", sa.String(length=255), nullable=True),
        sa.Column("software_versions", sa.String(length=512), nullable=True),
        sa.Column("device_serial_number", sa.String(length=255), nullable=True),
        sa.Column("station_name", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["modality_id"], ["modality.id"], name=op.f("fk_modality_information_modality_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modality_information")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_modality_information_fingerprint")),
    )
    with op.batch_alter_table("modality_information", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_modality_information_modality_id"), ["modality_id"], unique=False
        )

    op.create_table(
        "sample_donor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("sex_id", sa.Integer(), nullable=False),
        sa.Column("birth_date", sa.String(length=32), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["sex_id"], ["sex.id"], name=op.f("fk_sample_donor_sex_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_donor")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_sample_donor_pseudonym")),
    )
    op.create_table(
        "biobank",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("acronym", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=True),
        sa.Column("juristic_person_id", sa.Integer(), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact_information.id"], name=op.f("fk_biobank_contact_id")
        ),
        sa.ForeignKeyConstraint(["country_id"], ["country.id"], name=op.f("fk_biobank_country_id")),
        sa.ForeignKeyConstraint(
            ["juristic_person_id"],
            ["juristic_person.id"],
            name=op.f("fk_biobank_juristic_person_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_biobank")),
        sa.UniqueConstraint("identifier", name=op.f("uq_biobank_identifier")),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("sample_donor_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("event_date", sa.String(length=32), nullable=True),
        sa.Column("age_at_event", sa.Float(), nullable=True),
        sa.Column("age_unit_id", sa.Integer(), nullable=True),
        sa.Column("disease_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint("age_at_event IS NULL OR age_unit_id IS NOT NULL", name="age_unit"),
        sa.CheckConstraint("event_date IS NULL OR age_at_event IS NULL", name="date_or_age"),
        sa.ForeignKeyConstraint(
            ["age_unit_id"], ["age_unit.id"], name=op.f("fk_event_age_unit_id")
        ),
        sa.ForeignKeyConstraint(["disease_id"], ["disease.id"], name=op.f("fk_event_disease_id")),
        sa.ForeignKeyConstraint(
            ["sample_donor_id"], ["sample_donor.id"], name=op.f("fk_event_sample_donor_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event")),
        sa.UniqueConstraint("identifier", name=op.f("uq_event_identifier")),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_disease_id"), ["disease_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_event_type"), ["event_type"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_event_sample_donor_id"), ["sample_donor_id"], unique=False
        )

    op.create_table(
        "sample_donor_miabis_dataset_type",
        sa.Column("sample_donor_id", sa.Integer(), nullable=False),
        sa.Column("miabis_dataset_type_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["miabis_dataset_type_id"],
            ["miabis_dataset_type.id"],
            name=op.f("fk_sample_donor_miabis_dataset_type_miabis_dataset_type_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sample_donor_id"],
            ["sample_donor.id"],
            name=op.f("fk_sample_donor_miabis_dataset_type_sample_donor_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "sample_donor_id",
            "miabis_dataset_type_id",
            name=op.f("pk_sample_donor_miabis_dataset_type"),
        ),
    )
    with op.batch_alter_table("sample_donor_miabis_dataset_type", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sample_donor_miabis_dataset_type_miabis_dataset_type_id"),
            ["miabis_dataset_type_id"],
            unique=False,
        )

    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("principal_investigator_id", sa.Integer(), nullable=True),
        sa.Column("age_low", sa.Float(), nullable=True),
        sa.Column("age_high", sa.Float(), nullable=True),
        sa.Column("age_unit_id", sa.Integer(), nullable=True),
        sa.Column("total_participants", sa.Integer(), nullable=True),
        sa.Column("total_donors", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(age_low IS NULL AND age_high IS NULL) OR age_unit_id IS NOT NULL", name="age_unit"
        ),
        sa.CheckConstraint(
            "age_low IS NULL OR age_high IS NULL OR age_low <= age_high", name="age_range"
        ),
        sa.ForeignKeyConstraint(
            ["age_unit_id"], ["age_unit.id"], name=op.f("fk_study_age_unit_id")
        ),
        sa.ForeignKeyConstraint(
            ["principal_investigator_id"],
            ["contact_information.id"],
            name=op.f("fk_study_principal_investigator_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study")),
        sa.UniqueConstraint("identifier", name=op.f("uq_study_identifier")),
    )
    op.create_table(
        "collection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("biobank_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("acronym", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("url", sa.String(length=1024), nullable=True),
        sa.Column("parent_collection_id", sa.Integer(), nullable=True),
        sa.Column("age_low", sa.Float(), nullable=True),
        sa.Column("age_high", sa.Float(), nullable=True),
        sa.Column("age_unit_id", sa.Integer(), nullable=True),
        sa.Column("access_fee", sa.Boolean(), nullable=True),
        sa.Column("access_joint_project", sa.Boolean(), nullable=True),
        sa.Column("access_description", sa.Text(), nullable=True),
        sa.Column("access_uri", sa.String(length=1024), nullable=True),
        sa.Column("collaboration_commercial", sa.Boolean(), nullable=True),
        sa.Column("collaboration_non_for_profit", sa.Boolean(), nullable=True),
        sa.Column("number_of_donors", sa.Integer(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('image', 'sample_tissue', 'clinical_variable', 'molecular_biomarker', 'software_source_code')",
            name="kind",
        ),
        sa.CheckConstraint(
            "(age_low IS NULL AND age_high IS NULL) OR age_unit_id IS NOT NULL", name="age_unit"
        ),
        sa.CheckConstraint(
            "age_low IS NULL OR age_high IS NULL OR age_low <= age_high", name="age_range"
        ),
        sa.ForeignKeyConstraint(
            ["age_unit_id"], ["age_unit.id"], name=op.f("fk_collection_age_unit_id")
        ),
        sa.ForeignKeyConstraint(
            ["biobank_id"], ["biobank.id"], name=op.f("fk_collection_biobank_id")
        ),
        sa.ForeignKeyConstraint(
            ["parent_collection_id"],
            ["collection.id"],
            name=op.f("fk_collection_parent_collection_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection")),
        sa.UniqueConstraint("identifier", name=op.f("uq_collection_identifier")),
    )
    with op.batch_alter_table("collection", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collection_biobank_id"), ["biobank_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_collection_kind"), ["kind"], unique=False)

    op.create_table(
        "study_collection_category",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("collection_category_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_category_id"],
            ["collection_category.id"],
            name=op.f("fk_study_collection_category_collection_category_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study.id"],
            name=op.f("fk_study_collection_category_study_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "study_id", "collection_category_id", name=op.f("pk_study_collection_category")
        ),
    )
    with op.batch_alter_table("study_collection_category", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_collection_category_collection_category_id"),
            ["collection_category_id"],
            unique=False,
        )

    op.create_table(
        "study_contact_information",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("contact_information_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_information_id"],
            ["contact_information.id"],
            name=op.f("fk_study_contact_information_contact_information_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study.id"],
            name=op.f("fk_study_contact_information_study_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "study_id", "contact_information_id", name=op.f("pk_study_contact_information")
        ),
    )
    with op.batch_alter_table("study_contact_information", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_contact_information_contact_information_id"),
            ["contact_information_id"],
            unique=False,
        )

    op.create_table(
        "study_data_category",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("data_category_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_category_id"],
            ["data_category.id"],
            name=op.f("fk_study_data_category_data_category_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study.id"],
            name=op.f("fk_study_data_category_study_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "study_id", "data_category_id", name=op.f("pk_study_data_category")
        ),
    )
    with op.batch_alter_table("study_data_category", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_data_category_data_category_id"),
            ["data_category_id"],
            unique=False,
        )

    op.create_table(
        "study_inclusion_criterion",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("inclusion_criterion_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inclusion_criterion_id"],
            ["inclusion_criterion.id"],
            name=op.f("fk_study_inclusion_criterion_inclusion_criterion_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study.id"],
            name=op.f("fk_study_inclusion_criterion_study_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "study_id", "inclusion_criterion_id", name=op.f("pk_study_inclusion_criterion")
        ),
    )
    with op.batch_alter_table("study_inclusion_criterion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_inclusion_criterion_inclusion_criterion_id"),
            ["inclusion_criterion_id"],
            unique=False,
        )

    op.create_table(
        "study_material_type",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("material_type_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["material_type_id"],
            ["material_type.id"],
            name=op.f("fk_study_material_type_material_type_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study.id"],
            name=op.f("fk_study_material_type_study_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "study_id", "material_type_id", name=op.f("pk_study_material_type")
        ),
    )
    with op.batch_alter_table("study_material_type", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_material_type_material_type_id"),
            ["material_type_id"],
            unique=False,
        )

    op.create_table(
        "study_sex",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("sex_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sex_id"], ["sex.id"], name=op.f("fk_study_sex_sex_id"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_study_sex_study_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("study_id", "sex_id", name=op.f("pk_study_sex")),
    )
    with op.batch_alter_table("study_sex", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_sex_sex_id"), ["sex_id"], unique=False)

    op.create_table(
        "clinical_variable_collection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"],
            ["collection.id"],
            name=op.f("fk_clinical_variable_collection_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinical_variable_collection")),
    )
    op.create_table(
        "collection_collection_category",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("collection_category_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_category_id"],
            ["collection_category.id"],
            name=op.f("fk_collection_collection_category_collection_category_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collection.id"],
            name=op.f("fk_collection_collection_category_collection_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "collection_id",
            "collection_category_id",
            name=op.f("pk_collection_collection_category"),
        ),
    )
    with op.batch_alter_table("collection_collection_category", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collection_collection_category_collection_category_id"),
            ["collection_category_id"],
            unique=False,
        )

    op.create_table(
        "collection_contact_information",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("contact_information_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collection.id"],
            name=op.f("fk_collection_contact_information_collection_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_information_id"],
            ["contact_information.id"],
            name=op.f("fk_collection_contact_information_contact_information_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "collection_id",
            "contact_information_id",
            name=op.f("pk_collection_contact_information"),
        ),
    )
    with op.batch_alter_table("collection_contact_information", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collection_contact_information_contact_information_id"),
            ["contact_information_id"],
            unique=False,
        )

    op.create_table(
        "collection_data_category",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("data_category_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collection.id"],
            name=op.f("fk_collection_data_category_collection_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["data_category_id"],
            ["data_category.id"],
            name=op.f("fk_collection_data_category_data_category_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "collection_id", "data_category_id", name=op.f("pk_collection_data_category")
        ),
    )
    with op.batch_alter_table("collection_data_category", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collection_data_category_data_category_id"),
            ["data_category_id"],
            unique=False,
        )

    op.create_table(
        "collection_disease",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("disease_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.CheckConstraint("origin IN ('declared', 'derived')", name="origin"),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collection.id"],
            name=op.f("fk_collection_disease_collection_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["disease_id"],
            ["disease.id"],
            name=op.f("fk_collection_disease_disease_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "collection_id", "disease_id", "origin", name=op.f("pk_collection_disease")
        ),
    )
    with op.batch_alter_table("collection_disease", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collection_disease_disease_id"), ["disease_id"], unique=False
        )

    op.create_table(
        "collection_sex",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("sex_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.CheckConstraint("origin IN ('declared', 'derived')", name="origin"),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collection.id"],
            name=op.f("fk_collection_sex_collection_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sex_id"], ["sex.id"], name=op.f("fk_collection_sex_sex_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "collection_id", "sex_id", "origin", name=op.f("pk_collection_sex")
        ),
    )
    with op.batch_alter_table("collection_sex", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collection_sex_sex_id"), ["sex_id"], unique=False)

    op.create_table(
        "image_collection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dicomweb_url", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"], ["collection.id"], name=op.f("fk_image_collection_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_collection")),
    )
    op.create_table(
        "molecular_biomarker_collection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"],
            ["collection.id"],
            name=op.f("fk_molecular_biomarker_collection_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_molecular_biomarker_collection")),
    )
    op.create_table(
        "sample_tissue_collection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"],
            ["collection.id"],
            name=op.f("fk_sample_tissue_collection_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_tissue_collection")),
    )
    op.create_table(
        "software_source_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_url", sa.String(length=1024), nullable=True),
        sa.Column("version", sa.String(length=128), nullable=True),
        sa.Column("licence", sa.String(length=128), nullable=True),
        sa.Column("programming_language", sa.String(length=128), nullable=True),
        sa.Column("persistent_identifier", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"], ["collection.id"], name=op.f("fk_software_source_code_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_software_source_code")),
    )
    op.create_table(
        "study_collection",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collection.id"],
            name=op.f("fk_study_collection_collection_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study.id"],
            name=op.f("fk_study_collection_study_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("study_id", "collection_id", name=op.f("pk_study_collection")),
    )
    with op.batch_alter_table("study_collection", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_collection_collection_id"), ["collection_id"], unique=False
        )

    op.create_table(
        "image_analysis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_collection_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("software_source_code_id", sa.Integer(), nullable=True),
        sa.Column("performed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "configuration",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["image_collection_id"],
            ["image_collection.id"],
            name=op.f("fk_image_analysis_image_collection_id"),
        ),
        sa.ForeignKeyConstraint(
            ["software_source_code_id"],
            ["software_source_code.id"],
            name=op.f("fk_image_analysis_software_source_code_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_analysis")),
    )
    with op.batch_alter_table("image_analysis", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_analysis_image_collection_id"),
            ["image_collection_id"],
            unique=False,
        )

    op.create_table(
        "image_collection_body_part_examined",
        sa.Column("image_collection_id", sa.Integer(), nullable=False),
        sa.Column("body_part_examined_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["body_part_examined_id"],
            ["body_part_examined.id"],
            name=op.f("fk_image_collection_body_part_examined_body_part_examined_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_collection_id"],
            ["image_collection.id"],
            name=op.f("fk_image_collection_body_part_examined_image_collection_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "image_collection_id",
            "body_part_examined_id",
            name=op.f("pk_image_collection_body_part_examined"),
        ),
    )
    with op.batch_alter_table("image_collection_body_part_examined", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_collection_body_part_examined_body_part_examined_id"),
            ["body_part_examined_id"],
            unique=False,
        )

    op.create_table(
        "image_collection_dataset_type",
        sa.Column("image_collection_id", sa.Integer(), nullable=False),
        sa.Column("dataset_type_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_type_id"],
            ["dataset_type.id"],
            name=op.f("fk_image_collection_dataset_type_dataset_type_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_collection_id"],
            ["image_collection.id"],
            name=op.f("fk_image_collection_dataset_type_image_collection_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "image_collection_id", "dataset_type_id", name=op.f("pk_image_collection_dataset_type")
        ),
    )
    with op.batch_alter_table("image_collection_dataset_type", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_collection_dataset_type_dataset_type_id"),
            ["dataset_type_id"],
            unique=False,
        )

    op.create_table(
        "image_collection_modality_information",
        sa.Column("image_collection_id", sa.Integer(), nullable=False),
        sa.Column("modality_information_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_collection_id"],
            ["image_collection.id"],
            name=op.f("fk_image_collection_modality_information_image_collection_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["modality_information_id"],
            ["modality_information.id"],
            name=op.f("fk_image_collection_modality_information_modality_info_86d5fc4d"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "image_collection_id",
            "modality_information_id",
            name=op.f("pk_image_collection_modality_information"),
        ),
    )
    with op.batch_alter_table("image_collection_modality_information", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_collection_modality_information_modality_info_ebe3575d"),
            ["modality_information_id"],
            unique=False,
        )

    op.create_table(
        "imaging_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("imaging_study_id", sa.Integer(), nullable=False),
        sa.Column("image_collection_id", sa.Integer(), nullable=False),
        sa.Column("sample_donor_id", sa.Integer(), nullable=False),
        sa.Column("modality_id", sa.Integer(), nullable=True),
        sa.Column("modality_value", sa.String(length=16), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.Text(), nullable=True),
        sa.Column("series_date", sa.Date(), nullable=True),
        sa.Column("body_part_examined_id", sa.Integer(), nullable=True),
        sa.Column("body_part_examined_value", sa.String(length=64), nullable=True),
        sa.Column("body_part_examined_flag", sa.String(length=32), nullable=True),
        sa.Column("anatomic_region_scheme", sa.String(length=16), nullable=True),
        sa.Column("anatomic_region_code", sa.String(length=64), nullable=True),
        sa.Column("anatomic_region_meaning", sa.String(length=255), nullable=True),
        sa.Column("laterality", sa.String(length=16), nullable=True),
        sa.Column("dataset_type_id", sa.Integer(), nullable=True),
        sa.Column("frame_of_reference_uid", sa.String(length=64), nullable=True),
        sa.Column("number_of_instances", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["body_part_examined_id"],
            ["body_part_examined.id"],
            name=op.f("fk_imaging_series_body_part_examined_id"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_type_id"], ["dataset_type.id"], name=op.f("fk_imaging_series_dataset_type_id")
        ),
        sa.ForeignKeyConstraint(
            ["image_collection_id"],
            ["image_collection.id"],
            name=op.f("fk_imaging_series_image_collection_id"),
        ),
        sa.ForeignKeyConstraint(
            ["imaging_study_id"],
            ["imaging_study.id"],
            name=op.f("fk_imaging_series_imaging_study_id"),
        ),
        sa.ForeignKeyConstraint(
            ["modality_id"], ["modality.id"], name=op.f("fk_imaging_series_modality_id")
        ),
        sa.ForeignKeyConstraint(
            ["sample_donor_id"], ["sample_donor.id"], name=op.f("fk_imaging_series_sample_donor_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_series")),
        sa.UniqueConstraint(
            "series_instance_uid", name=op.f("uq_imaging_series_series_instance_uid")
        ),
    )
    with op.batch_alter_table("imaging_series", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_imaging_series_dataset_type_id"), ["dataset_type_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_imaging_series_image_collection_id"),
            ["image_collection_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_imaging_series_imaging_study_id"), ["imaging_study_id"], unique=False
        )
        batch_op.create_index(
            "ix_imaging_series_modality_body_part",
            ["modality_id", "body_part_examined_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_imaging_series_sample_donor_id"), ["sample_donor_id"], unique=False
        )

    op.create_table(
        "sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("sample_donor_id", sa.Integer(), nullable=False),
        sa.Column("material_type_id", sa.Integer(), nullable=False),
        sa.Column("storage_temperature_id", sa.Integer(), nullable=True),
        sa.Column("creation_date", sa.String(length=32), nullable=True),
        sa.Column("anatomical_site_ontology", sa.String(length=64), nullable=True),
        sa.Column("anatomical_site_version", sa.String(length=64), nullable=True),
        sa.Column("anatomical_site_code", sa.String(length=64), nullable=True),
        sa.Column("anatomical_site_description", sa.String(length=255), nullable=True),
        sa.Column("anatomical_site_free_text", sa.Text(), nullable=True),
        sa.Column("sample_source_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(anatomical_site_code IS NULL AND anatomical_site_description IS NULL AND anatomical_site_free_text IS NULL) OR (anatomical_site_ontology IS NOT NULL AND anatomical_site_version IS NOT NULL)",
            name="anatomical_site_ontology",
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["sample_tissue_collection.id"], name=op.f("fk_sample_collection_id")
        ),
        sa.ForeignKeyConstraint(
            ["material_type_id"], ["material_type.id"], name=op.f("fk_sample_material_type_id")
        ),
        sa.ForeignKeyConstraint(
            ["sample_donor_id"], ["sample_donor.id"], name=op.f("fk_sample_sample_donor_id")
        ),
        sa.ForeignKeyConstraint(
            ["sample_source_id"], ["sample_source.id"], name=op.f("fk_sample_sample_source_id")
        ),
        sa.ForeignKeyConstraint(
            ["storage_temperature_id"],
            ["storage_temperature.id"],
            name=op.f("fk_sample_storage_temperature_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample")),
        sa.UniqueConstraint(
            "collection_id", "identifier", name=op.f("uq_sample_collection_id_identifier")
        ),
    )
    with op.batch_alter_table("sample", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sample_collection_id"), ["collection_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sample_material_type_id"), ["material_type_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sample_sample_donor_id"), ["sample_donor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sample_storage_temperature_id"), ["storage_temperature_id"], unique=False
        )

    op.create_table(
        "sample_tissue_collection_material_type",
        sa.Column("sample_tissue_collection_id", sa.Integer(), nullable=False),
        sa.Column("material_type_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.CheckConstraint("origin IN ('declared', 'derived')", name="origin"),
        sa.ForeignKeyConstraint(
            ["material_type_id"],
            ["material_type.id"],
            name=op.f("fk_sample_tissue_collection_material_type_material_type_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sample_tissue_collection_id"],
            ["sample_tissue_collection.id"],
            name=op.f("fk_sample_tissue_collection_material_type_sample_tissu_6c90ba18"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "sample_tissue_collection_id",
            "material_type_id",
            "origin",
            name=op.f("pk_sample_tissue_collection_material_type"),
        ),
    )
    with op.batch_alter_table("sample_tissue_collection_material_type", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sample_tissue_collection_material_type_material_type_id"),
            ["material_type_id"],
            unique=False,
        )

    op.create_table(
        "sample_tissue_collection_storage_temperature",
        sa.Column("sample_tissue_collection_id", sa.Integer(), nullable=False),
        sa.Column("storage_temperature_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.CheckConstraint("origin IN ('declared', 'derived')", name="origin"),
        sa.ForeignKeyConstraint(
            ["sample_tissue_collection_id"],
            ["sample_tissue_collection.id"],
            name=op.f("fk_sample_tissue_collection_storage_temperature_sample_e322eb8e"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["storage_temperature_id"],
            ["storage_temperature.id"],
            name=op.f("fk_sample_tissue_collection_storage_temperature_storag_0045c0c8"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "sample_tissue_collection_id",
            "storage_temperature_id",
            "origin",
            name=op.f("pk_sample_tissue_collection_storage_temperature"),
        ),
    )
    with op.batch_alter_table(
        "sample_tissue_collection_storage_temperature", schema=None
    ) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sample_tissue_collection_storage_temperature_storag_e5ebf94c"),
            ["storage_temperature_id"],
            unique=False,
        )

    op.create_table(
        "acquisition_parameters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("imaging_series_id", sa.Integer(), nullable=False),
        sa.Column("modality_information_id", sa.Integer(), nullable=True),
        sa.Column("slice_thickness", sa.Float(), nullable=True),
        sa.Column("slice_thickness_min", sa.Float(), nullable=True),
        sa.Column("slice_thickness_max", sa.Float(), nullable=True),
        sa.Column("spacing_between_slices", sa.Float(), nullable=True),
        sa.Column("spacing_between_slices_min", sa.Float(), nullable=True),
        sa.Column("spacing_between_slices_max", sa.Float(), nullable=True),
        sa.Column("pixel_spacing_row", sa.Float(), nullable=True),
        sa.Column("pixel_spacing_column", sa.Float(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("contrast_bolus_agent", sa.String(length=255), nullable=True),
        sa.Column("scan_options", sa.String(length=255), nullable=True),
        sa.Column("kvp", sa.Float(), nullable=True),
        sa.Column("kvp_min", sa.Float(), nullable=True),
        sa.Column("kvp_max", sa.Float(), nullable=True),
        sa.Column("xray_tube_current", sa.Float(), nullable=True),
        sa.Column("xray_tube_current_min", sa.Float(), nullable=True),
        sa.Column("xray_tube_current_max", sa.Float(), nullable=True),
        sa.Column("exposure", sa.Float(), nullable=True),
        sa.Column("exposure_min", sa.Float(), nullable=True),
        sa.Column("exposure_max", sa.Float(), nullable=True),
        sa.Column("exposure_time", sa.Float(), nullable=True),
        sa.Column("exposure_time_min", sa.Float(), nullable=True),
        sa.Column("exposure_time_max", sa.Float(), nullable=True),
        sa.Column("ctdi_vol", sa.Float(), nullable=True),
        sa.Column("ctdi_vol_min", sa.Float(), nullable=True),
        sa.Column("ctdi_vol_max", sa.Float(), nullable=True),
        sa.Column("magnetic_field_strength", sa.Float(), nullable=True),
        sa.Column("repetition_time", sa.Float(), nullable=True),
        sa.Column("repetition_time_min", sa.Float(), nullable=True),
        sa.Column("repetition_time_max", sa.Float(), nullable=True),
        sa.Column("echo_time", sa.Float(), nullable=True),
        sa.Column("echo_time_min", sa.Float(), nullable=True),
        sa.Column("echo_time_max", sa.Float(), nullable=True),
        sa.Column("inversion_time", sa.Float(), nullable=True),
        sa.Column("inversion_time_min", sa.Float(), nullable=True),
        sa.Column("inversion_time_max", sa.Float(), nullable=True),
        sa.Column("flip_angle", sa.Float(), nullable=True),
        sa.Column("flip_angle_min", sa.Float(), nullable=True),
        sa.Column("flip_angle_max", sa.Float(), nullable=True),
        sa.Column("scanning_sequence", sa.String(length=64), nullable=True),
        sa.Column("sequence_variant", sa.String(length=64), nullable=True),
        sa.Column("sequence_name", sa.String(length=64), nullable=True),
        sa.Column("mr_acquisition_type", sa.String(length=16), nullable=True),
        sa.Column("imaging_frequency", sa.Float(), nullable=True),
        sa.Column("radiopharmaceutical", sa.String(length=255), nullable=True),
        sa.Column("radiopharmaceutical_code", sa.String(length=64), nullable=True),
        sa.Column("radionuclide", sa.String(length=255), nullable=True),
        sa.Column("radionuclide_code", sa.String(length=64), nullable=True),
        sa.Column("radionuclide_total_dose", sa.Float(), nullable=True),
        sa.Column("radionuclide_half_life", sa.Float(), nullable=True),
        sa.Column("units", sa.String(length=16), nullable=True),
        sa.Column("decay_correction", sa.String(length=16), nullable=True),
        sa.Column("corrected_image", sa.String(length=128), nullable=True),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["imaging_series_id"],
            ["imaging_series.id"],
            name=op.f("fk_acquisition_parameters_imaging_series_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["modality_information_id"],
            ["modality_information.id"],
            name=op.f("fk_acquisition_parameters_modality_information_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acquisition_parameters")),
        sa.UniqueConstraint(
            "imaging_series_id", name=op.f("uq_acquisition_parameters_imaging_series_id")
        ),
    )
    with op.batch_alter_table("acquisition_parameters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_acquisition_parameters_modality_information_id"),
            ["modality_information_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_acquisition_parameters_slice_thickness", ["slice_thickness"], unique=False
        )

    op.create_table(
        "image_analysis_preprocessing_parameters",
        sa.Column("image_analysis_id", sa.Integer(), nullable=False),
        sa.Column("preprocessing_parameters_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_analysis_id"],
            ["image_analysis.id"],
            name=op.f("fk_image_analysis_preprocessing_parameters_image_analysis_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["preprocessing_parameters_id"],
            ["preprocessing_parameters.id"],
            name=op.f("fk_image_analysis_preprocessing_parameters_preprocessi_57a67654"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "image_analysis_id",
            "preprocessing_parameters_id",
            name=op.f("pk_image_analysis_preprocessing_parameters"),
        ),
    )
    with op.batch_alter_table("image_analysis_preprocessing_parameters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_analysis_preprocessing_parameters_preprocessi_6b7b19b5"),
            ["preprocessing_parameters_id"],
            unique=False,
        )

    op.create_table(
        "imaging_instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("imaging_series_id", sa.Integer(), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("dataset_type_id", sa.Integer(), nullable=True),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("number_of_frames", sa.Integer(), nullable=True),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["dataset_type_id"],
            ["dataset_type.id"],
            name=op.f("fk_imaging_instance_dataset_type_id"),
        ),
        sa.ForeignKeyConstraint(
            ["imaging_series_id"],
            ["imaging_series.id"],
            name=op.f("fk_imaging_instance_imaging_series_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_instance")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_imaging_instance_sop_instance_uid")),
    )
    with op.batch_alter_table("imaging_instance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_imaging_instance_imaging_series_id"), ["imaging_series_id"], unique=False
        )

    op.create_table(
        "reconstruction_parameters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("imaging_series_id", sa.Integer(), nullable=False),
        sa.Column("algorithm_id", sa.Integer(), nullable=True),
        sa.Column("convolution_kernel", sa.String(length=255), nullable=True),
        sa.Column("reconstruction_diameter", sa.Float(), nullable=True),
        sa.Column("reconstruction_diameter_min", sa.Float(), nullable=True),
        sa.Column("reconstruction_diameter_max", sa.Float(), nullable=True),
        sa.Column("reconstruction_algorithm", sa.String(length=64), nullable=True),
        sa.Column("reconstruction_method", sa.String(length=255), nullable=True),
        sa.Column("iterations", sa.Integer(), nullable=True),
        sa.Column("subsets", sa.Integer(), nullable=True),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["algorithm_id"],
            ["algorithm.id"],
            name=op.f("fk_reconstruction_parameters_algorithm_id"),
        ),
        sa.ForeignKeyConstraint(
            ["imaging_series_id"],
            ["imaging_series.id"],
            name=op.f("fk_reconstruction_parameters_imaging_series_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconstruction_parameters")),
        sa.UniqueConstraint(
            "imaging_series_id", name=op.f("uq_reconstruction_parameters_imaging_series_id")
        ),
    )
    with op.batch_alter_table("reconstruction_parameters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconstruction_parameters_algorithm_id"), ["algorithm_id"], unique=False
        )

    op.create_table(
        "registration_parameters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("image_collection_id", sa.Integer(), nullable=False),
        sa.Column("moving_series_id", sa.Integer(), nullable=False),
        sa.Column("fixed_series_id", sa.Integer(), nullable=True),
        sa.Column("software_source_code_id", sa.Integer(), nullable=True),
        sa.Column("transformation_type", sa.String(length=32), nullable=True),
        sa.Column(
            "transformation_matrix",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("method", sa.String(length=255), nullable=True),
        sa.Column("similarity_metric", sa.String(length=128), nullable=True),
        sa.Column("metric_value", sa.Float(), nullable=True),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('intra_sequence', 'inter_sequence', 'inter_modal')", name="kind"
        ),
        sa.ForeignKeyConstraint(
            ["fixed_series_id"],
            ["imaging_series.id"],
            name=op.f("fk_registration_parameters_fixed_series_id"),
        ),
        sa.ForeignKeyConstraint(
            ["image_collection_id"],
            ["image_collection.id"],
            name=op.f("fk_registration_parameters_image_collection_id"),
        ),
        sa.ForeignKeyConstraint(
            ["moving_series_id"],
            ["imaging_series.id"],
            name=op.f("fk_registration_parameters_moving_series_id"),
        ),
        sa.ForeignKeyConstraint(
            ["software_source_code_id"],
            ["software_source_code.id"],
            name=op.f("fk_registration_parameters_software_source_code_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_parameters")),
    )
    with op.batch_alter_table("registration_parameters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registration_parameters_fixed_series_id"),
            ["fixed_series_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_registration_parameters_image_collection_id"),
            ["image_collection_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_registration_parameters_moving_series_id"),
            ["moving_series_id"],
            unique=False,
        )

    op.create_table(
        "sample_disease",
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("disease_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["disease_id"],
            ["disease.id"],
            name=op.f("fk_sample_disease_disease_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["sample.id"],
            name=op.f("fk_sample_disease_sample_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sample_id", "disease_id", name=op.f("pk_sample_disease")),
    )
    with op.batch_alter_table("sample_disease", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sample_disease_disease_id"), ["disease_id"], unique=False
        )

    op.create_table(
        "sample_use_access_condition",
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("use_access_condition_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["sample.id"],
            name=op.f("fk_sample_use_access_condition_sample_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["use_access_condition_id"],
            ["use_access_condition.id"],
            name=op.f("fk_sample_use_access_condition_use_access_condition_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "sample_id", "use_access_condition_id", name=op.f("pk_sample_use_access_condition")
        ),
    )
    with op.batch_alter_table("sample_use_access_condition", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sample_use_access_condition_use_access_condition_id"),
            ["use_access_condition_id"],
            unique=False,
        )

    op.create_table(
        "segmentation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("imaging_series_id", sa.Integer(), nullable=False),
        sa.Column("source_series_id", sa.Integer(), nullable=True),
        sa.Column("segmentation_type_id", sa.Integer(), nullable=True),
        sa.Column("segment_number", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("property_category_scheme", sa.String(length=16), nullable=True),
        sa.Column("property_category_code", sa.String(length=64), nullable=True),
        sa.Column("property_category_meaning", sa.String(length=255), nullable=True),
        sa.Column("property_type_scheme", sa.String(length=16), nullable=True),
        sa.Column("property_type_code", sa.String(length=64), nullable=True),
        sa.Column("property_type_meaning", sa.String(length=255), nullable=True),
        sa.Column("algorithm_name", sa.String(length=255), nullable=True),
        sa.Column("software_source_code_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('manual', 'semi_automated', 'automated')", name="kind"),
        sa.ForeignKeyConstraint(
            ["imaging_series_id"],
            ["imaging_series.id"],
            name=op.f("fk_segmentation_imaging_series_id"),
        ),
        sa.ForeignKeyConstraint(
            ["segmentation_type_id"],
            ["segmentation_type.id"],
            name=op.f("fk_segmentation_segmentation_type_id"),
        ),
        sa.ForeignKeyConstraint(
            ["software_source_code_id"],
            ["software_source_code.id"],
            name=op.f("fk_segmentation_software_source_code_id"),
        ),
        sa.ForeignKeyConstraint(
            ["source_series_id"],
            ["imaging_series.id"],
            name=op.f("fk_segmentation_source_series_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segmentation")),
    )
    with op.batch_alter_table("segmentation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segmentation_imaging_series_id"), ["imaging_series_id"], unique=False
        )

    op.create_table(
        "automated_segmentation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=255), nullable=True),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.Column("model_uri", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"],
            ["segmentation.id"],
            name=op.f("fk_automated_segmentation_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automated_segmentation")),
    )
    op.create_table(
        "image_analysis_segmentation",
        sa.Column("image_analysis_id", sa.Integer(), nullable=False),
        sa.Column("segmentation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_analysis_id"],
            ["image_analysis.id"],
            name=op.f("fk_image_analysis_segmentation_image_analysis_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segmentation_id"],
            ["segmentation.id"],
            name=op.f("fk_image_analysis_segmentation_segmentation_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "image_analysis_id", "segmentation_id", name=op.f("pk_image_analysis_segmentation")
        ),
    )
    with op.batch_alter_table("image_analysis_segmentation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_analysis_segmentation_segmentation_id"),
            ["segmentation_id"],
            unique=False,
        )

    op.create_table(
        "imaging_biomarker",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("imaging_series_id", sa.Integer(), nullable=False),
        sa.Column("segmentation_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("code_scheme", sa.String(length=16), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.Column("value_code_scheme", sa.String(length=16), nullable=True),
        sa.Column("value_code", sa.String(length=64), nullable=True),
        sa.Column("value_code_meaning", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('textural', 'deep', 'dynamic_signal')", name="kind"),
        sa.ForeignKeyConstraint(
            ["imaging_series_id"],
            ["imaging_series.id"],
            name=op.f("fk_imaging_biomarker_imaging_series_id"),
        ),
        sa.ForeignKeyConstraint(
            ["segmentation_id"],
            ["segmentation.id"],
            name=op.f("fk_imaging_biomarker_segmentation_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging_biomarker")),
    )
    with op.batch_alter_table("imaging_biomarker", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_imaging_biomarker_code"), ["code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_imaging_biomarker_imaging_series_id"),
            ["imaging_series_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_imaging_biomarker_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_imaging_biomarker_segmentation_id"), ["segmentation_id"], unique=False
        )

    op.create_table(
        "inter_modal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("moving_modality_id", sa.Integer(), nullable=True),
        sa.Column("fixed_modality_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["fixed_modality_id"], ["modality.id"], name=op.f("fk_inter_modal_fixed_modality_id")
        ),
        sa.ForeignKeyConstraint(
            ["id"],
            ["registration_parameters.id"],
            name=op.f("fk_inter_modal_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["moving_modality_id"], ["modality.id"], name=op.f("fk_inter_modal_moving_modality_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inter_modal")),
    )
    op.create_table(
        "inter_sequence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("moving_sequence", sa.String(length=255), nullable=True),
        sa.Column("fixed_sequence", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"],
            ["registration_parameters.id"],
            name=op.f("fk_inter_sequence_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inter_sequence")),
    )
    op.create_table(
        "intra_sequence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference_frame", sa.Integer(), nullable=True),
        sa.Column("number_of_frames", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"],
            ["registration_parameters.id"],
            name=op.f("fk_intra_sequence_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intra_sequence")),
    )
    op.create_table(
        "manual_segmentation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("annotator_role", sa.String(length=128), nullable=True),
        sa.Column("annotator_experience_years", sa.Float(), nullable=True),
        sa.Column("number_of_annotators", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"], ["segmentation.id"], name=op.f("fk_manual_segmentation_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manual_segmentation")),
    )
    op.create_table(
        "semi_automated_segmentation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manual_correction", sa.Text(), nullable=True),
        sa.Column("annotator_role", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"],
            ["segmentation.id"],
            name=op.f("fk_semi_automated_segmentation_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_semi_automated_segmentation")),
    )
    op.create_table(
        "deep_features",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=255), nullable=True),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.Column("layer", sa.String(length=255), nullable=True),
        sa.Column("feature_index", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"], ["imaging_biomarker.id"], name=op.f("fk_deep_features_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deep_features")),
    )
    op.create_table(
        "dynamic_signal_features",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pharmacokinetic_model", sa.String(length=128), nullable=True),
        sa.Column("input_function", sa.String(length=128), nullable=True),
        sa.Column("time_point_seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"],
            ["imaging_biomarker.id"],
            name=op.f("fk_dynamic_signal_features_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dynamic_signal_features")),
    )
    op.create_table(
        "image_analysis_imaging_biomarker",
        sa.Column("image_analysis_id", sa.Integer(), nullable=False),
        sa.Column("imaging_biomarker_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_analysis_id"],
            ["image_analysis.id"],
            name=op.f("fk_image_analysis_imaging_biomarker_image_analysis_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["imaging_biomarker_id"],
            ["imaging_biomarker.id"],
            name=op.f("fk_image_analysis_imaging_biomarker_imaging_biomarker_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "image_analysis_id",
            "imaging_biomarker_id",
            name=op.f("pk_image_analysis_imaging_biomarker"),
        ),
    )
    with op.batch_alter_table("image_analysis_imaging_biomarker", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_image_analysis_imaging_biomarker_imaging_biomarker_id"),
            ["imaging_biomarker_id"],
            unique=False,
        )

    op.create_table(
        "textural_features",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feature_family", sa.String(length=64), nullable=True),
        sa.Column("aggregation_method", sa.String(length=64), nullable=True),
        sa.Column("discretisation", sa.String(length=128), nullable=True),
        sa.Column("image_filter", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["id"],
            ["imaging_biomarker.id"],
            name=op.f("fk_textural_features_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_textural_features")),
    )


def downgrade() -> None:
    op.drop_table("textural_features")
    with op.batch_alter_table("image_analysis_imaging_biomarker", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_analysis_imaging_biomarker_imaging_biomarker_id"))

    op.drop_table("image_analysis_imaging_biomarker")
    op.drop_table("dynamic_signal_features")
    op.drop_table("deep_features")
    op.drop_table("semi_automated_segmentation")
    op.drop_table("manual_segmentation")
    op.drop_table("intra_sequence")
    op.drop_table("inter_sequence")
    op.drop_table("inter_modal")
    with op.batch_alter_table("imaging_biomarker", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imaging_biomarker_segmentation_id"))
        batch_op.drop_index(batch_op.f("ix_imaging_biomarker_name"))
        batch_op.drop_index(batch_op.f("ix_imaging_biomarker_imaging_series_id"))
        batch_op.drop_index(batch_op.f("ix_imaging_biomarker_code"))

    op.drop_table("imaging_biomarker")
    with op.batch_alter_table("image_analysis_segmentation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_analysis_segmentation_segmentation_id"))

    op.drop_table("image_analysis_segmentation")
    op.drop_table("automated_segmentation")
    with op.batch_alter_table("segmentation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segmentation_imaging_series_id"))

    op.drop_table("segmentation")
    with op.batch_alter_table("sample_use_access_condition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sample_use_access_condition_use_access_condition_id"))

    op.drop_table("sample_use_access_condition")
    with op.batch_alter_table("sample_disease", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sample_disease_disease_id"))

    op.drop_table("sample_disease")
    with op.batch_alter_table("registration_parameters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registration_parameters_moving_series_id"))
        batch_op.drop_index(batch_op.f("ix_registration_parameters_image_collection_id"))
        batch_op.drop_index(batch_op.f("ix_registration_parameters_fixed_series_id"))

    op.drop_table("registration_parameters")
    with op.batch_alter_table("reconstruction_parameters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconstruction_parameters_algorithm_id"))

    op.drop_table("reconstruction_parameters")
    with op.batch_alter_table("imaging_instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imaging_instance_imaging_series_id"))

    op.drop_table("imaging_instance")
    with op.batch_alter_table("image_analysis_preprocessing_parameters", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_image_analysis_preprocessing_parameters_preprocessi_6b7b19b5")
        )

    op.drop_table("image_analysis_preprocessing_parameters")
    with op.batch_alter_table("acquisition_parameters", schema=None) as batch_op:
        batch_op.drop_index("ix_acquisition_parameters_slice_thickness")
        batch_op.drop_index(batch_op.f("ix_acquisition_parameters_modality_information_id"))

    op.drop_table("acquisition_parameters")
    with op.batch_alter_table(
        "sample_tissue_collection_storage_temperature", schema=None
    ) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_sample_tissue_collection_storage_temperature_storag_e5ebf94c")
        )

    op.drop_table("sample_tissue_collection_storage_temperature")
    with op.batch_alter_table("sample_tissue_collection_material_type", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_sample_tissue_collection_material_type_material_type_id")
        )

    op.drop_table("sample_tissue_collection_material_type")
    with op.batch_alter_table("sample", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sample_storage_temperature_id"))
        batch_op.drop_index(batch_op.f("ix_sample_sample_donor_id"))
        batch_op.drop_index(batch_op.f("ix_sample_material_type_id"))
        batch_op.drop_index(batch_op.f("ix_sample_collection_id"))

    op.drop_table("sample")
    with op.batch_alter_table("imaging_series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imaging_series_sample_donor_id"))
        batch_op.drop_index("ix_imaging_series_modality_body_part")
        batch_op.drop_index(batch_op.f("ix_imaging_series_imaging_study_id"))
        batch_op.drop_index(batch_op.f("ix_imaging_series_image_collection_id"))
        batch_op.drop_index(batch_op.f("ix_imaging_series_dataset_type_id"))

    op.drop_table("imaging_series")
    with op.batch_alter_table("image_collection_modality_information", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_image_collection_modality_information_modality_info_ebe3575d")
        )

    op.drop_table("image_collection_modality_information")
    with op.batch_alter_table("image_collection_dataset_type", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_collection_dataset_type_dataset_type_id"))

    op.drop_table("image_collection_dataset_type")
    with op.batch_alter_table("image_collection_body_part_examined", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_image_collection_body_part_examined_body_part_examined_id")
        )

    op.drop_table("image_collection_body_part_examined")
    with op.batch_alter_table("image_analysis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_analysis_image_collection_id"))

    op.drop_table("image_analysis")
    with op.batch_alter_table("study_collection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_collection_collection_id"))

    op.drop_table("study_collection")
    op.drop_table("software_source_code")
    op.drop_table("sample_tissue_collection")
    op.drop_table("molecular_biomarker_collection")
    op.drop_table("image_collection")
    with op.batch_alter_table("collection_sex", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_sex_sex_id"))

    op.drop_table("collection_sex")
    with op.batch_alter_table("collection_disease", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_disease_disease_id"))

    op.drop_table("collection_disease")
    with op.batch_alter_table("collection_data_category", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_data_category_data_category_id"))

    op.drop_table("collection_data_category")
    with op.batch_alter_table("collection_contact_information", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_contact_information_contact_information_id"))

    op.drop_table("collection_contact_information")
    with op.batch_alter_table("collection_collection_category", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_collection_category_collection_category_id"))

    op.drop_table("collection_collection_category")
    op.drop_table("clinical_variable_collection")
    with op.batch_alter_table("study_sex", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_sex_sex_id"))

    op.drop_table("study_sex")
    with op.batch_alter_table("study_material_type", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_material_type_material_type_id"))

    op.drop_table("study_material_type")
    with op.batch_alter_table("study_inclusion_criterion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_inclusion_criterion_inclusion_criterion_id"))

    op.drop_table("study_inclusion_criterion")
    with op.batch_alter_table("study_data_category", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_data_category_data_category_id"))

    op.drop_table("study_data_category")
    with op.batch_alter_table("study_contact_information", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_contact_information_contact_information_id"))

    op.drop_table("study_contact_information")
    with op.batch_alter_table("study_collection_category", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_collection_category_collection_category_id"))

    op.drop_table("study_collection_category")
    with op.batch_alter_table("collection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_kind"))
        batch_op.drop_index(batch_op.f("ix_collection_biobank_id"))

    op.drop_table("collection")
    op.drop_table("study")
    with op.batch_alter_table("sample_donor_miabis_dataset_type", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_sample_donor_miabis_dataset_type_miabis_dataset_type_id")
        )

    op.drop_table("sample_donor_miabis_dataset_type")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_sample_donor_id"))
        batch_op.drop_index(batch_op.f("ix_event_event_type"))
        batch_op.drop_index(batch_op.f("ix_event_disease_id"))

    op.drop_table("event")
    op.drop_table("biobank")
    op.drop_table("sample_donor")
    with op.batch_alter_table("modality_information", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_modality_information_modality_id"))

    op.drop_table("modality_information")
    op.drop_table("juristic_person")
    op.drop_table("contact_information")
    with op.batch_alter_table("use_access_condition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_use_access_condition_vocabulary_id"))

    op.drop_table("use_access_condition")
    with op.batch_alter_table("storage_temperature", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_storage_temperature_vocabulary_id"))

    op.drop_table("storage_temperature")
    with op.batch_alter_table("sex", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sex_vocabulary_id"))

    op.drop_table("sex")
    with op.batch_alter_table("segmentation_type", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segmentation_type_vocabulary_id"))

    op.drop_table("segmentation_type")
    with op.batch_alter_table("sample_source", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sample_source_vocabulary_id"))

    op.drop_table("sample_source")
    with op.batch_alter_table("modality", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_modality_vocabulary_id"))

    op.drop_table("modality")
    with op.batch_alter_table("miabis_dataset_type", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_miabis_dataset_type_vocabulary_id"))

    op.drop_table("miabis_dataset_type")
    with op.batch_alter_table("material_type", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_material_type_vocabulary_id"))

    op.drop_table("material_type")
    with op.batch_alter_table("inclusion_criterion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inclusion_criterion_vocabulary_id"))

    op.drop_table("inclusion_criterion")
    with op.batch_alter_table("disease", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disease_vocabulary_id"))
        batch_op.drop_index(batch_op.f("ix_disease_parent_id"))

    op.drop_table("disease")
    with op.batch_alter_table("dataset_type", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_type_vocabulary_id"))

    op.drop_table("dataset_type")
    with op.batch_alter_table("data_category", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_category_vocabulary_id"))

    op.drop_table("data_category")
    with op.batch_alter_table("country", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_country_vocabulary_id"))

    op.drop_table("country")
    with op.batch_alter_table("collection_category", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_category_vocabulary_id"))

    op.drop_table("collection_category")
    with op.batch_alter_table("body_part_examined", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_body_part_examined_vocabulary_id"))
        batch_op.drop_index(batch_op.f("ix_body_part_examined_snomed_code"))

    op.drop_table("body_part_examined")
    with op.batch_alter_table("age_unit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_age_unit_vocabulary_id"))

    op.drop_table("age_unit")
    op.drop_table("vocabulary")
    op.drop_table("preprocessing_parameters")
    op.drop_table("imaging_study")
    op.drop_table("algorithm")
