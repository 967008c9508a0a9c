"""Running radiomics on a stored series and segmentation, and storing what came out.

The image is read from the series' files (pixel data, rescaled to calibrated values: HU
for CT), the mask rebuilt from the segmentation's source and checked against its digest.
The configuration becomes the run's preprocessing parameters (resampling, interpolation,
re-segmentation, discretisation, filters); every feature becomes a textural feature row
under its IBSI family, with its IBSI code where one is verified, made by a run whose
software entry is the engine and its version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session

from imaging_biobank.analysis import radiomics
from imaging_biobank.analysis.runs import new_run, software_entry
from imaging_biobank.analysis.segmentation_import import SegmentationImportError, rebuild_mask
from imaging_biobank.analysis.segmentation_read import read_series_grid
from imaging_biobank.analysis.store import BiomarkerRow, add_biomarkers
from imaging_biobank.model import (
    ImageAnalysis,
    ImagingInstance,
    ImagingSeries,
    PreprocessingParameters,
    Segmentation,
)
from imaging_biobank.model.analysis import image_analysis_segmentation

MODALITIES: dict[str, radiomics.Modality] = {"CT": "CT", "PT": "PT", "MR": "MR"}
ENGINE_REPOSITORY = "https://github.com/oncoray/mirp"


class RadiomicsRunError(ValueError):
    """The analysis cannot run as asked; the message says why."""


@dataclass
class RadiomicsSummary:
    run_id: int
    series_instance_uid: str
    segmentation_id: int
    features: int
    coded: int
    engine: str
    messages: list[str] = field(default_factory=list)
    already: bool = False  # measured before with this configuration and engine version


def default_config(modality: str | None) -> radiomics.RadiomicsConfig:
    """What runs when no configuration is given: the series' own grid, FBN 32, 3D features
    averaged over directions, the modality's intensity conventions."""
    return radiomics.RadiomicsConfig(modality=MODALITIES.get(modality or "", "generic"))


def read_image(files: list[str]) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The series' calibrated voxels (z, y, x) in slice order, and the voxel spacing."""
    grid = read_series_grid(files)
    slices = []
    for path in grid.files:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array.astype(np.float64)
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        slices.append(pixels * slope + intercept)
    return np.stack(slices), grid.grid.spacing


def run_radiomics(
    session: Session,
    segmentation_id: int,
    config: radiomics.RadiomicsConfig | None = None,
    series_uid: str | None = None,
    again: bool = False,
) -> RadiomicsSummary:
    """Measure one segmentation; a measurement with the same configuration and engine
    version is not repeated unless ``again``."""
    segmentation = session.get(Segmentation, segmentation_id)
    if segmentation is None:
        raise RadiomicsRunError(f"no segmentation {segmentation_id}")
    series = segmentation.series
    if series_uid is not None and series.series_instance_uid != series_uid:
        raise RadiomicsRunError(
            f"segmentation {segmentation_id} lies on series {series.series_instance_uid},"
            f" not {series_uid}"
        )
    config = config or default_config(series.modality_value)
    if not again:
        earlier = _earlier_run(session, segmentation, config)
        if earlier is not None:
            return RadiomicsSummary(
                earlier.id,
                series.series_instance_uid,
                segmentation.id,
                len(earlier.imaging_biomarkers),
                sum(1 for b in earlier.imaging_biomarkers if b.code),
                f"{earlier.software.name} {earlier.software.version}" if earlier.software else "",
                already=True,
            )
    try:
        mask, _ = rebuild_mask(session, segmentation)
    except SegmentationImportError as error:
        raise RadiomicsRunError(str(error)) from None
    files = [
        loc
        for loc in session.scalars(
            select(ImagingInstance.location).where(ImagingInstance.imaging_series_id == series.id)
        )
        if loc
    ]
    image, spacing = read_image(files)
    if image.shape != mask.shape:
        raise RadiomicsRunError(f"image {image.shape} and mask {mask.shape} differ in shape")
    try:
        result = radiomics.compute(image, spacing, mask, config)
    except (ValueError, TypeError) as error:
        raise RadiomicsRunError(str(error)) from None
    return _store(session, series, segmentation, result)


def _earlier_run(
    session: Session, segmentation: Segmentation, config: radiomics.RadiomicsConfig
) -> ImageAnalysis | None:
    settings = json.loads(json.dumps(config.to_dict()))  # as the JSON column gives it back
    for run in session.scalars(
        select(ImageAnalysis)
        .join(
            image_analysis_segmentation,
            image_analysis_segmentation.c.image_analysis_id == ImageAnalysis.id,
        )
        .where(
            image_analysis_segmentation.c.segmentation_id == segmentation.id,
            ImageAnalysis.analysis_type == "radiomics",
        )
    ):
        software = run.software
        if (
            run.configuration == settings
            and software is not None
            and software.version == radiomics.engine_version()
        ):
            return run
    return None


def _store(
    session: Session,
    series: ImagingSeries,
    segmentation: Segmentation,
    result: radiomics.RadiomicsResult,
) -> RadiomicsSummary:
    collection = series.image_collection
    software = software_entry(
        session,
        collection,
        result.engine,
        result.engine_version,
        repository_url=ENGINE_REPOSITORY,
        licence="EUPL-1.2",
        description="MIRP, an IBSI-compliant radiomics engine",
    )
    settings = result.config.to_dict()
    run = new_run(
        session,
        collection,
        "radiomics",
        f"radiomics on {segmentation.label}",
        software,
        settings,
        [series],
    )
    run.segmentations.append(segmentation)
    run.preprocessing_parameters.extend(_preprocessing(settings))
    rows = [
        BiomarkerRow(
            "textural",
            feature.name,
            feature.value,
            unit=feature.unit,
            code_scheme="IBSI" if feature.ibsi_code else None,
            code=feature.ibsi_code,
            details={
                "feature_family": feature.family,
                "aggregation_method": feature.aggregation,
                "discretisation": _discretisation(settings),
                "image_filter": None if feature.image_type == "original" else feature.image_type,
            },
        )
        for feature in result.features
        if np.isfinite(feature.value)
    ]
    add_biomarkers(session, run, series, segmentation, rows)
    return RadiomicsSummary(
        run.id,
        series.series_instance_uid,
        segmentation.id,
        len(rows),
        sum(1 for r in rows if r.code),
        f"{result.engine} {result.engine_version}",
        list(result.messages),
    )


def _discretisation(settings: dict[str, object]) -> str:
    method = settings.get("discretisation_method")
    value = settings.get("discretisation_value")
    return f"{method} {value}" if value is not None else str(method)


STEPS = {
    "resampling": ("resampling_spacing_mm", "interpolation", "anti_aliasing"),
    "mask_resampling": ("mask_inclusion_threshold",),
    "resegmentation": ("resegmentation_range", "resegmentation_sigma"),
    "discretisation": (
        "discretisation_method",
        "discretisation_value",
        "ivh_discretisation_method",
        "ivh_discretisation_value",
    ),
    "filtering": (
        "filters",
        "log_sigma_mm",
        "wavelet_family",
        "wavelet_sets",
        "wavelet_level",
        "filter_families",
        "filter_discretisation_bins",
    ),
}


def _preprocessing(settings: dict[str, object]) -> list[PreprocessingParameters]:
    """The configuration as the model's preprocessing steps (one row per step)."""
    steps = []
    for step, keys in STEPS.items():
        parameters = {k: settings[k] for k in keys if k in settings}
        method = parameters.get(keys[0])
        steps.append(
            PreprocessingParameters(
                step=step,
                method=None if method is None else str(method)[:255],
                parameters=parameters,
            )
        )
    return steps
