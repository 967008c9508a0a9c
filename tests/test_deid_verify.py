"""The leak checker ``deid verify``: it finds what a de-identification left, and only that.

Inputs are real DICOM files (pydicom's test files, deid-data's PHI-laden ones, STS_001);
outputs are made here by hand (the de-identifier is not under test): a correct manual
de-identification, then one identifying value left or moved at a time.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import UID_dictionary, generate_uid  # type: ignore[attr-defined]

from imaging_biobank.deid.verify import Leak, VerifyReport, verify
from tests.conftest import STS_001

OPTIONS = codes.cid7050


def _testdata(name: str) -> Path:
    """One of pydicom's bundled test files."""
    found = get_testdata_file(name)
    assert isinstance(found, str), name
    return Path(found)


def _deid_data(name: str) -> Path:
    import deid_data  # type: ignore[import-untyped]

    return Path(deid_data.__file__).parent / "data" / name


CT_SMALL = _testdata("CT_small.dcm")  # GE CT: private GEMS groups, dates in UIDs
STS_CT = STS_001 / "CT" / "image" / "000001.dcm"  # implicit VR CT slice
STS_RS = STS_001 / "CT" / "mask" / "RS.dcm"  # its RTSTRUCT, referencing the CT's UIDs
CT_BRAIN = _deid_data("humans/ctbrain1.dcm")  # SIMPSON^HOMER^J^, 00007041776, 20230101...
COOKIE = _deid_data("dicom-cookies/image1.dcm")  # PatientSex F

HINT = re.compile(r"^.{0,2}…\(\d+\)$")

# What a correct de-identification may keep as it is: technical attributes, none in PS3.15
# Table E.1-1, and the RT structure (its UIDs replaced, its names and text cleaned below).
KEPT = {
    "SpecificCharacterSet",
    "ImageType",
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "BodyPartExamined",
    "KVP",
    "SliceThickness",
    "ConvolutionKernel",
    "PatientPosition",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "SeriesNumber",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "Rows",
    "Columns",
    "PixelSpacing",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "RescaleIntercept",
    "RescaleSlope",
    "PixelData",
    "ReferencedFrameOfReferenceSequence",
    "StructureSetROISequence",
    "ROIContourSequence",
    "RTROIObservationsSequence",
}
RELABELLED = {"ROIName", "ROIObservationLabel"}  # descriptors of an RT structure: relabelled
DROPPED = {"ROIDescription", "ROIObservationDescription", "ROIGenerationDescription"}


def _clean(ds: Dataset, uids: dict[str, str] | None) -> None:
    """Recursively: private elements, names, dates and times, descriptions out; UIDs
    replaced by new 2.25 UIDs (the same one for the same original, across files)."""
    for elem in list(ds):
        if elem.tag.is_private or elem.VR in ("PN", "DA", "DT", "TM") or elem.keyword in DROPPED:
            del ds[elem.tag]
        elif elem.VR == "SQ":
            for item in elem.value:
                _clean(item, uids)
        elif elem.keyword in RELABELLED:
            elem.value = "ROI_1"
        elif elem.VR == "UI" and uids is not None and str(elem.value) not in UID_dictionary:
            elem.value = uids.setdefault(str(elem.value), generate_uid(prefix=None))


def code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def deidentify(source: Path, uids: dict[str, str] | None, options: Iterable[Code] = ()) -> Dataset:
    """A correct manual de-identification of ``source`` (``uids=None``: UIDs kept as they
    are), recording the Basic Profile and ``options`` in (0012,0064)."""
    original = pydicom.dcmread(source)
    out = Dataset()
    for elem in original:
        if elem.keyword in KEPT:
            out.add(copy.deepcopy(elem))
    _clean(out, uids)
    out.PatientName = "PSEUDO^K7Q2"
    out.PatientID = "PSEUDO-K7Q2"
    out.StudyDate = "19991231"
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = "by hand, for a test"
    out.DeidentificationMethodCodeSequence = [
        code_item(code) for code in (OPTIONS.BasicApplicationConfidentialityProfile, *options)
    ]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = out.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    meta.TransferSyntaxUID = original.file_meta.TransferSyntaxUID
    out.file_meta = meta
    return out


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def inputs(tmp_path: Path, *sources: Path) -> Path:
    """The input folder: copies of ``sources``."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for index, source in enumerate(sources):
        shutil.copy(source, folder / f"{index:02d}_{source.name}")
    return folder


def found(report: VerifyReport) -> set[tuple[str, str]]:
    """The (where, kind) pairs of the leaks."""
    return {(leak.where, leak.kind) for leak in report.leaks}


def assert_masked(leaks: Iterable[Leak], value: str) -> None:
    for leak in leaks:
        assert HINT.match(leak.value_hint), leak
        assert value.lower() not in leak.value_hint.lower(), leak


# --- 1. a correct de-identification passes ---------------------------------------------


def test_a_correct_deidentification_passes(tmp_path: Path) -> None:
    sources = [CT_SMALL, STS_CT, STS_RS, CT_BRAIN]
    against = inputs(tmp_path, *sources)
    uids: dict[str, str] = {}
    for index, source in enumerate(sources):
        write(deidentify(source, uids), tmp_path / "out" / f"{index:02d}.dcm")
    # the structure set still points at its CT, through the new UIDs
    rs = pydicom.dcmread(tmp_path / "out" / "02.dcm")
    assert rs.FrameOfReferenceUID == uids[str(pydicom.dcmread(STS_CT).FrameOfReferenceUID)]
    assert rs.StudyInstanceUID.startswith("2.25.")

    report = verify(tmp_path / "out", against)

    assert report.leaks == [] and report.unreadable == [] and report.skipped == []
    assert (report.inputs, report.outputs) == (4, 4)
    assert report.values_checked > 100
    assert report.ok


def test_a_single_file_is_checked_against_a_single_file(tmp_path: Path) -> None:
    output = write(deidentify(STS_CT, {}), tmp_path / "out.dcm")
    assert verify(output, STS_CT).ok
    assert not verify(STS_CT, STS_CT).ok  # the input itself is full of itself


# --- 2. planted identifying values are caught ------------------------------------------


def family_name_in_study_description(out: Dataset, original: Dataset) -> str:
    out.StudyDescription = "CT brain, Simpson family"  # in text, in another case
    return str(original.PatientName.family_name)


def patient_id_two_levels_deep(out: Dataset, original: Dataset) -> str:
    protocols = [Dataset(), Dataset()]
    for item, value in zip(protocols, ["HEAD01", original.PatientID], strict=True):
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "99LOCAL", "Head"
    request = Dataset()
    request.ScheduledProtocolCodeSequence = protocols
    out.RequestAttributesSequence = [request]
    return str(original.PatientID)


def study_uid_in_referenced_study_sequence(out: Dataset, original: Dataset) -> str:
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management
    reference.ReferencedSOPInstanceUID = original.StudyInstanceUID
    out.ReferencedStudySequence = [reference]
    return str(original.StudyInstanceUID)


def unshifted_acquisition_date(out: Dataset, original: Dataset) -> str:
    out.AcquisitionDate = original.AcquisitionDate
    return str(original.AcquisitionDate)


def private_value_in_another_private_element(out: Dataset, original: Dataset) -> str:
    value = str(original[0x00091004].value)  # GEMS_IDEN_01 Product id: "HiSpeed CT/i"
    out.private_block(0x0029, "ACME RESEARCH", create=True).add_new(0x01, "LO", value)
    return value


def patient_name_as_operator(out: Dataset, original: Dataset) -> str:
    out.OperatorsName = original.PatientName
    return str(original.PatientName)


def family_name_in_the_preamble(out: Dataset, original: Dataset) -> str:
    name = str(original.PatientName.family_name)
    out.preamble = f"exported for {name}".encode().ljust(128, b"\0")
    return name


PLANTS = [
    (CT_BRAIN, family_name_in_study_description, "(0008,1030)", "person name"),
    (
        CT_BRAIN,
        patient_id_two_levels_deep,
        "(0040,0275)[0].(0040,0008)[1].(0008,0100)",
        "PatientID",
    ),
    (STS_CT, study_uid_in_referenced_study_sequence, "(0008,1110)[0].(0008,1155)", "UID"),
    (CT_SMALL, unshifted_acquisition_date, "(0008,0022)", "date"),
    (CT_SMALL, private_value_in_another_private_element, "(0029,1001) private", "private value"),
    (CT_BRAIN, patient_name_as_operator, "(0008,1070)", "person name"),
    (CT_BRAIN, family_name_in_the_preamble, "header bytes @13", "person name"),
]


@pytest.mark.parametrize(
    ("source", "plant", "where", "kind"),
    [pytest.param(*plant, id=plant[1].__name__) for plant in PLANTS],
)
def test_a_planted_identifying_value_is_caught(
    tmp_path: Path,
    source: Path,
    plant: Callable[[Dataset, Dataset], str],
    where: str,
    kind: str,
) -> None:
    against = inputs(tmp_path, source)
    out = deidentify(source, {})
    value = plant(out, pydicom.dcmread(source))
    output = write(out, tmp_path / "out" / "planted.dcm")

    report = verify(tmp_path / "out", against)

    assert found(report) == {(where, kind)}, [str(leak) for leak in report.leaks]
    assert not report.ok
    assert {leak.output for leak in report.leaks} == {str(output)}
    assert all(leak.source.startswith(str(against)) for leak in report.leaks)
    assert_masked(report.leaks, value)


def test_a_leaked_uid_names_where_it_came_from(tmp_path: Path) -> None:
    against = inputs(tmp_path, STS_CT)
    out = deidentify(STS_CT, {})
    study_uid_in_referenced_study_sequence(out, pydicom.dcmread(STS_CT))
    write(out, tmp_path / "out" / "a.dcm")

    (leak,) = verify(tmp_path / "out", against).leaks

    assert leak.source == f"{against / '00_000001.dcm'} (0020,000D)"
    assert leak.value_hint == "1.…(64)"


def test_a_name_component_is_a_word_not_any_substring(tmp_path: Path) -> None:
    """HOMER (5 letters) is searched as a word: found alone, not inside HOMERIC."""
    against = inputs(tmp_path, CT_BRAIN)
    out = deidentify(CT_BRAIN, {})
    out.ProcedureCodeSequence = [code_item(Code("HX1", "99LOCAL", "Homeric head protocol"))]
    write(out, tmp_path / "out" / "a.dcm")
    assert verify(tmp_path / "out", against).ok

    out.ProcedureCodeSequence = [code_item(Code("HX1", "99LOCAL", "Head, for Homer"))]
    write(out, tmp_path / "out" / "a.dcm")
    report = verify(tmp_path / "out", against)
    assert found(report) == {("(0008,1032)[0].(0008,0104)", "person name")}
    assert_masked(report.leaks, "HOMER")


def test_a_value_written_after_the_pixel_data_is_caught(tmp_path: Path) -> None:
    """Elements after (7FE0,0010) are elements of the file too (Siemens writes private
    groups 7FE1 there): the patient's name in one is a leak."""
    against = inputs(tmp_path, CT_BRAIN)
    out = deidentify(CT_BRAIN, {})
    out.private_block(0x7FE1, "ACME RESEARCH", create=True).add_new(0x01, "LO", "SIMPSON^HOMER")
    output = write(out, tmp_path / "out" / "a.dcm")
    assert b"SIMPSON^HOMER" in output.read_bytes()
    assert pydicom.dcmread(output)[0x7FE11001].value == "SIMPSON^HOMER"

    report = verify(tmp_path / "out", against)

    assert not report.ok
    assert ("(7FE1,1001) private", "person name") in found(report)


def test_pixel_data_is_not_searched(tmp_path: Path) -> None:
    """Pixel bytes are not text: a name's bytes among them are no leak (and a 512x512
    file is not read as header). Bytes after the pixel data still are (test above)."""
    against = inputs(tmp_path, STS_CT)
    out = deidentify(STS_CT, {})
    name = str(pydicom.dcmread(STS_CT).PatientName).encode()
    pixels = bytearray(out.PixelData)  # native 512x512: more than pydicom reads at once
    pixels[1000 : 1002 + len(name) + 2] = b"\x00 " + name + b" \x00"
    out.PixelData = bytes(pixels)
    output = write(out, tmp_path / "out" / "a.dcm")
    assert name in output.read_bytes()

    report = verify(tmp_path / "out", against)

    assert report.ok, [str(leak) for leak in report.leaks]


# --- 3. options recorded in (0012,0064) ---------------------------------------------------

DATES_AND_TIMES = [
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "AcquisitionDateTime",
    "StudyTime",
    "SeriesTime",
    "AcquisitionTime",
    "ContentTime",
]


def _dated(options: Iterable[Code], birth_date: bool = False) -> Dataset:
    original = pydicom.dcmread(CT_BRAIN)
    out = deidentify(CT_BRAIN, {}, options)
    for keyword in DATES_AND_TIMES + (["PatientBirthDate"] if birth_date else []):
        out[keyword] = copy.deepcopy(original[keyword])
    return out


def test_retain_full_dates_lets_the_original_dates_stay(tmp_path: Path) -> None:
    against = inputs(tmp_path, CT_BRAIN)
    full = OPTIONS.RetainLongitudinalTemporalInformationFullDatesOption
    write(_dated([full]), tmp_path / "out" / "a.dcm")
    assert verify(tmp_path / "out", against).ok

    # not the birth date: the option keeps study dates, not the patient's
    write(_dated([full], birth_date=True), tmp_path / "out" / "a.dcm")
    report = verify(tmp_path / "out", against)
    assert found(report) == {("(0010,0030)", "table attribute PatientBirthDate")}
    assert_masked(report.leaks, "20200704")


@pytest.mark.parametrize(
    ("options", "times"),
    [([], True), ([OPTIONS.RetainLongitudinalTemporalInformationModifiedDatesOption], False)],
    ids=["no option", "modified dates"],
)
def test_original_dates_leak_without_retain_full_dates(
    tmp_path: Path, options: list[Code], times: bool
) -> None:
    """Modified Dates means the dates were modified: the originals must not be there (the
    times may: a shift by whole days leaves them as they were)."""
    against = inputs(tmp_path, CT_BRAIN)
    write(_dated(options), tmp_path / "out" / "a.dcm")

    report = verify(tmp_path / "out", against)

    dates = {where for where, kind in found(report) if kind == "date"}
    assert dates == {"(0008,0020)", "(0008,0021)", "(0008,0022)", "(0008,002A)"}
    assert (("(0008,0030)", "table attribute StudyTime") in found(report)) is times
    assert_masked(report.leaks, "20230101")


def test_a_shifted_date_that_meets_another_files_date_is_no_leak(tmp_path: Path) -> None:
    """With Modified Dates, one donor's shift may land on a date of another input: only the
    dates of the input an output was made from (same pixel data) count there."""
    modified = [OPTIONS.RetainLongitudinalTemporalInformationModifiedDatesOption]
    against = inputs(tmp_path, CT_BRAIN, CT_SMALL)
    other_date = pydicom.dcmread(CT_SMALL).StudyDate
    shifted = deidentify(CT_BRAIN, {}, modified)
    shifted.StudyDate = other_date  # CT_BRAIN's date moved back onto CT_small's
    write(shifted, tmp_path / "out" / "a.dcm")

    report = verify(tmp_path / "out", against)

    assert report.ok, [str(leak) for leak in report.leaks]
    unshifted = deidentify(CT_BRAIN, {}, modified)
    unshifted.StudyDate = pydicom.dcmread(CT_BRAIN).StudyDate  # its own date: a leak
    write(unshifted, tmp_path / "out" / "a.dcm")
    assert ("(0008,0020)", "date") in found(verify(tmp_path / "out", against))


def test_retain_uids_is_read_per_file(tmp_path: Path) -> None:
    against = inputs(tmp_path, STS_CT, STS_RS)
    retain = [OPTIONS.RetainUidsOption]
    write(deidentify(STS_CT, None, retain), tmp_path / "out" / "ct.dcm")
    rs = write(deidentify(STS_RS, None), tmp_path / "out" / "rs.dcm")  # option not recorded

    report = verify(tmp_path / "out", against)

    assert {leak.output for leak in report.leaks} == {str(rs)}
    uid_paths = {where for where, kind in found(report) if kind == "UID"}
    assert {
        "(0002,0003)",
        "(0008,0018)",
        "(0020,000D)",
        "(0020,000E)",
        "(3006,0010)[0].(0020,0052)",
        "(3006,0010)[0].(3006,0012)[0].(0008,1155)",
        "(3006,0010)[0].(3006,0012)[0].(3006,0014)[0].(3006,0016)[0].(0008,1155)",
    } <= uid_paths
    assert_masked(report.leaks, str(pydicom.dcmread(STS_RS).StudyInstanceUID))

    write(deidentify(STS_RS, None, retain), rs)
    assert verify(tmp_path / "out", against).ok


def test_a_retained_uid_holding_the_study_date_still_leaks_the_date(tmp_path: Path) -> None:
    """CT_small's UIDs embed 20040119, its study date: Retain UIDs does not retain dates."""
    against = inputs(tmp_path, CT_SMALL)
    write(deidentify(CT_SMALL, None, [OPTIONS.RetainUidsOption]), tmp_path / "out" / "a.dcm")

    report = verify(tmp_path / "out", against)

    assert found(report) == {
        (where, "date")
        for where in ("(0002,0003)", "(0008,0018)", "(0020,000D)", "(0020,000E)", "(0020,0052)")
    }
    both = [OPTIONS.RetainUidsOption, OPTIONS.RetainLongitudinalTemporalInformationFullDatesOption]
    write(deidentify(CT_SMALL, None, both), tmp_path / "out" / "a.dcm")
    assert verify(tmp_path / "out", against).ok


def _characteristics(source: Path, options: Iterable[Code]) -> Dataset:
    original = pydicom.dcmread(source)
    out = deidentify(source, {}, options)
    for keyword in ("PatientSex", "PatientAge", "PatientWeight"):
        if original.get(keyword):
            out[keyword] = copy.deepcopy(original[keyword])
    return out


@pytest.mark.parametrize(("source", "sex"), [(CT_BRAIN, "M"), (COOKIE, "F")], ids=["M", "F"])
def test_patient_characteristics_stay_only_under_their_option(
    tmp_path: Path, source: Path, sex: str
) -> None:
    against = inputs(tmp_path, source)
    assert pydicom.dcmread(source).PatientSex == sex
    retain = [OPTIONS.RetainPatientCharacteristicsOption]
    write(_characteristics(source, retain), tmp_path / "out" / "a.dcm")
    assert verify(tmp_path / "out", against).ok

    # rule 6: one letter, the same as the input's, in the same attribute
    write(_characteristics(source, []), tmp_path / "out" / "a.dcm")
    report = verify(tmp_path / "out", against)
    assert ("(0010,0040)", "table attribute PatientSex") in found(report)
    if source == CT_BRAIN:
        assert found(report) == {
            ("(0010,0040)", "table attribute PatientSex"),
            ("(0010,1010)", "table attribute PatientAge"),
            ("(0010,1030)", "table attribute PatientWeight"),
        }


def test_a_hint_never_shows_a_short_value_whole(tmp_path: Path) -> None:
    """The report may be shared: "never the value itself", even for a one-letter value."""
    against = inputs(tmp_path, CT_BRAIN)
    write(_characteristics(CT_BRAIN, []), tmp_path / "out" / "a.dcm")

    report = verify(tmp_path / "out", against)

    (sex,) = [leak for leak in report.leaks if leak.where == "(0010,0040)"]
    assert "M" not in sex.value_hint


def test_retain_safe_private_keeps_a_value_in_its_own_element_only(tmp_path: Path) -> None:
    against = inputs(tmp_path, CT_SMALL)
    original = pydicom.dcmread(CT_SMALL)
    value = original[0x00091004].value  # (0009,1004) of GEMS_IDEN_01
    safe = [OPTIONS.RetainSafePrivateOption]

    def check(options: list[Code], group: int, creator: str, offset: int) -> VerifyReport:
        out = deidentify(CT_SMALL, {}, options)
        out.private_block(group, creator, create=True).add_new(offset, "SH", value)
        write(out, tmp_path / "out" / "a.dcm")
        return verify(tmp_path / "out", against)

    assert check(safe, 0x0009, "GEMS_IDEN_01", 0x04).ok
    # the same element in another block slot, (0009,0011) -> (0009,11xx): still its own
    out = deidentify(CT_SMALL, {}, safe)
    out.add_new(0x00090011, "LO", "GEMS_IDEN_01")
    out.add_new(0x00091104, "SH", value)
    write(out, tmp_path / "out" / "a.dcm")
    assert verify(tmp_path / "out", against).ok

    assert found(check([], 0x0009, "GEMS_IDEN_01", 0x04)) == {
        ("(0009,1004) private", "private value")
    }
    assert found(check(safe, 0x0009, "GEMS_IDEN_01", 0x02)) == {
        ("(0009,1002) private", "private value")
    }
    assert found(check(safe, 0x0029, "ACME RESEARCH", 0x04)) == {
        ("(0029,1004) private", "private value")
    }


# --- 4. sameness that identifies nobody -----------------------------------------------------


def test_unchanged_technical_attributes_are_not_leaks(tmp_path: Path) -> None:
    # two inputs, two scanners: neither's private or descriptive values make the other's
    # technical attributes leaks
    against = inputs(tmp_path, CT_BRAIN, CT_SMALL)
    out = deidentify(CT_BRAIN, {})
    original = pydicom.dcmread(CT_BRAIN)
    # not in Table E.1-1, kept as they are; the procedure's code meaning is the input's
    # StudyDescription text, in the attribute that held it in the input
    for keyword in ("ProcedureCodeSequence", "CTDIPhantomTypeCodeSequence"):
        out[keyword] = copy.deepcopy(original[keyword])
    out.add_new(0x00090010, "LO", "GEMS_IDEN_01")  # a bare private creator identifies no one
    write(out, tmp_path / "out" / "brain.dcm")
    write(deidentify(CT_SMALL, {}), tmp_path / "out" / "small.dcm")
    for keyword in (
        "Manufacturer",
        "ManufacturerModelName",
        "Modality",
        "ImageType",
        "BodyPartExamined",
        "KVP",
        "SliceThickness",
        "ConvolutionKernel",
        "SOPClassUID",
    ):
        assert out[keyword].value == original[keyword].value, keyword
    assert out.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert out.ProcedureCodeSequence[0].CodeMeaning == original.StudyDescription

    report = verify(tmp_path / "out", against)

    assert report.leaks == [] and report.ok


def test_a_kept_value_moved_to_another_attribute_is_a_leak(tmp_path: Path) -> None:
    """The same text in an attribute that must go (Image Comments) is the description."""
    against = inputs(tmp_path, CT_BRAIN)
    out = deidentify(CT_BRAIN, {})
    out.ImageComments = pydicom.dcmread(CT_BRAIN).StudyDescription
    write(out, tmp_path / "out" / "a.dcm")

    report = verify(tmp_path / "out", against)

    ((where, kind),) = found(report)
    assert where == "(0020,4000)" and kind.startswith("table attribute ")
    assert_masked(report.leaks, "CT BRAIN WO IVCON")


def test_clean_descriptors_lets_a_description_stay(tmp_path: Path) -> None:
    against = inputs(tmp_path, CT_BRAIN)
    original = pydicom.dcmread(CT_BRAIN)
    for description in (original.StudyDescription, "CT BRAIN"):  # as it was, or cleaned
        out = deidentify(CT_BRAIN, {}, [OPTIONS.CleanDescriptorsOption])
        out.StudyDescription = description
        write(out, tmp_path / "out" / "a.dcm")
        assert verify(tmp_path / "out", against).ok, description

    out = deidentify(CT_BRAIN, {})  # without the option, the description must go
    out.StudyDescription = original.StudyDescription
    write(out, tmp_path / "out" / "a.dcm")
    report = verify(tmp_path / "out", against)
    ((where, kind),) = found(report)  # the kind names one of the attributes that held it
    assert where == "(0008,1030)" and kind.startswith("table attribute ")


@pytest.mark.parametrize("kept", ["CT BRAIN SIMPSON", "SIMPSON"], ids=["as it was", "cleaned"])
def test_clean_descriptors_does_not_let_the_patients_name_stay(tmp_path: Path, kept: str) -> None:
    """A description the scanner wrote with the patient's family name in it, "cleaned" with
    the name left in: the name is a leak, whatever else was taken out."""
    source = pydicom.dcmread(CT_BRAIN)
    source.StudyDescription = "CT BRAIN SIMPSON"
    against = write(source, tmp_path / "in" / "a.dcm")
    out = deidentify(against, {}, [OPTIONS.CleanDescriptorsOption])
    out.StudyDescription = kept
    write(out, tmp_path / "out" / "a.dcm")

    report = verify(tmp_path / "out", tmp_path / "in")

    assert ("(0008,1030)", "person name") in found(report)


# --- 5. what is not checked, and what cannot be --------------------------------------------


def test_an_unreadable_dicom_file_fails_the_check(tmp_path: Path) -> None:
    against = inputs(tmp_path, CT_SMALL)
    write(deidentify(CT_SMALL, {}), tmp_path / "out" / "good.dcm")
    garbage = tmp_path / "out" / "broken.dcm"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n not DICOM, whatever the name says" * 8)
    prefixed = tmp_path / "out" / "IM0001"
    prefixed.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 300)

    report = verify(tmp_path / "out", against)

    assert {path for path, _ in report.unreadable} == {str(garbage), str(prefixed)}
    assert report.leaks == [] and report.outputs == 1
    assert not report.ok


def test_a_file_without_sop_instance_uid_is_unreadable(tmp_path: Path) -> None:
    against = inputs(tmp_path, CT_SMALL)
    out = deidentify(CT_SMALL, {})
    del out.SOPInstanceUID
    output = write(out, tmp_path / "out" / "a.dcm")

    report = verify(tmp_path / "out", against)

    assert report.unreadable == [(str(output), "no SOPInstanceUID")]
    assert not report.ok


def test_text_files_and_dicomdir_are_skipped(tmp_path: Path) -> None:
    against = inputs(tmp_path, CT_BRAIN)
    write(deidentify(CT_BRAIN, {}), tmp_path / "out" / "a.dcm")
    readme = tmp_path / "out" / "README.txt"
    readme.write_text("Exported for SIMPSON^HOMER, 00007041776\n", encoding="utf-8")
    dicomdir = _testdata("DICOMDIR")
    shutil.copy(dicomdir, tmp_path / "out" / "DICOMDIR")

    report = verify(tmp_path / "out", against)

    assert report.skipped == [str(readme)]
    assert report.outputs == 1 and report.ok


def test_nothing_to_compare_fails(tmp_path: Path) -> None:
    against = inputs(tmp_path, CT_SMALL)
    (tmp_path / "empty").mkdir()
    write(deidentify(CT_SMALL, {}), tmp_path / "out" / "a.dcm")

    no_output = verify(tmp_path / "empty", against)
    no_input = verify(tmp_path / "out", tmp_path / "empty")

    assert (no_output.outputs, no_output.leaks, no_output.ok) == (0, [], False)
    assert (no_input.inputs, no_input.leaks, no_input.ok) == (0, [], False)


def test_a_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "nowhere", CT_SMALL)
    with pytest.raises(FileNotFoundError):
        verify(CT_SMALL, tmp_path / "nowhere")


# --- 6. the real files, unchanged ---------------------------------------------------------

CORPUS = [
    CT_SMALL,
    _testdata("MR_small.dcm"),
    _testdata("rtstruct.dcm"),
    _testdata("image_dfl.dcm"),  # deflated
    CT_BRAIN,
    _deid_data("humans/ctbrain2.dcm"),
    COOKIE,
    _deid_data("animals/cat.dcm"),
    STS_CT,
    STS_RS,
]


def test_unchanged_real_files_leak_everywhere(tmp_path: Path) -> None:
    against = inputs(tmp_path, *CORPUS)
    output = tmp_path / "out"
    shutil.copytree(against, output)

    report = verify(output, against)

    assert not report.ok
    assert (report.inputs, report.outputs, report.unreadable) == (len(CORPUS), len(CORPUS), [])
    assert len(report.leaks) > 300
    kinds = {leak.kind for leak in report.leaks}
    assert {"person name", "PatientID", "UID", "date", "private value"} <= kinds
    for path in sorted(output.iterdir()):
        here = {leak.where for leak in report.leaks if leak.output == str(path)}
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        expected = {"(0008,0018)"}  # every file: its own SOP Instance UID
        if ds.PatientID:
            expected.add("(0010,0020)")
        if len(str(ds.PatientName).strip("^ ")) >= 3:
            expected.add("(0010,0010)")
        assert expected <= here, path
    assert sum(leak.where == "(0010,0020)" for leak in report.leaks) >= len(CORPUS) - 1
    # every value lies in an element: nothing is left for the raw header search
    assert not [leak for leak in report.leaks if leak.where.startswith("header bytes")]
    assert all(HINT.match(leak.value_hint) for leak in report.leaks)


def test_a_shifted_date_meeting_another_files_date_is_not_a_leak(tmp_path: Path) -> None:
    """Regression: with Modified Dates, an RTSTRUCT (no pixel data, so its own input cannot
    be found) whose correctly shifted date equals another input's date was reported. With a
    shift of 8 days, the MR RTSTRUCT's ContentDate 20190828 becomes 20190820, the CT's."""
    import hashlib

    from typer.testing import CliRunner

    from imaging_biobank.cli import app
    from imaging_biobank.deid.pseudonym import Pseudonymiser

    key = next(
        k
        for k in (hashlib.sha256(str(i).encode()).digest() for i in range(100_000))
        if Pseudonymiser(k).date_shift_days("STS_001") == 8
    )
    key_file = tmp_path / "k.key"
    key_file.write_text(key.hex() + "\n")
    source = tmp_path / "in"
    for folder in ("CT", "MR_T1"):
        shutil.copytree(STS_001 / folder, source / folder)
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(
        app, ["deid", str(source), str(out), "--key-file", str(key_file), "-o", "modified-dates"]
    )
    assert result.exit_code == 0, result.output
    report = verify(out, source)
    assert report.leaks == [], report.leaks
    # a date really left as it was is still found
    rtstructs = [p for p in out.rglob("*.dcm") if pydicom.dcmread(p).Modality == "RTSTRUCT"]
    mr = next(p for p in rtstructs if pydicom.dcmread(p).ContentDate == "20190820")
    other = next(p for p in rtstructs if p != mr)
    ds = pydicom.dcmread(other)
    ds.ContentDate = "20190828"  # the MR RTSTRUCT's own, unshifted
    ds.save_as(other)
    assert {leak.where for leak in verify(out, source).leaks} == {"(0008,0023)"}
