"""De-identification against files built to slip through: values where the table does not
look, in the wrong VR, in kept text under another spelling, and files that break a rule.
Each case was a leak or a crash found in review; each test failed before its fix."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from typer.testing import CliRunner

from imaging_biobank.cli import app
from imaging_biobank.deid.options import DeidOptions
from imaging_biobank.deid.pseudonym import Pseudonymiser
from imaging_biobank.deid.rewrite import Deidentifier, Outcome

SECRET = "Quixblatter"


def ct(**values: object) -> Dataset:
    """pydicom's CT_small, its patient renamed to the secret."""
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.PatientName = f"{SECRET}^Zanthe"
    ds.PatientID = "QXID0042"
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def deidentify(ds: Dataset, *options: str) -> Outcome:
    data = io.BytesIO()
    ds.save_as(data, enforce_file_format=True)
    deidentifier = Deidentifier(Pseudonymiser(b"k" * 32), DeidOptions(frozenset(options)), "t")
    return deidentifier.file(data.getvalue())


def written(ds: Dataset, *options: str) -> tuple[bytes, Dataset]:
    outcome = deidentify(ds, *options)
    assert outcome.data is not None, outcome.quarantined
    return outcome.data, pydicom.dcmread(io.BytesIO(outcome.data))


def test_uids_the_table_does_not_list_are_replaced_too() -> None:
    source = ct()
    source.SOPInstanceUIDOfConcatenationSource = source.SOPInstanceUID
    source.add_new(0x00083012, "UI", "1.2.999.20210304.55")  # Transaction UID
    data, out = written(source)
    assert out.SOPInstanceUIDOfConcatenationSource == out.SOPInstanceUID  # the same mapping
    for original in (source.SOPInstanceUID, "1.2.999.20210304.55"):
        assert original.encode() not in data
    assert out.SOPClassUID == source.SOPClassUID  # registered UIDs stay


def test_clean_graphics_cleans_curve_text_as_overlay_text() -> None:
    source = ct()
    source.add_new(0x50002500, "LO", f"{SECRET} curve")  # Curve Label
    source.add_new(0x60001500, "LO", f"{SECRET} overlay")  # Overlay Label
    data, out = written(source, "clean-graphics")
    assert SECRET.encode() not in data
    assert out[0x50002500].value == "curve" and out[0x60001500].value == "overlay"


def _siemens(source: Dataset, vr: str, value: object) -> int:
    """An allow-listed Siemens element (its b-value slot) holding ``value``; its tag."""
    block = source.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, vr, value)
    return block.get_tag(0x0C)


@pytest.mark.parametrize(
    ("vr", "value", "kept"),
    [
        ("IS", "1000", True),  # the b-value, as listed
        ("LT", f"{SECRET} was scanned", False),  # text where a number is listed
        ("SQ", Sequence([Dataset()]), False),
    ],
)
def test_retain_safe_private_keeps_only_values_of_the_listed_vr(
    vr: str, value: object, kept: bool
) -> None:
    source = ct()
    tag = _siemens(source, vr, value)
    if vr == "SQ":
        source[tag].value[0].PatientName = SECRET
    data, out = written(source, "safe-private")
    assert (tag in out) is kept
    assert SECRET.encode() not in data


def test_retain_safe_private_keeps_each_groups_creator() -> None:
    source = ct()
    for tag in [e.tag for e in source if e.tag.group in (0x0019, 0x0043)]:
        del source[tag]  # both blocks in slot 0x10 of their groups
    siemens = _siemens(source, "IS", "1000")
    gems = source.private_block(0x0043, "GEMS_PARM_01", create=True)
    gems.add_new(0x39, "IS", ["1000", "0", "0", "0"])  # its b-value
    assert (siemens, gems.get_tag(0x39)) == (0x0019100C, 0x00431039)
    _, out = written(source, "safe-private")
    assert out[0x00190010].value == "SIEMENS MR HEADER" and 0x0019100C in out
    assert out[0x00430010].value == "GEMS_PARM_01" and 0x00431039 in out


@pytest.mark.parametrize(
    ("name", "description", "left"),
    [
        ("LEE^JOHN", "CT_LEE", "CT_"),
        ("LEE^JOHN", "J.Lee scan", "J. scan"),
        ("LI^NA", "Li-Na head", "- head"),
        ("山田^太郎", "山田太郎の頭部 CT", "CT"),
    ],
)
def test_clean_descriptors_finds_names_in_other_spellings(
    name: str, description: str, left: str
) -> None:
    source = ct(PatientName=name, StudyDescription=description, SpecificCharacterSet="ISO_IR 192")
    _, out = written(source, "clean-descriptors")
    assert out.StudyDescription == left


def test_clean_descriptors_learns_values_from_what_it_removes() -> None:
    other = Dataset()
    other.PatientID = "HOSPBXQ"
    modified = Dataset()
    modified.PatientName = "Maidenq^Zanthe"
    original = Dataset()
    original.ModifiedAttributesSequence = Sequence([modified])
    source = ct(
        StudyDescription="brain HOSPBXQ Maidenq CHARTQX Zorro",
        MedicalRecordLocator="CHARTQX",
        OtherPatientIDsSequence=Sequence([other]),
        OriginalAttributesSequence=Sequence([original]),
    )
    source.EvaluatorName = "Zorro"  # a PN the table does not list
    data, out = written(source, "clean-descriptors")
    assert out.StudyDescription == "brain"
    for value in ("HOSPBXQ", "Maidenq", "CHARTQX", "Zorro"):
        assert value.encode() not in data, value


def test_a_file_that_cannot_be_rewritten_is_rejected_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    bad = ct()
    bad.SOPInstanceUID = bad.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7"
    bad.save_as(src / "a_bad.dcm", enforce_file_format=True)
    data = (src / "a_bad.dcm").read_bytes()
    uid = b"1.2.840.10008.5.1.4.1.1.2\x00"  # the SOP class, with a byte that is no digit
    (src / "a_bad.dcm").write_bytes(data.replace(uid, b"1.2.840.10008.5.1.4.1.1.\xe9\x00"))
    ct().save_as(src / "b_good.dcm", enforce_file_format=True)
    key = tmp_path / "key"
    runner = CliRunner()
    assert runner.invoke(app, ["keygen", str(key)]).exit_code == 0
    result = runner.invoke(app, ["deid", str(src), str(tmp_path / "out"), "--key-file", str(key)])
    assert result.exit_code == 1, result.output
    assert "a_bad.dcm: cannot de-identify" in " ".join(result.output.split())
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1


@pytest.mark.parametrize(
    "case",
    ["sc-class-modality-ct", "us-class-modality-ivus", "float-pixel-data", "duplicate-answer"],
)
def test_burned_in_text_is_caught_however_the_file_hides_it(case: str) -> None:
    source = ct()
    if case == "sc-class-modality-ct":
        source.SOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    elif case == "us-class-modality-ivus":
        source.SOPClassUID = pydicom.uid.UltrasoundImageStorage
        source.Modality = "IVUS"
    elif case == "float-pixel-data":
        source.Modality = "US"
        del source.PixelData
        source.add_new(0x7FE00008, "OF", b"\0" * 16)
    else:  # YES, then a second Burned In Annotation saying NO
        source.BurnedInAnnotation = "YES"
    source.file_meta.MediaStorageSOPClassUID = source.SOPClassUID
    data = io.BytesIO()
    source.save_as(data, enforce_file_format=True)
    raw = data.getvalue()
    if case == "duplicate-answer":  # append a second (0028,0301) NO right after the first
        element = b"\x28\x00\x01\x03CS\x04\x00YES "
        assert element in raw
        raw = raw.replace(element, element + b"\x28\x00\x01\x03CS\x02\x00NO", 1)
    deidentifier = Deidentifier(Pseudonymiser(b"k" * 32), DeidOptions(), "t")
    outcome = deidentifier.file(raw)
    assert outcome.quarantined and outcome.data is None


def test_a_value_in_the_wrong_vr_does_not_pass_as_it_is() -> None:
    source = ct()
    original_frame = source.FrameOfReferenceUID
    del source.FrameOfReferenceUID
    source.add_new(0x00200052, "LO", original_frame)  # a UID declared as LO
    source.add_new(0x00081140, "OB", b"REFIMG_OB_SECRET")  # a sequence declared as bytes
    data, out = written(source)
    assert original_frame.encode() not in data
    assert b"REFIMG_OB_SECRET" not in data
    assert 0x00081140 not in out
