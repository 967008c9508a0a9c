"""Reading pyradiomics batch-mode CSV output (imaging_biobank.analysis.pyradiomics_csv).

``tests/data/pyradiomics_ct_small.csv`` is real pyradiomics output, not a hand-made imitation:
pyradiomics-bhklab 3.1.4's batch mode run on pydicom's ``CT_small.dcm`` (read with SimpleITK)
with two box masks (labels 1 and 2), image types Original and Wavelet, ``binWidth: 25``. It is
stored because pyradiomics is not a dependency of the project (the radiomics engine is MIRP).
Regenerate it, in an environment with pyradiomics-bhklab (which brings SimpleITK), with::

    python tests/test_pyradiomics_csv.py

which writes the image, masks, case list and parameter file to a temporary folder and runs
``pyradiomics cases.csv -o out.csv -f csv --format-path basename --param params.yaml``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from imaging_biobank.analysis.pyradiomics_csv import (
    CLASS_FAMILY,
    PyradiomicsCsvError,
    count_unknown,
    pyradiomics_ibsi,
    read_pyradiomics_csv,
    texture_aggregation,
)
from imaging_biobank.analysis.radiomics import ibsi_features

FIXTURE = Path(__file__).parent / "data" / "pyradiomics_ct_small.csv"
WAVELETS = ("LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH", "LLL")

# the features pyradiomics computes when a class is enabled without naming features
# (deprecated ones excluded), per class; shape is 3D
DEFAULT_FEATURES = {
    "shape": 14,
    "firstorder": 18,
    "glcm": 24,
    "glrlm": 16,
    "glszm": 16,
    "gldm": 14,
    "ngtdm": 5,
}


def _rewrite(source: Path, target: Path, row: int, column: str, value: str) -> Path:
    """A copy of ``source`` with one cell (data row ``row``, counted from 1) replaced."""
    with source.open(newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    table[row][table[0].index(column)] = value
    with target.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)
    return target


def _write(path: Path, header: list[str], *rows: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *rows])
    return path


# --- the mapping table -----------------------------------------------------------------------


def test_mapping_agrees_with_the_ibsi_code_table() -> None:
    table = pyradiomics_ibsi()  # raises when a tag, code or family disagrees
    assert len(table) == 127
    by_tag = {f.ibsi_tag: f for f in ibsi_features().values() if f.ibsi_tag}
    coded = [m for m in table.values() if m.ibsi_code is not None]
    assert len(coded) == 106
    for mapping in table.values():
        if mapping.ibsi_tag is not None:
            assert by_tag[mapping.ibsi_tag].ibsi_code == mapping.ibsi_code
        else:  # not an IBSI feature, or not the same quantity: always explained
            assert mapping.ibsi_code is None and mapping.note
    assert {cls for cls, _ in table} == set(CLASS_FAMILY)


@pytest.mark.parametrize(
    ("cls", "name", "tag", "code"),
    [
        ("glcm", "JointEnergy", "cm_energy", "8ZQL"),  # IBSI angular second moment
        ("glcm", "MaximumProbability", "cm_joint_max", "GYBY"),
        ("glcm", "Contrast", "cm_contrast", "ACUI"),
        ("glcm", "SumSquares", "cm_joint_var", "UR99"),
        ("firstorder", "Entropy", "ih_entropy", "TLU2"),
        ("firstorder", "Energy", "stat_energy", "N8CA"),
        ("shape", "MeshVolume", "morph_volume", "RNU0"),
        ("shape", "Elongation", "morph_pca_elongation", "Q3CK"),
        ("gldm", "SmallDependenceEmphasis", "ngl_lde", "SODN"),
        ("glcm", "SumEntropy", "cm_sum_entr", None),  # IBSI feature without verified code
        ("firstorder", "Kurtosis", None, None),  # +3 relative to IBSI's excess kurtosis
        ("shape", "MinorAxisLength", None, None),  # covariance over N, IBSI over N-1
        ("firstorder", "TotalEnergy", None, None),  # not an IBSI feature
        ("shape2D", "Perimeter", None, None),  # IBSI morphology is 3D only
    ],
)
def test_mapping_examples(cls: str, name: str, tag: str | None, code: str | None) -> None:
    mapping = pyradiomics_ibsi()[(cls, name)]
    assert (mapping.ibsi_tag, mapping.ibsi_code) == (tag, code)
    if tag is not None:
        assert ibsi_features()[tag].ibsi_code == code
    if cls == "glcm" and name == "JointEnergy":
        assert ibsi_features()["cm_energy"].ibsi_name == "angular second moment"
    if tag is None:
        assert mapping.note


# --- reading real pyradiomics output ---------------------------------------------------------


def test_every_original_feature_maps() -> None:
    rows = read_pyradiomics_csv(FIXTURE)
    assert len(rows) == 2
    for row in rows:
        original = [f for f in row.features if f.image_type == "original"]
        by_class: dict[str, int] = {}
        for feature in original:
            by_class[feature.pyradiomics_class] = by_class.get(feature.pyradiomics_class, 0) + 1
        assert by_class == DEFAULT_FEATURES
        assert all(f.known and f.family is not None for f in original)
        assert all(math.isfinite(f.value) for f in original)
        uncoded = {(f.pyradiomics_class, f.name) for f in original if f.ibsi_code is None}
        assert uncoded == {
            ("firstorder", "Kurtosis"),  # +3
            ("shape", "MajorAxisLength"),  # covariance over N
            ("shape", "MinorAxisLength"),
            ("shape", "LeastAxisLength"),
            ("shape", "Maximum2DDiameterSlice"),  # not IBSI features
            ("shape", "Maximum2DDiameterColumn"),
            ("shape", "Maximum2DDiameterRow"),
            ("glcm", "MCC"),
            ("glcm", "SumEntropy"),  # IBSI feature, no verified code
            ("firstorder", "TotalEnergy"),
        }
        assert len(original) - len(uncoded) == 97
        assert row.unknown_features == ()
    assert count_unknown(rows) == {}


def test_codes_families_and_aggregation() -> None:
    row = read_pyradiomics_csv(FIXTURE)[0]
    energy = row.feature("original_glcm_JointEnergy")
    assert (energy.family, energy.ibsi_tag, energy.ibsi_code) == ("GLCM", "cm_energy", "8ZQL")
    assert energy.aggregation == "3D_avg" and energy.reference_tag == "cm_energy_3D_avg"
    entropy = row.feature("original_firstorder_Entropy")
    assert (entropy.family, entropy.ibsi_code) == ("intensity histogram", "TLU2")
    assert entropy.reference_tag == "ih_entropy"
    kurtosis = row.feature("original_firstorder_Kurtosis")
    assert kurtosis.ibsi_code is None and kurtosis.note.startswith("differs from IBSI")
    assert kurtosis.family == "intensity"
    dependence = row.feature("original_gldm_LargeDependenceEmphasis")
    assert (dependence.family, dependence.ibsi_code, dependence.reference_tag) == (
        "NGLDM",
        "IMOQ",
        "ngl_hde_3D",
    )
    volume = row.feature("original_shape_MeshVolume")
    assert (volume.ibsi_code, volume.aggregation, volume.reference_tag) == (
        "RNU0",
        "3D",
        "morph_volume",
    )
    wavelet = row.feature("wavelet-LLH_glrlm_RunEntropy")
    assert (wavelet.image_type, wavelet.pyradiomics_class, wavelet.name) == (
        "wavelet-LLH",
        "glrlm",
        "RunEntropy",
    )
    assert (wavelet.ibsi_code, wavelet.aggregation) == ("HJ9O", "3D_avg")


def test_values_are_the_files_numbers() -> None:
    with FIXTURE.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    rows = read_pyradiomics_csv(FIXTURE)
    for row, cells in zip(rows, table, strict=True):
        for feature in row.features:
            assert feature.value == float(cells[feature.column])
    # the two masks are different regions, so their values differ
    assert rows[0].feature("original_shape_VoxelVolume").value != (
        rows[1].feature("original_shape_VoxelVolume").value
    )


def test_image_types_parsed() -> None:
    row = read_pyradiomics_csv(FIXTURE)[0]
    assert row.image_types == ("original", *(f"wavelet-{w}" for w in WAVELETS))
    for image_type in row.image_types[1:]:  # shape is computed on the original image only
        classes = {f.pyradiomics_class for f in row.features if f.image_type == image_type}
        assert classes == set(DEFAULT_FEATURES) - {"shape"}


def test_identifiers_diagnostics_version_and_settings() -> None:
    first, second = read_pyradiomics_csv(FIXTURE)
    assert list(first.identifiers) == ["series_instance_uid", "Image", "Mask", "Label"]
    assert first.image == "CT_small.nrrd" and first.mask == "CT_small_boxes.nrrd"
    assert (first.identifiers["Label"], second.identifiers["Label"]) == ("1", "2")
    assert first.identifiers["series_instance_uid"].startswith("1.3.6.1.4.1.5962.")
    assert (first.row, first.line, second.row, second.line) == (1, 2, 2, 3)
    assert first.pyradiomics_version == "3.1.4"
    assert first.versions["PyRadiomics"] == "v3.1.4"
    assert {"Numpy", "SimpleITK", "PyWavelet", "Python"} <= set(first.versions)
    assert first.settings is not None and first.settings["binWidth"] == 25
    assert first.settings["force2D"] is False
    assert first.enabled_image_types == {"Original": {}, "Wavelet": {}}
    assert first.diagnostics["diagnostics_Image-original_Dimensionality"] == "3D"
    assert all(column.startswith("diagnostics_") for column in first.diagnostics)
    assert not any(column.startswith("diagnostics_") for column in first.identifiers)


# --- settings that change what a feature is --------------------------------------------------


def test_settings_that_make_features_differ_from_ibsi(tmp_path: Path) -> None:
    settings = (
        "{'binWidth': 25, 'voxelArrayShift': 2000, 'symmetricalGLCM': False, "
        "'force2D': True, 'force2Ddimension': 0, 'weightingNorm': 'no_weighting'}"
    )
    path = tmp_path / "shifted.csv"
    _rewrite(FIXTURE, path, 1, "diagnostics_Configuration_Settings", settings)
    row = read_pyradiomics_csv(path)[0]
    energy = row.feature("original_firstorder_Energy")
    assert energy.ibsi_code is None and energy.ibsi_tag is None
    assert energy.note.startswith("differs from IBSI stat_energy in this run: voxelArrayShift")
    assert row.feature("original_firstorder_Mean").ibsi_code == "Q4LE"  # not shifted
    glcm = [f for f in row.features if f.pyradiomics_class == "glcm"]
    assert glcm and all(f.ibsi_code is None and f.ibsi_tag is None for f in glcm)
    assert all("symmetricalGLCM" in f.note for f in glcm if f.name != "MCC")  # MCC: no IBSI
    run_entropy = row.feature("original_glrlm_RunEntropy")
    assert run_entropy.aggregation == "2_5D_comb"
    assert run_entropy.reference_tag == "rlm_rl_entr_2_5D_comb"
    assert row.feature("original_glszm_ZoneEntropy").aggregation == "2_5D"


@pytest.mark.parametrize(
    ("cls", "settings", "expected"),
    [
        ("glcm", {}, "3D_avg"),
        ("glcm", {"weightingNorm": "no_weighting"}, "3D_comb"),
        ("glrlm", {"force2D": True}, "2_5D_avg"),
        ("glcm", {"weightingNorm": "euclidean"}, None),  # distance-weighted merge
        ("glszm", {"force2D": True, "force2Ddimension": 1}, None),  # not axial slices
        ("ngtdm", {}, "3D"),
        ("firstorder", None, "3D"),
        ("glcm", None, None),  # settings unknown
        ("shape2D", {}, None),
        ("lbp", {}, None),
    ],
)
def test_texture_aggregation(cls: str, settings: dict[str, object] | None, expected: str) -> None:
    assert texture_aggregation(cls, settings) == expected


# --- other layouts and malformed files --------------------------------------------------------


def test_filters_ids_unknown_features_and_empty_cells(tmp_path: Path) -> None:
    header = [
        "series_instance_uid",
        "Image",
        "Mask",
        "diagnostics_Versions_PyRadiomics",
        "log-sigma-1-0-mm-3D_firstorder_Mean",
        "wavelet2-LLH_glcm_JointEnergy",
        "lbp-3D-m1_glszm_ZoneEntropy",
        "squareroot_ngtdm_Busyness",
        "original_glcm_FutureFeature",
        "original_lbpfeatures_Something",
        "myfilter_firstorder_Mean",
    ]
    path = _write(
        tmp_path / "filters.csv",
        header,
        ["1.2.3", "a.nrrd", "b.nrrd", "v3.0.1", "12.5", "0.25", "1.5", "nan", "3", "4", ""],
    )
    [row] = read_pyradiomics_csv(path)
    assert row.identifiers == {"series_instance_uid": "1.2.3", "Image": "a.nrrd", "Mask": "b.nrrd"}
    assert row.pyradiomics_version == "3.0.1" and row.settings is None
    assert row.image_types == (
        "log-sigma-1-0-mm-3D",
        "wavelet2-LLH",
        "lbp-3D-m1",
        "squareroot",
        "original",
        "myfilter",
    )
    assert row.feature("log-sigma-1-0-mm-3D_firstorder_Mean").ibsi_code == "Q4LE"
    assert row.feature("lbp-3D-m1_glszm_ZoneEntropy").ibsi_code == "GU8N"
    assert math.isnan(row.feature("squareroot_ngtdm_Busyness").value)
    assert math.isnan(row.feature("myfilter_firstorder_Mean").value)  # empty cell
    assert row.feature("wavelet2-LLH_glcm_JointEnergy").ibsi_code == "8ZQL"
    future = row.feature("original_glcm_FutureFeature")
    assert (future.known, future.family, future.ibsi_code) == (False, "GLCM", None)
    other = row.feature("original_lbpfeatures_Something")
    assert (other.known, other.family, other.ibsi_tag) == (False, None, None)
    assert count_unknown([row, row]) == {
        ("glcm", "FutureFeature"): 2,
        ("lbpfeatures", "Something"): 2,
    }


def test_id_columns_override(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ids.csv",
        ["original_scan_id", "Image", "Mask", "original_firstorder_Mean"],
        ["scan-7", "a.nrrd", "b.nrrd", "1.0"],
    )
    with pytest.raises(PyradiomicsCsvError, match="original_scan_id"):
        read_pyradiomics_csv(path)  # looks like a feature of an unknown class
    [row] = read_pyradiomics_csv(path, id_columns=["original_scan_id"])
    assert row.identifiers["original_scan_id"] == "scan-7"


def test_bad_number_is_reported_with_row_and_column(tmp_path: Path) -> None:
    path = _rewrite(FIXTURE, tmp_path / "bad.csv", 2, "original_glcm_JointEnergy", "0,0159")
    with pytest.raises(PyradiomicsCsvError) as caught:
        read_pyradiomics_csv(path)
    error = caught.value
    assert (error.row, error.line, error.column) == (2, 3, "original_glcm_JointEnergy")
    assert "row 2 (line 3), column 'original_glcm_JointEnergy': '0,0159'" in str(error)


def test_no_feature_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "cases.csv",
        ["Image", "Mask", "diagnostics_Versions_PyRadiomics"],
        ["a.nrrd", "b.nrrd", "v3.1.4"],
    )
    with pytest.raises(PyradiomicsCsvError, match="no feature column"):
        read_pyradiomics_csv(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("Image,original_firstorder_Mean,Image\na,1,b\n", "more than once"),
        ("Image,original_firstorder_Mean\na,1,2\n", "row 1 \\(line 2\\) has 3 cells"),
        ("Image,original_firstorder_Mean\na\n", "has 1 cells"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "malformed.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PyradiomicsCsvError, match=message):
        read_pyradiomics_csv(path)


def test_header_only_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("Image,Mask,original_firstorder_Mean\n", encoding="utf-8")
    assert read_pyradiomics_csv(path) == []
    path.write_text("Image,Mask,original_firstorder_Mean\n\na,b,2\n", encoding="utf-8")
    [row] = read_pyradiomics_csv(path)
    assert (row.row, row.line, row.features[0].value) == (1, 3, 2.0)


# --- regenerating the fixture ----------------------------------------------------------------


def _generate(target: Path) -> None:  # pragma: no cover - run by hand, needs pyradiomics
    """Run pyradiomics' batch mode on CT_small.dcm with two box masks; write ``target``."""
    import importlib
    import shutil
    import subprocess
    import sys
    import tempfile
    from typing import Any

    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file

    sitk: Any = importlib.import_module("SimpleITK")  # not a project dependency

    source = str(get_testdata_file("CT_small.dcm"))
    series_uid = pydicom.dcmread(source, stop_before_pixels=True).SeriesInstanceUID
    image = sitk.ReadImage(source)
    labels = np.zeros(sitk.GetArrayFromImage(image).shape, dtype=np.uint8)  # (z, y, x)
    labels[0, 40:88, 44:84] = 1
    labels[0, 90:110, 20:40] = 2
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        sitk.WriteImage(image, str(work / "CT_small.nrrd"))
        sitk.WriteImage(mask, str(work / "CT_small_boxes.nrrd"))
        (work / "cases.csv").write_text(
            "series_instance_uid,Image,Mask,Label\n"
            f"{series_uid},CT_small.nrrd,CT_small_boxes.nrrd,1\n"
            f"{series_uid},CT_small.nrrd,CT_small_boxes.nrrd,2\n",
            encoding="utf-8",
        )
        (work / "params.yaml").write_text(
            "imageType:\n  Original: {}\n  Wavelet: {}\n"
            "featureClass:\n  shape:\n  firstorder:\n  glcm:\n  glrlm:\n  glszm:\n  gldm:\n"
            "  ngtdm:\n"
            "setting:\n  binWidth: 25\n",
            encoding="utf-8",
        )
        command = [
            str(Path(sys.executable).with_name("pyradiomics")),
            "cases.csv",
            "-o",
            "out.csv",
            "-f",
            "csv",
            "--format-path",
            "basename",
            "--param",
            "params.yaml",
        ]
        subprocess.run(command, cwd=work, check=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "out.csv", target)


if __name__ == "__main__":  # pragma: no cover
    _generate(FIXTURE)
    print(f"wrote {FIXTURE}")
