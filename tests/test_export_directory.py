"""``export directory``: the BBMRI-ERIC Directory's EMX1 workbook and EMX2 tables.

The workbook of the demo biobank is checked against the Directory's own model files in
``../shared/reference/bbmri_directory_emx1`` (read here, independently of the copies the
package ships): required attributes filled, lookup ids that exist, id patterns, order of
magnitude from counts made here, imaging fields for every image collection.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from imaging_biobank.cli import app
from imaging_biobank.export.directory_facts import FactUnit, star_facts
from tests.conftest import IN_CI, SHARED

REFERENCE = SHARED / "reference" / "bbmri_directory_emx1"
MAIN = (
    "eu_bbmri_eric_persons",
    "eu_bbmri_eric_networks",
    "eu_bbmri_eric_biobanks",
    "eu_bbmri_eric_collections",
)
ID_CHARACTERS = re.compile(r"^[A-Za-z0-9:_-]+$")
NODE = r"([A-Z]{2}|EXT|EU|IARC)"
PREFIXES = {
    "eu_bbmri_eric_biobanks": re.compile(rf"^bbmri-eric:ID:{NODE}_"),
    "eu_bbmri_eric_persons": re.compile(rf"^bbmri-eric:contactID:{NODE}_"),
    "eu_bbmri_eric_networks": re.compile(r"^bbmri-eric:networkID:([A-Z]{2}|EU|EXT)_"),
}
Sheet = list[dict[str, object]]

if not REFERENCE.is_dir():  # the rules are checked from the reference files, never skipped in CI
    if IN_CI:
        raise RuntimeError(f"{REFERENCE} is not here (in CI ../shared must be beside the clone)")
    pytest.skip(f"{REFERENCE} is not here", allow_module_level=True)


def reference_rows(name: str) -> list[dict[str, str]]:
    """A reference CSV of the Directory model (some are CR-terminated, old Mac style)."""
    content = (REFERENCE / name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(content, newline=None)))


def reference_ids(entity: str) -> set[str]:
    return {r["id"] for r in reference_rows(f"{entity}.csv")}


def read_workbook(path: Path) -> dict[str, Sheet]:
    """Every sheet as a list of rows keyed by the header."""
    book = load_workbook(path, read_only=True)
    sheets: dict[str, Sheet] = {}
    for sheet in book.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        header = [str(h) for h in rows[0]]
        sheets[sheet.title] = [dict(zip(header, r, strict=True)) for r in rows[1:]]
        sheets[sheet.title + "#header"] = [{"columns": header}]
    return sheets


def ids_of(value: object) -> list[str]:
    """The ids of a cell (mref cells hold them comma-separated)."""
    if value is None or value == "":
        return []
    return [v for v in str(value).split(",") if v]


def export(url: str, out: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["export", "directory", str(out), "--db", url, *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("directory")


@pytest.fixture(scope="module")
def workbook(full_biobank: str, folder: Path) -> dict[str, Sheet]:
    code, output = export(full_biobank, folder / "primage.xlsx")
    assert code == 0, output
    return read_workbook(folder / "primage.xlsx")


@pytest.fixture(scope="module")
def emx2(full_biobank: str, folder: Path) -> dict[str, list[dict[str, str]]]:
    code, output = export(full_biobank, folder / "eric")
    assert code == 0, output
    return {
        p.stem: list(csv.DictReader(p.open(encoding="utf-8")))
        for p in sorted((folder / "eric").glob("*.csv"))
    }


@pytest.fixture(scope="module")
def demo(full_biobank: str) -> Iterator[sqlite3.Connection]:
    """The demo database, read-only, for counts made independently of the exporter."""
    path = full_biobank.removeprefix("sqlite:///")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield conn
    conn.close()


def kinds(demo: sqlite3.Connection) -> dict[str, str]:
    return dict(demo.execute("SELECT identifier, kind FROM collection").fetchall())


def test_workbook_passes_the_directorys_rules(workbook: dict[str, Sheet]) -> None:
    attributes = reference_rows("attributes.csv")
    lookups = {
        e: reference_ids(e)
        for e in {a["refEntity"] for a in attributes} - {""}
        if (REFERENCE / f"{e}.csv").exists()
    }
    added_countries = {str(r["id"]) for r in workbook.get("eu_bbmri_eric_countries", [])}
    assert not added_countries & lookups["eu_bbmri_eric_countries"]
    lookups["eu_bbmri_eric_countries"] |= added_countries
    rows_by_entity = {e: workbook[e] for e in MAIN}
    assert rows_by_entity["eu_bbmri_eric_collections"] and rows_by_entity["eu_bbmri_eric_biobanks"]
    ids = {e: {str(r["id"]) for r in rows} for e, rows in rows_by_entity.items()}
    checked_lookups = set()
    for entity in MAIN:
        header = workbook[entity + "#header"][0]["columns"]
        for a in (a for a in attributes if a["entity"] == entity):
            if a["dataType"] in ("compound", "one_to_many"):
                assert a["name"] not in header  # headings and computed back-references
                continue
            assert a["name"] in header, f"{entity}: no column {a['name']}"
            for row in rows_by_entity[entity]:
                value = row[a["name"]]
                where = f"{entity} {row['id']} {a['name']}"
                if a["nillable"] == "FALSE":
                    assert value not in (None, ""), f"{where}: required but empty"
                if a["dataType"] == "bool" and value is not None:
                    assert value in ("true", "false"), where
                if a["dataType"] == "int" and value is not None:
                    assert isinstance(value, int), where
                ref = a["refEntity"]
                for v in ids_of(value) if ref else []:
                    if ref in ids:
                        assert v in ids[ref], f"{where}: {v} is not a row of {ref}"
                    else:
                        assert v in lookups[ref], f"{where}: {v} is not an id of {ref}"
                        checked_lookups.add(ref)
    # the coded lists the Directory asks for were all used and found in its lists
    assert {
        "eu_bbmri_eric_collection_types",
        "eu_bbmri_eric_data_types",
        "eu_bbmri_eric_biobank_size",
        "eu_bbmri_eric_sex_types",
        "eu_bbmri_eric_age_units",
        "eu_bbmri_eric_disease_types",
        "eu_bbmri_eric_material_types",
        "eu_bbmri_eric_temp_types",
        "eu_bbmri_eric_body_parts",
        "eu_bbmri_eric_imaging_modality",
        "eu_bbmri_eric_image_data_types",
        "eu_bbmri_eric_countries",
    } <= checked_lookups
    # id rules (directory-scripts ValidateIDs.py)
    for entity, rows in rows_by_entity.items():
        for row in rows:
            value = str(row["id"])
            assert ID_CHARACTERS.match(value) and "::" not in value, value
            if entity in PREFIXES:
                assert PREFIXES[entity].match(value), value
    for row in rows_by_entity["eu_bbmri_eric_collections"]:
        assert str(row["id"]).startswith(f"{row['biobank']}:collection:"), row["id"]
        assert row["country"] == next(
            b["country"]
            for b in rows_by_entity["eu_bbmri_eric_biobanks"]
            if b["id"] == row["biobank"]
        )


def test_order_of_magnitude_and_size_follow_the_counts(
    workbook: dict[str, Sheet], demo: sqlite3.Connection
) -> None:
    counts = {
        "image": "SELECT count(*) FROM imaging_instance i JOIN imaging_series s"
        " ON s.id = i.imaging_series_id WHERE s.image_collection_id = ?",
        "sample_tissue": "SELECT count(*) FROM sample WHERE collection_id = ?",
        "clinical_variable": "SELECT count(*) FROM clinical_record WHERE collection_id = ?",
        "molecular_biomarker": "SELECT count(*) FROM molecular_biomarker_result"
        " WHERE collection_id = ?",
    }
    seen = set()
    for row in workbook["eu_bbmri_eric_collections"]:
        cid, kind = demo.execute(
            "SELECT id, kind FROM collection WHERE identifier = ?", (row["id"],)
        ).fetchone()
        n = demo.execute(counts[kind], (cid,)).fetchone()[0]
        assert row["size"] == n
        k = int(row["order_of_magnitude"])  # type: ignore[call-overload]
        assert (n < 10 and k == 0) or 10**k <= n < 10 ** (k + 1), (row["id"], n, k)
        seen.add(k)
    assert seen >= {0, 1, 2}  # 6 samples, 12 records, 180 images


def series_codes(demo: sqlite3.Connection, collection: str, term: str) -> set[str]:
    """The codes of one imaging term (modality, dataset_type, body_part_examined) that the
    series of a collection carry, read from the database."""
    query = (
        f"SELECT DISTINCT t.code FROM imaging_series s JOIN {term} t ON t.id = s.{term}_id"
        " JOIN collection c ON c.id = s.image_collection_id WHERE c.identifier = ?"
    )
    return {c for (c,) in demo.execute(query, (collection,))}


def test_every_image_collection_has_its_imaging_fields_and_imaging_data(
    workbook: dict[str, Sheet], demo: sqlite3.Connection
) -> None:
    modalities = reference_ids("eu_bbmri_eric_imaging_modality")
    dataset_types = reference_ids("eu_bbmri_eric_image_data_types")
    body_parts = {r["label"]: r["id"] for r in reference_rows("eu_bbmri_eric_body_parts.csv")}
    image = [
        r for r in workbook["eu_bbmri_eric_collections"] if kinds(demo)[str(r["id"])] == "image"
    ]
    assert {str(r["id"]).rsplit(":", 1)[1] for r in image} == {"NB_IMAGING", "REFERENCE_IMAGING"}
    for row in image:
        assert "IMAGING_DATA" in ids_of(row["data_categories"])
        cid = str(row["id"])
        assert (
            set(ids_of(row["imaging_modality"])) == series_codes(demo, cid, "modality") & modalities
        )
        assert (
            set(ids_of(row["image_dataset_type"]))
            == series_codes(demo, cid, "dataset_type") & dataset_types
        )
        assert set(ids_of(row["body_part_examined"])) == {
            body_parts[c] for c in series_codes(demo, cid, "body_part_examined") if c in body_parts
        }
        for column in ("imaging_modality", "image_dataset_type", "body_part_examined"):
            assert ids_of(row[column]), f"{row['id']}: {column} empty"
    nb = next(r for r in image if str(r["id"]).endswith(":NB_IMAGING"))
    # STS_001: CT, MR (T1), FDG-PET and their RT structure sets, of the thigh
    assert set(ids_of(nb["imaging_modality"])) == {"CT", "MR", "PT", "RTSTRUCT"}
    assert "1.2.840.10008.5.1.4.1.1.2" in ids_of(nb["image_dataset_type"])  # CT Image IOD
    assert ids_of(nb["body_part_examined"]) == ["T-D0300"]  # EXTREMITY


def copy_of(full_biobank: str, folder: Path, name: str, change: str) -> str:
    """A copy of the demo database with one SQL change made to it."""
    path = folder / name
    source = sqlite3.connect(f"file:{full_biobank.removeprefix('sqlite:///')}?mode=ro", uri=True)
    with sqlite3.connect(path) as conn:
        source.backup(conn)  # through the write-ahead log, unlike a file copy
        source.close()
        assert conn.execute(change).rowcount > 0
    conn.close()
    return f"sqlite:///{path}"


def test_imaging_data_is_added_when_the_registration_forgot_it(
    full_biobank: str, tmp_path: Path
) -> None:
    url = copy_of(
        full_biobank,
        tmp_path,
        "forgot.db",
        "DELETE FROM collection_data_category WHERE data_category_id IN"
        " (SELECT id FROM data_category WHERE directory_id = 'IMAGING_DATA')"
        " AND collection_id = (SELECT id FROM collection WHERE identifier LIKE '%:NB_IMAGING')",
    )
    code, output = export(url, tmp_path / "out.xlsx", "-c", "NB_IMAGING")
    assert code == 0, output
    assert "IMAGING_DATA added" in output
    [row] = read_workbook(tmp_path / "out.xlsx")["eu_bbmri_eric_collections"]
    assert ids_of(row["data_categories"]) == ["IMAGING_DATA", "MEDICAL_RECORDS"]


@pytest.mark.parametrize("out", ["refused.xlsx", "refused_emx2"])
def test_a_collection_missing_a_required_field_is_refused_and_nothing_written(
    full_biobank: str, tmp_path: Path, out: str
) -> None:
    url = copy_of(
        full_biobank,
        tmp_path,
        "broken.db",
        "DELETE FROM collection_collection_category WHERE collection_id ="
        " (SELECT id FROM collection WHERE identifier LIKE '%:NB_TISSUE')",
    )
    (tmp_path / "out").mkdir()
    code, output = export(url, tmp_path / "out" / out)
    assert code == 1
    assert "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE: type: required" in output
    assert "nothing was written" in output
    assert list((tmp_path / "out").iterdir()) == []  # not even a temporary file


def test_collection_option_limits_the_export(full_biobank: str, tmp_path: Path) -> None:
    code, output = export(
        full_biobank, tmp_path / "two.xlsx", "-c", "NB_TISSUE", "--collection", "NB_IMAGING"
    )
    assert code == 0, output
    sheets = read_workbook(tmp_path / "two.xlsx")
    assert [r["id"] for r in sheets["eu_bbmri_eric_collections"]] == [
        "bbmri-eric:ID:ES_PRIMAGE:collection:NB_IMAGING",
        "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE",
    ]
    assert [r["id"] for r in sheets["eu_bbmri_eric_biobanks"]] == ["bbmri-eric:ID:ES_PRIMAGE"]
    tissue = sheets["eu_bbmri_eric_collections"][1]
    assert set(ids_of(tissue["materials"])) == {
        "TISSUE_FROZEN",
        "TISSUE_PARAFFIN_EMBEDDED",
        "PLASMA",
        "OTHER",
    }
    assert set(ids_of(tissue["storage_temperatures"])) == {
        "temperature-60to-85",
        "temperatureRoom",
        "temperatureLN",
    }
    code, output = export(full_biobank, tmp_path / "x.xlsx", "-c", "NO_SUCH")
    assert code == 2 and "no collection 'NO_SUCH'" in output
    assert not (tmp_path / "x.xlsx").exists()


def test_form_and_file_name_must_agree(full_biobank: str, tmp_path: Path) -> None:
    for out, form in (("a.csv", "emx1"), ("a.xlsx", "emx2"), ("a.xlsx", "emx3")):
        code, output = export(full_biobank, tmp_path / out, "--form", form)
        assert code == 2, output
    assert list(tmp_path.iterdir()) == []


def test_emx2_tables_and_the_facts_star_model(
    emx2: dict[str, list[dict[str, str]]],
    demo: sqlite3.Connection,
    full_biobank: str,
    folder: Path,
) -> None:
    assert set(emx2) == {"Persons", "Networks", "Biobanks", "Collections", "CollectionFacts"}
    collections = {r["id"]: r for r in emx2["Collections"]}
    facts = emx2["CollectionFacts"]
    for cid, collection in collections.items():
        own = [f for f in facts if f["collection"] == cid]
        stars = [
            f
            for f in own
            if all(f[d] == "*" for d in ("sex", "age_range", "sample_type", "disease"))
        ]
        assert len(stars) == 1, cid
        assert stars[0]["number_of_samples"] == collection["size"]
        assert collection["number_of_donors"] == stars[0]["number_of_donors"]
    for f in facts:
        assert f["id"].startswith("bbmri-eric:factID:") and f["collection"] in collections
        donors = f["number_of_donors"]
        assert donors == "" or int(donors) >= 10, f
    for c in collections.values():
        assert c["number_of_donors"] == "" or int(c["number_of_donors"]) >= 10
        assert c["order_of_magnitude_donors"] != ""
    # REFERENCE_IMAGING has 27 donors (pydicom's test files): totals and shown cells
    reference = "bbmri-eric:ID:ES_PRIMAGE:collection:REFERENCE_IMAGING"
    donors = demo.execute(
        "SELECT count(DISTINCT s.sample_donor_id) FROM imaging_series s JOIN collection c"
        " ON c.id = s.image_collection_id WHERE c.identifier = ?",
        (reference,),
    ).fetchone()[0]
    own = [f for f in facts if f["collection"] == reference]
    assert own[0]["number_of_donors"] == str(donors) == "27"
    assert len(own) > 1 and all(f["sample_type"] == "*" for f in own)  # images: no material
    # the Persons and ERIC ids are the EMX1 ones; EMX2 adds the contact's role and e-mail
    assert [p["email"] for p in emx2["Persons"]] == ["data.manager@primage.example.org"]
    # the zip holds the same tables
    code, output = export(full_biobank, folder / "eric.zip")
    assert code == 0, output
    with zipfile.ZipFile(folder / "eric.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"{t}.csv" for t in emx2)
        zipped = list(csv.DictReader(io.StringIO(archive.read("Collections.csv").decode())))
    assert zipped == emx2["Collections"]


def test_star_facts_suppress_small_cells_into_the_totals() -> None:
    units = [
        FactUnit(
            donor=i,
            weight=2,
            sex="MALE",
            age_range="Child",
            sample_type="TISSUE_FROZEN",
            diseases=frozenset({"urn:miriam:icd:C74.9"}),
        )
        for i in range(12)
    ] + [
        FactUnit(donor=100 + i, weight=1, sex="FEMALE", age_range="Adult", sample_type="PLASMA")
        for i in range(3)
    ]
    rows = star_facts("bbmri-eric:ID:XX_B:collection:C", units, last_update="2025-01-01")
    key = {(r["sex"], r["age_range"], r["sample_type"], r["disease"]): r for r in rows}
    total = key[("*", "*", "*", "*")]
    assert (total["number_of_donors"], total["number_of_samples"]) == (15, 27)
    assert key[("MALE", "*", "*", "*")]["number_of_donors"] == 12
    assert (
        key[("MALE", "Child", "TISSUE_FROZEN", "urn:miriam:icd:C74.9")]["number_of_samples"] == 24
    )
    assert not any(r["sex"] == "FEMALE" or r["sample_type"] == "PLASMA" for r in rows)
    # a collection of fewer than 10 donors keeps its one total row, donors left empty
    [only] = star_facts("bbmri-eric:ID:XX_B:collection:D", units[12:], last_update="2025-01-01")
    assert (only["number_of_donors"], only["number_of_samples"]) == (None, 3)


def test_no_individual_identifier_leaves_the_biobank(
    workbook: dict[str, Sheet], emx2: dict[str, list[dict[str, str]]], demo: sqlite3.Connection
) -> None:
    secrets = set()
    for query in (
        "SELECT pseudonym FROM sample_donor",
        "SELECT identifier FROM sample",
        "SELECT record_key FROM clinical_record",
        "SELECT identifier FROM event",
        "SELECT study_instance_uid FROM imaging_study",
        "SELECT series_instance_uid FROM imaging_series",
        "SELECT sop_instance_uid FROM imaging_instance",
        "SELECT frame_of_reference_uid FROM imaging_series",
    ):
        secrets |= {str(v) for (v,) in demo.execute(query) if v}
    assert len(secrets) > 300
    written = "\n".join(
        [str(v) for rows in workbook.values() for r in rows for v in r.values()]
        + [v for rows in emx2.values() for r in rows for v in r.values()]
    )
    assert not [s for s in secrets if s in written]


def test_same_workbook_from_postgresql(
    full_biobank_pg: str, workbook: dict[str, Sheet], tmp_path: Path
) -> None:
    code, output = export(full_biobank_pg, tmp_path / "pg.xlsx")
    assert code == 0, output
    assert read_workbook(tmp_path / "pg.xlsx") == workbook
