"""Ingestion: sources -> worker processes (parse headers) -> one writer (batched upserts).

Work items go to the workers in chunks and come back in the order they were sent, so a
run is repeatable (the first of two files with one SOP Instance UID is always the same).
If a worker process dies (a parser crash), its pool is rebuilt and the chunks it held are
parsed again with pydicom, the reference parser, which cannot crash the process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from sqlalchemy import Engine

from imaging_biobank.db.lookup import CollectionLookupError, find_collection
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.dicom.read import Parser
from imaging_biobank.ingest.sources import (
    FileItem,
    Parsed,
    Rejected,
    Skipped,
    SourceItem,
    WorkItem,
    ZipMember,
)
from imaging_biobank.ingest.worker import Result, init_worker, parse_chunk, pseudonymise
from imaging_biobank.ingest.writer import IngestSummary, Report, Writer

Progress = Callable[[int, int | None], None]  # (items done, items in all when known)


class IngestError(ValueError):
    """The run cannot start (unknown collection, wrong kind); nothing was written."""


@dataclass(frozen=True)
class IngestOptions:
    """How to run: parallelism, parser, batch sizes, what equipment identity to keep."""

    workers: int = os.cpu_count() or 1
    parser: Parser = "auto"
    batch_size: int = 2000
    chunk_size: int = 64
    retain_device_identity: bool = False


def image_collection_id(engine: Engine, identifier: str) -> int:
    """The id of the image collection ``identifier`` (full id or unique short name);
    ``IngestError`` otherwise."""
    with engine.connect() as conn:
        try:
            found = find_collection(conn, identifier, kind="image")
        except CollectionLookupError as error:
            raise IngestError(str(error)) from None
    if found.kind != "image":
        raise IngestError(
            f"{found.identifier} is a {found.kind} collection; images go into an image collection"
        )
    return found.id


def _chunks(
    items: Iterable[SourceItem],
    size: int,
    summary: IngestSummary,
    handle: Callable[[SourceItem], None],
) -> Iterator[list[WorkItem]]:
    """Work items in chunks; everything else is handed to ``handle`` as it comes."""
    chunk: list[WorkItem] = []
    for item in items:
        summary.items += 1
        if isinstance(item, FileItem | ZipMember):
            chunk.append(item)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        else:
            handle(item)
    if chunk:
        yield chunk


class _Pool:
    """Ordered parsing of chunks in worker processes, surviving a worker's death."""

    def __init__(self, options: IngestOptions, key: bytes):
        self.options = options
        self.key = key
        self.executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.options.workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=init_worker,
            initargs=(self.options.parser, self.key),
        )

    def map(self, chunks: Iterator[list[WorkItem]]) -> Iterator[list[Result]]:
        window = max(2, self.options.workers * 4)
        pending: deque[tuple[list[WorkItem], Future[list[Result]]]] = deque()
        for chunk in chunks:
            pending.append((chunk, self.executor.submit(parse_chunk, chunk)))
            while len(pending) >= window:
                yield self._next(pending)
        while pending:
            yield self._next(pending)

    def _next(self, pending: deque[tuple[list[WorkItem], Future[list[Result]]]]) -> list[Result]:
        chunk, future = pending.popleft()
        try:
            return future.result()
        except BrokenProcessPool:
            # a worker died (a native parser crash): start again with the reference parser
            # for this chunk and every chunk that was in flight with it
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._new()
            for i, (other, _) in enumerate(pending):
                pending[i] = (other, self.executor.submit(parse_chunk, other, "pydicom"))
            return self.executor.submit(parse_chunk, chunk, "pydicom").result()

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def ingest(
    engine: Engine,
    collection: str,
    items: Iterable[SourceItem],
    pseudonymiser: Pseudonymiser,
    options: IngestOptions,
    report: Report,
    progress: Progress | None = None,
) -> IngestSummary:
    """Ingest ``items`` into the image collection ``collection``."""
    collection_id = image_collection_id(engine, collection)
    writer = Writer(
        engine,
        collection_id,
        report,
        batch_size=options.batch_size,
        retain_device_identity=options.retain_device_identity,
    )
    summary = writer.summary
    done = 0

    def take(result: SourceItem) -> None:
        nonlocal done
        done += 1
        if isinstance(result, Parsed):
            writer.add(result.record)
        elif isinstance(result, Rejected):
            summary.rejected += 1
            report("rejected", result.location, result.reason)
        elif isinstance(result, Skipped):
            summary.skipped += 1
            report("skipped", result.location, result.reason)

    def direct(item: SourceItem) -> None:
        """Items that need no worker: records from a PACS, reports from the sources."""
        if isinstance(item, Parsed):
            item = Parsed(pseudonymise(item.record, pseudonymiser))
        take(item)
        if progress:
            progress(done, None)

    chunks = _chunks(items, options.chunk_size, summary, direct)
    if options.workers <= 0:
        init_worker(options.parser, pseudonymiser.key)
        results: Iterator[list[Result]] = (parse_chunk(chunk) for chunk in chunks)
        pool = None
    else:
        pool = _Pool(options, pseudonymiser.key)
        results = pool.map(chunks)
    try:
        for chunk_results in results:
            for result in chunk_results:
                take(result)
            if progress:
                progress(done, None)
        writer.finish()
    finally:
        if pool is not None:
            pool.close()
    if progress:
        progress(done, done)
    return summary
