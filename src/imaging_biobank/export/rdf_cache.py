"""Built graphs kept between SPARQL queries, rebuilt when the database changes.

Whether the database changed is asked (``database_state``: a few aggregates per table) at
most every ``check_every`` seconds per graph, so answers may lag writes by that much (30 s by
default). While one request rebuilds a graph, others keep getting the previous one rather
than waiting. At most ``size`` graphs are kept (2 by default: the researchers' and the data
managers'); a graph older than ``max_age`` is rebuilt whatever the state says (a value
changed in place in a table without ``updated_at`` shows then).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from rdflib import Graph
from sqlalchemy import Connection, Engine, func, inspect, select

from imaging_biobank.db._schema import metadata
from imaging_biobank.export.rdf import build_graph
from imaging_biobank.export.rdf_build import RdfOptions

CHECK_EVERY: Final = 30.0  # seconds between two looks at the database's state
MAX_AGE: Final = 600.0  # seconds: a graph older than this is rebuilt
SIZE: Final = 2  # graphs kept
# what the graph depends on: a change to one of these tables rebuilds it
WATCHED: Final = (
    "biobank", "juristic_person", "contact_information", "collection", "study",
    "study_collection", "collection_collection_category", "collection_data_category",
    "collection_contact_information", "collection_sex", "collection_disease",
    "collection_sample_donor", "image_collection", "image_collection_body_part_examined",
    "image_collection_dataset_type", "image_collection_modality_information",
    "sample_tissue_collection_material_type", "sample_tissue_collection_storage_temperature",
    "software_source_code", "sample_donor", "sample", "sample_disease", "event",
    "imaging_study", "imaging_series", "imaging_instance", "acquisition_parameters",
    "reconstruction_parameters", "modality_information", "image_analysis", "segmentation",
    "imaging_biomarker", "vocabulary",
)  # fmt: skip


def database_state(conn: Connection) -> tuple[Any, ...]:
    """What the graph of a database depends on: per table the row count, the sums of its id
    columns and its latest ``updated_at``. Equal states give equal graphs (but for a value
    changed in place in a table without ``updated_at``; the cache's age limit covers that)."""
    existing = set(inspect(conn).get_table_names())
    parts: list[Any] = []
    for name in WATCHED:
        if name not in existing:
            continue
        t = metadata.tables[name]
        columns: list[Any] = [func.count()]
        columns += [func.sum(c) for c in t.columns if c.name == "id" or c.name.endswith("_id")]
        if "updated_at" in t.c:
            columns.append(func.max(t.c.updated_at))
        elif "loaded_at" in t.c:
            columns.append(func.max(t.c.loaded_at))
        parts.append((name, *conn.execute(select(*columns).select_from(t)).one()))
    return tuple(parts)


@dataclass
class _Entry:
    state: tuple[Any, ...]
    graph: Graph
    built: float  # when it was built
    checked: float  # when the database's state was last compared with ``state``


class GraphCache:
    """Built graphs, one per (database, options, collections): see the module's doc.
    ``clock`` is the time source (tests pass their own)."""

    def __init__(
        self,
        size: int = SIZE,
        max_age: float = MAX_AGE,
        check_every: float = CHECK_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.size = size
        self.max_age = max_age
        self.check_every = check_every
        self.clock = clock
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()  # guards _entries and _refreshing: held for dict work only
        self._refreshing: dict[tuple[Any, ...], threading.Lock] = {}
        self.builds = 0  # graphs built (for tests and the report)
        self.checks = 0  # times the database's state was computed

    def graph(self, engine: Engine, options: RdfOptions, collections: Sequence[str] = ()) -> Graph:
        """The graph for ``options``: the cached one while the database seems unchanged."""
        key = (engine.url.render_as_string(hide_password=True), options, tuple(collections))
        with self._lock:
            entry = self._current(key)
            if entry is not None:
                return entry.graph
            stale = self._entries.get(key)
            refreshing = self._refreshing.setdefault(key, threading.Lock())
        if stale is not None and not refreshing.acquire(blocking=False):
            return stale.graph  # another request is refreshing it: answer from the last one
        if stale is None:
            refreshing.acquire()
        try:
            with self._lock:
                entry = self._current(key)  # refreshed while this one waited
                if entry is not None:
                    return entry.graph
                stale = self._entries.get(key)
            return self._refresh(key, engine, options, collections, stale)
        finally:
            refreshing.release()

    def _current(self, key: tuple[Any, ...]) -> _Entry | None:
        """The entry of ``key`` if it needs no look at the database (with the lock held)."""
        entry = self._entries.get(key)
        now = self.clock()
        if entry is None or now - entry.checked >= self.check_every:
            return None
        if now - entry.built >= self.max_age:
            return None
        self._entries.move_to_end(key)
        return entry

    def _refresh(
        self,
        key: tuple[Any, ...],
        engine: Engine,
        options: RdfOptions,
        collections: Sequence[str],
        stale: _Entry | None,
    ) -> Graph:
        """Compare the database's state with the entry's; rebuild when they differ."""
        with engine.connect() as conn:
            state = database_state(conn)
            with self._lock:
                self.checks += 1
            now = self.clock()
            if stale is not None and stale.state == state and now - stale.built < self.max_age:
                stale.checked = now
                return stale.graph
            graph, _ = build_graph(conn, collections, options)
        now = self.clock()
        with self._lock:
            self.builds += 1
            self._entries[key] = _Entry(state, graph, now, now)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                gone, _ = self._entries.popitem(last=False)
                self._refreshing.pop(gone, None)
        return graph


__all__ = ["CHECK_EVERY", "GraphCache", "database_state"]
