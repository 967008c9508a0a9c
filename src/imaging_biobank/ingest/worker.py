"""What a worker process does: read headers into records, pseudonymise the donor.

The donor's source identifier is replaced by its keyed pseudonym here, inside the worker,
so no patient identifier travels to the writer or the database. With ``--deidentify`` the
worker first de-identifies the object (PS3.15, header only) and reads the record from
that: nothing the profile removes reaches the writer, not even the file's path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from imaging_biobank.deid.options import DeidOptions
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.deid.rewrite import Deidentifier
from imaging_biobank.deid.values import clean_text, identifying_tokens
from imaging_biobank.dicom.read import Parser, read_bytes, read_path
from imaging_biobank.dicom.record import HeaderError, InstanceRecord, NotAnInstanceError
from imaging_biobank.dicom.sources import (
    FileItem,
    Parsed,
    Quarantined,
    Rejected,
    Skipped,
    WorkItem,
)
from imaging_biobank.dicom.sources.zipfile import read_member

Result = Parsed | Rejected | Skipped | Quarantined
_PSEUDONYM = re.compile(r"[0-9a-f]{32}")  # what Pseudonymiser.donor gives


@dataclass
class WorkerState:
    parser: Parser
    pseudonymiser: Pseudonymiser
    deidentifier: Deidentifier | None = None


_state: WorkerState | None = None
# the state of each ingest a Dask worker takes part in (a cluster may serve several at once)
_runs: dict[str, WorkerState] = {}


def worker_state(parser: Parser, key: bytes, deid: DeidOptions | None = None) -> WorkerState:
    """The parser, the pseudonymisation key and, to ingest the de-identified view, the
    de-identifier."""
    pseudonymiser = Pseudonymiser(key)
    deidentifier = None
    if deid is not None:
        from imaging_biobank import __version__

        deidentifier = Deidentifier(pseudonymiser, deid, __version__)
    return WorkerState(parser, pseudonymiser, deidentifier)


def init_worker(parser: Parser, key: bytes, deid: DeidOptions | None = None) -> None:
    """Process initialiser of the local pool's workers."""
    global _state
    _state = worker_state(parser, key, deid)


def start_run(run: str, parser: Parser, key: bytes, deid: DeidOptions | None = None) -> None:
    """Set a Dask worker up for the ingest ``run`` (its worker plugin calls this)."""
    _runs[run] = worker_state(parser, key, deid)


def end_run(run: str) -> None:
    _runs.pop(run, None)


def pseudonymise(record: InstanceRecord, pseudonymiser: Pseudonymiser) -> InstanceRecord:
    """Replace the donor's source identifier by its pseudonym (a study without PatientID
    is a donor of its own). An object our de-identifier wrote under the same key carries
    the pseudonym already."""
    if (
        record.pseudonymised_with == pseudonymiser.fingerprint
        and not record.donor_from_study
        and _PSEUDONYM.fullmatch(record.donor or "")  # the mark alone proves nothing
    ):
        return record
    source = f"study:{record.donor}" if record.donor_from_study else record.donor
    if not record.donor_from_study:
        record.study_description = _without_identifier(record.study_description, record.donor)
        record.series_description = _without_identifier(record.series_description, record.donor)
    record.donor = pseudonymiser.donor(source)
    return record


def _without_identifier(description: str | None, patient_id: str) -> str | None:
    """A study or series description with the patient's ID taken out (real archives name
    series after it: ``IBSI_1_STS_001_CT``), as PS3.15's Clean Descriptors option does."""
    if not description:
        return description
    tokens, substrings = _identifying(patient_id)
    return clean_text(description, tokens, substrings, strict=False) or None


@lru_cache(maxsize=256)
def _identifying(patient_id: str) -> tuple[set[str], list[str]]:
    """The words of a patient ID to take out of descriptions: computed once per patient,
    not per instance (a worker sees a series' instances one after another)."""
    return identifying_tokens([], [patient_id])


def _bytes(item: WorkItem) -> bytes:
    if isinstance(item, FileItem):
        with open(item.path, "rb") as f:
            return f.read()
    return read_member(item)


def deidentified_record(
    data: bytes, parser: Parser, deidentifier: Deidentifier, location: str
) -> Result:
    """The record of an object's de-identified view (its location: the clean path, no
    source name); quarantined where the pixels may show text."""
    outcome = deidentifier.file(data, header_only=True)
    if outcome.quarantined:
        return Quarantined(location, outcome.quarantined)
    assert outcome.data is not None
    record = read_bytes(outcome.data, outcome.clean_path, parser)
    record.donor = outcome.donor
    record.file_size = len(data)
    record.content_hash()
    return Parsed(record)


def parse_item(item: WorkItem, parser: Parser, state: WorkerState) -> Result:
    """One item to a record, or the reason it cannot be one."""
    try:
        if state.deidentifier is not None:
            return deidentified_record(_bytes(item), parser, state.deidentifier, item.location)
        if isinstance(item, FileItem):
            record = read_path(item.path, parser)
        else:
            record = read_bytes(read_member(item), item.location, parser)
    except NotAnInstanceError as error:
        return Skipped(item.location, str(error))
    except HeaderError as error:
        return Rejected(item.location, str(error))
    except OSError as error:
        return Rejected(item.location, f"cannot read: {error.strerror or error}")
    except Exception as error:  # a parser bug must not stop the run: report the file
        return Rejected(item.location, f"cannot parse: {type(error).__name__}: {error}")
    record = pseudonymise(record, state.pseudonymiser)
    record.content_hash()  # computed here, in parallel, not in the writer
    return Parsed(record)


def parse_chunk(items: Sequence[WorkItem], parser: Parser | None = None) -> list[Result]:
    """A chunk of items, in order (``parser`` overrides the worker's, e.g. after a crash)."""
    assert _state is not None, "init_worker was not called"
    chosen = parser or _state.parser
    return [parse_item(item, chosen, _state) for item in items]


def parse_partition(
    run: str, items: Sequence[WorkItem], parser: Parser | None = None
) -> list[Result]:
    """A Dask task: a partition of the ingest ``run``'s items, in order."""
    state = _runs.get(run)
    if state is None:
        raise RuntimeError(f"this Dask worker was not set up for ingest {run}")
    chosen = parser or state.parser
    return [parse_item(item, chosen, state) for item in items]
