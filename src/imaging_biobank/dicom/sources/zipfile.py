"""Members of ZIP archives (read by the workers; one open archive per worker)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from functools import lru_cache

from imaging_biobank.dicom.sources import Rejected, Skipped, SourceItem, ZipMember

IGNORED = ("__MACOSX/",)


def expand_zip(archive: str) -> Iterator[SourceItem]:
    """The member files of an archive, in archive order."""
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        yield Rejected(archive, f"cannot read archive: {error}")
        return
    for info in infos:
        if info.is_dir() or info.filename.startswith(IGNORED):
            continue
        if info.filename.rsplit("/", 1)[-1].upper() == "DICOMDIR":
            yield Skipped(f"{archive}!/{info.filename}", "DICOMDIR (a media index)")
            continue
        yield ZipMember(archive, info.filename)


@lru_cache(maxsize=8)
def _open(archive: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(archive)


def read_member(item: ZipMember) -> bytes:
    """The bytes of one member (the archive stays open for the next ones)."""
    return _open(item.archive).read(item.member)
