"""Scale-out ingestion: a Dask cluster's workers parse, PostgreSQL takes COPY batches,
several runs write into one database at once, dirty real-world values are cleaned and
counted. Real files: a corpus cloned from real templates (benchmarks/corpus.py) and STS_001.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from distributed import Client, LocalCluster  # the dask extra, part of `make test`
from sqlalchemy import Engine, func, select

from imaging_biobank.db.engine import make_engine
from imaging_biobank.model.base import Base
from tests.conftest import (
    DIPG_IMAGING,
    EXAMPLE,
    NB_IMAGING,
    STS_001,
    canonical,
    child_processes,
    still_running,
    synthetic_corpus,
)

T = Base.metadata.tables
CLI = [sys.executable, "-m", "imaging_biobank"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A Dask cluster on loopback: a scheduler and two worker processes with nannies."""
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 new files cloned from real templates, beside the real patient STS_001."""
    root = tmp_path_factory.mktemp("tree")
    synthetic_corpus(root / "corpus", 1500, seed=21)
    shutil.copytree(STS_001 / "CT", root / "sts_001_ct")
    return root


def new_database(url: str) -> str:
    for command in (["init"], ["register", str(EXAMPLE)]):
        subprocess.run([*CLI, *command, "--db", url], check=True, capture_output=True)
    return url


def ingest_command(
    url: str, key_file: Path, *paths: Path, collection: str = NB_IMAGING
) -> list[str]:
    return [
        *CLI,
        "ingest",
        *map(str, paths),
        "-c",
        collection,
        "--db",
        url,
        "--key-file",
        str(key_file),
        "--json",
    ]


def ingest(url: str, key_file: Path, *paths: Path, options: tuple[str, ...] = ()) -> dict[str, Any]:
    done = subprocess.run(
        [*ingest_command(url, key_file, *paths), *options], capture_output=True, text=True
    )
    assert done.returncode in (0, 1), done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def instances(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(T["imaging_instance"])).scalar_one()
            )
    finally:
        engine.dispose()


def rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = make_engine(url)
    try:
        return canonical(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "key"
    subprocess.run([*CLI, "keygen", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def local_rows(corpus: Path, postgres: Any, key: Path) -> dict[str, list[tuple[object, ...]]]:
    """The rows the local executor gives for the tree, on PostgreSQL (the reference)."""
    url = new_database(postgres.create_database(f"reference_{os.getpid()}"))
    summary = ingest(url, key, corpus, options=("--workers", "2"))
    assert summary["new"] == 1500 + len(list((STS_001 / "CT").rglob("*.dcm")))
    return rows(url)


def test_a_dask_cluster_gives_the_rows_of_the_local_executor(
    cluster: LocalCluster, corpus: Path, local_rows: dict[str, Any], postgres_url: str, key: Path
) -> None:
    expected = local_rows
    url = new_database(postgres_url)
    summary = ingest(url, key, corpus, options=("--scheduler", cluster.scheduler_address))
    assert summary["new"] == len(expected["imaging_instance"])
    assert rows(url) == expected
    # again: nothing changes, and the cluster's workers hold no state of the run
    again = ingest(url, key, corpus, options=("--scheduler", cluster.scheduler_address))
    assert again["new"] == 0 and again["unchanged"] == summary["new"]
    with Client(cluster) as client:
        assert client.run(_ingest_runs_held) == dict.fromkeys(client.nthreads(), 0)


def _ingest_runs_held() -> int:
    from imaging_biobank.ingest import worker

    return len(worker._runs)


def test_executor_dask_without_a_scheduler_starts_a_local_cluster(
    corpus: Path, local_rows: dict[str, Any], postgres_url: str, key: Path
) -> None:
    expected = local_rows
    url = new_database(postgres_url)
    summary = ingest(url, key, corpus, options=("--executor", "dask", "--workers", "2"))
    assert summary["client_peak_rss_mb"] > 0 and summary["ingest_seconds"] > 0
    assert rows(url) == expected


def test_a_worker_killed_mid_run_does_not_change_the_result(
    cluster: LocalCluster, corpus: Path, local_rows: dict[str, Any], postgres_url: str, key: Path
) -> None:
    expected = local_rows
    url = new_database(postgres_url)
    command = [
        *ingest_command(url, key, corpus),
        "--scheduler",
        cluster.scheduler_address,
        "--batch-size",
        "50",
    ]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with Client(cluster) as client:
        pids = client.run(os.getpid)
        seen = _wait_for_rows(url, 200)
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        out, err = run.communicate(timeout=300)
        assert run.returncode in (0, 1), err
        assert 0 < seen < len(expected["imaging_instance"]), "the run ended before the kill"
        # the nanny started a new worker in its place
        client.wait_for_workers(2, timeout=60)
        assert set(client.run(os.getpid).values()) != set(pids.values())
    assert json.loads(out)["new"] == len(expected["imaging_instance"])
    assert rows(url) == expected


def test_a_killed_dask_client_resumes_to_the_rows_of_a_clean_run(
    corpus: Path, local_rows: dict[str, Any], postgres_url: str, key: Path
) -> None:
    expected = local_rows
    url = new_database(postgres_url)
    command = [
        *ingest_command(url, key, corpus),
        "--executor",
        "dask",
        "--workers",
        "2",
        "--batch-size",
        "50",
    ]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = _wait_for_rows(url, 200)
    workers = child_processes(run.pid)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert 0 < seen < len(expected["imaging_instance"]), "the run ended before the kill"
    # the local cluster's processes end with their client
    assert still_running(workers) == [], "Dask processes outlived the killed client"
    partial = instances(url)
    summary = ingest(url, key, corpus, options=("--executor", "dask", "--workers", "2"))
    assert summary["unchanged"] == partial
    assert rows(url) == expected


def _wait_for_rows(url: str, at_least: int, wait: float = 120) -> int:
    deadline = time.monotonic() + wait
    n = 0
    while time.monotonic() < deadline:
        n = instances(url)
        if n >= at_least:
            return n
        time.sleep(0.05)
    return n


def _series_folders(corpus: Path) -> list[Path]:
    """The corpus' series folders (patient/study/series), to make trees of."""
    series = sorted(p for p in (corpus / "corpus").glob("*/*/*") if p.is_dir())
    assert len(series) >= 6
    return series


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_ingests_end_with_the_rows_of_one(
    backend: str, corpus: Path, key: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Three runs at once: two overlapping trees into one collection and a third tree into
    another; the end state equals one run over the same files, without deadlocks."""
    if backend == "postgresql":
        server = request.getfixturevalue("postgres")
        urls = [
            new_database(server.create_database(f"{name}_{os.getpid()}"))
            for name in ("one", "many")
        ]
    else:
        urls = [new_database(f"sqlite:///{tmp_path / name}.db") for name in ("one", "many")]
    series = _series_folders(corpus)
    third = len(series) // 3
    a, b, c = series[:third], series[third : 2 * third], series[2 * third :]
    sts = corpus / "sts_001_ct"
    runs = [
        ([*a, *b], NB_IMAGING),
        ([*b, *c], NB_IMAGING),  # overlaps the first
        ([sts], DIPG_IMAGING),  # another collection
    ]
    # one database: the runs one after another
    for paths, collection in runs:
        done = subprocess.run(
            [*ingest_command(urls[0], key, *paths, collection=collection), "--workers", "1"],
            capture_output=True,
        )
        assert done.returncode in (0, 1), done.stderr
    # the other: all at once, small batches so that they interleave
    started = [
        subprocess.Popen(
            [
                *ingest_command(urls[1], key, *paths, collection=collection),
                "--workers",
                "1",
                "--batch-size",
                "40",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for paths, collection in runs
    ]
    outcomes = [run.communicate(timeout=600) for run in started]
    for run, (_, err) in zip(started, outcomes, strict=True):
        assert run.returncode in (0, 1), err
    summaries = [json.loads(out) for out, _ in outcomes]
    assert (
        sum(s["new"] for s in summaries[:2])
        == len(rows(urls[0])["imaging_instance"]) - (summaries[2]["new"])
    )
    assert rows(urls[1]) == rows(urls[0])


# --- dirty real-world values -------------------------------------------------------------


def _dirty_files(folder: Path) -> None:
    """Real CT headers carrying what real archives hold: NUL bytes inside descriptions and
    other text, ages as AS strings in several forms, a body part in another spelling. Each
    file is a series of its own, so each series shows its file's values."""
    folder.mkdir()
    source = sorted((STS_001 / "CT" / "image").glob("*.dcm"))[:4]
    values: list[dict[str, str]] = [
        {"SeriesDescription": "AX\x00T1 post", "ProtocolName": "Thorax\x00Routine"},
        {"PatientAge": "65", "SeriesDescription": "plain"},  # no unit: years
        {"PatientAge": "unknown", "SeriesDescription": "plain"},  # not an age
        {"BodyPartExamined": "Abd\x00omen", "SeriesDescription": "plain"},
    ]
    for i, (path, changes) in enumerate(zip(source, values, strict=True)):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = pydicom.uid.generate_uid()
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        ds.save_as(folder / f"{i}.dcm")


def test_dirty_values_are_cleaned_counted_and_stored_on_both_databases(
    registered: Engine, key_file: Path, tmp_path: Path
) -> None:
    _dirty_files(tmp_path / "dirty")
    url = registered.url.render_as_string(hide_password=False)
    summary = ingest(url, key_file, tmp_path / "dirty")
    assert summary["new"] == 4 and summary["rejected"] == 0
    # a description, a protocol name and a body part held NUL bytes
    assert summary["nul_bytes_stripped"] == 3
    assert summary["ages_converted"] == 1  # "65" (STS_001's CT gives no age)
    assert summary["ages_unreadable"] == 1
    series, acquisition = T["imaging_series"], T["acquisition_parameters"]
    with registered.connect() as conn:
        stored = conn.execute(
            select(
                series.c.series_description,
                series.c.body_part_examined_value,
                series.c.body_part_examined_flag,
                acquisition.c.extra,
            ).join(acquisition, acquisition.c.imaging_series_id == series.c.id)
        ).all()
    assert not any("\x00" in json.dumps(list(row)) for row in stored)
    by_description = {row[0]: row for row in stored}
    assert by_description["AXT1 post"][3]["ProtocolName"] == "ThoraxRoutine"
    body_parts = {(row[1], row[2]) for row in stored}
    assert body_parts == {("EXTREMITY", None), ("Abdomen", "normalised")}


def test_the_client_keeps_no_partition_once_its_results_are_in(corpus: Path, key: Path) -> None:
    """Bounded client memory: a Dask run holds the partitions in flight and the few its
    connections log, however many it sent. (Dask's connections kept their last 1,000
    messages, each with a partition's paths: the client and its in-process scheduler grew by
    30 MB per 10^5 files.)"""
    import gc

    from imaging_biobank.dicom.sources import FileItem
    from imaging_biobank.dicom.sources.folder import expand_paths
    from imaging_biobank.ingest.distributed import DaskParsing
    from imaging_biobank.ingest.parallel import IngestOptions

    def partitions_alive() -> int:
        gc.collect()
        return sum(
            1 for o in gc.get_objects() if type(o) is list and o and isinstance(o[0], FileItem)
        )

    before = partitions_alive()
    parsing = DaskParsing(
        expand_paths([corpus]), IngestOptions(workers=1), key.read_bytes(), partition_size=8
    )
    try:
        results = 0
        for batch in parsing.results():
            results += len(batch)
        assert results // 8 > 180  # about two hundred partitions went out
        # what the scheduler's log to the worker and the client's to the scheduler hold
        assert partitions_alive() - before <= 20
    finally:
        parsing.close()


def test_a_task_failing_on_the_workers_is_one_clear_error(corpus: Path, key: Path) -> None:
    """Not a file's fault (those are reported per file): e.g. workers that lost the run's
    set-up, or lack imaging-biobank. The run stops with what to do, not a traceback."""
    from imaging_biobank.dicom.sources.folder import expand_paths
    from imaging_biobank.ingest.distributed import DaskError, DaskParsing
    from imaging_biobank.ingest.parallel import IngestOptions

    parsing = DaskParsing(
        expand_paths([corpus]), IngestOptions(workers=1), key.read_bytes(), partition_size=16
    )
    try:
        results = parsing.results()
        assert next(results)
        parsing._client.unregister_worker_plugin(parsing.run)  # the workers forget the run
        with pytest.raises(DaskError, match=r"was not set up for ingest .* run again to continue"):
            for _ in results:
                pass
    finally:
        parsing.close()


def test_the_writer_keeps_nothing_from_batch_to_batch(registered: Engine, key_file: Path) -> None:
    """Bounded client memory on any executor: the writer kept every series, study and donor
    it had written (10^6 files: 9,000 series, the client 105 -> 136 MB during the run)."""
    from imaging_biobank.db.lookup import find_collection
    from imaging_biobank.deid.pseudonym import Pseudonymiser
    from imaging_biobank.dicom.read import read_path
    from imaging_biobank.ingest.worker import pseudonymise
    from imaging_biobank.ingest.writer import Writer

    pseudonymiser = Pseudonymiser.from_file(key_file)
    with registered.connect() as conn:
        collection = find_collection(conn, NB_IMAGING, kind="image").id
    writer = Writer(registered, collection, lambda *_: None, batch_size=20)
    files = sorted(STS_001.glob("*/image/*.dcm"))
    for path in files:
        writer.add(pseudonymise(read_path(str(path), "pydicom"), pseudonymiser))
        assert len(writer.series) <= 2 and len(writer.studies) <= 1  # one batch's worth
    writer.finish()
    assert writer.summary.new == len(files) and writer.summary.new_series == 3


def test_the_report_keeps_the_first_files_to_show_and_counts_them_all(tmp_path: Path) -> None:
    from imaging_biobank.cli.runs import Report

    report = Report(tmp_path / "report.jsonl")
    for i in range(25_000):
        report("rejected", f"/archive/{i}.dcm", "not DICOM")
    report.close()
    assert report.counts["rejected"] == 25_000 and len(report.listed["rejected"]) == Report.FIRST
    assert len((tmp_path / "report.jsonl").read_text().splitlines()) == 25_000
