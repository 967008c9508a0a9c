"""Importing existing pyradiomics CSV outputs as radiomic features, mapped onto the IBSI
families and codes (``pyradiomics_csv``), each case on its series (a
``series_instance_uid`` column, or ``--series`` for a one-case file) and optionally a
segmentation. A run records pyradiomics' version and settings from the file's diagnostics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from imaging_biobank.analysis import pyradiomics_csv
from imaging_biobank.analysis.feature_import import FeatureImportError, find_target
from imaging_biobank.analysis.runs import new_run, software_entry
from imaging_biobank.analysis.store import BiomarkerRow, add_biomarkers


@dataclass
class RadiomicsImport:
    cases: int = 0
    features: int = 0
    coded: int = 0
    unknown: int = 0
    skipped_nan: int = 0
    refused: list[str] = field(default_factory=list)


def import_pyradiomics(
    session: Session,
    path: Path,
    series_uid: str | None = None,
    segmentation_id: int | None = None,
) -> RadiomicsImport:
    try:
        rows = pyradiomics_csv.read_pyradiomics_csv(path)
    except pyradiomics_csv.PyradiomicsCsvError as error:
        raise FeatureImportError(f"{path}: {error}") from None
    if series_uid is not None and len(rows) > 1:
        raise FeatureImportError(
            f"{path}: {len(rows)} cases; --series applies to a one-case file (give a"
            " series_instance_uid column instead)"
        )
    result = RadiomicsImport()
    for row in rows:
        uid = series_uid or row.identifiers.get("series_instance_uid")
        if not uid:
            result.refused.append(f"row {row.row}: no series_instance_uid column and no --series")
            continue
        target = find_target(session, uid, segmentation_id)
        collection = target.series.image_collection
        software = software_entry(
            session,
            collection,
            "pyradiomics",
            row.pyradiomics_version or "unknown",
            repository_url="https://github.com/AIM-Harvard/pyradiomics",
            licence="BSD-3-Clause",
        )
        run = new_run(
            session,
            collection,
            "radiomics_import",
            f"pyradiomics output {path.name} row {row.row}",
            software,
            {
                "file": str(path),
                "row": row.row,
                "settings": dict(row.settings or {}),
                "image_types": dict(row.enabled_image_types or {}),
                "case": dict(row.identifiers),
            },
            [target.series],
        )
        features = []
        for feature in row.features:
            if math.isnan(feature.value):
                result.skipped_nan += 1
                continue
            result.unknown += 0 if feature.known else 1
            features.append(
                BiomarkerRow(
                    "textural",
                    feature.column,
                    feature.value,
                    code_scheme="IBSI" if feature.ibsi_code else None,
                    code=feature.ibsi_code,
                    details={
                        "feature_family": feature.family,
                        "aggregation_method": feature.aggregation,
                        "image_filter": None
                        if feature.image_type == "original"
                        else feature.image_type,
                    },
                )
            )
        add_biomarkers(session, run, target.series, target.segmentation, features)
        result.cases += 1
        result.features += len(features)
        result.coded += sum(1 for f in features if f.code)
    return result
