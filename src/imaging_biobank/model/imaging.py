"""The Image Collection entities filled from DICOM headers, and the DICOM hierarchy.

``modality_information`` is one row per distinct piece of equipment and software, shared by
the series it acquired. ``acquisition_parameters`` and ``reconstruction_parameters`` are one
row per series: the attributes cohort queries filter on are typed columns (with min/max
where a value varies across the series' instances); everything else read goes to ``extra``.
The paper's N:M between modality information and reconstruction parameters is the join
through the series: series -> acquisition parameters -> modality information.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from imaging_biobank.model.base import Base, Timestamps
from imaging_biobank.model.vocab import BodyPartExamined, DatasetType, Modality

if TYPE_CHECKING:
    from imaging_biobank.model.collections import ImageCollection
    from imaging_biobank.model.individuals import SampleDonor


class ModalityInformation(Base):
    """The equipment (and its software) that acquired data: one row per distinct device."""

    __tablename__ = "modality_information"

    id: Mapped[int] = mapped_column(primary_key=True)
    # hash of the identifying tuple below, so NULLs still make one row per device
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    modality_id: Mapped[int | None] = mapped_column(ForeignKey("modality.id"), index=True)
    manufacturer: Mapped[str | None] = mapped_column(String(255))  # (0008,0070)
    manufacturer_model_name: Mapped[str | None] = mapped_column(String(255))  # (0008,1090)
    software_versions: Mapped[str | None] = mapped_column(String(512))  # (0018,1020)
    device_serial_number: Mapped[str | None] = mapped_column(String(255))  # (0018,1000)
    station_name: Mapped[str | None] = mapped_column(String(255))  # (0008,1010)

    modality: Mapped[Modality | None] = relationship()


class Algorithm(Base):
    """A reconstruction algorithm (e.g. OSEM, FBP), referenced by reconstruction parameters."""

    __tablename__ = "algorithm"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    family: Mapped[str | None] = mapped_column(String(64))  # FILTER_BACK_PROJ, ITERATIVE, ...
    description: Mapped[str | None] = mapped_column(Text)


class AcquisitionParameters(Base):
    """How one series was acquired (CT, MR, PT and generic attributes)."""

    __tablename__ = "acquisition_parameters"
    __table_args__ = (
        # the series in a slice thickness range, and a series' slice thickness, without
        # reading the rows (the two ways a database joins a cohort filter's series to it)
        Index("ix_acquisition_parameters_slice_thickness", "slice_thickness", "imaging_series_id"),
        Index(
            "ix_acquisition_parameters_series_slice_thickness",
            "imaging_series_id",
            "slice_thickness",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    imaging_series_id: Mapped[int] = mapped_column(
        ForeignKey("imaging_series.id", ondelete="CASCADE"), unique=True
    )
    modality_information_id: Mapped[int | None] = mapped_column(
        ForeignKey("modality_information.id"), index=True
    )
    # generic
    slice_thickness: Mapped[float | None] = mapped_column(Float)  # (0018,0050) mm
    slice_thickness_min: Mapped[float | None] = mapped_column(Float)
    slice_thickness_max: Mapped[float | None] = mapped_column(Float)
    spacing_between_slices: Mapped[float | None] = mapped_column(Float)  # (0018,0088) mm
    spacing_between_slices_min: Mapped[float | None] = mapped_column(Float)
    spacing_between_slices_max: Mapped[float | None] = mapped_column(Float)
    pixel_spacing_row: Mapped[float | None] = mapped_column(Float)  # (0028,0030)[0] mm
    pixel_spacing_column: Mapped[float | None] = mapped_column(Float)  # (0028,0030)[1] mm
    rows: Mapped[int | None] = mapped_column(Integer)  # (0028,0010)
    columns: Mapped[int | None] = mapped_column(Integer)  # (0028,0011)
    contrast_bolus_agent: Mapped[str | None] = mapped_column(String(255))  # (0018,0010)
    scan_options: Mapped[str | None] = mapped_column(String(255))  # (0018,0022), 1-n
    # CT
    kvp: Mapped[float | None] = mapped_column(Float)  # (0018,0060)
    kvp_min: Mapped[float | None] = mapped_column(Float)
    kvp_max: Mapped[float | None] = mapped_column(Float)
    xray_tube_current: Mapped[float | None] = mapped_column(Float)  # (0018,1151) mA
    xray_tube_current_min: Mapped[float | None] = mapped_column(Float)
    xray_tube_current_max: Mapped[float | None] = mapped_column(Float)
    exposure: Mapped[float | None] = mapped_column(Float)  # (0018,1152) mAs
    exposure_min: Mapped[float | None] = mapped_column(Float)
    exposure_max: Mapped[float | None] = mapped_column(Float)
    exposure_time: Mapped[float | None] = mapped_column(Float)  # (0018,1150) ms
    exposure_time_min: Mapped[float | None] = mapped_column(Float)
    exposure_time_max: Mapped[float | None] = mapped_column(Float)
    ctdi_vol: Mapped[float | None] = mapped_column(Float)  # (0018,9345) mGy
    ctdi_vol_min: Mapped[float | None] = mapped_column(Float)
    ctdi_vol_max: Mapped[float | None] = mapped_column(Float)
    # MR
    magnetic_field_strength: Mapped[float | None] = mapped_column(Float)  # (0018,0087) T
    repetition_time: Mapped[float | None] = mapped_column(Float)  # (0018,0080) ms
    repetition_time_min: Mapped[float | None] = mapped_column(Float)
    repetition_time_max: Mapped[float | None] = mapped_column(Float)
    echo_time: Mapped[float | None] = mapped_column(Float)  # (0018,0081) ms
    echo_time_min: Mapped[float | None] = mapped_column(Float)
    echo_time_max: Mapped[float | None] = mapped_column(Float)
    inversion_time: Mapped[float | None] = mapped_column(Float)  # (0018,0082) ms
    inversion_time_min: Mapped[float | None] = mapped_column(Float)
    inversion_time_max: Mapped[float | None] = mapped_column(Float)
    flip_angle: Mapped[float | None] = mapped_column(Float)  # (0018,1314) degrees
    flip_angle_min: Mapped[float | None] = mapped_column(Float)
    flip_angle_max: Mapped[float | None] = mapped_column(Float)
    scanning_sequence: Mapped[str | None] = mapped_column(String(64))  # (0018,0020), 1-n
    sequence_variant: Mapped[str | None] = mapped_column(String(64))  # (0018,0021), 1-n
    sequence_name: Mapped[str | None] = mapped_column(String(64))  # (0018,0024)
    mr_acquisition_type: Mapped[str | None] = mapped_column(String(16))  # (0018,0023)
    imaging_frequency: Mapped[float | None] = mapped_column(Float)  # (0018,0084) MHz
    # PT / NM
    radiopharmaceutical: Mapped[str | None] = mapped_column(String(255))  # (0018,0031)
    radiopharmaceutical_code: Mapped[str | None] = mapped_column(String(64))  # (0054,0304)
    radionuclide: Mapped[str | None] = mapped_column(String(255))  # (0054,0300) meaning
    radionuclide_code: Mapped[str | None] = mapped_column(String(64))  # (0054,0300) value
    radionuclide_total_dose: Mapped[float | None] = mapped_column(Float)  # (0018,1074) Bq
    radionuclide_half_life: Mapped[float | None] = mapped_column(Float)  # (0018,1075) s
    units: Mapped[str | None] = mapped_column(String(16))  # (0054,1001)
    decay_correction: Mapped[str | None] = mapped_column(String(16))  # (0054,1102)
    corrected_image: Mapped[str | None] = mapped_column(String(128))  # (0028,0051), 1-n
    # everything else read from the headers, keyed by DICOM keyword
    extra: Mapped[dict[str, Any] | None]

    modality_information: Mapped[ModalityInformation | None] = relationship()


class ReconstructionParameters(Base):
    """How one series was reconstructed."""

    __tablename__ = "reconstruction_parameters"

    id: Mapped[int] = mapped_column(primary_key=True)
    imaging_series_id: Mapped[int] = mapped_column(
        ForeignKey("imaging_series.id", ondelete="CASCADE"), unique=True
    )
    algorithm_id: Mapped[int | None] = mapped_column(ForeignKey("algorithm.id"), index=True)
    convolution_kernel: Mapped[str | None] = mapped_column(String(255))  # (0018,1210), 1-n
    reconstruction_diameter: Mapped[float | None] = mapped_column(Float)  # (0018,1100) mm
    reconstruction_diameter_min: Mapped[float | None] = mapped_column(Float)
    reconstruction_diameter_max: Mapped[float | None] = mapped_column(Float)
    reconstruction_algorithm: Mapped[str | None] = mapped_column(String(64))  # (0018,9315)
    reconstruction_method: Mapped[str | None] = mapped_column(String(255))  # (0054,1103)
    iterations: Mapped[int | None] = mapped_column(Integer)
    subsets: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[dict[str, Any] | None]

    algorithm: Mapped[Algorithm | None] = relationship()


class ImagingStudy(Timestamps, Base):
    """A DICOM study, keyed by its (pseudonymised) Study Instance UID."""

    __tablename__ = "imaging_study"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)  # (0020,000D)
    study_date: Mapped[dt.date | None] = mapped_column(
        Date
    )  # (0008,0020), shifted when de-identified
    study_description: Mapped[str | None] = mapped_column(Text)  # (0008,1030)
    patient_age_years: Mapped[float | None] = mapped_column(Float)  # (0010,1010) in years
    patient_weight_kg: Mapped[float | None] = mapped_column(Float)  # (0010,1030)
    patient_size_m: Mapped[float | None] = mapped_column(Float)  # (0010,1020)
    # derived by the writer
    number_of_series: Mapped[int | None] = mapped_column(Integer)
    number_of_instances: Mapped[int | None] = mapped_column(Integer)

    series: Mapped[list[ImagingSeries]] = relationship(back_populates="study")


class ImagingSeries(Timestamps, Base):
    """A DICOM series: belongs to one image collection and one donor, and points at the
    Image Collection entities that describe it."""

    __tablename__ = "imaging_series"
    # cohort queries find series by modality and body part and count them from the index
    # alone; the facets count donors per modality, body part and study age from (term,
    # donor) pairs read in index order, and per donor of a cohort from the donor's entries
    __table_args__ = (
        Index(
            "ix_imaging_series_cohort",
            "modality_id",
            "body_part_examined_id",
            "slice_thickness",
            "sample_donor_id",
            "imaging_study_id",
            "image_collection_id",
            "number_of_instances",
            "id",  # for PostgreSQL's index-only scans (SQLite's indexes hold it anyway)
        ),
        Index("ix_imaging_series_modality_donor", "modality_id", "sample_donor_id"),
        Index("ix_imaging_series_body_part_donor", "body_part_examined_id", "sample_donor_id"),
        Index("ix_imaging_series_study_donor", "imaging_study_id", "sample_donor_id"),
        Index(
            "ix_imaging_series_donor_facets",
            "sample_donor_id",
            "modality_id",
            "body_part_examined_id",
            "imaging_study_id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)  # (0020,000E)
    imaging_study_id: Mapped[int] = mapped_column(ForeignKey("imaging_study.id"))
    image_collection_id: Mapped[int] = mapped_column(ForeignKey("image_collection.id"), index=True)
    sample_donor_id: Mapped[int] = mapped_column(ForeignKey("sample_donor.id"))
    modality_id: Mapped[int | None] = mapped_column(ForeignKey("modality.id"))  # (0008,0060)
    modality_value: Mapped[str | None] = mapped_column(String(16))  # verbatim
    series_number: Mapped[int | None] = mapped_column(Integer)  # (0020,0011)
    series_description: Mapped[str | None] = mapped_column(Text)  # (0008,103E)
    series_date: Mapped[dt.date | None] = mapped_column(Date)  # (0008,0021)
    body_part_examined_id: Mapped[int | None] = mapped_column(ForeignKey("body_part_examined.id"))
    body_part_examined_value: Mapped[str | None] = mapped_column(String(64))  # verbatim
    body_part_examined_flag: Mapped[str | None] = mapped_column(String(32))  # why not standard
    anatomic_region_scheme: Mapped[str | None] = mapped_column(String(16))  # (0008,2218)
    anatomic_region_code: Mapped[str | None] = mapped_column(String(64))
    anatomic_region_meaning: Mapped[str | None] = mapped_column(String(255))
    laterality: Mapped[str | None] = mapped_column(String(16))  # (0020,0060)
    dataset_type_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_type.id"), index=True)
    frame_of_reference_uid: Mapped[str | None] = mapped_column(String(64))  # (0020,0052)
    number_of_instances: Mapped[int | None] = mapped_column(Integer)  # derived
    # derived: acquisition_parameters.slice_thickness, here so that a cohort filter on
    # modality, body part and slice thickness reads one index range
    slice_thickness: Mapped[float | None] = mapped_column(Float)

    study: Mapped[ImagingStudy] = relationship(back_populates="series")
    image_collection: Mapped[ImageCollection] = relationship()
    sample_donor: Mapped[SampleDonor] = relationship()
    modality: Mapped[Modality | None] = relationship()
    body_part_examined: Mapped[BodyPartExamined | None] = relationship()
    dataset_type: Mapped[DatasetType | None] = relationship()
    acquisition_parameters: Mapped[AcquisitionParameters | None] = relationship(
        foreign_keys=[AcquisitionParameters.imaging_series_id]
    )
    reconstruction_parameters: Mapped[ReconstructionParameters | None] = relationship(
        foreign_keys=[ReconstructionParameters.imaging_series_id]
    )
    instances: Mapped[list[ImagingInstance]] = relationship(back_populates="series")


class ImagingInstance(Timestamps, Base):
    """A DICOM instance (one file or one object in a PACS)."""

    __tablename__ = "imaging_instance"

    id: Mapped[int] = mapped_column(primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)  # (0008,0018)
    imaging_series_id: Mapped[int] = mapped_column(ForeignKey("imaging_series.id"), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))  # (0008,0016) verbatim
    dataset_type_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_type.id"))
    instance_number: Mapped[int | None] = mapped_column(Integer)  # (0020,0013)
    number_of_frames: Mapped[int | None] = mapped_column(Integer)  # (0028,0008)
    transfer_syntax_uid: Mapped[str | None] = mapped_column(String(64))  # (0002,0010)
    location: Mapped[str | None] = mapped_column(Text)  # file path or DICOMweb URL
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    content_hash: Mapped[str | None] = mapped_column(String(64))  # of the header record read

    series: Mapped[ImagingSeries] = relationship(back_populates="instances")
    dataset_type: Mapped[DatasetType | None] = relationship()
