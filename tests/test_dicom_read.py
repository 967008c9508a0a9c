"""Reading headers: the fast parser gives the reference parser's records; bad files say why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from imaging_biobank.dicom import terms
from imaging_biobank.dicom.read import read_bytes, read_path
from imaging_biobank.dicom.record import Coded, HeaderError, age_in_years, iso_date
from tests.conftest import STS_001

PYDICOM_DATA = Path(pydicom.__file__).parent / "data"


def corpus_files() -> list[Path]:
    """pydicom's bundled files, the pydicom-data package and STS_001: every file in them."""
    import data_store

    roots = [PYDICOM_DATA, Path(data_store.__file__).parent, STS_001]
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def outcome(path: Path, parser: str) -> object:
    try:
        record = read_path(path, parser)  # type: ignore[arg-type]
    except HeaderError as error:
        return ("rejected", str(error).split(":")[0])
    except Exception as error:  # dicomsdl alone refusing what auto hands over to pydicom
        if parser != "dicomsdl":
            raise
        return ("rejected", type(error).__name__)
    return (record.content_hash(), record.transfer_syntax_uid)


# pydicom parses no element of this file (ten whole JPEG 2000 fragments, the closing
# delimiter missing); dicomsdl reads its header and checks every fragment is whole.
PYDICOM_CANNOT_PARSE = {"emri_small_jpeg_2k_lossless_too_short.dcm"}


def test_fast_parser_gives_the_reference_records_on_every_corpus() -> None:
    files = corpus_files()
    assert len(files) > 400
    readable = 0
    for path in files:
        if path.name in PYDICOM_CANNOT_PARSE:
            continue
        reference = outcome(path, "pydicom")
        assert outcome(path, "auto") == reference, path
        if reference[0] != "rejected":
            readable += 1
            fast = outcome(path, "dicomsdl") if path.suffix == ".dcm" else reference
            if fast[0] != "rejected":  # dicomsdl alone may refuse what auto hands to pydicom
                assert fast == reference, path
    assert readable > 300


def truncations(tmp_path: Path) -> list[Path]:
    """Copies cut inside a value: in the middle of the pixel data, and in the middle of a
    header element. (A cut exactly between two elements leaves a valid header-only file:
    those exist on purpose, e.g. pydicom's dicomdirtests, and are accepted.)"""
    sources = [
        next((STS_001 / "CT" / "image").glob("*.dcm")),
        next((STS_001 / "PET" / "image").glob("*.dcm")),
        PYDICOM_DATA / "test_files" / "CT_small.dcm",
        PYDICOM_DATA / "test_files" / "MR_small.dcm",
        PYDICOM_DATA / "test_files" / "JPEG2000.dcm",
        PYDICOM_DATA / "test_files" / "SC_rgb_rle.dcm",
    ]
    cut = []
    for source in sources:
        data = source.read_bytes()
        ds = pydicom.dcmread(source)
        pixels = ds.get_item(0x7FE00010)
        values = [
            e
            for t in ds.keys()  # noqa: SIM118 (iterating a Dataset yields elements)
            if t < 0x7FE00010
            and getattr(e := ds.get_item(t), "length", 0) > 8
            and getattr(e, "value_tell", None) is not None
        ]
        middle = values[len(values) // 2]
        positions = {
            "pixels": pixels.value_tell + min(pixels.length, len(data) - pixels.value_tell) // 2,
            "header": middle.value_tell + middle.length // 2,
        }
        for where, position in positions.items():
            path = tmp_path / f"{source.stem}-{where}.dcm"
            path.write_bytes(data[:position])
            cut.append(path)
    return cut


def test_truncated_files_are_rejected_by_both_parsers(tmp_path: Path) -> None:
    for path in truncations(tmp_path):
        for parser in ("pydicom", "auto"):
            with pytest.raises(HeaderError) as error:
                read_path(path, parser)  # type: ignore[arg-type]
            reason = str(error.value)
            assert reason.startswith(("truncated", "not a DICOM", "missing", "cannot parse")), (
                path,
                parser,
                reason,
            )


def test_dicomsdl_does_not_crash_on_truncated_files(tmp_path: Path) -> None:
    """dicomsdl 0.109 segfaulted on files cut inside their pixel data; we no longer let it
    parse that element. Run in a child process: a crash must fail the test, not pytest."""
    paths = [str(p) for p in truncations(tmp_path)]
    paths.append(str(PYDICOM_DATA / "test_files" / "MR_truncated.dcm"))
    code = (
        "import sys\nfrom imaging_biobank.dicom.read import read_path\n"
        "for p in sys.argv[1:]:\n"
        "    try: read_path(p, 'dicomsdl')\n"
        "    except Exception: pass\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_non_dicom_and_incomplete_files_say_why(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n" * 20)
    with pytest.raises(HeaderError, match="not a DICOM file"):
        read_path(text)
    with pytest.raises(HeaderError, match="cannot read"):
        read_path(tmp_path / "missing.dcm")
    ds = pydicom.dcmread(PYDICOM_DATA / "test_files" / "CT_small.dcm")
    del ds.SeriesInstanceUID
    path = tmp_path / "no-series.dcm"
    ds.save_as(path)
    with pytest.raises(HeaderError, match=r"missing SeriesInstanceUID \(0020,000E\)"):
        read_path(path)


def test_sts_001_records_what_the_model_needs() -> None:
    pet = read_path(next((STS_001 / "PET" / "image").glob("*.dcm")))
    assert pet.modality == "PT"
    assert pet.acquisition["units"] == "GML"
    assert pet.acquisition["decay_correction"] == "ADMIN"
    assert pet.acquisition["radiopharmaceutical"] == "FDG -- fluorodeoxyglucose"
    assert pet.reconstruction["reconstruction_method"] == "OSEM"
    assert pet.acquisition_extra  # everything else read is kept
    ct = read_path(next((STS_001 / "CT" / "image").glob("*.dcm")))
    assert ct.reconstruction["convolution_kernel"] == "SOFT"
    assert ct.reconstruction["reconstruction_diameter"] == 500
    assert ct.acquisition["kvp"] == 140
    assert ct.donor == "STS_001"  # the worker replaces it by the pseudonym


def test_multi_valued_attributes_keep_every_value_in_order() -> None:
    record = read_path(PYDICOM_DATA / "test_files" / "MR_small.dcm")
    assert record.acquisition["scanning_sequence"] == "SE"
    mr = pydicom.dcmread(PYDICOM_DATA / "test_files" / "MR_small.dcm")
    mr.ScanningSequence = ["SE", "IR"]
    mr.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    data = _bytes(mr)
    record = read_bytes(data, "memory")
    assert record.acquisition["scanning_sequence"] == "SE\\IR"
    assert record.acquisition_extra["ImageType"] == ["ORIGINAL", "PRIMARY", "M", "ND"]


def _bytes(ds: Dataset) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def enhanced_ct(thicknesses: list[float], currents: list[float]) -> bytes:
    """An Enhanced CT object whose frames vary (per-frame functional groups)."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = (
        generate_uid(),
        generate_uid(),
        generate_uid(),
    )
    ds.Modality, ds.PatientID, ds.NumberOfFrames = "CT", "P1", len(thicknesses)
    shared = Dataset()
    xray = Dataset()
    xray.KVP = 120
    shared.CTXRayDetailsSequence = [xray]
    recon = Dataset()
    recon.ConvolutionKernel, recon.ReconstructionAlgorithm = "B30f", "ITERATIVE"
    recon.ReconstructionDiameter = 350
    shared.CTReconstructionSequence = [recon]
    anatomy = Dataset()
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = (
        "818981001",
        "SCT",
        "Abdomen",
    )
    anatomy.AnatomicRegionSequence = [region]
    shared.FrameAnatomySequence = [anatomy]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for thickness, current in zip(thicknesses, currents, strict=True):
        frame, measures, exposure = Dataset(), Dataset(), Dataset()
        measures.SliceThickness, measures.PixelSpacing = thickness, [0.7, 0.7]
        exposure.XRayTubeCurrentInmA = current
        frame.PixelMeasuresSequence, frame.CTExposureSequence = [measures], [exposure]
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return _bytes(ds)


def test_enhanced_objects_read_functional_groups_and_keep_ranges() -> None:
    data = enhanced_ct([1.0, 1.0, 2.5], [200.0, 250.0, 180.0])
    for parser in ("pydicom", "dicomsdl"):
        record = read_bytes(data, "enhanced", parser)  # type: ignore[arg-type]
        assert record.acquisition["slice_thickness"] == 1.0
        assert record.ranges["slice_thickness"] == (1.0, 2.5)
        assert record.ranges["xray_tube_current"] == (180.0, 250.0)
        assert record.acquisition["kvp"] == 120
        assert record.reconstruction["convolution_kernel"] == "B30f"
        assert record.reconstruction["reconstruction_algorithm"] == "ITERATIVE"
        assert record.anatomic_region == Coded("SCT", "818981001", "Abdomen")


@pytest.mark.parametrize(
    ("value", "years"),
    [
        ("066Y", 66),
        ("011M", 11 / 12),
        ("003W", 3 * 7 / 365.25),
        ("010D", 10 / 365.25),
        ("66", 66),
        ("", None),
        ("abc", None),
        (None, None),
    ],
)
def test_ages_as_dicom_writes_them(value: str | None, years: float | None) -> None:
    result = age_in_years(value)
    assert result == (None if years is None else pytest.approx(years, abs=1e-3))


def test_dates() -> None:
    assert iso_date("20100131") == "2010-01-31"
    assert iso_date("2010.01.31") == "2010-01-31"
    assert iso_date("20101332") is None and iso_date("") is None


@pytest.mark.parametrize(
    ("value", "region", "term", "flag"),
    [
        ("CHEST", None, "CHEST", None),
        ("WHOLE BODY", None, "WHOLEBODY", "normalised"),
        ("Abd", None, "ABDOMEN", "normalised"),
        ("chest", None, "CHEST", "normalised"),
        ("ARM", None, "UPPERARM", "normalised"),  # an older edition's term
        ("GALLBLADER", None, "GALLBLADDER", "normalised"),  # the PRIMAGE list's spelling
        ("KNEECAP?", None, None, "nonstandard"),
        (None, Coded("SCT", "43799004", "Chest"), "CHEST", "normalised"),  # an older code
        (None, Coded("SCT", "816094009", "Chest"), "CHEST", None),
        ("HEAD", Coded("SCT", "816094009", "Chest"), "CHEST", "conflict"),  # the sequence wins
        (None, None, None, None),
    ],
)
def test_body_part_is_matched_in_both_editions_and_flagged(
    value: str | None, region: Coded | None, term: str | None, flag: str | None
) -> None:
    match = terms.body_part(value, region)
    assert (match.term.code if match.term else None, match.flag) == (term, flag)
    if match.term is not None:
        assert match.term.vocabulary == "body-part-examined.annex-l"


def test_data_sets_without_preamble_are_read_in_either_byte_order() -> None:
    for name in ("ExplVR_LitEndNoMeta.dcm", "ExplVR_BigEndNoMeta.dcm"):
        path = PYDICOM_DATA / "test_files" / name
        reference = pydicom.dcmread(path, force=True)
        record = read_path(path)
        assert record.sop_instance_uid == reference.SOPInstanceUID, name


def test_reading_the_corpus_prints_no_library_warnings() -> None:
    """Invalid values are reported through our reasons; pydicom's own warnings would reach
    the terminal of whoever runs an ingest."""
    code = (
        "import sys, warnings\nwarnings.simplefilter('always')\n"
        "from imaging_biobank.dicom.read import read_path\n"
        "for p in sys.argv[1:]:\n"
        "    try: read_path(p, 'pydicom')\n"
        "    except Exception: pass\n"
    )
    paths = [str(p) for p in corpus_files() if p.suffix == ".dcm"]
    result = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "Warning" not in result.stderr.decode(), result.stderr.decode()[-2000:]
