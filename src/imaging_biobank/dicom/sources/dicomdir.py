"""DICOMDIR media: the files its directory records reference."""

from __future__ import annotations

import os
from collections.abc import Iterator

from imaging_biobank.dicom.sources import FileItem, Rejected, SourceItem

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"


def is_dicomdir(path: str) -> bool:
    """A DICOMDIR by name, or by its Media Storage Directory SOP class in the file meta."""
    if os.path.basename(path).upper() == "DICOMDIR":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head[128:132] == b"DICM" and MEDIA_STORAGE_DIRECTORY.encode() in head


def expand_dicomdir(path: str) -> Iterator[SourceItem]:
    """The instance files a DICOMDIR references, relative to its folder."""
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        records = ds.DirectoryRecordSequence
    except Exception as error:  # a broken DICOMDIR is reported, not fatal
        yield Rejected(path, f"cannot read DICOMDIR: {error}")
        return
    base = os.path.dirname(path)
    for record in records:
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        target = os.path.join(base, *parts)
        if os.path.isfile(target):
            yield FileItem(target)
        else:
            yield Rejected(target, "cannot read: referenced by DICOMDIR but missing")
