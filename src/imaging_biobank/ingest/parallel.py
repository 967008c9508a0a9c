"""Parsing in worker processes: items in, results out in the order the items came.

Work items (files, archive members) go to the workers in chunks and come back in the order
they were sent, so a run is repeatable (the first of two files with one SOP Instance UID is
always the same). Items that need no worker (records from a PACS, the sources' own
reports) pass through in their place. If a worker process dies (a parser crash), the pool
is rebuilt and the chunks it held are parsed again with pydicom, the reference parser,
which cannot crash the process.

Nothing here touches the database, so parsing can start first: ``prime`` submits many
chunks at once, and the workers read headers while the caller imports SQLAlchemy and opens
the database (about 0.3 s that the workers would otherwise wait).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.dicom.read import Parser
from imaging_biobank.ingest.sources import FileItem, Parsed, SourceItem, WorkItem, ZipMember
from imaging_biobank.ingest.worker import Result, init_worker, parse_chunk, pseudonymise

# chunks submitted before the first result is asked for, when the caller primes
PRIMED_CHUNKS = 64


@dataclass(frozen=True)
class IngestOptions:
    """How to run: parallelism, parser, batch sizes, what equipment identity to keep."""

    workers: int = os.cpu_count() or 1
    parser: Parser = "auto"
    batch_size: int = 2000
    chunk_size: int = 64
    retain_device_identity: bool = False


def _batches(items: Iterable[SourceItem], size: int) -> Iterator[list[WorkItem] | Result]:
    """Work items in chunks of ``size``, and each item that needs no worker on its own, in
    the order the items come."""
    chunk: list[WorkItem] = []
    for item in items:
        if isinstance(item, FileItem | ZipMember):
            chunk.append(item)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        else:
            if chunk:
                yield chunk
                chunk = []
            yield item
    if chunk:
        yield chunk


class Parsing:
    """The results of parsing ``items``: one per item, in order, donors pseudonymised."""

    def __init__(self, items: Iterable[SourceItem], options: IngestOptions, key: bytes):
        self.options = options
        self.key = key
        self._pseudonymiser = Pseudonymiser(key)
        self._batches = _batches(items, options.chunk_size)
        self._window = max(2, options.workers * 4)
        self._pending: deque[tuple[list[WorkItem] | None, Future[list[Result]]]] = deque()
        self._executor: ProcessPoolExecutor | None = None
        if options.workers > 0:
            self._executor = self._new_executor()
        else:
            init_worker(options.parser, key)

    def prime(self, chunks: int = PRIMED_CHUNKS) -> Parsing:
        """Submit up to ``chunks`` chunks now, before anyone waits for a result."""
        if self._executor is not None:
            self._fill(chunks)
        return self

    def results(self) -> Iterator[list[Result]]:
        """Lists of results, in the order of the items."""
        if self._executor is None:  # in this process, one chunk at a time
            for batch in self._batches:
                yield parse_chunk(batch) if isinstance(batch, list) else [self._direct(batch)]
            return
        while True:
            self._fill(self._window)
            if not self._pending:
                return
            yield self._next()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.options.workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=init_worker,
            initargs=(self.options.parser, self.key),
        )

    def _direct(self, item: Result) -> Result:
        """An item that needs no worker; a PACS record's donor is pseudonymised here."""
        if isinstance(item, Parsed):
            return Parsed(pseudonymise(item.record, self._pseudonymiser))
        return item

    def _fill(self, window: int) -> None:
        assert self._executor is not None
        while len(self._pending) < window:
            batch = next(self._batches, None)
            if batch is None:
                return
            if isinstance(batch, list):
                self._pending.append((batch, self._executor.submit(parse_chunk, batch)))
            else:
                done: Future[list[Result]] = Future()
                done.set_result([self._direct(batch)])
                self._pending.append((None, done))

    def _next(self) -> list[Result]:
        chunk, future = self._pending.popleft()
        try:
            return future.result()
        except BrokenProcessPool:
            # a worker died (a native parser crash): start again with the reference parser
            # for this chunk and every chunk that was in flight with it
            assert self._executor is not None and chunk is not None
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = executor = self._new_executor()
            for i, (other, _) in enumerate(self._pending):
                if other is not None:
                    self._pending[i] = (other, executor.submit(parse_chunk, other, "pydicom"))
            return executor.submit(parse_chunk, chunk, "pydicom").result()
