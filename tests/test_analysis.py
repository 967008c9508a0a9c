"""Analysis runs in the database: ComBat harmonisation stored beside the raw values,
provenance chains, deep features and dynamic curve features."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from imaging_biobank.analysis.runs import new_run, software_entry
from imaging_biobank.analysis.store import BiomarkerRow, add_biomarkers
from imaging_biobank.cli import app
from imaging_biobank.db.engine import session_factory
from imaging_biobank.model import (
    AcquisitionParameters,
    DeepFeatures,
    DynamicSignalFeatures,
    HarmonisedValue,
    ImagingSeries,
    ModalityInformation,
    TexturalFeatures,
)
from tests.conftest import SHARED, server_unavailable
from tests.test_ingest import PYDICOM_FILES, run

REFERENCE = "bbmri-eric:ID:ES_PRIMAGE:collection:REFERENCE_IMAGING"
# R sva::ComBat on the test matrix, no covariate: row 0 (clinical.md section 5.1)
NO_COVARIATE_ROW_0 = [
    7.80968794, 5.59183578, 7.68890476, 2.98747564, 5.17294284,
    5.00097221, 8.96581099, 4.11105433, 9.11756548, 3.73716401,
]  # fmt: skip


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def matrix() -> np.ndarray:
    path = SHARED / "reference" / "combat" / "testdata.csv"
    if not path.exists():
        server_unavailable(f"{path} is missing (../shared beside the clone)")
    with path.open() as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[float(v) for v in row] for row in rows])


def series_of(session: Session, manufacturer: str, n: int) -> list[ImagingSeries]:
    found = session.scalars(
        select(ImagingSeries)
        .join(AcquisitionParameters, AcquisitionParameters.imaging_series_id == ImagingSeries.id)
        .join(
            ModalityInformation,
            ModalityInformation.id == AcquisitionParameters.modality_information_id,
        )
        .where(ModalityInformation.manufacturer == manufacturer)
        .order_by(ImagingSeries.id)
    ).all()
    assert len(found) >= n, (manufacturer, len(found))
    return list(found[:n])


@pytest.fixture
def with_features(registered: Engine, key_file: Path) -> tuple[Engine, list[int]]:
    """pydicom's test files and STS_001 ingested; the ComBat test matrix stored as radiomic
    features of five GE series (batch 1) and five Philips MR series (batch 2)."""
    from tests.conftest import STS_001

    run(registered, key_file, PYDICOM_FILES / "test_files", STS_001, collection=REFERENCE)
    data = matrix()
    with session_factory(registered).begin() as session:
        ge = series_of(session, "GE MEDICAL SYSTEMS", 6)
        philips = series_of(session, "Philips Medical Systems, Inc.", 5)
        samples = ge[:5] + philips
        collection = samples[0].image_collection
        software = software_entry(session, collection, "test radiomics", "0.1")
        analysis = new_run(session, collection, "radiomics_import", "matrix", software, {}, samples)
        for j, series in enumerate(samples):
            rows = [
                BiomarkerRow("textural", f"feature_{i:03}", float(data[i, j]))
                for i in range(data.shape[0])
            ]
            add_biomarkers(session, analysis, series, None, rows)
        ids = [s.id for s in samples] + [ge[5].id]
    return registered, ids


def test_combat_in_the_database_equals_sva_and_keeps_the_raw_values(
    runner: CliRunner, with_features: tuple[Engine, list[int]]
) -> None:
    engine, ids = with_features
    db = engine.url.render_as_string(hide_password=False)
    before = raw_values(engine)
    code, out = invoke(
        runner,
        "harmonise",
        "combat",
        "-c",
        REFERENCE,
        "--batch",
        "manufacturer",
        "--db",
        db,
        "--json",
    )
    assert code == 0, out
    summary = json.loads(out)
    assert summary["samples"] == 10 and summary["features"] == 200 and summary["stored"] == 2000
    assert raw_values(engine) == before  # never overwritten
    with Session(engine) as session:
        row0 = {
            series_id: value
            for series_id, value in session.execute(
                select(TexturalFeatures.imaging_series_id, HarmonisedValue.value)
                .join(HarmonisedValue, HarmonisedValue.imaging_biomarker_id == TexturalFeatures.id)
                .where(TexturalFeatures.name == "feature_000")
            )
        }
    got = [row0[i] for i in ids[:10]]
    np.testing.assert_allclose(got, NO_COVARIATE_ROW_0, atol=1e-6)
    # a new sample of a known batch, harmonised later with the stored model: a copy of the
    # first GE sample's values must come out as that sample did
    data = matrix()
    with session_factory(engine).begin() as session:
        series = session.get(ImagingSeries, ids[10])
        assert series is not None
        software = software_entry(session, series.image_collection, "test radiomics", "0.1")
        later = new_run(
            session, series.image_collection, "radiomics_import", "later", software, {}, [series]
        )
        add_biomarkers(
            session,
            later,
            series,
            None,
            [BiomarkerRow("textural", f"feature_{i:03}", float(data[i, 0])) for i in range(200)],
        )
    code, out = invoke(runner, "harmonise", "combat", "-c", REFERENCE, "--apply-run",
                       str(summary["run_id"]), "--db", db)  # fmt: skip
    assert code == 0 and "200 values" in out, out
    with Session(engine) as session:
        new = session.execute(
            select(HarmonisedValue.value)
            .join(TexturalFeatures, TexturalFeatures.id == HarmonisedValue.imaging_biomarker_id)
            .where(TexturalFeatures.imaging_series_id == ids[10])
            .where(TexturalFeatures.name == "feature_000")
        ).scalar_one()
    assert new == pytest.approx(row0[ids[0]], abs=1e-9)


def raw_values(engine: Engine) -> list[tuple[int, float | None]]:
    with Session(engine) as session:
        return [
            (id_, value)
            for id_, value in session.execute(
                select(TexturalFeatures.id, TexturalFeatures.value).order_by(TexturalFeatures.id)
            )
        ]


def test_degenerate_harmonisation_is_refused_without_storing(
    runner: CliRunner, with_features: tuple[Engine, list[int]]
) -> None:
    engine, _ = with_features
    db = engine.url.render_as_string(hide_password=False)
    code, out = invoke(runner, "harmonise", "combat", "-c", REFERENCE, "--batch", "manufacturer",
                       "--covariate", "weight", "--db", db)  # fmt: skip
    assert code == 1 and "unknown covariate" in out
    # every sample is its own batch by series number: batches of one sample
    code, out = invoke(runner, "harmonise", "combat", "-c", REFERENCE, "--batch", "rows",
                       "--db", db)  # fmt: skip
    assert code == 1 and "fewer than 2 samples" in out, out
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(HarmonisedValue)) == 0


def test_provenance_of_a_harmonised_feature(
    runner: CliRunner, with_features: tuple[Engine, list[int]]
) -> None:
    engine, ids = with_features
    db = engine.url.render_as_string(hide_password=False)
    assert invoke(runner, "harmonise", "combat", "-c", REFERENCE, "--batch", "manufacturer",
                  "--db", db)[0] == 0  # fmt: skip
    with Session(engine) as session:
        feature_id = session.scalar(
            select(TexturalFeatures.id).where(TexturalFeatures.imaging_series_id == ids[0])
        )
        uid = session.get(ImagingSeries, ids[0]).series_instance_uid  # type: ignore[union-attr]
    code, out = invoke(runner, "provenance", f"feature:{feature_id}", "--db", db, "--json")
    assert code == 0, out
    chain = json.loads(out)
    assert chain["series"]["series_instance_uid"] == uid
    assert chain["made_by"][0]["software"]["name"] == "test radiomics"
    assert chain["harmonised"][0]["type"] == "harmonisation"
    assert chain["harmonised"][0]["configuration"]["batch_field"] == "manufacturer"
    code, out = invoke(runner, "provenance", f"feature:{feature_id}", "--db", db)
    assert code == 0 and uid in out and "ComBat" in out
    assert invoke(runner, "provenance", "feature:999999", "--db", db)[0] == 1
    assert invoke(runner, "provenance", "thing:1", "--db", db)[0] == 2


def test_deep_features_and_dynamic_curves(
    runner: CliRunner, registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    from tests.conftest import STS_001

    run(registered, key_file, STS_001 / "PET")
    db = registered.url.render_as_string(hide_password=False)
    with Session(registered) as session:
        uid = session.scalars(
            select(ImagingSeries.series_instance_uid).where(ImagingSeries.modality_value == "PT")
        ).one()
    vector = tmp_path / "v.npy"
    np.save(vector, np.arange(8, dtype=float) / 10)
    code, out = invoke(runner, "import", "deep-features", str(vector), "--series", uid,
                       "--model", "resnet18", "--model-version", "1.0", "--layer", "avgpool",
                       "--db", db)  # fmt: skip
    assert code == 0 and "8 deep features" in out, out
    curve = tmp_path / "curve.csv"
    curve.write_text("time_s,signal\n0,100\n30,180\n60,260\n90,240\n120,220\n")
    code, out = invoke(runner, "import", "curve", str(curve), "--series", uid, "--db", db)
    assert code == 0, out
    with Session(registered) as session:
        deep = session.scalars(select(DeepFeatures).order_by(DeepFeatures.feature_index)).all()
        assert [d.value for d in deep] == pytest.approx([i / 10 for i in range(8)])
        assert {(d.model_name, d.layer) for d in deep} == {("resnet18", "avgpool")}
        dynamic = {d.name: d for d in session.scalars(select(DynamicSignalFeatures))}
    assert dynamic["time to peak"].value == 60 and dynamic["time to peak"].unit == "s"
    assert dynamic["wash-in slope"].value == pytest.approx(160 / 60)
    assert dynamic["wash-out slope"].value == pytest.approx(-40 / 60)
    # trapezoid of (0, 80, 160, 140, 120) over steps of 30 s
    assert dynamic["area under the curve"].value == pytest.approx(30 * (40 + 120 + 150 + 130))
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,signal\n0,1\n0,2\n")
    code, out = invoke(runner, "import", "curve", str(bad), "--series", uid, "--db", db)
    assert code == 2 and "at least 3" in out


def test_pyradiomics_output_imports_with_ibsi_codes(
    runner: CliRunner, registered: Engine, key_file: Path
) -> None:
    """Real pyradiomics output (tests/data, made on pydicom's CT_small.dcm) on its series."""
    from tests.conftest import ROOT

    run(registered, key_file, PYDICOM_FILES / "test_files" / "CT_small.dcm")
    db = registered.url.render_as_string(hide_password=False)
    csv_file = ROOT / "tests" / "data" / "pyradiomics_ct_small.csv"
    code, out = invoke(runner, "import", "radiomics", str(csv_file), "--db", db)
    assert code == 0, out
    with Session(registered) as session:
        energy = session.scalars(
            select(TexturalFeatures).where(TexturalFeatures.name == "original_glcm_JointEnergy")
        ).all()
        assert len(energy) == 2  # two cases (masks) in the file
        assert {(e.code_scheme, e.code, e.feature_family) for e in energy} == {
            ("IBSI", "8ZQL", "GLCM")
        }
        kurtosis = session.scalars(
            select(TexturalFeatures).where(TexturalFeatures.name == "original_firstorder_Kurtosis")
        ).first()
        assert kurtosis is not None and kurtosis.code is None  # +3 relative to IBSI
