"""Cohort releases on real data: freezing, versions, diffs, consent, verification, the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select, text
from typer.testing import CliRunner

import imaging_biobank
from imaging_biobank.cli import app
from imaging_biobank.db._schema import metadata
from imaging_biobank.query.ast import parse_text, to_text
from imaging_biobank.query.engine import compile_query, count, manifest, obfuscate
from imaging_biobank.query.release import (
    MANIFEST_COLUMNS,
    ReleaseError,
    ReleaseNotFoundError,
    diff,
    export_manifest,
    find_release,
    freeze,
    get_release,
    list_releases,
    manifest_sha256,
    verify,
)
from imaging_biobank.samples.consent import Purpose
from tests import test_query
from tests.conftest import NB_IMAGING, STS_001
from tests.test_ingest import run
from tests.test_query import NB_TISSUE

T = metadata.tables
cohort_db = test_query.cohort_db  # the fixture: STS_001 with samples and NCU consent, and more
CT = "modality = CT"


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def stored_instances(conn: Connection, query: str, purpose: Purpose | None = None) -> set[Any]:
    """(series UID, SOP UID, content hash, size) of the instances of the query's series,
    read straight from the imaging tables."""
    ids = compile_query(conn, parse_text(query), purpose).series.subquery()
    s, i = T["imaging_series"], T["imaging_instance"]
    rows = conn.execute(
        select(s.c.series_instance_uid, i.c.sop_instance_uid, i.c.content_hash, i.c.file_size)
        .join(s, s.c.id == i.c.imaging_series_id)
        .where(s.c.id.in_(select(ids.c.id)))
    ).all()
    return {tuple(row) for row in rows}


def released_instances(release: dict[str, Any]) -> set[Any]:
    return {
        (s["series_instance_uid"], i["sop_instance_uid"], i["content_hash"], i["file_size"])
        for s in release["series"]
        for i in s["instances"]
    }


def sts_pseudonym(conn: Connection) -> str:
    """STS_001's pseudonym: the donor of the NB_IMAGING series."""
    s, d, c = T["imaging_series"], T["sample_donor"], T["collection"]
    (pseudonym,) = set(
        conn.execute(
            select(d.c.pseudonym)
            .join(s, s.c.sample_donor_id == d.c.id)
            .join(c, c.c.id == s.c.image_collection_id)
            .where(c.c.identifier == NB_IMAGING)
        ).scalars()
    )
    return str(pseudonym)


def test_freezing_records_the_cohort_with_hashes(registered: Engine, cohort_db: str) -> None:
    with registered.connect() as conn:
        release = freeze(conn, parse_text(CT), name="ct-set", created_by="tester", role="admin")
    with registered.connect() as conn:
        expected = stored_instances(conn, CT)
        counts = count(conn, parse_text(CT), role="admin", purpose=Purpose.of([]))
        series_rows = manifest(conn, parse_text(CT), role="admin", purpose=Purpose.of([]))
        data = get_release(conn, release.identifier)
        exported = json.loads(export_manifest(conn, release.identifier, "json"))
    # the series and instances the query matches, each with its header's content hash
    assert released_instances(data) == expected and len(expected) > 100
    assert {s["series_instance_uid"] for s in data["series"]} == {
        r["series_instance_uid"] for r in series_rows
    }
    assert all(re.fullmatch(r"[0-9a-f]{64}", uid[2]) for uid in expected)
    assert (release.series, release.instances) == (counts.totals.series, len(expected))
    assert release.donors >= 2 and release.studies >= release.donors  # STS_001 and pydicom's
    # metadata: the query, who, which software; a citable identifier carrying the hash
    assert release.identifier == f"ct-set/v1-{release.manifest_sha256[:12]}"
    assert data["query"] == to_text(parse_text(CT)) and data["created_by"] == "tester"
    assert data["software_version"] == imaging_biobank.__version__
    assert data["purpose"] == [] and data["previous"] is None
    # the manifest hash can be recomputed from the exported manifest, whatever its order
    rows = exported["instances"]
    assert len(rows) == release.instances and set(rows[0]) == set(MANIFEST_COLUMNS)
    assert manifest_sha256(reversed(rows)) == release.manifest_sha256
    assert exported["release"]["manifest_sha256"] == release.manifest_sha256
    assert manifest_sha256(rows[1:]) != release.manifest_sha256
    # locations are the ingested files, sizes theirs
    local = [r for r in rows if r["location"] and "://" not in r["location"]]
    assert local and all(os.path.getsize(r["location"]) == r["file_size"] for r in local)
    with registered.connect() as conn:
        assert verify(conn, release.identifier)["ok"]


def test_the_same_query_again_is_v2_with_the_same_hash(registered: Engine, cohort_db: str) -> None:
    with registered.connect() as conn:
        v1 = freeze(conn, parse_text(CT), name="ct-set", created_by="a", role="data_manager")
        before = get_release(conn, v1.identifier)
        v2 = freeze(conn, parse_text(CT), name="ct-set", created_by="b", role="data_manager")
        other = freeze(conn, parse_text("modality = MR"), name="mr", created_by="a", role="admin")
        conn.commit()
    with registered.connect() as conn:
        changes = diff(conn, v1.identifier, v2.identifier)
        after = get_release(conn, v1.identifier)
        names = [r.identifier for r in list_releases(conn)]
        ct_only = [r.version for r in list_releases(conn, "ct-set")]
        assert find_release(conn, "ct-set")[1].identifier == v2.identifier  # latest
        assert find_release(conn, "ct-set/v1")[1].identifier == v1.identifier
        with pytest.raises(ReleaseNotFoundError, match="manifest hash is not 0"):
            find_release(conn, f"ct-set/v1-{'0' * 12}")
        with pytest.raises(ReleaseNotFoundError, match=re.escape(v2.identifier)):
            find_release(conn, "ct-set/v9")
        against_mr = diff(conn, v2.identifier, other.identifier)
    assert v2.version == 2 and v2.previous == v1.identifier
    assert v2.manifest_sha256 == v1.manifest_sha256 and v2.identifier != v1.identifier
    assert changes["same_content"] and not any(changes["counts"].values())
    assert changes["series"] == {"added": [], "removed": [], "changed": []}
    assert before == after  # the first release did not change
    assert names == [v1.identifier, v2.identifier, other.identifier] and ct_only == [1, 2]
    assert against_mr["counts"]["series_removed"] == v2.series
    assert against_mr["counts"]["series_added"] == other.series


def test_a_release_in_a_transaction_rolled_back_is_not_kept(
    registered: Engine, cohort_db: str
) -> None:
    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), registered.begin() as conn:
        freeze(conn, parse_text(CT), name="ct-set", created_by="a", role="data_manager")
        raise Abandoned
    with registered.connect() as conn:
        assert list_releases(conn) == []


def test_new_data_and_changed_instances_show_in_the_next_release(
    registered: Engine, key_file: Path, tmp_path: Path, runner: CliRunner
) -> None:
    copy = tmp_path / "sts_001"
    for part in ("CT", "MR_T1", "PET"):
        shutil.copytree(STS_001 / part, copy / part)
    run(registered, key_file, copy / "CT", copy / "MR_T1")
    query = parse_text("image_collection = NB_IMAGING")
    with registered.connect() as conn:
        v1 = freeze(conn, query, name="sts", created_by="t", role="data_manager")
    run(registered, key_file, copy / "PET")  # a new modality of the same donor and study
    with registered.connect() as conn:
        v2 = freeze(conn, query, name="sts", created_by="t", role="data_manager")
        changes = diff(conn, v1.identifier, v2.identifier)
        pet = conn.execute(
            text(
                "SELECT s.series_instance_uid, count(*) FROM imaging_series s"
                " JOIN imaging_instance i ON i.imaging_series_id = s.id"
                " WHERE i.location LIKE :pet GROUP BY s.series_instance_uid"
            ),
            {"pet": f"{copy / 'PET'}%"},
        ).all()
    assert pet and changes["series"]["added"] == sorted(uid for uid, _ in pet)
    assert changes["counts"]["instances_added"] == sum(n for _, n in pet) == 59 + 1
    assert changes["series"]["removed"] == changes["series"]["changed"] == []
    assert v2.studies == v1.studies == 1 and v2.series == v1.series + len(pet)

    # an instance re-ingested from a different file: a new content hash in the database
    with registered.connect() as conn:
        sop, series_uid, old_hash, location = conn.execute(
            text(
                "SELECT i.sop_instance_uid, s.series_instance_uid, i.content_hash, i.location"
                " FROM imaging_instance i JOIN imaging_series s ON s.id = i.imaging_series_id"
                " WHERE i.location LIKE :ct ORDER BY i.sop_instance_uid"
            ),
            {"ct": f"{copy / 'CT' / 'image'}%"},
        ).first()
    with registered.begin() as conn:
        conn.execute(
            text("UPDATE imaging_instance SET content_hash = :h WHERE sop_instance_uid = :u"),
            {"h": "f" * 64, "u": sop},
        )
    with registered.connect() as conn:
        report = verify(conn, v2.identifier)
        v3 = freeze(conn, query, name="sts", created_by="t", role="data_manager")
        conn.commit()  # frozen inside this connection's transaction: the caller commits
        changed = diff(conn, v2.identifier, v3.identifier)
    assert not report["ok"] and report["manifest_intact"]
    assert report["counts"]["content_changed"] == 1 and len(report["mismatches"]) == 1
    (mismatch,) = report["mismatches"]
    assert mismatch == {
        "sop_instance_uid": sop,
        "series_instance_uid": series_uid,
        "problem": "content_changed",
        "expected": old_hash,
        "found": "f" * 64,
    }
    assert changed["counts"] == {
        "series_added": 0, "series_removed": 0, "series_changed": 1,
        "instances_added": 0, "instances_removed": 0, "instances_changed": 1,
    }  # fmt: skip
    assert changed["instances"]["changed"][0]["to_content_hash"] == "f" * 64

    # a file of the release deleted from disk; verify by the CLI exits 1 and names it
    os.remove(location)
    db = registered.url.render_as_string(hide_password=False)
    code, out = invoke(runner, "release", "verify", v3.identifier, "--db", db, "--json")
    assert code == 1, out
    found = json.loads(out)
    assert [(m["sop_instance_uid"], m["problem"]) for m in found["mismatches"]] == [
        (sop, "file_missing")
    ]
    code, out = invoke(runner, "release", "verify", "sts/v1", "--db", db)
    assert code == 1 and "file_missing" in out and "content_changed" in out

    # consent given later that rules out the release's purpose
    with registered.connect() as conn:
        commercial = freeze(
            conn, query, name="sts-c", created_by="t", role="admin",
            purpose=Purpose.of(["commercial"]),
        )  # fmt: skip
        assert commercial.purpose == ["commercial"]
        assert verify(conn, commercial.identifier)["donors"] == []
    donors = tmp_path / "donors.csv"
    donors.write_text("donor_id,sex,use_access_conditions\nSTS_001,Male,NCU\n")
    code, out = invoke(runner, "import", "donors", str(donors), "-c", NB_TISSUE, "--db", db,
                       "--key-file", str(key_file))  # fmt: skip
    assert code == 0, out
    with registered.connect() as conn:
        withdrawn = verify(conn, commercial.identifier)
        assert [d["problem"] for d in withdrawn["donors"]] == ["consent_rules_out"]
        assert withdrawn["donors"][0]["donor"] == sts_pseudonym(conn)
        assert not withdrawn["ok"]


def test_consent_leaves_out_the_ncu_donor(registered: Engine, cohort_db: str) -> None:
    commercial = Purpose.of(["commercial"])
    with registered.connect() as conn:
        sts = sts_pseudonym(conn)
        plain = freeze(conn, parse_text(CT), name="ct", created_by="t", role="admin")
        sold = freeze(
            conn, parse_text(CT), name="ct-commercial", created_by="t", role="admin",
            purpose=commercial,
        )  # fmt: skip
        donors_plain = {s["donor"] for s in get_release(conn, plain.identifier)["series"]}
        sold_data = get_release(conn, sold.identifier)
        expected = stored_instances(conn, CT, commercial)
        with pytest.raises(ReleaseError, match="matches no series"):
            freeze(
                conn, parse_text("diagnosis in C74"), name="nb", created_by="t", role="admin",
                purpose=commercial,
            )  # fmt: skip
        assert list_releases(conn, "nb") == []  # nothing written for the refused one
    assert sts in donors_plain
    assert sts not in {s["donor"] for s in sold_data["series"]}
    assert released_instances(sold_data) == expected and sold.series < plain.series
    assert sold_data["purpose"] == ["commercial"] and sold.donors == plain.donors - 1


def test_researchers_cannot_freeze_or_see_manifests(registered: Engine, cohort_db: str) -> None:
    tree = parse_text(CT)
    with registered.connect() as conn:
        with pytest.raises(PermissionError, match="data_manager"):
            freeze(conn, tree, name="ct", created_by="r", role="researcher")
        with pytest.raises(ReleaseError, match="roles: researcher"):
            freeze(conn, tree, name="ct", created_by="r", role="boss")
        with pytest.raises(ReleaseError, match="release name"):
            freeze(conn, tree, name="ct/v1", created_by="d", role="data_manager")
        assert list_releases(conn) == []
        release = freeze(conn, tree, name="ct", created_by="d", role="data_manager")
        with pytest.raises(PermissionError):
            export_manifest(conn, release.identifier, "csv", role="researcher")
        with pytest.raises(PermissionError):
            verify(conn, release.identifier, role="researcher")
        seen = get_release(conn, release.identifier, role="researcher")
        counts_only = diff(conn, release.identifier, release.identifier, role="researcher")
    assert "series" not in seen and seen["obfuscated"]
    assert seen["counts"]["series"] == obfuscate(release.series) != release.series
    assert seen["counts"]["donors"] == 10 and release.donors < 10  # small counts hidden
    assert set(counts_only) == {"from", "to", "same_content", "counts", "obfuscated"}


def test_the_cli_end_to_end(
    runner: CliRunner, cohort_db: str, registered: Engine, tmp_path: Path
) -> None:
    db = cohort_db
    code, out = invoke(runner, "release", "create", "pet", "modality = PT and diagnosis in C74",
                       "--db", db, "--by", "Dr Who", "--json")  # fmt: skip
    assert code == 0, out
    created = json.loads(out)
    assert created["created_by"] == "Dr Who" and created["counts"]["instances"] == 59
    ident = created["identifier"]
    query_file = tmp_path / "query.json"
    query_file.write_text(json.dumps({"key": "modality", "type": "IN", "value": ["PT", "MR"]}))
    code, out = invoke(runner, "release", "create", "pet", "--json-query", str(query_file),
                       "--db", db)  # fmt: skip
    assert code == 0 and "pet/v2-" in out, out
    code, out = invoke(runner, "release", "list", "--db", db, "--json")
    assert code == 0 and [r["version"] for r in json.loads(out)] == [1, 2]
    assert json.loads(out)[1]["created_by"]  # the operating-system user by default
    code, out = invoke(runner, "release", "list", "--db", db)
    assert code == 0 and "pet/v1" in out
    code, out = invoke(runner, "release", "show", ident, "--db", db)
    assert code == 0 and "PT" in out and ident in out
    code, out = invoke(runner, "release", "show", "pet/v1", "--db", db, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["series"][0]["instance_count"] == 59
    assert len(shown["series"][0]["instances"]) == 59
    target = tmp_path / "pet-v1.csv"
    code, out = invoke(runner, "release", "manifest", ident, "--format", "csv", "-o", str(target),
                       "--db", db)  # fmt: skip
    assert code == 0 and "59 instances" in out
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 59 and {r["modality"] for r in rows} == {"PT"}
    assert {r["sop_instance_uid"] for r in rows} == {
        i["sop_instance_uid"] for i in shown["series"][0]["instances"]
    }
    assert "STS_001" not in target.read_text()  # pseudonymised
    code, out = invoke(runner, "release", "manifest", ident, "--format", "json", "--db", db)
    assert code == 0 and manifest_sha256(json.loads(out)["instances"]) == shown["manifest_sha256"]
    code, out = invoke(runner, "release", "diff", "pet/v1", "pet", "--db", db, "--json")
    assert code == 0, out
    changes = json.loads(out)
    second = json.loads(invoke(runner, "release", "show", "pet", "--db", db, "--json")[1])
    added = {s["series_instance_uid"] for s in second["series"] if s["modality"] == "MR"}
    assert changes["series"]["added"] == sorted(added) and len(added) >= 2  # STS's, pydicom's
    assert changes["counts"]["series_removed"] == changes["counts"]["series_changed"] == 0
    code, out = invoke(runner, "release", "diff", "pet/v1", "pet", "--db", db)
    assert code == 0 and "series added" in out
    code, out = invoke(runner, "release", "verify", ident, "--db", db)
    assert code == 0 and "all 59 instances match" in out
    # usage errors: exit 2 with what is allowed
    for args, message in (
        (("show", "nope"), "releases: pet/v1"),
        (("create", "bad name", "modality = PT"), "release name"),
        (("create", "x", "modality PT"), "expected an operator"),
        (("create", "x", "modality = PT", "--purpose", "fun"), "unknown purpose"),
        (("create", "x", "modalty = PT"), "modality"),
        (("create", "x", "diagnosis in C74", "--purpose", "commercial"), "matches no series"),
        (("manifest", ident, "--format", "xml"), "csv or json"),
    ):
        code, out = invoke(runner, "release", *args, "--db", db)
        assert code == 2 and message in out, (args, out)
    code, out = invoke(runner, "release", "create", "x", "modality = PT", "--role", "researcher",
                       "--db", db)  # fmt: skip
    assert code == 1 and "data_manager" in out


def test_the_same_content_gives_the_same_hash_on_both_backends(
    sqlite_url: str, postgres_url: str, key_file: Path
) -> None:
    from imaging_biobank.db.engine import make_engine, session_factory
    from imaging_biobank.db.migrate import upgrade
    from imaging_biobank.register import register
    from tests.conftest import EXAMPLE

    hashes = []
    for url in (sqlite_url, postgres_url):
        engine = make_engine(url)
        try:
            upgrade(engine)
            with session_factory(engine).begin() as session:
                register(session, EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
            run(engine, key_file, STS_001 / "PET", STS_001 / "CT")
            with engine.connect() as conn:
                release = freeze(
                    conn, parse_text("modality in (PT, CT)"), name="b", created_by="t",
                    role="admin",
                )  # fmt: skip
                rows = json.loads(export_manifest(conn, release.identifier, "json"))["instances"]
            assert len(rows) == release.instances == 2 * 59
            hashes.append(release.manifest_sha256)
        finally:
            engine.dispose()
    assert hashes[0] == hashes[1]
