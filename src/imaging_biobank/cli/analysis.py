"""Commands for the Image Analysis half of the model: ``harmonise``, ``provenance`` and the
feature imports (``import deep-features``, ``import curve``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from imaging_biobank.cli import app
from imaging_biobank.cli.common import DbOption, JsonOption, console, fail, open_database, plain
from imaging_biobank.cli.imports import import_app

harmonise_app = typer.Typer(
    name="harmonise",
    help="Harmonise radiomic features across scanners or sites (ComBat).",
    no_args_is_help=True,
)
app.add_typer(harmonise_app, name="harmonise")

SeriesOption = Annotated[
    str | None,
    typer.Option("--series", help="SeriesInstanceUID the values belong to.", show_default=False),
]
SegmentationOption = Annotated[
    int | None,
    typer.Option("--segmentation", help="Id of the segmentation the values were measured in."),
]


@harmonise_app.command("combat")
def harmonise_combat(
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="The image collection.", show_default=False)
    ],
    batch: Annotated[
        str,
        typer.Option(
            "--batch",
            help="What a batch is: scanner, manufacturer, kernel, or an acquisition parameter"
            " column (e.g. slice_thickness).",
        ),
    ] = "scanner",
    covariates: Annotated[
        list[str] | None,
        typer.Option("--covariate", help="A covariate whose effect is kept: sex or age."),
    ] = None,
    reference_batch: Annotated[
        str | None, typer.Option("--reference-batch", help="Leave this batch unchanged.")
    ] = None,
    non_parametric: Annotated[
        bool, typer.Option("--non-parametric", help="Non-parametric empirical Bayes priors.")
    ] = False,
    no_eb: Annotated[
        bool, typer.Option("--no-eb", help="Plain location/scale, without empirical Bayes.")
    ] = False,
    apply_run: Annotated[
        int | None,
        typer.Option(
            "--apply-run",
            help="Instead of learning: harmonise new samples with the model of this run.",
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """ComBat harmonisation of a collection's radiomic features (empirical Bayes, parametric
    or not, with covariates and a reference batch).

    Harmonised values are stored beside the raw ones (table harmonised_value) with the run
    that made them, whose configuration holds the learnt model: --apply-run harmonises new
    samples of known batches with it. A batch with fewer than 2 samples, missing values or
    a missing covariate is refused with a message, never NaN.

    Example: [bold]imaging-biobank harmonise combat -c NB_IMAGING --batch scanner --covariate age[/]
    """
    from imaging_biobank.analysis.harmonise import HarmoniseError, harmonise_collection
    from imaging_biobank.analysis.harmonise import apply_run as apply_model
    from imaging_biobank.db.engine import session_factory
    from imaging_biobank.db.lookup import CollectionLookupError

    engine = open_database(db)
    try:
        with session_factory(engine).begin() as session:
            if apply_run is not None:
                n = apply_model(session, apply_run)
                console.print(f"{n} values harmonised with the model of run {apply_run}")
                return
            summary = harmonise_collection(
                session,
                collection,
                batch,
                covariates or [],
                parametric=not non_parametric,
                empirical_bayes=not no_eb,
                reference_batch=reference_batch,
            )
    except (HarmoniseError, CollectionLookupError) as error:
        fail(str(error), 1 if isinstance(error, HarmoniseError) else 2)
    if as_json:
        print(json.dumps(summary.__dict__, indent=2))
        return
    console.print(
        f"run {summary.run_id}: {summary.features} features x {summary.samples} samples,"
        f" {summary.stored} harmonised values stored; batches: "
        + ", ".join(f"{k} ({v})" for k, v in summary.batches.items())
    )
    if summary.left_out_features:
        console.print(
            plain(
                f"left out (missing in some samples): {', '.join(summary.left_out_features[:20])}"
            )
        )


@app.command()
def provenance(
    what: Annotated[
        str,
        typer.Argument(
            help="feature:ID or segmentation:ID (an imaging_biomarker or segmentation id).",
            show_default=False,
        ),
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The chain from a stored feature or segmentation back to its DICOM series: the runs
    that made it, their software (name, version, repository) and configuration, the
    segmentation and its source object, the series, study and collection.

    Example: [bold]imaging-biobank provenance feature:42[/]
    """
    from sqlalchemy.orm import Session

    from imaging_biobank.analysis.provenance import (
        ProvenanceError,
        biomarker_chain,
        segmentation_chain,
    )

    kind, _, number = what.partition(":")
    if kind not in ("feature", "segmentation") or not number.isdigit():
        fail(f"{what!r}: give feature:ID or segmentation:ID")
    engine = open_database(db)
    with Session(engine) as session:
        try:
            chain = (
                biomarker_chain(session, int(number))
                if kind == "feature"
                else segmentation_chain(session, int(number))
            )
        except ProvenanceError as error:
            fail(str(error), 1)
    if as_json:
        print(json.dumps(chain, indent=2, default=str))
        return
    console.print(_tree(what, chain))


def _tree(label: str, chain: dict[str, Any]) -> Any:
    from rich.tree import Tree

    def add(node: Any, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if item in (None, [], {}):
                    continue
                if isinstance(item, dict | list):
                    add(node.add(plain(str(key))), item)
                else:
                    node.add(plain(f"{key}: {item}"))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                add(node.add(plain(f"[{index}]")), item)
        else:
            node.add(plain(str(value)))

    tree = Tree(plain(label))
    add(tree, chain)
    return tree


@import_app.command("deep-features")
def import_deep_features(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV (series_instance_uid + one column per feature) or NPY vector.",
            show_default=False,
        ),
    ],
    model: Annotated[str, typer.Option("--model", help="The network's name.", show_default=False)],
    model_version: Annotated[
        str, typer.Option("--model-version", help="Its version.", show_default=False)
    ],
    layer: Annotated[str, typer.Option("--layer", help="The layer the vector comes from.")],
    series: SeriesOption = None,
    segmentation: SegmentationOption = None,
    repository: Annotated[
        str | None, typer.Option("--repository", help="Where the model lives (URL or digest).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Import deep feature vectors with the model, version and layer that made them.

    Example: [bold]imaging-biobank import deep-features feats.npy --series 1.2.3
    --model resnet18 --model-version 1.0 --layer avgpool[/]
    """
    from imaging_biobank.analysis.feature_import import FeatureImportError, import_deep_features
    from imaging_biobank.db.engine import session_factory

    engine = open_database(db)
    try:
        with session_factory(engine).begin() as session:
            n = import_deep_features(
                session, path, model, model_version, layer, series, segmentation, repository
            )
    except FeatureImportError as error:
        fail(str(error))
    console.print(f"{n} deep features stored")


@import_app.command("curve")
def import_curve(
    path: Annotated[Path, typer.Argument(help="CSV with time_s and signal.", show_default=False)],
    series: Annotated[
        str, typer.Option("--series", help="The dynamic series.", show_default=False)
    ],
    segmentation: SegmentationOption = None,
    db: DbOption = None,
) -> None:
    """Compute dynamic signal features (time to peak, wash-in and wash-out slopes, area under
    the curve) from a time-intensity curve and store them.

    Example: [bold]imaging-biobank import curve roi_curve.csv --series 1.2.3[/]
    """
    from imaging_biobank.analysis.feature_import import FeatureImportError, import_curve
    from imaging_biobank.db.engine import session_factory

    engine = open_database(db)
    try:
        with session_factory(engine).begin() as session:
            n = import_curve(session, path, series, segmentation)
    except FeatureImportError as error:
        fail(str(error))
    console.print(f"{n} dynamic signal features stored")


@import_app.command("segmentation")
def import_segmentation(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="RTSTRUCT or DICOM SEG files (or folders holding them), or NIfTI masks.",
            show_default=False,
        ),
    ],
    series: SeriesOption = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="manual, semi_automated or automated, when the object does not say.",
        ),
    ] = None,
    annotator_role: Annotated[
        str | None, typer.Option("--annotator-role", help="Who drew it (e.g. radiologist).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="The algorithm or model that made it.")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="Its version.")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import segmentations onto their stored image series: RTSTRUCT (contours rasterised
    onto the series' grid), DICOM SEG (highdicom) and NIfTI label maps (with --series).

    The type (manual, semi-automated, automated) comes from ROI Generation Algorithm
    (3006,0036) or Segment Algorithm Type (0062,0008), or --kind. Each segment is stored with
    its voxel count, volume, the digest of its mask and its source, made by an import run
    (see `imaging-biobank provenance segmentation:ID`). Importing again updates, never
    duplicates. The image series must be ingested first (as local files).

    Example: [bold]imaging-biobank import segmentation examples/data/sts_001/CT/mask[/]
    """
    from imaging_biobank.analysis.segmentation_import import (
        SegmentationImportError,
    )
    from imaging_biobank.analysis.segmentation_import import (
        import_segmentation as run_import,
    )
    from imaging_biobank.db.engine import session_factory

    if kind is not None and kind not in ("manual", "semi_automated", "automated"):
        fail(f"--kind {kind!r}: use manual, semi_automated or automated")
    files = [
        f
        for p in paths
        for f in (sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p])
    ]
    if not files:
        fail("no files given")
    from rich.progress import Progress

    engine = open_database(db)
    results, failed = [], 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("segmentations", total=len(files))
        for path in files:
            try:
                with session_factory(engine).begin() as session:
                    results.append(
                        run_import(
                            session,
                            path,
                            series_uid=series,
                            kind=kind,
                            annotator_role=annotator_role,
                            model=model,
                            model_version=model_version,
                        )
                    )
            except SegmentationImportError as error:
                failed += 1
                console.print(plain(f"refused: {error}"), style="red")
            progress.advance(task)
    if as_json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for r in results:
            console.print(
                plain(
                    f"{r.path}: {len(r.segmentations)} segmentation(s) {', '.join(r.labels)}"
                    f" on series {r.series_instance_uid} (ids {r.segmentations})"
                )
            )
            for warning in r.warnings:
                console.print(plain(f"  note: {warning}"), style="yellow")
    if failed:
        raise typer.Exit(1)


analyse_app = typer.Typer(
    name="analyse",
    help="Compute imaging biomarkers: IBSI radiomics on segmented series.",
    no_args_is_help=True,
)
app.add_typer(analyse_app, name="analyse")


@analyse_app.command("radiomics")
def analyse_radiomics(
    segmentation: Annotated[
        list[int] | None,
        typer.Option("--segmentation", help="Segmentation id(s) to measure in."),
    ] = None,
    series: SeriesOption = None,
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection", "-c", help="Batch: every segmentation of this image collection."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML: resampling_spacing_mm, interpolation, resegmentation_range,"
            " discretisation_method/value, families, aggregation, filters, ...",
        ),
    ] = None,
    again: Annotated[
        bool,
        typer.Option("--again", help="Measure again what was measured with this configuration."),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """IBSI radiomic features (MIRP) of a series inside a segmentation, stored as imaging
    biomarkers with their IBSI family and code; the configuration is stored as the run's
    preprocessing parameters and the engine as its software entry.

    Without --config: the series' own grid, fixed bin number 32, 3D features. With
    --collection, every segmentation of the collection's series is measured (one run each);
    what was measured with the same configuration and engine version is not repeated.

    Example: [bold]imaging-biobank analyse radiomics --segmentation 1 --config radiomics.yaml[/]
    """
    from sqlalchemy import select

    from imaging_biobank.analysis.radiomics import RadiomicsConfig, RadiomicsConfigError
    from imaging_biobank.analysis.radiomics_run import RadiomicsRunError, run_radiomics
    from imaging_biobank.db.engine import session_factory
    from imaging_biobank.db.lookup import CollectionLookupError, find_collection
    from imaging_biobank.model import ImagingSeries, Segmentation

    try:
        settings = RadiomicsConfig.from_yaml(config) if config is not None else None
    except (RadiomicsConfigError, OSError) as error:
        fail(f"{config}: {error}")
    engine = open_database(db)
    ids = list(segmentation or [])
    if collection is not None:
        with session_factory(engine)() as session:
            try:
                found = find_collection(session.connection(), collection, "image")
            except CollectionLookupError as error:
                fail(str(error))
            ids += session.scalars(
                select(Segmentation.id)
                .join(ImagingSeries, ImagingSeries.id == Segmentation.imaging_series_id)
                .where(ImagingSeries.image_collection_id == found.id)
                .order_by(Segmentation.id)
            ).all()
    if not ids:
        fail("give --segmentation ID (see `imaging-biobank import segmentation`) or --collection")
    summaries, failed = [], 0
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("radiomics", total=len(ids))
        for segmentation_id in ids:
            try:
                with session_factory(engine).begin() as session:
                    summaries.append(
                        run_radiomics(session, segmentation_id, settings, series, again)
                    )
            except RadiomicsRunError as error:
                failed += 1
                console.print(plain(f"segmentation {segmentation_id}: {error}"), style="red")
            progress.advance(task)
    if as_json:
        print(json.dumps([s.__dict__ for s in summaries], indent=2))
    else:
        for s in summaries:
            console.print(
                plain(
                    f"run {s.run_id}: {s.features} features ({s.coded} with IBSI codes) of"
                    f" segmentation {s.segmentation_id} on {s.series_instance_uid}, {s.engine}"
                    + (
                        " (measured before with this configuration; --again repeats)"
                        if s.already
                        else ""
                    )
                )
            )
    if failed:
        raise typer.Exit(1)


@import_app.command("report")
def import_report(
    paths: Annotated[list[Path], typer.Argument(help="DICOM SR measurement reports (TID 1500).")],
    db: DbOption = None,
) -> None:
    """Import DICOM SR measurement reports (TID 1500) as imaging biomarkers: numeric
    measurements (diameter, volume, SUV, with UCUM units) as quantitative biomarkers,
    qualitative evaluations (RADS categories, TNM, response) with their codes. Each is
    linked to its source series and, when imported, the SEG segment it measures.

    Example: [bold]imaging-biobank import report sr/measurements.dcm[/]
    """
    from imaging_biobank.analysis.report_import import ReportImportError
    from imaging_biobank.analysis.report_import import import_report as run_import
    from imaging_biobank.db.engine import session_factory

    engine = open_database(db)
    failed = 0
    for path in paths:
        try:
            with session_factory(engine).begin() as session:
                result = run_import(session, path)
        except ReportImportError as error:
            failed += 1
            console.print(plain(f"refused: {error}"), style="red")
            continue
        if result.already:
            console.print(plain(f"{path}: already imported; nothing changed"))
            continue
        console.print(
            plain(
                f"{path}: {result.quantitative} quantitative and {result.qualitative}"
                " qualitative biomarkers"
            )
        )
        for skipped in result.skipped_groups:
            console.print(plain(f"  skipped group {skipped}"), style="yellow")
    if failed:
        raise typer.Exit(1)


@import_app.command("registration")
def import_registration(
    path: Annotated[
        Path,
        typer.Argument(help="DICOM Spatial Registration (REG) or ITK transform (.tfm/.txt)."),
    ],
    moving: Annotated[
        str | None, typer.Option("--moving", help="SeriesInstanceUID of the moving series.")
    ] = None,
    fixed: Annotated[
        str | None, typer.Option("--fixed", help="SeriesInstanceUID of the fixed series.")
    ] = None,
    software: Annotated[
        str | None, typer.Option("--software", help="The registration tool (e.g. elastix).")
    ] = None,
    software_version: Annotated[
        str | None, typer.Option("--software-version", help="Its version.")
    ] = None,
    metric: Annotated[
        str | None, typer.Option("--metric", help="Similarity metric (e.g. Mattes MI).")
    ] = None,
    metric_value: Annotated[
        float | None, typer.Option("--metric-value", help="Its final value.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Import a registration as Registration Parameters: intra-sequence (one series),
    inter-sequence (two series of one modality) or inter-modal (two modalities), with
    the transform type, its matrix (moving onto fixed, LPS mm) or raw parameters, the
    similarity metric and the software.

    Example: [bold]imaging-biobank import registration pet_to_ct.tfm --moving 1.2.3 --fixed 1.2.4
    --software elastix --software-version 5.1[/]
    """
    from imaging_biobank.analysis.registration_import import (
        RegistrationImportError,
    )
    from imaging_biobank.analysis.registration_import import (
        import_registration as run_import,
    )
    from imaging_biobank.db.engine import session_factory

    engine = open_database(db)
    try:
        with session_factory(engine).begin() as session:
            result = run_import(
                session,
                path,
                moving=moving,
                fixed=fixed,
                software=software,
                software_version=software_version,
                metric=metric,
                metric_value=metric_value,
            )
    except RegistrationImportError as error:
        fail(str(error), 1)
    console.print(plain(f"{path}: {len(result.ids)} registration(s): {', '.join(result.kinds)}"))


@import_app.command("radiomics")
def import_radiomics(
    path: Annotated[Path, typer.Argument(help="A pyradiomics batch-mode CSV output.")],
    series: SeriesOption = None,
    segmentation: SegmentationOption = None,
    db: DbOption = None,
) -> None:
    """Import existing pyradiomics CSV outputs as radiomic features, mapped onto the IBSI
    families and codes (where pyradiomics computes the IBSI quantity), with pyradiomics'
    version and settings as the run's provenance. Each case goes on the series of its
    series_instance_uid column (or --series for a one-case file).

    Example: [bold]imaging-biobank import radiomics pyradiomics_out.csv --series 1.2.3[/]
    """
    from imaging_biobank.analysis.feature_import import FeatureImportError
    from imaging_biobank.analysis.radiomics_import import import_pyradiomics
    from imaging_biobank.db.engine import session_factory

    engine = open_database(db)
    try:
        with session_factory(engine).begin() as session:
            result = import_pyradiomics(session, path, series, segmentation)
    except FeatureImportError as error:
        fail(str(error))
    console.print(
        plain(
            f"{result.cases} case(s), {result.features} features ({result.coded} with IBSI"
            f" codes, {result.unknown} not in the mapping, {result.skipped_nan} empty skipped)"
        )
    )
    for refused in result.refused:
        console.print(plain(f"refused: {refused}"), style="red")
    if result.refused:
        raise typer.Exit(1)


@analyse_app.command("record")
def analyse_record(
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="The image collection.", show_default=False)
    ],
    analysis_type: Annotated[
        str,
        typer.Option(
            "--type", help="What the run did: simulation, segmentation_import, radiomics, ..."
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="A name for the run.", show_default=False)],
    software: Annotated[
        str, typer.Option("--software", help="Its software's name.", show_default=False)
    ],
    software_version: Annotated[
        str, typer.Option("--software-version", help="Its version.", show_default=False)
    ],
    repository: Annotated[
        str | None, typer.Option("--repository", help="Source repository URL.")
    ] = None,
    digest: Annotated[
        str | None,
        typer.Option("--digest", help="Container image digest or DOI/SWHID of the software."),
    ] = None,
    licence: Annotated[str | None, typer.Option("--licence", help="SPDX licence id.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Its parameters (JSON or YAML file).")
    ] = None,
    inputs: Annotated[
        list[str] | None, typer.Option("--input", help="SeriesInstanceUID of an input.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Record a run done outside imaging-biobank (a PRIMAGE multiscale tumour simulation, a
    segmentation model, a pipeline) with its software entry, parameters and input series,
    so the results it produced have a provenance chain.

    Example: [bold]imaging-biobank analyse record -c NB_IMAGING --type simulation --name
    "tumour growth" --software primage-mstm --software-version 2.1 --input 1.2.3[/]
    """
    import yaml
    from sqlalchemy import select

    from imaging_biobank.analysis.runs import new_run, software_entry
    from imaging_biobank.db.engine import session_factory
    from imaging_biobank.db.lookup import CollectionLookupError, find_collection
    from imaging_biobank.model import ImageCollection, ImagingSeries
    from imaging_biobank.model.analysis import ANALYSIS_TYPES

    if analysis_type not in ANALYSIS_TYPES:
        fail(f"--type {analysis_type!r}: use one of {', '.join(ANALYSIS_TYPES)}")
    parameters: Any = None
    if config is not None:
        try:
            parameters = yaml.safe_load(config.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            fail(f"{config}: {error}")
        if not isinstance(parameters, dict):
            fail(f"{config}: the parameters must be a mapping")
    engine = open_database(db)
    with session_factory(engine).begin() as session:
        try:
            found = find_collection(session.connection(), collection, "image")
        except CollectionLookupError as error:
            fail(str(error))
        image_collection = session.get(ImageCollection, found.id)
        assert image_collection is not None
        series = []
        for uid in inputs or []:
            row = session.scalars(
                select(ImagingSeries).where(ImagingSeries.series_instance_uid == uid)
            ).first()
            if row is None:
                fail(f"no series {uid} in the database")
            series.append(row)
        entry = software_entry(
            session,
            image_collection,
            software,
            software_version,
            repository_url=repository,
            licence=licence,
            persistent_identifier=digest,
        )
        run = new_run(session, image_collection, analysis_type, name, entry, parameters, series)
        console.print(plain(f"run {run.id} recorded ({entry.identifier})"))
