"""The pure analysis readers: RTSTRUCT / SEG / NIfTI segmentations, TID 1500 SR, REG / ITK.

Real data: the STS_001 patient (CT, MR T1, PET, each with an RTSTRUCT GTV) in
examples/data/sts_001. SEG and SR files are made here by highdicom from those CT images
and the RTSTRUCT mask (no SEG or TID 1500 SR ships with pydicom or pydicom-data); REG
objects are built with pydicom and ITK transforms written as text.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from imaging_biobank.analysis.registration_read import (
    SPATIAL_REGISTRATION,
    RegistrationReadError,
    read_dicom_registration,
    read_itk_transform,
    read_registration,
)
from imaging_biobank.analysis.segmentation_read import (
    Coded,
    Grid,
    SegmentationReadError,
    SegmentRecord,
    SeriesGrid,
    rasterise_polygons,
    read_nifti_mask,
    read_rtstruct,
    read_seg,
    read_series_grid,
    series_affine_ras,
)
from imaging_biobank.analysis.sr_read import MeasurementReportError, read_measurement_report

STS_001 = Path(__file__).resolve().parents[1] / "examples" / "data" / "sts_001"
MODALITIES = ("CT", "MR_T1", "PET")


def _images(modality: str) -> list[Path]:
    return sorted((STS_001 / modality / "image").glob("*.dcm"))


def _rtstruct(modality: str) -> Path:
    return STS_001 / modality / "mask" / "RS.dcm"


@pytest.fixture(scope="module")
def ct_series() -> SeriesGrid:
    return read_series_grid(_images("CT"))


@pytest.fixture(scope="module")
def gtv_records() -> dict[str, SegmentRecord]:
    records = {}
    for modality in MODALITIES:
        (record,) = read_rtstruct(_rtstruct(modality), _images(modality))
        records[modality] = record
    return records


# --- RTSTRUCT ---------------------------------------------------------------------------


@pytest.mark.parametrize("modality", MODALITIES)
def test_rtstruct_gtv(modality: str, gtv_records: dict[str, SegmentRecord]) -> None:
    record = gtv_records[modality]
    rtstruct = pydicom.dcmread(_rtstruct(modality))
    image = pydicom.dcmread(_images(modality)[0], stop_before_pixels=True)
    declared = (
        rtstruct.ReferencedFrameOfReferenceSequence[0]
        .RTReferencedStudySequence[0]
        .RTReferencedSeriesSequence[0]
        .SeriesInstanceUID
    )
    assert record.source_kind == "RTSTRUCT"
    assert record.source_sop_instance_uid == rtstruct.SOPInstanceUID
    assert record.label == f"GTV_Mass_{modality}"
    assert record.segment_number == 1
    assert record.kind == "manual"  # ROIGenerationAlgorithm MANUAL
    assert record.interpreted_type == "GTV"
    assert record.contour_types == ("CLOSED_PLANAR",)
    assert record.segmentation_type == "CLOSED_PLANAR"
    # the RTSTRUCT names the series it was drawn on; the image/ folder holds a cropped
    # copy of it (IBSI) with new UIDs in the same frame of reference: the mask lies on the
    # folder's grid and the record keeps both series
    assert record.referenced_series_uid == declared
    assert record.grid_series_uid == image.SeriesInstanceUID
    assert record.referenced_frame_of_reference_uid == image.FrameOfReferenceUID
    assert any("rasterised on series" in w for w in record.warnings)
    assert record.mask.dtype == bool and not record.mask.flags.writeable
    assert record.mask.shape == (59, image.Rows, image.Columns) == record.grid.shape
    assert record.voxel_count == int(record.mask.sum()) > 0
    # 31 contoured planes, all placed by position on 31 consecutive slices
    slices = np.flatnonzero(record.mask.any(axis=(1, 2)))
    assert len(slices) == 31 and slices[-1] - slices[0] == 30
    assert record.volume_mm3 == pytest.approx(record.voxel_count * math.prod(record.grid.spacing))
    assert 3.4e5 < record.volume_mm3 < 3.9e5


def test_rtstruct_volumes_agree(gtv_records: dict[str, SegmentRecord]) -> None:
    volumes = [gtv_records[m].volume_mm3 for m in MODALITIES]
    # same GTV drawn on CT, MR and PET (4.7 mm PET pixels): within 1 %
    assert max(volumes) / min(volumes) < 1.01
    # CT and MR grids differ in extent but not in pixel size: the same voxels
    assert gtv_records["CT"].voxel_count == gtv_records["MR_T1"].voxel_count


def test_rtstruct_mask_in_patient_space(gtv_records: dict[str, SegmentRecord]) -> None:
    """The CT mask's voxel centres lie inside the contours' z range and x/y bounds."""
    record = gtv_records["CT"]
    rtstruct = pydicom.dcmread(_rtstruct("CT"))
    points = np.concatenate(
        [
            np.asarray(c.ContourData, dtype=float).reshape(-1, 3)
            for c in rtstruct.ROIContourSequence[0].ContourSequence
        ]
    )
    indices = np.argwhere(record.mask)
    centres = (np.c_[indices, np.ones(len(indices))] @ record.grid.affine().T)[:, :3]
    assert np.all(centres.min(axis=0) >= points.min(axis=0) - 1e-6)
    assert np.all(centres.max(axis=0) <= points.max(axis=0) + 1e-6)


def _square(grid: Grid, z: float, low: float, high: float) -> list[float]:
    """A square contour with corners at pixel coordinates (low, low)..(high, high)."""
    origin = np.asarray(grid.origin)
    corners = [(low, low), (high, low), (high, high), (low, high)]
    data: list[float] = []
    for column, row in corners:
        x = origin[0] + column * grid.spacing[2]
        y = origin[1] + row * grid.spacing[1]
        data.extend([x, y, z])
    return data


def _contour(data: list[float], kind: str = "CLOSED_PLANAR") -> Dataset:
    item = Dataset()
    item.ContourGeometricType = kind
    item.NumberOfContourPoints = len(data) // 3
    item.ContourData = [f"{v:.6f}" for v in data]
    return item


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [("AUTOMATIC", "automated"), ("SEMIAUTOMATIC", "semi_automated"), ("", None)],
)
def test_rtstruct_kind_holes_and_stray_contours(
    tmp_path: Path, ct_series: SeriesGrid, algorithm: str, kind: str | None
) -> None:
    rtstruct = pydicom.dcmread(_rtstruct("CT"))
    roi = rtstruct.StructureSetROISequence[0]
    roi.ROIGenerationAlgorithm = algorithm
    roi.ROIGenerationDescription = "test description"
    # a second ROI: on slice 10 a 20×20-pixel square with a 10×10 hole; a stray contour
    # 50 mm below the series; a point
    second = Dataset()
    second.ROINumber = 7
    second.ROIName = "ring"
    second.ReferencedFrameOfReferenceUID = roi.ReferencedFrameOfReferenceUID
    second.ROIGenerationAlgorithm = "MANUAL"
    rtstruct.StructureSetROISequence.append(second)
    z = ct_series.slice_positions[10]
    grid = ct_series.grid
    contours = Dataset()
    contours.ReferencedROINumber = 7
    outer = _contour(_square(grid, z, 49.5, 69.5))
    image = Dataset()  # placed by its ContourImageSequence; the others by position
    image.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    image.ReferencedSOPInstanceUID = ct_series.sop_instance_uids[10]
    outer.ContourImageSequence = [image]
    # a 2×2 contour at slice 10's z whose ContourImageSequence names slice 30: slice 30 wins
    misplaced = _contour(_square(grid, z, 99.5, 101.5))
    elsewhere = Dataset()
    elsewhere.ReferencedSOPClassUID = image.ReferencedSOPClassUID
    elsewhere.ReferencedSOPInstanceUID = ct_series.sop_instance_uids[30]
    misplaced.ContourImageSequence = [elsewhere]
    contours.ContourSequence = [
        outer,
        misplaced,
        _contour(_square(grid, z, 54.5, 64.5)),
        _contour(_square(grid, ct_series.slice_positions[0] - 50.0, 49.5, 69.5)),
        _contour(_square(grid, z, 10.0, 10.0)[:3], "POINT"),
    ]
    rtstruct.ROIContourSequence.append(contours)
    path = tmp_path / "RS.dcm"
    rtstruct.save_as(path)

    gtv, ring = read_rtstruct(path, [], series=ct_series)
    assert gtv.kind == kind
    assert gtv.algorithm_description == "test description"
    assert ring.segment_number == 7 and ring.label == "ring" and ring.kind == "manual"
    assert ring.interpreted_type is None  # no RTROIObservationsSequence item
    assert ring.contour_types == ("CLOSED_PLANAR", "POINT")
    assert ring.voxel_count == 20 * 20 - 10 * 10 + 2 * 2
    assert ring.mask[10, 50:70, 50:70].sum() == 300
    assert ring.mask[30, 100:102, 100:102].all() and ring.mask[30].sum() == 4
    assert any("ContourImageSequence names" in w for w in ring.warnings)
    assert not ring.mask[10, 55:65, 55:65].any()
    assert any("lie on no slice" in w for w in ring.warnings)


def test_rtstruct_frame_of_reference_mismatch(tmp_path: Path, ct_series: SeriesGrid) -> None:
    rtstruct = pydicom.dcmread(_rtstruct("CT"))
    rtstruct.StructureSetROISequence[0].ReferencedFrameOfReferenceUID = generate_uid()
    path = tmp_path / "RS.dcm"
    rtstruct.save_as(path)
    with pytest.raises(SegmentationReadError, match="frame of reference"):
        read_rtstruct(path, [], series=ct_series)


def test_rasterise_even_odd() -> None:
    outer = np.array([[1.5, 1.5], [8.5, 1.5], [8.5, 8.5], [1.5, 8.5]])
    inner = np.array([[3.5, 3.5], [6.5, 3.5], [6.5, 6.5], [3.5, 6.5]])
    mask = rasterise_polygons([outer, inner], 10, 10)
    assert mask.sum() == 7 * 7 - 3 * 3
    # a self-overlapping contour (a square traced twice) cancels out under even-odd
    assert not rasterise_polygons([np.vstack([outer, outer])], 10, 10).any()
    # a polygon partly outside the image is clipped
    assert rasterise_polygons([outer - 5.0], 10, 10).sum() == 4 * 4


def test_series_grid_rejects_mixed_series() -> None:
    with pytest.raises(SegmentationReadError, match="series"):
        read_series_grid(_images("CT")[:2] + _images("PET")[:2])


# --- DICOM SEG (highdicom) ----------------------------------------------------------------


def _box(shape: tuple[int, int, int]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    box = np.zeros(shape, dtype=bool)
    box[20:25, 50:60, 60:80] = True
    return box


def _write_seg(path: Path, segmentation_type: str, ct: SeriesGrid, gtv: SegmentRecord) -> Any:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(f) for f in ct.files]
    algorithm = hd.AlgorithmIdentificationSequence(
        name="box-maker", family=codes.cid7162.ArtificialIntelligence, version="1.2"
    )
    descriptions = [
        hd.seg.SegmentDescription(
            1,
            "GTV",
            codes.SCT.MorphologicallyAbnormalStructure,
            codes.SCT.Neoplasm,
            hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            tracking_id="GTV #1",
            tracking_uid=hd.UID(),
        ),
        hd.seg.SegmentDescription(
            2,
            "box",
            codes.SCT.Tissue,
            codes.SCT.SoftTissue,
            hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        ),
    ]
    box = _box(gtv.mask.shape) & ~gtv.mask
    if segmentation_type == "LABELMAP":
        pixels = gtv.mask.astype(np.uint8) + 2 * box.astype(np.uint8)
    else:
        pixels = np.stack([gtv.mask, box], axis=-1).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the STS_001 patient name is one word
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixels,
            segmentation_type=segmentation_type,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=900,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="imaging-biobank tests",
            manufacturer_model_name="test",
            software_versions="0",
            device_serial_number="0",
        )
        seg.save_as(path)
    return seg


@pytest.fixture(scope="module")
def seg_files(
    tmp_path_factory: pytest.TempPathFactory,
    ct_series: SeriesGrid,
    gtv_records: dict[str, SegmentRecord],
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("seg")
    files = {}
    for segmentation_type in ("BINARY", "FRACTIONAL", "LABELMAP"):
        files[segmentation_type] = folder / f"{segmentation_type}.dcm"
        _write_seg(files[segmentation_type], segmentation_type, ct_series, gtv_records["CT"])
    return files


@pytest.mark.parametrize("segmentation_type", ["BINARY", "FRACTIONAL", "LABELMAP"])
def test_seg_on_series_grid(
    segmentation_type: str,
    seg_files: dict[str, Path],
    ct_series: SeriesGrid,
    gtv_records: dict[str, SegmentRecord],
) -> None:
    gtv_mask = gtv_records["CT"].mask
    box = _box(gtv_mask.shape) & ~gtv_mask
    seg = pydicom.dcmread(seg_files[segmentation_type], stop_before_pixels=True)
    gtv, second = read_seg(seg_files[segmentation_type], ct_series.files)
    for record in (gtv, second):
        assert record.source_kind == "SEG"
        assert record.source_sop_instance_uid == seg.SOPInstanceUID
        assert record.segmentation_type == segmentation_type
        assert record.referenced_series_uid == ct_series.series_instance_uid
        assert record.grid_series_uid == ct_series.series_instance_uid
        assert record.grid == ct_series.grid and record.grid.matches(ct_series.grid)
        assert set(record.source_instance_uids) <= set(ct_series.sop_instance_uids)
    assert (gtv.segment_number, gtv.label, gtv.kind) == (1, "GTV", "manual")
    assert gtv.property_category == Coded("SCT", "49755003", "Morphologically Abnormal Structure")
    assert gtv.property_type == Coded("SCT", "108369006", "Neoplasm")
    assert gtv.tracking_id == "GTV #1" and gtv.tracking_uid
    assert (second.segment_number, second.label, second.kind) == (2, "box", "automated")
    assert (second.algorithm_name, second.algorithm_version) == ("box-maker", "1.2")
    assert second.property_type == Coded("SCT", "87784001", "Soft tissue")
    assert np.array_equal(gtv.mask, gtv_mask)
    assert np.array_equal(second.mask, box)
    assert gtv.volume_mm3 == pytest.approx(gtv_records["CT"].volume_mm3)
    if segmentation_type != "LABELMAP":  # a label map's frames hold every segment
        assert len(second.source_instance_uids) == 5  # the box spans 5 slices


def test_seg_on_own_geometry(
    seg_files: dict[str, Path], ct_series: SeriesGrid, gtv_records: dict[str, SegmentRecord]
) -> None:
    """Without the series: the SEG's own volume (its frames only), same voxels in space."""
    gtv, _ = read_seg(seg_files["BINARY"])
    assert gtv.grid_series_uid is None
    assert gtv.grid.shape[0] == 31  # the frames the GTV spans
    assert gtv.voxel_count == gtv_records["CT"].voxel_count
    indices = np.argwhere(gtv.mask)
    patient = np.c_[indices, np.ones(len(indices))] @ gtv.grid.affine().T
    on_ct = np.rint(patient @ np.linalg.inv(ct_series.grid.affine()).T).astype(int)[:, :3]
    expected = np.zeros(ct_series.grid.shape, dtype=bool)
    expected[tuple(on_ct.T)] = True
    assert np.array_equal(expected, gtv_records["CT"].mask)


def test_seg_with_other_series_fails(seg_files: dict[str, Path]) -> None:
    with pytest.raises(SegmentationReadError):
        read_seg(seg_files["BINARY"], _images("PET"))


# --- NIfTI label maps (nibabel) -------------------------------------------------------------


def test_nifti_round_trip(
    tmp_path: Path, ct_series: SeriesGrid, gtv_records: dict[str, SegmentRecord]
) -> None:
    nib = pytest.importorskip("nibabel")
    labels = gtv_records["CT"].mask.astype(np.uint8)
    labels[_box(labels.shape) & (labels == 0)] = 3
    # as dcm2niix / SimpleITK lay it out: axes (column, row, slice), affine in RAS
    image = nib.Nifti1Image(labels.transpose(2, 1, 0), series_affine_ras(ct_series.grid))
    nib.save(image, tmp_path / "labels.nii.gz")
    # and reoriented to RAS (x and y flipped)
    canonical = nib.as_closest_canonical(image)
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    nib.save(canonical, tmp_path / "ras.nii.gz")
    for name in ("labels.nii.gz", "ras.nii.gz"):
        gtv, box = read_nifti_mask(tmp_path / name, ct_series.files, labels={1: "GTV", 3: "box"})
        assert (gtv.source_kind, gtv.segment_number, gtv.label) == ("NIFTI", 1, "GTV")
        assert (box.segment_number, box.label) == (3, "box")
        assert gtv.segmentation_type == "LABELMAP"
        assert gtv.referenced_series_uid == ct_series.series_instance_uid
        assert np.array_equal(gtv.mask, gtv_records["CT"].mask)
        assert np.array_equal(box.mask, labels == 3)
        assert gtv.volume_mm3 == pytest.approx(gtv_records["CT"].volume_mm3)


def test_nifti_grid_mismatch(tmp_path: Path, ct_series: SeriesGrid) -> None:
    nib = pytest.importorskip("nibabel")
    labels = np.zeros(ct_series.grid.shape[::-1], dtype=np.uint8)
    shifted = series_affine_ras(ct_series.grid)
    shifted[0, 3] += 0.4  # 0.4 mm: under half a pixel, still a different grid
    nib.save(nib.Nifti1Image(labels, shifted), tmp_path / "shifted.nii.gz")
    with pytest.raises(SegmentationReadError, match="does not match the series grid"):
        read_nifti_mask(tmp_path / "shifted.nii.gz", [], series=ct_series)
    nib.save(
        nib.Nifti1Image(labels[:, :, 1:], series_affine_ras(ct_series.grid)),
        tmp_path / "short.nii.gz",
    )
    with pytest.raises(SegmentationReadError, match="shape"):
        read_nifti_mask(tmp_path / "short.nii.gz", [], series=ct_series)


# --- TID 1500 SR (highdicom) ----------------------------------------------------------------


def write_measurement_report(path: Path, evidence: list[Any], groups: list[Any]) -> None:
    """A Comprehensive 3D SR holding a TID 1500 report of ``groups``, written by highdicom."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Doe^Jane"),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sr = hd.sr.Comprehensive3DSR(
            evidence=evidence,
            content=report[0],
            series_instance_uid=hd.UID(),
            series_number=901,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="imaging-biobank tests",
        )
    sr.save_as(path)


@pytest.fixture(scope="module")
def sr_file(
    tmp_path_factory: pytest.TempPathFactory,
    ct_series: SeriesGrid,
    gtv_records: dict[str, SegmentRecord],
) -> Iterator[tuple[Path, Any]]:
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    folder = tmp_path_factory.mktemp("sr")
    seg = _write_seg(folder / "seg.dcm", "BINARY", ct_series, gtv_records["CT"])
    sources = [pydicom.dcmread(f) for f in ct_series.files]
    mm3 = Code("mm3", "UCUM", "cubic millimeter")
    hounsfield = Code("[hnsf'U]", "UCUM", "Hounsfield unit")
    attenuation = Code("112031", "DCM", "Attenuation Coefficient")
    volumetric = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="GTV #1"),
        referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, segment_number=1),
        finding_type=codes.SCT.Neoplasm,
        finding_sites=[hd.sr.FindingSite(codes.SCT.Thigh)],
        measurements=[
            hd.sr.Measurement(name=codes.SCT.Volume, value=gtv_records["CT"].volume_mm3, unit=mm3),
            hd.sr.Measurement(
                name=attenuation, value=35.5, unit=hounsfield, derivation=codes.SCT.Mean
            ),
            hd.sr.Measurement(
                name=codes.SCT.Diameter,
                value=0.0,
                unit=Code("mm", "UCUM", "millimeter"),
                qualifier=Code("114000", "DCM", "Not a number"),
                method=Code("dummy-method", "99TEST", "Test method"),
            ),
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(codes.SCT.Necrosis, codes.SCT.Present)
        ],
    )
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array([[50.0, 50.0], [80.0, 50.0], [80.0, 90.0], [50.0, 50.0]]),
        source_image=hd.sr.SourceImageForRegion.from_source_image(sources[25]),
    )
    planar = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(identifier="region #1"),
        referenced_region=region,
        measurements=[
            hd.sr.Measurement(
                name=codes.SCT.Area, value=572.2, unit=Code("mm2", "UCUM", "square millimeter")
            )
        ],
    )
    whole_image = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(identifier="slice 0"),
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(sources[0])],
        measurements=[
            hd.sr.Measurement(
                name=attenuation, value=-20.0, unit=hounsfield, derivation=codes.SCT.Mean
            )
        ],
    )
    path = folder / "sr.dcm"
    write_measurement_report(path, [*sources, seg], [volumetric, planar, whole_image])
    yield path, seg


def test_sr_measurement_report(sr_file: tuple[Path, Any], ct_series: SeriesGrid) -> None:
    path, seg = sr_file
    report = read_measurement_report(path)
    sr = pydicom.dcmread(path)
    assert report.sop_instance_uid == sr.SOPInstanceUID
    assert report.title == Coded("DCM", "126000", "Imaging Measurement Report")
    assert report.procedures_reported == (Coded("SCT", "363679005", "Imaging procedure"),)
    by_template = {group.template: group for group in report.groups}
    assert sorted(by_template) == ["TID1410", "TID1411", "TID1501"]
    ct_uid = ct_series.series_instance_uid

    volumetric = by_template["TID1411"]
    assert volumetric.tracking_id == "GTV #1" and volumetric.tracking_uid
    assert volumetric.reference_type == "Referenced Segment"
    assert volumetric.referenced_segmentation_uid == seg.SOPInstanceUID
    assert volumetric.referenced_segment_numbers == (1,)
    assert volumetric.source_series_uid == ct_uid
    assert len(volumetric.source_sop_instance_uids) == 31
    assert volumetric.finding_type == Coded("SCT", "108369006", "Neoplasm")
    assert volumetric.finding_sites == (Coded("SCT", "68367000", "Thigh"),)
    volume, mean, diameter = volumetric.measurements
    assert volume.name == Coded("SCT", "118565006", "Volume")
    assert volume.ucum == "mm3" and volume.value == pytest.approx(365318.07, abs=0.01)
    assert volume.derivation is None
    assert mean.ucum == "[hnsf'U]" and mean.value == 35.5
    assert mean.derivation == Coded("SCT", "373098007", "Mean")
    assert diameter.qualifier == Coded("DCM", "114000", "Not a number")
    assert diameter.method == Coded("99TEST", "dummy-method", "Test method")
    assert volume.qualifier is None and volume.method is None
    (evaluation,) = volumetric.evaluations
    assert evaluation.name == Coded("SCT", "6574001", "Necrosis")
    assert evaluation.value == Coded("SCT", "52101004", "Present")

    planar = by_template["TID1410"]
    assert planar.reference_type == "Image Region"
    assert planar.region_graphic_types == ("POLYLINE",)
    assert planar.source_sop_instance_uids == (ct_series.sop_instance_uids[25],)
    assert planar.source_series_uids == (ct_uid,)
    assert planar.referenced_segmentation_uid is None
    (area,) = planar.measurements
    assert (area.name.meaning, area.value, area.ucum) == ("Area", 572.2, "mm2")

    whole_image = by_template["TID1501"]
    assert whole_image.reference_type is None
    assert whole_image.source_sop_instance_uids == (ct_series.sop_instance_uids[0],)
    assert whole_image.source_series_uid == ct_uid
    assert whole_image.measurements[0].value == -20.0


def test_sr_rejects_other_documents() -> None:
    from pydicom.data import get_testdata_file

    for name in ("test-SR.dcm", "CT_small.dcm"):  # an SR without TID 1500; an image
        path = get_testdata_file(name)
        assert path is not None
        with pytest.raises(MeasurementReportError):
            read_measurement_report(path)


# --- registrations --------------------------------------------------------------------------


def _reference(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def _matrix_item(matrix: np.ndarray[Any, Any], kind: str) -> Dataset:
    item = Dataset()
    item.FrameOfReferenceTransformationMatrixType = kind
    item.FrameOfReferenceTransformationMatrix = [float(v) for v in matrix.reshape(16)]
    return item


def _rotation_z(degrees: float, translation: tuple[float, float, float]) -> np.ndarray[Any, Any]:
    angle = math.radians(degrees)
    matrix = np.eye(4)
    matrix[:2, :2] = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    matrix[:3, 3] = translation
    return matrix


def _write_reg(path: Path, mr_matrices: list[tuple[np.ndarray[Any, Any], str]]) -> dict[str, str]:
    """A Spatial Registration of the STS_001 MR (given a frame of reference of its own)
    onto the CT; the MR series is referenced as from another study."""
    ct = [pydicom.dcmread(f, stop_before_pixels=True) for f in _images("CT")[:3]]
    mr = [pydicom.dcmread(f, stop_before_pixels=True) for f in _images("MR_T1")[:3]]
    mr_frame = generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(SPATIAL_REGISTRATION)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SPATIAL_REGISTRATION
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality = "REG"
    ds.StudyInstanceUID = ct[0].StudyInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = ct[0].FrameOfReferenceUID
    ds.ContentLabel = "MR_TO_CT"
    ds.ContentDescription = "MR T1 onto CT"

    def series_item(images: Sequence[Dataset]) -> Dataset:
        item = Dataset()
        item.SeriesInstanceUID = images[0].SeriesInstanceUID
        item.ReferencedInstanceSequence = [
            _reference(i.SOPClassUID, i.SOPInstanceUID) for i in images
        ]
        return item

    ds.ReferencedSeriesSequence = [series_item(ct)]
    other_study = Dataset()
    other_study.StudyInstanceUID = generate_uid()
    other_study.ReferencedSeriesSequence = [series_item(mr)]
    ds.StudiesContainingOtherReferencedInstancesSequence = [other_study]

    def registration(frame: str, images: Sequence[Dataset], matrices: list[Any]) -> Dataset:
        item = Dataset()
        item.FrameOfReferenceUID = frame
        item.ReferencedImageSequence = [_reference(i.SOPClassUID, i.SOPInstanceUID) for i in images]
        matrix_registration = Dataset()
        matrix_registration.MatrixSequence = [_matrix_item(m, k) for m, k in matrices]
        item.MatrixRegistrationSequence = [matrix_registration]
        return item

    ds.RegistrationSequence = [
        registration(ct[0].FrameOfReferenceUID, ct, [(np.eye(4), "RIGID")]),
        registration(mr_frame, mr, mr_matrices),
    ]
    ds.save_as(path, enforce_file_format=True)
    return {
        "ct_series": ct[0].SeriesInstanceUID,
        "mr_series": mr[0].SeriesInstanceUID,
        "ct_frame": ct[0].FrameOfReferenceUID,
        "mr_frame": mr_frame,
        "sop": ds.SOPInstanceUID,
    }


def test_dicom_registration(tmp_path: Path) -> None:
    rigid = _rotation_z(10.0, (5.0, -3.0, 12.5))
    uids = _write_reg(tmp_path / "reg.dcm", [(rigid, "RIGID")])
    (record,) = read_registration(tmp_path / "reg.dcm")
    assert record.source_format == "DICOM_REG" and record.sop_instance_uid == uids["sop"]
    assert record.registration_type == "RIGID" and record.matrix_types == ("RIGID",)
    assert record.direction == "source_to_registered"
    assert record.source_frame_of_reference_uid == uids["mr_frame"]
    assert record.target_frame_of_reference_uid == uids["ct_frame"]
    assert record.source_series_uids == (uids["mr_series"],)
    assert record.target_series_uids == (uids["ct_series"],)
    assert set(record.referenced_series_uids) == {uids["mr_series"], uids["ct_series"]}
    assert record.description == "MR T1 onto CT"
    assert np.allclose(record.matrix_4x4(), rigid)  # type: ignore[arg-type]
    assert np.allclose(record.moving_to_fixed(), rigid)  # type: ignore[arg-type]


def test_dicom_registration_matrices_in_order(tmp_path: Path) -> None:
    first = _rotation_z(30.0, (1.0, 2.0, 3.0))
    second = np.diag([1.1, 0.9, 1.0, 1.0])
    second[0, 1] = 0.05  # a shear
    _write_reg(tmp_path / "reg.dcm", [(first, "RIGID"), (second, "AFFINE")])
    (record,) = read_dicom_registration(tmp_path / "reg.dcm")
    assert record.registration_type == "AFFINE"
    assert record.matrix_types == ("RIGID", "AFFINE")
    assert np.allclose(record.matrix_4x4(), second @ first)  # type: ignore[arg-type]


def test_dicom_registration_rejects_images() -> None:
    with pytest.raises(RegistrationReadError, match="not a Spatial Registration"):
        read_dicom_registration(_images("CT")[0])


def _itk(path: Path, *blocks: tuple[str, str | None, str | None]) -> Path:
    lines = ["#Insight Transform File V1.0"]
    for number, (name, parameters, fixed) in enumerate(blocks):
        lines += [f"#Transform {number}", f"Transform: {name}"]
        if parameters is not None:  # a CompositeTransform has none
            lines += [f"Parameters: {parameters}", f"FixedParameters: {fixed}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _apply(matrix: np.ndarray[Any, Any] | None, point: tuple[float, float, float]) -> Any:
    assert matrix is not None
    return (matrix @ np.array([*point, 1.0]))[:3]


def test_itk_identity_affine(tmp_path: Path) -> None:
    path = _itk(
        tmp_path / "identity.tfm",
        ("AffineTransform_double_3_3", "1 0 0 0 1 0 0 0 1 0 0 0", "0 0 0"),
    )
    record = read_itk_transform(path)
    assert record.source_format == "ITK" and record.registration_type == "AFFINE"
    assert record.direction == "fixed_to_moving"
    assert np.array_equal(record.matrix_4x4(), np.eye(4))  # type: ignore[arg-type]
    (component,) = record.components
    assert component.parameters == (1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0)
    assert component.fixed_parameters == (0, 0, 0)


def test_itk_translation(tmp_path: Path) -> None:
    path = _itk(tmp_path / "t.tfm", ("TranslationTransform_double_3_3", "5 -6 7.5", ""))
    record = read_itk_transform(path)
    assert record.registration_type == "RIGID"
    assert np.allclose(_apply(record.matrix_4x4(), (1.0, 2.0, 3.0)), (6.0, -4.0, 10.5))
    # the inverse maps moving points back onto the fixed image
    assert np.allclose(_apply(record.moving_to_fixed(), (6.0, -4.0, 10.5)), (1.0, 2.0, 3.0))


@pytest.mark.parametrize(
    ("name", "parameters", "fixed", "kind"),
    [
        # a quarter turn about z, translation (1, 2, 3), centre (10, 20, 30), in 4 classes
        ("Euler3DTransform_double_3_3", f"0 0 {math.pi / 2} 1 2 3", "10 20 30 0", "RIGID"),
        ("Euler3DTransform_double_3_3", f"0 0 {math.pi / 2} 1 2 3", "10 20 30", "RIGID"),
        (
            "VersorRigid3DTransform_double_3_3",
            f"0 0 {math.sin(math.pi / 4)} 1 2 3",
            "10 20 30",
            "RIGID",
        ),
        ("AffineTransform_double_3_3", "0 -1 0 1 0 0 0 0 1 1 2 3", "10 20 30", "AFFINE"),
        (
            "QuaternionRigidTransform_double_3_3",
            f"0 0 {math.sin(math.pi / 4)} {math.cos(math.pi / 4)} 1 2 3",
            "10 20 30",
            "RIGID",
        ),
    ],
)
def test_itk_rotation_about_centre(
    tmp_path: Path, name: str, parameters: str, fixed: str, kind: str
) -> None:
    """T(x) = A(x − c) + t + c: x = c + (1, 0, 0) turns to c + (0, 1, 0), then moves by t."""
    record = read_itk_transform(_itk(tmp_path / "r.tfm", (name, parameters, fixed)))
    assert record.registration_type == kind
    matrix = record.matrix_4x4()
    assert np.allclose(_apply(matrix, (11.0, 20.0, 30.0)), (11.0, 23.0, 33.0))
    assert np.allclose(_apply(matrix, (10.0, 20.0, 30.0)), (11.0, 22.0, 33.0))  # the centre
    assert np.allclose(_apply(matrix, (10.0, 20.0, 31.0)), (11.0, 22.0, 34.0))  # along z


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        # A = Rz Rx Ry (ITK's default): Ry(90°) turns (1, 0, 0) to (0, 0, −1), Rx(90°) to (0, 1, 0)
        ("0", (0.0, 1.0, 0.0)),
        # ComputeZYX: A = Rz Ry Rx: Rx leaves (1, 0, 0), Ry(90°) turns it to (0, 0, −1)
        ("1", (0.0, 0.0, -1.0)),
    ],
)
def test_itk_euler_order(tmp_path: Path, flag: str, expected: tuple[float, float, float]) -> None:
    quarter = math.pi / 2
    path = _itk(
        tmp_path / "euler.tfm",
        ("Euler3DTransform_double_3_3", f"{quarter} {quarter} 0 0 0 0", f"0 0 0 {flag}"),
    )
    record = read_itk_transform(path)
    assert np.allclose(_apply(record.matrix_4x4(), (1.0, 0.0, 0.0)), expected)


def test_itk_composite_applies_last_first(tmp_path: Path) -> None:
    path = _itk(
        tmp_path / "composite.tfm",
        ("CompositeTransform_double_3_3", None, None),
        ("ScaleTransform_double_3_3", "2 2 2", "0 0 0"),
        ("TranslationTransform_double_3_3", "1 0 0", ""),
    )
    record = read_itk_transform(path)
    assert record.registration_type == "RIGID_SCALE"
    assert [c.base_name for c in record.components] == ["ScaleTransform", "TranslationTransform"]
    # T0(T1(x)) = 2 (x + (1, 0, 0))
    assert np.allclose(_apply(record.matrix_4x4(), (1.0, 1.0, 1.0)), (4.0, 2.0, 2.0))


def test_itk_deformable_and_unknown(tmp_path: Path) -> None:
    bspline = _itk(
        tmp_path / "bspline.tfm",
        ("BSplineTransform_double_3_3", " ".join(["0.5"] * 12), "2 2 1 0 0 0 1 1 1 1 0 0 0 1 0"),
    )
    record = read_itk_transform(bspline)
    assert record.registration_type == "DEFORMABLE" and record.matrix is None
    assert record.components[0].parameters == (0.5,) * 12
    assert not record.warnings
    skew = _itk(
        tmp_path / "skew.tfm",
        ("ScaleSkewVersor3DTransform_double_3_3", "0 0 0 0 0 0 1 1 1 0 0 0 0 0 0", "0 0 0"),
    )
    record = read_itk_transform(skew)
    assert record.registration_type == "AFFINE" and record.matrix is None
    assert record.warnings


def test_itk_rejects_other_files(tmp_path: Path) -> None:
    elastix = tmp_path / "TransformParameters.0.txt"
    elastix.write_text('(Transform "EulerTransform")\n(NumberOfParameters 6)\n')
    with pytest.raises(RegistrationReadError, match="elastix"):
        read_itk_transform(elastix)
    with pytest.raises(RegistrationReadError, match="binary"):
        read_itk_transform(tmp_path / "affine.mat")
