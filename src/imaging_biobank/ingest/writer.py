"""The one writer: records in, rows out, one transaction per batch.

Instances are keyed by SOP Instance UID, series by Series Instance UID, studies by Study
Instance UID, donors by pseudonym, so writing the same records again changes nothing and
a run that was killed resumes where the committed batches end. A series shows the values
of its first instance (lowest Instance Number, then UID) and, for the parameters that vary,
their min and max over all instances and frames; both merge in any order, so a resumed run
ends with exactly the rows of a clean one. Rows are written only when a value changes.

Several runs may write into one database at once (other collections, overlapping trees, a
Dask cluster's client beside a local run): each batch first takes the database's ingest
lock (a transaction-level advisory lock on PostgreSQL, SQLite's write lock at once), reads
what it needs of the stored rows under that lock, and commits. Batches of concurrent runs
thus take turns, so they neither deadlock nor insert the same study or series twice, and
the end state is that of one run over all their files. On PostgreSQL new instances go in
by COPY.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    distinct,
    func,
    insert,
    select,
    update,
)

from imaging_biobank.catalogue.descriptors import derive_descriptors
from imaging_biobank.db._schema import metadata
from imaging_biobank.dicom import terms as dicom_terms
from imaging_biobank.dicom.record import RANGED, RECONSTRUCTION_RANGED, InstanceRecord
from imaging_biobank.vocab import catalog

T = metadata.tables  # Core tables: the ORM is not imported on this path
IN_CHUNK = 500  # values per IN (...) list
NO_NUMBER = 2**31
# the PostgreSQL advisory lock ingest runs take turns on, one batch at a time ("ibingest")
INGEST_LOCK = 0x6962_696E_6765_7374

ACQUISITION_RANGED = [name for name in RANGED if name not in RECONSTRUCTION_RANGED]
ACQUISITION_COLUMNS = [
    c.name
    for c in T["acquisition_parameters"].columns
    if c.name not in ("id", "imaging_series_id", "modality_information_id", "extra")
]
RECONSTRUCTION_COLUMNS = [
    c.name
    for c in T["reconstruction_parameters"].columns
    if c.name not in ("id", "imaging_series_id", "algorithm_id", "extra")
]
ALGORITHM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9+_.-]*")


@dataclass
class IngestSummary:
    """What a run did, for the final summary and ``--json``."""

    items: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    quarantined: int = 0  # --deidentify: possible burned-in text, held back
    conflicts: int = 0
    new_studies: int = 0
    new_series: int = 0
    new_donors: int = 0
    body_part: Counter[str] = field(default_factory=Counter)
    without_patient_id: int = 0
    # dirty values in what was read: text values that held NUL bytes (dropped), Patient's
    # Age as an AS string turned into years, and present but not an AS age (not stored)
    nul_bytes_stripped: int = 0
    ages_converted: int = 0
    ages_unreadable: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["body_part"] = dict(self.body_part)
        return data


Report = Callable[[str, str, str], None]  # (status, location, reason)


def _chunks(values: list[Any], size: int = IN_CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _equal(a: Any, b: Any) -> bool:
    """Values as the database gives them back (floats, dates, JSON) compared sensibly."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == float(b)
    return bool(a == b)


@dataclass
class _Series:
    """What the writer knows of one series during a run."""

    id: int
    collection_id: int
    key: tuple[int, str] | None  # sort key of the instance whose values the series shows
    row: dict[str, Any]  # imaging_series columns as stored
    acquisition: dict[str, Any]  # acquisition_parameters columns as stored (+ id)
    reconstruction: dict[str, Any]


class TermIds:
    """Database ids of vocabulary terms, loaded once per table."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._ids: dict[str, dict[tuple[str, str], int]] = {}

    def id(self, term: catalog.Term | None) -> int | None:
        if term is None:
            return None
        table = catalog.vocabulary(term.vocabulary).table
        if table not in self._ids:
            t, v = T[table], T["vocabulary"]
            rows = self.conn.execute(
                select(v.c.name, t.c.code, t.c.id).join(v, v.c.id == t.c.vocabulary_id)
            )
            self._ids[table] = {(name, code): id_ for name, code, id_ in rows}
        return self._ids[table].get((term.vocabulary, term.code))


class Writer:
    """Writes records into one image collection, in batches."""

    def __init__(
        self,
        engine: Engine,
        collection_id: int,
        report: Report,
        *,
        batch_size: int = 2000,
        retain_device_identity: bool = False,
    ):
        self.engine = engine
        self.collection_id = collection_id
        self.report = report
        self.batch_size = batch_size
        self.retain_device_identity = retain_device_identity
        self.summary = IngestSummary()
        self.pending: list[InstanceRecord] = []
        self.donors: dict[str, tuple[int, str]] = {}  # pseudonym -> (id, sex code)
        self.studies: dict[str, int] = {}
        self.series: dict[str, _Series] = {}
        self.devices: dict[str, int] = {}
        self.algorithms: dict[str, int] = {}
        self.touched = False

    # --- the public surface ---

    def add(self, record: InstanceRecord) -> None:
        self.pending.append(record)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending records in one transaction."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        with self.engine.begin() as conn:
            take_ingest_lock(conn)
            self._write(conn, batch)

    def finish(self) -> None:
        """Flush, then recompute what is derived from the rows (counts, collection links)."""
        self.flush()
        with self.engine.begin() as conn:
            take_ingest_lock(conn)
            derive_collection(conn, self.collection_id)
            derive_descriptors(conn, self.collection_id)

    # --- one batch ---

    def _write(self, conn: Connection, batch: list[InstanceRecord]) -> None:
        # the donors, studies and series of this batch are read again under the ingest lock
        # (another run may have written them since); none is kept from batch to batch, so
        # the writer's memory does not grow with the archive (10^6 files: 9,000 series)
        self.donors.clear()
        self.studies.clear()
        self.series.clear()
        terms = TermIds(conn)
        records = self._classify(conn, batch)
        if not records:
            return
        self._donors(conn, records, terms)
        self._studies(conn, records)
        records = self._series(conn, records, terms)
        self._instances(conn, records, terms)

    def _classify(
        self, conn: Connection, batch: list[InstanceRecord]
    ) -> list[tuple[InstanceRecord, dict[str, Any] | None]]:
        """New and changed records, each with its stored instance row (None when new)."""
        first: dict[str, InstanceRecord] = {}
        for record in batch:
            earlier = first.get(record.sop_instance_uid)
            if earlier is None:
                first[record.sop_instance_uid] = record
            else:
                self.summary.duplicates += 1
                self.report(
                    "duplicate", record.location, f"same SOP Instance UID as {earlier.location}"
                )
        stored: dict[str, dict[str, Any]] = {}
        instance = T["imaging_instance"]
        for uids in _chunks(list(first)):
            rows = conn.execute(
                select(
                    instance.c.sop_instance_uid,
                    instance.c.id,
                    instance.c.content_hash,
                    instance.c.location,
                    instance.c.imaging_series_id,
                ).where(instance.c.sop_instance_uid.in_(uids))
            ).mappings()
            stored.update({row["sop_instance_uid"]: dict(row) for row in rows})
        result: list[tuple[InstanceRecord, dict[str, Any] | None]] = []
        for uid, record in first.items():
            row = stored.get(uid)
            if row is None:
                result.append((record, None))
                continue
            if row["location"] != record.location and _still_there(row["location"]):
                self.summary.duplicates += 1
                self.report(
                    "duplicate", record.location, f"same SOP Instance UID as {row['location']}"
                )
                continue
            if row["location"] == record.location and row["content_hash"] == record.content_hash():
                self.summary.unchanged += 1
                continue
            result.append((record, row))
        return result

    def _donors(
        self, conn: Connection, records: list[tuple[InstanceRecord, Any]], terms: TermIds
    ) -> None:
        donor = T["sample_donor"]
        wanted: dict[str, str] = {}
        for record, _ in records:
            code = dicom_terms.sex(record.patient_sex).code
            known = wanted.get(record.donor)
            if known is None or known == "Unknown":
                wanted[record.donor] = code
            if record.donor_from_study:
                self.summary.without_patient_id += 1
        missing = [p for p in wanted if p not in self.donors]
        for chunk in _chunks(missing):
            for id_, pseudonym, sex_code in conn.execute(
                select(donor.c.id, donor.c.pseudonym, T["sex"].c.code)
                .join(T["sex"], T["sex"].c.id == donor.c.sex_id)
                .where(donor.c.pseudonym.in_(chunk))
            ):
                self.donors[pseudonym] = (id_, sex_code)
        new = [p for p in wanted if p not in self.donors]
        if new:
            rows = [
                {"pseudonym": p, "sex_id": terms.id(catalog.resolve("sex", wanted[p]))} for p in new
            ]
            inserted = (
                conn.execute(
                    insert(donor).returning(donor.c.id, sort_by_parameter_order=True), rows
                )
                .scalars()
                .all()
            )
            for pseudonym, id_ in zip(new, inserted, strict=True):
                self.donors[pseudonym] = (id_, wanted[pseudonym])
            self.summary.new_donors += len(new)
        for pseudonym, code in wanted.items():
            id_, stored = self.donors[pseudonym]
            if stored == "Unknown" and code != "Unknown":
                conn.execute(
                    update(donor)
                    .where(donor.c.id == id_)
                    .values(sex_id=terms.id(catalog.resolve("sex", code)))
                )
                self.donors[pseudonym] = (id_, code)

    def _studies(self, conn: Connection, records: list[tuple[InstanceRecord, Any]]) -> None:
        study = T["imaging_study"]
        firsts: dict[str, InstanceRecord] = {}
        for record, _ in records:
            firsts.setdefault(record.study_instance_uid, record)
        missing = [uid for uid in firsts if uid not in self.studies]
        for chunk in _chunks(missing):
            for id_, uid in conn.execute(
                select(study.c.id, study.c.study_instance_uid).where(
                    study.c.study_instance_uid.in_(chunk)
                )
            ):
                self.studies[uid] = id_
        new = [uid for uid in firsts if uid not in self.studies]
        if new:
            rows = [_study_row(firsts[uid]) for uid in new]
            inserted = (
                conn.execute(
                    insert(study).returning(study.c.id, sort_by_parameter_order=True), rows
                )
                .scalars()
                .all()
            )
            self.studies.update(zip(new, inserted, strict=True))
            self.summary.new_studies += len(new)

    # --- series: representative values, ranges, equipment ---

    def _series(
        self, conn: Connection, records: list[tuple[InstanceRecord, Any]], terms: TermIds
    ) -> list[tuple[InstanceRecord, Any]]:
        by_series: dict[str, list[InstanceRecord]] = defaultdict(list)
        for record, _ in records:
            by_series[record.series_instance_uid].append(record)
        self._load_series(conn, list(by_series))
        kept: list[tuple[InstanceRecord, Any]] = []
        foreign = {
            uid
            for uid in by_series
            if uid in self.series and self.series[uid].collection_id != self.collection_id
        }
        for record, row in records:
            if record.series_instance_uid in foreign:
                self.summary.conflicts += 1
                self.report(
                    "conflict",
                    record.location,
                    "its series belongs to another collection; not moved",
                )
            else:
                kept.append((record, row))
        for uid, group in by_series.items():
            if uid not in foreign:
                self._merge_series(conn, uid, group, terms)
        return kept

    def _load_series(self, conn: Connection, uids: list[str]) -> None:
        series, acq, rec = (
            T["imaging_series"],
            T["acquisition_parameters"],
            T["reconstruction_parameters"],
        )
        instance = T["imaging_instance"]
        for chunk in _chunks(uids):
            rows = conn.execute(select(series).where(series.c.series_instance_uid.in_(chunk)))
            found = {row.series_instance_uid: dict(row._mapping) for row in rows}
            if not found:
                continue
            ids = [row["id"] for row in found.values()]
            acquisitions = {
                row.imaging_series_id: dict(row._mapping)
                for row in conn.execute(select(acq).where(acq.c.imaging_series_id.in_(ids)))
            }
            reconstructions = {
                row.imaging_series_id: dict(row._mapping)
                for row in conn.execute(select(rec).where(rec.c.imaging_series_id.in_(ids)))
            }
            number = func.coalesce(instance.c.instance_number, NO_NUMBER)
            first = (
                select(instance.c.imaging_series_id, func.min(number).label("number"))
                .where(instance.c.imaging_series_id.in_(ids))
                .group_by(instance.c.imaging_series_id)
                .subquery()
            )
            keys: dict[int, tuple[int, str]] = {}
            for series_id, number_, uid in conn.execute(
                select(
                    first.c.imaging_series_id, first.c.number, func.min(instance.c.sop_instance_uid)
                )
                .join(
                    instance,
                    (instance.c.imaging_series_id == first.c.imaging_series_id)
                    & (func.coalesce(instance.c.instance_number, NO_NUMBER) == first.c.number),
                )
                .group_by(first.c.imaging_series_id, first.c.number)
            ):
                keys[series_id] = (int(number_), uid)
            for uid, row in found.items():
                self.series[uid] = _Series(
                    id=row["id"],
                    collection_id=row["image_collection_id"],
                    key=keys.get(row["id"]),
                    row=row,
                    acquisition=acquisitions.get(row["id"], {}),
                    reconstruction=reconstructions.get(row["id"], {}),
                )

    def _merge_series(
        self, conn: Connection, uid: str, group: list[InstanceRecord], terms: TermIds
    ) -> None:
        state = self.series.get(uid)
        candidate = min(group, key=lambda r: r.sort_key)
        represent = state is None or state.key is None or candidate.sort_key <= state.key
        rep = candidate if represent else None
        # the series row
        if rep is not None:
            row = self._series_row(rep, terms)
            if state is None:
                series = T["imaging_series"]
                series_id = conn.execute(
                    insert(series).values(**row).returning(series.c.id)
                ).scalar_one()
                state = _Series(
                    series_id, self.collection_id, None, {**row, "id": series_id}, {}, {}
                )
                self.series[uid] = state
                self.summary.new_series += 1
                flag = row["body_part_examined_flag"]
                empty = row["body_part_examined_value"] is None and flag is None
                self.summary.body_part["none" if empty else flag or "standard"] += 1
            else:
                changes = {k: v for k, v in row.items() if not _equal(state.row.get(k), v)}
                if changes:
                    _update(conn, T["imaging_series"], state.id, changes)
                    state.row.update(changes)
            state.key = rep.sort_key
        assert state is not None
        self._merge_parameters(conn, state, group, rep, terms)

    def _series_row(self, rep: InstanceRecord, terms: TermIds) -> dict[str, Any]:
        match = dicom_terms.body_part(rep.body_part_examined, rep.anatomic_region)
        region = rep.anatomic_region
        return {
            "series_instance_uid": rep.series_instance_uid,
            "imaging_study_id": self.studies[rep.study_instance_uid],
            "image_collection_id": self.collection_id,
            "sample_donor_id": self.donors[rep.donor][0],
            "modality_id": terms.id(dicom_terms.modality(rep.modality)),
            "modality_value": rep.modality,
            "series_number": rep.series_number,
            "series_description": rep.series_description,
            "series_date": _date(rep.series_date),
            "body_part_examined_id": terms.id(match.term),
            "body_part_examined_value": rep.body_part_examined,
            "body_part_examined_flag": match.flag,
            "anatomic_region_scheme": region.scheme if region else None,
            "anatomic_region_code": region.code if region else None,
            "anatomic_region_meaning": region.meaning if region else None,
            "laterality": rep.laterality,
            "dataset_type_id": terms.id(dicom_terms.dataset_type(rep.sop_class_uid)),
            "frame_of_reference_uid": rep.frame_of_reference_uid,
        }

    def _merge_parameters(
        self,
        conn: Connection,
        state: _Series,
        group: list[InstanceRecord],
        rep: InstanceRecord | None,
        terms: TermIds,
    ) -> None:
        acq_row, rec_row = dict(state.acquisition), dict(state.reconstruction)
        if rep is not None:
            acq_row.update({name: rep.acquisition.get(name) for name in ACQUISITION_COLUMNS})
            acq_row["extra"] = rep.acquisition_extra or None
            acq_row["modality_information_id"] = self._device(conn, rep, terms)
            rec_row.update({name: rep.reconstruction.get(name) for name in RECONSTRUCTION_COLUMNS})
            rec_row["extra"] = rep.reconstruction_extra or None
            rec_row["algorithm_id"] = self._algorithm(conn, rep)
        for name in RANGED:
            row = rec_row if name in RECONSTRUCTION_RANGED else acq_row
            values = [v for v in (row.get(f"{name}_min"), row.get(f"{name}_max")) if v is not None]
            for record in group:
                target = (
                    record.reconstruction if name in RECONSTRUCTION_RANGED else record.acquisition
                )
                if name in target:
                    values.append(target[name])
                values.extend(record.ranges.get(name, ()))
            row[f"{name}_min"] = min(values) if values else None
            row[f"{name}_max"] = max(values) if values else None
        state.acquisition = self._upsert_one(
            conn, "acquisition_parameters", state, state.acquisition, acq_row
        )
        state.reconstruction = self._upsert_one(
            conn, "reconstruction_parameters", state, state.reconstruction, rec_row
        )

    def _upsert_one(
        self,
        conn: Connection,
        name: str,
        state: _Series,
        stored: dict[str, Any],
        wanted: dict[str, Any],
    ) -> dict[str, Any]:
        table: Table = T[name]
        if not stored:
            values = {k: v for k, v in wanted.items() if k != "id"}
            values["imaging_series_id"] = state.id
            row_id = conn.execute(insert(table).values(**values).returning(table.c.id)).scalar_one()
            return {**values, "id": row_id}
        changes = {
            k: v
            for k, v in wanted.items()
            if k not in ("id", "imaging_series_id") and not _equal(stored.get(k), v)
        }
        if changes:
            conn.execute(update(table).where(table.c.id == stored["id"]).values(**changes))
        return {**stored, **changes}

    def _device(self, conn: Connection, rep: InstanceRecord, terms: TermIds) -> int | None:
        identity = self.retain_device_identity
        parts = {
            "modality": rep.modality,
            "manufacturer": rep.manufacturer,
            "manufacturer_model_name": rep.manufacturer_model_name,
            "software_versions": rep.software_versions,
            "device_serial_number": rep.device_serial_number if identity else None,
            "station_name": rep.station_name if identity else None,
        }
        if not any(parts.values()):
            return None
        fingerprint = hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()
        if fingerprint not in self.devices:
            table = T["modality_information"]
            found = conn.execute(
                select(table.c.id).where(table.c.fingerprint == fingerprint)
            ).scalar()
            if found is None:
                modality = parts.pop("modality")
                found = conn.execute(
                    insert(table)
                    .values(
                        fingerprint=fingerprint,
                        modality_id=terms.id(dicom_terms.modality(modality)),
                        **parts,
                    )
                    .returning(table.c.id)
                ).scalar_one()
            self.devices[fingerprint] = found
        return self.devices[fingerprint]

    def _algorithm(self, conn: Connection, rep: InstanceRecord) -> int | None:
        method = rep.reconstruction.get("reconstruction_method")
        family = rep.reconstruction.get("reconstruction_algorithm")
        match = ALGORITHM_NAME.match(method) if method else None
        name = match.group(0) if match else family
        if not name:
            return None
        if name not in self.algorithms:
            table = T["algorithm"]
            found = conn.execute(select(table.c.id).where(table.c.name == name)).scalar()
            if found is None:
                found = conn.execute(
                    insert(table).values(name=name, family=family).returning(table.c.id)
                ).scalar_one()
            self.algorithms[name] = found
        return self.algorithms[name]

    # --- instances ---

    def _instances(
        self, conn: Connection, records: list[tuple[InstanceRecord, Any]], terms: TermIds
    ) -> None:
        instance = T["imaging_instance"]
        new_rows, changed_rows = [], []
        for record, stored in records:
            row = {
                "sop_instance_uid": record.sop_instance_uid,
                "imaging_series_id": self.series[record.series_instance_uid].id,
                "sop_class_uid": record.sop_class_uid,
                "dataset_type_id": terms.id(dicom_terms.dataset_type(record.sop_class_uid)),
                "instance_number": record.instance_number,
                "number_of_frames": record.number_of_frames,
                "transfer_syntax_uid": record.transfer_syntax_uid,
                "location": record.location,
                "file_size": record.file_size,
                "content_hash": record.content_hash(),
            }
            if stored is None:
                new_rows.append(row)
            else:
                changed_rows.append({**row, "_id": stored["id"]})
                self.report(
                    "updated",
                    record.location,
                    "known SOP Instance UID, content or location changed",
                )
        if new_rows:
            if conn.dialect.name == "postgresql":
                copy_rows(conn, instance, new_rows)
            else:
                conn.execute(insert(instance), new_rows)
            self.summary.new += len(new_rows)
        if changed_rows:
            columns = [k for k in changed_rows[0] if k != "_id"]
            conn.execute(
                update(instance)
                .where(instance.c.id == bindparam("_id"))
                .values({k: bindparam(k) for k in columns}),
                changed_rows,
            )
            self.summary.updated += len(changed_rows)
        self.touched = True


def take_ingest_lock(conn: Connection) -> None:
    """Wait for the database's ingest lock, held until this transaction ends: concurrent runs
    write one batch at a time. PostgreSQL: an advisory lock; SQLite: its write lock, taken
    by a write that changes nothing (as BEGIN IMMEDIATE would), so the batch never has to
    upgrade a read to a write after another run committed (SQLITE_BUSY_SNAPSHOT)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(INGEST_LOCK)))
    elif conn.dialect.name == "sqlite":
        collection = T["collection"]
        conn.execute(update(collection).where(collection.c.id == -1).values(id=collection.c.id))


def copy_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) by PostgreSQL COPY, in this transaction."""
    from psycopg import sql

    columns = list(rows[0])
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])


def _update(conn: Connection, table: Table, row_id: int, changes: dict[str, Any]) -> None:
    """UPDATE one row by id, values as parameters (so the compiled statement is reused)."""
    statement = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({k: bindparam(k) for k in changes})
    )
    conn.execute(statement, {**changes, "_id": row_id})


def _study_row(record: InstanceRecord) -> dict[str, Any]:
    return {
        "study_instance_uid": record.study_instance_uid,
        "study_date": _date(record.study_date),
        "study_description": record.study_description,
        "patient_age_years": record.patient_age_years,
        "patient_weight_kg": record.patient_weight_kg,
        "patient_size_m": record.patient_size_m,
    }


def _still_there(location: str) -> bool:
    """Whether a stored location still holds its instance (files only; else assume yes)."""
    if "://" in location or "!/" in location:
        return True
    return os.path.exists(location)


# --- derived values, recomputed at the end of a run -----------------------------------------


def derive_collection(conn: Connection, collection_id: int) -> None:
    """Counts of series, studies and the collection, and the collection's N:M links, from
    the rows; each written only where it differs from what is stored."""
    series, instance, study = T["imaging_series"], T["imaging_instance"], T["imaging_study"]
    collection = T["collection"]
    in_collection = series.c.image_collection_id == collection_id
    count = (
        select(func.count()).where(instance.c.imaging_series_id == series.c.id).scalar_subquery()
    )
    conn.execute(
        update(series)
        .where(in_collection, series.c.number_of_instances.is_distinct_from(count))
        .values(number_of_instances=count)
    )
    acq = T["acquisition_parameters"]
    thickness = (
        select(acq.c.slice_thickness)
        .where(acq.c.imaging_series_id == series.c.id)
        .scalar_subquery()
    )
    conn.execute(
        update(series)
        .where(in_collection, series.c.slice_thickness.is_distinct_from(thickness))
        .values(slice_thickness=thickness)
    )
    studies = select(series.c.imaging_study_id).where(in_collection).distinct()
    n_series = select(func.count()).where(series.c.imaging_study_id == study.c.id).scalar_subquery()
    n_instances = (
        select(func.count())
        .select_from(instance.join(series, series.c.id == instance.c.imaging_series_id))
        .where(series.c.imaging_study_id == study.c.id)
        .scalar_subquery()
    )
    conn.execute(
        update(study)
        .where(study.c.id.in_(studies), study.c.number_of_series.is_distinct_from(n_series))
        .values(number_of_series=n_series)
    )
    conn.execute(
        update(study)
        .where(study.c.id.in_(studies), study.c.number_of_instances.is_distinct_from(n_instances))
        .values(number_of_instances=n_instances)
    )
    donors = conn.execute(
        select(func.count(distinct(series.c.sample_donor_id))).where(in_collection)
    ).scalar_one()
    size = conn.execute(
        select(func.count())
        .select_from(instance.join(series, series.c.id == instance.c.imaging_series_id))
        .where(in_collection)
    ).scalar_one()
    conn.execute(
        update(collection)
        .where(
            collection.c.id == collection_id,
            (collection.c.number_of_donors.is_distinct_from(donors))
            | (collection.c.size.is_distinct_from(size)),
        )
        .values(number_of_donors=donors, size=size)
    )
    acq = T["acquisition_parameters"]
    _set_links(
        conn,
        "image_collection_body_part_examined",
        "body_part_examined_id",
        collection_id,
        select(series.c.body_part_examined_id).where(
            in_collection, series.c.body_part_examined_id.is_not(None)
        ),
    )
    _set_links(
        conn,
        "image_collection_dataset_type",
        "dataset_type_id",
        collection_id,
        select(instance.c.dataset_type_id)
        .join(series, series.c.id == instance.c.imaging_series_id)
        .where(in_collection, instance.c.dataset_type_id.is_not(None)),
    )
    _set_links(
        conn,
        "image_collection_modality_information",
        "modality_information_id",
        collection_id,
        select(acq.c.modality_information_id)
        .join(series, series.c.id == acq.c.imaging_series_id)
        .where(in_collection, acq.c.modality_information_id.is_not(None)),
    )


def _set_links(conn: Connection, name: str, column: str, collection_id: int, query: Any) -> None:
    table = T[name]
    wanted = set(conn.execute(query.distinct()).scalars())
    stored = set(
        conn.execute(
            select(table.c[column]).where(table.c.image_collection_id == collection_id)
        ).scalars()
    )
    if wanted == stored:
        return
    if stored - wanted:
        conn.execute(
            delete(table).where(
                table.c.image_collection_id == collection_id, table.c[column].in_(stored - wanted)
            )
        )
    if wanted - stored:
        conn.execute(
            insert(table),
            [{"image_collection_id": collection_id, column: v} for v in sorted(wanted - stored)],
        )
