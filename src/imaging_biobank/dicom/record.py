"""From a DICOM header to an ``InstanceRecord``: everything the model stores about one
instance, its series and study (pure; the same for every parser).

Typed acquisition and reconstruction values go to named fields; everything else that was
read goes to ``extra`` keyed by DICOM keyword. Values that vary across the frames of an
enhanced multi-frame object (shared and per-frame functional groups) are kept as a range.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import pickle
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from imaging_biobank.dicom.tags import tag, tag_text
from imaging_biobank.dicom.view import HeaderView

REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")

# Acquisition/reconstruction fields whose series value is stored with its min and max:
# field -> (top-level keyword, [(functional group macro, keyword in it)]) for enhanced objects
RANGED: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "slice_thickness": ("SliceThickness", [("PixelMeasuresSequence", "SliceThickness")]),
    "spacing_between_slices": (
        "SpacingBetweenSlices",
        [("PixelMeasuresSequence", "SpacingBetweenSlices")],
    ),
    "kvp": ("KVP", [("CTXRayDetailsSequence", "KVP")]),
    "xray_tube_current": ("XRayTubeCurrent", [("CTExposureSequence", "XRayTubeCurrentInmA")]),
    "exposure": ("Exposure", [("CTExposureSequence", "ExposureInmAs")]),
    "exposure_time": ("ExposureTime", [("CTExposureSequence", "ExposureTimeInms")]),
    "ctdi_vol": ("CTDIvol", [("CTExposureSequence", "CTDIvol")]),
    "repetition_time": (
        "RepetitionTime",
        [("MRTimingAndRelatedParametersSequence", "RepetitionTime")],
    ),
    "echo_time": ("EchoTime", [("MREchoSequence", "EffectiveEchoTime")]),
    "inversion_time": ("InversionTime", [("MRModifierSequence", "InversionTimes")]),
    "flip_angle": ("FlipAngle", [("MRTimingAndRelatedParametersSequence", "FlipAngle")]),
    "reconstruction_diameter": (
        "ReconstructionDiameter",
        [("CTReconstructionSequence", "ReconstructionDiameter")],
    ),
}
RECONSTRUCTION_RANGED = frozenset({"reconstruction_diameter"})

# Everything else read, by modality family, kept in ``extra`` under its keyword.
EXTRA_COMMON = (
    "ImageType",
    "ProtocolName",
    "PatientPosition",
    "ContrastBolusRoute",
    "ContrastBolusVolume",
    "AcquisitionDate",
    "RescaleType",
)
EXTRA_CT = (
    "SpiralPitchFactor",
    "RevolutionTime",
    "TableSpeed",
    "TableFeedPerRotation",
    "SingleCollimationWidth",
    "TotalCollimationWidth",
    "GantryDetectorTilt",
    "FilterType",
    "FocalSpots",
    "DataCollectionDiameter",
    "ExposureInuAs",
    "GeneratorPower",
)
EXTRA_MR = (
    "EchoTrainLength",
    "NumberOfAverages",
    "ImagedNucleus",
    "EchoNumbers",
    "PixelBandwidth",
    "PercentPhaseFieldOfView",
    "PercentSampling",
    "AcquisitionMatrix",
    "ReceiveCoilName",
    "TransmitCoilName",
    "DiffusionBValue",
    "ParallelAcquisitionTechnique",
    "AcquisitionContrast",
)
EXTRA_PT = (
    "SeriesType",
    "CountsSource",
    "ActualFrameDuration",
    "FrameReferenceTime",
    "AxialAcceptance",
    "AxialMash",
    "TransverseMash",
    "CoincidenceWindowWidth",
    "NumberOfSlices",
    "NumberOfTimeSlices",
)
EXTRA_RECONSTRUCTION = (
    "ReconstructionFieldOfView",
    "ReconstructionPixelSpacing",
    "ReconstructionTargetCenterPatient",
    "IterativeReconstructionMethod",
    "AttenuationCorrectionMethod",
    "ScatterCorrectionMethod",
    "RandomsCorrectionMethod",
    "DecayFactor",
    "DoseCalibrationFactor",
    "RescaleIntercept",
    "RescaleSlope",
)
EXTRA_BY_MODALITY = {"CT": EXTRA_CT, "MR": EXTRA_MR, "PT": EXTRA_PT, "NM": EXTRA_PT}
EXTRA_RADIOPHARMACEUTICAL = (
    "RadiopharmaceuticalStartTime",
    "RadiopharmaceuticalStartDateTime",
    "RadiopharmaceuticalVolume",
    "RadiopharmaceuticalRoute",
)
ITERATIONS = re.compile(
    r"(\d+)\s*i(?:t(?:er(?:ations?)?)?)?\b.*?(\d+)\s*s(?:ub(?:sets?)?)?\b", re.I
)


# the descriptive text values real archives are seen to carry NUL bytes in (the index of the
# NCI Imaging Data Commons has 240 series descriptions with NUL bytes): the ingest summary
# counts them (NUL bytes are dropped from every value; looking for them costs time)
TEXT_CHECKED_FOR_NUL = tuple(
    tag(keyword)
    for keyword in (
        "StudyDescription",
        "SeriesDescription",
        "BodyPartExamined",
        "ProtocolName",
        "Manufacturer",
        "ManufacturerModelName",
    )
)

SHARED_GROUPS = tag("SharedFunctionalGroupsSequence")
PER_FRAME_GROUPS = tag("PerFrameFunctionalGroupsSequence")


class HeaderError(ValueError):
    """A file the model cannot take (not DICOM, truncated, missing UIDs); says why."""


class NotAnInstanceError(HeaderError):
    """A valid DICOM file that is not an instance (a DICOMDIR media index)."""


MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


@dataclass(slots=True)
class Coded:
    """A coded concept: (scheme, code, meaning), e.g. (SCT, 816094009, Chest)."""

    scheme: str | None
    code: str | None
    meaning: str | None


@dataclass(slots=True)
class InstanceRecord:
    """What the model stores about one instance and, through it, its series and study."""

    # identity and hierarchy
    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str | None = None
    instance_number: int | None = None
    number_of_frames: int | None = None
    # the donor: PatientID as read; the ingest worker replaces it by the donor pseudonym
    # before the record leaves the worker, so no identifier travels further
    donor: str = ""
    donor_from_study: bool = False  # PatientID was empty: one donor per study
    patient_sex: str | None = None  # M, F, O
    patient_age_years: float | None = None
    patient_weight_kg: float | None = None
    patient_size_m: float | None = None
    # study
    study_date: str | None = None  # ISO yyyy-mm-dd
    study_description: str | None = None
    # series
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    series_date: str | None = None
    body_part_examined: str | None = None  # (0018,0015) verbatim
    anatomic_region: Coded | None = None  # (0008,2218)
    laterality: str | None = None
    # equipment (modality information)
    manufacturer: str | None = None
    manufacturer_model_name: str | None = None
    software_versions: str | None = None
    device_serial_number: str | None = None
    station_name: str | None = None
    # acquisition and reconstruction: typed values, ranges over frames, everything else
    acquisition: dict[str, Any] = field(default_factory=dict)
    reconstruction: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # min, max (frames)
    acquisition_extra: dict[str, Any] = field(default_factory=dict)
    reconstruction_extra: dict[str, Any] = field(default_factory=dict)
    # where it came from (not part of the content)
    location: str = ""
    file_size: int | None = None
    transfer_syntax_uid: str | None = None
    # the fingerprint of the key our de-identifier recorded (De-identification Method
    # "key ..."): with the same key, PatientID is already the donor pseudonym
    pseudonymised_with: str | None = None
    digest: str | None = None  # content_hash(), once computed (by the worker)
    # dirty values met while reading (not content): text values that held NUL bytes inside
    # (dropped), and a Patient's Age present but not a DICOM AS age (not stored)
    nul_values: int = 0
    age_unreadable: bool = False

    # pickling (worker -> writer, for every instance): the values in slot order, not the
    # dataclass default, which looks up ``fields()`` for every record (3x slower to load)
    def __reduce__(self) -> tuple[Any, ...]:
        return (InstanceRecord, tuple([getattr(self, name) for name in _SLOTS]))

    def content(self) -> dict[str, Any]:
        """The record's content: everything but where and how it was encoded."""
        return {name: getattr(self, name) for name in CONTENT_FIELDS}

    def content_hash(self) -> str:
        """A hash of the content: equal records from any parser or source hash equal."""
        if self.digest is None:
            # dicts keep the order the builder filled them in, the same for every parser
            canonical = tuple([getattr(self, name) for name in CONTENT_FIELDS])
            self.digest = hashlib.sha256(pickle.dumps(canonical, protocol=5)).hexdigest()
        return self.digest

    @property
    def sort_key(self) -> tuple[int, str]:
        """Order of instances in a series: the first one stands for the series' values."""
        number = self.instance_number if self.instance_number is not None else 2**31
        return (number, self.sop_instance_uid)


_SLOTS = tuple(f.name for f in fields(InstanceRecord))
CONTENT_FIELDS = tuple(
    f.name
    for f in fields(InstanceRecord)
    if f.name
    not in (
        "location",
        "file_size",
        "transfer_syntax_uid",
        "pseudonymised_with",
        "nul_values",
        "age_unreadable",
    )
)


def age_in_years(value: str | None) -> float | None:
    """A DICOM AS age (``066Y``, ``011M``, ``003W``, ``010D``) in years."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY]?)\s*", value.upper())
    if match is None:
        return None
    number, unit = int(match.group(1)), match.group(2) or "Y"
    days = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}[unit]
    return round(number * days / 365.25, 4)


def iso_date(value: str | None) -> str | None:
    """A DICOM DA (``20100131``, also the ACR-NEMA ``2010.01.31``) as ISO 8601."""
    if not value:
        return None
    digits = value.strip().replace(".", "").replace("-", "")
    if len(digits) < 8 or not digits[:8].isdigit():
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat()
    except ValueError:
        return None


def clean_text(value: str | None) -> str | None:
    """Text as stored: NUL bytes dropped, padding stripped, empty as None."""
    if value is None:
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _int(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _coded(view: HeaderView | None) -> Coded | None:
    if view is None:
        return None
    coded = Coded(
        clean_text(view.text(tag("CodingSchemeDesignator"))),
        clean_text(view.text(tag("CodeValue")) or view.text(tag("LongCodeValue"))),
        clean_text(view.text(tag("CodeMeaning"))),
    )
    return coded if coded.code or coded.meaning else None


def _plain(values: list[Any] | None) -> Any:
    if values is None:
        return None
    values = [
        int(v)
        if isinstance(v, float) and v.is_integer()
        else clean_text(v) or ""
        if isinstance(v, str) and "\x00" in v
        else v
        for v in values
    ]
    return values[0] if len(values) == 1 else values


def _extras(view: HeaderView, keywords: tuple[str, ...], into: dict[str, Any]) -> None:
    """Every attribute of ``keywords`` the header has, by keyword, into ``into``."""
    tags = _keyword_tags(keywords)
    for t in view.present(tags):
        into[_KEYWORD_OF[t]] = _plain(view.values(t))


_KEYWORD_OF: dict[int, str] = {}


def _keyword_tags(keywords: tuple[str, ...]) -> tuple[int, ...]:
    tags = tuple(tag(k) for k in keywords)
    _KEYWORD_OF.update(zip(tags, keywords, strict=True))
    return tags


class _Frames:
    """The functional-group items of an enhanced object: shared first, then each frame."""

    def __init__(self, view: HeaderView):
        self.groups = [
            *view.items(SHARED_GROUPS),
            *view.items(PER_FRAME_GROUPS),
        ]

    def values(self, macro: str, keyword: str) -> list[float]:
        found: list[float] = []
        macro_tag, keyword_tag = tag(macro), tag(keyword)
        for group in self.groups:
            for item in group.items(macro_tag):
                numbers = item.numbers(keyword_tag)
                if numbers:
                    found.append(numbers[0])
        return found

    def text(self, macro: str, keyword: str) -> str | None:
        macro_tag, keyword_tag = tag(macro), tag(keyword)
        for group in self.groups:
            for item in group.items(macro_tag):
                text = item.text(keyword_tag)
                if text:
                    return text
        return None

    def item(self, macro: str) -> HeaderView | None:
        for group in self.groups:
            found = group.item(tag(macro))
            if found is not None:
                return found
        return None


def _ranged(record: InstanceRecord, view: HeaderView, frames: _Frames) -> None:
    enhanced = bool(frames.groups)
    for name, (keyword, macros) in RANGED.items():
        values: list[float] = []
        top = view.number(tag(keyword))
        if top is not None:
            values.append(top)
        if enhanced:
            for macro, inner in macros:
                values.extend(frames.values(macro, inner))
        if not values:
            continue
        target = record.reconstruction if name in RECONSTRUCTION_RANGED else record.acquisition
        target[name] = values[0]
        record.ranges[name] = (min(values), max(values))


def _radiopharmaceutical(record: InstanceRecord, view: HeaderView) -> None:
    info = view.item(tag("RadiopharmaceuticalInformationSequence"))
    if info is None:
        return
    acquisition = record.acquisition
    acquisition["radiopharmaceutical"] = clean_text(info.text(tag("Radiopharmaceutical")))
    drug = _coded(info.item(tag("RadiopharmaceuticalCodeSequence")))
    if drug is not None:
        acquisition["radiopharmaceutical_code"] = f"{drug.scheme}:{drug.code}"
        if acquisition["radiopharmaceutical"] is None:
            acquisition["radiopharmaceutical"] = drug.meaning
    nuclide = _coded(info.item(tag("RadionuclideCodeSequence")))
    if nuclide is not None:
        acquisition["radionuclide"] = nuclide.meaning
        acquisition["radionuclide_code"] = f"{nuclide.scheme}:{nuclide.code}"
    acquisition["radionuclide_total_dose"] = info.number(tag("RadionuclideTotalDose"))
    acquisition["radionuclide_half_life"] = info.number(tag("RadionuclideHalfLife"))
    _extras(info, EXTRA_RADIOPHARMACEUTICAL, record.acquisition_extra)


def _reconstruction(record: InstanceRecord, view: HeaderView, frames: _Frames) -> None:
    recon = record.reconstruction
    kernel = view.text(tag("ConvolutionKernel")) or frames.text(
        "CTReconstructionSequence", "ConvolutionKernel"
    )
    recon["convolution_kernel"] = clean_text(kernel)
    recon["reconstruction_algorithm"] = clean_text(
        view.text(tag("ReconstructionAlgorithm"))
        or frames.text("CTReconstructionSequence", "ReconstructionAlgorithm")
    )
    method = clean_text(view.text(tag("ReconstructionMethod")))
    recon["reconstruction_method"] = method
    if method:
        match = ITERATIONS.search(method)
        if match:
            recon["iterations"], recon["subsets"] = int(match.group(1)), int(match.group(2))
    _extras(view, EXTRA_RECONSTRUCTION, record.reconstruction_extra)


def _acquisition(record: InstanceRecord, view: HeaderView, frames: _Frames) -> None:
    acq = record.acquisition
    spacing = view.numbers(tag("PixelSpacing"))
    if spacing is None:
        measures = frames.item("PixelMeasuresSequence")
        spacing = measures.numbers(tag("PixelSpacing")) if measures is not None else None
    if spacing:
        acq["pixel_spacing_row"] = spacing[0]
        acq["pixel_spacing_column"] = spacing[1] if len(spacing) > 1 else spacing[0]
    acq["rows"] = _int(view.number(tag("Rows")))
    acq["columns"] = _int(view.number(tag("Columns")))
    acq["contrast_bolus_agent"] = clean_text(view.text(tag("ContrastBolusAgent")))
    acq["scan_options"] = clean_text(view.text(tag("ScanOptions")))
    acq["magnetic_field_strength"] = view.number(tag("MagneticFieldStrength"))
    acq["scanning_sequence"] = clean_text(view.text(tag("ScanningSequence")))
    acq["sequence_variant"] = clean_text(view.text(tag("SequenceVariant")))
    acq["sequence_name"] = clean_text(
        view.text(tag("SequenceName")) or view.text(tag("PulseSequenceName"))
    )
    acq["mr_acquisition_type"] = clean_text(view.text(tag("MRAcquisitionType")))
    acq["imaging_frequency"] = view.number(tag("ImagingFrequency"))
    acq["units"] = clean_text(view.text(tag("Units")))
    acq["decay_correction"] = clean_text(view.text(tag("DecayCorrection")))
    acq["corrected_image"] = clean_text(view.text(tag("CorrectedImage")))
    _radiopharmaceutical(record, view)
    _extras(
        view,
        EXTRA_COMMON + EXTRA_BY_MODALITY.get(record.modality or "", ()),
        record.acquisition_extra,
    )


def _key_mark(values: list[str] | None) -> str | None:
    """The key fingerprint our de-identifier writes into De-identification Method."""
    for value in values or ():
        if value.startswith("key ") and len(value) == 20:
            return value[4:]
    return None


def build_record(
    view: HeaderView,
    *,
    location: str = "",
    file_size: int | None = None,
    transfer_syntax_uid: str | None = None,
) -> InstanceRecord:
    """Map one header to a record; ``HeaderError`` names a missing required attribute."""
    if view.text(tag("MediaStorageSOPClassUID")) == MEDIA_STORAGE_DIRECTORY:
        raise NotAnInstanceError("DICOMDIR (a media index, not an instance)")
    uids = {}
    for keyword in REQUIRED_UIDS:
        value = clean_text(view.text(tag(keyword)))
        if value is None:
            raise HeaderError(f"missing {keyword} {tag_text(keyword)}")
        uids[keyword] = value
    t = tag
    patient_id = clean_text(view.text(t("PatientID")))
    age_text = clean_text(view.text(t("PatientAge")))
    age = age_in_years(age_text)
    frames = _Frames(view)
    region_view = view.item(t("AnatomicRegionSequence"))
    if region_view is None:
        anatomy = frames.item("FrameAnatomySequence")
        region_view = anatomy.item(t("AnatomicRegionSequence")) if anatomy is not None else None
    record = InstanceRecord(
        sop_instance_uid=uids["SOPInstanceUID"],
        sop_class_uid=uids["SOPClassUID"],
        study_instance_uid=uids["StudyInstanceUID"],
        series_instance_uid=uids["SeriesInstanceUID"],
        frame_of_reference_uid=clean_text(view.text(t("FrameOfReferenceUID"))),
        instance_number=_int(view.number(t("InstanceNumber"))),
        number_of_frames=_int(view.number(t("NumberOfFrames"))),
        donor=patient_id or uids["StudyInstanceUID"],
        donor_from_study=patient_id is None,
        patient_sex=clean_text(view.text(t("PatientSex"))),
        patient_age_years=age,
        patient_weight_kg=view.number(t("PatientWeight")),
        patient_size_m=view.number(t("PatientSize")),
        study_date=iso_date(view.text(t("StudyDate"))),
        study_description=clean_text(view.text(t("StudyDescription"))),
        modality=clean_text(view.text(t("Modality"))),
        series_number=_int(view.number(t("SeriesNumber"))),
        series_description=clean_text(view.text(t("SeriesDescription"))),
        series_date=iso_date(view.text(t("SeriesDate"))),
        body_part_examined=clean_text(view.text(t("BodyPartExamined"))),
        anatomic_region=_coded(region_view),
        laterality=clean_text(view.text(t("Laterality")) or view.text(t("ImageLaterality"))),
        manufacturer=clean_text(view.text(t("Manufacturer"))),
        manufacturer_model_name=clean_text(view.text(t("ManufacturerModelName"))),
        software_versions=clean_text(view.text(t("SoftwareVersions"))),
        device_serial_number=clean_text(view.text(t("DeviceSerialNumber"))),
        station_name=clean_text(view.text(t("StationName"))),
        location=location,
        file_size=file_size,
        transfer_syntax_uid=transfer_syntax_uid,
        pseudonymised_with=_key_mark(view.texts(t("DeidentificationMethod"))),
    )
    _ranged(record, view, frames)
    _acquisition(record, view, frames)
    _reconstruction(record, view, frames)
    record.acquisition = {k: v for k, v in record.acquisition.items() if v is not None}
    record.reconstruction = {k: v for k, v in record.reconstruction.items() if v is not None}
    record.nul_values = view.nul_values(TEXT_CHECKED_FOR_NUL)
    record.age_unreadable = age_text is not None and age is None
    return record


# Top-level attributes the builder looks at, so a fast parser can learn at once which are absent
TOP_LEVEL_KEYWORDS = (
    "MediaStorageSOPClassUID",
    *REQUIRED_UIDS,
    "FrameOfReferenceUID",
    "InstanceNumber",
    "NumberOfFrames",
    "PatientID",
    "DeidentificationMethod",
    "PatientSex",
    "PatientAge",
    "PatientWeight",
    "PatientSize",
    "StudyDate",
    "StudyDescription",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "BodyPartExamined",
    "AnatomicRegionSequence",
    "Laterality",
    "ImageLaterality",
    "Manufacturer",
    "ManufacturerModelName",
    "SoftwareVersions",
    "DeviceSerialNumber",
    "StationName",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    "PixelSpacing",
    "Rows",
    "Columns",
    "ContrastBolusAgent",
    "ScanOptions",
    "MagneticFieldStrength",
    "ScanningSequence",
    "SequenceVariant",
    "SequenceName",
    "PulseSequenceName",
    "MRAcquisitionType",
    "ImagingFrequency",
    "Units",
    "DecayCorrection",
    "CorrectedImage",
    "RadiopharmaceuticalInformationSequence",
    "ConvolutionKernel",
    "ReconstructionAlgorithm",
    "ReconstructionMethod",
    "BitsAllocated",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    *(keyword for keyword, _ in RANGED.values()),
    *EXTRA_COMMON,
    *EXTRA_CT,
    *EXTRA_MR,
    *EXTRA_PT,
    *EXTRA_RECONSTRUCTION,
)


def keywords_read() -> Iterable[str]:
    """Every keyword the builder may read (for documentation and tests)."""
    yield from REQUIRED_UIDS
    for keyword, macros in RANGED.values():
        yield keyword
        for macro, inner in macros:
            yield macro
            yield inner
    yield from EXTRA_COMMON + EXTRA_CT + EXTRA_MR + EXTRA_PT + EXTRA_RECONSTRUCTION
    yield from EXTRA_RADIOPHARMACEUTICAL
