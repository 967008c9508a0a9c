"""MIABIS Core: biobank, juristic person, contact information and study (MIABIS-2.0-xx)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from imaging_biobank.model.base import Base, Timestamps, age_range_checks
from imaging_biobank.model.links import link_table
from imaging_biobank.model.vocab import (
    AgeUnit,
    CollectionCategory,
    Country,
    DataCategory,
    InclusionCriterion,
    MaterialType,
    Sex,
)

if TYPE_CHECKING:
    from imaging_biobank.model.collections import Collection


class JuristicPerson(Timestamps, Base):
    """The legal entity hosting a biobank (MIABIS-2.0-05), e.g. a university hospital."""

    __tablename__ = "juristic_person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(512), unique=True)
    country_id: Mapped[int | None] = mapped_column(ForeignKey("country.id"))
    url: Mapped[str | None] = mapped_column(String(1024))

    country: Mapped[Country | None] = relationship()


class ContactInformation(Timestamps, Base):
    """A person to contact (MIABIS-2.0-07 A-H, researcher information 2.0-23)."""

    __tablename__ = "contact_information"

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    address: Mapped[str | None] = mapped_column(String(1024))
    zip: Mapped[str | None] = mapped_column(String(32))
    city: Mapped[str | None] = mapped_column(String(255))
    country_id: Mapped[int | None] = mapped_column(ForeignKey("country.id"))
    juristic_person: Mapped[str | None] = mapped_column(String(512))
    department: Mapped[str | None] = mapped_column(String(512))
    orcid: Mapped[str | None] = mapped_column(String(64))

    country: Mapped[Country | None] = relationship()

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class Biobank(Timestamps, Base):
    """An organisation that stores samples and data (MIABIS Core 2.0 Biobank)."""

    __tablename__ = "biobank"

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255), unique=True)  # MIABIS-2.0-01
    acronym: Mapped[str | None] = mapped_column(String(64))  # 2.0-02
    name: Mapped[str] = mapped_column(String(512))  # 2.0-03
    url: Mapped[str | None] = mapped_column(String(1024))  # 2.0-04
    juristic_person_id: Mapped[int] = mapped_column(ForeignKey("juristic_person.id"))  # 2.0-05
    country_id: Mapped[int] = mapped_column(ForeignKey("country.id"))  # 2.0-06
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact_information.id"))  # 2.0-07
    description: Mapped[str | None] = mapped_column(Text)  # 2.0-08

    juristic_person: Mapped[JuristicPerson] = relationship()
    country: Mapped[Country] = relationship()
    contact: Mapped[ContactInformation | None] = relationship()
    collections: Mapped[list[Collection]] = relationship(back_populates="biobank")


study_collection = link_table("study_collection", "study", "collection")
study_collection_category = link_table("study_collection_category", "study", "collection_category")
study_contact_information = link_table("study_contact_information", "study", "contact_information")
study_data_category = link_table("study_data_category", "study", "data_category")
study_sex = link_table("study_sex", "study", "sex")
study_material_type = link_table("study_material_type", "study", "material_type")
study_inclusion_criterion = link_table("study_inclusion_criterion", "study", "inclusion_criterion")


class Study(Timestamps, Base):
    """A MIABIS research study (Core 2.0 Study), spanning collections; not a DICOM study."""

    __tablename__ = "study"
    __table_args__ = (*age_range_checks(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255), unique=True)  # 2.0-01
    name: Mapped[str] = mapped_column(String(512))  # 2.0-02
    description: Mapped[str | None] = mapped_column(Text)  # 2.0-08
    principal_investigator_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_information.id")
    )  # 2.0-18
    age_low: Mapped[float | None] = mapped_column(Float)  # 2.0-10
    age_high: Mapped[float | None] = mapped_column(Float)  # 2.0-11
    age_unit_id: Mapped[int | None] = mapped_column(ForeignKey("age_unit.id"))  # 2.0-12
    total_participants: Mapped[int | None] = mapped_column(Integer)  # 2.0-20
    total_donors: Mapped[int | None] = mapped_column(Integer)  # 2.0-21

    principal_investigator: Mapped[ContactInformation | None] = relationship()
    age_unit: Mapped[AgeUnit | None] = relationship()
    collections: Mapped[list[Collection]] = relationship(
        secondary=study_collection, back_populates="studies"
    )
    designs: Mapped[list[CollectionCategory]] = relationship(
        secondary=study_collection_category
    )  # 2.0-19
    contacts: Mapped[list[ContactInformation]] = relationship(
        secondary=study_contact_information
    )  # 2.0-07
    data_categories: Mapped[list[DataCategory]] = relationship(
        secondary=study_data_category
    )  # 2.0-13
    sexes: Mapped[list[Sex]] = relationship(secondary=study_sex)  # 2.0-09
    material_types: Mapped[list[MaterialType]] = relationship(
        secondary=study_material_type
    )  # 2.0-14
    inclusion_criteria: Mapped[list[InclusionCriterion]] = relationship(
        secondary=study_inclusion_criterion
    )  # 2.0-22
