"""Ingesting DICOM into the model: real files, idempotent, resumable, bad input reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pydicom
import pytest
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from imaging_biobank.cli import app
from imaging_biobank.db.engine import make_engine
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.dicom.sources.folder import expand_paths
from imaging_biobank.ingest import worker
from imaging_biobank.ingest.pipeline import IngestOptions, ingest
from imaging_biobank.ingest.writer import IngestSummary
from imaging_biobank.model.base import Base
from tests.conftest import (
    DIPG_IMAGING,
    EXAMPLE,
    NB_IMAGING,
    ROOT,
    STS_001,
    canonical,
    child_processes,
    still_running,
    synthetic_corpus,
    table_contents,
)

PYDICOM_FILES = Path(pydicom.__file__).parent / "data"
T = Base.metadata.tables


def run(
    engine: Engine, key_file: Path, *paths: Path, collection: str = NB_IMAGING, **options: Any
) -> tuple[IngestSummary, list[dict[str, str]]]:
    reports: list[dict[str, str]] = []
    summary = ingest(
        engine,
        collection,
        expand_paths(paths),
        Pseudonymiser.from_file(key_file),
        IngestOptions(**{"workers": 1, **options}),
        lambda status, location, reason: reports.append(
            {"status": status, "path": location, "reason": reason}
        ),
    )
    return summary, reports


def query(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def test_sts_001_is_one_donor_with_ct_mr_and_pet(registered: Engine, key_file: Path) -> None:
    summary, reports = run(registered, key_file, STS_001)
    assert summary.new == 180 and summary.new_donors == 1 and summary.new_studies == 1
    assert {r["path"].rsplit("/", 1)[-1] for r in reports if r["status"] == "rejected"} == {
        "LICENSE.md",
        "README.md",
    }
    donors = query(registered, "SELECT pseudonym FROM sample_donor")
    assert donors == [(Pseudonymiser.from_file(key_file).donor("STS_001"),)]
    # the PatientID is stored nowhere, not even inside the descriptions that carry it
    # (IBSI_1_STS_001_CT): those lose it as with PS3.15's Clean Descriptors option
    stored = str(table_contents(registered, ["sample_donor", "imaging_study", "imaging_series"]))
    assert "STS_001" not in stored and "IBSI_1_" in stored
    series = dict(
        query(
            registered,
            "SELECT modality_value, count(*) FROM imaging_series GROUP BY modality_value",
        )
    )
    assert series == {"CT": 1, "MR": 1, "PT": 1, "RTSTRUCT": 3}
    [pet] = query(
        registered,
        """
        SELECT a.units, a.decay_correction, a.radiopharmaceutical, r.reconstruction_method,
               al.name, s.number_of_instances
        FROM imaging_series s JOIN acquisition_parameters a ON a.imaging_series_id = s.id
        JOIN reconstruction_parameters r ON r.imaging_series_id = s.id
        LEFT JOIN algorithm al ON al.id = r.algorithm_id WHERE s.modality_value = 'PT'""",
    )
    assert tuple(pet) == ("GML", "ADMIN", "FDG -- fluorodeoxyglucose", "OSEM", "OSEM", 59)
    [ct] = query(
        registered,
        """
        SELECT r.convolution_kernel, r.reconstruction_diameter, a.kvp, b.code, m.manufacturer
        FROM imaging_series s JOIN acquisition_parameters a ON a.imaging_series_id = s.id
        JOIN reconstruction_parameters r ON r.imaging_series_id = s.id
        JOIN body_part_examined b ON b.id = s.body_part_examined_id
        JOIN modality_information m ON m.id = a.modality_information_id
        WHERE s.modality_value = 'CT'""",
    )
    assert tuple(ct) == ("SOFT", 500, 140, "EXTREMITY", "GE MEDICAL SYSTEMS")
    # the collection's imaging descriptors are derived from its series
    [(donors, size)] = query(
        registered,
        "SELECT number_of_donors, size FROM collection WHERE identifier = :c",
        c=NB_IMAGING,
    )
    assert (donors, size) == (1, 180)
    parts = query(
        registered,
        "SELECT b.code FROM image_collection_body_part_examined l"
        " JOIN body_part_examined b ON b.id = l.body_part_examined_id",
    )
    assert parts == [("EXTREMITY",)]
    types = {
        row[0]
        for row in query(
            registered,
            """
        SELECT d.code FROM image_collection_dataset_type l
        JOIN dataset_type d ON d.id = l.dataset_type_id""",
        )
    }
    assert types == {
        "1.2.840.10008.5.1.4.1.1.2",
        "1.2.840.10008.5.1.4.1.1.4",
        "1.2.840.10008.5.1.4.1.1.128",
        "1.2.840.10008.5.1.4.1.1.481.3",
    }


def test_a_second_ingest_changes_nothing(registered: Engine, key_file: Path) -> None:
    run(registered, key_file, STS_001)
    before = table_contents(registered)
    summary, reports = run(registered, key_file, STS_001)
    assert (summary.new, summary.updated, summary.unchanged) == (0, 0, 180)
    assert table_contents(registered) == before
    assert not [r for r in reports if r["status"] not in ("rejected",)]


def reference_counts(roots: list[Path], broken: set[str]) -> tuple[Counter[str], set[str]]:
    """SOP-class counts the corpora contain, found with pydicom alone: the first file of
    each SOP Instance UID (walk order) with the four UIDs an instance needs, leaving out
    the ``broken`` files (truncated copies of other files)."""
    import warnings

    counts: Counter[str] = Counter()
    seen: set[str] = set()
    files = []
    for item in expand_paths(roots):
        path = getattr(item, "path", None)
        if path is not None and Path(path).name not in broken:
            files.append(path)
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # force: data sets without the Part 10 preamble are instances too
                ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            except Exception:
                continue
            uids = [  # converted here, where pydicom checks (and warns about) the values
                str(ds.get(k, "") or "")
                for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
            ]
        if all(uids) and uids[1] not in seen:
            seen.add(uids[1])
            counts[uids[0]] += 1
    return counts, seen


# The corpora's own broken files: rejected, each for its reason
KNOWN_TRUNCATED = {"MR_truncated.dcm", "rtplan_truncated.dcm"}


def test_public_corpora_give_the_sop_class_counts_they_contain(
    registered: Engine, key_file: Path
) -> None:
    import data_store

    roots = [PYDICOM_FILES / "test_files", Path(data_store.__file__).parent / "data", STS_001]
    summary, reports = run(registered, key_file, *roots, collection=DIPG_IMAGING, workers=2)
    expected, _ = reference_counts(roots, KNOWN_TRUNCATED)
    got = dict(
        query(
            registered,
            "SELECT sop_class_uid, count(*) FROM imaging_instance GROUP BY sop_class_uid",
        )
    )
    assert got == {k: v for k, v in expected.items() if v}
    assert got["1.2.840.10008.5.1.4.1.1.2"] >= 60  # CT Image Storage
    truncated = {Path(r["path"]).name for r in reports if r["reason"].startswith("truncated")}
    assert truncated == KNOWN_TRUNCATED
    assert summary.new == sum(got.values())


def test_junk_is_reported_and_the_rest_ingested(
    registered: Engine, key_file: Path, tmp_path: Path, runner: CliRunner
) -> None:
    tree = tmp_path / "tree"
    (tree / "good").mkdir(parents=True)
    for path in sorted((STS_001 / "PET" / "image").glob("*.dcm"))[:5]:
        (tree / "good" / path.name).write_bytes(path.read_bytes())
    (tree / "notes.txt").write_text("not a DICOM file\n" * 10)
    ct = sorted((STS_001 / "CT" / "image").glob("*.dcm"))[0].read_bytes()
    (tree / "truncated.dcm").write_bytes(ct[: len(ct) - 1000])
    ds = pydicom.dcmread(sorted((STS_001 / "MR_T1" / "image").glob("*.dcm"))[0])
    del ds.SeriesInstanceUID
    ds.save_as(tree / "no-series.dcm")
    report = tmp_path / "report.jsonl"
    url = str(registered.url.render_as_string(hide_password=False))
    result = runner.invoke(
        app,
        [
            "ingest",
            str(tree),
            "-c",
            NB_IMAGING,
            "--db",
            url,
            "--key-file",
            str(key_file),
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    rejected = {Path(line["path"]).name: line["reason"] for line in lines}
    assert set(rejected) == {"notes.txt", "truncated.dcm", "no-series.dcm"}
    assert rejected["no-series.dcm"] == "missing SeriesInstanceUID (0020,000E)"
    assert rejected["truncated.dcm"].startswith("truncated")
    assert all(line["status"] == "rejected" for line in lines)
    assert query(registered, "SELECT count(*) FROM imaging_instance") == [(5,)]


def test_changed_content_is_updated_and_reported(
    registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    first = sorted((STS_001 / "CT" / "image").glob("*.dcm"))[0]
    target = tmp_path / "ct.dcm"  # (given as a file: the folder holds the database too)
    target.write_bytes(first.read_bytes())
    run(registered, key_file, target)
    ds = pydicom.dcmread(target)
    ds.SeriesDescription = "corrected description"
    ds.save_as(target)
    summary, reports = run(registered, key_file, target)
    assert (summary.new, summary.updated) == (0, 1)
    assert [r["status"] for r in reports] == ["updated"]
    assert query(registered, "SELECT series_description FROM imaging_series") == [
        ("corrected description",)
    ]


def test_copies_of_one_instance_stay_one_row(
    registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    source = sorted((STS_001 / "CT" / "image").glob("*.dcm"))[0]
    files = tmp_path / "files"
    files.mkdir()
    for name in ("a.dcm", "b.dcm"):
        (files / name).write_bytes(source.read_bytes())
    for _ in range(2):
        summary, reports = run(registered, key_file, files)
        assert summary.duplicates == 1
        assert [r["status"] for r in reports] == ["duplicate"]
    [(location,)] = query(registered, "SELECT location FROM imaging_instance")
    assert location.endswith("a.dcm")  # the first in walk order, every time


def test_zip_archives_and_dicomdir_media(
    registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "ct.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted((STS_001 / "CT" / "image").glob("*.dcm")):
            z.write(path, f"CT/{path.name}")
    summary, _ = run(registered, key_file, archive)
    assert summary.new == 59
    [(location,)] = query(registered, "SELECT min(location) FROM imaging_instance")
    assert location == f"{archive}!/CT/000000.dcm"
    dicomdir = PYDICOM_FILES / "test_files" / "dicomdirtests" / "DICOMDIR"
    referenced = [
        r for r in pydicom.dcmread(dicomdir).DirectoryRecordSequence if "ReferencedFileID" in r
    ]
    summary, reports = run(registered, key_file, dicomdir, collection=DIPG_IMAGING)
    assert summary.new + summary.duplicates == len(referenced)
    assert not [r for r in reports if r["status"] == "rejected"]


def test_values_that_vary_within_a_series_keep_their_range(
    registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "corpus.py"), "400", str(corpus), "--seed", "3"],
        check=True,
        capture_output=True,
    )
    run(registered, key_file, corpus)
    rows = query(
        registered,
        """
        SELECT a.xray_tube_current, a.xray_tube_current_min, a.xray_tube_current_max,
               s.series_instance_uid
        FROM acquisition_parameters a JOIN imaging_series s ON s.id = a.imaging_series_id
        WHERE s.modality_value = 'CT' AND a.xray_tube_current IS NOT NULL""",
    )
    assert rows
    for value, low, high, uid in rows:
        assert low <= value <= high
        [(first,)] = query(
            registered,
            """
            SELECT i.location FROM imaging_instance i JOIN imaging_series s
            ON s.id = i.imaging_series_id WHERE s.series_instance_uid = :u
            ORDER BY i.instance_number LIMIT 1""",
            u=uid,
        )
        assert float(pydicom.dcmread(first, stop_before_pixels=True).XRayTubeCurrent) == value
    assert any(low < high for _, low, high, _ in rows)


def test_nonstandard_body_parts_are_kept_verbatim_and_flagged(
    registered: Engine, key_file: Path
) -> None:
    run(registered, key_file, PYDICOM_FILES / "test_files", collection=DIPG_IMAGING)
    rows = set(
        query(
            registered,
            """
        SELECT s.body_part_examined_value, b.code, s.body_part_examined_flag
        FROM imaging_series s LEFT JOIN body_part_examined b ON b.id = s.body_part_examined_id
        WHERE s.body_part_examined_value IS NOT NULL""",
        )
    )
    assert ("WHOLE BODY", "WHOLEBODY", "normalised") in rows
    assert ("HEAD", "HEAD", None) in rows


def test_device_identity_is_kept_only_when_asked(
    registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    ct = pydicom.dcmread(sorted((STS_001 / "CT" / "image").glob("*.dcm"))[0])
    ct.DeviceSerialNumber, ct.StationName = "SN-12345", "CT-ROOM-2"
    path = tmp_path / "ct.dcm"
    ct.save_as(path)
    run(registered, key_file, path)
    assert query(
        registered, "SELECT device_serial_number, station_name FROM modality_information"
    ) == [(None, None)]
    path_2 = tmp_path / "ct2.dcm"
    ct.SOPInstanceUID, ct.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    ct.save_as(path_2)
    run(registered, key_file, path_2, collection=DIPG_IMAGING, retain_device_identity=True)
    assert ("SN-12345", "CT-ROOM-2") in query(
        registered, "SELECT device_serial_number, station_name FROM modality_information"
    )


def _crash_on_marker(items: list[Any], parser: str | None = None) -> Any:
    """A parser that kills its worker process on one file (as a native crash would)."""
    if parser != "pydicom" and any("crash-me" in item.location for item in items):
        os._exit(70)
    return _real_parse_chunk(items, parser)


_real_parse_chunk = worker.parse_chunk


def test_a_worker_crash_does_not_lose_files(
    registered: Engine, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    for i, path in enumerate(sorted((STS_001 / "PET" / "image").glob("*.dcm"))[:20]):
        name = "crash-me.dcm" if i == 7 else path.name
        (files / name).write_bytes(path.read_bytes())
    monkeypatch.setattr("imaging_biobank.ingest.parallel.parse_chunk", _crash_on_marker)
    summary, _ = run(registered, key_file, files, workers=2, chunk_size=4)
    assert summary.new == 20 and summary.rejected == 0


def test_a_killed_run_resumes_to_the_rows_of_a_clean_run(tmp_path: Path, key_file: Path) -> None:
    corpus = synthetic_corpus(tmp_path / "corpus", 2500, seed=11)
    urls = {}
    for name in ("clean", "killed"):
        urls[name] = f"sqlite:///{tmp_path / name}.db"
        for command in (["init"], ["register", str(EXAMPLE)]):
            subprocess.run(
                [sys.executable, "-m", "imaging_biobank", *command, "--db", urls[name]],
                check=True,
                capture_output=True,
            )
    command = [
        sys.executable,
        "-m",
        "imaging_biobank",
        "ingest",
        str(corpus),
        "-c",
        "NB_IMAGING",  # the short name serves while it is unique
        "--key-file",
        str(key_file),
        "--batch-size",
        "100",
        "--workers",
        "1",
    ]
    subprocess.run([*command, "--db", urls["clean"]], check=True, capture_output=True)
    killed = subprocess.Popen(
        [*command, "--db", urls["killed"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    engine = make_engine(urls["killed"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(T["imaging_instance"])).scalar()
        if n and n >= 300:
            break
        time.sleep(0.05)
    workers = child_processes(killed.pid)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    partial = n
    # its workers end too (they would otherwise wait forever on a full result pipe)
    assert still_running(workers) == [], "worker processes outlived the killed ingest"
    assert partial and partial < 2500, "the run finished before it could be killed"
    subprocess.run([*command, "--db", urls["killed"]], check=True, capture_output=True)
    assert canonical(make_engine(urls["killed"])) == canonical(make_engine(urls["clean"]))


def test_clear_errors_before_anything_is_written(
    registered: Engine,
    key_file: Path,
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = str(registered.url.render_as_string(hide_password=False))
    monkeypatch.delenv("IMAGING_BIOBANK_KEY_FILE", raising=False)
    result = runner.invoke(app, ["ingest", str(STS_001), "-c", NB_IMAGING, "--db", url])
    assert result.exit_code == 2 and "imaging-biobank keygen" in result.output
    base = ["ingest", str(STS_001), "--db", url, "--key-file", str(key_file)]
    result = runner.invoke(app, [*base, "-c", "bbmri-eric:ID:ES_PRIMAGE:collection:NOPE"])
    assert result.exit_code == 2 and NB_IMAGING in result.output
    result = runner.invoke(app, [*base, "-c", "NB_TISSUE"])
    assert result.exit_code == 2 and "sample_tissue collection" in result.output
    assert query(registered, "SELECT count(*) FROM imaging_instance") == [(0,)]
    result = runner.invoke(app, ["keygen", str(key_file)])
    assert result.exit_code == 2 and "never overwritten" in result.output
