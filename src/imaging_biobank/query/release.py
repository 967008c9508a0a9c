"""Cohort releases: a query's result frozen as an immutable, citable manifest.

A release is one version of a named cohort: the series and instances the query matched for
the declared purpose, with their content hashes, file sizes and locations, the query in both
written forms, who froze it and when, and the software version. Its identifier is
``<name>/v<version>-<first 12 hex of the manifest hash>`` (``nb-pet/v2-1f0c9a33b7de``):
stable, unique, and it lets whoever cites it check the content they rebuilt.

The manifest hash is the SHA-256 of a canonical JSON (sorted keys, no spaces, ASCII) of the
release's content: its series sorted by Series Instance UID, each with its Study Instance UID
and its instances sorted by SOP Instance UID, each with its SOP Class UID, content hash and
file size. Donor pseudonyms, collections and locations are left out: the same images give
the same hash wherever they are stored and whatever key pseudonymised them.

This module writes releases and never changes or deletes one.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, RowMapping, insert, select
from sqlalchemy.exc import IntegrityError

import imaging_biobank
from imaging_biobank.db._schema import metadata
from imaging_biobank.query.ast import Query, to_json, to_text
from imaging_biobank.query.engine import ROLES, compile_query, obfuscate, series_labels
from imaging_biobank.samples.consent import Purpose, ruled_out

T = metadata.tables
FORMAT: Final = "imaging-biobank/release@1"
MANIFEST_FORMAT: Final = "imaging-biobank/release-manifest@1"
CANONICAL_FORMAT: Final = "imaging-biobank/release-content@1"
MANAGERS: Final = ("data_manager", "admin")
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_IDENTIFIER: Final = re.compile(
    r"(?P<name>[^/]+)/v(?P<version>[0-9]{1,9})(?:-(?P<digest>[0-9a-f]{1,64}))?"
)
MANIFEST_COLUMNS: Final = (
    "donor",
    "collection",
    "study_instance_uid",
    "series_instance_uid",
    "modality",
    "body_part",
    "sop_instance_uid",
    "sop_class_uid",
    "content_hash",
    "file_size",
    "location",
)
PROBLEMS: Final = (
    "missing",  # the SOP Instance UID is no longer in the database
    "content_changed",  # it is, with another content hash
    "moved",  # it is, in another series
    "file_missing",  # the local file (or archive member) of the release is gone
    "file_size_changed",  # the local file has another size than when frozen
)
_CHUNK: Final = 500  # values per IN (...) and rows per INSERT batch


class ReleaseError(ValueError):
    """A release that cannot be made or read as asked; the message says why."""


class ReleaseNotFoundError(ReleaseError):
    """No release has the identifier given; the message lists what there is."""


@dataclass(frozen=True)
class Release:
    """The metadata of one release (its series and instances are read with
    ``get_release``)."""

    identifier: str
    name: str
    version: int
    query_text: str
    query_json: dict[str, Any]
    purpose: list[str]
    created_by: str
    created_at: dt.datetime
    software_version: str
    manifest_sha256: str
    donors: int
    studies: int
    series: int
    instances: int
    previous: str | None = None

    def as_json(self, *, obfuscated: bool = False, step: int = 10) -> dict[str, Any]:
        """The metadata as a JSON-ready dict; with ``obfuscated`` (what researchers see) the
        counts are rounded as the query engine rounds them (1 to 9 show as 10)."""
        counts = {
            "donors": self.donors,
            "studies": self.studies,
            "series": self.series,
            "instances": self.instances,
        }
        if obfuscated:
            counts = {k: obfuscate(v, step) for k, v in counts.items()}
        return {
            "format": FORMAT,
            "identifier": self.identifier,
            "name": self.name,
            "version": self.version,
            "query": self.query_text,
            "query_json": self.query_json,
            "purpose": self.purpose,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "software_version": self.software_version,
            "manifest_sha256": self.manifest_sha256,
            "counts": counts,
            "obfuscated": obfuscated,
            "previous": self.previous,
        }


@dataclass
class _Series:
    donor: str
    collection: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str | None
    body_part: str | None
    instances: list[dict[str, Any]] = field(default_factory=list)

    def header(self) -> dict[str, Any]:
        """The series' own values (every field but its instances)."""
        return {k: v for k, v in self.__dict__.items() if k != "instances"}


# --- the canonical manifest ---------------------------------------------------------------


def canonical_manifest(rows: Iterable[dict[str, Any]]) -> bytes:
    """The bytes the manifest hash is taken of, from instance rows (each with the study,
    series and SOP Instance UIDs, SOP Class UID, content hash and file size; other keys
    are ignored). Equal content gives equal bytes, whatever the order of the rows."""
    series: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = series.setdefault(
            row["series_instance_uid"],
            {
                "series_instance_uid": row["series_instance_uid"],
                "study_instance_uid": row["study_instance_uid"],
                "instances": [],
            },
        )
        entry["instances"].append(
            {
                "sop_instance_uid": row["sop_instance_uid"],
                "sop_class_uid": row["sop_class_uid"],
                "content_hash": row["content_hash"],
                "file_size": None if row["file_size"] is None else int(row["file_size"]),
            }
        )
    ordered = []
    for uid in sorted(series):
        entry = series[uid]
        entry["instances"].sort(key=lambda i: i["sop_instance_uid"])
        ordered.append(entry)
    document = {"format": CANONICAL_FORMAT, "series": ordered}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def manifest_sha256(rows: Iterable[dict[str, Any]]) -> str:
    """The manifest hash of instance rows (see ``canonical_manifest``): recompute it from an
    exported manifest to check that what you rebuilt is what was released."""
    return hashlib.sha256(canonical_manifest(rows)).hexdigest()


def make_identifier(name: str, version: int, digest: str) -> str:
    """The citable identifier of a release: ``<name>/v<version>-<12 hex of its hash>``."""
    return f"{name}/v{version}-{digest[:12]}"


# --- freezing --------------------------------------------------------------------------------


def _check_role(role: str, what: str) -> None:
    if role not in ROLES:
        raise ReleaseError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if role not in MANAGERS:
        raise PermissionError(f"{what} is for data managers (role data_manager or admin)")


def _check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise ReleaseError(
            f"release name {name!r}: use 1 to 100 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit (e.g. nb-pet-training)"
        )


def _cohort_rows(conn: Connection, tree: Query, purpose: Purpose) -> list[RowMapping]:
    """Every instance of the matching series with its series, study, donor and collection:
    one statement, so one consistent view of the database."""
    cohort = compile_query(conn, tree, purpose)
    s, i = T["imaging_series"], T["imaging_instance"]
    columns, joined = series_labels()
    ids = cohort.series.subquery()
    return list(
        conn.execute(
            select(
                *columns,
                i.c.sop_instance_uid,
                i.c.sop_class_uid,
                i.c.content_hash,
                i.c.file_size,
                i.c.location,
            )
            .select_from(joined.join(i, i.c.imaging_series_id == s.c.id))
            .where(s.c.id.in_(select(ids.c.id)))
        ).mappings()
    )


def _group(rows: Iterable[RowMapping | dict[str, Any]]) -> dict[str, _Series]:
    series: dict[str, _Series] = {}
    for row in rows:
        uid = row["series_instance_uid"]
        entry = series.get(uid)
        if entry is None:
            entry = series[uid] = _Series(
                row["donor"],
                row["collection"],
                row["study_instance_uid"],
                uid,
                row["modality"],
                row["body_part"],
            )
        entry.instances.append(
            {
                "sop_instance_uid": row["sop_instance_uid"],
                "sop_class_uid": row["sop_class_uid"],
                "content_hash": row["content_hash"],
                "file_size": row["file_size"],
                "location": row["location"],
            }
        )
    for entry in series.values():
        entry.instances.sort(key=lambda i: i["sop_instance_uid"])
    return dict(sorted(series.items()))


def _flat(series: dict[str, _Series]) -> Iterator[dict[str, Any]]:
    """One dict per instance with its series' values, in manifest order."""
    for entry in series.values():
        for instance in entry.instances:
            yield {**entry.header(), **instance}


def freeze(
    conn: Connection,
    tree: Query,
    *,
    name: str,
    created_by: str,
    role: str,
    purpose: Purpose | None = None,
) -> Release:
    """Freeze the cohort of ``tree`` as the next version of release ``name``: the matching
    series and their instances, for data managers and admins (``PermissionError`` for
    researchers).

    Consent is always honoured: donors whose use and access conditions rule out the
    purpose are left out; with no purpose given, the request declares no flags (so donors
    whose conditions ask something of the requester, such as collaboration or ethics
    approval, are left out too). The release, its series and instances are written in one
    transaction: committed here when the connection had none, else in the caller's
    transaction, which the caller commits (or rolls back). ``ReleaseError`` for a bad name, an
    empty cohort, or a concurrent release of the same name and version;
    ``QueryKeyError`` for bad query keys or values."""
    _check_role(role, "freezing a release")
    _check_name(name)
    declared = purpose if purpose is not None else Purpose.of([])
    created_by = created_by.strip()
    if not created_by or len(created_by) > 255:
        raise ReleaseError("created_by: say who freezes the release, in 1 to 255 characters")
    r, rs, ri = T["cohort_release"], T["cohort_release_series"], T["cohort_release_instance"]
    # in the caller's transaction when there is one (a savepoint would not hold on SQLite,
    # whose driver starts no transaction before the first write)
    transaction = nullcontext() if conn.in_transaction() else conn.begin()
    try:
        with transaction:
            rows = _cohort_rows(conn, tree, declared)
            if not rows:
                flags = ", ".join(sorted(declared.flags)) or "none"
                raise ReleaseError(
                    f"the query matches no series for this purpose (flags: {flags}):"
                    " nothing to release"
                )
            series = _group(rows)
            digest = manifest_sha256(_flat(series))
            last = conn.execute(
                select(r.c.id, r.c.version, r.c.identifier)
                .where(r.c.name == name)
                .order_by(r.c.version.desc())
                .limit(1)
            ).first()
            version = 1 if last is None else int(last.version) + 1
            release = Release(
                identifier=make_identifier(name, version, digest),
                name=name,
                version=version,
                query_text=to_text(tree),
                query_json=to_json(tree),
                purpose=sorted(declared.flags),
                created_by=created_by,
                created_at=dt.datetime.now(dt.UTC),
                software_version=imaging_biobank.__version__,
                manifest_sha256=digest,
                donors=len({e.donor for e in series.values()}),
                studies=len({e.study_instance_uid for e in series.values()}),
                series=len(series),
                instances=len(rows),
                previous=None if last is None else str(last.identifier),
            )
            inserted = conn.execute(
                insert(r).values(
                    identifier=release.identifier,
                    name=name,
                    version=version,
                    query_text=release.query_text,
                    query_json=release.query_json,
                    purpose=release.purpose,
                    created_by=created_by,
                    created_at=release.created_at,
                    software_version=release.software_version,
                    manifest_sha256=digest,
                    donors=release.donors,
                    studies=release.studies,
                    series=release.series,
                    instances=release.instances,
                    previous_id=None if last is None else int(last.id),
                )
            ).inserted_primary_key
            assert inserted is not None
            release_id = int(inserted[0])
            conn.execute(
                insert(rs),
                [
                    {
                        "cohort_release_id": release_id,
                        "donor": e.donor,
                        "collection": e.collection,
                        "study_instance_uid": e.study_instance_uid,
                        "series_instance_uid": e.series_instance_uid,
                        "modality": e.modality,
                        "body_part": e.body_part,
                        "instances": len(e.instances),
                    }
                    for e in series.values()
                ],
            )
            series_ids = {
                uid: id_
                for uid, id_ in conn.execute(
                    select(rs.c.series_instance_uid, rs.c.id).where(
                        rs.c.cohort_release_id == release_id
                    )
                )
            }
            instances = [
                {"cohort_release_series_id": series_ids[uid], **instance}
                for uid, entry in series.items()
                for instance in entry.instances
            ]
            for start in range(0, len(instances), _CHUNK * 10):
                conn.execute(insert(ri), instances[start : start + _CHUNK * 10])
    except IntegrityError:
        raise ReleaseError(
            f"another release of {name!r} was frozen at the same time; try again"
        ) from None
    return release


# --- reading -----------------------------------------------------------------------------------


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _release(row: RowMapping) -> Release:
    return Release(
        identifier=row["identifier"],
        name=row["name"],
        version=int(row["version"]),
        query_text=row["query_text"],
        query_json=row["query_json"],
        purpose=list(row["purpose"] or []),
        created_by=row["created_by"],
        created_at=_utc(row["created_at"]),
        software_version=row["software_version"],
        manifest_sha256=row["manifest_sha256"],
        donors=int(row["donors"]),
        studies=int(row["studies"]),
        series=int(row["series"]),
        instances=int(row["instances"]),
        previous=row["previous"],
    )


def _release_select() -> Any:
    r = T["cohort_release"]
    prev = r.alias("previous_release")
    return select(*r.c, prev.c.identifier.label("previous")).outerjoin(
        prev, prev.c.id == r.c.previous_id
    )


def list_releases(conn: Connection, name: str | None = None) -> list[Release]:
    """The releases (of ``name``, when given), by name and version. Show them to researchers
    with ``as_json(obfuscated=True)``."""
    r = T["cohort_release"]
    query = _release_select().order_by(r.c.name, r.c.version)
    if name is not None:
        query = query.where(r.c.name == name)
    return [_release(row) for row in conn.execute(query).mappings()]


def find_release(conn: Connection, identifier: str) -> tuple[int, Release]:
    """(row id, metadata) of the release ``identifier`` names: the full identifier,
    ``<name>/v<version>`` with or without (a prefix of) the hash, or ``<name>`` for its
    latest version. ``ReleaseNotFoundError`` lists the releases there are."""
    r = T["cohort_release"]
    identifier = identifier.strip()
    query = _release_select()
    match = _IDENTIFIER.fullmatch(identifier)
    if match:
        query = query.where(r.c.name == match["name"], r.c.version == int(match["version"]))
    else:
        query = query.where(r.c.name == identifier).order_by(r.c.version.desc()).limit(1)
    row = conn.execute(query).mappings().first()
    digest = match["digest"] if match else None
    if row is not None and digest and not str(row["manifest_sha256"]).startswith(digest):
        raise ReleaseNotFoundError(
            f"{identifier!r} names a release whose manifest hash is not {digest}...:"
            f" it is {row['identifier']} (sha256 {row['manifest_sha256']})"
        )
    if row is None:
        known = conn.execute(select(r.c.identifier).order_by(r.c.name, r.c.version)).scalars()
        listed = ", ".join(known) or "none yet (imaging-biobank release create)"
        raise ReleaseNotFoundError(f"no release {identifier!r}; releases: {listed}")
    return int(row["id"]), _release(row)


def _content(conn: Connection, release_id: int) -> dict[str, _Series]:
    rs, ri = T["cohort_release_series"], T["cohort_release_instance"]
    rows = conn.execute(
        select(
            rs.c.donor,
            rs.c.collection,
            rs.c.study_instance_uid,
            rs.c.series_instance_uid,
            rs.c.modality,
            rs.c.body_part,
            ri.c.sop_instance_uid,
            ri.c.sop_class_uid,
            ri.c.content_hash,
            ri.c.file_size,
            ri.c.location,
        )
        .join(ri, ri.c.cohort_release_series_id == rs.c.id)
        .where(rs.c.cohort_release_id == release_id)
    ).mappings()
    return _group(rows)


def get_release(
    conn: Connection,
    identifier: str,
    *,
    role: str = "data_manager",
    instances: bool = True,
    step: int = 10,
) -> dict[str, Any]:
    """A release as a JSON-ready dict: its metadata, and for data managers its series (each
    with its instances, unless ``instances`` is false). Researchers get the metadata only,
    with obfuscated counts."""
    if role not in ROLES:
        raise ReleaseError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    release_id, release = find_release(conn, identifier)
    if role not in MANAGERS:
        return release.as_json(obfuscated=True, step=step)
    out = release.as_json()
    series = []
    for entry in _content(conn, release_id).values():
        item: dict[str, Any] = {**entry.header(), "instance_count": len(entry.instances)}
        if instances:
            item["instances"] = entry.instances
        series.append(item)
    out["series"] = series
    return out


def manifest_rows(
    conn: Connection, identifier: str, *, role: str = "data_manager"
) -> tuple[Release, list[dict[str, Any]]]:
    """The release and one row per instance (``MANIFEST_COLUMNS``), sorted by series and SOP
    Instance UID; for data managers (``PermissionError`` for researchers)."""
    _check_role(role, "a release manifest")
    release_id, release = find_release(conn, identifier)
    return release, list(_flat(_content(conn, release_id)))


def export_manifest(
    conn: Connection, identifier: str, format: str, *, role: str = "data_manager"
) -> str:
    """The release's manifest as text, one row per instance: ``csv`` (a header, then the
    rows) or ``json`` (the release's metadata and its rows)."""
    if format not in ("csv", "json"):
        raise ReleaseError(f"manifest format {format!r}: use csv or json")
    release, rows = manifest_rows(conn, identifier, role=role)
    if format == "json":
        document = {"format": MANIFEST_FORMAT, "release": release.as_json(), "instances": rows}
        return json.dumps(document, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# --- comparing ---------------------------------------------------------------------------------


def diff(
    conn: Connection, a: str, b: str, *, role: str = "data_manager", step: int = 10
) -> dict[str, Any]:
    """What changed from release ``a`` to release ``b``: series added, removed and changed
    (present in both with other instances), instances added, removed and changed (same SOP
    Instance UID, another content hash or series), with counts. Researchers get the counts
    only, obfuscated."""
    if role not in ROLES:
        raise ReleaseError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    id_a, release_a = find_release(conn, a)
    id_b, release_b = find_release(conn, b)
    old, new = _content(conn, id_a), _content(conn, id_b)

    def by_sop(content: dict[str, _Series]) -> dict[str, tuple[str, dict[str, Any]]]:
        return {i["sop_instance_uid"]: (uid, i) for uid, e in content.items() for i in e.instances}

    old_sop, new_sop = by_sop(old), by_sop(new)
    added = [
        {"sop_instance_uid": sop, "series_instance_uid": new_sop[sop][0]}
        for sop in sorted(new_sop.keys() - old_sop.keys())
    ]
    removed = [
        {"sop_instance_uid": sop, "series_instance_uid": old_sop[sop][0]}
        for sop in sorted(old_sop.keys() - new_sop.keys())
    ]
    changed = []
    for sop in sorted(old_sop.keys() & new_sop.keys()):
        (old_series, before), (new_series, after) = old_sop[sop], new_sop[sop]
        if before["content_hash"] != after["content_hash"] or old_series != new_series:
            changed.append(
                {
                    "sop_instance_uid": sop,
                    "series_instance_uid": new_series,
                    "from_series_instance_uid": old_series,
                    "from_content_hash": before["content_hash"],
                    "to_content_hash": after["content_hash"],
                }
            )
    touched = {c["series_instance_uid"] for c in changed} | {
        c["from_series_instance_uid"] for c in changed
    }
    touched |= {x["series_instance_uid"] for x in added + removed}
    series_added = sorted(new.keys() - old.keys())
    series_removed = sorted(old.keys() - new.keys())
    series_changed = sorted((old.keys() & new.keys()) & touched)
    counts = {
        "series_added": len(series_added),
        "series_removed": len(series_removed),
        "series_changed": len(series_changed),
        "instances_added": len(added),
        "instances_removed": len(removed),
        "instances_changed": len(changed),
    }
    if role not in MANAGERS:
        counts = {k: obfuscate(v, step) for k, v in counts.items()}
    out: dict[str, Any] = {
        "from": release_a.identifier,
        "to": release_b.identifier,
        "same_content": release_a.manifest_sha256 == release_b.manifest_sha256,
        "counts": counts,
        "obfuscated": role not in MANAGERS,
    }
    if role in MANAGERS:
        out["series"] = {
            "added": series_added,
            "removed": series_removed,
            "changed": series_changed,
        }
        out["instances"] = {"added": added, "removed": removed, "changed": changed}
    return out


# --- verifying ---------------------------------------------------------------------------------


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _Files:
    """Local files and zip archive members of a release, looked at once each."""

    def __init__(self) -> None:
        self.archives: dict[str, dict[str, int] | None] = {}

    def size(self, location: str) -> int | None:
        """The size of the file or member at ``location``; None when it is not there."""
        if "!/" in location:
            archive, member = location.split("!/", 1)
            if archive not in self.archives:
                try:
                    with zipfile.ZipFile(archive) as z:
                        self.archives[archive] = {i.filename: i.file_size for i in z.infolist()}
                except (OSError, zipfile.BadZipFile):
                    self.archives[archive] = None
            members = self.archives[archive]
            return None if members is None else members.get(member)
        try:
            return os.stat(location).st_size
        except OSError:
            return None


def verify(conn: Connection, identifier: str, *, role: str = "data_manager") -> dict[str, Any]:
    """Whether the release can still be rebuilt exactly, as a JSON-ready report: the stored
    release still hashes to its manifest hash; every instance is still in the database,
    in the same series, with the same content hash; every local file (or zip member) is
    still at its location with the same size (DICOMweb URLs are not fetched); and no donor's
    use and access conditions now rule out the release's purpose. ``ok`` is true when
    nothing fails."""
    _check_role(role, "verifying a release")
    release_id, release = find_release(conn, identifier)
    content = _content(conn, release_id)
    rows = list(_flat(content))
    recomputed = manifest_sha256(rows)
    i, s, d = T["imaging_instance"], T["imaging_series"], T["sample_donor"]
    current: dict[str, RowMapping] = {}
    sops = [row["sop_instance_uid"] for row in rows]
    for chunk in _chunks(sops):
        for found in conn.execute(
            select(i.c.sop_instance_uid, i.c.content_hash, i.c.location, s.c.series_instance_uid)
            .join(s, s.c.id == i.c.imaging_series_id)
            .where(i.c.sop_instance_uid.in_(chunk))
        ).mappings():
            current[found["sop_instance_uid"]] = found
    mismatches: list[dict[str, Any]] = []

    def report(row: dict[str, Any], problem: str, expected: Any, found: Any) -> None:
        mismatches.append(
            {
                "sop_instance_uid": row["sop_instance_uid"],
                "series_instance_uid": row["series_instance_uid"],
                "problem": problem,
                "expected": expected,
                "found": found,
            }
        )

    files = _Files()
    not_checked = 0
    for row in rows:
        now = current.get(row["sop_instance_uid"])
        if now is None:
            report(row, "missing", row["content_hash"], None)
        else:
            if now["content_hash"] != row["content_hash"]:
                report(row, "content_changed", row["content_hash"], now["content_hash"])
            if now["series_instance_uid"] != row["series_instance_uid"]:
                report(row, "moved", row["series_instance_uid"], now["series_instance_uid"])
        location = row["location"]
        if not location or "://" in location:
            not_checked += 1
            continue
        size = files.size(location)
        if size is None:
            elsewhere = now["location"] if now is not None else None
            report(row, "file_missing", location, elsewhere if elsewhere != location else None)
        elif row["file_size"] is not None and size != row["file_size"]:
            report(row, "file_size_changed", row["file_size"], size)
    donors = sorted({row["donor"] for row in rows})
    excluded_donors, _ = ruled_out(conn, Purpose.of(release.purpose))
    known: dict[str, int] = {}
    for chunk in _chunks(donors):
        known.update(
            (pseudonym, id_)
            for pseudonym, id_ in conn.execute(
                select(d.c.pseudonym, d.c.id).where(d.c.pseudonym.in_(chunk))
            )
        )
    blocked = set(
        conn.execute(
            select(d.c.pseudonym).where(d.c.id.in_(excluded_donors), d.c.id.in_(known.values()))
        ).scalars()
    )
    flags = ", ".join(release.purpose) or "no flags"
    consent = [
        {"donor": donor, "problem": "donor_missing"}
        if donor not in known
        else {
            "donor": donor,
            "problem": "consent_rules_out",
            "detail": f"the donor's use and access conditions now rule out the purpose ({flags})",
        }
        for donor in donors
        if donor not in known or donor in blocked
    ]
    counts = {problem: 0 for problem in PROBLEMS}
    for mismatch in mismatches:
        counts[mismatch["problem"]] += 1
    intact = recomputed == release.manifest_sha256
    return {
        "release": release.identifier,
        "manifest_sha256": release.manifest_sha256,
        "manifest_intact": intact,
        "recomputed_sha256": recomputed,
        "instances": len(rows),
        "files_not_checked": not_checked,
        "counts": counts,
        "mismatches": mismatches,
        "donors": consent,
        "ok": intact and not mismatches and not consent,
    }


__all__ = [
    "MANIFEST_COLUMNS",
    "Release",
    "ReleaseError",
    "ReleaseNotFoundError",
    "canonical_manifest",
    "diff",
    "export_manifest",
    "find_release",
    "freeze",
    "get_release",
    "list_releases",
    "make_identifier",
    "manifest_rows",
    "manifest_sha256",
    "verify",
]
