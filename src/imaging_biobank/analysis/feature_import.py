"""Importing features computed elsewhere: deep feature vectors (CSV or NPY) with the model
that made them, and time-intensity curves (CSV) whose dynamic features are computed here.

Each import is a run with its software entry (the model, or imaging-biobank for curves), so
every stored value has a provenance chain to its series.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from imaging_biobank.analysis.dynamic import curve_features
from imaging_biobank.analysis.runs import new_run, own_software, software_entry
from imaging_biobank.analysis.store import BiomarkerRow, add_biomarkers
from imaging_biobank.model import ImagingSeries, Segmentation


class FeatureImportError(ValueError):
    """A file or argument that cannot be imported; the message says why."""


@dataclass(frozen=True)
class Target:
    series: ImagingSeries
    segmentation: Segmentation | None


def find_target(session: Session, series_uid: str, segmentation_id: int | None) -> Target:
    """The series (and segmentation on it) values will belong to."""
    series = session.scalars(
        select(ImagingSeries).where(ImagingSeries.series_instance_uid == series_uid)
    ).first()
    if series is None:
        raise FeatureImportError(f"no series {series_uid!r} in the database (ingest it first)")
    segmentation = None
    if segmentation_id is not None:
        segmentation = session.get(Segmentation, segmentation_id)
        if segmentation is None or segmentation.imaging_series_id != series.id:
            raise FeatureImportError(
                f"segmentation {segmentation_id} is not a segmentation of series {series_uid}"
            )
    return Target(series, segmentation)


def read_vectors(path: Path) -> dict[str | None, np.ndarray]:
    """Feature vectors: an NPY vector (key None: the series is given separately) or a CSV
    with a ``series_instance_uid`` column and one column per feature."""
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise FeatureImportError(f"{path}: not a readable NPY array ({error})") from None
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.number):
            raise FeatureImportError(f"{path}: a 1-D numeric vector is expected, not {array.shape}")
        return {None: array.astype(float)}
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "series_instance_uid" not in rows[0]:
        raise FeatureImportError(f"{path}: a CSV with a series_instance_uid column is expected")
    columns = [c for c in rows[0] if c != "series_instance_uid"]
    vectors: dict[str | None, np.ndarray] = {}
    for number, row in enumerate(rows, start=2):
        try:
            vectors[row["series_instance_uid"].strip()] = np.array([float(row[c]) for c in columns])
        except ValueError:
            raise FeatureImportError(
                f"{path}: row {number} holds a value that is not a number"
            ) from None
    return vectors


def import_deep_features(
    session: Session,
    path: Path,
    model: str,
    model_version: str,
    layer: str,
    series_uid: str | None = None,
    segmentation_id: int | None = None,
    repository_url: str | None = None,
) -> int:
    """Store each vector's components as deep features; the number stored."""
    vectors = read_vectors(path)
    if None in vectors and series_uid is None:
        raise FeatureImportError("an NPY vector needs --series")
    stored = 0
    for uid, vector in vectors.items():
        target = find_target(session, uid or str(series_uid), segmentation_id)
        collection = target.series.image_collection
        software = software_entry(
            session, collection, model, model_version, repository_url=repository_url
        )
        run = new_run(
            session,
            collection,
            "deep_features_import",
            f"deep features of {model} {model_version} ({layer})",
            software,
            {"file": str(path), "layer": layer, "length": int(vector.size)},
            [target.series],
        )
        rows = [
            BiomarkerRow(
                "deep",
                f"{model}:{layer}[{index}]",
                float(value),
                details={
                    "model_name": model,
                    "model_version": model_version,
                    "layer": layer,
                    "feature_index": index,
                },
            )
            for index, value in enumerate(vector)
        ]
        stored += len(add_biomarkers(session, run, target.series, target.segmentation, rows))
    return stored


def import_curve(
    session: Session, path: Path, series_uid: str, segmentation_id: int | None = None
) -> int:
    """Compute and store the dynamic features of a time-intensity curve CSV (columns
    ``time_s`` and ``signal``)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"time_s", "signal"} <= set(rows[0]):
        raise FeatureImportError(f"{path}: columns time_s and signal are expected")
    try:
        times = np.array([float(r["time_s"]) for r in rows])
        signal = np.array([float(r["signal"]) for r in rows])
        features = curve_features(times, signal)
    except ValueError as error:
        raise FeatureImportError(f"{path}: {error}") from None
    target = find_target(session, series_uid, segmentation_id)
    collection = target.series.image_collection
    run = new_run(
        session,
        collection,
        "dynamic_signal",
        "semi-quantitative curve features",
        own_software(session, collection),
        {"file": str(path), "points": int(times.size)},
        [target.series],
    )
    stored = add_biomarkers(
        session,
        run,
        target.series,
        target.segmentation,
        [
            BiomarkerRow(
                "dynamic_signal",
                f.name,
                f.value,
                unit=f.unit,
                details={"pharmacokinetic_model": "semi-quantitative"},
            )
            for f in features
        ],
    )
    return len(stored)
