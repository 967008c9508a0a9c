"""Where instances come from. File sources yield work items that worker processes parse;
PACS sources yield records parsed where the data arrives. Each yields ``Rejected`` for what
it cannot take, with where and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from imaging_biobank.dicom.record import InstanceRecord


@dataclass(frozen=True, slots=True)
class FileItem:
    """A file on disk."""

    path: str

    @property
    def location(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class ZipMember:
    """A member of a ZIP archive."""

    archive: str
    member: str

    @property
    def location(self) -> str:
        return f"{self.archive}!/{self.member}"


@dataclass(frozen=True, slots=True)
class Parsed:
    """A record already read (PACS sources), or returned by a worker. A PACS source asked
    for them adds ``header``: the object's header as a data set without file meta, Explicit
    VR Little Endian, pixel data reduced to a two-byte marker (to de-identify it)."""

    record: InstanceRecord
    header: bytes | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """Something that could not be ingested: where and why."""

    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something deliberately not ingested (a DICOMDIR index): where and why."""

    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class Quarantined:
    """An object held back by policy (possible burned-in text): where and why."""

    location: str
    reason: str


WorkItem = FileItem | ZipMember
SourceItem = FileItem | ZipMember | Parsed | Rejected | Skipped | Quarantined
