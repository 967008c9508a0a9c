"""Importing DICOM SR measurement reports (TID 1500) as imaging biomarkers.

Each measurement group becomes biomarkers on its source series (and on the segmentation
it references, when that SEG segment was imported): every numeric measurement a
quantitative biomarker with its code and UCUM unit, every qualitative evaluation (a RADS
category, a TNM stage, a response) a qualitative one with its coded value. The report's
SOP Instance UID keys the import: importing the same report again stores nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from imaging_biobank.analysis import sr_read
from imaging_biobank.analysis.runs import new_run, own_software
from imaging_biobank.analysis.store import BiomarkerRow, add_biomarkers
from imaging_biobank.model import ImagingSeries, ReportedBiomarker, Segmentation


class ReportImportError(ValueError):
    """The report cannot be imported; the message says why."""


@dataclass
class ReportImport:
    path: str
    quantitative: int = 0
    qualitative: int = 0
    already: bool = False
    skipped_groups: list[str] = field(default_factory=list)


def _rows(group: sr_read.MeasurementGroupRecord, sr_uid: str) -> list[BiomarkerRow]:
    base = {
        "sr_sop_instance_uid": sr_uid,
        "tracking_identifier": group.tracking_id,
        "tracking_uid": group.tracking_uid,
        "method": group.method.meaning if group.method else None,
    }
    rows = []
    for m in group.measurements:
        name = m.name.meaning + (f" ({m.derivation.meaning})" if m.derivation else "")
        rows.append(
            BiomarkerRow(
                "reported",
                name,
                m.value,
                unit=m.ucum or m.unit.value,
                code_scheme=m.name.scheme,
                code=m.name.value,
                details={**base, "method": (m.method.meaning if m.method else base["method"])},
            )
        )
    for e in group.evaluations:
        rows.append(
            BiomarkerRow(
                "reported",
                e.name.meaning,
                code_scheme=e.name.scheme,
                code=e.name.value,
                value_type="qualitative",
                value_code_scheme=e.value.scheme,
                value_code=e.value.value,
                value_code_meaning=e.value.meaning[:255],
                details=base,
            )
        )
    return rows


def import_report(session: Session, path: Path) -> ReportImport:
    try:
        report = sr_read.read_measurement_report(path)
    except sr_read.MeasurementReportError as error:
        raise ReportImportError(f"{path}: {error}") from None
    result = ReportImport(str(path))
    stored = session.scalar(
        select(func.count())
        .select_from(ReportedBiomarker)
        .where(ReportedBiomarker.sr_sop_instance_uid == report.sop_instance_uid)
    )
    if stored:
        result.already = True
        return result
    run = None
    for group in report.groups:
        series_uid = group.source_series_uid
        series = (
            session.scalars(
                select(ImagingSeries).where(ImagingSeries.series_instance_uid == series_uid)
            ).first()
            if series_uid
            else None
        )
        label = group.tracking_id or group.tracking_uid or group.template
        if series is None:
            result.skipped_groups.append(
                f"{label}: its source series {series_uid or '(not one series)'} is not stored"
            )
            continue
        segmentation = _segmentation(session, group)
        if run is None:
            run = new_run(
                session,
                series.image_collection,
                "structured_report_import",
                f"SR {report.title.meaning if report.title else ''} {path.name}".strip(),
                own_software(session, series.image_collection),
                {"file": str(path), "sr_sop_instance_uid": report.sop_instance_uid},
            )
        if series not in run.input_series:
            run.input_series.append(series)
        for biomarker in add_biomarkers(
            session, run, series, segmentation, _rows(group, report.sop_instance_uid)
        ):
            if biomarker.value_type == "qualitative":
                result.qualitative += 1
            else:
                result.quantitative += 1
    if run is None:
        raise ReportImportError(
            f"{path}: none of its measurement groups is on a stored series: "
            + "; ".join(result.skipped_groups)
        )
    session.flush()
    return result


def _segmentation(session: Session, group: sr_read.MeasurementGroupRecord) -> Segmentation | None:
    """The imported SEG segment a group measures, if it references exactly one."""
    if group.referenced_segmentation_uid is None or len(group.referenced_segment_numbers) != 1:
        return None
    return session.scalars(
        select(Segmentation).where(
            Segmentation.source_sop_instance_uid == group.referenced_segmentation_uid,
            Segmentation.segment_number == group.referenced_segment_numbers[0],
        )
    ).first()
