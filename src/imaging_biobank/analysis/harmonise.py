"""ComBat harmonisation of a collection's radiomic features, stored beside the raw values.

A sample is one (series, segmentation) measured by one radiomics run; a feature is a name
every sample has (features some samples lack are left out and named, as ComBat refuses
missing values). The batch of a sample is its scanner (manufacturer and model), its
manufacturer, its reconstruction kernel, or any acquisition parameter column. Covariates
whose effect is kept: the donor's sex and age at the study. The run stores the options and
the learnt model, so new samples of known batches are harmonised later with the same model.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from imaging_biobank.analysis import combat
from imaging_biobank.analysis.runs import new_run, software_entry, tool_version
from imaging_biobank.db.lookup import find_collection
from imaging_biobank.model import (
    AcquisitionParameters,
    HarmonisedValue,
    ImageAnalysis,
    ImageCollection,
    ImagingSeries,
    ModalityInformation,
    TexturalFeatures,
)

BATCH_FIELDS = ("scanner", "manufacturer", "kernel")
COVARIATES = ("sex", "age")


class HarmoniseError(ValueError):
    """The harmonisation cannot run as asked; the message says why."""


@dataclass
class HarmoniseSummary:
    run_id: int
    samples: int
    features: int
    batches: dict[str, int]
    left_out_features: list[str] = field(default_factory=list)
    stored: int = 0


@dataclass
class _Samples:
    keys: list[tuple[int, int | None]]  # (series id, segmentation id)
    features: list[str]
    values: np.ndarray  # features x samples
    biomarker_ids: np.ndarray  # features x samples
    series: dict[int, ImagingSeries]


def _collect(session: Session, collection_id: int) -> tuple[_Samples, list[str]]:
    rows = session.execute(
        select(
            TexturalFeatures.id,
            TexturalFeatures.imaging_series_id,
            TexturalFeatures.segmentation_id,
            TexturalFeatures.name,
            TexturalFeatures.value,
        )
        .join(ImagingSeries, ImagingSeries.id == TexturalFeatures.imaging_series_id)
        .where(ImagingSeries.image_collection_id == collection_id)
        .where(TexturalFeatures.value.is_not(None))
        .order_by(TexturalFeatures.id)
    ).all()
    by_sample: dict[tuple[int, int | None], dict[str, tuple[int, float]]] = defaultdict(dict)
    for id_, series_id, segmentation_id, name, value in rows:
        # the latest run's value of a feature wins for a sample
        if value is not None:
            by_sample[(series_id, segmentation_id)][name] = (id_, float(value))
    keys = sorted(by_sample, key=lambda k: (k[0], k[1] or 0))
    names = sorted({n for sample in by_sample.values() for n in sample})
    complete = [n for n in names if all(n in by_sample[k] for k in keys)]
    left_out = [n for n in names if n not in complete]
    values = np.array([[by_sample[k][n][1] for k in keys] for n in complete], dtype=float)
    ids = np.array([[by_sample[k][n][0] for k in keys] for n in complete], dtype=int)
    series = {
        s.id: s
        for s in session.scalars(
            select(ImagingSeries).where(ImagingSeries.id.in_({k[0] for k in keys}))
        )
    }
    return _Samples(keys, complete, values, ids, series), left_out


def _batch_of(session: Session, series: ImagingSeries, field_name: str) -> str:
    acquisition = session.scalars(
        select(AcquisitionParameters).where(AcquisitionParameters.imaging_series_id == series.id)
    ).first()
    if field_name in ("scanner", "manufacturer"):
        info = (
            session.get(ModalityInformation, acquisition.modality_information_id)
            if acquisition is not None and acquisition.modality_information_id is not None
            else None
        )
        if info is None:
            return "unknown"
        if field_name == "manufacturer":
            return info.manufacturer or "unknown"
        return f"{info.manufacturer or '?'} {info.manufacturer_model_name or '?'}"
    if field_name == "kernel":
        reconstruction = series.reconstruction_parameters
        kernel = getattr(reconstruction, "convolution_kernel", None) if reconstruction else None
        return str(kernel) if kernel else "unknown"
    if acquisition is None or field_name not in AcquisitionParameters.__table__.c:
        known = ", ".join([*BATCH_FIELDS, "or an acquisition_parameters column"])
        raise HarmoniseError(f"unknown batch field {field_name!r}; use {known}")
    value = getattr(acquisition, field_name)
    return "unknown" if value is None else str(value)


def _covariates(
    samples: _Samples, names: Sequence[str], levels: dict[str, list[str]] | None = None
) -> tuple[np.ndarray | None, dict[str, list[str]]]:
    unknown = [n for n in names if n not in COVARIATES]
    if unknown:
        raise HarmoniseError(f"unknown covariate {', '.join(unknown)}; known: sex, age")
    if not names:
        return None, {}
    columns: dict[str, list[Any]] = {}
    for name in names:
        column: list[Any] = []
        for series_id, _ in samples.keys:
            series = samples.series[series_id]
            if name == "sex":
                column.append(series.sample_donor.sex.code)
            else:
                age = series.study.patient_age_years
                if age is None:
                    raise HarmoniseError(
                        f"covariate age is missing for series {series.series_instance_uid}"
                    )
                column.append(age)
        columns[name] = column
    categorical = {"sex"} & set(names)
    if levels is None:
        levels = {n: sorted(set(columns[n])) for n in categorical}
    design = combat.design_from(columns, categorical, levels=levels)
    return design, levels


def harmonise_collection(
    session: Session,
    collection: str,
    batch_field: str,
    covariates: Sequence[str] = (),
    *,
    parametric: bool = True,
    empirical_bayes: bool = True,
    reference_batch: str | None = None,
) -> HarmoniseSummary:
    """Learn ComBat on the collection's radiomic features and store the harmonised values."""
    found = find_collection(session.connection(), collection, "image")
    image_collection = session.get(ImageCollection, found.id)
    assert image_collection is not None
    samples, left_out = _collect(session, found.id)
    if not samples.keys:
        raise HarmoniseError(f"{found.identifier} has no radiomic features to harmonise")
    if not samples.features:
        raise HarmoniseError("no feature is present in every sample; nothing to harmonise")
    batch = [_batch_of(session, samples.series[k[0]], batch_field) for k in samples.keys]
    design, levels = _covariates(samples, covariates)
    try:
        adjusted, model = combat.harmonise(
            samples.values,
            batch,
            design,
            parametric=parametric,
            empirical_bayes=empirical_bayes,
            reference_batch=reference_batch,
        )
    except combat.CombatError as error:
        raise HarmoniseError(str(error)) from None
    software = software_entry(
        session,
        image_collection,
        "imaging-biobank ComBat",
        tool_version(),
        licence="Apache-2.0",
        description="ComBat (Johnson et al. 2007) as in sva::ComBat, in imaging_biobank.analysis",
    )
    configuration = {
        "method": "ComBat",
        "batch_field": batch_field,
        "covariates": list(covariates),
        "covariate_levels": levels,
        "parametric": parametric,
        "empirical_bayes": empirical_bayes,
        "reference_batch": reference_batch,
        "features": samples.features,
        "left_out_features": left_out,
        "model": json.loads(model.to_json()),
    }
    inputs = [samples.series[k[0]] for k in samples.keys]
    run = new_run(
        session,
        image_collection,
        "harmonisation",
        f"ComBat by {batch_field}",
        software,
        configuration,
        inputs,
    )
    stored = 0
    for i in range(len(samples.features)):
        for j in range(len(samples.keys)):
            session.add(
                HarmonisedValue(
                    imaging_biomarker_id=int(samples.biomarker_ids[i, j]),
                    image_analysis_id=run.id,
                    batch=batch[j],
                    value=float(adjusted[i, j]),
                )
            )
            stored += 1
    session.flush()
    counts: dict[str, int] = defaultdict(int)
    for label in batch:
        counts[label] += 1
    return HarmoniseSummary(
        run.id, len(samples.keys), len(samples.features), dict(counts), left_out, stored
    )


def apply_run(session: Session, run_id: int) -> int:
    """Harmonise, with a stored run's model, the samples of its collection it has not
    harmonised yet (new series of batches it knows); the number of values stored."""
    run = session.get(ImageAnalysis, run_id)
    if run is None or run.analysis_type != "harmonisation" or not run.configuration:
        raise HarmoniseError(f"no harmonisation run {run_id}")
    config = run.configuration
    model = combat.CombatModel.from_json(json.dumps(config["model"]))
    samples, _ = _collect(session, run.image_collection_id)
    done = set(
        session.scalars(
            select(HarmonisedValue.imaging_biomarker_id).where(
                HarmonisedValue.image_analysis_id == run_id
            )
        )
    )
    missing = [f for f in config["features"] if f not in samples.features]
    if missing:
        raise HarmoniseError(f"new samples lack features the model needs: {', '.join(missing)}")
    rows = [samples.features.index(f) for f in config["features"]]
    new = [
        j for j in range(len(samples.keys)) if int(samples.biomarker_ids[rows[0], j]) not in done
    ]
    if not new:
        return 0
    subset = _Samples(
        [samples.keys[j] for j in new],
        config["features"],
        samples.values[np.ix_(rows, new)],
        samples.biomarker_ids[np.ix_(rows, new)],
        samples.series,
    )
    batch = [_batch_of(session, subset.series[k[0]], config["batch_field"]) for k in subset.keys]
    design, _ = _covariates(subset, config["covariates"], config["covariate_levels"])
    try:
        adjusted = model.apply(subset.values, batch, design)
    except combat.CombatError as error:
        raise HarmoniseError(str(error)) from None
    for i in range(len(subset.features)):
        for j in range(len(subset.keys)):
            session.add(
                HarmonisedValue(
                    imaging_biomarker_id=int(subset.biomarker_ids[i, j]),
                    image_analysis_id=run.id,
                    batch=batch[j],
                    value=float(adjusted[i, j]),
                )
            )
    session.flush()
    return len(subset.features) * len(subset.keys)
