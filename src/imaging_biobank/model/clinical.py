"""The Clinical Variable Collection's e-forms: form definitions (from REDCap data
dictionaries) and the records filled in with them, values typed and coded.

A record is keyed by a keyed token of its REDCap record id, event and instance, never by
the record id itself, and belongs to the donor the record id (or a donor field) pseudonymises
to: the same ``sample_donor`` row as that donor's images and samples.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from imaging_biobank.model.base import Base, Timestamps
from imaging_biobank.model.collections import ClinicalVariableCollection
from imaging_biobank.model.individuals import SampleDonor


class EForm(Base):
    """One REDCap instrument of a clinical variable collection, as its data dictionary
    defined it (file name and SHA-256 kept, so the definition is traceable)."""

    __tablename__ = "e_form"
    __table_args__ = (UniqueConstraint("collection_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("clinical_variable_collection.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(100))  # REDCap's unique form name
    label: Mapped[str] = mapped_column(String(255))
    dictionary_file: Mapped[str] = mapped_column(String(255))
    dictionary_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    collection: Mapped[ClinicalVariableCollection] = relationship()
    fields: Mapped[list[EFormField]] = relationship(
        back_populates="e_form", order_by="EFormField.position"
    )


class EFormField(Base):
    """A field of an e-form: one row of the data dictionary, with its @IB- bindings."""

    __tablename__ = "e_form_field"
    __table_args__ = (UniqueConstraint("e_form_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    e_form_id: Mapped[int] = mapped_column(ForeignKey("e_form.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the form
    name: Mapped[str] = mapped_column(String(100))
    section_header: Mapped[str | None] = mapped_column(Text)
    field_type: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    validation_type: Mapped[str | None] = mapped_column(String(32))
    min_value: Mapped[str | None] = mapped_column(String(64))
    max_value: Mapped[str | None] = mapped_column(String(64))
    required: Mapped[bool] = mapped_column(Boolean)
    identifier: Mapped[bool] = mapped_column(Boolean)  # PHI: its values are never stored
    branching_logic: Mapped[str | None] = mapped_column(Text)  # verbatim
    branching_evaluated: Mapped[bool] = mapped_column(Boolean)  # records checked against it
    branching_note: Mapped[str | None] = mapped_column(Text)  # why it is not evaluated
    # [{"code", "label", "system", "system_code"}] of dropdown, radio and checkbox fields
    choices: Mapped[list[Any] | None]
    calculation: Mapped[str | None] = mapped_column(Text)  # calc, sql or slider labels
    annotation: Mapped[str | None] = mapped_column(Text)
    code_system: Mapped[str | None] = mapped_column(String(255))  # @IB-CODE
    code: Mapped[str | None] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(64))  # @IB-UNIT (UCUM)
    value_set: Mapped[str | None] = mapped_column(String(16))  # @IB-VALUESET

    e_form: Mapped[EForm] = relationship(back_populates="fields")


class ClinicalRecord(Timestamps, Base):
    """A form filled in for one donor (at one REDCap event and repeat instance)."""

    __tablename__ = "clinical_record"
    __table_args__ = (UniqueConstraint("collection_id", "e_form_id", "record_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("clinical_variable_collection.id", ondelete="CASCADE")
    )
    e_form_id: Mapped[int] = mapped_column(ForeignKey("e_form.id", ondelete="CASCADE"), index=True)
    sample_donor_id: Mapped[int] = mapped_column(ForeignKey("sample_donor.id"), index=True)
    # Pseudonymiser.token("clinical-record", "<record id>|<event>|<instance>"): never the id
    record_key: Mapped[str] = mapped_column(String(32))
    event_name: Mapped[str | None] = mapped_column(String(100))  # redcap_event_name
    repeat_instance: Mapped[int | None] = mapped_column(Integer)  # redcap_repeat_instance
    completion: Mapped[int | None] = mapped_column(Integer)  # <form>_complete: 0, 1, 2

    collection: Mapped[ClinicalVariableCollection] = relationship()
    e_form: Mapped[EForm] = relationship()
    sample_donor: Mapped[SampleDonor] = relationship()
    values: Mapped[list[ClinicalValue]] = relationship(back_populates="clinical_record")


class ClinicalValue(Base):
    """One answer of a record: as written, and typed (number, ISO 8601 date/time) and coded
    (choice or value-set code with its system, the field's unit)."""

    __tablename__ = "clinical_value"
    __table_args__ = (UniqueConstraint("clinical_record_id", "e_form_field_id", "item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinical_record_id: Mapped[int] = mapped_column(
        ForeignKey("clinical_record.id", ondelete="CASCADE")
    )
    e_form_field_id: Mapped[int] = mapped_column(
        ForeignKey("e_form_field.id", ondelete="CASCADE"), index=True
    )
    item: Mapped[int] = mapped_column(Integer)  # 0, or the ticked choice's position (checkbox)
    raw: Mapped[str] = mapped_column(Text)  # as written; a checkbox: the ticked choice's code
    value_number: Mapped[float | None] = mapped_column(Float)
    value_date: Mapped[str | None] = mapped_column(String(32))  # ISO 8601 date, date-time, time
    value_code: Mapped[str | None] = mapped_column(String(64))
    code_system: Mapped[str | None] = mapped_column(String(255))
    unit: Mapped[str | None] = mapped_column(String(64))

    clinical_record: Mapped[ClinicalRecord] = relationship(back_populates="values")
    e_form_field: Mapped[EFormField] = relationship()
