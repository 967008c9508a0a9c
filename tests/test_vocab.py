"""Controlled vocabularies: shipped as versioned data, loaded as rows, resolved like users write."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from imaging_biobank.model import BodyPartExamined, Vocabulary
from imaging_biobank.model.vocab import TERM_TABLES
from imaging_biobank.vocab import catalog
from tests.conftest import SHARED, server_unavailable

DIRECTORY = SHARED / "reference" / "bbmri_directory_emx1"


def terms_in_db(engine: Engine, vocabulary: str) -> int:
    with engine.connect() as conn:
        table = conn.execute(
            text("SELECT table_name FROM vocabulary WHERE name = :n"), {"n": vocabulary}
        ).scalar_one()
        return conn.execute(
            text(
                f"SELECT count(*) FROM {table} t JOIN vocabulary v ON v.id = t.vocabulary_id"
                " WHERE v.name = :n"
            ),
            {"n": vocabulary},
        ).scalar_one()


def test_primage_and_current_dicom_editions_hold_their_counts(engine: Engine) -> None:
    expected = {
        "body-part-examined.primage": 116,
        "dataset-type.primage": 120,
        "modality.primage": 54,
        "body-part-examined.annex-l": 317,
        "modality.cid33": 74,
        "disease.icd-10": 11480,
    }
    for name, count in expected.items():
        assert terms_in_db(engine, name) == count, name


def test_chest_is_816094009_now_and_43799004_is_accepted_on_read(engine: Engine) -> None:
    chest = catalog.resolve("body_part_examined", "CHEST")
    assert (chest.vocabulary, chest.get("snomed_code")) == (
        "body-part-examined.annex-l",
        "816094009",
    )
    for old in ("43799004", "51185008"):  # earlier Annex L edition, PRIMAGE/Directory list
        assert catalog.resolve("body_part_examined", old) == chest

    def body_part(session: Session, vocabulary: str, code: str) -> BodyPartExamined | None:
        return session.scalar(
            select(BodyPartExamined)
            .join(Vocabulary)
            .where(Vocabulary.name == vocabulary, BodyPartExamined.code == code)
        )

    with Session(engine) as session:
        row = body_part(session, "body-part-examined.annex-l", "CHEST")
        assert row is not None and row.snomed_code == "816094009"
        assert "43799004" in (row.legacy_snomed_codes or [])
        # the PRIMAGE edition's term maps to the current one and back
        primage = body_part(session, "body-part-examined.primage", "CHEST")
        assert primage is not None and primage.directory_id == "T-D3000"
        assert primage.maps_to_id == row.id and row.maps_to_id == primage.id


def test_terms_know_their_edition_and_map_across(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT b.code, m.code, v.name FROM body_part_examined b"
                " JOIN body_part_examined m ON m.id = b.maps_to_id"
                " JOIN vocabulary v ON v.id = m.vocabulary_id"
                " JOIN vocabulary bv ON bv.id = b.vocabulary_id"
                " WHERE bv.name = 'body-part-examined.primage'"
            )
        ).all()
    mapped = {code: (target, vocab) for code, target, vocab in rows}
    assert len(mapped) == 116  # every PRIMAGE term has a current counterpart
    assert mapped["ARM"] == ("UPPERARM", "body-part-examined.annex-l")  # by SNOMED code
    assert mapped["GALLBLADER"][0] == "GALLBLADDER"  # the Directory's typo
    with engine.connect() as conn:
        sources = conn.execute(text("SELECT name, edition, source, sha256 FROM vocabulary")).all()
    assert all(edition and source and len(sha) == 64 for _, edition, source, sha in sources)


def test_shipped_files_match_their_manifest() -> None:
    for info in catalog.manifest():
        data = catalog.file_bytes(info)
        assert hashlib.sha256(data).hexdigest() == info.sha256, info.file
        assert len(catalog.terms(info.name)) == info.terms, info.file
        codes = [t.code for t in catalog.terms(info.name)]
        assert len(set(codes)) == len(codes), f"{info.file}: duplicate codes"


def test_every_file_column_has_a_table_column_and_every_mapping_resolves() -> None:
    for info in catalog.manifest():
        table = TERM_TABLES[info.table].__table__  # type: ignore[attr-defined]
        rows = catalog.rows(info.name)
        columns = set(rows[0]) if rows else set()
        # relations between terms (hierarchies) live in the catalogue, not in the tables
        missing = columns - set(table.c.keys()) - {"maps_to", "parent", "within", "covers"}
        assert not missing, f"{info.file}: {missing}"
        for term in catalog.terms(info.name):
            if term.maps_to:
                catalog.term(*term.maps_to)
            if term.get("parent"):
                catalog.term(info.name, term.get("parent"))
            for region in f"{term.get('within')}|{term.get('covers')}".split("|"):
                if region.strip():
                    catalog.term(info.name, region.strip())


def test_primage_lists_are_exactly_the_directory_lookups() -> None:
    if not DIRECTORY.exists():
        server_unavailable(f"the reference data {DIRECTORY} is not beside the clone")

    def ids(name: str) -> list[str]:
        text_ = (DIRECTORY / name).read_text(encoding="utf-8").replace("\r", "\n")
        return [r["id"] for r in csv.DictReader(io.StringIO(text_)) if r.get("id")]

    ours = {
        name: {t.get("directory_id") for t in catalog.terms(name)}
        for name in ("body-part-examined.primage", "dataset-type.primage", "modality.primage")
    }
    assert ours["body-part-examined.primage"] == set(ids("eu_bbmri_eric_body_parts.csv"))
    assert ours["dataset-type.primage"] == set(ids("eu_bbmri_eric_image_data_types.csv"))
    assert ours["modality.primage"] == set(ids("eu_bbmri_eric_imaging_modality.csv"))
    disease = {t.get("directory_id") for t in catalog.terms("disease.icd-10")}
    assert disease == set(ids("eu_bbmri_eric_disease_types.csv"))
    for lookup, table in (
        ("eu_bbmri_eric_temp_types.csv", "storage_temperature"),
        ("eu_bbmri_eric_sex_types.csv", "sex"),
        ("eu_bbmri_eric_data_types.csv", "data_category"),
        ("eu_bbmri_eric_collection_types.csv", "collection_category"),
    ):
        for directory_id in ids(lookup):
            if directory_id in ("NAV", "NASK"):
                continue
            assert catalog.resolve(table, directory_id), (lookup, directory_id)


def test_current_editions_agree_with_the_libraries_they_came_from() -> None:
    import highdicom
    from pydicom.sr.codedict import codes
    from pydicom.uid import UID

    regions = json.loads(
        (Path(highdicom.__file__).parent / "_standard" / "anatomic_regions.json").read_text()
    )
    ours = {t.code: t.get("snomed_code") for t in catalog.terms("body-part-examined.annex-l")}
    assert ours == {term: v[1] for term, v in regions.items()}
    cid33 = {getattr(codes.cid33, k).value for k in codes.cid33.dir()}
    assert {t.code for t in catalog.terms("modality.cid33")} == cid33
    for t in catalog.terms("dataset-type.pydicom"):
        assert UID(t.code).name == t.label


def test_values_resolve_as_users_write_them() -> None:
    same = ["-60 °C to -85 °C", "temperature-60to-85", "-80", "-80 °C", "-60°C to -85°C"]
    assert len({catalog.resolve("storage_temperature", v) for v in same}) == 1
    vapour = catalog.resolve("storage_temperature", "temperatureGN")
    liquid = catalog.resolve("storage_temperature", "temperatureLN")
    assert vapour != liquid  # MIABIS 3 splits liquid nitrogen: never collapse the two
    assert catalog.resolve("storage_temperature", "<-135 °C") not in (vapour, liquid)
    # the Directory knows no vapour phase: its export falls back to Other
    assert vapour.maps_to == ("storage-temperature.miabis-2.0", "Other")
    assert catalog.term(*vapour.maps_to).get("directory_id") == "temperatureOther"
    frozen = catalog.resolve("material_type", "TISSUE_FROZEN")
    assert frozen.code == "Tissue (Frozen)"

    def directory(table: str, value: str) -> str:
        return catalog.external_code(catalog.resolve(table, value), "directory_id")

    assert directory("material_type", "Tissue (FFPE)") == "TISSUE_PARAFFIN_EMBEDDED"
    assert directory("material_type", "Tissue (fresh frozen)") == "TISSUE_FROZEN"
    assert directory("material_type", "Plasma") == "PLASMA"  # never SERUM
    assert directory("material_type", "Faeces") == "FECES"
    assert directory("storage_temperature", "Liquid nitrogen vapor-phase") == "temperatureOther"
    assert directory("storage_temperature", "Liquid nitrogen liquid-phase") == "temperatureLN"
    for sex, expected in (
        ("Male", "MALE"),
        ("Female", "FEMALE"),
        ("Unknown", "UNKNOWN"),
        ("Undifferentiated", "UNDIFFERENTIAL"),
    ):
        assert directory("sex", sex) == expected
    assert catalog.resolve("sex", "UNDIFFERENTIAL").code == "Undifferentiated"
    assert catalog.resolve("country", "UK").code == "GB"
    assert catalog.resolve("modality", "DS").vocabulary == "modality.retired"


def test_unknown_values_name_what_is_allowed() -> None:
    with pytest.raises(catalog.UnknownTermError) as error:
        catalog.resolve("storage_temperature", "minus eighty")
    assert "temperature-60to-85" in str(error.value) and "-60 °C to -85 °C" in str(error.value)
    with pytest.raises(catalog.UnknownTermError) as error:
        catalog.resolve("body_part_examined", "CHESST")
    assert "CHEST" in str(error.value)


SMALL_TABLES = sorted({v.table for v in catalog.manifest() if v.terms < 100})


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_case_and_spacing_do_not_matter(data: st.DataObject) -> None:
    table = data.draw(st.sampled_from(SMALL_TABLES))
    term = data.draw(
        st.sampled_from([t for v in catalog.vocabularies_of(table) for t in catalog.terms(v.name)])
    )
    exact = catalog.resolve(table, term.code)
    flips = data.draw(st.lists(st.booleans(), min_size=len(term.code), max_size=len(term.code)))
    mangled = "".join(c.swapcase() if f else c for c, f in zip(term.code, flips, strict=True))
    found = catalog.resolve(table, f"  {mangled} ")
    # the same term, or (two editions spelling one code in other cases: "Immortalized Cell
    # Lines" in MIABIS 2.0, "Immortalized cell lines" in 2020) the preferred edition's
    assert found == exact or (
        catalog.normalise(found.code) == catalog.normalise(exact.code)
        and catalog.vocabulary(found.vocabulary).priority
        < catalog.vocabulary(exact.vocabulary).priority
    )


def test_body_parts_form_a_hierarchy_of_regions() -> None:
    from imaging_biobank.vocab.regions import regions_of, showing

    assert regions_of("PANCREATICDUCT") == {"PANCREATICDUCT", "PANCREAS", "ABDOMEN", "TRUNK"}
    abdomen = showing("ABDOMEN")
    assert {"ABDOMEN", "PANCREAS", "KIDNEY", "ADRENAL", "CHESTABDPELVIS", "WHOLEBODY"} <= abdomen
    assert not {"CHEST", "LUNG", "HEAD", "NECKCHEST"} & abdomen
    # an organ is not taken to be shown by a scan of its region
    assert showing("PANCREAS") == {"PANCREAS", "PANCREATICDUCT"}
    # any edition or spelling of the value: the PRIMAGE list, a synonym
    assert showing("ABD") == abdomen == showing("Abdomen")
    assert "LOWERLEG" in showing("EXTREMITY") and "FOREARM" in showing("UPPERLIMB")
