"""What a worker process does: read headers into records, pseudonymise the donor.

The donor's source identifier is replaced by its keyed pseudonym here, inside the worker,
so no patient identifier travels to the writer or the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.dicom.read import Parser, read_bytes, read_path
from imaging_biobank.dicom.record import HeaderError, InstanceRecord, NotAnInstanceError
from imaging_biobank.dicom.sources import FileItem, Parsed, Rejected, Skipped, WorkItem
from imaging_biobank.dicom.sources.zipfile import read_member

Result = Parsed | Rejected | Skipped


@dataclass
class WorkerState:
    parser: Parser
    pseudonymiser: Pseudonymiser


_state: WorkerState | None = None


def init_worker(parser: Parser, key: bytes) -> None:
    """Process initialiser: the parser to use and the pseudonymisation key."""
    global _state
    _state = WorkerState(parser, Pseudonymiser(key))


def pseudonymise(record: InstanceRecord, pseudonymiser: Pseudonymiser) -> InstanceRecord:
    """Replace the donor's source identifier by its pseudonym (a study without PatientID
    is a donor of its own)."""
    source = f"study:{record.donor}" if record.donor_from_study else record.donor
    record.donor = pseudonymiser.donor(source)
    return record


def parse_item(item: WorkItem, parser: Parser, pseudonymiser: Pseudonymiser) -> Result:
    """One item to a record, or the reason it cannot be one."""
    try:
        if isinstance(item, FileItem):
            record = read_path(item.path, parser)
        else:
            record = read_bytes(read_member(item), item.location, parser)
    except NotAnInstanceError as error:
        return Skipped(item.location, str(error))
    except HeaderError as error:
        return Rejected(item.location, str(error))
    except OSError as error:
        return Rejected(item.location, f"cannot read: {error}")
    except Exception as error:  # a parser bug must not stop the run: report the file
        return Rejected(item.location, f"cannot parse: {type(error).__name__}: {error}")
    record = pseudonymise(record, pseudonymiser)
    record.content_hash()  # computed here, in parallel, not in the writer
    return Parsed(record)


def parse_chunk(items: Sequence[WorkItem], parser: Parser | None = None) -> list[Result]:
    """A chunk of items, in order (``parser`` overrides the worker's, e.g. after a crash)."""
    assert _state is not None, "init_worker was not called"
    chosen = parser or _state.parser
    return [parse_item(item, chosen, _state.pseudonymiser) for item in items]
