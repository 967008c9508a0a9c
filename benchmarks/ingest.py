"""Ingest throughput against named baselines, on the same fresh files, in one run.

- ours: ``imaging-biobank ingest`` as a user runs it (whole process, start-up included),
  with 1 and 2 workers, each into a new SQLite database;
- naive: one ``pydicom.dcmread`` per file, one ORM insert and commit per row, one process;
- Orthanc: the Debian package, SQLite index, started here on loopback; REST upload with 4
  clients (what a PACS does to index a file; it also copies the file into its storage).

The corpus is new every run (a random seed, printed), cloned from real templates by
``benchmarks/corpus.py``, so the numbers hold on files never seen before. It is made twice:
with images of real CT size (512x512, as in the archives Orthanc's 230-420 files/s were
measured on) and with 16x16 images (headers only, in effect: Orthanc's best case, since it
reads and stores every byte while we read headers). ``--decay N`` also ingests N new files
in blocks of 2,000 into one growing database and compares the last blocks' rate with the
first ones'.
Goals (issue 3): >= 4x naive with 1 worker, >= 6x with 2, >= 10x Orthanc; the rate at
10^5 instances >= 80 % of the rate at 10^3.

    .venv/bin/python benchmarks/ingest.py [--files 5000] [--decay 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from corpus import make_corpus  # noqa: E402

COLLECTION = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_IMAGING"
CLI = [sys.executable, "-m", "imaging_biobank"]


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.dcm"))


def warm(files: list[Path]) -> None:
    """Write the new corpus out (its dirty pages would otherwise be flushed during the first
    timing) and read every file once, so each system meets a warm page cache."""
    os.sync()
    for path in files:
        path.read_bytes()


def new_database(work: Path, name: str) -> str:
    url = f"sqlite:///{work / name}.db"
    for command in (["init"], ["register", str(ROOT / "examples" / "primage.yaml")]):
        subprocess.run([*CLI, *command, "--db", url], check=True, capture_output=True)
    return url


def ours(work: Path, corpus: Path, key: Path, workers: int) -> float:
    """Seconds for ``imaging-biobank ingest`` to index the corpus, start-up included."""
    url = new_database(work, f"ours-{workers}-{corpus.name}")
    start = time.perf_counter()
    subprocess.run(
        [
            *CLI,
            "ingest",
            str(corpus),
            "-c",
            COLLECTION,
            "--db",
            url,
            "--key-file",
            str(key),
            "--workers",
            str(workers),
            "--json",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


NAIVE = r"""
import sys, pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session
from imaging_biobank.db.engine import make_engine
from imaging_biobank.model import (ImageCollection, ImagingInstance, ImagingSeries,
                                   ImagingStudy, SampleDonor, Sex)
engine = make_engine(sys.argv[1])
with Session(engine) as s:
    collection = s.scalar(select(ImageCollection))
    unknown = s.scalar(select(Sex).where(Sex.code == "Unknown"))
    for path in open(sys.argv[2]).read().splitlines():
        ds = pydicom.dcmread(path)
        donor = s.scalar(select(SampleDonor).where(SampleDonor.pseudonym == str(ds.PatientID)))
        if donor is None:
            donor = SampleDonor(pseudonym=str(ds.PatientID), sex=unknown)
            s.add(donor); s.commit()
        study = s.scalar(select(ImagingStudy).where(
            ImagingStudy.study_instance_uid == ds.StudyInstanceUID))
        if study is None:
            study = ImagingStudy(study_instance_uid=ds.StudyInstanceUID)
            s.add(study); s.commit()
        series = s.scalar(select(ImagingSeries).where(
            ImagingSeries.series_instance_uid == ds.SeriesInstanceUID))
        if series is None:
            series = ImagingSeries(series_instance_uid=ds.SeriesInstanceUID, study=study,
                                   image_collection=collection, sample_donor=donor,
                                   modality_value=ds.Modality)
            s.add(series); s.commit()
        s.add(ImagingInstance(sop_instance_uid=ds.SOPInstanceUID, series=series,
                              sop_class_uid=ds.SOPClassUID, location=path))
        s.commit()
"""


def naive(work: Path, files: list[Path], name: str) -> float:
    """Seconds for the naive baseline (pydicom + one ORM commit per row)."""
    url = new_database(work, f"naive-{name}")
    listing = work / f"naive-{name}.txt"
    listing.write_text("\n".join(map(str, files)))
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", NAIVE, url, str(listing)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"the naive baseline failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def orthanc(files: list[Path]) -> float | None:
    """Seconds for Orthanc to store the files over REST with 4 clients (None: not installed)."""
    from tests.servers import OrthancServer, ServerUnavailableError

    try:
        server = OrthancServer.start()
    except ServerUnavailableError as error:
        print(f"Orthanc: not measured ({error}); `make test` installs it", file=sys.stderr)
        return None
    try:
        start = time.perf_counter()
        stored = server.upload(files)
        seconds = time.perf_counter() - start
        if stored != len(files):
            raise RuntimeError(f"Orthanc stored {stored} of {len(files)} files")
        return seconds
    finally:
        server.stop()


def decay(work: Path, n: int, key: Path, seed: int, block: int = 2000) -> None:
    """Ingest ``n`` new files in blocks of ``block`` files into one growing database (each
    block one ``ingest`` call, 2 workers, its final commit and the collection's derived
    values included) and compare the rate of the last blocks (at ~n instances) with that
    of the first ones (at ~10^3). Medians of three blocks each, against noise."""
    from statistics import median

    from imaging_biobank.db.engine import make_engine
    from imaging_biobank.deid.pseudonym import Pseudonymiser
    from imaging_biobank.dicom.sources.folder import expand_paths
    from imaging_biobank.ingest.pipeline import IngestOptions, ingest

    corpus = work / "decay"
    print(f"decay: writing {n:,} files ...", file=sys.stderr)
    make_corpus(n, corpus, seed=seed + 1, workers=2)
    files = files_of(corpus)
    warm(files)
    engine = make_engine(new_database(work, "decay"))
    pseudonymiser = Pseudonymiser.from_file(key)
    rates: list[tuple[int, float]] = []  # (instances after the block, files/s)
    for first in range(0, len(files), block):
        part = files[first : first + block]
        start = time.perf_counter()
        ingest(
            engine,
            COLLECTION,
            expand_paths(part),
            pseudonymiser,
            IngestOptions(workers=2),
            lambda *_: None,
        )
        rates.append((first + len(part), len(part) / (time.perf_counter() - start)))
    early = median(rate for _, rate in rates[:3])
    late = median(rate for _, rate in rates[-3:])
    print(f"\ndecay: {len(files):,} instances in blocks of {block:,}, one database, 2 workers")
    shown = {0, 1, 2, len(rates) // 10, len(rates) // 3, len(rates) - 3, len(rates) - 2}
    for i, (after, rate) in enumerate(rates):
        if i in shown or i == len(rates) - 1:
            print(f"  block ending at {after:>9,} instances: {rate:8,.0f} files/s")
    print(f"  first three blocks (~10^3): {early:8,.0f} files/s (median)")
    print(f"  last three blocks (~{len(files):,}): {late:8,.0f} files/s (median)")
    print(f"  late / early: {late / early:.2f}  (goal >= 0.80)")


def compare(work: Path, key: Path, files_n: int, seed: int, matrix: int) -> None:
    """One comparison, on a corpus of ``files_n`` new files of ``matrix`` x ``matrix`` images."""
    corpus = work / f"corpus-{matrix}"
    summary = make_corpus(files_n, corpus, seed=seed, workers=2, matrix=matrix)
    files = files_of(corpus)
    print(
        f"\ncorpus: {len(files):,} new files, {matrix}x{matrix} images (seed {seed};"
        f" {summary.series} series, {summary.bytes / 1e6:,.0f} MB), warm page cache,"
        f" {os.cpu_count()} cores"
    )
    warm(files)
    timings = {
        "imaging-biobank ingest, 1 worker": ours(work, corpus, key, 1),
        "imaging-biobank ingest, 2 workers": ours(work, corpus, key, 2),
        "naive (pydicom + ORM commit per row)": naive(work, files, corpus.name),
    }
    orthanc_seconds = orthanc(files)
    if orthanc_seconds is not None:
        timings["Orthanc 1.10 REST, 4 clients"] = orthanc_seconds
    n = len(files)
    rates = {name: n / seconds for name, seconds in timings.items()}
    naive_rate = rates["naive (pydicom + ORM commit per row)"]
    orthanc_rate = rates.get("Orthanc 1.10 REST, 4 clients")
    print(
        f"{'system (wall clock, start-up included)':40} {'files/s':>9} {'x naive':>8}"
        f" {'x Orthanc':>10}"
    )
    for name, rate in rates.items():
        vs_orthanc = f"{rate / orthanc_rate:10.1f}" if orthanc_rate else f"{'-':>10}"
        print(f"{name:40} {rate:9,.0f} {rate / naive_rate:8.1f} {vs_orthanc}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=5000, help="0: only --decay")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--matrix",
        type=int,
        nargs="+",
        default=[512, 16],
        help="image sizes to compare on (default: 512, real CT slices; 16)",
    )
    parser.add_argument("--decay", type=int, default=0, metavar="N")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp one)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        key = work / "bench.key"
        subprocess.run([*CLI, "keygen", str(key)], check=True, capture_output=True)
        if args.files:
            for matrix in args.matrix:
                compare(work, key, args.files, seed, matrix)
            print("\ngoals: 1 worker >= 4x naive, 2 workers >= 6x naive, >= 10x Orthanc")
        if args.decay:
            decay(work, args.decay, key, seed)


if __name__ == "__main__":
    main()
