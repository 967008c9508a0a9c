"""Reading segmentations into ``SegmentRecord``s (pure: no database).

Three sources, one record type:

* ``read_rtstruct``: an RT Structure Set (pydicom); each ROI's CLOSED_PLANAR (and
  CLOSEDPLANAR_XOR) contours are rasterised onto the grid of the image series the caller
  passes, with the even-odd rule, several contours on one slice XOR'ed (holes);
* ``read_seg``: a DICOM Segmentation (highdicom), one record per segment, its mask on the
  SEG's own volume geometry or, when the source series is given, on that series' grid;
* ``read_nifti_mask``: a NIfTI label map (nibabel) checked against a DICOM series' grid,
  one record per label value above 0.

Masks are boolean arrays indexed ``(slice, row, column)``, i.e. ``(z, y, x)``: slices sorted
by position along the slice normal (ImageOrientationPatient row × column cosines), rows
and columns as in the DICOM pixel data. ``Grid.affine()`` maps those indices to patient
coordinates (DICOM LPS, mm), the same convention as ``highdicom.Volume.affine``.

Rasterisation: a voxel is inside when its centre is; each contour point is projected onto
the slice plane, ``column = (p - IPP)·row_cosine / column_spacing`` and
``row = (p - IPP)·column_cosine / row_spacing`` (PixelSpacing is row spacing, column
spacing), and every polygon edge crossing a row's centre line toggles the columns at and
right of the crossing (a half-open scanline rule, so shared edges are not counted twice).
Pure numpy: no extra dependency.

highdicom and nibabel are imported only when a SEG or NIfTI file is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset

if TYPE_CHECKING:
    from numpy.typing import NDArray

SourceKind = Literal["RTSTRUCT", "SEG", "NIFTI"]
SegmentKind = Literal["manual", "semi_automated", "automated"]
PathLike = str | os.PathLike[str]

# (3006,0036) ROI Generation Algorithm and (0062,0008) Segment Algorithm Type
ALGORITHM_KINDS: dict[str, SegmentKind] = {
    "MANUAL": "manual",
    "SEMIAUTOMATIC": "semi_automated",
    "AUTOMATIC": "automated",
}
RASTERISED_CONTOUR_TYPES = frozenset({"CLOSED_PLANAR", "CLOSEDPLANAR_XOR"})
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
# a FRACTIONAL segment's voxel is in the boolean mask from this fraction on
FRACTIONAL_THRESHOLD = 0.5


class SegmentationReadError(ValueError):
    """The file or the series it refers to cannot give a mask (with the reason)."""


@dataclass(frozen=True)
class Coded:
    """A coded concept: coding scheme designator, code value, code meaning."""

    scheme: str
    value: str
    meaning: str

    @classmethod
    def from_item(cls, item: Any) -> Coded:
        """From a code sequence item (pydicom Dataset) or a highdicom ``CodedConcept``."""
        if hasattr(item, "scheme_designator"):
            return cls(str(item.scheme_designator), str(item.value), str(item.meaning))
        value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
        return cls(
            str(item.get("CodingSchemeDesignator", "")),
            str(value or ""),
            str(item.get("CodeMeaning", "")),
        )


@dataclass(frozen=True)
class Grid:
    """A regular voxel grid in patient space (DICOM LPS, mm), indexed (slice, row, column).

    ``origin`` is the centre of voxel ``[0, 0, 0]`` (the first slice's ImagePositionPatient);
    ``spacing`` is the distance between slices, rows and columns; ``orientation`` is
    ImageOrientationPatient (the direction of increasing column index, then of increasing
    row index); ``slice_direction`` the unit vector of increasing slice index.
    """

    shape: tuple[int, int, int]
    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    orientation: tuple[float, float, float, float, float, float]
    slice_direction: tuple[float, float, float]

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm³."""
        return float(self.spacing[0] * self.spacing[1] * self.spacing[2])

    def affine(self) -> NDArray[np.float64]:
        """4×4 matrix mapping ``(slice, row, column, 1)`` to ``(x, y, z, 1)`` in LPS mm."""
        matrix = np.eye(4)
        matrix[:3, 0] = np.asarray(self.slice_direction) * self.spacing[0]
        matrix[:3, 1] = np.asarray(self.orientation[3:]) * self.spacing[1]
        matrix[:3, 2] = np.asarray(self.orientation[:3]) * self.spacing[2]
        matrix[:3, 3] = self.origin
        return matrix

    @classmethod
    def from_affine(cls, affine: NDArray[Any], shape: Sequence[int]) -> Grid:
        """The grid of a ``(slice, row, column)`` affine (as ``highdicom.Volume.affine``)."""
        matrix = np.asarray(affine, dtype=float)
        spacing = np.linalg.norm(matrix[:3, :3], axis=0)
        if np.any(spacing == 0):
            raise SegmentationReadError("degenerate affine: a zero spacing")
        directions = matrix[:3, :3] / spacing
        slices, rows, columns = (int(n) for n in shape)
        return cls(
            shape=(slices, rows, columns),
            origin=_triple(matrix[:3, 3]),
            spacing=_triple(spacing),
            orientation=_sextuple(np.concatenate([directions[:, 2], directions[:, 1]])),
            slice_direction=_triple(directions[:, 0]),
        )

    def matches(self, other: Grid, tolerance: float = 1e-2) -> bool:
        """Same shape, and affines equal within ``tolerance`` of a voxel at every corner."""
        if self.shape != other.shape:
            return False
        corners = np.array(
            [
                [s, r, c, 1.0]
                for s in (0, self.shape[0])
                for r in (0, self.shape[1])
                for c in (0, self.shape[2])
            ]
        )
        ours = corners @ self.affine().T
        theirs = corners @ other.affine().T
        return bool(np.all(np.abs(ours - theirs)[:, :3] <= tolerance * min(self.spacing)))


@dataclass(frozen=True)
class SeriesGrid:
    """The geometry of a single-frame image series, its slices sorted along the normal."""

    grid: Grid
    series_instance_uid: str
    frame_of_reference_uid: str | None
    sop_instance_uids: tuple[str, ...]  # per slice, in slice order
    files: tuple[Path, ...]  # per slice, in slice order
    slice_positions: tuple[float, ...]  # position along the slice normal, mm
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class SegmentRecord:
    """One segment (RTSTRUCT ROI, SEG segment or NIfTI label) with its boolean mask.

    ``mask`` is read-only, ``(slice, row, column)`` on ``grid``; ``grid_series_uid`` is the
    series that grid belongs to (``None`` when a SEG is read on its own geometry), which
    may differ from ``referenced_series_uid``, the series the object itself names.
    Records compare by identity (``eq=False``): the mask is an array.
    """

    source_kind: SourceKind
    source_path: str
    source_sop_instance_uid: str | None
    segment_number: int
    label: str
    kind: SegmentKind | None
    algorithm_name: str | None
    algorithm_version: str | None
    algorithm_description: str | None  # ROIGenerationDescription (RTSTRUCT)
    interpreted_type: str | None  # RTROIInterpretedType (RTSTRUCT)
    property_category: Coded | None  # SegmentedPropertyCategoryCodeSequence (SEG)
    property_type: Coded | None  # SegmentedPropertyTypeCodeSequence (SEG)
    anatomic_regions: tuple[Coded, ...]
    tracking_id: str | None
    tracking_uid: str | None
    referenced_series_uid: str | None
    referenced_frame_of_reference_uid: str | None
    source_instance_uids: tuple[str, ...]  # images it was drawn on / derived from
    segmentation_type: str | None  # BINARY/FRACTIONAL/LABELMAP, or the contour type
    contour_types: tuple[str, ...]  # RTSTRUCT ContourGeometricType values, sorted
    grid_series_uid: str | None
    grid: Grid
    mask: NDArray[np.bool_] = field(repr=False)
    voxel_count: int
    volume_mm3: float
    warnings: tuple[str, ...] = ()


# --- geometry of a DICOM series ---------------------------------------------------------


def _triple(values: Iterable[Any]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def _sextuple(values: Iterable[Any]) -> tuple[float, float, float, float, float, float]:
    a, b, c, d, e, f = (float(v) for v in values)
    return (a, b, c, d, e, f)


def read_series_grid(series_files: Iterable[PathLike], *, tolerance: float = 1e-3) -> SeriesGrid:
    """The grid of a series of single-frame images (headers only, no pixel data).

    Raises ``SegmentationReadError`` when the files are not one series on one grid
    (several series or frames of reference, multi-frame files, differing orientation,
    size or pixel spacing, two slices at one position).
    """
    headers: list[tuple[Path, Dataset]] = []
    for path in series_files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise SegmentationReadError(f"{path}: multi-frame images are not supported")
        if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            raise SegmentationReadError(f"{path}: no ImagePositionPatient/Orientation")
        headers.append((Path(path), ds))
    if not headers:
        raise SegmentationReadError("no series files given")
    first = headers[0][1]
    series_uids = {str(ds.SeriesInstanceUID) for _, ds in headers}
    if len(series_uids) > 1:
        raise SegmentationReadError(f"series files span {len(series_uids)} series")
    for_uids = {str(ds.get("FrameOfReferenceUID", "")) for _, ds in headers}
    if len(for_uids) > 1:
        raise SegmentationReadError("series files span several frames of reference")
    orientation = np.asarray(first.ImageOrientationPatient, dtype=float)
    rows, columns = int(first.Rows), int(first.Columns)
    pixel_spacing = np.asarray(first.PixelSpacing, dtype=float)
    for other_path, other in headers[1:]:
        if not np.allclose(other.ImageOrientationPatient, orientation, atol=tolerance):
            raise SegmentationReadError(f"{other_path}: ImageOrientationPatient differs")
        if (int(other.Rows), int(other.Columns)) != (rows, columns):
            raise SegmentationReadError(f"{other_path}: Rows/Columns differ")
        if not np.allclose(other.PixelSpacing, pixel_spacing, rtol=tolerance):
            raise SegmentationReadError(f"{other_path}: PixelSpacing differs")
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    normal /= np.linalg.norm(normal)
    positions = np.array(
        [np.dot(np.asarray(ds.ImagePositionPatient, dtype=float), normal) for _, ds in headers]
    )
    order = np.argsort(positions, kind="stable")
    sorted_positions = positions[order]
    warnings: list[str] = []
    if len(headers) > 1:
        steps = np.diff(sorted_positions)
        if np.any(steps < tolerance):
            raise SegmentationReadError("two slices of the series share one position")
        slice_spacing = float(np.median(steps))
        if np.max(np.abs(steps - slice_spacing)) > max(tolerance, 0.01 * slice_spacing):
            warnings.append(
                f"irregular slice spacing ({steps.min():.4g} to {steps.max():.4g} mm): "
                f"the median {slice_spacing:.4g} mm is used for volumes"
            )
    else:
        slice_spacing = float(
            first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        )
        warnings.append(f"single slice: slice spacing taken as {slice_spacing:g} mm")
    first_sorted = headers[int(order[0])][1]
    grid = Grid(
        shape=(len(headers), rows, columns),
        origin=_triple(first_sorted.ImagePositionPatient),
        spacing=(slice_spacing, float(pixel_spacing[0]), float(pixel_spacing[1])),
        orientation=_sextuple(orientation),
        slice_direction=_triple(normal),
    )
    return SeriesGrid(
        grid=grid,
        series_instance_uid=next(iter(series_uids)),
        frame_of_reference_uid=next(iter(for_uids)) or None,
        sop_instance_uids=tuple(str(headers[i][1].SOPInstanceUID) for i in order),
        files=tuple(headers[i][0] for i in order),
        slice_positions=tuple(float(p) for p in sorted_positions),
        warnings=tuple(warnings),
    )


# --- rasterisation ----------------------------------------------------------------------


def _scanline_crossings(
    points: NDArray[np.float64], rows: int, columns: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(row, toggle column) for each edge crossing of a polygon given as (column, row)."""
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    moving = y0 != y1
    x0, y0, x1, y1 = x0[moving], y0[moving], x1[moving], y1[moving]
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    # rows r with low <= r < high (half-open: a vertex shared by two edges counts once)
    start = np.clip(np.ceil(low), 0, rows).astype(np.intp)
    stop = np.clip(np.ceil(high), 0, rows).astype(np.intp)
    counts = np.maximum(stop - start, 0)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    edge = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    row = start[edge] + (np.arange(total) - first[edge])
    x = x0[edge] + (row - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    toggle = np.clip(np.ceil(np.round(x, 6)), 0, columns).astype(np.intp)
    return row.astype(np.intp), toggle


def rasterise_polygons(
    polygons: Sequence[NDArray[np.float64]], rows: int, columns: int
) -> NDArray[np.bool_]:
    """Even-odd fill of polygons given in (column, row) pixel coordinates, XOR'ed together.

    A pixel is inside when its centre is (a centre on a left edge is in, on a right edge
    out).
    """
    toggles = np.zeros((rows, columns + 1), dtype=np.int32)
    for polygon in polygons:
        if len(polygon) < 3:
            continue
        row, toggle = _scanline_crossings(np.round(polygon, 6), rows, columns)
        np.add.at(toggles, (row, toggle), 1)
    return (np.cumsum(toggles[:, :columns], axis=1) & 1).astype(bool)


def _freeze(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    mask = np.ascontiguousarray(mask, dtype=bool)
    mask.flags.writeable = False
    return mask


# --- RTSTRUCT ---------------------------------------------------------------------------


def _kind(value: Any, warnings: list[str], what: str) -> SegmentKind | None:
    text = str(value or "").strip().upper()
    if not text:
        return None
    kind = ALGORITHM_KINDS.get(text)
    if kind is None:
        warnings.append(f"{what} {text!r} is not MANUAL/SEMIAUTOMATIC/AUTOMATIC")
    return kind


def _rtstruct_series(
    rtstruct: Dataset, frame_of_reference_uid: str | None, contour_sops: set[str]
) -> str | None:
    """The series an ROI was drawn on, from ReferencedFrameOfReferenceSequence."""
    candidates: list[tuple[str, set[str]]] = []
    for ref_for in rtstruct.get("ReferencedFrameOfReferenceSequence", []):
        if frame_of_reference_uid and ref_for.get("FrameOfReferenceUID") not in (
            frame_of_reference_uid,
            None,
        ):
            continue
        for study in ref_for.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                sops = {
                    str(item.ReferencedSOPInstanceUID)
                    for item in series.get("ContourImageSequence", [])
                    if "ReferencedSOPInstanceUID" in item
                }
                candidates.append((str(series.SeriesInstanceUID), sops))
    if not candidates:
        return None
    for uid, sops in candidates:
        if contour_sops & sops:
            return uid
    return candidates[0][0]


def read_rtstruct(
    path: PathLike,
    series_files: Iterable[PathLike],
    *,
    series: SeriesGrid | None = None,
) -> list[SegmentRecord]:
    """One ``SegmentRecord`` per ROI of an RT Structure Set that has contours.

    Each ROI's CLOSED_PLANAR / CLOSEDPLANAR_XOR contours are rasterised onto the grid of
    ``series_files`` (the referenced series, found by the caller): a contour goes to the
    slice its ContourImageSequence names when that slice is in the series, else to the
    nearest slice along the normal within half the slice spacing (else it is skipped, with
    a warning). ``series`` may pass an already read ``read_series_grid(series_files)``.

    Raises ``SegmentationReadError`` when the file is no RTSTRUCT, or an ROI's frame of
    reference is not the series'.
    """
    ds = pydicom.dcmread(path)
    if str(ds.get("SOPClassUID", "")) != RTSTRUCT_SOP_CLASS and ds.get("Modality") != "RTSTRUCT":
        raise SegmentationReadError(f"{path}: not an RT Structure Set")
    geometry = series if series is not None else read_series_grid(series_files)
    grid = geometry.grid
    _, rows, columns = grid.shape
    origin_by_slice = _slice_origins(geometry)
    slice_by_sop = {uid: i for i, uid in enumerate(geometry.sop_instance_uids)}
    positions = np.asarray(geometry.slice_positions)
    normal = np.asarray(grid.slice_direction)
    row_cosine = np.asarray(grid.orientation[:3])
    column_cosine = np.asarray(grid.orientation[3:])
    half_spacing = grid.spacing[0] / 2 + 1e-3

    observations: dict[int, Dataset] = {
        int(obs.ReferencedROINumber): obs for obs in ds.get("RTROIObservationsSequence", [])
    }
    contours_by_roi: dict[int, Dataset] = {
        int(item.ReferencedROINumber): item for item in ds.get("ROIContourSequence", [])
    }
    records: list[SegmentRecord] = []
    for roi in ds.get("StructureSetROISequence", []):
        number = int(roi.ROINumber)
        roi_contours = contours_by_roi.get(number)
        contour_items = list(roi_contours.get("ContourSequence", [])) if roi_contours else []
        if not contour_items:
            continue
        warnings: list[str] = list(geometry.warnings)
        roi_for = str(roi.get("ReferencedFrameOfReferenceUID", "")) or None
        if (
            roi_for
            and geometry.frame_of_reference_uid
            and roi_for != (geometry.frame_of_reference_uid)
        ):
            raise SegmentationReadError(
                f"{path}: ROI {number} is in frame of reference {roi_for}, the series "
                f"{geometry.series_instance_uid} in {geometry.frame_of_reference_uid}"
            )
        contour_sops = {
            str(image.ReferencedSOPInstanceUID)
            for item in contour_items
            for image in item.get("ContourImageSequence", [])
            if "ReferencedSOPInstanceUID" in image
        }
        referenced_series = _rtstruct_series(ds, roi_for, contour_sops)
        if referenced_series and referenced_series != geometry.series_instance_uid:
            warnings.append(
                f"the ROI references series {referenced_series}; rasterised on series "
                f"{geometry.series_instance_uid} (same frame of reference) by position"
            )
        contour_types = sorted({str(item.ContourGeometricType) for item in contour_items})
        polygons: dict[int, list[NDArray[np.float64]]] = {}
        skipped = off_plane = 0
        for item in contour_items:
            if str(item.ContourGeometricType) not in RASTERISED_CONTOUR_TYPES:
                continue
            points = np.asarray(item.ContourData, dtype=float).reshape(-1, 3)
            plane = float(np.mean(points @ normal))
            index = None
            for image in item.get("ContourImageSequence", []):
                index = slice_by_sop.get(str(image.get("ReferencedSOPInstanceUID", "")))
                if index is not None:
                    break
            if index is None:
                nearest = int(np.argmin(np.abs(positions - plane)))
                if abs(positions[nearest] - plane) > half_spacing:
                    skipped += 1
                    continue
                index = nearest
            elif abs(positions[index] - plane) > half_spacing:
                off_plane += 1
            offset = points - origin_by_slice[index]
            pixel = np.stack(
                [offset @ row_cosine / grid.spacing[2], offset @ column_cosine / grid.spacing[1]],
                axis=1,
            )
            polygons.setdefault(index, []).append(pixel)
        if skipped:
            warnings.append(f"{skipped} contour(s) lie on no slice of the series: skipped")
        if off_plane:
            warnings.append(
                f"{off_plane} contour(s) lie more than half a slice from the image their "
                "ContourImageSequence names: placed on that image all the same"
            )
        if not polygons:
            warnings.append("no closed planar contour: the mask is empty")
        mask = np.zeros(grid.shape, dtype=bool)
        for index, slice_polygons in polygons.items():
            mask[index] = rasterise_polygons(slice_polygons, rows, columns)
        closed = [t for t in contour_types if t in RASTERISED_CONTOUR_TYPES]
        observation = observations.get(number)
        interpreted = str(observation.get("RTROIInterpretedType", "") or "") if observation else ""
        voxels = int(mask.sum())
        records.append(
            SegmentRecord(
                source_kind="RTSTRUCT",
                source_path=str(path),
                source_sop_instance_uid=str(ds.SOPInstanceUID),
                segment_number=number,
                label=str(roi.get("ROIName", "") or ""),
                kind=_kind(roi.get("ROIGenerationAlgorithm"), warnings, "ROIGenerationAlgorithm"),
                algorithm_name=None,
                algorithm_version=None,
                algorithm_description=str(roi.get("ROIGenerationDescription", "") or "") or None,
                interpreted_type=interpreted or None,
                property_category=None,
                property_type=None,
                anatomic_regions=(),
                tracking_id=None,
                tracking_uid=None,
                referenced_series_uid=referenced_series,
                referenced_frame_of_reference_uid=roi_for,
                source_instance_uids=tuple(sorted(contour_sops)),
                segmentation_type=(closed or contour_types)[0],
                contour_types=tuple(contour_types),
                grid_series_uid=geometry.series_instance_uid,
                grid=grid,
                mask=_freeze(mask),
                voxel_count=voxels,
                volume_mm3=voxels * grid.voxel_volume_mm3,
                warnings=tuple(warnings),
            )
        )
    return records


def _slice_origins(geometry: SeriesGrid) -> NDArray[np.float64]:
    """ImagePositionPatient of each slice, rebuilt from the grid and the slice positions."""
    grid = geometry.grid
    origin = np.asarray(grid.origin)
    normal = np.asarray(grid.slice_direction)
    offsets = np.asarray(geometry.slice_positions) - float(np.dot(origin, normal))
    return np.asarray(origin[None, :] + offsets[:, None] * normal[None, :], dtype=float)


# --- DICOM SEG --------------------------------------------------------------------------


def _frame_sources(item: Dataset) -> list[str]:
    uids: list[str] = []
    for derivation in item.get("DerivationImageSequence", []):
        for source in derivation.get("SourceImageSequence", []):
            if "ReferencedSOPInstanceUID" in source:
                uids.append(str(source.ReferencedSOPInstanceUID))
    return uids


def _seg_sources(seg: Dataset) -> tuple[dict[int, set[str]], set[str], str | None]:
    """Source instances per segment number (key 0: every frame), all referenced instances
    and the referenced series (the one holding the source instances)."""
    shared = seg.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    shared_sources = _frame_sources(shared)
    by_segment: dict[int, set[str]] = {0: set(shared_sources)}
    for frame in seg.get("PerFrameFunctionalGroupsSequence", []):
        sources = _frame_sources(frame) or shared_sources
        identification = frame.get("SegmentIdentificationSequence") or shared.get(
            "SegmentIdentificationSequence"
        )
        number = int(identification[0].ReferencedSegmentNumber) if identification else 0
        by_segment.setdefault(number, set()).update(sources)
        by_segment[0].update(sources)
    series_sops: list[tuple[str, set[str]]] = []
    for series in seg.get("ReferencedSeriesSequence", []):
        sops = {
            str(item.ReferencedSOPInstanceUID)
            for item in series.get("ReferencedInstanceSequence", [])
        }
        series_sops.append((str(series.SeriesInstanceUID), sops))
    for study in seg.get("StudiesContainingOtherReferencedInstancesSequence", []):
        for series in study.get("ReferencedSeriesSequence", []):
            sops = {
                str(item.ReferencedSOPInstanceUID)
                for item in series.get("ReferencedInstanceSequence", [])
            }
            series_sops.append((str(series.SeriesInstanceUID), sops))
    referenced = None
    for uid, sops in series_sops:
        if sops & by_segment[0]:
            referenced = uid
            break
    if referenced is None and series_sops:
        referenced = series_sops[0][0]
    everything = set().union(*(sops for _, sops in series_sops)) | by_segment[0]
    return by_segment, everything, referenced


def read_seg(
    path: PathLike,
    series_files: Iterable[PathLike] | None = None,
    *,
    series: SeriesGrid | None = None,
) -> list[SegmentRecord]:
    """One ``SegmentRecord`` per segment of a DICOM Segmentation (highdicom).

    Without ``series_files`` the masks lie on the SEG's own volume geometry
    (``Segmentation.get_volume``: it spans the frames the SEG holds, so it may be a part
    of the source series); with them (or ``series``), on that series' grid, frame by
    source instance (``get_pixels_by_source_instance``; slices the SEG does not cover are
    empty). FRACTIONAL segments are thresholded at ``FRACTIONAL_THRESHOLD``.
    """
    import highdicom as hd

    seg = hd.seg.segread(path)
    seg_type = seg.segmentation_type.value
    numbers = list(seg.segment_numbers)
    sources_by_segment, all_sources, referenced_series = _seg_sources(seg)
    geometry = series
    if geometry is None and series_files is not None:
        geometry = read_series_grid(series_files)
    masks: dict[int, NDArray[np.bool_]] = {}
    warnings: list[str] = []
    if not numbers:
        return []
    if geometry is not None:
        warnings.extend(geometry.warnings)
        if (int(seg.Rows), int(seg.Columns)) != geometry.grid.shape[1:]:
            raise SegmentationReadError(
                f"{path}: SEG frames are {seg.Rows}×{seg.Columns}, the series "
                f"{geometry.grid.shape[1]}×{geometry.grid.shape[2]}"
            )
        if not all_sources & set(geometry.sop_instance_uids):
            raise SegmentationReadError(
                f"{path}: none of the SEG's source instances is in series "
                f"{geometry.series_instance_uid}"
            )
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=list(geometry.sop_instance_uids),
            segment_numbers=numbers,
            assert_missing_frames_are_empty=True,
        )
        grid = geometry.grid
        grid_series: str | None = geometry.series_instance_uid
        for i, number in enumerate(numbers):
            masks[number] = _to_bool(pixels[..., i], seg_type)
    else:
        volume = seg.get_volume(segment_numbers=numbers)
        array = np.asarray(volume.array)
        if array.ndim == 3:
            array = array[..., None]
        grid = Grid.from_affine(volume.affine, array.shape[:3])
        grid_series = None
        for i, number in enumerate(numbers):
            masks[number] = _to_bool(array[..., i], seg_type)
    records: list[SegmentRecord] = []
    for number in numbers:
        description = seg.get_segment_description(number)
        segment_warnings = list(warnings)
        algorithm_name = str(description.get("SegmentAlgorithmName", "") or "") or None
        algorithm_version = None
        identification = description.get("SegmentationAlgorithmIdentificationSequence")
        if identification:
            algorithm_name = algorithm_name or str(identification[0].get("AlgorithmName", ""))
            algorithm_version = str(identification[0].get("AlgorithmVersion", "") or "") or None
        mask = masks[number]
        voxels = int(mask.sum())
        sources = sources_by_segment.get(number) or sources_by_segment[0]
        records.append(
            SegmentRecord(
                source_kind="SEG",
                source_path=str(path),
                source_sop_instance_uid=str(seg.SOPInstanceUID),
                segment_number=int(number),
                label=str(description.get("SegmentLabel", "") or ""),
                kind=_kind(
                    description.get("SegmentAlgorithmType"),
                    segment_warnings,
                    "SegmentAlgorithmType",
                ),
                algorithm_name=algorithm_name or None,
                algorithm_version=algorithm_version,
                algorithm_description=str(description.get("SegmentDescription", "") or "") or None,
                interpreted_type=None,
                property_category=_code(description, "SegmentedPropertyCategoryCodeSequence"),
                property_type=_code(description, "SegmentedPropertyTypeCodeSequence"),
                anatomic_regions=tuple(
                    Coded.from_item(item) for item in description.get("AnatomicRegionSequence", [])
                ),
                tracking_id=description.tracking_id,
                tracking_uid=description.tracking_uid,
                referenced_series_uid=referenced_series,
                referenced_frame_of_reference_uid=str(seg.get("FrameOfReferenceUID", "")) or None,
                source_instance_uids=tuple(sorted(sources)),
                segmentation_type=seg_type,
                contour_types=(),
                grid_series_uid=grid_series,
                grid=grid,
                mask=_freeze(mask),
                voxel_count=voxels,
                volume_mm3=voxels * grid.voxel_volume_mm3,
                warnings=tuple(segment_warnings),
            )
        )
    return records


def _to_bool(array: NDArray[Any], segmentation_type: str) -> NDArray[np.bool_]:
    if segmentation_type == "FRACTIONAL" and np.issubdtype(array.dtype, np.floating):
        return np.asarray(array >= FRACTIONAL_THRESHOLD)
    return np.asarray(array > 0)


def _code(item: Dataset, keyword: str) -> Coded | None:
    sequence = item.get(keyword)
    return Coded.from_item(sequence[0]) if sequence else None


# --- NIfTI label maps -------------------------------------------------------------------

# NIfTI world space is RAS, DICOM patient space LPS: x and y change sign
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def nifti_to_series_index(
    nifti_affine: NDArray[Any], grid: Grid, *, tolerance: float = 1e-2
) -> tuple[tuple[int, int, int], tuple[bool, bool, bool], tuple[int, int, int]]:
    """How a NIfTI voxel index (i, j, k) lands on a series grid (slice, row, column).

    Returns ``(axes, flips, offsets)``: series axis ``a`` is NIfTI axis ``axes[a]``, read
    reversed when ``flips[a]``, starting at ``offsets[a]``. Raises
    ``SegmentationReadError`` unless the index map is a signed axis permutation with an
    integer shift, within ``tolerance`` (in voxels).
    """
    nifti_to_lps = _RAS_TO_LPS @ np.asarray(nifti_affine, dtype=float)
    index_map = np.linalg.inv(grid.affine()) @ nifti_to_lps  # (i,j,k,1) -> (s,r,c,1)
    linear, shift = index_map[:3, :3], index_map[:3, 3]
    rounded = np.round(linear)
    if not np.allclose(linear, rounded, atol=tolerance) or not np.allclose(
        shift, np.round(shift), atol=tolerance
    ):
        raise SegmentationReadError(
            "the NIfTI grid does not match the series grid (spacing, orientation or origin "
            "differ by more than the tolerance): index map\n" + np.array2string(index_map)
        )
    if sorted(np.abs(rounded).sum(axis=0).tolist()) != [1, 1, 1] or sorted(
        np.abs(rounded).sum(axis=1).tolist()
    ) != [1, 1, 1]:
        raise SegmentationReadError("the NIfTI axes are not a permutation of the series axes")
    axes = tuple(int(np.argmax(np.abs(rounded[a]))) for a in range(3))
    flips = tuple(bool(rounded[a, axes[a]] < 0) for a in range(3))
    offsets = tuple(int(np.rint(shift[a])) for a in range(3))
    return (
        (axes[0], axes[1], axes[2]),
        (flips[0], flips[1], flips[2]),
        (
            offsets[0],
            offsets[1],
            offsets[2],
        ),
    )


def read_nifti_mask(
    path: PathLike,
    series_files: Iterable[PathLike],
    *,
    series: SeriesGrid | None = None,
    labels: Mapping[int, str] | None = None,
    tolerance: float = 1e-2,
) -> list[SegmentRecord]:
    """One ``SegmentRecord`` per label value > 0 of a NIfTI label map on a DICOM series.

    The NIfTI affine (RAS) is converted to LPS and must map the NIfTI voxels exactly onto
    the series grid (any axis order or flips, as dcm2niix, SimpleITK or a reorientation to
    RAS write them; shape and positions within ``tolerance`` of a voxel), else
    ``SegmentationReadError``. ``labels`` names the label values (default ``"label N"``).
    """
    import nibabel as nib

    geometry = series if series is not None else read_series_grid(series_files)
    grid = geometry.grid
    image: Any = nib.load(str(path))  # nibabel's return type is not the image type
    data = np.asanyarray(image.dataobj)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise SegmentationReadError(f"{path}: a 3-D label map is expected, shape {data.shape}")
    if np.issubdtype(data.dtype, np.floating):
        if not np.allclose(data, np.round(data)):
            raise SegmentationReadError(f"{path}: non-integer values: not a label map")
        data = np.round(data)
    axes, flips, offsets = nifti_to_series_index(image.affine, grid, tolerance=tolerance)
    volume = np.transpose(data, axes)
    for axis, flip in enumerate(flips):
        if flip:
            volume = np.flip(volume, axis=axis)
    # after a flip, the first series index along that axis is offset - (n - 1)
    starts = [offsets[a] - (volume.shape[a] - 1) if flips[a] else offsets[a] for a in range(3)]
    if tuple(starts) != (0, 0, 0) or volume.shape != grid.shape:
        raise SegmentationReadError(
            f"{path}: the NIfTI covers series indices from {tuple(starts)} with shape "
            f"{volume.shape}, the series grid is {grid.shape} from (0, 0, 0)"
        )
    values = [int(v) for v in np.unique(volume) if v > 0]
    records: list[SegmentRecord] = []
    for value in values:
        mask = volume == value
        voxels = int(mask.sum())
        records.append(
            SegmentRecord(
                source_kind="NIFTI",
                source_path=str(path),
                source_sop_instance_uid=None,
                segment_number=value,
                label=(labels or {}).get(value, f"label {value}"),
                kind=None,
                algorithm_name=None,
                algorithm_version=None,
                algorithm_description=None,
                interpreted_type=None,
                property_category=None,
                property_type=None,
                anatomic_regions=(),
                tracking_id=None,
                tracking_uid=None,
                referenced_series_uid=geometry.series_instance_uid,
                referenced_frame_of_reference_uid=geometry.frame_of_reference_uid,
                source_instance_uids=(),
                segmentation_type="LABELMAP",
                contour_types=(),
                grid_series_uid=geometry.series_instance_uid,
                grid=grid,
                mask=_freeze(mask),
                voxel_count=voxels,
                volume_mm3=voxels * grid.voxel_volume_mm3,
                warnings=geometry.warnings,
            )
        )
    return records


def series_affine_ras(grid: Grid) -> NDArray[np.float64]:
    """The NIfTI (RAS) affine of a grid written as ``mask.transpose(2, 1, 0)``, i.e. NIfTI
    axes (column, row, slice), the layout dcm2niix and SimpleITK use."""
    to_index_order = np.zeros((4, 4))
    to_index_order[0, 2] = to_index_order[1, 1] = to_index_order[2, 0] = 1.0
    to_index_order[3, 3] = 1.0
    return np.asarray(_RAS_TO_LPS @ grid.affine() @ to_index_order, dtype=float)


__all__ = [
    "FRACTIONAL_THRESHOLD",
    "Coded",
    "Grid",
    "SegmentRecord",
    "SegmentationReadError",
    "SeriesGrid",
    "nifti_to_series_index",
    "rasterise_polygons",
    "read_nifti_mask",
    "read_rtstruct",
    "read_seg",
    "read_series_grid",
    "series_affine_ras",
]
