"""Ingest throughput, client memory and cohort query times as the catalogue grows (10^4 to
10^6 instances): SQLite and PostgreSQL with local worker processes, PostgreSQL with a local
Dask cluster, in one run.

Why: issue 9 asks whether ingestion scales, and how far a cluster would take it. Its goals:
the ingest rate at the largest size is at least 80 % of the rate at 10^4 (per
configuration); the ingest client's peak memory does not grow with the number of instances;
the issue's cohort query (``modality = CT and body_part = ABDOMEN and slice_thickness <= 3``)
answers with p95 <= 50 ms at the largest size on PostgreSQL; and a Dask worker parses as
fast as a local worker process (throughput with the Dask executor within 20 % of local
processes, same number of workers).

What, per size N (``--sizes``, default 10^4 and 10^5; 10^6 is a run of its own, see below):

- the corpus: ``benchmarks/corpus.py`` writes N files (``--seed``; ``--distribution idc``,
  real patients of the IDC index, or ``synthetic``) into ``--work``/corpus-DISTRIBUTION-N once;
  a later run reuses that folder when it holds exactly N files of the same seed. Every file
  is read once before the timings (warm page cache, as benchmarks/ingest.py does);
- per configuration: a new database (``imaging-biobank init``, ``register
  examples/primage.yaml``), then ``imaging-biobank ingest CORPUS -c NB_IMAGING --workers W
  --json [--executor dask]`` as a user runs it. Measured: the wall time of the whole command
  and the ``ingest_seconds`` it reports (the ingest itself, without interpreter or Dask
  start-up), hence two rates; the client's peak RSS (``client_peak_rss_mb`` of its JSON;
  beside it the ``VmHWM`` this script read from /proc while it ran); the largest process of
  the command's tree (``wait4``'s maximum resident set, taken by a small launcher process,
  since Linux charges a forked child with its parent's memory) and the largest sum of the
  tree's resident sets (sampled every 0.25 s); CPU seconds of the client (the writer, the
  dispatcher, and with Dask the scheduler), of its workers, and of the PostgreSQL server
  (its backends, read from the postmaster's reaped-children times), with the CPU spent before
  the ingest proper began (start-up) apart; the size of the database written;
- cohort queries on the databases just ingested: the calls of ``benchmarks/query.py``
  (``queries()``, timed by its ``timings()``: p50 and p95 over ``--repeat`` runs after two
  warm-up runs), on SQLite as the ingest left it and on PostgreSQL after ``VACUUM ANALYZE``
  (what autovacuum does after a bulk load; done here so that it does not run during the
  timings; the p50 of five runs before it is printed too). The corpus holds images only (no
  samples, no diagnoses): the sample+diagnosis query answers 0 by construction; the table
  gives every answer. The database the Dask run wrote answers each query once, and must
  answer as the local run's did.

Baselines, in the same run: for throughput and memory the smallest size; for the Dask
executor the local processes at the same size and number of workers (``x local``).

From the CPU times of the ingest proper the script derives, per configuration, what one
worker parses per second of its own CPU (a worker's rate when it has a core to itself) and
the single writer's ceiling (instances per second of client plus database CPU: the rate no
number of workers can pass), and the rate a cluster of K workers would reach if nothing
else limited it: min(K x worker rate, writer ceiling). It prints tables and PASS/FAIL
lines, saves the raw results (``--docs``/performance.json), draws ``performance.png``
(matplotlib) and rewrites the block between ``<!-- scale:begin -->`` and
``<!-- scale:end -->`` in performance.md.

PostgreSQL: a private cluster started here on loopback (tests/servers.py; Debian's server
binaries; fsync off, as in the tests) or ``--pg URL`` of a server where this user may create
databases: the script creates (dropping them first) and afterwards drops databases named
``ib_scale_*`` there.

    .venv/bin/python benchmarks/scale.py [--sizes 10000,100000,1000000] [--workers 2]
        [--work /tmp/bench-scale] [--pg URL] [--configs sqlite-local,pg-local,pg-dask]

``make bench-scale`` runs 10^4 and 10^5. The 10^6 run needs about 4 GB under ``--work`` for
the corpus (10^5 files took 342 MB) and about 1 GB more for the databases (at 10^5: SQLite
41 MB, PostgreSQL 63 MB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from corpus import make_corpus  # noqa: E402
from query import EXAMPLE, comparable, queries, timings  # noqa: E402

CLI = [sys.executable, "-m", "imaging_biobank"]
COLLECTION = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_IMAGING"
TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY = 0.25  # seconds between two looks at the command's processes
BUSY = 0.1  # other work's share of the CPU above which a run is flagged
CLUSTER_SIZES = (1, 2, 4, 8, 16, 32, 64)
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"
SERIES_QUERY = "series: " + EXAMPLE  # the cohort query, as query.py names it


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    database: str  # "sqlite" or "postgresql"
    executor: str  # "local" or "dask"


CONFIGS = (
    Config("sqlite-local", "SQLite, local processes", "sqlite", "local"),
    Config("pg-local", "PostgreSQL, local processes", "postgresql", "local"),
    Config("pg-dask", "PostgreSQL, local Dask cluster", "postgresql", "dask"),
)


@dataclass
class QueryTiming:
    p50: float
    p95: float
    cpu: float | None  # mean CPU ms per call of the process that did the work
    before_analyze_p50: float | None  # PostgreSQL: median of 5 runs before VACUUM ANALYZE
    answer: Any


@dataclass
class Ingest:
    """One ingest command on one corpus into one new database, and what it cost."""

    config: str
    size: int
    exit_code: int
    wall_seconds: float  # the whole command, interpreter start-up included
    ingest_seconds: float | None  # as the command reports it (None: it did not)
    summary: dict[str, Any]
    client_peak_rss_mb: float | None  # as the command reports it
    client_hwm_mb: float  # VmHWM of the client, read from /proc while it ran
    tree_max_rss_mb: float  # wait4: the largest process of the command's tree
    tree_peak_sum_mb: float  # the largest sum of the tree's resident sets (sampled)
    worker_peak_rss_mb: float  # the largest VmHWM of any other process of the tree
    processes: int  # processes seen in the tree (client included)
    cpu_client: float
    cpu_workers: float
    cpu_database: float | None  # PostgreSQL backends (None: SQLite, or a server not here)
    # CPU seconds spent before the ingest proper began (``wall - ingest_seconds``): the
    # interpreter, imports, starting the workers or the Dask cluster
    cpu_client_startup: float
    cpu_workers_startup: float
    # the share of the machine's CPU (all cores) that processes other than the command, its
    # database server and this script used while it ran: other work sharing the machine
    other_work: float
    client_rss_quarter_mb: float  # the client's resident set a quarter into the ingest proper
    client_rss_end_mb: float  # ... and at the last look before it ended
    database_mb: float | None = None  # the size of the database after the ingest
    analyze_seconds: float | None = None
    queries: dict[str, QueryTiming] = field(default_factory=dict)

    @property
    def rate_wall(self) -> float:
        return self.size / self.wall_seconds

    @property
    def rate(self) -> float:
        """Instances per second of the ingest itself (the whole command when not reported)."""
        return self.size / (self.ingest_seconds or self.wall_seconds)

    @property
    def client_mb(self) -> float:
        return self.client_peak_rss_mb or self.client_hwm_mb

    @property
    def ingest_cpu_client(self) -> float:
        """CPU seconds of the client during the ingest proper."""
        return self.cpu_client - self.cpu_client_startup

    @property
    def ingest_cpu_workers(self) -> float:
        """CPU seconds of the workers during the ingest proper."""
        return self.cpu_workers - self.cpu_workers_startup

    @property
    def writer_ceiling(self) -> float:
        """Instances per CPU second of the client and the database during the ingest: the
        single writer's ceiling if that work is serial."""
        return self.size / (self.ingest_cpu_client + (self.cpu_database or 0.0))

    @property
    def cpu_bound(self) -> float:
        """The rate this machine's cores allow if the command's CPU time were all there is
        (the ingest rate measured approaches it when nothing else runs)."""
        total = self.ingest_cpu_client + self.ingest_cpu_workers + (self.cpu_database or 0.0)
        return (os.cpu_count() or 1) * self.size / total

    @property
    def worker_core_rate(self) -> float:
        """Instances one worker parses per second of its own CPU."""
        cpu = self.ingest_cpu_workers
        return self.size / cpu if cpu > 0 else float("nan")


# ---------------------------------------------------------------------------------------------
# corpora


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def corpus_for(
    work: Path, n: int, seed: int, workers: int, distribution: str
) -> tuple[Path, dict[str, Any]]:
    """The corpus of ``n`` files under ``work`` (made once; reused while it holds exactly
    ``n`` files of the same seed and distribution)."""
    folder = work / f"corpus-{distribution}-{n}"
    stamp = work / f"corpus-{distribution}-{n}.json"
    if folder.exists() and stamp.exists():
        made = json.loads(stamp.read_text())
        if made.get("seed") == seed and count_files(folder) == n:
            print(f"corpus {n:,}: reused {folder} ({made.get('line', '')})", flush=True)
            if made.get("generator") != generator():
                print(
                    f"  (made by another version of benchmarks/corpus.py: remove {folder}"
                    " to make it anew)",
                    flush=True,
                )
            return folder, made | {"reused": True}
    if folder.exists():
        shutil.rmtree(folder)
    print(f"corpus {n:,}: writing {folder} ...", flush=True)
    planner = None
    if distribution == "idc":
        import idc  # beside corpus.py; reads the index of PyPI's idc-index-data

        planner = idc.IdcDistribution()
    summary = make_corpus(n, folder, seed=seed, workers=workers, planner=planner)
    made = {
        "seed": seed,
        "distribution": distribution,
        "generator": generator(),
        "files": summary.files,
        "patients": summary.patients,
        "studies": summary.studies,
        "series": summary.series,
        "modalities": summary.modalities,
        "bytes": summary.bytes,
        "seconds": summary.seconds,
        "line": summary.line(),
    }
    if count_files(folder) != n:
        raise SystemExit(f"{folder} should hold {n} files after make_corpus")
    stamp.write_text(json.dumps(made, indent=1))
    print(f"corpus {n:,}: {summary.line()}", flush=True)
    report = getattr(planner, "report", None)
    if report is not None:
        made["idc"] = f"{report.patients} patients drawn whole; {report.census.line()}"
        print(f"  idc: {made['idc']}", flush=True)
    return folder, made | {"reused": False}


def generator() -> str:
    """A digest of benchmarks/corpus.py, the program that made a corpus."""
    return hashlib.sha256((ROOT / "benchmarks" / "corpus.py").read_bytes()).hexdigest()[:16]


def warm(folder: Path) -> float:
    """Flush the corpus to disk and read every file once (the timings meet a warm cache)."""
    start = time.perf_counter()
    os.sync()
    for parent, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(parent, name), "rb") as f:
                while f.read(1 << 20):
                    pass
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# databases


class Databases:
    """New, empty databases: SQLite files under ``work``; PostgreSQL databases on one server
    (``admin_url`` may create databases)."""

    def __init__(self, work: Path, admin_url: str | None):
        self.work = work / "db"
        self.work.mkdir(parents=True, exist_ok=True)
        self.admin_url = admin_url
        self.postmaster: int | None = None
        self.server_version = ""
        if admin_url is not None:
            self.postmaster, self.server_version = self._postmaster()

    def _admin(self) -> Any:
        from sqlalchemy import create_engine

        assert self.admin_url is not None
        return create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def _postmaster(self) -> tuple[int | None, str]:
        """The server's postmaster pid when it runs on this machine (its backends' CPU
        is read from it), and the server's version."""
        from sqlalchemy import text

        engine = self._admin()
        with engine.connect() as conn:
            backend = conn.scalar(text("SELECT pg_backend_pid()"))
            version = str(conn.scalar(text("SHOW server_version")))
            try:
                parent = int(proc_stat(int(backend))[1])
                comm = Path(f"/proc/{parent}/comm").read_text().strip()
            except (OSError, ValueError, IndexError):
                parent, comm = 0, ""
        engine.dispose()
        return (parent if comm.startswith("postgres") else None), version

    def new(self, config: Config, size: int) -> str:
        if config.database == "sqlite":
            path = self.work / f"{config.key}-{size}.db"
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        else:
            from sqlalchemy.engine import make_url

            if self.admin_url is None:
                raise RuntimeError("no PostgreSQL server")
            name = self._name(config, size)
            self.drop(config, size)
            engine = self._admin()
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            engine.dispose()
            url = make_url(self.admin_url).set(database=name).render_as_string(False)
        run_cli("init", "--db", url)
        run_cli("register", str(ROOT / "examples" / "primage.yaml"), "--db", url)
        return url

    @staticmethod
    def _name(config: Config, size: int) -> str:
        return f"ib_scale_{config.key.replace('-', '_')}_{size}"

    def size_mb(self, url: str) -> float | None:
        """The size of a database: the SQLite file, or PostgreSQL's pg_database_size."""
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            return (
                sum(
                    Path(f"{path}{suffix}").stat().st_size
                    for suffix in ("", "-wal")
                    if Path(f"{path}{suffix}").exists()
                )
                / 2**20
            )
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as conn:
            size = conn.scalar(text("SELECT pg_database_size(current_database())"))
        engine.dispose()
        return int(size) / 2**20

    def drop(self, config: Config, size: int) -> None:
        if config.database != "postgresql" or self.admin_url is None:
            return
        engine = self._admin()
        with engine.connect() as conn:
            conn.exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{self._name(config, size)}" WITH (FORCE)'
            )
        engine.dispose()

    def server_cpu(self) -> float | None:
        """CPU seconds of the postmaster and of every server process it has reaped."""
        if self.postmaster is None:
            return None
        fields = proc_stat(self.postmaster)
        return sum(int(v) for v in fields[11:15]) / TICK


def run_cli(*args: str) -> None:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"imaging-biobank {args[0]} failed:\n{result.stderr[-2000:]}")


def vacuum_analyze(url: str) -> float:
    from sqlalchemy import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    start = time.perf_counter()
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# running one command and watching its processes

LAUNCHER = """
import json, os, subprocess, sys, time
command = json.loads(sys.argv[1])
with open(sys.argv[2], "wb") as out, open(sys.argv[3], "wb") as err:
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=out, stderr=err)
    print(child.pid, flush=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "seconds": seconds,
                  "maxrss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}))
"""


def machine_busy_seconds() -> float:
    """CPU seconds the machine has spent busy (all cores, all processes), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def processes() -> Iterator[tuple[int, int, float]]:
    """(pid, parent pid, CPU seconds) of every process in /proc."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = proc_stat(int(entry.name))
            except OSError:
                continue
            yield int(entry.name), int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MB (0 when it has gone)."""
    values = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            parts = line.split()
            if parts and parts[0] in values:
                values[parts[0]] = int(parts[1]) / 1024
    except OSError:
        pass
    return values["VmRSS:"], values["VmHWM:"]


class Watch:
    """What the process tree of one running command uses: the last CPU time seen and the
    largest VmHWM of each process, and the largest sum of resident sets."""

    def __init__(self, client: int):
        self.client = client
        self.cpu: dict[int, float] = {}
        self.hwm: dict[int, float] = {}
        self.peak_sum = 0.0
        self.started = time.perf_counter()
        self.client_rss: list[tuple[float, float]] = []  # (seconds since start, MB)
        # (seconds since start, CPU seconds of the client, of the other processes)
        self.timeline: list[tuple[float, float, float]] = []

    def sample(self) -> None:
        cpu, children = {}, defaultdict(list)
        for pid, parent, seconds in processes():
            cpu[pid] = seconds
            children[parent].append(pid)
        tree, stack = [], [self.client]
        while stack:
            pid = stack.pop()
            tree.append(pid)
            stack.extend(children.get(pid, ()))
        total = 0.0
        for pid in tree:
            if pid not in cpu:
                continue
            rss, hwm = memory_mb(pid)
            if hwm == 0.0:  # gone between the two reads
                continue
            self.cpu[pid] = cpu[pid]
            if pid == self.client:
                self.client_rss.append((time.perf_counter() - self.started, rss))
            self.hwm[pid] = max(self.hwm.get(pid, 0.0), hwm)
            total += rss
        self.peak_sum = max(self.peak_sum, total)
        others = sum(seconds for pid, seconds in self.cpu.items() if pid != self.client)
        self.timeline.append(
            (time.perf_counter() - self.started, self.cpu.get(self.client, 0.0), others)
        )

    def cpu_at(self, seconds: float) -> tuple[float, float]:
        """CPU seconds of the client and of the other processes at the last look no later
        than ``seconds`` after the start."""
        client = others = 0.0
        for t, c, o in self.timeline:
            if t > seconds:
                break
            client, others = c, o
        return client, others

    def others(self) -> list[int]:
        return [pid for pid in self.cpu if pid != self.client]


def run_ingest(
    config: Config, size: int, corpus: Path, url: str, key: Path, workers: int, dbs: Databases
) -> Ingest:
    """``imaging-biobank ingest`` of the corpus into ``url``, measured."""
    command = [
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
    ]
    if config.executor == "dask":
        command += ["--executor", "dask"]
    logs = dbs.work / f"{config.key}-{size}"
    out, err = Path(f"{logs}.json"), Path(f"{logs}.log")
    server_before = dbs.server_cpu() if config.database == "postgresql" else None
    busy_before, mine_before = machine_busy_seconds(), time.process_time()
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, json.dumps(command), str(out), str(err)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdout is not None
    watch = Watch(int(launcher.stdout.readline()))
    while True:
        watch.sample()
        try:
            launcher.wait(SAMPLE_EVERY)
            break
        except subprocess.TimeoutExpired:
            pass
    measured = json.loads(launcher.stdout.read())
    busy = machine_busy_seconds() - busy_before
    mine = time.process_time() - mine_before
    server_cpu = None
    if server_before is not None:
        time.sleep(0.3)  # the postmaster reaps the backends the client closed
        after = dbs.server_cpu()
        server_cpu = None if after is None else after - server_before
    if measured["code"] not in (0, 1):  # 1: some files reported (rejected, skipped)
        raise SystemExit(
            f"{config.key} at {size:,}: ingest exited with {measured['code']}:\n"
            f"{err.read_text()[-3000:]}"
        )
    summary = json.loads(out.read_text())
    workers_cpu = sum(watch.cpu[pid] for pid in watch.others())
    client_cpu = max(measured["cpu"] - workers_cpu, watch.cpu.get(watch.client, 0.0))
    # before the ingest proper: the interpreter, imports, the workers' or cluster's start-up
    ingest_seconds = summary.get("ingest_seconds")
    startup = watch.cpu_at(measured["seconds"] - ingest_seconds) if ingest_seconds else (0, 0)
    rss = watch.client_rss or [(0.0, 0.0)]
    begun = measured["seconds"] - (ingest_seconds or measured["seconds"])
    quarter = begun + 0.25 * (measured["seconds"] - begun)
    early = next((mb for t, mb in rss if t >= quarter), rss[-1][1])
    result = Ingest(
        config=config.key,
        size=size,
        exit_code=measured["code"],
        wall_seconds=measured["seconds"],
        ingest_seconds=summary.get("ingest_seconds"),
        summary=summary,
        client_peak_rss_mb=summary.get("client_peak_rss_mb"),
        client_hwm_mb=watch.hwm.get(watch.client, 0.0),
        tree_max_rss_mb=measured["maxrss_kb"] / 1024,
        tree_peak_sum_mb=watch.peak_sum,
        worker_peak_rss_mb=max((watch.hwm[pid] for pid in watch.others()), default=0.0),
        processes=len(watch.cpu),
        cpu_client=client_cpu,
        cpu_workers=workers_cpu,
        cpu_client_startup=startup[0],
        cpu_workers_startup=startup[1],
        cpu_database=server_cpu,
        other_work=max(
            0.0,
            (busy - measured["cpu"] - (server_cpu or 0.0) - mine)
            / (measured["seconds"] * (os.cpu_count() or 1)),
        ),
        client_rss_quarter_mb=early,
        client_rss_end_mb=rss[-1][1],
    )
    growth = result.client_rss_end_mb - result.client_rss_quarter_mb
    if measured["seconds"] - begun >= 20 and growth > 0.2 * result.client_rss_quarter_mb:
        print(
            f"!! {config.key} at {size:,}: the client grew from {early:.0f} MB a quarter"
            f" into the ingest to {result.client_rss_end_mb:.0f} MB at the end",
            flush=True,
        )
    if result.other_work > BUSY:
        print(
            f"!! {config.key} at {size:,}: other work used {result.other_work:.0%} of the"
            " machine's CPU while it ran",
            flush=True,
        )
    if summary.get("items") != size or summary.get("new") != size:
        print(
            f"!! {config.key} at {size:,}: {summary.get('items')} items, {summary.get('new')} new"
            f" (rejected {summary.get('rejected')}, skipped {summary.get('skipped')},"
            f" duplicates {summary.get('duplicates')}; report: {err})",
            flush=True,
        )
    return result


def idc_available() -> bool:
    """Whether the IDC distribution of benchmarks/corpus.py can run here."""
    try:
        import idc

        idc.index_file()
    except Exception:  # not installed, or an index file missing: the synthetic corpus then
        return False
    return True


def dask_available() -> bool:
    """Whether this ``ingest`` has the Dask executor (``--executor``)."""
    result = subprocess.run([*CLI, "ingest", "--help"], capture_output=True, text=True)
    return "--executor" in result.stdout


# ---------------------------------------------------------------------------------------------
# queries


def query_timings(url: str, repeat: int, in_process: bool) -> dict[str, QueryTiming]:
    """The calls of benchmarks/query.py on ``url``, timed by its ``timings()``."""
    from imaging_biobank.db.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        measured = timings(conn, repeat, in_process=in_process)
    engine.dispose()
    return {
        name: QueryTiming(t.p50, t.p95, t.cpu, None, comparable(t.answer))
        for name, t in measured.items()
    }


def answers(url: str) -> dict[str, Any]:
    """Each call's answer, once."""
    from imaging_biobank.db.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        out = {name: comparable(call(conn)) for name, call in queries()}
    engine.dispose()
    return out


def answer_text(answer: Any) -> str:
    """A short form of an answer (counts as a researcher sees them)."""
    if isinstance(answer, dict) and "totals" in answer:
        t = answer["totals"]
        if not any(t.values()):
            return "0"
        return f"{t['donors']} donors, {t['series']} series, {t['instances']} inst."
    if isinstance(answer, dict):
        values = sum(1 for counts in answer.values() for n in counts.values() if n)
        return f"{values} values in {len(answer)} facets" if values else "0"
    return str(answer)


# ---------------------------------------------------------------------------------------------
# the report


@dataclass
class Goal:
    name: str
    value: str
    limit: str
    passed: bool | None  # None: not measured in this run

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[self.passed]
        return f"{verdict}  {self.name}: {self.value} (goal {self.limit})"


class Results:
    def __init__(self, sizes: list[int], workers: int, seed: int, repeat: int):
        self.sizes, self.workers, self.seed, self.repeat = sizes, workers, seed, repeat
        self.runs: dict[tuple[str, int], Ingest] = {}
        self.corpora: dict[int, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.started = dt.datetime.now(dt.UTC)
        self.seconds = 0.0
        self.server_version = ""
        self.distribution = ""

    def configs(self) -> list[Config]:
        keys = {key for key, _ in self.runs}
        return [c for c in CONFIGS if c.key in keys]

    def measured_sizes(self, config: str) -> list[int]:
        return sorted(size for key, size in self.runs if key == config)

    # the numbers

    def goals(self) -> list[Goal]:
        goals = []
        for config in self.configs():
            sizes = self.measured_sizes(config.key)
            first, last = self.runs[config.key, sizes[0]], self.runs[config.key, sizes[-1]]
            if len(sizes) < 2:
                goals.append(
                    Goal(f"{config.key}: rate does not decay", "one size", ">= 0.80", None)
                )
                goals.append(Goal(f"{config.key}: client memory bounded", "one size", "1.2x", None))
                continue
            ratio = last.rate / first.rate
            goals.append(
                Goal(
                    f"{config.key}: rate at {last.size:,} / rate at {first.size:,}",
                    f"{last.rate:,.0f} / {first.rate:,.0f} instances/s = {ratio:.2f}",
                    ">= 0.80",
                    ratio >= 0.8,
                )
            )
            allowed = max(first.client_mb * 1.2, first.client_mb + 50)
            goals.append(
                Goal(
                    f"{config.key}: client peak RSS at {last.size:,} vs {first.size:,}",
                    f"{last.client_mb:.0f} MB vs {first.client_mb:.0f} MB",
                    f"<= {allowed:.0f} MB: 1.2x or +50 MB",
                    last.client_mb <= allowed,
                )
            )
        pg = self.measured_sizes("pg-local")
        if pg and SERIES_QUERY in self.runs["pg-local", pg[-1]].queries:
            t = self.runs["pg-local", pg[-1]].queries[SERIES_QUERY]
            goals.append(
                Goal(
                    f"PostgreSQL cohort query p95 at {pg[-1]:,} ({EXAMPLE})",
                    f"{t.p95:.1f} ms",
                    "<= 50 ms",
                    t.p95 <= 50,
                )
            )
            measured = self.runs["pg-local", pg[-1]].queries
            facets = [(name, q) for name, q in measured.items() if name.startswith("facets")]
            if facets:
                worst = max(facets, key=lambda f: f[1].p95)
                goals.append(
                    Goal(
                        f"PostgreSQL facets p95 at {pg[-1]:,} (issue 7), worst: {worst[0]}",
                        f"{worst[1].p95:.1f} ms",
                        "<= 100 ms",
                        worst[1].p95 <= 100,
                    )
                )
        else:
            goals.append(Goal("PostgreSQL cohort query p95", "not measured", "<= 50 ms", None))
        both = [s for s in self.measured_sizes("pg-dask") if ("pg-local", s) in self.runs]
        if both:
            dask, local = self.runs["pg-dask", both[-1]], self.runs["pg-local", both[-1]]
            ratio = dask.rate / local.rate
            goals.append(
                Goal(
                    f"Dask / local processes per worker at {both[-1]:,} (PostgreSQL,"
                    f" {self.workers} workers)",
                    f"{dask.rate / self.workers:,.0f} / {local.rate / self.workers:,.0f}"
                    f" instances/s per worker = {ratio:.2f}; per second of a worker's CPU:"
                    f" {dask.worker_core_rate:,.0f} / {local.worker_core_rate:,.0f}"
                    f" = {dask.worker_core_rate / local.worker_core_rate:.2f}",
                    ">= 0.80",
                    ratio >= 0.8,
                )
            )
        else:
            goals.append(Goal("Dask / local processes per worker", "not measured", ">= 0.80", None))
        return goals

    def cluster_lines(self) -> list[str]:
        """What the per-worker table says, in words, per configuration."""
        lines = []
        for config in self.configs():
            run = self.runs[config.key, self.measured_sizes(config.key)[-1]]
            lines.append(
                f"- {config.label}: a worker parses {run.worker_core_rate:,.0f} instances per"
                f" second of its CPU, and the writer can take at most {run.writer_ceiling:,.0f}"
                f" per second; K workers give about K x {run.worker_core_rate:,.0f} instances/s"
                f" up to K = {run.writer_ceiling / run.worker_core_rate:.1f}, and"
                f" {run.writer_ceiling:,.0f} instances/s however many more are added."
            )
        return lines

    def cluster(self, run: Ingest) -> list[tuple[int, float]]:
        """(K, instances/s) a cluster of K workers would reach: min(K x worker rate,
        writer ceiling)."""
        return [(k, min(k * run.worker_core_rate, run.writer_ceiling)) for k in CLUSTER_SIZES]

    # the tables (markdown: the same rows print and go into the doc)

    def ingest_table(self) -> list[list[str]]:
        rows = [
            [
                "configuration",
                "instances",
                "command s",
                "inst/s (command)",
                "ingest s",
                "inst/s (ingest)",
                "x smallest",
                "x local",
                "client peak MB",
                "client MB at 1/4 / end",
                "largest worker MB",
                "tree sum MB",
                "database MB",
                "start-up CPU s: client / workers",
                "ingest CPU ms/1k inst: client / workers / PG",
                "other work",
            ]
        ]
        for config in self.configs():
            sizes = self.measured_sizes(config.key)
            first = self.runs[config.key, sizes[0]]
            for size in sizes:
                r = self.runs[config.key, size]
                local = self.runs.get(("pg-local", size)) if config.executor == "dask" else None
                db = "-" if r.cpu_database is None else f"{r.cpu_database * 1e6 / size:.0f}"
                rows.append(
                    [
                        config.label,
                        f"{size:,}",
                        f"{r.wall_seconds:.1f}",
                        f"{r.rate_wall:,.0f}",
                        "-" if r.ingest_seconds is None else f"{r.ingest_seconds:.1f}",
                        f"{r.rate:,.0f}",
                        f"{r.rate / first.rate:.2f}",
                        "-" if local is None else f"{r.rate / local.rate:.2f}",
                        f"{r.client_mb:.0f}",
                        f"{r.client_rss_quarter_mb:.0f} / {r.client_rss_end_mb:.0f}",
                        f"{r.worker_peak_rss_mb:.0f}",
                        f"{r.tree_peak_sum_mb:.0f}",
                        "-" if r.database_mb is None else f"{r.database_mb:,.0f}",
                        f"{r.cpu_client_startup:.1f} / {r.cpu_workers_startup:.1f}",
                        f"{r.ingest_cpu_client * 1e6 / size:.0f}"
                        f" / {r.ingest_cpu_workers * 1e6 / size:.0f} / {db}",
                        f"{r.other_work:.0%}",
                    ]
                )
        return rows

    def query_table(self) -> list[list[str]]:
        head = "query|database|instances|p50 ms|p95 ms|CPU ms|p50 before ANALYZE|answer"
        rows = [head.split("|")]
        names = [name for name, _ in queries()]
        for name in names:
            for config in self.configs():
                for size in self.measured_sizes(config.key):
                    t = self.runs[config.key, size].queries.get(name)
                    if t is None:
                        continue
                    rows.append(
                        [
                            name,
                            "SQLite" if config.database == "sqlite" else "PostgreSQL",
                            f"{size:,}",
                            f"{t.p50:.1f}",
                            f"{t.p95:.1f}",
                            "-" if t.cpu is None else f"{t.cpu:.1f}",
                            "-" if t.before_analyze_p50 is None else f"{t.before_analyze_p50:.1f}",
                            answer_text(t.answer),
                        ]
                    )
        return rows

    def busy(self) -> list[str]:
        """Runs during which other work took a share of the CPU (their rates are lower)."""
        return [
            f"{run.config} at {run.size:,} ({run.other_work:.0%})"
            for run in self.runs.values()
            if run.other_work > BUSY
        ]

    def all_notes(self) -> list[str]:
        busy = self.busy()
        extra = [f"other work shared the machine's CPU during {', '.join(busy)}"]
        return self.notes + (extra if busy else [])

    def zero_answers(self) -> list[str]:
        """The calls that answered 0 at every size on every database."""
        seen: dict[str, set[str]] = defaultdict(set)
        for run in self.runs.values():
            for name, timing in run.queries.items():
                seen[name].add(answer_text(timing.answer))
        return [name for name, texts in seen.items() if texts == {"0"}]

    def cluster_table(self) -> list[list[str]]:
        rows = [
            [
                "configuration (at its largest size)",
                f"per worker, measured ({self.workers} on {os.cpu_count()} cores)",
                "per worker core (CPU)",
                "writer ceiling",
                f"CPU-bound on this machine ({os.cpu_count()} cores)",
                *(f"K={k}" for k in CLUSTER_SIZES),
                "K where the writer saturates",
            ]
        ]
        for config in self.configs():
            run = self.runs[config.key, self.measured_sizes(config.key)[-1]]
            rows.append(
                [
                    f"{config.label} ({run.size:,})",
                    f"{run.rate / self.workers:,.0f}",
                    f"{run.worker_core_rate:,.0f}",
                    f"{run.writer_ceiling:,.0f}",
                    f"{run.cpu_bound:,.0f}",
                    *(f"{rate:,.0f}" for _, rate in self.cluster(run)),
                    f"{run.writer_ceiling / run.worker_core_rate:.1f}",
                ]
            )
        return rows

    # output

    def print(self) -> None:
        print()
        print(
            f"Ingest, {self.workers} workers, warm page cache, {os.cpu_count()} cores"
            " (x smallest: the rate over the rate at the smallest size; x local: Dask over"
            " local processes at the same size)"
        )
        print_table(self.ingest_table())
        print()
        print(f"Cohort queries on the databases just ingested, ms over {self.repeat} runs")
        print_table(self.query_table())
        print("answered 0 at every size: " + (", ".join(self.zero_answers()) or "none"))
        print()
        print("Per worker, and a cluster of K workers: min(K x per-core rate, writer ceiling)")
        print_table(self.cluster_table())
        for note in self.all_notes():
            print(f"note: {note}")
        print()
        for goal in self.goals():
            print(goal.line())

    def as_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(timespec="seconds"),
            "seconds": round(self.seconds, 1),
            "machine": machine(),
            "postgresql": self.server_version,
            "workers": self.workers,
            "seed": self.seed,
            "distribution": self.distribution,
            "repeat": self.repeat,
            "sizes": self.sizes,
            "corpora": {str(k): v for k, v in self.corpora.items()},
            "runs": [
                asdict(run)
                | {
                    "rate_wall": run.rate_wall,
                    "rate": run.rate,
                    "worker_core_rate": run.worker_core_rate,
                    "writer_ceiling": run.writer_ceiling,
                    "cpu_bound": run.cpu_bound,
                }
                for run in self.runs.values()
            ],
            "goals": [asdict(goal) for goal in self.goals()],
            "notes": self.all_notes(),
        }

    def markdown(self) -> str:
        m = machine()
        lines = [
            f"Measured {self.started:%Y-%m-%d} by `python benchmarks/scale.py --sizes"
            f" {','.join(map(str, self.sizes))} --workers {self.workers}` in"
            f" {self.seconds / 60:.0f} min on {m['cores']} cores, {m['memory_gb']:.0f} GB"
            f" ({m['cpu']}), Python {m['python']}, PostgreSQL {self.server_version or '-'}"
            f" (fsync off); corpora: {self.distribution}, seed {self.seed}; raw numbers in"
            " [performance.json](performance.json).",
            "",
            "Ingest (rates in instances per second; `command`: the whole command, start-up"
            " included; `ingest`: the time the command reports for the ingest itself):",
            "",
            *markdown_table(self.ingest_table()),
            "",
            f"Cohort queries (ms over {self.repeat} runs; PostgreSQL after `VACUUM ANALYZE`,"
            " its p50 of five runs before it beside; answers as a researcher sees them):",
            "",
            *markdown_table(self.query_table()),
            "",
            "Answered 0 at every size (the corpus has images only, no samples or diagnoses,"
            " or no donor matches): "
            + (", ".join(f"`{n}`" for n in self.zero_answers()) or "none")
            + ".",
            "",
            "Per worker and for a cluster of K workers (instances per second):",
            "",
            *markdown_table(self.cluster_table()),
            "",
            *self.cluster_lines(),
            "",
            "Goals:",
            "",
            *(f"- {goal.line()}" for goal in self.goals()),
        ]
        if self.all_notes():
            lines += ["", *(f"Note: {note}." for note in self.all_notes())]
        return "\n".join(lines)


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 or not cell[:1].isdigit() else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


def markdown_table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]]
    return out


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "memory_gb": memory,
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_docs(results: Results, docs: Path) -> None:
    """performance.json, performance.png and the generated block of performance.md."""
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "performance.json").write_text(json.dumps(results.as_json(), indent=1) + "\n")
    plot(results, docs / "performance.png")
    page = docs / "performance.md"
    text = page.read_text() if page.exists() else f"# Performance at scale\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{BEGIN}\n{results.markdown()}\n{END}{tail}")
    print(f"\nwrote {page}, {docs / 'performance.png'}, {docs / 'performance.json'}")


def plot(results: Results, path: Path) -> None:
    """Three panels against the number of instances: ingest rate, client peak memory, and
    the cohort query's p95."""
    try:
        import matplotlib
    except ImportError:
        results.notes.append("matplotlib is not installed: no performance.png")
        print("matplotlib is not installed: performance.png not drawn", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate, memory, query) = plt.subplots(1, 3, figsize=(14, 4.2))
    for config in results.configs():
        sizes = results.measured_sizes(config.key)
        runs = [results.runs[config.key, s] for s in sizes]
        (line,) = rate.plot(sizes, [r.rate for r in runs], "o-", label=config.label)
        rate.plot(sizes, [r.rate_wall for r in runs], ":", color=line.get_color())
        memory.plot(sizes, [r.client_mb for r in runs], "o-", label=config.label)
        if runs and runs[0].queries:
            db = "SQLite" if config.database == "sqlite" else "PostgreSQL"
            query.plot(sizes, [r.queries[SERIES_QUERY].p95 for r in runs], "o-", label=db)
    query.axhline(50, color="grey", linestyle="--", linewidth=1, label="goal: 50 ms")
    titles = (
        (
            rate,
            f"ingest rate, {results.workers} workers\n(dotted: whole command, start-up included)",
            "instances / s",
        ),
        (memory, "ingest client peak RSS", "MB"),
        (query, "cohort query p95\n" + EXAMPLE.replace(" and s", "\nand s"), "ms"),
    )
    for axes, title, unit in titles:
        axes.set_xscale("log")
        axes.set_xlabel("instances in the database")
        axes.set_ylabel(unit)
        axes.set_title(title, fontsize=10)
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
    fig.suptitle(
        f"imaging-biobank at scale ({results.started:%Y-%m-%d}, {os.cpu_count()} cores)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(float(part)) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes are positive numbers, e.g. 10000,100000")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=parse_sizes, default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-scale"))
    parser.add_argument("--pg", help="a PostgreSQL URL (default: a private server started here)")
    parser.add_argument("--seed", type=int, default=1, help="of the corpora (default 1)")
    parser.add_argument("--repeat", type=int, default=50, help="runs of each query")
    parser.add_argument(
        "--distribution",
        choices=("idc", "synthetic"),
        default="idc",
        help="of the corpora, as in benchmarks/corpus.py (default idc: real IDC patients;"
        " synthetic when idc-index-data is not installed)",
    )
    parser.add_argument(
        "--configs",
        default=",".join(c.key for c in CONFIGS),
        help="which of " + ", ".join(c.key for c in CONFIGS),
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=ROOT / "docs",
        help="where performance.md/.png/.json go (default: docs/)",
    )
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args()
    chosen = [c for c in CONFIGS if c.key in args.configs.split(",")]
    started = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    results = Results(args.sizes, args.workers, args.seed, args.repeat)

    if any(c.executor == "dask" for c in chosen) and not dask_available():
        results.notes.append("not measured: PostgreSQL with Dask (`ingest` has no --executor)")
        chosen = [c for c in chosen if c.executor != "dask"]
    if args.distribution == "idc" and not idc_available():
        results.notes.append("synthetic corpora: the IDC index (idc-index-data) is not installed")
        args.distribution = "synthetic"
    results.distribution = args.distribution
    key = args.work / "bench.key"
    if not key.exists():
        run_cli("keygen", str(key))

    server = None
    admin_url = args.pg
    if admin_url is None and any(c.database == "postgresql" for c in chosen):
        from tests.servers import PostgresServer, ServerUnavailableError

        try:
            server = PostgresServer.start()
            admin_url = server.url()
        except (ServerUnavailableError, RuntimeError) as error:
            results.notes.append(f"PostgreSQL not measured: {error}")
            chosen = [c for c in chosen if c.database != "postgresql"]
    try:
        dbs = Databases(args.work, admin_url)
        results.server_version = dbs.server_version
        for size in args.sizes:
            measure_size(results, dbs, chosen, size, args, key)
    finally:
        if server is not None:
            server.stop()
    results.seconds = time.perf_counter() - started
    results.print()
    if not args.no_docs:
        write_docs(results, args.docs)
    print(f"\n(whole run {results.seconds / 60:.1f} min)")


def measure_size(
    results: Results,
    dbs: Databases,
    chosen: list[Config],
    size: int,
    args: argparse.Namespace,
    key: Path,
) -> None:
    """Every configuration at one size: ingest into a new database, then its queries."""
    corpus, made = corpus_for(args.work, size, args.seed, args.workers, args.distribution)
    results.corpora[size] = made
    print(f"corpus {size:,}: read once in {warm(corpus):.0f} s (warm page cache)", flush=True)
    for config in chosen:
        url = dbs.new(config, size)
        run = run_ingest(config, size, corpus, url, key, args.workers, dbs)
        results.runs[config.key, size] = run
        run.database_mb = dbs.size_mb(url)
        print(
            f"{config.key} {size:,}: {run.wall_seconds:.1f} s, {run.rate_wall:,.0f} instances/s"
            f" (ingest {run.rate:,.0f}/s), client {run.client_mb:.0f} MB",
            flush=True,
        )
        if config.executor == "local" and config.database == "postgresql":
            with_analyze(run, url, args.repeat)
        elif config.executor == "local":
            run.queries = query_timings(url, args.repeat, in_process=True)
        elif ("pg-local", size) in results.runs:
            same_answers(results, config, size, url)
        if run.queries:
            series = run.queries.get(SERIES_QUERY)
            if series is not None:
                print(f"  cohort query p50/p95 {series.p50:.1f}/{series.p95:.1f} ms", flush=True)
        compare_answers(results, size)
        dbs.drop(config, size)


def with_analyze(run: Ingest, url: str, repeat: int) -> None:
    """PostgreSQL: five runs per query as the ingest left the database, VACUUM ANALYZE,
    then the timings."""
    from imaging_biobank.db.engine import make_engine

    engine = make_engine(url)
    before: dict[str, float] = {}
    with engine.connect() as conn:
        for name, call in queries():
            runs = []
            for _ in range(5):
                start = time.perf_counter()
                call(conn)
                runs.append((time.perf_counter() - start) * 1000)
            before[name] = statistics.median(runs)
    engine.dispose()
    run.analyze_seconds = vacuum_analyze(url)
    run.queries = query_timings(url, repeat, in_process=False)
    for name, timing in run.queries.items():
        timing.before_analyze_p50 = before[name]


def same_answers(results: Results, config: Config, size: int, url: str) -> None:
    """The database a Dask run wrote must answer as the local run's did."""
    local = results.runs["pg-local", size].queries
    for name, answer in answers(url).items():
        if name in local and local[name].answer != answer:
            note = f"{config.key} at {size:,} answers {name!r} unlike pg-local"
            results.notes.append(note)
            print(f"!! {note}", flush=True)


def compare_answers(results: Results, size: int) -> None:
    """SQLite and PostgreSQL, given the same files, must answer alike."""
    a, b = results.runs.get(("sqlite-local", size)), results.runs.get(("pg-local", size))
    if a is None or b is None or not a.queries or not b.queries:
        return
    for name, timing in a.queries.items():
        other = b.queries.get(name)
        if other is not None and other.answer != timing.answer:
            note = f"SQLite and PostgreSQL answer {name!r} differently at {size:,}"
            if note not in results.notes:
                results.notes.append(note)
                print(f"!! {note}", flush=True)


if __name__ == "__main__":
    main()
