"""De-identification (PS3.15 Annex E) on real files with planted PHI: nothing identifying
leaves, images stay linked to their donor, the run is repeatable and audited."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sqlalchemy import text
from typer.testing import CliRunner

from imaging_biobank.cli import app
from imaging_biobank.db.engine import make_engine
from imaging_biobank.deid.options import DeidOptions
from imaging_biobank.deid.profile import Profile, attribute_type, iod_of, manifest, resolve
from imaging_biobank.deid.pseudonym import Pseudonymiser
from tests.conftest import (
    EXAMPLE,
    SHARED,
    STS_001,
    child_processes,
    server_unavailable,
    still_running,
    synthetic_corpus,
    table_contents,
)

DATA = Path(__file__).resolve().parents[1] / "src" / "imaging_biobank" / "deid" / "data"
PYDICOM_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_bigendian.dcm",  # explicit VR big endian
    "image_dfl.dcm",  # deflated
    "JPEG2000.dcm",  # encapsulated pixel data
    "rtplan.dcm",
    "rtdose.dcm",
)
# distinctive words planted in every input file; none may appear in any output byte
PLANTED = (
    "Quixblatter",
    "Zanthe",
    "QXID",
    "ALTQX",
    "Blorvik",
    "Snorrstraat",
    "Drumplewick",
    "Ottoline",
    "19470312",
    "20190314",
    "555-0199",
    "PHI PLANT",
    "ACC-PLANT",
)
UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _real_files() -> list[Path]:
    """Real DICOM files of four sources: pydicom, pydicom-data, deid-data, STS_001."""
    import data_store
    import deid_data

    files = [Path(pydicom.data.get_testdata_file(name)) for name in PYDICOM_FILES]
    store = Path(data_store.__file__).parent / "data"
    files += [store / n for n in ("693_UNCR.dcm", "MR2_UNCR.dcm", "RG1_UNCR.dcm")]
    cookies = sorted((Path(deid_data.__file__).parent / "data").rglob("*.dcm"))
    files += [p for p in cookies if "ultrasound" not in str(p)][:4]
    for modality in ("CT", "MR_T1", "PET"):
        files += sorted((STS_001 / modality / "image").rglob("*.dcm"))[:2]
    files += sorted((STS_001 / "CT" / "mask").rglob("*.dcm"))  # the RTSTRUCT
    return files


def _plant(ds: Dataset, i: int) -> None:
    """Identifying values in names, ids, dates, free text, nested items, private tags,
    the Original Attributes Sequence and an overlay."""
    ds.PatientName = f"Quixblatter^Zanthe{i}"
    sop_class = pydicom.uid.UID(str(ds.get("SOPClassUID", ""))).name
    if ds.get("Modality") in ("OT", "SC", "US", "XC", "ES") or "Secondary" in sop_class:
        ds.BurnedInAnnotation = "NO"  # looked at by a data manager: no text in the pixels
    ds.PatientID = f"QXID{i:03d}"
    ds.PatientBirthDate = "19470312"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20190314"
    ds.AccessionNumber = f"ACC-PLANT{i}"
    ds.StudyDescription = f"Follow-up of Zanthe{i} Quixblatter, call 555-0199"
    ds.ImageComments = f"patient Quixblatter QXID{i:03d}"
    ds.InstitutionName = "Blorvik General Hospital"
    ds.InstitutionAddress = "12 Snorrstraat, Blorvik"
    ds.ReferringPhysicianName = "Drumplewick^Ottoline"
    other = Dataset()
    other.PatientID = f"ALTQX{i:03d}"
    other.IssuerOfPatientID = "Blorvik"
    ds.OtherPatientIDsSequence = Sequence([other])
    # two levels down in a sequence the profile keeps, and in one it removes
    modifier = Dataset()
    modifier.CodeValue, modifier.CodingSchemeDesignator = "7771", "99LOCAL"
    modifier.CodeMeaning = f"left side of Zanthe{i}"
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator = "818981001", "SCT"
    region.CodeMeaning = "Abdomen of Quixblatter"
    region.AnatomicRegionModifierSequence = Sequence([modifier])
    ds.AnatomicRegionSequence = Sequence([region])
    request = Dataset()
    request.RequestedProcedureDescription = "Quixblatter staging"
    request.ScheduledProcedureStepID = f"QXID{i:03d}"
    ds.RequestAttributesSequence = Sequence([request])
    # Original Attributes Sequence: what a modifying application kept
    modified = Dataset()
    modified.PatientName = "Quixblatter^Zanthe"
    original = Dataset()
    original.ModifiedAttributesSequence = Sequence([modified])
    original.ModifyingSystem = "Blorvik PACS"
    original.ReasonForTheAttributeModification = "CORRECT"
    ds.OriginalAttributesSequence = Sequence([original])
    # a private block, with a private sequence holding a name
    block = ds.private_block(0x0011, "PHI PLANT", create=True)
    block.add_new(0x10, "LO", f"Quixblatter QXID{i:03d}")
    inner = Dataset()
    inner.private_block(0x0011, "PHI PLANT", create=True).add_new(0x12, "PN", "Quixblatter^Z")
    block.add_new(0x11, "SQ", Sequence([inner]))
    # an overlay's description
    ds.add_new(0x60000022, "LO", "Quixblatter marks")


@pytest.fixture(scope="module")
def phi_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real files from four sources with PHI planted, in nested folders."""
    if not STS_001.exists():
        pytest.fail(f"{STS_001} is missing: the examples hold the STS_001 patient")
    root = tmp_path_factory.mktemp("phi") / "in"
    for i, path in enumerate(_real_files()):
        ds = pydicom.dcmread(path, force=True)
        _plant(ds, i)
        target = root / f"source{i % 3}" / f"{i:03d}_{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=False)
    return root


@pytest.fixture(scope="module")
def module_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imaging_biobank.deid.pseudonym import generate_key_file

    return generate_key_file(tmp_path_factory.mktemp("key") / "biobank.key")


def _outputs(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*.dcm")) if ".imaging-biobank" not in p.parts)


def _planted_in(folder: Path, values: tuple[str, ...] = PLANTED) -> list[str]:
    """``file: value`` for every planted value found in any byte of any output file."""
    found = []
    # digits only as a whole number: UIDs of random digits hold any short digit run
    needles = [
        (v, re.compile(rb"(?<![0-9])" + re.escape(v.encode()) + rb"(?![0-9])", re.IGNORECASE))
        for v in values
    ]
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {v}" for v, needle in needles if needle.search(data)]
    return found


def _deid(src: Path, out: Path, key: Path, *extra: str) -> tuple[int, str]:
    return invoke("deid", str(src), str(out), "--key-file", str(key), "--workers", "2", *extra)


@pytest.mark.parametrize(
    "options",
    [
        (),
        ("-o", "modified-dates", "-o", "patient-characteristics,clean-descriptors"),
        ("-o", "safe-private", "-o", "clean-structured-content", "-o", "clean-graphics"),
        ("-o", "device-identity,institution-identity"),
    ],
    ids=["basic", "dates-characteristics-descriptors", "private-structured-graphics", "device"],
)
def test_no_planted_value_leaves_and_verify_agrees(
    phi_inputs: Path, module_key: Path, tmp_path: Path, options: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    code, output = _deid(phi_inputs, out, module_key, *options)
    assert code == 0, output
    written = list(_outputs(out))
    assert len(written) == len(list(phi_inputs.rglob("*.dcm")))
    planted = PLANTED
    if "device-identity,institution-identity" in options:  # the institution is kept, asked
        planted = tuple(v for v in PLANTED if v not in ("Blorvik", "Snorrstraat"))
    assert _planted_in(out, planted) == []
    code, output = invoke("deid", "verify", str(out), "--against", str(phi_inputs))
    assert code == 0, output
    assert "No identifying value" in output


def test_verify_fails_loudly_on_the_input_itself(phi_inputs: Path, tmp_path: Path) -> None:
    args = ("deid", "verify", str(phi_inputs), "--against", str(phi_inputs))
    code, output = invoke(*args)
    assert code == 1
    assert "leaks" in output
    code, output = invoke(*args, "--json")
    assert code == 1
    leaks = json.loads(output)["leaks"]
    kinds = {leak["kind"] for leak in leaks}
    assert {"person name", "PatientID", "UID", "date", "private value"} <= kinds
    where = {leak["where"] for leak in leaks}
    assert "(0011,1010) private" in where  # private elements are searched
    assert "(0011,1011)[0].(0011,1012) private" in where  # inside private sequences too
    assert "(0400,0561)[0].(0400,0550)[0].(0010,0010)" in where  # two levels down
    assert all("Quixblatter" not in leak["value_hint"] for leak in leaks)


def test_pixel_data_and_acquisition_parameters_stay(
    phi_inputs: Path, module_key: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert _deid(phi_inputs, out, module_key, "--layout", "keep")[0] == 0
    for source in sorted(phi_inputs.rglob("*.dcm")):
        before = pydicom.dcmread(source, force=True)
        after = pydicom.dcmread(out / source.relative_to(phi_inputs))
        if "PixelData" in before:
            assert after.PixelData == before.PixelData, source.name
        for keyword in ("BodyPartExamined", "KVP", "SliceThickness", "Modality", "SOPClassUID"):
            assert after.get(keyword) == before.get(keyword), (source.name, keyword)
        # YES only where the pixels are known clean (Burned In Annotation NO)
        clean = before.get("BurnedInAnnotation") == "NO" or "PixelData" not in before
        assert after.PatientIdentityRemoved == ("YES" if clean else "NO"), source.name
        codes = [item.CodeValue for item in after.DeidentificationMethodCodeSequence]
        assert codes == ["113100"]  # the Basic Profile, no option
        assert "PHI PLANT" not in str(after)


def test_patient_characteristics_kept_only_with_the_option(
    phi_inputs: Path, module_key: Path, tmp_path: Path
) -> None:
    ct = next(phi_inputs.rglob("*CT_small.dcm"))
    characteristics = ("PatientSex", "PatientAge", "PatientWeight", "PatientSize")
    acquisition = ("BodyPartExamined", "KVP", "SliceThickness")
    before = pydicom.dcmread(ct)
    before.PatientSize = "1.72"
    before.PatientAge = "061Y"
    before.BodyPartExamined = "CHEST"
    before.save_as(tmp_path / "ct.dcm")
    kept = _deid(
        tmp_path / "ct.dcm", tmp_path / "with", module_key, "-o", "patient-characteristics"
    )
    assert kept[0] == 0, kept[1]
    assert _deid(tmp_path / "ct.dcm", tmp_path / "without", module_key)[0] == 0
    with_option = pydicom.dcmread(next(_outputs(tmp_path / "with")))
    without = pydicom.dcmread(next(_outputs(tmp_path / "without")))
    for keyword in characteristics:
        assert with_option.get(keyword) == before.get(keyword), keyword
        assert not without.get(keyword), keyword  # removed, or empty where Type 2
    codes = [item.CodeValue for item in with_option.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113108"]  # profile + Retain Patient Characteristics
    for ds in (with_option, without):  # acquisition parameters stay either way
        assert [ds.get(k) for k in acquisition] == [before.get(k) for k in acquisition]
        assert before.KVP and before.SliceThickness


def _uids(ds: Dataset) -> Iterator[tuple[str, str]]:
    for element in ds.iterall():
        if element.VR == "UI" and element.value:
            values = element.value if element.VM > 1 else [element.value]
            for value in values:
                yield element.keyword, str(value)


def test_uids_are_valid_and_references_stay_consistent(module_key: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, output = _deid(STS_001, out, module_key)
    assert code == 1, output  # README.md and LICENSE.md are not DICOM: listed
    assert "README.md: not a DICOM file" in output
    files = [pydicom.dcmread(p) for p in _outputs(out)]
    assert len(files) == len(list(STS_001.rglob("*.dcm")))
    originals = {v for p in STS_001.rglob("*.dcm") for _, v in _uids(pydicom.dcmread(p))}
    well_known = {v for v in originals if v in pydicom.uid.UID_dictionary}
    for ds in files:
        for keyword, value in _uids(ds):
            assert UID.match(value) and len(value) <= 64, (keyword, value)
            assert value not in originals - well_known, keyword
    images = [ds for ds in files if ds.Modality == "CT"]
    # every reference is the original's replacement under the key (STS_001's contours
    # point at CT slices of another export: what matters is the same mapping everywhere)
    source = pydicom.dcmread(next((STS_001 / "CT" / "mask").rglob("*.dcm")))
    pseudonymiser = Pseudonymiser.from_file(module_key)
    new_uid = pseudonymiser.uid(source.SOPInstanceUID)
    structure = next(ds for ds in files if ds.SOPInstanceUID == new_uid)

    def referenced(ds: Dataset) -> list[str]:
        return [
            image.ReferencedSOPInstanceUID
            for roi in ds.ROIContourSequence
            for contour in roi.ContourSequence
            for image in contour.ContourImageSequence
        ]

    assert referenced(structure) == [pseudonymiser.uid(u) for u in referenced(source)]
    frame = structure.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == images[0].FrameOfReferenceUID
    study = frame.RTReferencedStudySequence[0]
    assert study.ReferencedSOPInstanceUID == images[0].StudyInstanceUID
    assert len({ds.StudyInstanceUID for ds in files}) == 1
    assert len({ds.PatientID for ds in files}) == 1


def test_references_between_files_resolve_after_deid(module_key: Path, tmp_path: Path) -> None:
    """A derived image pointing at its source, in Referenced/Source Image Sequences, still
    points at it after de-identification."""
    slices = sorted((STS_001 / "CT" / "image").rglob("*.dcm"))[:2]
    first, second = (pydicom.dcmread(p) for p in slices)
    reference = Dataset()
    reference.ReferencedSOPClassUID = first.SOPClassUID
    reference.ReferencedSOPInstanceUID = first.SOPInstanceUID
    second.ReferencedImageSequence = Sequence([reference])
    second.SourceImageSequence = Sequence([reference])
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    second.ReferencedSeriesSequence = Sequence([series])
    src = tmp_path / "in"
    src.mkdir()
    first.save_as(src / "a.dcm")
    second.save_as(src / "b.dcm")
    _deid(src, tmp_path / "out", module_key, "--layout", "keep")
    a = pydicom.dcmread(tmp_path / "out" / "a.dcm")
    b = pydicom.dcmread(tmp_path / "out" / "b.dcm")
    assert a.SOPInstanceUID != first.SOPInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert b.SourceImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert b.ReferencedSeriesSequence[0].SeriesInstanceUID == a.SeriesInstanceUID
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID != first.FrameOfReferenceUID


def test_same_key_same_bytes_other_key_other_uids(
    phi_inputs: Path, module_key: Path, tmp_path: Path
) -> None:
    first, second, other = tmp_path / "first", tmp_path / "second", tmp_path / "other"
    assert _deid(phi_inputs, first, module_key, "-o", "modified-dates")[0] == 0
    assert _deid(phi_inputs, second, module_key, "-o", "modified-dates", "--workers", "0")[0] == 0
    names = sorted(p.relative_to(first) for p in _outputs(first))
    assert names == sorted(p.relative_to(second) for p in _outputs(second))
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
    # again into the same folder: nothing changes
    code, output = invoke(
        "deid",
        str(phi_inputs),
        str(first),
        "--key-file",
        str(module_key),
        "-o",
        "modified-dates",
        "--json",
    )
    assert code == 0
    counts = json.loads(output)["counts"]
    assert counts["written"] == 0 and counts["unchanged"] == len(names)
    # another key: other pseudonyms, other UIDs, other date shifts
    other_key = tmp_path / "other.key"
    assert invoke("keygen", str(other_key))[0] == 0
    assert _deid(phi_inputs, other, other_key, "-o", "modified-dates")[0] == 0
    a = {pydicom.dcmread(p).PatientID for p in _outputs(first)}
    b = {pydicom.dcmread(p).PatientID for p in _outputs(other)}
    assert a and b and not a & b
    uids_a = {
        v for p in _outputs(first) for k, v in _uids(pydicom.dcmread(p)) if k == "SOPInstanceUID"
    }
    uids_b = {
        v for p in _outputs(other) for k, v in _uids(pydicom.dcmread(p)) if k == "SOPInstanceUID"
    }
    assert not uids_a & uids_b


def test_modified_dates_shift_one_offset_per_donor(module_key: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _deid(STS_001, out, module_key, "-o", "modified-dates")
    before = {pydicom.dcmread(p).Modality: pydicom.dcmread(p) for p in STS_001.rglob("*.dcm")}
    after = {ds.Modality: ds for ds in map(pydicom.dcmread, _outputs(out))}
    import datetime as dt

    def day(value: str) -> dt.date:
        return dt.datetime.strptime(value, "%Y%m%d").date()

    shifts = {m: day(before[m].StudyDate) - day(after[m].StudyDate) for m in after}
    assert len(set(shifts.values())) == 1
    assert next(iter(shifts.values())).days > 0
    assert {
        item.CodeValue for ds in after.values() for item in ds.DeidentificationMethodCodeSequence
    } == {"113100", "113107"}
    assert all(ds.LongitudinalTemporalInformationModified == "MODIFIED" for ds in after.values())


def test_burned_in_text_is_quarantined_unless_accepted(module_key: Path, tmp_path: Path) -> None:
    ultrasound = Path(pydicom.data.get_testdata_file("US1_UNCR.dcm"))  # no Burned In Annotation
    ct = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ct.BurnedInAnnotation = "YES"
    src = tmp_path / "in"
    src.mkdir()
    (src / "us.dcm").write_bytes(ultrasound.read_bytes())
    ct.save_as(src / "ct-burned.dcm")
    report = tmp_path / "report.jsonl"
    code, output = _deid(src, tmp_path / "out", module_key, "--report", str(report))
    assert code == 1
    assert "2 quarantined" in output and "us.dcm" in output
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert {(Path(x["path"]).name, x["status"]) for x in lines} == {
        ("us.dcm", "quarantined"),
        ("ct-burned.dcm", "quarantined"),
    }
    assert "Burned In Annotation" in " ".join(x["reason"] for x in lines)
    assert list(_outputs(tmp_path / "out")) == []
    code, output = _deid(src, tmp_path / "accepted", module_key, "--accept-burned-in")
    assert code == 0, output
    written = [pydicom.dcmread(p) for p in _outputs(tmp_path / "accepted")]
    assert len(written) == 2
    assert {ds.PatientIdentityRemoved for ds in written} == {"NO"}  # the pixels may tell


def test_donor_pseudonym_is_the_same_from_dicom_and_from_a_sample_csv(
    module_key: Path, tmp_path: Path
) -> None:
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.PatientID = "NB-0042"
    ds.save_as(tmp_path / "ct.dcm")
    (tmp_path / "samples.csv").write_text("sample_id,donor_id\nS1, NB-0042 \n")
    assert _deid(tmp_path / "ct.dcm", tmp_path / "out", module_key)[0] == 0
    donor_in_dicom = pydicom.dcmread(next(_outputs(tmp_path / "out"))).PatientID
    with (tmp_path / "samples.csv").open(newline="") as f:
        row = next(csv.DictReader(f))
    pseudonymiser = Pseudonymiser.from_file(module_key)
    assert donor_in_dicom == pseudonymiser.donor(row["donor_id"]) == pseudonymiser.donor("NB-0042")
    assert next(_outputs(tmp_path / "out")).relative_to(tmp_path / "out").parts[0] == donor_in_dicom


def test_reidentification_table_is_encrypted_and_apart(module_key: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.PatientID, ds.PatientName = "NB-0042", "Quixblatter^Zanthe"
    ds.save_as(tmp_path / "ct.dcm")
    reid_key, table = tmp_path / "reid.key", tmp_path / "reid.table"
    assert invoke("keygen", "--reid", str(reid_key))[0] == 0
    out = tmp_path / "out"
    code, output = _deid(
        tmp_path / "ct.dcm",
        out,
        module_key,
        "--reid-table",
        str(table),
        "--reid-key",
        str(reid_key),
    )
    assert code == 0, output
    assert b"Quixblatter" not in table.read_bytes() and b"NB-0042" not in table.read_bytes()
    donor = Pseudonymiser.from_file(module_key).donor("NB-0042")
    code, output = invoke(
        "deid", "lookup", str(table), "--reid-key", str(reid_key), "--json", "--donor", donor
    )
    assert code == 0, output
    record = json.loads(output.splitlines()[0])
    assert (record["patient_id"], record["patient_name"]) == ("NB-0042", "Quixblatter^Zanthe")
    code, output = invoke("deid", "lookup", str(table), "--reid-key", str(module_key))
    assert code == 2 and "keygen --reid" in output  # the pseudonymisation key does not open it
    code, output = _deid(
        tmp_path / "ct.dcm",
        out,
        module_key,
        "--reid-table",
        str(out / "t"),
        "--reid-key",
        str(reid_key),
    )
    assert code == 2 and "inside the de-identified output" in " ".join(output.split())


def test_every_run_leaves_an_audit_record(module_key: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _deid(Path(pydicom.data.get_testdata_file("CT_small.dcm")), out, module_key, "-o", "uids")
    _deid(Path(pydicom.data.get_testdata_file("MR_small.dcm")), out, module_key)
    lines = (out / ".imaging-biobank" / "deid-audit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["options"] for r in records] == [["uids"], []]
    fingerprint = Pseudonymiser.from_file(module_key).fingerprint
    assert all(r["key_fingerprint"] == fingerprint for r in records)
    assert records[0]["counts"]["written"] == 1 and records[0]["os_user"]
    assert "2024b" in records[0]["profile_edition"]
    key_text = module_key.read_text().strip()
    assert key_text not in "\n".join(lines)
    # the output can be ingested: the hidden audit folder is passed over, not rejected
    code, output = invoke(
        "deid", "verify", str(out), "--against", pydicom.data.get_testdata_file("MR_small.dcm")
    )
    assert code == 0, output


def test_a_command_without_key_says_how_to_make_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("IMAGING_BIOBANK_KEY_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    code, output = invoke("deid", pydicom.data.get_testdata_file("CT_small.dcm"), "out")
    assert code == 2
    assert "imaging-biobank keygen" in output


def test_bad_options_and_places_are_usage_errors(module_key: Path, tmp_path: Path) -> None:
    ct = pydicom.data.get_testdata_file("CT_small.dcm")
    for extra, message in (
        (("-o", "retain-everything"), "unknown de-identification option"),
        (("-o", "modified-dates,full-dates"), "exclude each other"),
        (("--uid-root", "1.02.3"), "not a UID prefix"),
        (("--layout", "flat"), "--layout must be"),
    ):
        code, output = _deid(Path(ct), tmp_path / "out", module_key, *extra)
        assert code == 2 and message in output, output
    code, output = _deid(tmp_path, tmp_path / "out", module_key)
    assert code == 2 and "overlap" in output


def test_uid_root_is_used_and_uids_fit(module_key: Path, tmp_path: Path) -> None:
    root = "1.2.826.0.1.3680043.10.1234"
    _deid(
        Path(pydicom.data.get_testdata_file("CT_small.dcm")),
        tmp_path / "out",
        module_key,
        "--uid-root",
        root,
    )
    ds = pydicom.dcmread(next(_outputs(tmp_path / "out")))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = ds[keyword].value
        assert value.startswith(root + ".") and len(value) <= 64 and UID.match(value)
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_ingest_deidentify_stores_nothing_identifying(
    phi_inputs: Path, module_key: Path, db_url: str
) -> None:
    """On SQLite and PostgreSQL: no planted value in any row, and an audit row."""
    from sqlalchemy import select

    from imaging_biobank.model.audit import DeidentificationRun

    assert invoke("init", "--db", db_url)[0] == 0
    assert invoke("register", str(EXAMPLE), "--db", db_url)[0] == 0
    args = ("ingest", str(phi_inputs), "-c", "NB_IMAGING", "--db", db_url)
    args += ("--key-file", str(module_key), "--deidentify", "-o", "modified-dates")
    code, output = invoke(*args)
    assert code == 0, output
    engine = make_engine(db_url)
    everything = str(table_contents(engine)).lower()
    with engine.connect() as conn:
        (run,) = conn.execute(select(DeidentificationRun)).all()
    assert [v for v in (*PLANTED, "source0") if v.lower() in everything] == []
    assert run.command == "ingest --deidentify" and run.options == ["modified-dates"]
    assert run.key_fingerprint == Pseudonymiser.from_file(module_key).fingerprint
    # MR_small and its big endian copy share one SOP Instance UID
    assert run.counts["new"] + run.counts["duplicates"] == len(list(phi_inputs.rglob("*.dcm")))
    assert run.counts["duplicates"] == 1
    code, output = invoke(*args)  # again: nothing new
    assert code == 0 and "Nothing new" in output
    with engine.connect() as conn:
        assert len(conn.execute(select(DeidentificationRun)).all()) == 2
    engine.dispose()


def _ingested_donor(database: Path, source: str, key: Path, *extra: str) -> str:
    """The one donor pseudonym a new database holds after ingesting ``source``."""
    url = f"sqlite:///{database}"
    assert invoke("init", "--db", url)[0] == 0
    assert invoke("register", str(EXAMPLE), "--db", url)[0] == 0
    code, output = invoke(
        "ingest", source, "-c", "NB_IMAGING", "--db", url, "--key-file", str(key), *extra
    )
    assert code == 0, output
    engine = make_engine(url)
    with engine.connect() as conn:
        donor: str = conn.execute(text("select pseudonym from sample_donor")).scalar_one()
    engine.dispose()
    return donor


def test_ingest_deidentify_links_images_to_the_same_donor_as_deid(
    module_key: Path, tmp_path: Path
) -> None:
    """Ingesting the source with --deidentify, or the output of deid, or the source as it
    is: one donor pseudonym for one PatientID."""
    ct = pydicom.data.get_testdata_file("CT_small.dcm")
    out = tmp_path / "out"
    _deid(Path(ct), out, module_key)
    donors = [
        _ingested_donor(tmp_path / f"db{n}.sqlite", source, module_key, *extra)
        for n, (source, extra) in enumerate(((ct, ("--deidentify",)), (str(out), ()), (ct, ())))
    ]
    expected = Pseudonymiser.from_file(module_key).donor(pydicom.dcmread(ct).PatientID)
    assert donors == [expected] * 3


# --- the profile as data ---------------------------------------------------------------------


def test_shipped_data_match_their_manifest() -> None:
    entries = tomllib.loads((DATA / "deid.toml").read_text())["file"]
    assert {e["name"] for e in entries} == {p.name for p in DATA.iterdir()} - {"deid.toml"}
    for entry in entries:
        assert hashlib.sha256((DATA / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
    assert "2024b" in manifest()["ps3.15-e1-1.json"].edition


def test_table_is_the_shared_reference_table() -> None:
    reference = SHARED / "reference" / "dicom_standard" / "confidentiality_profile_attributes.json"
    if not reference.exists():  # a failure in CI, where ../shared is always beside
        server_unavailable("../shared is not beside the repository")
    shipped = json.loads((DATA / "ps3.15-e1-1.json").read_text())
    assert shipped == json.loads(reference.read_text())


def test_conditional_actions_follow_the_iod_attribute_type() -> None:
    ct = iod_of(pydicom.uid.CTImageStorage)
    assert ct is not None
    # the types come from the IOD's modules: Content Date is 2C in a CT image, 1 in an SR
    assert attribute_type(ct, (), "ContentDate") == "2C"
    assert attribute_type(iod_of(pydicom.uid.ComprehensiveSRStorage), (), "ContentDate") == "1"
    assert resolve("Z/D", "1") == "D" and resolve("Z/D", "2") == "Z"
    assert resolve("X/Z", "3") == "X" and resolve("X/Z", "2") == "Z"
    assert resolve("X/D", "1") == "D" and resolve("X/D", "3") == "X"
    assert resolve("X/Z/D", "1") == "D" and resolve("X/Z/D", "2") == "Z"
    # references are kept with their UIDs replaced, whatever the type (the issue: every
    # reference stays consistent), never removed
    assert resolve("X/Z/U*", "1") == "U" and resolve("X/Z/U*", "3") == "U"
    profile = Profile.build(DeidOptions())
    # Content Date (0008,0023) is Z/D
    sr = iod_of(pydicom.uid.ComprehensiveSRStorage)
    assert profile.action(0x00080023, sr, ()) == "D"
    assert profile.action(0x00080023, ct, ()) == "Z"
    kept = Profile.build(DeidOptions(frozenset({"patient-characteristics"})))
    assert profile.action(0x00101010, ct, ()) == "X" and kept.action(0x00101010, ct, ()) == "K"


def test_iod_types_agree_with_the_library_they_came_from() -> None:
    """The shipped types and SOP class map are what tools/build_deid.py makes from the
    installed highdicom (a new highdicom edition shows up here, not silently)."""
    import gzip

    from tools.build_deid import _csv, conditional_keywords, iod_types, sop_classes

    table = json.loads((DATA / "ps3.15-e1-1.json").read_text())
    shipped = gzip.decompress((DATA / "iod_attribute_types.csv.gz").read_bytes()).decode()
    assert shipped == _csv(
        iod_types(conditional_keywords(table)), ["iod", "path", "keyword", "type"]
    )
    assert (DATA / "sop_class_iod.csv").read_text() == _csv(sop_classes(), ["sop_class_uid", "iod"])


def test_a_forged_key_mark_does_not_pass_a_patient_id_through(
    module_key: Path, tmp_path: Path
) -> None:
    """Ingest trusts a PatientID as a pseudonym only if it is one: the key mark in
    De-identification Method is public (audit records show the fingerprint)."""
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    fingerprint = Pseudonymiser.from_file(module_key).fingerprint
    ds.DeidentificationMethod = ["imaging-biobank 0.1.0", f"key {fingerprint}"]
    ds.PatientID = "NB-0042"
    ds.save_as(tmp_path / "forged.dcm")
    donor = _ingested_donor(tmp_path / "db.sqlite", str(tmp_path / "forged.dcm"), module_key)
    assert donor == Pseudonymiser.from_file(module_key).donor("NB-0042")


def test_two_files_of_one_instance_give_one_output_the_first(
    module_key: Path, tmp_path: Path
) -> None:
    """Copies of one SOP instance (a re-export) have one clean output name: the first in
    walk order is written, whatever the workers' timing, and the later one is skipped."""
    src = tmp_path / "in"
    src.mkdir()
    for name, number in (("a.dcm", 1), ("b.dcm", 2)):
        ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
        ds.SeriesNumber = number
        ds.save_as(src / name)
    report = tmp_path / "report.jsonl"
    code, output = _deid(src, tmp_path / "out", module_key, "--report", str(report))
    assert code == 0, output
    written = list(_outputs(tmp_path / "out"))
    assert len(written) == 1
    assert pydicom.dcmread(written[0]).SeriesNumber == 1
    (line,) = [json.loads(x) for x in report.read_text().splitlines()]
    assert line["status"] == "skipped" and "duplicate" in line["reason"]
    assert Path(line["path"]).name == "b.dcm"


def test_names_are_cleaned_from_text_in_iso_2022_character_sets(
    module_key: Path, tmp_path: Path
) -> None:
    """A Japanese name (ISO 2022 IR 87, escape sequences in the bytes) is found in a kept
    description as the text it is, not as its bytes read as Latin-1."""
    ds = pydicom.dcmread(Path(pydicom.__file__).parent / "data" / "charset_files" / "chrH31.dcm")
    ds.StudyDescription = "やまだ たろう 頭部"
    ds.BurnedInAnnotation = "NO"  # an OT image: looked at, no text in the pixels
    ds.save_as(tmp_path / "jp.dcm")
    code, output = _deid(
        tmp_path / "jp.dcm", tmp_path / "out", module_key, "-o", "clean-descriptors"
    )
    assert code == 0, output
    out = pydicom.dcmread(next(_outputs(tmp_path / "out")))
    assert "たろう" not in out.StudyDescription and "やまだ" not in out.StudyDescription
    assert "頭部" in out.StudyDescription


def test_a_killed_run_resumes_to_the_files_of_a_clean_run(module_key: Path, tmp_path: Path) -> None:
    """kill -9 in the middle, run again: the same files as one clean run, none half
    written (writes are atomic), and no worker left behind."""
    import signal
    import subprocess
    import sys
    import time

    corpus = synthetic_corpus(tmp_path / "corpus", 3000, seed=5)
    command = [sys.executable, "-m", "imaging_biobank", "deid", str(corpus)]
    options = ["--key-file", str(module_key), "--workers", "2", "--accept-burned-in"]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run([*command, str(clean), *options], check=True, capture_output=True)
    run = subprocess.Popen(
        [*command, str(killed), *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(killed.rglob("*.dcm"))) < 300:
        time.sleep(0.05)
    workers = child_processes(run.pid)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert still_running(workers) == [], "worker processes outlived the killed deid"
    partial = len(list(killed.rglob("*.dcm")))
    assert 0 < partial < 3000, "the run finished before it could be killed"
    subprocess.run([*command, str(killed), *options], check=True, capture_output=True)
    names = sorted(p.relative_to(clean) for p in _outputs(clean))
    assert names == sorted(p.relative_to(killed) for p in _outputs(killed))
    assert all((clean / n).read_bytes() == (killed / n).read_bytes() for n in names)
