"""The individual level: MIABIS 2020 Sample Donor, Sample and Event modules.

A donor is known only by a pseudonym (the keyed function of the de-identification layer
turns every source identifier into it), so images, samples and clinical records of one
person meet without anyone storing who that person is.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from imaging_biobank.model.base import Base, Timestamps
from imaging_biobank.model.collections import SampleTissueCollection
from imaging_biobank.model.links import link_table
from imaging_biobank.model.vocab import (
    AgeUnit,
    Disease,
    MaterialType,
    MiabisDatasetType,
    SampleSource,
    Sex,
    StorageTemperature,
    UseAccessCondition,
)

# ISO 8601, partial values allowed (YYYY, YYYY-MM, YYYY-MM-DD), as MIABIS permits
PARTIAL_DATE = 32

sample_donor_miabis_dataset_type = link_table(
    "sample_donor_miabis_dataset_type", "sample_donor", "miabis_dataset_type"
)
sample_disease = link_table("sample_disease", "sample", "disease")
sample_use_access_condition = link_table(
    "sample_use_access_condition", "sample", "use_access_condition"
)
# consent given per donor: applies to all the donor's samples, images and records
sample_donor_use_access_condition = link_table(
    "sample_donor_use_access_condition", "sample_donor", "use_access_condition"
)


class SampleDonor(Timestamps, Base):
    """A person who gave samples or images (SAMPLEDONOR-01..04), known by pseudonym only."""

    __tablename__ = "sample_donor"

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)  # SAMPLEDONOR-01
    sex_id: Mapped[int] = mapped_column(ForeignKey("sex.id"), index=True)  # SAMPLEDONOR-02
    birth_date: Mapped[str | None] = mapped_column(String(PARTIAL_DATE))  # SAMPLEDONOR-04

    sex: Mapped[Sex] = relationship()
    dataset_types: Mapped[list[MiabisDatasetType]] = relationship(
        secondary=sample_donor_miabis_dataset_type
    )  # SAMPLEDONOR-03
    samples: Mapped[list[Sample]] = relationship(back_populates="sample_donor")
    events: Mapped[list[Event]] = relationship(back_populates="sample_donor")
    use_access_conditions: Mapped[list[UseAccessCondition]] = relationship(
        secondary=sample_donor_use_access_condition
    )


class Sample(Timestamps, Base):
    """A biological sample (SAMPLE-01..12) in a sample tissue collection."""

    __tablename__ = "sample"
    __table_args__ = (
        UniqueConstraint("collection_id", "identifier"),
        # the facets count donors per material type and storage temperature from the index
        Index("ix_sample_material_type_donor", "material_type_id", "sample_donor_id"),
        Index("ix_sample_storage_temperature_donor", "storage_temperature_id", "sample_donor_id"),
        CheckConstraint(
            "(anatomical_site_code IS NULL AND anatomical_site_description IS NULL"
            " AND anatomical_site_free_text IS NULL)"
            " OR (anatomical_site_ontology IS NOT NULL AND anatomical_site_version IS NOT NULL)",
            name="anatomical_site_ontology",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255))  # SAMPLE-01
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("sample_tissue_collection.id"), index=True
    )
    sample_donor_id: Mapped[int] = mapped_column(ForeignKey("sample_donor.id"), index=True)
    material_type_id: Mapped[int] = mapped_column(ForeignKey("material_type.id"))
    storage_temperature_id: Mapped[int | None] = mapped_column(
        ForeignKey("storage_temperature.id")
    )  # SAMPLE-03
    creation_date: Mapped[str | None] = mapped_column(String(PARTIAL_DATE))  # SAMPLE-04
    anatomical_site_ontology: Mapped[str | None] = mapped_column(String(64))  # SAMPLE-05-01
    anatomical_site_version: Mapped[str | None] = mapped_column(String(64))  # -02
    anatomical_site_code: Mapped[str | None] = mapped_column(String(64))  # -03
    anatomical_site_description: Mapped[str | None] = mapped_column(String(255))  # -04
    anatomical_site_free_text: Mapped[str | None] = mapped_column(Text)  # -05
    sample_source_id: Mapped[int | None] = mapped_column(ForeignKey("sample_source.id"))  # -12

    collection: Mapped[SampleTissueCollection] = relationship()
    sample_donor: Mapped[SampleDonor] = relationship(back_populates="samples")
    material_type: Mapped[MaterialType] = relationship()  # SAMPLE-02
    storage_temperature: Mapped[StorageTemperature | None] = relationship()
    sample_source: Mapped[SampleSource | None] = relationship()
    diagnoses: Mapped[list[Disease]] = relationship(secondary=sample_disease)  # SAMPLE-10
    use_access_conditions: Mapped[list[UseAccessCondition]] = relationship(
        secondary=sample_use_access_condition
    )  # SAMPLE-11


class Event(Timestamps, Base):
    """Something that happened to a donor (diagnosis, death, ...), dated or aged (EVENT-01..04)."""

    __tablename__ = "event"
    __table_args__ = (
        CheckConstraint(
            "event_date IS NULL OR age_at_event IS NULL", name="date_or_age"
        ),  # MIABIS: either age at event or event date, not both
        CheckConstraint("age_at_event IS NULL OR age_unit_id IS NOT NULL", name="age_unit"),
        # the diagnosis facet counts donors per disease from the index
        Index("ix_event_disease_donor", "disease_id", "sample_donor_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(64), unique=True)  # EVENT-01
    sample_donor_id: Mapped[int] = mapped_column(ForeignKey("sample_donor.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(64), index=True)
    event_date: Mapped[str | None] = mapped_column(String(PARTIAL_DATE))  # EVENT-02
    age_at_event: Mapped[float | None] = mapped_column(Float)  # EVENT-03
    age_unit_id: Mapped[int | None] = mapped_column(ForeignKey("age_unit.id"))  # EVENT-04
    disease_id: Mapped[int | None] = mapped_column(ForeignKey("disease.id"))
    description: Mapped[str | None] = mapped_column(Text)

    sample_donor: Mapped[SampleDonor] = relationship(back_populates="events")
    age_unit: Mapped[AgeUnit | None] = relationship()
    disease: Mapped[Disease | None] = relationship()


class DonorFacet(Base):
    """Derived: one value a donor has for one catalogue facet (modality ``CT``, body part
    ``ABDOMEN``, diagnosis category ``C74``, ...), recomputed for a collection's donors with
    its derived descriptors, so facet counts are a grouping of these rows."""

    __tablename__ = "donor_facet"
    # a cohort's facets: its donors' rows read from this index alone
    __table_args__ = (Index("ix_donor_facet_donor", "sample_donor_id", "facet", "value"),)

    facet: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    sample_donor_id: Mapped[int] = mapped_column(
        ForeignKey("sample_donor.id", ondelete="CASCADE"), primary_key=True
    )
