"""De-identify a tree of DICOM files into another: ``imaging-biobank deid IN OUT``.

Workers read, de-identify and write (atomically: a temporary name, then a rename, so a
stopped run leaves no half file and a new run writes the same names again: no
duplicates). The output layout is either clean, ``<donor>/<study>/<series>/<instance>.dcm``
with the new UIDs, or the input's own relative paths (whose names are copied as they are).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from imaging_biobank.deid.options import DeidOptions
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.deid.rewrite import Deidentifier, Identity
from imaging_biobank.dicom.record import HeaderError
from imaging_biobank.dicom.sources import (
    FileItem,
    Parsed,
    Quarantined,
    Rejected,
    Skipped,
    SourceItem,
    WorkItem,
    ZipMember,
)
from imaging_biobank.dicom.sources.zipfile import read_member
from imaging_biobank.parallel import OrderedPool, chunks

Layout = Literal["clean", "keep"]
LAYOUTS: tuple[Layout, ...] = ("clean", "keep")


@dataclass(frozen=True, slots=True)
class Written:
    """One object de-identified into ``output`` (relative to OUT)."""

    location: str
    output: str
    changed: bool  # False: the same bytes were there already
    donor: str
    study: str
    series: str
    identity: Identity | None  # only when a re-identification table is kept
    item: WorkItem  # to write it again if a later item of the run overwrote it


Outcome = Written | Rejected | Skipped | Quarantined


@dataclass
class DeidSummary:
    items: int = 0
    written: int = 0
    unchanged: int = 0
    quarantined: int = 0
    rejected: int = 0
    skipped: int = 0
    donors: set[str] = field(default_factory=set)
    studies: set[str] = field(default_factory=set)
    series: set[str] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        return {
            "items": self.items,
            "written": self.written,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "donors": len(self.donors),
            "studies": len(self.studies),
            "series": len(self.series),
        }


@dataclass
class _Worker:
    deidentifier: Deidentifier
    out: Path
    layout: Layout
    roots: tuple[str, ...]
    identities: bool


_worker: _Worker | None = None


def _make_worker(
    key: bytes,
    options: DeidOptions,
    version: str,
    out: str,
    layout: Layout,
    roots: tuple[str, ...],
    identities: bool,
) -> _Worker:
    deidentifier = Deidentifier(Pseudonymiser(key), options, version)
    return _Worker(deidentifier, Path(out), layout, roots, identities)


def init_worker(*args: Any) -> None:
    """Process initialiser: this process's de-identifier and where it writes."""
    global _worker
    _worker = _make_worker(*args)


def kept_path(item: WorkItem, roots: tuple[str, ...]) -> str:
    """The item's path relative to the input it came from (``keep`` layout)."""
    if isinstance(item, ZipMember):
        return os.path.join(Path(item.archive).stem, item.member)
    best = ""
    for root in roots:
        root = os.path.normpath(root)
        inside = item.path == root or item.path.startswith(root + os.sep)
        if inside and len(root) > len(best):
            best = root
    if not best or item.path == best:
        return os.path.basename(item.path)
    return os.path.relpath(item.path, best)


def _write(target: Path, data: bytes) -> bool:
    """Write ``data`` to ``target`` atomically; ``False`` if it held these bytes already."""
    if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".deid-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def deidentify_item(item: WorkItem) -> Outcome:
    assert _worker is not None, "init_worker was not called"
    return _deidentify(_worker, item)


def _deidentify(w: _Worker, item: WorkItem) -> Outcome:
    try:
        if isinstance(item, FileItem):
            with open(item.path, "rb") as f:
                data = f.read()
        else:
            data = read_member(item)
        outcome = w.deidentifier.file(data)
    except HeaderError as error:
        return Rejected(item.location, str(error))
    except OSError as error:
        return Rejected(item.location, f"cannot read: {error.strerror or error}")
    except Exception as error:  # a value we cannot rewrite: this file is not written
        return Rejected(item.location, f"cannot de-identify: {type(error).__name__}: {error}")
    if outcome.quarantined:
        return Quarantined(item.location, outcome.quarantined)
    assert outcome.data is not None
    output = outcome.clean_path if w.layout == "clean" else kept_path(item, w.roots)
    try:
        changed = _write(w.out / output, outcome.data)
    except OSError as error:
        return Rejected(item.location, f"cannot write {output}: {error.strerror or error}")
    return Written(
        location=item.location,
        output=output,
        changed=changed,
        donor=outcome.donor,
        study=outcome.study_uid,
        series=outcome.series_uid,
        identity=outcome.identity if w.identities else None,
        item=item,
    )


def deidentify_chunk(items: list[WorkItem]) -> list[Outcome]:
    return [deidentify_item(item) for item in items]


def _direct(item: Outcome) -> Outcome:
    return item


def _needs_worker(item: SourceItem) -> bool:
    return isinstance(item, FileItem | ZipMember)


def _outcomes(items: Iterable[SourceItem]) -> Iterator[list[WorkItem] | Outcome]:
    for batch in chunks(items, 32, _needs_worker):
        if isinstance(batch, Parsed):  # file sources never give records
            raise TypeError("de-identification takes files, not records")
        yield batch


def _first_wins(
    seen: dict[str, Written], result: Written, layout: Layout, initargs: tuple[Any, ...]
) -> Outcome:
    """``result``, or what it is when an earlier item of the run had its output name."""
    earlier = seen.setdefault(result.output, result)
    if earlier is result:
        return result
    # the first one's bytes again, whoever wrote last (this run's settings, here)
    _deidentify(_make_worker(*initargs), earlier.item)
    if layout == "clean":
        return Skipped(
            result.location,
            f"duplicate: the same SOP Instance UID as {earlier.location} (written once)",
        )
    return Rejected(
        result.location,
        f"{result.output} was written from {earlier.location} in this run"
        " (two inputs, one output name: use --layout clean)",
    )


def deidentify_tree(
    items: Iterable[SourceItem],
    out: Path,
    *,
    key: bytes,
    options: DeidOptions,
    version: str,
    layout: Layout,
    roots: tuple[str, ...],
    workers: int,
    on_result: Callable[[Outcome], None],
    identities: bool = False,
) -> DeidSummary:
    """De-identify every item into ``out``; ``on_result`` sees each outcome in order.

    Two items of one run with one output name (the same SOP Instance UID in two files, or
    the same relative path under two inputs with ``keep``): the first one's output is kept
    (written again here, as a worker may have overwritten it) and the later one is skipped
    (a duplicate instance) or rejected (a ``keep`` name clash).
    """
    summary = DeidSummary()
    seen: dict[str, Written] = {}
    initargs = (key, options, version, str(out), layout, roots, identities)
    pool: OrderedPool[WorkItem, Outcome] = OrderedPool(
        _outcomes(items),
        work=deidentify_chunk,
        retry=deidentify_chunk,
        direct=_direct,
        workers=workers,
        initializer=init_worker,
        initargs=initargs,
    )
    try:
        for results in pool.results():
            for result in results:
                summary.items += 1
                if isinstance(result, Written):
                    result = _first_wins(seen, result, layout, initargs)
                if isinstance(result, Written):
                    summary.written += result.changed
                    summary.unchanged += not result.changed
                    summary.donors.add(result.donor)
                    summary.studies.add(result.study)
                    summary.series.add(result.series)
                elif isinstance(result, Rejected):
                    summary.rejected += 1
                elif isinstance(result, Skipped):
                    summary.skipped += 1
                elif isinstance(result, Quarantined):
                    summary.quarantined += 1
                on_result(result)
    finally:
        pool.close()
    return summary
