"""Importing segmentations (RTSTRUCT, DICOM SEG, NIfTI label maps) onto stored series.

The series a segmentation lies on is, in this order: the one given; the one the object
names, if stored; else the stored image series in the object's frame of reference, and
when several share it (CT, MR and PET resampled onto one grid), the one whose files sit
next to the segmentation's file (``CT/mask/rt.dcm`` beside ``CT/image/``). Otherwise the
import stops and lists the candidates. Each segment becomes a ``segmentation`` row of its
kind (manual, semi-automated, automated) with its size, the digest of its mask and where
it came from, made by a ``segmentation_import`` run; importing the same object again
updates its rows instead of adding new ones.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session

from imaging_biobank.analysis import segmentation_read as reader
from imaging_biobank.analysis.runs import new_run, own_software, software_entry
from imaging_biobank.model import (
    AutomatedSegmentation,
    ImagingInstance,
    ImagingSeries,
    ManualSegmentation,
    Segmentation,
    SegmentationType,
    SemiAutomatedSegmentation,
)

RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
SEG = "1.2.840.10008.5.1.4.1.1.66.4"
NOT_IMAGES = ("RTSTRUCT", "SEG", "SR", "REG", "KO", "PR", "RTPLAN", "RTDOSE")
KIND_CLASSES: dict[str, type[Segmentation]] = {
    "manual": ManualSegmentation,
    "semi_automated": SemiAutomatedSegmentation,
    "automated": AutomatedSegmentation,
}


class SegmentationImportError(ValueError):
    """The segmentation cannot be imported as asked; the message says why and how."""


@dataclass(frozen=True)
class Declared:
    """What a segmentation object says about the images it was drawn on."""

    kind: str  # RTSTRUCT, SEG or NIFTI
    series_uid: str | None
    frame_of_reference_uid: str | None
    study_uid: str | None


@dataclass
class SegmentationImport:
    path: str
    series_instance_uid: str
    segmentations: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    run_id: int | None = None


def declared(path: Path) -> Declared:
    """Read what a file is and what it references (headers only)."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return Declared("NIFTI", None, None, None)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (pydicom.errors.InvalidDicomError, OSError) as error:
        raise SegmentationImportError(f"{path}: not a DICOM file nor NIfTI ({error})") from None
    sop_class = str(ds.get("SOPClassUID", ""))
    study = str(ds.get("StudyInstanceUID", "")) or None
    if sop_class == RTSTRUCT:
        series_uid = for_uid = None
        for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
            for_uid = for_uid or str(frame.get("FrameOfReferenceUID", "")) or None
            for study_item in frame.get("RTReferencedStudySequence", []):
                for series_item in study_item.get("RTReferencedSeriesSequence", []):
                    series_uid = series_uid or str(series_item.SeriesInstanceUID)
        return Declared("RTSTRUCT", series_uid, for_uid, study)
    if sop_class == SEG:
        series_uid = None
        for item in ds.get("ReferencedSeriesSequence", []):
            series_uid = series_uid or str(item.SeriesInstanceUID)
        return Declared("SEG", series_uid, str(ds.get("FrameOfReferenceUID", "")) or None, study)
    raise SegmentationImportError(
        f"{path}: SOP class {sop_class or '(none)'} is neither RT Structure Set nor"
        " Segmentation; NIfTI masks end in .nii or .nii.gz"
    )


def _series(session: Session, uid: str) -> ImagingSeries | None:
    return session.scalars(
        select(ImagingSeries).where(ImagingSeries.series_instance_uid == uid)
    ).first()


def _files(session: Session, series: ImagingSeries) -> list[Path]:
    locations = session.scalars(
        select(ImagingInstance.location).where(ImagingInstance.imaging_series_id == series.id)
    ).all()
    files = [Path(loc) for loc in locations if loc and "://" not in loc and "!/" not in loc]
    if not files or len(files) != len(locations):
        raise SegmentationImportError(
            f"series {series.series_instance_uid} is not stored as local files"
            " (ingested from a PACS?); segmentations need the images' geometry"
        )
    return files


def resolve_series(
    session: Session, path: Path, what: Declared, series_uid: str | None
) -> tuple[ImagingSeries, list[str]]:
    """The stored series the segmentation lies on, and why, when it is not the named one."""
    if series_uid is not None:
        series = _series(session, series_uid)
        if series is None:
            raise SegmentationImportError(f"no series {series_uid} in the database")
        return series, []
    if what.kind == "NIFTI":
        raise SegmentationImportError(f"{path}: a NIfTI mask needs --series (its image series)")
    if what.series_uid and (named := _series(session, what.series_uid)) is not None:
        return named, []
    if what.frame_of_reference_uid is None:
        raise SegmentationImportError(
            f"{path}: references series {what.series_uid}, which is not stored; give --series"
        )
    candidates = [
        s
        for s in session.scalars(
            select(ImagingSeries).where(
                ImagingSeries.frame_of_reference_uid == what.frame_of_reference_uid
            )
        )
        if (s.modality_value or "") not in NOT_IMAGES
    ]
    note = (
        f"the series it names ({what.series_uid}) is not stored; placed on stored series of"
        f" its frame of reference {what.frame_of_reference_uid}"
    )
    if len(candidates) == 1:
        return candidates[0], [note]
    beside = [s for s in candidates if _beside(session, s, path)]
    if len(beside) == 1:
        return beside[0], [note + ", the one stored beside it"]
    listed = ", ".join(f"{s.series_instance_uid} ({s.modality_value})" for s in candidates)
    raise SegmentationImportError(
        f"{path}: references series {what.series_uid}, which is not stored;"
        + (f" candidates in its frame of reference: {listed};" if candidates else "")
        + " give --series"
    )


def _beside(session: Session, series: ImagingSeries, path: Path) -> bool:
    """Whether the series' files and the segmentation file share their grandparent folder
    (``X/image/*.dcm`` and ``X/mask/seg.dcm``), and no other of the candidates does."""
    location = session.scalars(
        select(ImagingInstance.location).where(ImagingInstance.imaging_series_id == series.id)
    ).first()
    if not location or "://" in location:
        return False
    here = os.path.realpath(path.parent.parent)
    return os.path.realpath(Path(location).parent.parent) == here


def mask_digest(mask: np.ndarray) -> str:
    """The digest a mask is checked against when it is rebuilt (shape and bits)."""
    packed = np.packbits(np.ascontiguousarray(mask, dtype=bool))
    return hashlib.sha256(repr(mask.shape).encode() + packed.tobytes()).hexdigest()


def read_records(path: Path, what: Declared, files: list[Path]) -> list[reader.SegmentRecord]:
    try:
        if what.kind == "RTSTRUCT":
            return reader.read_rtstruct(path, files)
        if what.kind == "SEG":
            return reader.read_seg(path, files)
        return reader.read_nifti_mask(path, files)
    except reader.SegmentationReadError as error:
        raise SegmentationImportError(f"{path}: {error}") from None


def import_segmentation(
    session: Session,
    path: Path,
    *,
    series_uid: str | None = None,
    kind: str | None = None,
    annotator_role: str | None = None,
    model: str | None = None,
    model_version: str | None = None,
) -> SegmentationImport:
    """Import every segment of one file onto its series."""
    what = declared(path)
    series, notes = resolve_series(session, path, what, series_uid)
    records = read_records(path, what, _files(session, series))
    if not records:
        raise SegmentationImportError(f"{path}: no segment with contours or voxels")
    result = SegmentationImport(str(path), series.series_instance_uid, warnings=list(notes))
    collection = series.image_collection
    software = (
        software_entry(session, collection, model, model_version or "unknown")
        if model
        else own_software(session, collection)
    )
    run = new_run(
        session,
        collection,
        "segmentation_import",
        f"{what.kind} {path.name}",
        software,
        {"file": str(path), "kind": what.kind, "notes": notes},
        [series],
    )
    result.run_id = run.id
    source = _source_series(session, records[0].source_sop_instance_uid)
    for record in records:
        segment_kind = record.kind or kind
        if segment_kind is None:
            raise SegmentationImportError(
                f"{path}: segment {record.segment_number} ({record.label}) does not say how it"
                " was made (ROI Generation Algorithm / Segment Algorithm Type empty);"
                " give --kind manual|semi_automated|automated"
            )
        row = _store(session, series, source, record, segment_kind, path)
        if isinstance(row, ManualSegmentation) and annotator_role:
            row.annotator_role = annotator_role
        if isinstance(row, SemiAutomatedSegmentation):
            row.annotator_role = annotator_role or row.annotator_role
            row.manual_correction = record.algorithm_description or row.manual_correction
        if isinstance(row, AutomatedSegmentation):
            row.model_name = model or record.algorithm_name or row.model_name
            row.model_version = model_version or record.algorithm_version or row.model_version
            if record.algorithm_name and not model:
                row.software = software_entry(
                    session,
                    collection,
                    record.algorithm_name,
                    record.algorithm_version or "unknown",
                )
        run.segmentations.append(row)
        result.segmentations.append(row.id)
        result.labels.append(record.label)
        result.warnings.extend(record.warnings)
    session.flush()
    return result


def _source_series(session: Session, sop_instance_uid: str | None) -> ImagingSeries | None:
    """The stored series of the segmentation object itself (when it was ingested)."""
    if sop_instance_uid is None:
        return None
    instance = session.scalars(
        select(ImagingInstance).where(ImagingInstance.sop_instance_uid == sop_instance_uid)
    ).first()
    return instance.series if instance is not None else None


def _store(
    session: Session,
    series: ImagingSeries,
    source: ImagingSeries | None,
    record: reader.SegmentRecord,
    kind: str,
    path: Path,
) -> Segmentation:
    origin = record.source_sop_instance_uid or str(path.resolve())
    existing = session.scalars(
        select(Segmentation).where(
            Segmentation.imaging_series_id == series.id,
            Segmentation.segment_number == record.segment_number,
            (Segmentation.source_sop_instance_uid == origin)
            | (Segmentation.source_location == str(path.resolve())),
        )
    ).first()
    if existing is not None and existing.kind != kind:
        session.delete(existing)
        session.flush()
        existing = None
    row = existing or KIND_CLASSES[kind](series=series)
    row.source_series = source
    row.segment_number = record.segment_number
    row.label = record.label[:255]
    row.algorithm_name = record.algorithm_name
    row.source_sop_instance_uid = record.source_sop_instance_uid
    row.source_location = str(path.resolve())
    row.voxel_count = record.voxel_count
    row.volume_mm3 = record.volume_mm3
    row.mask_sha256 = mask_digest(record.mask)
    row.segmentation_type = _segmentation_type(session, record.segmentation_type)
    for prefix, coded in (("category", record.property_category), ("type", record.property_type)):
        setattr(row, f"property_{prefix}_scheme", coded.scheme if coded else None)
        setattr(row, f"property_{prefix}_code", coded.value if coded else None)
        setattr(row, f"property_{prefix}_meaning", coded.meaning[:255] if coded else None)
    session.add(row)
    session.flush()
    return row


def _segmentation_type(session: Session, code: str | None) -> SegmentationType | None:
    if not code:
        return None
    return session.scalars(select(SegmentationType).where(SegmentationType.code == code)).first()


def rebuild_mask(session: Session, segmentation: Segmentation) -> tuple[np.ndarray, reader.Grid]:
    """Read a stored segmentation's mask again from its source, checked against its digest."""
    if not segmentation.source_location:
        raise SegmentationImportError(f"segmentation {segmentation.id} has no source file")
    path = Path(segmentation.source_location)
    if not path.exists():
        raise SegmentationImportError(f"segmentation {segmentation.id}: {path} is gone")
    records = read_records(path, declared(path), _files(session, segmentation.series))
    for record in records:
        if record.segment_number == segmentation.segment_number:
            if mask_digest(record.mask) != segmentation.mask_sha256:
                raise SegmentationImportError(
                    f"segmentation {segmentation.id}: the mask read from {path} differs from"
                    " the one imported (the file changed?)"
                )
            return np.asarray(record.mask), record.grid
    raise SegmentationImportError(
        f"segmentation {segmentation.id}: segment {segmentation.segment_number} not in {path}"
    )
