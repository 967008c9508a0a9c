"""Importing registrations (DICOM Spatial Registration objects, ITK/SimpleITK transform
files) as Registration Parameters between stored series.

The moving and fixed series come from the object (DICOM REG) or are given (ITK files
name no series). The kind follows from them: one series → intra-sequence; two series of
one modality → inter-sequence; two modalities → inter-modal. The matrix is stored mapping
moving-image points onto fixed-image points (LPS, mm, row-major), whatever the file's own
direction; non-linear transforms keep their raw parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from imaging_biobank.analysis import registration_read as reader
from imaging_biobank.analysis.runs import new_run, own_software, software_entry
from imaging_biobank.model import (
    ImagingSeries,
    InterModal,
    InterSequence,
    IntraSequence,
    RegistrationParameters,
)


class RegistrationImportError(ValueError):
    """The registration cannot be stored as asked; the message says why."""


@dataclass
class RegistrationImport:
    path: str
    ids: list[int]
    kinds: list[str]


def _series(session: Session, uid: str) -> ImagingSeries:
    found = session.scalars(
        select(ImagingSeries).where(ImagingSeries.series_instance_uid == uid)
    ).first()
    if found is None:
        raise RegistrationImportError(f"no series {uid} in the database (ingest it first)")
    return found


def _pick(session: Session, uids: tuple[str, ...], given: str | None, what: str) -> str:
    if given is not None:
        return given
    stored = [
        u
        for u in uids
        if session.scalars(
            select(ImagingSeries.id).where(ImagingSeries.series_instance_uid == u)
        ).first()
        is not None
    ]
    if len(stored) == 1:
        return stored[0]
    raise RegistrationImportError(
        f"the {what} series is not one stored series ({', '.join(uids) or 'none named'});"
        f" give --{what}"
    )


def import_registration(
    session: Session,
    path: Path,
    *,
    moving: str | None = None,
    fixed: str | None = None,
    software: str | None = None,
    software_version: str | None = None,
    metric: str | None = None,
    metric_value: float | None = None,
) -> RegistrationImport:
    try:
        records = reader.read_registration(path)
    except (reader.RegistrationReadError, OSError) as error:
        raise RegistrationImportError(f"{path}: {error}") from None
    result = RegistrationImport(str(path), [], [])
    for record in records:
        moving_series = _series(
            session, _pick(session, record.source_series_uids, moving, "moving")
        )
        fixed_uid = fixed or (
            _pick(session, record.target_series_uids, None, "fixed")
            if record.target_series_uids
            else None
        )
        fixed_series = _series(session, fixed_uid) if fixed_uid else None
        if fixed_series is None and record.source_format != "DICOM_REG":
            raise RegistrationImportError(f"{path}: an ITK transform needs --moving and --fixed")
        kind_class = _kind(moving_series, fixed_series)
        collection = moving_series.image_collection
        entry = (
            software_entry(session, collection, software, software_version or "unknown")
            if software
            else own_software(session, collection)
        )
        matrix = record.moving_to_fixed()
        row: RegistrationParameters = kind_class(
            image_collection=collection,
            moving_series=moving_series,
            fixed_series=fixed_series,
            software=entry,
            transformation_type=record.registration_type,
            transformation_matrix=[float(v) for v in matrix.reshape(16)]
            if matrix is not None
            else None,
            method=record.description,
            similarity_metric=metric,
            metric_value=metric_value,
            extra={
                "file": str(path),
                "format": record.source_format,
                "sop_instance_uid": record.sop_instance_uid,
                "matrix_direction": "moving_to_fixed",
                "components": [
                    {
                        "class": c.class_name,
                        "parameters": list(c.parameters),
                        "fixed_parameters": list(c.fixed_parameters),
                    }
                    for c in record.components
                ],
                "warnings": list(record.warnings),
            },
        )
        if isinstance(row, InterModal):
            row.moving_modality = moving_series.modality
            row.fixed_modality = fixed_series.modality if fixed_series else None
        if isinstance(row, InterSequence):
            row.moving_sequence = moving_series.series_description
            row.fixed_sequence = fixed_series.series_description if fixed_series else None
        session.add(row)
        session.flush()
        run = new_run(
            session,
            collection,
            "registration_import",
            f"{record.source_format} registration {path.name}",
            entry,
            {"file": str(path), "registration_parameters_id": row.id},
            [s for s in (moving_series, fixed_series) if s is not None],
        )
        assert run.id is not None
        result.ids.append(row.id)
        result.kinds.append(row.kind)
    return result


def _kind(moving: ImagingSeries, fixed: ImagingSeries | None) -> type[RegistrationParameters]:
    if fixed is None or fixed.id == moving.id:
        return IntraSequence
    if (moving.modality_value or "") == (fixed.modality_value or ""):
        return InterSequence
    return InterModal
