"""Facets of the catalogue on real data: donors per value (all donors and a cohort's), their
obfuscation, consent, and the values each collection has; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text

from imaging_biobank.catalogue.donor_facets import built, refresh_donor_facets
from imaging_biobank.query import facets as facets_module
from imaging_biobank.query.ast import parse_text
from imaging_biobank.query.engine import obfuscate
from imaging_biobank.query.facets import FACETS, collection_facets, facets
from imaging_biobank.query.keys import QueryKeyError
from imaging_biobank.samples.consent import Purpose
from imaging_biobank.vocab import catalog
from tests.test_query import NB_TISSUE, cohort_db

__all__ = ["cohort_db"]  # the fixture, used by name

BIOBANK = "bbmri-eric:ID:ES_PRIMAGE:collection:"


def code(table: str, value: str) -> str:
    """The code a value is stored under (as the importers resolve it)."""
    return catalog.resolve(table, value).code


def donors_by(conn: Connection, sql: str) -> dict[str, int]:
    """(value, donors) rows of plain SQL, as a dict."""
    return {str(value): int(n) for value, n in conn.execute(text(sql)) if value is not None}


def test_facets_count_each_donor_once_per_value(
    registered: Engine, cohort_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with registered.connect() as conn:
        found = facets(conn, role="admin")  # from donor_facet, as the writers derived it
        assert facets(conn, role="admin", live=True) == found  # from the data itself
        monkeypatch.setattr(facets_module, "MAX_CASE", 0)  # diseases joined, not a CASE
        joined = facets(conn, role="admin", live=True)
        modalities = donors_by(
            conn,
            "SELECT m.code, count(DISTINCT s.sample_donor_id) FROM imaging_series s"
            " JOIN modality m ON m.id = s.modality_id GROUP BY m.code",
        )
        body_parts = donors_by(
            conn,
            "SELECT b.code, count(DISTINCT s.sample_donor_id) FROM imaging_series s"
            " JOIN body_part_examined b ON b.id = s.body_part_examined_id GROUP BY b.code",
        )
        sexes = donors_by(
            conn,
            "SELECT x.code, count(*) FROM sample_donor d JOIN sex x ON x.id = d.sex_id"
            " GROUP BY x.code",
        )
        ages = conn.execute(
            text(
                "SELECT st.patient_age_years, s.sample_donor_id FROM imaging_series s"
                " JOIN imaging_study st ON st.id = s.imaging_study_id"
                " WHERE st.patient_age_years IS NOT NULL"
            )
        ).all()
        imaged = conn.execute(
            text("SELECT count(DISTINCT sample_donor_id) FROM imaging_series")
        ).scalar_one()
    assert list(found) == list(FACETS)
    # STS_001 has several CT series and counts once under CT, once under each of its others
    assert found["modality"] == modalities and found["modality"]["PT"] == 1
    assert {"CT", "MR", "PT"} <= set(found["modality"])
    assert found["body_part"] == body_parts
    assert found["sex"] == sexes and found["sex"]["Male"] >= 1
    bands: dict[str, set[int]] = {}
    for age, donor in ages:
        low = int(age // 10) * 10
        bands.setdefault(f"{low}-{low + 9}", set()).add(donor)
    assert found["age"] == {band: len(d) for band, d in bands.items()} != {}
    # the samples: T1 fresh frozen at -80 and T2 FFPE at RT (STS_001), T3 plasma at -80
    assert found["material_type"] == {
        code("material_type", v): 1 for v in ("Tissue (fresh frozen)", "Tissue (FFPE)", "Plasma")
    }
    assert found["storage_temperature"] == {
        code("storage_temperature", "-80"): 2,
        code("storage_temperature", "RT"): 1,
    }
    # diagnoses by ICD-10 category: C74.9 (STS_001's two samples) and C71.7 (OTHER-1)
    assert found["diagnosis"] == {"C71": 1, "C74": 1} == joined["diagnosis"]
    assert found["collection_kind"] == {"image": imaged, "sample_tissue": 2}

    # researchers see the Locator's obfuscation of the same counts
    with registered.connect() as conn:
        shown = facets(conn)
    assert shown == {
        name: {value: obfuscate(n) for value, n in values.items()} for name, values in found.items()
    }
    with registered.connect() as conn, pytest.raises(QueryKeyError, match="roles"):
        facets(conn, role="curator")


def test_facets_of_a_cohort_and_a_purpose(registered: Engine, cohort_db: str) -> None:
    pet = parse_text("modality = PT")
    with registered.connect() as conn:
        cohort = facets(conn, pet, role="admin")
        commercial = Purpose.of(["commercial"])
        refused = facets(conn, pet, role="admin", purpose=commercial)
        everyone_commercial = facets(conn, role="admin", purpose=commercial)
        sts_modalities = {
            str(m)
            for (m,) in conn.execute(
                text(
                    "SELECT DISTINCT m.code FROM imaging_series s"
                    " JOIN modality m ON m.id = s.modality_id WHERE s.sample_donor_id IN"
                    " (SELECT sample_donor_id FROM imaging_series WHERE modality_value = 'PT')"
                )
            )
        }
    # the one PET donor (STS_001), with everything it has: all its modalities, its samples
    assert cohort["modality"] == dict.fromkeys(sorted(sts_modalities), 1)
    assert cohort["sex"] == {"Male": 1} and cohort["diagnosis"] == {"C74": 1}
    assert cohort["material_type"] == {
        code("material_type", "Tissue (fresh frozen)"): 1,
        code("material_type", "Tissue (FFPE)"): 1,
    }
    assert cohort["collection_kind"] == {"image": 1, "sample_tissue": 1}
    # STS_001's consent excludes commercial use: nobody is left of the cohort
    assert all(values == {} for values in refused.values())
    # over all donors, STS_001's samples drop out, OTHER-1's plasma stays
    assert everyone_commercial["material_type"] == {code("material_type", "Plasma"): 1}
    assert everyone_commercial["diagnosis"] == {"C71": 1}


def test_two_editions_of_one_code_count_a_donor_once(registered: Engine, cohort_db: str) -> None:
    """A CT series stored with the PRIMAGE edition's CT term beside CID 33's: one donor."""
    with registered.begin() as conn:
        before = facets(conn, role="admin", live=True)["modality"]["CT"]
        primage_ct = conn.execute(
            text(
                "SELECT m.id FROM modality m JOIN vocabulary v ON v.id = m.vocabulary_id"
                " WHERE v.name = 'modality.primage' AND m.code = 'CT'"
            )
        ).scalar_one()
        changed = conn.execute(
            text(
                "UPDATE imaging_series SET modality_id = :id WHERE id = (SELECT min(id) FROM"
                " imaging_series WHERE modality_value = 'CT' AND sample_donor_id IN"
                " (SELECT sample_donor_id FROM imaging_series WHERE modality_value = 'PT'))"
            ),
            {"id": primage_ct},
        ).rowcount
        after = facets(conn, role="admin", live=True)["modality"]
        refresh_donor_facets(conn)
        derived = facets(conn, role="admin")["modality"]
    assert changed == 1
    assert after["CT"] == before == derived["CT"]  # STS_001 still counts once, under CT


def test_each_collection_shows_the_values_it_has(registered: Engine, cohort_db: str) -> None:
    with registered.connect() as conn:
        shown = collection_facets(conn)
        nb_modalities = sorted(
            str(m)
            for (m,) in conn.execute(
                text(
                    "SELECT DISTINCT m.code FROM imaging_series s JOIN modality m"
                    " ON m.id = s.modality_id JOIN collection c ON c.id = s.image_collection_id"
                    " WHERE c.identifier = :c"
                ),
                {"c": BIOBANK + "NB_IMAGING"},
            )
        )
    nb_imaging, tissue = shown[BIOBANK + "NB_IMAGING"], shown[NB_TISSUE]
    assert set(shown[NB_TISSUE]) == set(FACETS)
    assert nb_imaging["collection_kind"] == ["image"] and nb_imaging["modality"] == nb_modalities
    # derived from the imported samples, not the registration's TISSUE_FROZEN and paraffin
    assert tissue["material_type"] == sorted(
        code("material_type", v) for v in ("Tissue (fresh frozen)", "Tissue (FFPE)", "Plasma")
    )
    assert tissue["diagnosis"] == ["C71", "C74"] and tissue["collection_kind"] == ["sample_tissue"]
    # a collection without data shows what was declared: C71.7, both sexes, 2 to 18 years
    dipg = shown[BIOBANK + "DIPG_IMAGING"]
    assert dipg["diagnosis"] == ["C71"] and dipg["sex"] == ["Female", "Male"]
    assert dipg["age"] == ["0-9", "10-19"] and dipg["modality"] == []


@pytest.mark.parametrize(
    "text_",
    [None, "modality = CT", "material_type = TISSUE_FROZEN or sex = Female", "not modality = MR"],
)
def test_derived_facet_rows_count_as_the_data_does(
    registered: Engine, cohort_db: str, text_: str | None
) -> None:
    """The writers' donor_facet rows give the counts the data gives, for all donors and for
    cohorts, for every role; an upgraded database without them counts from the data."""
    tree = None if text_ is None else parse_text(text_)
    with registered.connect() as conn:
        assert built(conn)  # the ingest and the imports derived them
        for role in ("researcher", "data_manager"):
            assert facets(conn, tree, role=role) == facets(conn, tree, role=role, live=True)
    with registered.begin() as conn:
        expected = facets(conn, tree, role="admin", live=True)
        conn.execute(text("DELETE FROM donor_facet"))  # as after the upgrade that made it
        assert facets(conn, tree, role="admin") == expected
        refresh_donor_facets(conn)
        assert facets(conn, tree, role="admin") == expected
