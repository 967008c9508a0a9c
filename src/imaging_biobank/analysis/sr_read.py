"""Reading DICOM SR TID 1500 Measurement Reports into records (pure: no database).

``read_measurement_report(path)`` reads an Enhanced, Comprehensive or Comprehensive 3D SR
with highdicom (``highdicom.sr.srread``) whose root is TID 1500 and returns one
``MeasurementGroupRecord`` per measurement group of its "Imaging Measurements" container:

* TID 1410 planar ROI groups (``get_planar_roi_measurement_groups``): an image region
  (SCOORD / SCOORD3D) or a referenced segmentation frame;
* TID 1411 volumetric ROI groups (``get_volumetric_roi_measurement_groups``): a referenced
  segment (SEG SOP instance + segment number), image regions or a volume surface;
* TID 1501 image groups (``get_image_measurement_groups``): measurements of whole images.

Each numeric measurement (TID 300) becomes a ``QuantitativeRecord`` (name code, value,
UCUM unit code, derivation, method, qualifier), each coded qualitative evaluation a
``QualitativeRecord`` (concept name code, value code). The source series of a group is
its "Source series for segmentation" UID when present, else the series of its source
images, looked up in the SR's evidence (Current Requested Procedure Evidence and Pertinent
Other Evidence sequences).

highdicom is imported when a report is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from imaging_biobank.analysis.segmentation_read import Coded

PathLike = str | os.PathLike[str]
GroupTemplate = Literal["TID1410", "TID1411", "TID1501"]

# coded names that are the group's context, not one of its qualitative evaluations
_CONTEXT_CODES = frozenset(
    {
        ("DCM", "121071"),  # Finding
        ("SCT", "363698007"),  # Finding Site
        ("SCT", "370129005"),  # Measurement Method
        ("SCT", "276214006"),  # Finding category
        ("DCM", "126100"),  # Real World Value Map used for measurement
        ("DCM", "121058"),  # Procedure reported
    }
)


class MeasurementReportError(ValueError):
    """The file is not an SR document with a TID 1500 Measurement Report root."""


@dataclass(frozen=True)
class QuantitativeRecord:
    """One numeric measurement (TID 300): ``value`` in ``unit`` (a UCUM code)."""

    name: Coded
    value: float
    unit: Coded
    derivation: Coded | None = None  # e.g. Mean, Maximum (DCM 121401 "Derivation")
    method: Coded | None = None  # SCT 370129005 "Measurement Method"
    qualifier: Coded | None = None  # NumericValueQualifierCodeSequence (e.g. NaN)

    @property
    def ucum(self) -> str | None:
        """The UCUM unit code, when the unit is coded in UCUM."""
        return self.unit.value if self.unit.scheme == "UCUM" else None


@dataclass(frozen=True)
class QualitativeRecord:
    """One coded qualitative evaluation: concept name code and value code."""

    name: Coded
    value: Coded


@dataclass(frozen=True)
class MeasurementGroupRecord:
    """One measurement group of a TID 1500 report with what it measured and where."""

    template: GroupTemplate
    tracking_id: str | None
    tracking_uid: str | None
    finding_type: Coded | None
    finding_category: Coded | None
    finding_sites: tuple[Coded, ...]
    method: Coded | None
    # "Referenced Segment", "Referenced Segmentation Frame", "Image Region",
    # "Volume Surface", "Region In Space" or None (TID 1501)
    reference_type: str | None
    referenced_segmentation_uid: str | None  # the SEG (or surface segmentation) SOP instance
    referenced_segment_numbers: tuple[int, ...]
    referenced_frame_numbers: tuple[int, ...]
    region_graphic_types: tuple[str, ...]  # POLYLINE, POINT, ELLIPSE... of image regions
    region_frame_of_reference_uid: str | None  # SCOORD3D regions
    source_sop_instance_uids: tuple[str, ...]
    source_series_uids: tuple[str, ...]
    measurements: tuple[QuantitativeRecord, ...]
    evaluations: tuple[QualitativeRecord, ...]

    @property
    def source_series_uid(self) -> str | None:
        """The source series, when the group has exactly one."""
        return self.source_series_uids[0] if len(self.source_series_uids) == 1 else None


@dataclass(frozen=True)
class MeasurementReportRecord:
    """A TID 1500 Measurement Report: the SR instance and its measurement groups."""

    source_path: str
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    title: Coded | None
    procedures_reported: tuple[Coded, ...]
    groups: tuple[MeasurementGroupRecord, ...]


def _coded(concept: Any) -> Coded | None:
    return None if concept is None else Coded.from_item(concept)


def _measurement(measurement: Any) -> QuantitativeRecord:
    return QuantitativeRecord(
        name=Coded.from_item(measurement.name),
        value=float(measurement.value),
        unit=Coded.from_item(measurement.unit),
        derivation=_coded(measurement.derivation),
        method=_coded(measurement.method),
        qualifier=_coded(measurement.qualifier),
    )


def _evaluations(group: Any) -> tuple[QualitativeRecord, ...]:
    records = []
    for evaluation in group.get_qualitative_evaluations():
        name = Coded.from_item(evaluation.name)
        if (name.scheme, name.value) in _CONTEXT_CODES:
            continue
        records.append(QualitativeRecord(name=name, value=Coded.from_item(evaluation.value)))
    return tuple(records)


def _image_refs(items: Any) -> list[str]:
    """SOP instance UIDs of the IMAGE content items among ``items`` (pydicom datasets)."""
    uids = []
    for item in items or []:
        for ref in item.get("ReferencedSOPSequence", []):
            if "ReferencedSOPInstanceUID" in ref:
                uids.append(str(ref.ReferencedSOPInstanceUID))
    return uids


def _region_details(
    regions: list[Any],
) -> tuple[tuple[str, ...], str | None, list[str]]:
    graphic_types: list[str] = []
    frame_of_reference = None
    sources: list[str] = []
    for region in regions:
        graphic_types.append(str(region.GraphicType))
        if "ReferencedFrameOfReferenceUID" in region:
            frame_of_reference = str(region.ReferencedFrameOfReferenceUID)
        sources.extend(_image_refs(region.get("ContentSequence", [])))
    return tuple(graphic_types), frame_of_reference, sources


def _group(
    group: Any, template: GroupTemplate, series_of: dict[str, str]
) -> MeasurementGroupRecord:
    reference_type: str | None = None
    segmentation_uid: str | None = None
    segment_numbers: tuple[int, ...] = ()
    frame_numbers: tuple[int, ...] = ()
    graphic_types: tuple[str, ...] = ()
    region_for: str | None = None
    sources: list[str] = []
    source_series: list[str] = []
    if template == "TID1501":
        sources = [str(image.referenced_sop_instance_uid) for image in group.source_images]
    else:
        reference_type = str(group.reference_type.meaning)
    if template == "TID1410":
        frame = group.referenced_segmentation_frame
        if frame is not None:
            segmentation_uid = str(frame.referenced_sop_instance_uid)
            segment_numbers = tuple(frame.referenced_segment_numbers or ())
            frame_numbers = tuple(frame.referenced_frame_numbers or ())
            sources = [str(frame.source_image_for_segmentation.referenced_sop_instance_uid)]
        else:
            roi = group.roi
            if roi is not None:
                graphic_types, region_for, sources = _region_details([roi])
    elif template == "TID1411":
        segment = group.referenced_segment
        if segment is not None:
            segmentation_uid = str(segment.referenced_sop_instance_uid)
            segment_numbers = tuple(segment.referenced_segment_numbers or ())
            frame_numbers = tuple(segment.referenced_frame_numbers or ())
            sources = [
                str(image.referenced_sop_instance_uid)
                for image in segment.source_images_for_segmentation
            ]
            series_item = segment.source_series_for_segmentation
            if series_item is not None:
                source_series.append(str(series_item.value))
        else:
            roi = group.roi
            if isinstance(roi, list):
                graphic_types, region_for, sources = _region_details(roi)
    for uid in sources:
        series = series_of.get(uid)
        if series is not None and series not in source_series:
            source_series.append(series)
    return MeasurementGroupRecord(
        template=template,
        tracking_id=group.tracking_identifier,
        tracking_uid=None if group.tracking_uid is None else str(group.tracking_uid),
        finding_type=_coded(group.finding_type),
        finding_category=_coded(group.finding_category),
        finding_sites=tuple(Coded.from_item(site.value) for site in group.finding_sites),
        method=_coded(group.method),
        reference_type=reference_type,
        referenced_segmentation_uid=segmentation_uid,
        referenced_segment_numbers=segment_numbers,
        referenced_frame_numbers=frame_numbers,
        region_graphic_types=graphic_types,
        region_frame_of_reference_uid=region_for,
        source_sop_instance_uids=tuple(dict.fromkeys(sources)),
        source_series_uids=tuple(source_series),
        measurements=tuple(_measurement(m) for m in group.get_measurements()),
        evaluations=_evaluations(group),
    )


def read_measurement_report(path: PathLike) -> MeasurementReportRecord:
    """Read a TID 1500 Measurement Report SR into a ``MeasurementReportRecord``.

    Raises ``MeasurementReportError`` when the file is not an SR highdicom reads (Enhanced,
    Comprehensive, Comprehensive 3D) or its root template is not TID 1500.
    """
    import highdicom as hd

    try:
        sr = hd.sr.srread(path)
    except (RuntimeError, ValueError, AttributeError) as error:
        raise MeasurementReportError(f"{path}: not a readable SR document: {error}") from error
    report = sr.content
    if not isinstance(report, hd.sr.MeasurementReport):
        raise MeasurementReportError(f"{path}: the SR root is not TID 1500 Measurement Report")
    series_of = {str(sop): str(series) for _, series, sop, _ in sr.get_evidence()}
    groups: list[MeasurementGroupRecord] = []
    groups.extend(
        _group(g, "TID1410", series_of) for g in report.get_planar_roi_measurement_groups()
    )
    groups.extend(
        _group(g, "TID1411", series_of) for g in report.get_volumetric_roi_measurement_groups()
    )
    groups.extend(_group(g, "TID1501", series_of) for g in report.get_image_measurement_groups())
    procedures = tuple(
        Coded.from_item(item.ConceptCodeSequence[0])
        for item in sr.get("ContentSequence", [])
        if item.get("ValueType") == "CODE"
        and Coded.from_item(item.ConceptNameCodeSequence[0]).value == "121058"
    )
    title_sequence = sr.get("ConceptNameCodeSequence")
    return MeasurementReportRecord(
        source_path=str(path),
        sop_class_uid=str(sr.SOPClassUID),
        sop_instance_uid=str(sr.SOPInstanceUID),
        series_instance_uid=str(sr.SeriesInstanceUID),
        study_instance_uid=str(sr.StudyInstanceUID),
        title=Coded.from_item(title_sequence[0]) if title_sequence else None,
        procedures_reported=procedures,
        groups=tuple(groups),
    )


__all__ = [
    "MeasurementGroupRecord",
    "MeasurementReportError",
    "MeasurementReportRecord",
    "QualitativeRecord",
    "QuantitativeRecord",
    "read_measurement_report",
]
