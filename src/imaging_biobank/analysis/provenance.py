"""The chain from a stored value back to the DICOM series it was measured on: the feature,
the runs that made or harmonised it (with their software and configuration), the
segmentation it was measured in (and the run that imported that), the series, its study and
collection. As nested dicts, ready for JSON or a tree on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from imaging_biobank.model import (
    HarmonisedValue,
    ImageAnalysis,
    ImagingBiomarker,
    ImagingSeries,
    Segmentation,
)
from imaging_biobank.model.analysis import (
    image_analysis_imaging_biomarker,
    image_analysis_segmentation,
)


class ProvenanceError(LookupError):
    """No feature or segmentation with that id."""


def _software(run: ImageAnalysis) -> dict[str, Any] | None:
    software = run.software
    if software is None:
        return None
    return {
        "id": software.identifier,
        "name": software.name,
        "version": software.version,
        "repository": software.repository_url,
        "licence": software.licence,
        "persistent_identifier": software.persistent_identifier,
    }


def _run(run: ImageAnalysis) -> dict[str, Any]:
    return {
        "run": run.id,
        "type": run.analysis_type,
        "name": run.name,
        "performed_at": run.performed_at.isoformat() if run.performed_at else None,
        "software": _software(run),
        "configuration": run.configuration,
        "preprocessing": [
            {"step": p.step, "method": p.method, "parameters": p.parameters}
            for p in run.preprocessing_parameters
        ],
        "inputs": [s.series_instance_uid for s in run.input_series],
    }


def _series(series: ImagingSeries) -> dict[str, Any]:
    return {
        "series_instance_uid": series.series_instance_uid,
        "modality": series.modality_value,
        "description": series.series_description,
        "study_instance_uid": series.study.study_instance_uid,
        "collection": series.image_collection.identifier,
        "donor": series.sample_donor.pseudonym,
        "instances": series.number_of_instances,
    }


def _runs_linked(session: Session, link: Any, ident: int) -> Sequence[ImageAnalysis]:
    """The runs a link table (``link``: its column naming the other side) ties to ``ident``."""
    table = link.table
    return session.scalars(
        select(ImageAnalysis)
        .join(table, table.c.image_analysis_id == ImageAnalysis.id)
        .where(link == ident)
        .order_by(ImageAnalysis.id)
    ).all()


def segmentation_chain(session: Session, segmentation_id: int) -> dict[str, Any]:
    segmentation = session.get(Segmentation, segmentation_id)
    if segmentation is None:
        raise ProvenanceError(f"no segmentation {segmentation_id}")
    runs = _runs_linked(session, image_analysis_segmentation.c.segmentation_id, segmentation_id)
    return {
        "segmentation": segmentation.id,
        "label": segmentation.label,
        "kind": segmentation.kind,
        "segment_number": segmentation.segment_number,
        "algorithm": segmentation.algorithm_name,
        "source": {
            "sop_instance_uid": segmentation.source_sop_instance_uid,
            "location": segmentation.source_location,
            "series_instance_uid": (
                segmentation.source_series.series_instance_uid
                if segmentation.source_series
                else None
            ),
        },
        "voxels": segmentation.voxel_count,
        "volume_mm3": segmentation.volume_mm3,
        "mask_sha256": segmentation.mask_sha256,
        "made_by": [_run(r) for r in runs],
        "series": _series(segmentation.series),
    }


def biomarker_chain(session: Session, biomarker_id: int) -> dict[str, Any]:
    biomarker = session.get(ImagingBiomarker, biomarker_id)
    if biomarker is None:
        raise ProvenanceError(f"no imaging biomarker {biomarker_id}")
    runs = _runs_linked(
        session, image_analysis_imaging_biomarker.c.imaging_biomarker_id, biomarker_id
    )
    harmonised = session.scalars(
        select(HarmonisedValue).where(HarmonisedValue.imaging_biomarker_id == biomarker_id)
    ).all()
    return {
        "feature": biomarker.id,
        "name": biomarker.name,
        "kind": biomarker.kind,
        "value_type": biomarker.value_type,
        "code": f"{biomarker.code_scheme}:{biomarker.code}" if biomarker.code else None,
        "value": biomarker.value,
        "unit": biomarker.unit,
        "value_code": biomarker.value_code,
        "made_by": [_run(r) for r in runs],
        "harmonised": [
            {"value": h.value, "batch": h.batch, **_run(h.image_analysis)} for h in harmonised
        ],
        "segmentation": (
            segmentation_chain(session, biomarker.segmentation_id)
            if biomarker.segmentation_id is not None
            else None
        ),
        "series": _series(biomarker.series),
    }
