"""Parsing headers in worker processes, in order, before the database is even opened.

The CLI primes the pool (``Parsing.prime``) and the workers read headers while it imports
SQLAlchemy and opens the database (about 0.3 s they would otherwise wait). A worker that
dies (a crash in the native parser) has its chunks parsed again with pydicom.
"""

from __future__ import annotations

import abc
import functools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from imaging_biobank.deid.options import DeidOptions
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.dicom.read import Parser
from imaging_biobank.dicom.record import HeaderError
from imaging_biobank.dicom.sources import (
    FileItem,
    Parsed,
    Rejected,
    SourceItem,
    WorkItem,
    ZipMember,
)
from imaging_biobank.ingest.worker import (
    Result,
    deidentified_record,
    init_worker,
    parse_chunk,
    pseudonymise,
)
from imaging_biobank.parallel import PRIMED_CHUNKS, OrderedPool, chunks


@dataclass(frozen=True)
class IngestOptions:
    """How to run: parallelism, parser, batch sizes, what equipment identity to keep."""

    workers: int = os.cpu_count() or 1
    parser: Parser = "auto"
    batch_size: int = 2000
    chunk_size: int = 64
    retain_device_identity: bool = False
    deid: DeidOptions | None = None  # ingest the de-identified view (--deidentify)


def needs_worker(item: SourceItem) -> bool:
    return isinstance(item, FileItem | ZipMember)


class ExecutorError(RuntimeError):
    """The executor failed, not a file (a cluster that cannot be reached, a task that fails
    on its workers); what was committed stays."""


class ParsedItems(abc.ABC):
    """The results of parsing items: one per item, in order, donors pseudonymised. Files
    and archive members are parsed by workers (an executor's); the items that need none
    (PACS records, the sources' own reports) pass through ``_direct`` here."""

    def __init__(self, options: IngestOptions, key: bytes):
        self.key = key
        self._pseudonymiser = Pseudonymiser(key)
        self._parser = options.parser
        self._deidentifier = None
        if options.deid is not None:  # for PACS records (files are done in the workers)
            from imaging_biobank import __version__
            from imaging_biobank.deid.rewrite import Deidentifier

            self._deidentifier = Deidentifier(self._pseudonymiser, options.deid, __version__)

    @abc.abstractmethod
    def prime(self, chunks: int = PRIMED_CHUNKS) -> ParsedItems:
        """Start parsing before the first result is asked for."""

    @abc.abstractmethod
    def results(self) -> Iterator[list[Result]]:
        """Lists of results, in the order of the items."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the workers (idempotent)."""

    def _direct(self, item: Result) -> Result:
        """An item that needs no worker; a PACS record's donor is pseudonymised here, or
        the record is read again from its de-identified header (``--deidentify``)."""
        if not isinstance(item, Parsed):
            return item
        if self._deidentifier is None:
            return Parsed(pseudonymise(item.record, self._pseudonymiser))
        location = item.record.location
        if item.header is None:
            return Rejected(location, "cannot de-identify: the source gave no header")
        try:
            return deidentified_record(item.header, self._parser, self._deidentifier, location)
        except HeaderError as error:
            return Rejected(location, str(error))
        except Exception as error:  # a value we cannot rewrite: this object is not stored
            return Rejected(location, f"cannot de-identify: {type(error).__name__}: {error}")


class Parsing(ParsedItems):
    """Items parsed by worker processes on this machine (``--executor local``)."""

    def __init__(self, items: Iterable[SourceItem], options: IngestOptions, key: bytes):
        super().__init__(options, key)
        self._pool: OrderedPool[WorkItem, Result] = OrderedPool(
            chunks(items, options.chunk_size, needs_worker),
            work=parse_chunk,
            retry=functools.partial(parse_chunk, parser="pydicom"),
            direct=self._direct,
            workers=options.workers,
            initializer=init_worker,
            initargs=(options.parser, key, options.deid),
        )

    def prime(self, chunks: int = PRIMED_CHUNKS) -> Parsing:
        self._pool.prime(chunks)
        return self

    def results(self) -> Iterator[list[Result]]:
        return self._pool.results()

    def close(self) -> None:
        self._pool.close()
