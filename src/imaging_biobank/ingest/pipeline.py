"""Ingestion: sources -> worker processes (parse headers) -> one writer (batched upserts).

The parsing side (``ingest.parallel``) keeps the items' order; this side writes what comes
back, in batches, one transaction per batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from imaging_biobank.db.lookup import CollectionLookupError, find_collection
from imaging_biobank.deid.audit import AuditRecord
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.dicom.record import InstanceRecord
from imaging_biobank.dicom.sources import Parsed, Quarantined, Rejected, Skipped, SourceItem
from imaging_biobank.ingest.parallel import IngestOptions, ParsedItems, Parsing
from imaging_biobank.ingest.writer import IngestSummary, Report, Writer

__all__ = ["IngestError", "IngestOptions", "Parsing", "image_collection_id", "ingest"]

Progress = Callable[[int, int | None], None]  # (items done, items in all when known)


class IngestError(ValueError):
    """The run cannot start (unknown collection, wrong kind); nothing was written."""


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


def ingest(
    engine: Engine,
    collection: str,
    items: Iterable[SourceItem] | ParsedItems,
    pseudonymiser: Pseudonymiser,
    options: IngestOptions,
    report: Report,
    progress: Progress | None = None,
) -> IngestSummary:
    """Ingest ``items`` into the image collection ``collection``. ``items`` may be a
    ``Parsing`` (local processes) or a ``DaskParsing`` already started (and primed) on
    them, with the same key and options; it is closed here."""
    parsing = (
        items if isinstance(items, ParsedItems) else Parsing(items, options, pseudonymiser.key)
    )
    try:
        writer = Writer(
            engine,
            image_collection_id(engine, collection),
            report,
            batch_size=options.batch_size,
            retain_device_identity=options.retain_device_identity,
        )
        summary = writer.summary
        for results in parsing.results():
            for result in results:
                summary.items += 1
                if isinstance(result, Parsed):
                    count_dirty(summary, result.record)
                    writer.add(result.record)
                elif isinstance(result, Rejected):
                    summary.rejected += 1
                    report("rejected", result.location, result.reason)
                elif isinstance(result, Skipped):
                    summary.skipped += 1
                    report("skipped", result.location, result.reason)
                elif isinstance(result, Quarantined):
                    summary.quarantined += 1
                    report("quarantined", result.location, result.reason)
            if progress:
                progress(summary.items, None)
        writer.finish()
    finally:
        parsing.close()
    if progress:
        progress(summary.items, summary.items)
    return summary


def count_dirty(summary: IngestSummary, record: InstanceRecord) -> None:
    """Count the dirty values the record was cleaned of (for the ingest summary)."""
    summary.nul_bytes_stripped += record.nul_values
    summary.ages_converted += record.patient_age_years is not None
    summary.ages_unreadable += record.age_unreadable


def record_deidentification(engine: Engine, collection: str, audit: AuditRecord) -> None:
    """Store the audit record of an ``ingest --deidentify`` run (``deidentification_run``)."""
    from imaging_biobank.model.audit import DeidentificationRun

    fields = audit.as_dict()
    for name in ("started_at", "finished_at"):
        fields[name] = dt.datetime.fromisoformat(fields[name])
    row = DeidentificationRun(**fields, collection_id=image_collection_id(engine, collection))
    with Session(engine) as session, session.begin():
        session.add(row)
