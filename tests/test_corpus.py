"""benchmarks/corpus.py with the IDC distribution (benchmarks/idc.py): real patients, studies,
series and header values from the NCI Imaging Data Commons index, written with fresh UIDs."""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb
import idc_index_data
import pydicom
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import corpus  # noqa: E402
import idc  # noqa: E402

INDEX = f"read_parquet('{idc_index_data.IDC_INDEX_PARQUET_FILEPATH}')"
FILES = 2000
SEED = 11
AS_STRING = re.compile(r"[0-9]{3}[DWMY]")


def make(out: Path, n: int, seed: int, workers: int, dirty_share: float = 0.0) -> idc.Report:
    planner = idc.IdcDistribution(dirty_share)
    summary = corpus.make_corpus(n, out, seed, workers, planner=planner)
    assert summary.files == n
    assert planner.report is not None
    return planner.report


@pytest.fixture(scope="module")
def idc_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, idc.Report]:
    out = tmp_path_factory.mktemp("idc") / "corpus"
    return out, make(out, FILES, SEED, workers=2)


@pytest.fixture(scope="module")
def dirty_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, idc.Report]:
    out = tmp_path_factory.mktemp("dirty") / "corpus"
    return out, make(out, 2000, 1, workers=2, dirty_share=1.0)


@pytest.fixture(scope="module")
def index() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW idx AS SELECT * FROM {INDEX}")
    return con


def series_folders(out: Path) -> dict[Path, list[Path]]:
    """Series folder -> its files (patient/study/series/instance layout)."""
    folders: dict[Path, list[Path]] = defaultdict(list)
    for path in sorted(out.rglob("*.dcm")):
        folders[path.parent].append(path)
    return folders


def read(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def text(ds: pydicom.Dataset, keyword: str) -> str | None:
    """An element's value as text; None when absent or empty (the index's NULL)."""
    value = ds.get(keyword)
    return str(value) if value not in (None, "") else None


def test_the_corpus_has_exactly_n_files_and_pydicom_reads_every_one(
    idc_corpus: tuple[Path, idc.Report],
) -> None:
    out, report = idc_corpus
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == FILES
    modalities = Counter(str(read(path).Modality) for path in files)
    assert sum(modalities.values()) == FILES
    assert set(modalities) <= set(report.census.modalities)
    for series in series_folders(out).values():  # the pixels decode too
        assert pydicom.dcmread(series[0]).pixel_array.shape[:2] == (16, 16)


def test_uids_and_patient_ids_are_fresh_and_consistent(
    idc_corpus: tuple[Path, idc.Report], index: duckdb.DuckDBPyConnection
) -> None:
    out, _ = idc_corpus
    by_level: dict[str, dict[Path, set[str]]] = {
        "PatientID": defaultdict(set),
        "StudyInstanceUID": defaultdict(set),
        "SeriesInstanceUID": defaultdict(set),
        "FrameOfReferenceUID": defaultdict(set),
    }
    sop_uids = []
    for path in out.rglob("*.dcm"):
        ds = read(path)
        series, study, patient = path.parent, path.parent.parent, path.parent.parent.parent
        by_level["PatientID"][patient].add(ds.PatientID)
        by_level["StudyInstanceUID"][study].add(ds.StudyInstanceUID)
        by_level["SeriesInstanceUID"][series].add(ds.SeriesInstanceUID)
        by_level["FrameOfReferenceUID"][series].add(ds.get("FrameOfReferenceUID", ""))
        sop_uids.append(ds.SOPInstanceUID)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert len(set(sop_uids)) == FILES
    for keyword, folders in by_level.items():
        assert all(len(values) == 1 for values in folders.values()), keyword
        values = [next(iter(v)) for v in folders.values() if v != {""}]  # CR, US: no frame
        assert len(set(values)) == len(values), f"{keyword} shared between folders"
    patient_ids = [next(iter(v)) for v in by_level["PatientID"].values()]
    uids = sop_uids + [
        next(iter(v))
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID")
        for v in by_level[keyword].values()
    ]
    (reused,) = index.execute(
        "SELECT count(*) FROM idx WHERE list_contains(?, PatientID) "
        "OR list_contains(?, StudyInstanceUID) OR list_contains(?, SeriesInstanceUID)",
        [patient_ids, uids, uids],
    ).fetchone() or (None,)
    assert reused == 0


#: Header values a series takes from its index row, and the index column each comes from.
ROW_VALUES = {
    "Modality": "Modality",
    "Manufacturer": "Manufacturer",
    "ManufacturerModelName": "ManufacturerModelName",
    "BodyPartExamined": "BodyPartExamined",
    "SeriesDescription": "SeriesDescription",
    "StudyDescription": "StudyDescription",
    "PatientAge": "PatientAge",
    "PatientSex": "PatientSex",
    "StudyDate": "replace(StudyDate, '-', '')",
    "SeriesDate": "replace(SeriesDate, '-', '')",
}


def test_every_series_holds_the_values_and_size_of_a_real_index_row(
    idc_corpus: tuple[Path, idc.Report], index: duckdb.DuckDBPyConnection
) -> None:
    out, _ = idc_corpus
    condition = " AND ".join(
        f"rtrim({column}) IS NOT DISTINCT FROM ?" for column in ROW_VALUES.values()
    )
    cut = []
    for folder, files in series_folders(out).items():
        ds = read(files[0])
        values = [text(ds, keyword) for keyword in ROW_VALUES]
        sizes = [
            n
            for (n,) in index.execute(
                f"SELECT instanceCount FROM idx WHERE {condition}", values
            ).fetchall()
        ]
        assert sizes, f"{folder.relative_to(out)}: no index row has {values}"
        if len(files) not in sizes:
            cut.append(folder)
            assert len(files) < max(sizes)
    assert len(cut) <= 1, "only the last series is cut to make exactly N files"
    body_parts = {text(read(f[0]), "BodyPartExamined") for f in series_folders(out).values()}
    known = {v for (v,) in index.execute("SELECT DISTINCT BodyPartExamined FROM idx").fetchall()}
    assert body_parts <= known


def test_patients_bring_their_real_studies_and_series(
    idc_corpus: tuple[Path, idc.Report], index: duckdb.DuckDBPyConnection
) -> None:
    """The fan-out is the index's: each patient drawn (but the last, which may be cut) has
    as many studies and series as the real patient has in the modalities written."""
    out, report = idc_corpus
    modalities = list(report.census.modalities)
    assert report.dirty_series == 0 and report.patients == len(report.drawn)
    for k, real in enumerate(report.drawn[:-1]):
        assert real is not None
        folder = out / f"IDC-{SEED}-{k + 1:06d}"
        studies = [p for p in folder.iterdir() if p.is_dir()]
        series = [s for study in studies for s in study.iterdir()]
        (real_studies, real_series, real_instances) = index.execute(
            "SELECT count(DISTINCT StudyInstanceUID), count(*), sum(instanceCount) FROM idx "
            "WHERE collection_id = ? AND PatientID = ? AND list_contains(?, Modality) "
            "AND SOPClassUID NOT IN (SELECT unnest(?::VARCHAR[]))",
            [*real, modalities, list(idc.NOT_IMAGES)],
        ).fetchone() or (0, 0, 0)
        assert (len(studies), len(series)) == (real_studies, real_series)
        assert sum(len(list(s.iterdir())) for s in series) == real_instances


def test_the_same_seed_gives_the_same_bytes_with_one_or_two_workers(
    idc_corpus: tuple[Path, idc.Report], tmp_path: Path
) -> None:
    out, _ = idc_corpus
    make(tmp_path / "one", FILES, SEED, workers=1)
    names = sorted(p.relative_to(out) for p in out.rglob("*.dcm"))
    assert names == sorted(
        p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.dcm")
    )
    assert all((out / n).read_bytes() == (tmp_path / "one" / n).read_bytes() for n in names)


def element_bytes(raw: bytes, group: int, element: int, vr: bytes) -> bytes:
    """The value bytes of a top-level short-VR element in Explicit VR Little Endian."""
    tag = group.to_bytes(2, "little") + element.to_bytes(2, "little") + vr
    at = raw.index(tag)
    length = int.from_bytes(raw[at + 6 : at + 8], "little")
    return raw[at + 8 : at + 8 + length]


def test_dirty_values_reach_the_files_as_the_index_has_them(
    dirty_corpus: tuple[Path, idc.Report],
) -> None:
    from imaging_biobank.vocab import catalog

    terms = {row["code"] for row in catalog.rows("body-part-examined.annex-l")}
    out, report = dirty_corpus
    assert report.patients == 0 and report.dirty_series > 0
    seen: dict[str, set[Any]] = defaultdict(set)
    for files in series_folders(out).values():
        raw = files[0].read_bytes()
        ds = read(files[0])
        description = (
            element_bytes(raw, 0x0008, 0x103E, b"LO") if "SeriesDescription" in ds else b""
        )
        if b"\x00" in description.rstrip(b" "):
            seen["NUL inside SeriesDescription"].add(description)
            assert "\x00" in ds.SeriesDescription
        if "BodyPartExamined" not in ds:
            seen["BodyPartExamined absent"].add(True)
        elif ds.BodyPartExamined not in terms:
            seen["BodyPartExamined not a DICOM term"].add(ds.BodyPartExamined)
        age = text(ds, "PatientAge")
        if age is not None and not AS_STRING.fullmatch(age):
            seen["PatientAge not AS"].add(age)
        if text(ds, "PatientSex") not in (None, "M", "F", "O"):
            seen["PatientSex not M/F/O"].add(ds.PatientSex)
    assert set(seen) == {
        "NUL inside SeriesDescription",
        "BodyPartExamined absent",
        "BodyPartExamined not a DICOM term",
        "PatientAge not AS",
        "PatientSex not M/F/O",
    }
    written = report.written
    assert written.nul_descriptions[0] > 0 and written.body_part_absent[0] > 0
    assert written.body_parts_not_terms == seen["BodyPartExamined not a DICOM term"]
    assert set(written.ages_other) == seen["PatientAge not AS"]
    line = written.line()
    assert "NUL in SeriesDescription" in line and "PatientSex" in line


def test_the_command_prints_its_summary_and_the_dirty_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus.main(["300", str(tmp_path / "c"), "--seed", "2", "--dirty-share", "0.5"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("corpus: 300 files, ")
    assert "idc" in lines[0]
    assert "left out, no template" in lines[1] and "SEG" in lines[1]
    assert lines[2].startswith("dirty values written")
    assert len(list((tmp_path / "c").rglob("*.dcm"))) == 300


def test_synthetic_distribution_is_still_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus.main(["120", str(tmp_path / "c"), "--distribution", "synthetic", "--workers", "1"])
    assert capsys.readouterr().out.startswith("corpus: 120 files")
    assert {p.name.split("-")[0] for p in (tmp_path / "c").iterdir()} == {"BENCH"}
    with pytest.raises(SystemExit) as exit_:
        corpus.main(["5", str(tmp_path / "d"), "--distribution", "synthetic", "--dirty-share", "1"])
    assert exit_.value.code == 2


def test_without_idc_index_data_the_command_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "idc_index_data", None)  # import fails as if absent
    with pytest.raises(idc.IndexMissing, match="pip install idc-index-data"):
        idc.IdcDistribution()
    with pytest.raises(SystemExit) as exit_:
        corpus.main(["10", str(tmp_path / "c")])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "pip install idc-index-data" in error and "--distribution synthetic" in error
    assert not (tmp_path / "c").exists()
