"""The generalised MIABIS "Sample Collection" and its five kinds (joined-table inheritance).

``collection`` holds what every kind shares (MIABIS Core 2.0 Sample Collection); the kind
tables join 1:1 on ``id``. Descriptors that can be derived from individual-level rows (sex,
diagnoses, material types, storage temperatures) are links with an ``origin``: ``declared``
at registration, ``derived`` by the writers of later data. When derived links exist they
are what the collection shows; the declared ones stay as the data manager wrote them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    and_,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from imaging_biobank.model.base import Base, Timestamps, age_range_checks
from imaging_biobank.model.links import DECLARED, DERIVED, link_table
from imaging_biobank.model.miabis import Biobank, ContactInformation, Study, study_collection
from imaging_biobank.model.vocab import (
    AgeUnit,
    BodyPartExamined,
    CollectionCategory,
    DataCategory,
    DatasetType,
    Disease,
    MaterialType,
    Sex,
    StorageTemperature,
)

if TYPE_CHECKING:
    from imaging_biobank.model.imaging import ModalityInformation

COLLECTION_KINDS = (
    "image",
    "sample_tissue",
    "clinical_variable",
    "molecular_biomarker",
    "software_source_code",
)

collection_collection_category = link_table(
    "collection_collection_category", "collection", "collection_category"
)
collection_data_category = link_table("collection_data_category", "collection", "data_category")
collection_contact_information = link_table(
    "collection_contact_information", "collection", "contact_information"
)
# donors a collection holds data of, as imports declare them (``import donors --collection``);
# the donors of its samples, series, records and results count too, derived from those rows
collection_sample_donor = link_table("collection_sample_donor", "collection", "sample_donor")
collection_sex = link_table("collection_sex", "collection", "sex", origin=True)
collection_disease = link_table("collection_disease", "collection", "disease", origin=True)
sample_tissue_collection_material_type = link_table(
    "sample_tissue_collection_material_type",
    "sample_tissue_collection",
    "material_type",
    origin=True,
)
sample_tissue_collection_storage_temperature = link_table(
    "sample_tissue_collection_storage_temperature",
    "sample_tissue_collection",
    "storage_temperature",
    origin=True,
)
image_collection_body_part_examined = link_table(
    "image_collection_body_part_examined", "image_collection", "body_part_examined"
)
image_collection_dataset_type = link_table(
    "image_collection_dataset_type", "image_collection", "dataset_type"
)
image_collection_modality_information = link_table(
    "image_collection_modality_information", "image_collection", "modality_information"
)


def origin_links(target: str, secondary: Table, parent: str, origin: str) -> Any:
    """A read-only relationship over the ``origin`` rows of an N:M link table."""
    parent_col = secondary.c[f"{parent}_id"]
    target_col = secondary.c[f"{target}_id"]
    return relationship(
        "".join(part.title() for part in target.split("_")),
        secondary=secondary,
        primaryjoin=lambda: and_(
            parent_col == Base.metadata.tables[parent].c.id, secondary.c.origin == origin
        ),
        secondaryjoin=lambda: target_col == Base.metadata.tables[target].c.id,
        viewonly=True,
    )


class Collection(Timestamps, Base):
    """A set of data or samples with a common characteristic (MIABIS 2.0 Sample Collection)."""

    __tablename__ = "collection"
    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in COLLECTION_KINDS) + ")", name="kind"
        ),
        *age_range_checks(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255), unique=True)  # 2.0-01
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobank.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    acronym: Mapped[str | None] = mapped_column(String(64))  # 2.0-02
    name: Mapped[str] = mapped_column(String(512))  # 2.0-03
    description: Mapped[str | None] = mapped_column(Text)  # 2.0-08
    url: Mapped[str | None] = mapped_column(String(1024))
    parent_collection_id: Mapped[int | None] = mapped_column(ForeignKey("collection.id"))
    age_low: Mapped[float | None] = mapped_column(Float)  # 2.0-10 (declared)
    age_high: Mapped[float | None] = mapped_column(Float)  # 2.0-11 (declared)
    age_unit_id: Mapped[int | None] = mapped_column(ForeignKey("age_unit.id"))  # 2.0-12
    access_fee: Mapped[bool | None] = mapped_column(Boolean)
    access_joint_project: Mapped[bool | None] = mapped_column(Boolean)
    access_description: Mapped[str | None] = mapped_column(Text)
    access_uri: Mapped[str | None] = mapped_column(String(1024))
    collaboration_commercial: Mapped[bool | None] = mapped_column(Boolean)
    collaboration_non_for_profit: Mapped[bool | None] = mapped_column(Boolean)
    # derived by the writers, never typed: distinct donors and items (samples, series, ...)
    number_of_donors: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int | None] = mapped_column(Integer)
    # derived from the donors: youngest and oldest age known (at a study, sample or event)
    donor_age_low_years: Mapped[float | None] = mapped_column(Float)
    donor_age_high_years: Mapped[float | None] = mapped_column(Float)

    __mapper_args__ = {"polymorphic_on": kind, "polymorphic_abstract": True}

    biobank: Mapped[Biobank] = relationship(back_populates="collections")
    parent_collection: Mapped[Collection | None] = relationship(remote_side=[id])
    age_unit: Mapped[AgeUnit | None] = relationship()
    studies: Mapped[list[Study]] = relationship(
        secondary=study_collection, back_populates="collections"
    )
    types: Mapped[list[CollectionCategory]] = relationship(
        secondary=collection_collection_category
    )  # 2.0-16
    data_categories: Mapped[list[DataCategory]] = relationship(
        secondary=collection_data_category
    )  # 2.0-13
    contacts: Mapped[list[ContactInformation]] = relationship(
        secondary=collection_contact_information
    )  # 2.0-07
    declared_sexes: Mapped[list[Sex]] = origin_links("sex", collection_sex, "collection", DECLARED)
    derived_sexes: Mapped[list[Sex]] = origin_links("sex", collection_sex, "collection", DERIVED)
    declared_diseases: Mapped[list[Disease]] = origin_links(
        "disease", collection_disease, "collection", DECLARED
    )
    derived_diseases: Mapped[list[Disease]] = origin_links(
        "disease", collection_disease, "collection", DERIVED
    )

    @property
    def sexes(self) -> list[Sex]:
        """MIABIS 2.0-09: what the donors show once there are donors, else what was declared."""
        return self.derived_sexes or self.declared_sexes

    @property
    def diseases(self) -> list[Disease]:
        """MIABIS 2.0-17: derived diagnoses once there are any, else the declared ones."""
        return self.derived_diseases or self.declared_diseases


class ImageCollection(Collection):
    """A collection of images; its imaging descriptors are derived from its series."""

    __tablename__ = "image_collection"
    __mapper_args__ = {"polymorphic_identity": "image"}

    id: Mapped[int] = mapped_column(
        ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )
    dicomweb_url: Mapped[str | None] = mapped_column(String(1024))

    body_parts_examined: Mapped[list[BodyPartExamined]] = relationship(
        secondary=image_collection_body_part_examined, viewonly=True
    )
    dataset_types: Mapped[list[DatasetType]] = relationship(
        secondary=image_collection_dataset_type, viewonly=True
    )
    modality_information: Mapped[list[ModalityInformation]] = relationship(
        secondary=image_collection_modality_information, viewonly=True
    )


class SampleTissueCollection(Collection):
    """A collection of tissue and other biological samples."""

    __tablename__ = "sample_tissue_collection"
    __mapper_args__ = {"polymorphic_identity": "sample_tissue"}

    id: Mapped[int] = mapped_column(
        ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )

    declared_material_types: Mapped[list[MaterialType]] = origin_links(
        "material_type",
        sample_tissue_collection_material_type,
        "sample_tissue_collection",
        DECLARED,
    )
    derived_material_types: Mapped[list[MaterialType]] = origin_links(
        "material_type", sample_tissue_collection_material_type, "sample_tissue_collection", DERIVED
    )
    declared_storage_temperatures: Mapped[list[StorageTemperature]] = origin_links(
        "storage_temperature",
        sample_tissue_collection_storage_temperature,
        "sample_tissue_collection",
        DECLARED,
    )
    derived_storage_temperatures: Mapped[list[StorageTemperature]] = origin_links(
        "storage_temperature",
        sample_tissue_collection_storage_temperature,
        "sample_tissue_collection",
        DERIVED,
    )

    @property
    def material_types(self) -> list[MaterialType]:
        """MIABIS 2.0-14: derived from the samples once there are any, else declared."""
        return self.derived_material_types or self.declared_material_types

    @property
    def storage_temperatures(self) -> list[StorageTemperature]:
        """MIABIS 2.0-15: derived from the samples once there are any, else declared."""
        return self.derived_storage_temperatures or self.declared_storage_temperatures


class ClinicalVariableCollection(Collection):
    """A collection of clinical variables (e-form records) about its donors."""

    __tablename__ = "clinical_variable_collection"
    __mapper_args__ = {"polymorphic_identity": "clinical_variable"}

    id: Mapped[int] = mapped_column(
        ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )


class MolecularBiomarkerCollection(Collection):
    """A collection of molecular biomarker results (e.g. MYCN amplification, ALK mutation)."""

    __tablename__ = "molecular_biomarker_collection"
    __mapper_args__ = {"polymorphic_identity": "molecular_biomarker"}

    id: Mapped[int] = mapped_column(
        ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )


class SoftwareSourceCode(Collection):
    """Software used on the biobank's data (pipelines, models), cited by the analyses."""

    __tablename__ = "software_source_code"
    __mapper_args__ = {"polymorphic_identity": "software_source_code"}

    id: Mapped[int] = mapped_column(
        ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )
    repository_url: Mapped[str | None] = mapped_column(String(1024))
    version: Mapped[str | None] = mapped_column(String(128))
    licence: Mapped[str | None] = mapped_column(String(128))
    programming_language: Mapped[str | None] = mapped_column(String(128))
    persistent_identifier: Mapped[str | None] = mapped_column(String(255))  # DOI, SWHID
