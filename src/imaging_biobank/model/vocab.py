"""Controlled vocabularies: one table per list, every row tagged with its vocabulary edition.

Rows are loaded by migrations from the versioned files in ``imaging_biobank/vocab/data``
(see ``vocabularies.toml``), never typed by hand. A table may hold several editions of a
list (the PRIMAGE body parts and the current Annex L, say); ``maps_to_id`` points from a
term to its counterpart in another edition, or to the term an export falls back to.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from imaging_biobank.model.base import Base


class Vocabulary(Base):
    """One edition of one controlled vocabulary, with where it came from."""

    __tablename__ = "vocabulary"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    table_name: Mapped[str] = mapped_column(String(64))
    edition: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(String(255))
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    loaded_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Term:
    """Columns every vocabulary table shares."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    directory_id: Mapped[str | None] = mapped_column(String(128))
    synonyms: Mapped[list[Any] | None]

    @declared_attr
    def vocabulary_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("vocabulary.id"), index=True)

    @declared_attr
    def vocabulary(cls) -> Mapped[Vocabulary]:
        return relationship(Vocabulary, lazy="joined")

    @declared_attr
    def maps_to_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey(f"{cls.__tablename__}.id"))  # type: ignore[attr-defined]

    @declared_attr
    def maps_to(cls: Any) -> Mapped[Any]:
        """The counterpart term in another edition (or an export's fallback term)."""
        name = cls.__name__
        return relationship(
            name, remote_side=f"{name}.id", foreign_keys=f"{name}.maps_to_id", lazy="select"
        )

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (UniqueConstraint("vocabulary_id", "code"),)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.code!r}>"


class Country(Term, Base):
    """ISO 3166-1 countries (MIABIS-2.0-06); ``directory_id`` is the Directory's node id."""

    __tablename__ = "country"
    alpha3: Mapped[str | None] = mapped_column(String(3))
    numeric: Mapped[str | None] = mapped_column(String(3))


class Sex(Term, Base):
    """MIABIS sex (2.0-09, SAMPLEDONOR-02)."""

    __tablename__ = "sex"
    bbmri_de_code: Mapped[str | None] = mapped_column(String(64))
    fhir_code: Mapped[str | None] = mapped_column(String(64))
    miabis_fhir_code: Mapped[str | None] = mapped_column(String(64))


class AgeUnit(Term, Base):
    """MIABIS age unit (2.0-12, EVENT-04)."""

    __tablename__ = "age_unit"
    ucum_code: Mapped[str | None] = mapped_column(String(16))


class DataCategory(Term, Base):
    """MIABIS data categories (2.0-13)."""

    __tablename__ = "data_category"


class CollectionCategory(Term, Base):
    """MIABIS collection type / study design (2.0-16, 2.0-19) with the Directory's types."""

    __tablename__ = "collection_category"
    ontology_code: Mapped[str | None] = mapped_column(String(64))


class InclusionCriterion(Term, Base):
    """MIABIS inclusion criteria (2.0-22)."""

    __tablename__ = "inclusion_criterion"


class MaterialType(Term, Base):
    """MIABIS 2.0 material types (2.0-14) and the 2020 sample types (SAMPLE-02)."""

    __tablename__ = "material_type"
    bbmri_de_code: Mapped[str | None] = mapped_column(String(64))
    miabis_fhir_code: Mapped[str | None] = mapped_column(String(64))


class StorageTemperature(Term, Base):
    """MIABIS storage temperatures (2.0-15, SAMPLE-03), with their range in °C."""

    __tablename__ = "storage_temperature"
    bbmri_de_code: Mapped[str | None] = mapped_column(String(64))
    miabis_fhir_code: Mapped[str | None] = mapped_column(String(64))
    min_celsius: Mapped[float | None] = mapped_column(Float)
    max_celsius: Mapped[float | None] = mapped_column(Float)


class SampleSource(Term, Base):
    """MIABIS sample source (SAMPLE-12): human, animal, environment."""

    __tablename__ = "sample_source"


class UseAccessCondition(Term, Base):
    """Use and access conditions of a sample or donor: MIABIS SAMPLE-11 and GA4GH DUO.

    ``restricts`` says which declared purposes of a request the condition rules out: a flag
    (``commercial``) rules out purposes that have it, ``!flag`` those that lack it
    (``!collaboration``: only requests that agree to collaborate); see ``samples.consent``.
    """

    __tablename__ = "use_access_condition"
    restricts: Mapped[str | None] = mapped_column(String(128))


class MiabisDatasetType(Term, Base):
    """MIABIS dataset types of a donor or collection (SAMPLEDONOR-03, COLLECTION-13)."""

    __tablename__ = "miabis_dataset_type"
    miabis_fhir_code: Mapped[str | None] = mapped_column(String(64))


class Disease(Term, Base):
    """Diagnoses: ICD-10 (with its chapter/block/category hierarchy)."""

    __tablename__ = "disease"
    uri: Mapped[str | None] = mapped_column(String(255))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("disease.id"), index=True)

    parent: Mapped[Disease | None] = relationship(
        remote_side=lambda: [Disease.id], foreign_keys=lambda: [Disease.parent_id]
    )


class Gene(Term, Base):
    """HGNC genes (``code`` the HGNC id, ``label`` the approved symbol), for molecular
    biomarkers."""

    __tablename__ = "gene"


class BodyPartExamined(Term, Base):
    """Body Part Examined (0018,0015): PRIMAGE list and PS3.16 Annex L, with SNOMED CT codes."""

    __tablename__ = "body_part_examined"
    snomed_code: Mapped[str | None] = mapped_column(String(32), index=True)
    laterality_paired: Mapped[bool | None] = mapped_column(Boolean)
    legacy_snomed_codes: Mapped[list[Any] | None]


class DatasetType(Term, Base):
    """Dataset Type: the SOP Class UID (0008,0016), named as the standard names it."""

    __tablename__ = "dataset_type"
    keyword: Mapped[str | None] = mapped_column(String(128))
    iod: Mapped[str | None] = mapped_column(String(255))
    retired: Mapped[bool | None] = mapped_column(Boolean)


class Modality(Term, Base):
    """Modality (0008,0060) defined terms: CID 33, the PRIMAGE list and retired terms."""

    __tablename__ = "modality"
    context_groups: Mapped[str | None] = mapped_column(String(64))
    retired: Mapped[bool | None] = mapped_column(Boolean)


class SegmentationType(Term, Base):
    """How a segmentation is represented: DICOM SEG type or RT structure contour type."""

    __tablename__ = "segmentation_type"
    dicom_attribute: Mapped[str | None] = mapped_column(String(64))


TERM_TABLES: dict[str, type[Term]] = {
    cls.__tablename__: cls
    for cls in (
        Country,
        Sex,
        AgeUnit,
        DataCategory,
        CollectionCategory,
        InclusionCriterion,
        MaterialType,
        StorageTemperature,
        SampleSource,
        UseAccessCondition,
        MiabisDatasetType,
        Disease,
        Gene,
        BodyPartExamined,
        DatasetType,
        Modality,
        SegmentationType,
    )
}
