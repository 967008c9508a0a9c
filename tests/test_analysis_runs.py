"""Analyses on real data, end to end through the CLI: the three STS_001 RTSTRUCTs imported
onto their series, IBSI radiomics on the CT GTV stored with codes and configuration, a
TID 1500 SR (written by highdicom on STS_001's CT and a SEG of its GTV) imported as
quantitative and qualitative biomarkers, an ITK registration, and provenance chains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from imaging_biobank.analysis.segmentation_read import read_rtstruct, read_series_grid
from imaging_biobank.cli import app
from imaging_biobank.model import (
    ImageAnalysis,
    ImagingSeries,
    InterModal,
    ManualSegmentation,
    ReportedBiomarker,
    Segmentation,
    TexturalFeatures,
)
from tests.conftest import STS_001
from tests.test_analysis_readers import _write_seg, write_measurement_report
from tests.test_ingest import run

IMAGE_FOLDERS = {"CT": "CT", "MR": "MR_T1", "PT": "PET"}


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    """Exit code and output, with the terminal's line wrapping undone."""
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def sts(registered: Engine, key_file: Path) -> tuple[Engine, str]:
    run(registered, key_file, STS_001)
    return registered, registered.url.render_as_string(hide_password=False)


def series_uid(engine: Engine, modality: str) -> str:
    with Session(engine) as session:
        return session.scalars(
            select(ImagingSeries.series_instance_uid).where(
                ImagingSeries.modality_value == modality
            )
        ).one()


def import_masks(runner: CliRunner, db: str) -> None:
    masks = [str(STS_001 / folder / "mask") for folder in IMAGE_FOLDERS.values()]
    code, out = invoke(runner, "import", "segmentation", *masks, "--db", db)
    assert code == 0, out


def test_three_rtstructs_on_their_series_with_their_type(
    runner: CliRunner, sts: tuple[Engine, str]
) -> None:
    engine, db = sts
    import_masks(runner, db)
    import_masks(runner, db)  # again: updated, not duplicated
    with Session(engine) as session:
        rows = session.scalars(select(Segmentation).order_by(Segmentation.id)).all()
        assert len(rows) == 3
        on = {r.series.modality_value: r for r in rows}
        assert set(on) == set(IMAGE_FOLDERS)
        for modality, row in on.items():
            assert isinstance(row, ManualSegmentation)  # ROI Generation Algorithm MANUAL
            assert row.label.startswith("GTV_Mass")
            # the series whose images sit beside the RTSTRUCT, in the same frame of reference
            folder = STS_001 / IMAGE_FOLDERS[modality] / "image"
            expected = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
            assert row.series.series_instance_uid == expected.SeriesInstanceUID
            assert row.source_series is not None and row.source_series.modality_value == "RTSTRUCT"
            assert row.segmentation_type is not None
            assert row.segmentation_type.code == "CLOSED_PLANAR"
            assert row.voxel_count and row.volume_mm3 == pytest.approx(365_500, rel=0.01)
        runs = session.scalars(
            select(ImageAnalysis).where(ImageAnalysis.analysis_type == "segmentation_import")
        ).all()
        assert len(runs) == 6 and all(r.software is not None for r in runs)


def test_radiomics_on_the_ct_gtv_with_ibsi_codes_and_configuration(
    runner: CliRunner, sts: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, db = sts
    import_masks(runner, db)
    with Session(engine) as session:
        segmentation_id = session.scalars(
            select(Segmentation.id)
            .join(ImagingSeries, ImagingSeries.id == Segmentation.imaging_series_id)
            .where(ImagingSeries.modality_value == "CT")
        ).one()
    config = tmp_path / "radiomics.yaml"
    config.write_text(
        "modality: CT\nresegmentation_range: [-200, 300]\ndiscretisation_method: FBS\n"
        "discretisation_value: 25\nfamilies: [morphology, intensity, GLCM]\n"
    )
    code, out = invoke(runner, "analyse", "radiomics", "--segmentation", str(segmentation_id),
                       "--config", str(config), "--db", db, "--json")  # fmt: skip
    assert code == 0, out
    (summary,) = json.loads(out)
    assert summary["engine"].startswith("mirp ") and summary["coded"] > 20
    with Session(engine) as session:
        features = {
            f.code: f for f in session.scalars(select(TexturalFeatures)).all() if f.code is not None
        }
        volume = features["RNU0"]  # IBSI: morphological volume
        assert volume.feature_family == "morphology" and volume.code_scheme == "IBSI"
        assert volume.value == pytest.approx(365_000, rel=0.03)
        assert features["8ZQL"].feature_family.lower() == "glcm"  # angular second moment
        assert features["8ZQL"].discretisation == "FBS 25.0"
        analysis = session.scalars(
            select(ImageAnalysis).where(ImageAnalysis.analysis_type == "radiomics")
        ).one()
        steps = {p.step: p for p in analysis.preprocessing_parameters}
        assert steps["discretisation"].parameters["discretisation_value"] == 25
        assert steps["resegmentation"].parameters["resegmentation_range"] == [-200, 300]
        assert analysis.software is not None and analysis.software.name == "mirp"
        feature_id = volume.id
    code, out = invoke(runner, "provenance", f"feature:{feature_id}", "--db", db, "--json")
    assert code == 0, out
    chain = json.loads(out)
    assert chain["made_by"][0]["software"]["name"] == "mirp"
    assert chain["segmentation"]["made_by"][0]["type"] == "segmentation_import"
    assert chain["series"]["series_instance_uid"] == series_uid(engine, "CT")
    # the same measurement again is not repeated (unless --again)
    with Session(engine) as session:
        before = session.scalar(select(func.count()).select_from(TexturalFeatures))
    code, out = invoke(runner, "analyse", "radiomics", "--segmentation", str(segmentation_id),
                       "--config", str(config), "--db", db, "--json")  # fmt: skip
    assert code == 0 and json.loads(out)[0]["already"] is True
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(TexturalFeatures)) == before


def write_report(folder: Path) -> tuple[Path, Path]:
    """A SEG of the CT GTV and a TID 1500 SR measuring it, both written by highdicom."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    images = sorted((STS_001 / "CT" / "image").glob("*.dcm"))
    grid = read_series_grid(images)
    (gtv,) = read_rtstruct(STS_001 / "CT" / "mask" / "RS.dcm", images)
    seg_path = folder / "seg.dcm"
    seg = _write_seg(seg_path, "BINARY", grid, gtv)
    sources = [pydicom.dcmread(f) for f in grid.files]
    group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="GTV #1"),
        referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, segment_number=1),
        finding_type=codes.SCT.Neoplasm,
        measurements=[
            hd.sr.Measurement(
                name=codes.SCT.Volume, value=gtv.volume_mm3, unit=Code("mm3", "UCUM", "mm3")
            ),
            hd.sr.Measurement(
                name=codes.SCT.Diameter, value=92.5, unit=Code("mm", "UCUM", "millimeter")
            ),
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(codes.SCT.Necrosis, codes.SCT.Present)
        ],
    )
    sr_path = folder / "sr.dcm"
    write_measurement_report(sr_path, [*sources, seg], [group])
    return seg_path, sr_path


def test_a_tid_1500_report_becomes_biomarkers_with_units_codes_and_provenance(
    runner: CliRunner, sts: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, db = sts
    seg_path, sr_path = write_report(tmp_path)
    code, out = invoke(runner, "import", "segmentation", str(seg_path), "--db", db)
    assert code == 0, out
    code, out = invoke(runner, "import", "report", str(sr_path), "--db", db)
    assert code == 0 and "2 quantitative and 1 qualitative" in out, out
    code, out = invoke(runner, "import", "report", str(sr_path), "--db", db)
    assert code == 0 and "already imported" in out
    ct = series_uid(engine, "CT")
    with Session(engine) as session:
        rows = session.scalars(select(ReportedBiomarker).order_by(ReportedBiomarker.id)).all()
        assert len(rows) == 3
        assert {r.series.series_instance_uid for r in rows} == {ct}
        assert all(r.segmentation is not None and r.segmentation.label == "GTV" for r in rows)
        quantitative = {r.name: r for r in rows if r.value_type == "quantitative"}
        assert quantitative["Volume"].unit == "mm3" and quantitative["Volume"].code == "118565006"
        assert quantitative["Diameter"].value == 92.5 and quantitative["Diameter"].unit == "mm"
        (necrosis,) = [r for r in rows if r.value_type == "qualitative"]
        assert (necrosis.value_code_scheme, necrosis.value_code) == ("SCT", "52101004")
        assert necrosis.value is None
        feature_id = necrosis.id
        # every stored feature has a chain back to its series and a software entry
        for biomarker in rows:
            assert biomarker.series is not None
    code, out = invoke(runner, "provenance", f"feature:{feature_id}", "--db", db, "--json")
    chain: dict[str, Any] = json.loads(out)
    assert chain["made_by"][0]["type"] == "structured_report_import"
    assert chain["made_by"][0]["software"]["name"] == "imaging-biobank"
    assert chain["segmentation"]["source"]["sop_instance_uid"] is not None
    assert chain["series"]["series_instance_uid"] == ct


def test_an_itk_transform_between_pet_and_ct_is_an_inter_modal_registration(
    runner: CliRunner, sts: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, db = sts
    transform = tmp_path / "pet_to_ct.tfm"
    transform.write_text(
        "#Insight Transform File V1.0\n#Transform 0\n"
        "Transform: AffineTransform_double_3_3\n"
        "Parameters: 1 0 0 0 1 0 0 0 1 2.5 -1 4\nFixedParameters: 0 0 0\n"
    )
    code, out = invoke(runner, "import", "registration", str(transform),
                       "--moving", series_uid(engine, "PT"), "--fixed", series_uid(engine, "CT"),
                       "--software", "elastix", "--software-version", "5.1",
                       "--metric", "Mattes mutual information", "--metric-value", "-0.62",
                       "--db", db)  # fmt: skip
    assert code == 0 and "inter_modal" in out, out
    with Session(engine) as session:
        (row,) = session.scalars(select(InterModal)).all()
        assert row.moving_modality is not None and row.moving_modality.code == "PT"
        assert row.fixed_modality is not None and row.fixed_modality.code == "CT"
        assert row.software is not None and row.software.version == "5.1"
        matrix = np.array(row.transformation_matrix).reshape(4, 4)
        # ITK maps fixed onto moving (x + t): stored moving onto fixed, so -t
        np.testing.assert_allclose(matrix[:3, 3], [-2.5, 1, -4])
        assert row.similarity_metric == "Mattes mutual information"
        assert session.scalar(select(func.count()).select_from(ImageAnalysis)) == 1


def test_a_dicom_spatial_registration_between_stored_series(
    runner: CliRunner, sts: tuple[Engine, str], tmp_path: Path
) -> None:
    from tests.test_analysis_readers import _rotation_z, _write_reg

    engine, db = sts
    rigid = _rotation_z(10.0, (5.0, -3.0, 12.5))
    uids = _write_reg(tmp_path / "reg.dcm", [(rigid, "RIGID")])
    code, out = invoke(runner, "import", "registration", str(tmp_path / "reg.dcm"), "--db", db)
    assert code == 0 and "inter_modal" in out, out
    with Session(engine) as session:
        (row,) = session.scalars(select(InterModal)).all()
        assert row.moving_series.series_instance_uid == uids["mr_series"]
        assert row.fixed_series is not None
        assert row.fixed_series.series_instance_uid == uids["ct_series"]
        assert row.transformation_type == "RIGID"
        np.testing.assert_allclose(np.array(row.transformation_matrix).reshape(4, 4), rigid)


def test_an_outside_run_is_recorded_with_its_software(
    runner: CliRunner, sts: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, db = sts
    parameters = tmp_path / "model.yaml"
    parameters.write_text("cell_cycle_hours: 24\nvascular_density: 0.3\n")
    code, out = invoke(runner, "analyse", "record", "-c", "NB_IMAGING", "--type", "simulation",
                       "--name", "tumour growth", "--software", "primage-mstm",
                       "--software-version", "2.1", "--digest", "sha256:abc123",
                       "--config", str(parameters), "--input", series_uid(engine, "CT"),
                       "--db", db)  # fmt: skip
    assert code == 0, out
    with Session(engine) as session:
        (run_,) = session.scalars(
            select(ImageAnalysis).where(ImageAnalysis.analysis_type == "simulation")
        ).all()
        assert run_.configuration == {"cell_cycle_hours": 24, "vascular_density": 0.3}
        assert run_.software is not None and run_.software.persistent_identifier == "sha256:abc123"
        assert [s.modality_value for s in run_.input_series] == ["CT"]
    bad = ["--type", "magic", "--name", "x", "--software", "y", "--software-version", "1"]
    code, out = invoke(runner, "analyse", "record", "-c", "NB_IMAGING", *bad, "--db", db)
    assert code == 2 and "simulation" in out
