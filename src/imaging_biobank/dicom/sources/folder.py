"""Files and folders (recursive, in a stable order), ZIP archives and DICOMDIR media."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from imaging_biobank.dicom.sources import FileItem, Rejected, Skipped, SourceItem
from imaging_biobank.dicom.sources.dicomdir import expand_dicomdir, is_dicomdir
from imaging_biobank.dicom.sources.zipfile import expand_zip

DICOMDIR_NOTE = "DICOMDIR (a media index, not an instance); its files are read themselves"
# .DS_Store, .git, our own .imaging-biobank records and half-written .deid-*.tmp files
HIDDEN_NOTE = "hidden (the name starts with a dot): not walked into"


def _file(path: str, walked: bool) -> Iterator[SourceItem]:
    """One file: a walk decides by name only (no extra open per file); a file given
    directly is looked into."""
    if walked:
        name = os.path.basename(path)
        if name.lower().endswith(".zip"):
            yield from expand_zip(path)
        elif name.upper() == "DICOMDIR":  # the walk reaches the files it indexes anyway
            yield Skipped(path, DICOMDIR_NOTE)
        else:
            yield FileItem(path)
    elif zipfile.is_zipfile(path):
        yield from expand_zip(path)
    elif is_dicomdir(path):
        yield from expand_dicomdir(path)
    else:
        yield FileItem(path)


def expand_paths(paths: Iterable[str | Path]) -> Iterator[SourceItem]:
    """Every instance the paths hold: files, folders walked recursively in sorted order
    (so runs are repeatable), ``.zip`` archives, DICOMDIR media (given directly)."""
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            yield from _walk(path)
        elif os.path.isfile(path):
            yield from _file(path, walked=False)
        elif os.path.lexists(path):
            yield Rejected(path, "cannot read: not a regular file or folder")
        else:
            yield Rejected(path, "cannot read: no such file or folder")


def _walk(root: str) -> Iterator[SourceItem]:
    errors: list[OSError] = []
    for folder, dirs, files in os.walk(root, onerror=errors.append):
        for name in sorted(d for d in dirs if d.startswith(".")):
            yield Skipped(os.path.join(folder, name), HIDDEN_NOTE)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name.startswith("."):
                yield Skipped(path, HIDDEN_NOTE)
            elif os.path.isfile(path):
                yield from _file(path, walked=True)
        while errors:
            error = errors.pop(0)
            yield Rejected(str(error.filename), f"cannot read: {error.strerror}")
    while errors:
        error = errors.pop(0)
        yield Rejected(str(error.filename), f"cannot read: {error.strerror}")


def count_items(paths: Iterable[str | Path]) -> int:
    """How many items ``expand_paths`` will yield, roughly (files and archive members),
    without keeping them: for a progress bar's total."""
    total = 0
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            for _folder, _dirs, files in os.walk(path):
                total += len(files)
        else:
            total += 1
    return total
