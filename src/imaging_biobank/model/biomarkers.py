"""Molecular Biomarker Collection rows: one result of one test for one donor (or sample).

A result is what a pathology or genetics report states: MYCN amplification (FISH,
"amplified"), ALK mutation (sequencing, "p.F1174L"), 11q loss, LDH 850 U/L. It is coded
where a code exists (the HGNC gene, the LOINC test) and keeps the name it was given.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from imaging_biobank.model.base import Base, Timestamps
from imaging_biobank.model.collections import MolecularBiomarkerCollection
from imaging_biobank.model.individuals import PARTIAL_DATE, Sample, SampleDonor
from imaging_biobank.model.vocab import Gene


class MolecularBiomarkerResult(Timestamps, Base):
    """One molecular biomarker result of a donor, or of one of the donor's samples."""

    __tablename__ = "molecular_biomarker_result"
    __table_args__ = (
        UniqueConstraint("collection_id", "identifier"),
        CheckConstraint(
            "value_number IS NOT NULL OR value_category IS NOT NULL OR value_text IS NOT NULL",
            name="has_value",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # keyed token of the row's own id, or of donor + biomarker + date: re-import finds it
    identifier: Mapped[str] = mapped_column(String(64))
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("molecular_biomarker_collection.id", ondelete="CASCADE"), index=True
    )
    sample_donor_id: Mapped[int] = mapped_column(ForeignKey("sample_donor.id"), index=True)
    sample_id: Mapped[int | None] = mapped_column(ForeignKey("sample.id"), index=True)
    biomarker: Mapped[str] = mapped_column(String(255), index=True)  # as reported
    gene_id: Mapped[int | None] = mapped_column(ForeignKey("gene.id"), index=True)
    gene_symbol: Mapped[str | None] = mapped_column(String(64))  # as given, coded or not
    loinc_code: Mapped[str | None] = mapped_column(String(16), index=True)
    alteration: Mapped[str | None] = mapped_column(String(64))  # amplification, mutation, ...
    method: Mapped[str | None] = mapped_column(String(255))
    value_number: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(64))  # UCUM
    value_category: Mapped[str | None] = mapped_column(String(128), index=True)
    value_text: Mapped[str | None] = mapped_column(Text)  # e.g. an HGVS variant
    result_date: Mapped[str | None] = mapped_column(String(PARTIAL_DATE))

    collection: Mapped[MolecularBiomarkerCollection] = relationship()
    sample_donor: Mapped[SampleDonor] = relationship()
    sample: Mapped[Sample | None] = relationship()
    gene: Mapped[Gene | None] = relationship()
