"""Image Analysis and Registration Parameters of the Image Collection.

An ``image_analysis`` (one run of a pipeline on a collection) uses preprocessing steps,
produces or uses segmentations, and yields imaging biomarkers; each biomarker points back
at its series (and segmentation), and the analysis at its software, so every feature has
a provenance chain. Segmentations come in three kinds (manual, semi-automated, automated),
biomarkers in three feature families (textural, deep, dynamic signal) and registrations in
three kinds (intra-sequence, inter-sequence, inter-modal): each kind is a table joined 1:1
to its parent, so "all segmentations" or "all imaging biomarkers" stays one table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from imaging_biobank.model.base import Base, Timestamps
from imaging_biobank.model.collections import ImageCollection, SoftwareSourceCode
from imaging_biobank.model.imaging import ImagingSeries
from imaging_biobank.model.links import link_table
from imaging_biobank.model.vocab import Modality, SegmentationType

SEGMENTATION_KINDS = ("manual", "semi_automated", "automated")
# textural, deep and dynamic signal are the paper's three feature families; "reported" holds
# what a radiologist or a tool reported in a DICOM SR (TID 1500) measurement report
FEATURE_KINDS = ("textural", "deep", "dynamic_signal", "reported")
VALUE_TYPES = ("quantitative", "qualitative")
# what an analysis run did: each refers to its software entry (provenance)
ANALYSIS_TYPES = (
    "radiomics",
    "radiomics_import",
    "segmentation_import",
    "registration_import",
    "structured_report_import",
    "deep_features_import",
    "dynamic_signal",
    "harmonisation",
    "simulation",
)
REGISTRATION_KINDS = ("intra_sequence", "inter_sequence", "inter_modal")


def _kind_check(kinds: tuple[str, ...]) -> CheckConstraint:
    return CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")", name="kind")


# --- Registration Parameters -------------------------------------------------------------


class RegistrationParameters(Timestamps, Base):
    """A spatial registration of a moving series onto a fixed one (or within one series)."""

    __tablename__ = "registration_parameters"
    __table_args__ = (_kind_check(REGISTRATION_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    image_collection_id: Mapped[int] = mapped_column(ForeignKey("image_collection.id"), index=True)
    moving_series_id: Mapped[int] = mapped_column(ForeignKey("imaging_series.id"), index=True)
    fixed_series_id: Mapped[int | None] = mapped_column(ForeignKey("imaging_series.id"), index=True)
    software_source_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("software_source_code.id")
    )
    # RIGID, RIGID_SCALE, AFFINE (0070,030C) or DEFORMABLE
    transformation_type: Mapped[str | None] = mapped_column(String(32))
    transformation_matrix: Mapped[list[Any] | None]  # (3006,00C6), 16 values, row-major
    method: Mapped[str | None] = mapped_column(String(255))
    similarity_metric: Mapped[str | None] = mapped_column(String(128))
    metric_value: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any] | None]

    __mapper_args__ = {"polymorphic_on": kind, "polymorphic_abstract": True}

    image_collection: Mapped[ImageCollection] = relationship()
    moving_series: Mapped[ImagingSeries] = relationship(foreign_keys=[moving_series_id])
    fixed_series: Mapped[ImagingSeries | None] = relationship(foreign_keys=[fixed_series_id])
    software: Mapped[SoftwareSourceCode | None] = relationship()


class IntraSequence(RegistrationParameters):
    """Motion correction within one series (frames or slices onto a reference frame)."""

    __tablename__ = "intra_sequence"
    __mapper_args__ = {"polymorphic_identity": "intra_sequence"}

    id: Mapped[int] = mapped_column(
        ForeignKey("registration_parameters.id", ondelete="CASCADE"), primary_key=True
    )
    reference_frame: Mapped[int | None] = mapped_column(Integer)
    number_of_frames: Mapped[int | None] = mapped_column(Integer)


class InterSequence(RegistrationParameters):
    """Registration between two sequences of one modality (e.g. MR T2 onto T1)."""

    __tablename__ = "inter_sequence"
    __mapper_args__ = {"polymorphic_identity": "inter_sequence"}

    id: Mapped[int] = mapped_column(
        ForeignKey("registration_parameters.id", ondelete="CASCADE"), primary_key=True
    )
    moving_sequence: Mapped[str | None] = mapped_column(String(255))
    fixed_sequence: Mapped[str | None] = mapped_column(String(255))


class InterModal(RegistrationParameters):
    """Registration between modalities (e.g. PET onto CT)."""

    __tablename__ = "inter_modal"
    __mapper_args__ = {"polymorphic_identity": "inter_modal"}

    id: Mapped[int] = mapped_column(
        ForeignKey("registration_parameters.id", ondelete="CASCADE"), primary_key=True
    )
    moving_modality_id: Mapped[int | None] = mapped_column(ForeignKey("modality.id"))
    fixed_modality_id: Mapped[int | None] = mapped_column(ForeignKey("modality.id"))

    moving_modality: Mapped[Modality | None] = relationship(foreign_keys=[moving_modality_id])
    fixed_modality: Mapped[Modality | None] = relationship(foreign_keys=[fixed_modality_id])


# --- Image Analysis ----------------------------------------------------------------------

image_analysis_preprocessing_parameters = link_table(
    "image_analysis_preprocessing_parameters", "image_analysis", "preprocessing_parameters"
)
image_analysis_segmentation = link_table(
    "image_analysis_segmentation", "image_analysis", "segmentation"
)
image_analysis_imaging_biomarker = link_table(
    "image_analysis_imaging_biomarker", "image_analysis", "imaging_biomarker"
)
# the series a run read (its inputs); segmentations and biomarkers above are what it made
image_analysis_imaging_series = link_table(
    "image_analysis_imaging_series", "image_analysis", "imaging_series"
)


class PreprocessingParameters(Base):
    """One preprocessing step (resampling, discretisation, normalisation, filtering, ...)."""

    __tablename__ = "preprocessing_parameters"

    id: Mapped[int] = mapped_column(primary_key=True)
    step: Mapped[str] = mapped_column(String(64))
    method: Mapped[str | None] = mapped_column(String(255))
    parameters: Mapped[dict[str, Any] | None]
    # (0008,9215) Derivation Code Sequence, CID 7203 Image Derivation
    derivation_code_scheme: Mapped[str | None] = mapped_column(String(16))
    derivation_code: Mapped[str | None] = mapped_column(String(64))
    derivation_code_meaning: Mapped[str | None] = mapped_column(String(255))


class ImageAnalysis(Timestamps, Base):
    """One run of an analysis pipeline on an image collection."""

    __tablename__ = "image_analysis"
    __table_args__ = (
        CheckConstraint(
            "analysis_type IS NULL OR analysis_type IN ("
            + ", ".join(f"'{k}'" for k in ANALYSIS_TYPES)
            + ")",
            name="analysis_type",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    analysis_type: Mapped[str | None] = mapped_column(String(32), index=True)
    image_collection_id: Mapped[int] = mapped_column(ForeignKey("image_collection.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    software_source_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("software_source_code.id")
    )
    performed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    configuration: Mapped[dict[str, Any] | None]

    image_collection: Mapped[ImageCollection] = relationship()
    software: Mapped[SoftwareSourceCode | None] = relationship()
    preprocessing_parameters: Mapped[list[PreprocessingParameters]] = relationship(
        secondary=image_analysis_preprocessing_parameters
    )
    segmentations: Mapped[list[Segmentation]] = relationship(secondary=image_analysis_segmentation)
    imaging_biomarkers: Mapped[list[ImagingBiomarker]] = relationship(
        secondary=image_analysis_imaging_biomarker
    )
    input_series: Mapped[list[ImagingSeries]] = relationship(
        secondary=image_analysis_imaging_series
    )


class Segmentation(Timestamps, Base):
    """A region of interest on a series: one segment of a DICOM SEG or one RTSTRUCT ROI."""

    __tablename__ = "segmentation"
    __table_args__ = (_kind_check(SEGMENTATION_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # (0062,0008) SegmentAlgorithmType / (3006,0036) ROIGenerationAlgorithm
    kind: Mapped[str] = mapped_column(String(32))
    imaging_series_id: Mapped[int] = mapped_column(ForeignKey("imaging_series.id"), index=True)
    # the SEG or RTSTRUCT series that holds it, when it is a DICOM object
    source_series_id: Mapped[int | None] = mapped_column(ForeignKey("imaging_series.id"))
    segmentation_type_id: Mapped[int | None] = mapped_column(ForeignKey("segmentation_type.id"))
    segment_number: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(255))
    property_category_scheme: Mapped[str | None] = mapped_column(String(16))  # (0062,0003)
    property_category_code: Mapped[str | None] = mapped_column(String(64))
    property_category_meaning: Mapped[str | None] = mapped_column(String(255))
    property_type_scheme: Mapped[str | None] = mapped_column(String(16))  # (0062,000F)
    property_type_code: Mapped[str | None] = mapped_column(String(64))
    property_type_meaning: Mapped[str | None] = mapped_column(String(255))
    algorithm_name: Mapped[str | None] = mapped_column(String(255))  # (0062,0009)
    software_source_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("software_source_code.id")
    )
    # where it was read from, so the mask can be rebuilt and checked against its digest
    source_sop_instance_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    source_location: Mapped[str | None] = mapped_column(Text)
    voxel_count: Mapped[int | None] = mapped_column(Integer)
    volume_mm3: Mapped[float | None] = mapped_column(Float)
    mask_sha256: Mapped[str | None] = mapped_column(String(64))

    __mapper_args__ = {"polymorphic_on": kind, "polymorphic_abstract": True}

    series: Mapped[ImagingSeries] = relationship(foreign_keys=[imaging_series_id])
    source_series: Mapped[ImagingSeries | None] = relationship(foreign_keys=[source_series_id])
    segmentation_type: Mapped[SegmentationType | None] = relationship()
    software: Mapped[SoftwareSourceCode | None] = relationship()


class ManualSegmentation(Segmentation):
    """Drawn by a person (MANUAL)."""

    __tablename__ = "manual_segmentation"
    __mapper_args__ = {"polymorphic_identity": "manual"}

    id: Mapped[int] = mapped_column(
        ForeignKey("segmentation.id", ondelete="CASCADE"), primary_key=True
    )
    annotator_role: Mapped[str | None] = mapped_column(String(128))  # e.g. radiologist
    annotator_experience_years: Mapped[float | None] = mapped_column(Float)
    number_of_annotators: Mapped[int | None] = mapped_column(Integer)


class SemiAutomatedSegmentation(Segmentation):
    """Proposed by an algorithm and corrected by a person (SEMIAUTOMATIC)."""

    __tablename__ = "semi_automated_segmentation"
    __mapper_args__ = {"polymorphic_identity": "semi_automated"}

    id: Mapped[int] = mapped_column(
        ForeignKey("segmentation.id", ondelete="CASCADE"), primary_key=True
    )
    manual_correction: Mapped[str | None] = mapped_column(Text)
    annotator_role: Mapped[str | None] = mapped_column(String(128))


class AutomatedSegmentation(Segmentation):
    """Made by an algorithm alone (AUTOMATIC)."""

    __tablename__ = "automated_segmentation"
    __mapper_args__ = {"polymorphic_identity": "automated"}

    id: Mapped[int] = mapped_column(
        ForeignKey("segmentation.id", ondelete="CASCADE"), primary_key=True
    )
    model_name: Mapped[str | None] = mapped_column(String(255))
    model_version: Mapped[str | None] = mapped_column(String(128))
    model_uri: Mapped[str | None] = mapped_column(String(1024))


class ImagingBiomarker(Timestamps, Base):
    """One feature value measured on a series (in a segmentation), coded where a code exists."""

    __tablename__ = "imaging_biomarker"
    __table_args__ = (
        _kind_check(FEATURE_KINDS),
        CheckConstraint(
            "value_type IN (" + ", ".join(f"'{k}'" for k in VALUE_TYPES) + ")",
            name="value_type",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    value_type: Mapped[str] = mapped_column(String(16), server_default="quantitative")
    imaging_series_id: Mapped[int] = mapped_column(ForeignKey("imaging_series.id"), index=True)
    segmentation_id: Mapped[int | None] = mapped_column(ForeignKey("segmentation.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    code_scheme: Mapped[str | None] = mapped_column(String(16))  # IBSI, DCM, SCT
    code: Mapped[str | None] = mapped_column(String(64), index=True)  # e.g. IBSI 8ZQL
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(64))  # UCUM
    # qualitative results are coded
    value_code_scheme: Mapped[str | None] = mapped_column(String(16))
    value_code: Mapped[str | None] = mapped_column(String(64))
    value_code_meaning: Mapped[str | None] = mapped_column(String(255))

    __mapper_args__ = {"polymorphic_on": kind, "polymorphic_abstract": True}

    series: Mapped[ImagingSeries] = relationship()
    segmentation: Mapped[Segmentation | None] = relationship()


class TexturalFeatures(ImagingBiomarker):
    """Handcrafted radiomic features (IBSI: morphology, intensity, texture matrices)."""

    __tablename__ = "textural_features"
    __mapper_args__ = {"polymorphic_identity": "textural"}

    id: Mapped[int] = mapped_column(
        ForeignKey("imaging_biomarker.id", ondelete="CASCADE"), primary_key=True
    )
    feature_family: Mapped[str | None] = mapped_column(String(64))  # e.g. GLCM, morphology
    aggregation_method: Mapped[str | None] = mapped_column(String(64))  # e.g. 3D averaged
    discretisation: Mapped[str | None] = mapped_column(String(128))  # e.g. FBN 32
    image_filter: Mapped[str | None] = mapped_column(String(128))


class DeepFeatures(ImagingBiomarker):
    """Features taken from a neural network."""

    __tablename__ = "deep_features"
    __mapper_args__ = {"polymorphic_identity": "deep"}

    id: Mapped[int] = mapped_column(
        ForeignKey("imaging_biomarker.id", ondelete="CASCADE"), primary_key=True
    )
    model_name: Mapped[str | None] = mapped_column(String(255))
    model_version: Mapped[str | None] = mapped_column(String(128))
    layer: Mapped[str | None] = mapped_column(String(255))
    feature_index: Mapped[int | None] = mapped_column(Integer)


class DynamicSignalFeatures(ImagingBiomarker):
    """Features of a signal over time (DCE/DSC perfusion, dynamic PET), e.g. Ktrans."""

    __tablename__ = "dynamic_signal_features"
    __mapper_args__ = {"polymorphic_identity": "dynamic_signal"}

    id: Mapped[int] = mapped_column(
        ForeignKey("imaging_biomarker.id", ondelete="CASCADE"), primary_key=True
    )
    pharmacokinetic_model: Mapped[str | None] = mapped_column(String(128))  # e.g. Tofts
    input_function: Mapped[str | None] = mapped_column(String(128))
    time_point_seconds: Mapped[float | None] = mapped_column(Float)


class ReportedBiomarker(ImagingBiomarker):
    """A measurement or qualitative evaluation read from a DICOM SR measurement report."""

    __tablename__ = "reported_biomarker"
    __mapper_args__ = {"polymorphic_identity": "reported"}

    id: Mapped[int] = mapped_column(
        ForeignKey("imaging_biomarker.id", ondelete="CASCADE"), primary_key=True
    )
    sr_sop_instance_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    tracking_identifier: Mapped[str | None] = mapped_column(String(255))
    tracking_uid: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str | None] = mapped_column(String(255))


class HarmonisedValue(Base):
    """A feature value after harmonisation (ComBat), beside the raw value it came from: the
    run (an ``image_analysis`` of type harmonisation) holds the parameters."""

    __tablename__ = "harmonised_value"
    __table_args__ = (UniqueConstraint("imaging_biomarker_id", "image_analysis_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    imaging_biomarker_id: Mapped[int] = mapped_column(
        ForeignKey("imaging_biomarker.id", ondelete="CASCADE"), index=True
    )
    image_analysis_id: Mapped[int] = mapped_column(
        ForeignKey("image_analysis.id", ondelete="CASCADE"), index=True
    )
    batch: Mapped[str] = mapped_column(String(255))
    value: Mapped[float] = mapped_column(Float)

    imaging_biomarker: Mapped[ImagingBiomarker] = relationship()
    image_analysis: Mapped[ImageAnalysis] = relationship()
