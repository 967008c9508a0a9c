"""Storing what analyses produce: imaging biomarkers of the four kinds, linked to their run,
series and segmentation. The caller owns the session and its transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from imaging_biobank.model import (
    DeepFeatures,
    DynamicSignalFeatures,
    ImageAnalysis,
    ImagingBiomarker,
    ImagingSeries,
    ReportedBiomarker,
    Segmentation,
    TexturalFeatures,
)

KIND_CLASSES: dict[str, type[ImagingBiomarker]] = {
    "textural": TexturalFeatures,
    "deep": DeepFeatures,
    "dynamic_signal": DynamicSignalFeatures,
    "reported": ReportedBiomarker,
}


@dataclass
class BiomarkerRow:
    """One value to store; ``details`` holds the columns of its kind's own table
    (feature_family, model_name, tracking_uid, ...)."""

    kind: str
    name: str
    value: float | None = None
    unit: str | None = None
    code_scheme: str | None = None
    code: str | None = None
    value_type: str = "quantitative"
    value_code_scheme: str | None = None
    value_code: str | None = None
    value_code_meaning: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def add_biomarkers(
    session: Session,
    run: ImageAnalysis,
    series: ImagingSeries,
    segmentation: Segmentation | None,
    rows: Iterable[BiomarkerRow],
) -> list[ImagingBiomarker]:
    """Store the rows as biomarkers of ``series`` (in ``segmentation``), made by ``run``."""
    stored: list[ImagingBiomarker] = []
    for row in rows:
        cls = KIND_CLASSES[row.kind]
        biomarker = cls(
            series=series,
            segmentation=segmentation,
            name=row.name[:255],
            value=row.value,
            unit=row.unit,
            code_scheme=row.code_scheme,
            code=row.code,
            value_type=row.value_type,
            value_code_scheme=row.value_code_scheme,
            value_code=row.value_code,
            value_code_meaning=row.value_code_meaning,
            **row.details,
        )
        session.add(biomarker)
        stored.append(biomarker)
    session.flush()
    run.imaging_biomarkers.extend(stored)
    session.flush()
    return stored
