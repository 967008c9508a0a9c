"""Parsing on a Dask distributed cluster (``ingest --executor dask [--scheduler URL]``).

The parse step is the local one (``worker.parse_item``), run as Dask tasks over partitions
of the items: workers read the headers where the files are (the paths must be the same on
every worker: a shared file system) and pseudonymise the donors there, so only records
travel back. The results stream to this process, in the order of the items, and go to the
one writer as in a local run (COPY batches on PostgreSQL). At most ``window`` partitions
are in flight, so the client's memory does not grow with the number of files.

Each run registers a worker plugin under its own name that gives every worker, present or
joining later, the run's parser, pseudonymisation key and de-identification options; the
plugin is removed at the end. The key therefore travels to the scheduler and the workers:
on a network you do not trust, run the cluster with TLS (``tls://`` and Dask's security
settings). imaging-biobank must be installed on the workers.

A worker that dies has its partitions run again by the scheduler on another worker; a
partition whose workers keep dying (the scheduler gives up: ``KilledWorker``, e.g. a crash
in the native parser) is parsed again here with pydicom, as the local pool does. A killed
client loses nothing committed: the next run continues, as after a local run.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import dask
from distributed import Client, Future, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.scheduler import KilledWorker

from imaging_biobank.deid.options import DeidOptions
from imaging_biobank.dicom.read import Parser
from imaging_biobank.dicom.sources import SourceItem, WorkItem
from imaging_biobank.ingest.parallel import (
    ExecutorError,
    IngestOptions,
    ParsedItems,
    needs_worker,
)
from imaging_biobank.ingest.worker import Result, parse_partition
from imaging_biobank.parallel import PRIMED_CHUNKS, chunks

if TYPE_CHECKING:
    from distributed import Worker

# files per Dask task: big enough that the scheduler's cost per task (about a millisecond)
# is small beside the parsing (a few milliseconds per file)
PARTITION_SIZE = 256


# a partition in flight (its items, its future) or a passed-through item's result
Pending = tuple[list[WorkItem] | None, "Future[list[Result]] | list[Result]"]


class DaskError(ExecutorError):
    """The cluster cannot be reached or set up."""


class RunSetup(WorkerPlugin):
    """Gives each worker the run's parser, key and de-identification options."""

    def __init__(self, run: str, parser: Parser, key: bytes, deid: DeidOptions | None):
        self.run, self.parser, self.key, self.deid = run, parser, key, deid

    def setup(self, worker: Worker) -> None:
        from imaging_biobank.ingest import worker as ingest_worker

        ingest_worker.start_run(self.run, self.parser, self.key, self.deid)

    def teardown(self, worker: Worker) -> None:
        from imaging_biobank.ingest import worker as ingest_worker

        ingest_worker.end_run(self.run)


# messages each of this process's Dask connections keeps for debugging (default 1,000): a
# message carries a partition (256 paths, ~44 kB), so with the default the client and an
# in-process scheduler grew by ~100 MB before the logs filled (measured: 30 MB per 10^5 files)
MESSAGE_LOG_LENGTH = 8


def connect(scheduler: str | None, workers: int) -> tuple[Client, LocalCluster | None]:
    """A client of the cluster at ``scheduler``, or of a new local cluster of ``workers``
    worker processes (one thread each: the parsing holds the GIL)."""
    dask.config.set({"distributed.admin.low-level-log-length": MESSAGE_LOG_LENGTH})
    try:
        if scheduler:
            return Client(scheduler, timeout="30s"), None
        cluster = LocalCluster(
            n_workers=max(1, workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        return Client(cluster), cluster
    except (OSError, TimeoutError) as error:
        raise DaskError(f"cannot reach the Dask scheduler {scheduler}: {error}") from None


class DaskParsing(ParsedItems):
    """Items parsed by the workers of a Dask cluster, results in order."""

    def __init__(
        self,
        items: Iterable[SourceItem],
        options: IngestOptions,
        key: bytes,
        scheduler: str | None = None,
        partition_size: int = PARTITION_SIZE,
    ):
        super().__init__(options, key)
        self._batches = chunks(items, partition_size, needs_worker)
        self._client, self._cluster = connect(scheduler, options.workers)
        self.run = f"imaging-biobank-ingest-{uuid.uuid4().hex}"
        self._pending: deque[Pending] = deque()
        self._submitted = 0
        try:
            self._client.register_plugin(
                RunSetup(self.run, options.parser, key, options.deid), name=self.run
            )
        except Exception:
            self.close()
            raise
        self.threads = sum(self._client.nthreads().values())
        self._window = max(4, 4 * self.threads)

    def prime(self, chunks: int = PRIMED_CHUNKS) -> DaskParsing:
        self._fill(min(chunks, self._window))
        return self

    def results(self) -> Iterator[list[Result]]:
        while True:
            self._fill(self._window)
            if not self._pending:
                return
            chunk, outcome = self._pending.popleft()
            if isinstance(outcome, list):
                yield outcome
                continue
            try:
                yield self._result(chunk, outcome)
            finally:
                outcome.release()

    def _result(self, chunk: list[WorkItem] | None, outcome: Future[list[Result]]) -> list[Result]:
        try:
            return outcome.result()
        except KilledWorker:
            # the workers that ran it kept dying: parse it with the reference parser
            assert chunk is not None
            return self._client.submit(
                parse_partition, self.run, chunk, "pydicom", pure=False
            ).result()
        except Exception as error:  # not a file's fault (those are reported): the cluster's
            raise DaskError(
                f"a Dask task failed on a worker: {type(error).__name__}: {error} (every"
                " worker needs imaging-biobank installed and the files at the same paths);"
                " what was committed stays: run again to continue"
            ) from error

    def close(self) -> None:
        for _, outcome in self._pending:
            if isinstance(outcome, Future):
                outcome.cancel()
        self._pending.clear()
        client, cluster = self._client, self._cluster
        if client.status == "running":
            with contextlib.suppress(Exception):  # workers gone: nothing left to tidy
                client.unregister_worker_plugin(self.run)
        client.close()
        if cluster is not None:
            cluster.close()

    def _fill(self, window: int) -> None:
        while len(self._pending) < window:
            batch = next(self._batches, None)
            if batch is None:
                return
            if isinstance(batch, list):
                self._submitted += 1
                future = self._client.submit(
                    parse_partition,
                    self.run,
                    batch,
                    key=f"parse-{self.run}-{self._submitted}",
                    pure=False,
                )
                self._pending.append((batch, future))
            else:
                self._pending.append((None, [self._direct(batch)]))
