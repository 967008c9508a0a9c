"""Donors, samples, events, consent and molecular biomarkers from registry files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from imaging_biobank.cli import app
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.model import (
    Event,
    Gene,
    MolecularBiomarkerResult,
    Sample,
    SampleDonor,
    SampleTissueCollection,
)
from imaging_biobank.samples.consent import Purpose, PurposeError, blocking, ruled_out
from tests.conftest import row_counts

NB_TISSUE = "bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE"
HEADER = "sample_id,donor_id,sex,birth_date,sample_type,storage_temperature,creation_date,"
HEADER += "diagnosis,event_type,event_date,age_at_event,age_unit\n"
GOOD = [
    "S01,D01,Male,2015-03,Tissue (fresh frozen),-80,2017-05-02,C74.9,diagnosis,2017-05-01,,",
    "S02,D01,Male,2015-03,Tissue (FFPE),RT,2017-05-02,C74.9,,,,",
    "S03,D02,Female,,Plasma,temperature-60to-85,2018,C74.0,diagnosis,,2.5,Years",
    "S04,D03,F,2016-01-20,Serum,-60 °C to -85 °C,2019-02-01,,,,,",
    "S05,D04,Male,,DNA,LN,,ORPHA:635,,,14,Months",
    "S06,D05,Unknown,,RNA,,,,,,,",
    "S07,D06,Female,2014,Whole blood,2 °C to 10°C,2016,C74.9,relapse,2016-09,,",
    "S08,D07,Male,,Tissue (fixed),,,,,,,",
    "S09,D08,Female,,Tissue (fresh frozen),-80,,,,,,",
    "S10,D09,Male,,Cerebrospinal fluid,-18 °C to -35 °C,,C71.7,,,,",
]
BAD = {
    # row number in the file -> what the reason must mention
    12: ("S11,D10,Male,,Bone marrow soup,-80,,,,,,", "bone marrow soup"),
    13: ("S12,D11,Male,2015,Tissue (FFPE),-80,,,diagnosis,2017-01-02,2,Years", "not both"),
    14: ("S13,D12,Female,,Tissue (FFPE),-80,,,diagnosis,2017-01-02,,", "birth date"),
}


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header.rstrip("\n") + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def db(registered: Engine) -> str:
    return registered.url.render_as_string(hide_password=False)


def import_cmd(
    kind: str, path: Path, collection: str, db: str, key: Path, *extra: str
) -> list[str]:
    return ["import", kind, str(path), "-c", collection, "--db", db, "--key-file", str(key), *extra]


def test_ten_good_rows_stored_three_bad_reported_with_row_and_reason(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    rows = GOOD + [BAD[n][0] for n in sorted(BAD)]
    path = write(tmp_path / "samples.csv", HEADER, rows)
    report = tmp_path / "report.jsonl"
    code, out = invoke(
        runner, *import_cmd("samples", path, NB_TISSUE, db, key_file, "--report", str(report))
    )
    assert code == 1, out
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(int(line["row"]) for line in lines) == sorted(BAD)
    for line in lines:
        assert line["path"] == f"{path}:{line['row']}"
        assert BAD[int(line["row"])][1] in line["reason"].lower(), line
    with registered.connect() as conn:
        stored = conn.execute(select(Sample.identifier).order_by(Sample.identifier)).scalars()
        assert list(stored) == [f"S{i:02}" for i in range(1, 11)]
        # the refused rows left nothing behind: not even their donors
        pseudonymiser = Pseudonymiser.from_file(key_file)
        refused = [pseudonymiser.donor(d) for d in ("D10", "D11", "D12")]
        assert not conn.execute(
            select(SampleDonor.id).where(SampleDonor.pseudonym.in_(refused))
        ).all()
    # the same file again: nothing changes, the same three are reported
    before = row_counts(registered)
    code, _ = invoke(runner, *import_cmd("samples", path, NB_TISSUE, db, key_file))
    assert code == 1
    assert row_counts(registered) == before


def test_one_temperature_in_three_notations_is_one_code(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    rows = [
        "T1,D1,Male,,Plasma,-80,,,,,,",
        "T2,D1,Male,,Plasma,temperature-60to-85,,,,,,",
        "T3,D1,Male,,Plasma,-60 °C to -85 °C,,,,,,",
    ]
    path = write(tmp_path / "t.csv", HEADER, rows)
    code, out = invoke(runner, *import_cmd("samples", path, NB_TISSUE, db, key_file))
    assert code == 0, out
    with registered.connect() as conn:
        ids = set(conn.execute(select(Sample.storage_temperature_id)).scalars())
        assert len(ids) == 1
        code_ = conn.execute(
            text("SELECT code FROM storage_temperature WHERE id = :i"), {"i": ids.pop()}
        ).scalar_one()
    assert code_ == "-60 °C to -85 °C"


def test_miabis_rules_on_donors_and_events(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    donors = write(
        tmp_path / "donors.csv",
        "donor_id,sex,birth_date,use_access_conditions",
        [
            "P1,Female,2014-06,Commercial use|DUO:0000020",
            "P2,Male|Female,,",  # two sexes
            "P3,Alien,,",  # not an allowed sex
            "P4,Male,2015-01-01,NCU",  # DUO shorthand
            "P5,Male,,Sell it",  # unknown condition
        ],
    )
    report = tmp_path / "r.jsonl"
    code, _ = invoke(
        runner, *import_cmd("donors", donors, NB_TISSUE, db, key_file, "--report", str(report))
    )
    assert code == 1
    reasons = {
        json.loads(x)["row"]: json.loads(x)["reason"] for x in report.read_text().split("\n") if x
    }
    assert set(reasons) == {"3", "4", "6"}
    assert "one sex per donor" in reasons["3"]
    assert "allowed:" in reasons["4"] and "Undifferentiated" in reasons["4"]
    assert "use_access_conditions" in reasons["6"]
    events = write(
        tmp_path / "events.csv",
        "donor_id,sex,event_type,event_date,age_at_event,age_unit,diagnosis",
        [
            "P1,,diagnosis,2016-02-03,,,C74.9",  # P1's birth date is stored: fine
            "P1,Male,relapse,2017,,,",  # contradicts the stored sex
            "P4,,diagnosis,,18,,C74.9",  # an age without its unit
            "P4,,diagnosis,2014-12-01,,,C74.9",  # before the birth date
            "P4,,,,3,Years,C7499",  # not an ICD-10 code
            "P4,,,,3,Years,ORPHA:635",  # ORPHA codes are accepted; type from the diagnosis
        ],
    )
    report = tmp_path / "e.jsonl"
    code, _ = invoke(
        runner, *import_cmd("events", events, NB_TISSUE, db, key_file, "--report", str(report))
    )
    assert code == 1
    reasons = {
        json.loads(x)["row"]: json.loads(x)["reason"] for x in report.read_text().split("\n") if x
    }
    assert set(reasons) == {"3", "4", "5", "6"}
    assert "stored as Female" in reasons["3"]
    assert "unit" in reasons["4"]
    assert "before the birth date" in reasons["5"]
    assert "not an ICD-10 code" in reasons["6"]
    with registered.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.event_type, d.code, v.name FROM event e JOIN disease d"
                " ON d.id = e.disease_id JOIN vocabulary v ON v.id = d.vocabulary_id"
                " ORDER BY e.event_type, d.code"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("diagnosis", "C74.9", "disease.icd-10"),
        ("diagnosis", "ORPHA:635", "disease.orphanet"),
    ]


def test_consent_is_stored_and_rules_out_purposes(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    donors = write(
        tmp_path / "donors.csv",
        "donor_id,sex,use_access_conditions",
        ["C1,Female,NCU | Collaboration", "C2,Male,GRU", "C3,Male,"],
    )
    assert invoke(runner, *import_cmd("donors", donors, NB_TISSUE, db, key_file))[0] == 0
    pseudonymiser = Pseudonymiser.from_file(key_file)
    with registered.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.pseudonym, u.code, u.restricts FROM sample_donor d"
                " JOIN sample_donor_use_access_condition l ON l.sample_donor_id = d.id"
                " JOIN use_access_condition u ON u.id = l.use_access_condition_id"
            )
        ).all()
    by_donor: dict[str, list[tuple[str, str | None]]] = {}
    for pseudonym, code, restricts in rows:
        by_donor.setdefault(pseudonym, []).append((code, restricts))
    c1 = by_donor[pseudonymiser.donor("C1")]
    assert {code for code, _ in c1} == {"DUO:0000046", "Collaboration"}
    commercial = Purpose.of(["commercial", "collaboration"])
    academic = Purpose.of(["collaboration", "health_research"])
    assert blocking(c1, commercial) == ["DUO:0000046: excludes: the use is commercial"]
    assert blocking(c1, academic) == []
    assert any("requires" in r for r in blocking(c1, Purpose.of([])))
    assert blocking(by_donor[pseudonymiser.donor("C2")], commercial) == []
    with pytest.raises(PurposeError, match="known: commercial"):
        Purpose.of(["profit"])
    # the same rules in SQL, for queries and exports: a sample of C1 and one whose own
    # condition excludes genetic research
    samples = write(
        tmp_path / "s.csv",
        "sample_id,donor_id,sample_type,use_access_conditions",
        ["K1,C1,DNA,", "K2,C2,DNA,Genetic data use", "K3,C3,DNA,"],
    )
    assert invoke(runner, *import_cmd("samples", samples, NB_TISSUE, db, key_file))[0] == 0
    with registered.connect() as conn:

        def excluded(flags: list[str]) -> tuple[set[str], set[str]]:
            donors, samples_ = ruled_out(conn, Purpose.of(flags))
            names = {pseudonymiser.donor(n): n for n in ("C1", "C2", "C3")}
            d = {
                names[p]
                for p in conn.execute(
                    select(SampleDonor.pseudonym).where(SampleDonor.id.in_(donors))
                ).scalars()
            }
            s_ = set(
                conn.execute(select(Sample.identifier).where(Sample.id.in_(samples_))).scalars()
            )
            return d, s_

        assert excluded(["commercial", "collaboration"]) == ({"C1"}, {"K1"})
        assert excluded(["collaboration", "genetic"]) == (set(), {"K2"})
        assert excluded(["collaboration"]) == (set(), set())


def test_unknown_column_refuses_the_file_and_stores_nothing(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    before = row_counts(registered)
    path = write(tmp_path / "s.csv", "sample_id,donor_id,sample_type,temprature", ["A,B,DNA,-80"])
    code, out = invoke(runner, *import_cmd("samples", path, NB_TISSUE, db, key_file))
    assert code == 2
    assert "'temprature'" in out and "storage_temperature" in out
    assert row_counts(registered) == before
    path = write(tmp_path / "s2.csv", "sample_id,sample_type", ["A,DNA"])
    code, out = invoke(runner, *import_cmd("samples", path, NB_TISSUE, db, key_file))
    assert code == 2 and "donor_id" in out


def test_xlsx_with_miabis_headers_and_derived_collection_descriptors(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(
        [
            "MIABIS-SAMPLE-01",
            "Donor ID",
            "Sex",
            "Birth date",
            "Sample type",
            "Storage temperature",
            "Sample creation date",
            "Diagnosis",
        ]
    )
    import datetime as dt

    sheet.append(
        [
            "X1",
            "E1",
            "Female",
            dt.datetime(2014, 2, 1),
            "Tissue (fresh frozen)",
            -80,
            dt.datetime(2016, 2, 1),
            "C74.9",
        ]
    )
    sheet.append(
        [
            "X2",
            "E2",
            "Male",
            dt.datetime(2012, 2, 1),
            "Tissue (FFPE)",
            "RT",
            dt.datetime(2016, 2, 1),
            "C74.0",
        ]
    )
    path = tmp_path / "samples.xlsx"
    book.save(path)
    code, out = invoke(runner, *import_cmd("samples", path, NB_TISSUE, db, key_file))
    assert code == 0, out
    from sqlalchemy.orm import Session

    with Session(registered) as session:
        collection = session.scalars(
            select(SampleTissueCollection).where(SampleTissueCollection.identifier == NB_TISSUE)
        ).one()
        assert collection.number_of_donors == 2 and collection.size == 2
        assert {t.code for t in collection.material_types} == {
            "Tissue (fresh frozen)",
            "Tissue (FFPE)",
        }
        assert {t.code for t in collection.storage_temperatures} == {"-60 °C to -85 °C", "RT"}
        assert {s.code for s in collection.sexes} == {"Female", "Male"}
        assert {d.code for d in collection.diseases} == {"C74.9", "C74.0"}
        assert collection.donor_age_low_years == pytest.approx(2.0, abs=0.01)
        assert collection.donor_age_high_years == pytest.approx(4.0, abs=0.01)
        # declared values are kept beside the derived ones
        assert {t.code for t in collection.declared_material_types}


BIOMARKERS = "donor_id,biomarker,gene,loinc,method,value,unit,variant,result_date"


def test_biomarkers_coded_where_a_code_exists(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "bm.csv",
        BIOMARKERS,
        [
            "B1,MYCN amplification,,,FISH,amplified,,,2017-05",
            "B1,ALK mutation,ALK,,NGS,positive,,p.F1174L,2017-05",
            "B1,11q loss,,,SNP array,present,,,2017",
            "B1,LDH,,2532-0,enzymatic,850,U/L,,2017-05-03",
            "B2,LDH,,2532-1,enzymatic,850,U/L,,",  # wrong check digit
            "B2,Ferritin,,2276-4,,120,,,",  # a number without its unit
            "B2,PHOX2B mutation,NOTAGENE!,,,negative,,,",
        ],
    )
    report = tmp_path / "r.jsonl"
    code, _ = invoke(
        runner,
        *import_cmd("biomarkers", path, "NB_MOLECULAR", db, key_file, "--report", str(report)),
    )
    assert code == 1
    reasons = [json.loads(x)["reason"] for x in report.read_text().splitlines()]
    assert len(reasons) == 3
    assert "check digit" in reasons[0] and "unit" in reasons[1] and "HGNC" in reasons[2]
    with registered.connect() as conn:
        rows = {
            r.biomarker: r
            for r in conn.execute(
                select(
                    MolecularBiomarkerResult.biomarker,
                    MolecularBiomarkerResult.gene_symbol,
                    MolecularBiomarkerResult.alteration,
                    MolecularBiomarkerResult.value_number,
                    MolecularBiomarkerResult.loinc_code,
                    Gene.code.label("hgnc"),
                ).outerjoin(Gene, Gene.id == MolecularBiomarkerResult.gene_id)
            )
        }
    assert rows["MYCN amplification"].hgnc == "HGNC:7559"
    assert rows["MYCN amplification"].alteration == "amplification"
    assert rows["ALK mutation"].hgnc == "HGNC:427"
    assert rows["11q loss"].hgnc is None and rows["11q loss"].alteration == "loss"
    assert rows["LDH"].value_number == 850 and rows["LDH"].loinc_code == "2532-0"
    before = row_counts(registered)
    assert invoke(runner, *import_cmd("biomarkers", path, "NB_MOLECULAR", db, key_file))[0] == 1
    assert row_counts(registered) == before


def test_donor_id_meets_the_dicom_patient_id(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    """A sample row's donor id and a DICOM PatientID with the same value are one donor."""
    from tests.conftest import STS_001

    code, out = invoke(
        runner,
        "ingest",
        str(STS_001 / "PET"),
        "--db",
        db,
        "--key-file",
        str(key_file),
        "-c",
        "NB_IMAGING",
    )
    assert code == 0, out
    path = write(tmp_path / "s.csv", HEADER, ["STS-S1,STS_001,Male,,Tissue (FFPE),RT,,C49.9,,,,"])
    assert invoke(runner, *import_cmd("samples", path, NB_TISSUE, db, key_file))[0] == 0
    with registered.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SampleDonor)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(Event)).scalar_one() == 0
    code, out = invoke(runner, "linkage", "--db", db, "--json")
    assert code == 0, out
    report = json.loads(out)
    by_collection = {e["collection"]: e for e in report["collections"]}
    for name in ("bbmri-eric:ID:ES_PRIMAGE:collection:NB_IMAGING", NB_TISSUE):
        entry = by_collection[name]
        assert entry["donors"] == 1
        assert entry["with"]["images"] == 1 and entry["with"]["samples"] == 1
        assert entry["images_without_samples"] == 0
    assert "STS_001" not in out and Pseudonymiser.from_file(key_file).donor("STS_001") not in out


def test_one_donor_across_images_samples_and_e_form_records(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    """The issue's check: STS_001 as a DICOM PatientID, a sample row's donor id and an e-form
    record id is one sample donor, counted by the linkage report in every column."""
    from tests.conftest import ROOT, STS_001

    forms = ROOT / "examples" / "forms"
    code, out = invoke(
        runner,
        "ingest",
        str(STS_001 / "PET"),
        "--db",
        db,
        "--key-file",
        str(key_file),
        "-c",
        "NB_IMAGING",
    )
    assert code == 0, out
    path = write(tmp_path / "s.csv", HEADER, ["STS-S1,STS_001,Male,,Tissue (FFPE),RT,,C49.9,,,,"])
    assert invoke(runner, *import_cmd("samples", path, NB_TISSUE, db, key_file))[0] == 0
    code, out = invoke(
        runner,
        "import",
        "form",
        str(forms / "neuroblastoma.csv"),
        "-c",
        "NB_CLINICAL",
        "--db",
        db,
    )
    assert code == 0, out
    code, out = invoke(
        runner,
        *import_cmd("records", forms / "neuroblastoma_records.csv", "NB_CLINICAL", db, key_file),
    )
    assert code == 0, out
    sts = Pseudonymiser.from_file(key_file).donor("STS_001")
    with registered.connect() as conn:
        ids = conn.execute(select(SampleDonor.id).where(SampleDonor.pseudonym == sts)).all()
        assert len(ids) == 1
        donor_id = ids[0].id
        for table in ("imaging_series", "sample", "clinical_record"):
            n = conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE sample_donor_id = :d"), {"d": donor_id}
            ).scalar_one()
            assert n >= 1, table
    code, out = invoke(runner, "linkage", "--db", db, "--json")
    assert code == 0, out
    report = json.loads(out)
    by_collection = {e["collection"]: e for e in report["collections"]}
    imaging = by_collection["bbmri-eric:ID:ES_PRIMAGE:collection:NB_IMAGING"]
    assert imaging["donors"] == 1
    assert imaging["with"] == {"images": 1, "samples": 1, "clinical": 1}
    assert imaging["combinations"] == {"images+samples+clinical": 1}
    clinical = by_collection["bbmri-eric:ID:ES_PRIMAGE:collection:NB_CLINICAL"]
    assert clinical["with"]["clinical"] == clinical["donors"] > 1
    assert clinical["combinations"]["images+samples+clinical"] == 1
    assert report["all"]["combinations"]["images+samples+clinical"] == 1
    assert "STS_001" not in out and sts not in out


def test_a_donors_new_diagnosis_reaches_all_the_donors_collections(
    runner: CliRunner, registered: Engine, db: str, key_file: Path, tmp_path: Path
) -> None:
    """A diagnosis event imported into NB_CLINICAL for STS_001, whose images are in
    NB_IMAGING: both collections list the diagnosis among their derived descriptors (the
    import used to re-derive only the collection it was given)."""
    from tests.conftest import NB_IMAGING, STS_001

    ingest = ["ingest", str(STS_001 / "PET"), "--db", db, "--key-file", str(key_file)]
    assert invoke(runner, *ingest, "-c", NB_IMAGING)[0] == 0
    header = "donor_id,event_type,event_date,age_at_event,age_unit,diagnosis,description"
    path = write(tmp_path / "e.csv", header, ["STS_001,diagnosis,,4,Years,C49.9,"])
    code, out = invoke(runner, *import_cmd("events", path, "NB_CLINICAL", db, key_file))
    assert code == 0, out
    derived = """SELECT c.identifier, d.code FROM collection_disease l
        JOIN collection c ON c.id = l.collection_id JOIN disease d ON d.id = l.disease_id
        WHERE l.origin = 'derived'"""
    with registered.connect() as conn:
        rows = {(c.rsplit(":", 1)[-1], code) for c, code in conn.execute(text(derived))}
    assert {("NB_CLINICAL", "C49.9"), ("NB_IMAGING", "C49.9")} <= rows
