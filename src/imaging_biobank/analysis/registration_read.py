r"""Reading spatial registrations into ``RegistrationRecord``s (pure: no database).

Two sources:

* ``read_dicom_registration``: a DICOM Spatial Registration (modality REG, SOP class
  1.2.840.10008.5.1.4.1.1.66.1) with pydicom. Each Registration Sequence (0070,0308) item
  registers a *source* frame of reference (the item's FrameOfReferenceUID) to the
  *registered* one (the instance's FrameOfReferenceUID): its Matrix Registration Sequence
  → Matrix Sequence holds 4×4 Frame of Reference Transformation Matrices (3006,00C6),
  row-major, of type (0070,030C) RIGID, RIGID_SCALE or AFFINE, applied in sequence order,
  so ``p_registered = M_n ⋯ M_1 · p_source``. The series come from the item's Referenced
  Image Sequence, resolved through the Common Instance Reference module (Referenced Series
  Sequence, Studies Containing Other Referenced Instances Sequence). Deformable Spatial
  Registrations (…66.3) give DEFORMABLE records without a matrix.
* ``read_itk_transform``: an ITK / SimpleITK text transform (``.tfm`` / ``.txt``,
  "#Insight Transform File V1.0").

ITK convention. Points are in LPS physical space (mm), like DICOM. A registration's
transform maps points of the *fixed* image to the *moving* image (it is what resampling
the moving image onto the fixed grid evaluates), the opposite direction of a DICOM REG
matrix, which maps the moving (source) frame onto the fixed (registered) one; hence
``RegistrationRecord.moving_to_fixed()``. Matrix-offset transforms are written as a 3×3
matrix ``A``, a translation ``t`` and a centre ``c`` (the fixed parameters)::

    T(x) = A (x − c) + t + c        4×4 = [[A, t + c − A c], [0 0 0 1]]

with, per class (parameters in file order):

* AffineTransform, MatrixOffsetTransformBase, Rigid3DTransform: ``A`` (9, row-major),
  ``t`` (3); fixed ``c``;
* CenteredAffineTransform: ``A`` (9), ``c`` (3), ``t`` (3);
* TranslationTransform: ``t`` (3), ``A = I``; IdentityTransform: none;
* Euler3DTransform: angles ``ax, ay, az`` (radians), ``t``; fixed ``c`` and, since ITK 4.x,
  a 4th flag ComputeZYX: ``A = Rz Rx Ry`` (default) or ``Rz Ry Rx`` (flag 1), with
  ``Rx = [[1,0,0],[0,cos,−sin],[0,sin,cos]]``, ``Ry = [[cos,0,sin],[0,1,0],[−sin,0,cos]]``,
  ``Rz = [[cos,−sin,0],[sin,cos,0],[0,0,1]]``;
* VersorTransform (``v``), VersorRigid3DTransform (``v, t``), Similarity3DTransform
  (``v, t, s``), ScaleVersor3DTransform (``v, t, s_xyz``): ``v`` = (x, y, z) the vector part
  of a unit quaternion, ``w = √(1 − |v|²)``; ``R`` is the quaternion's rotation matrix;
  ``A = R`` (versor, rigid), ``s R`` (similarity), ``R + diag(s − 1)`` (ScaleVersor3D, as
  ITK computes it);
* QuaternionRigidTransform: quaternion (x, y, z, w) normalised, ``t``;
* ScaleTransform: ``s_xyz``; ``A = diag(s)``, ``t = 0``;
* CompositeTransform: its components in queue order T0, T1, …; ITK applies the last one
  first, ``T(x) = T0(T1(…(x)))``, so the 4×4 is ``M0 · M1 ⋯``.

BSpline, displacement-field and kernel (spline) transforms are DEFORMABLE: no matrix, the
raw parameters are kept. Classes not listed (e.g. ScaleSkewVersor3DTransform, 2-D
transforms) keep their raw parameters, no matrix, with a warning.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset

if TYPE_CHECKING:
    from numpy.typing import NDArray

PathLike = str | os.PathLike[str]
SourceFormat = Literal["DICOM_REG", "ITK"]
Direction = Literal["source_to_registered", "fixed_to_moving"]

SPATIAL_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.1"
DEFORMABLE_SPATIAL_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.3"
ITK_HEADER = "#Insight Transform File"
# most general first
_GENERALITY = ("DEFORMABLE", "AFFINE", "RIGID_SCALE", "RIGID")


class RegistrationReadError(ValueError):
    """The file is not a registration this module reads (with the reason)."""


@dataclass(frozen=True)
class ItkTransform:
    """One transform of an ITK transform file, as written."""

    class_name: str  # e.g. "AffineTransform_double_3_3"
    parameters: tuple[float, ...]
    fixed_parameters: tuple[float, ...]

    @property
    def base_name(self) -> str:
        """The class without precision and dimensions, e.g. ``"AffineTransform"``."""
        return self.class_name.split("_", 1)[0]

    @property
    def dimension(self) -> int | None:
        """The input space dimension (3 for ``…_double_3_3``), when the name tells it."""
        match = re.search(r"_(\d+)_(\d+)$", self.class_name)
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class RegistrationRecord:
    """One registration: a 4×4 matrix when it is linear, else its raw parameters.

    ``matrix`` is 16 values, row-major, in the file's own direction (``direction``):
    DICOM REG maps the source (moving) frame of reference onto the registered (fixed) one;
    ITK maps fixed-image points onto moving-image points. ``moving_to_fixed()`` gives the
    matrix in one direction for both.
    """

    source_format: SourceFormat
    source_path: str
    sop_instance_uid: str | None
    registration_type: str | None  # RIGID / RIGID_SCALE / AFFINE / DEFORMABLE
    matrix: tuple[float, ...] | None
    direction: Direction
    source_frame_of_reference_uid: str | None
    target_frame_of_reference_uid: str | None
    source_series_uids: tuple[str, ...]  # the moving series (DICOM REG)
    target_series_uids: tuple[str, ...]  # the fixed series (DICOM REG), when referenced
    referenced_series_uids: tuple[str, ...]  # every series the REG references
    matrix_types: tuple[str, ...]  # (0070,030C) per DICOM matrix, in order
    components: tuple[ItkTransform, ...]  # ITK transforms (a composite's, in queue order)
    description: str | None = None  # ContentDescription / ContentLabel (DICOM)
    warnings: tuple[str, ...] = ()

    def matrix_4x4(self) -> NDArray[np.float64] | None:
        """``matrix`` as a 4×4 array (None for deformable or unread transforms)."""
        if self.matrix is None:
            return None
        return np.asarray(self.matrix, dtype=float).reshape(4, 4)

    def moving_to_fixed(self) -> NDArray[np.float64] | None:
        """The 4×4 mapping moving-image points onto fixed-image points (LPS mm)."""
        matrix = self.matrix_4x4()
        if matrix is None or self.direction == "source_to_registered":
            return matrix
        return np.asarray(np.linalg.inv(matrix), dtype=float)


def _flatten(matrix: NDArray[np.float64]) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(matrix, dtype=float).reshape(16))


def _most_general(types: Sequence[str]) -> str | None:
    for kind in _GENERALITY:
        if kind in types:
            return kind
    return types[0] if types else None


# --- DICOM REG --------------------------------------------------------------------------


def _series_by_instance(ds: Dataset) -> tuple[dict[str, str], list[str]]:
    """SOP instance UID → series UID from the Common Instance Reference module."""
    series_of: dict[str, str] = {}
    order: list[str] = []

    def add(series_items: Sequence[Dataset]) -> None:
        for series in series_items:
            uid = str(series.get("SeriesInstanceUID", ""))
            if not uid:
                continue
            if uid not in order:
                order.append(uid)
            for instance in series.get("ReferencedInstanceSequence", []):
                series_of[str(instance.ReferencedSOPInstanceUID)] = uid

    add(ds.get("ReferencedSeriesSequence", []))
    for study in ds.get("StudiesContainingOtherReferencedInstancesSequence", []):
        add(study.get("ReferencedSeriesSequence", []))
    return series_of, order


def _item_series(item: Dataset, series_of: dict[str, str]) -> tuple[str, ...]:
    uids: list[str] = []
    for image in item.get("ReferencedImageSequence", []):
        series = series_of.get(str(image.get("ReferencedSOPInstanceUID", "")))
        if series and series not in uids:
            uids.append(series)
    return tuple(uids)


def read_dicom_registration(path: PathLike) -> list[RegistrationRecord]:
    """One ``RegistrationRecord`` per registration item of a DICOM (Deformable) Spatial
    Registration, identity items of the registered frame itself left out (their series
    become the records' ``target_series_uids``)."""
    ds = pydicom.dcmread(path)
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in (SPATIAL_REGISTRATION, DEFORMABLE_SPATIAL_REGISTRATION):
        raise RegistrationReadError(f"{path}: not a Spatial Registration (SOP class {sop_class})")
    target_for = str(ds.get("FrameOfReferenceUID", "")) or None
    series_of, all_series = _series_by_instance(ds)
    description = str(ds.get("ContentDescription", "") or ds.get("ContentLabel", "") or "") or None
    base = RegistrationRecord(
        source_format="DICOM_REG",
        source_path=str(path),
        sop_instance_uid=str(ds.SOPInstanceUID),
        registration_type=None,
        matrix=None,
        direction="source_to_registered",
        source_frame_of_reference_uid=None,
        target_frame_of_reference_uid=target_for,
        source_series_uids=(),
        target_series_uids=(),
        referenced_series_uids=tuple(all_series),
        matrix_types=(),
        components=(),
        description=description,
    )
    if sop_class == DEFORMABLE_SPATIAL_REGISTRATION:
        return _deformable_records(ds, series_of, base)

    items: list[tuple[str | None, tuple[str, ...], NDArray[np.float64], list[str], list[str]]]
    items = []
    for item in ds.get("RegistrationSequence", []):
        source_for = str(item.get("FrameOfReferenceUID", "")) or None
        matrix = np.eye(4)
        types: list[str] = []
        warnings: list[str] = []
        for registration in item.get("MatrixRegistrationSequence", []):
            for entry in registration.get("MatrixSequence", []):
                values = [float(v) for v in entry.get("FrameOfReferenceTransformationMatrix", [])]
                if len(values) != 16:
                    raise RegistrationReadError(
                        f"{path}: a Frame of Reference Transformation Matrix has "
                        f"{len(values)} values, not 16"
                    )
                step = np.asarray(values).reshape(4, 4)
                if not np.allclose(step[3], [0, 0, 0, 1]):
                    warnings.append("a matrix's last row is not (0, 0, 0, 1)")
                matrix = step @ matrix
                types.append(str(entry.get("FrameOfReferenceTransformationMatrixType", "")))
        items.append((source_for, _item_series(item, series_of), matrix, types, warnings))

    target_series: list[str] = []
    for source_for, series, matrix, _, _ in items:
        if source_for == target_for and np.allclose(matrix, np.eye(4)):
            target_series.extend(s for s in series if s not in target_series)
    records = []
    for source_for, series, matrix, types, warnings in items:
        if source_for == target_for and np.allclose(matrix, np.eye(4)) and len(items) > 1:
            continue
        records.append(
            replace(
                base,
                registration_type=_most_general([t for t in types if t]) or "RIGID",
                matrix=_flatten(matrix),
                source_frame_of_reference_uid=source_for,
                source_series_uids=series,
                target_series_uids=tuple(target_series),
                matrix_types=tuple(types),
                warnings=tuple(warnings),
            )
        )
    return records


def _deformable_records(
    ds: Dataset, series_of: dict[str, str], base: RegistrationRecord
) -> list[RegistrationRecord]:
    records = []
    for item in ds.get("DeformableRegistrationSequence", []):
        records.append(
            replace(
                base,
                registration_type="DEFORMABLE",
                source_frame_of_reference_uid=str(item.get("SourceFrameOfReferenceUID", ""))
                or None,
                source_series_uids=_item_series(item, series_of),
                warnings=(
                    "deformable registration: the pre/post matrices and the grid are not read",
                ),
            )
        )
    return records


# --- ITK text transforms ----------------------------------------------------------------


def parse_itk_transform_text(text: str) -> list[ItkTransform]:
    """The transforms of an ITK text transform file, in file order."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or not lines[0].startswith(ITK_HEADER):
        if any(line.startswith("(Transform ") for line in lines):
            raise RegistrationReadError("an elastix parameter file, not an ITK transform file")
        raise RegistrationReadError(f"not an ITK transform file (no {ITK_HEADER!r} header)")
    transforms: list[ItkTransform] = []
    class_name: str | None = None
    numbers: dict[str, tuple[float, ...]] = {}
    for line in [*lines[1:], "Transform: "]:  # a sentinel closes the last block
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "Transform":
            if class_name is not None:
                transforms.append(
                    ItkTransform(
                        class_name=class_name,
                        parameters=numbers.get("Parameters", ()),
                        fixed_parameters=numbers.get("FixedParameters", ()),
                    )
                )
            class_name, numbers = value.strip(), {}
        elif key in ("Parameters", "FixedParameters") and class_name is not None:
            try:
                numbers[key] = tuple(float(v) for v in value.split())
            except ValueError as error:
                raise RegistrationReadError(f"bad number in {key}: {error}") from error
    if not transforms:
        raise RegistrationReadError("the ITK transform file holds no transform")
    return transforms


def _rotation_from_versor(x: float, y: float, z: float) -> NDArray[np.float64]:
    norm = math.sqrt(x * x + y * y + z * z)
    if norm >= 1.0 - 1e-10:  # ITK rescales to a unit vector part (a half-turn)
        scale = 1.0 / (norm + 1e-10 * norm)
        x, y, z = x * scale, y * scale, z * scale
    w = math.sqrt(max(0.0, 1.0 - (x * x + y * y + z * z)))
    return _rotation_from_quaternion(x, y, z, w)


def _rotation_from_quaternion(x: float, y: float, z: float, w: float) -> NDArray[np.float64]:
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _euler(ax: float, ay: float, az: float, zyx: bool) -> NDArray[np.float64]:
    cx, sx, cy, sy, cz, sz = (
        math.cos(ax),
        math.sin(ax),
        math.cos(ay),
        math.sin(ay),
        math.cos(az),
        math.sin(az),
    )
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return np.asarray(rz @ ry @ rx if zyx else rz @ rx @ ry, dtype=float)


def _centred(
    linear: NDArray[np.float64], translation: Sequence[float], centre: Sequence[float]
) -> NDArray[np.float64]:
    """4×4 of ``T(x) = A (x − c) + t + c``."""
    c = np.asarray(centre, dtype=float)
    matrix = np.eye(4)
    matrix[:3, :3] = linear
    matrix[:3, 3] = np.asarray(translation, dtype=float) + c - linear @ c
    return matrix


_DEFORMABLE_MARKERS = ("BSpline", "Displacement", "Velocity", "Kernel", "Spline")
_LINEAR_TYPES = {
    "IdentityTransform": "RIGID",
    "TranslationTransform": "RIGID",
    "Euler3DTransform": "RIGID",
    "VersorTransform": "RIGID",
    "VersorRigid3DTransform": "RIGID",
    "QuaternionRigidTransform": "RIGID",
    "Rigid3DTransform": "RIGID",
    "Similarity3DTransform": "RIGID_SCALE",
    "ScaleTransform": "RIGID_SCALE",
    "ScaleVersor3DTransform": "AFFINE",
    "ScaleSkewVersor3DTransform": "AFFINE",
    "AffineTransform": "AFFINE",
    "MatrixOffsetTransformBase": "AFFINE",
    "CenteredAffineTransform": "AFFINE",
}


def itk_transform_type(transform: ItkTransform) -> str | None:
    """RIGID / RIGID_SCALE / AFFINE / DEFORMABLE for an ITK class, None if unknown."""
    name = transform.base_name
    if name in _LINEAR_TYPES:
        return _LINEAR_TYPES[name]
    if any(marker in name for marker in _DEFORMABLE_MARKERS):
        return "DEFORMABLE"
    return None


def itk_transform_matrix(transform: ItkTransform) -> NDArray[np.float64] | None:
    """The 4×4 (LPS, fixed → moving) of a 3-D linear ITK transform, None otherwise."""
    if transform.dimension not in (None, 3):
        return None
    name = transform.base_name
    p = transform.parameters
    fixed = transform.fixed_parameters
    centre = fixed[:3] if len(fixed) >= 3 else (0.0, 0.0, 0.0)

    def need(count: int) -> None:
        if len(p) < count:
            raise RegistrationReadError(f"{transform.class_name}: {len(p)} parameters, {count}+")

    if name == "IdentityTransform":
        return np.eye(4)
    if name == "TranslationTransform":
        need(3)
        return _centred(np.eye(3), p[:3], (0.0, 0.0, 0.0))
    if name in ("AffineTransform", "MatrixOffsetTransformBase", "Rigid3DTransform"):
        need(12)
        return _centred(np.asarray(p[:9]).reshape(3, 3), p[9:12], centre)
    if name == "CenteredAffineTransform":
        need(15)
        return _centred(np.asarray(p[:9]).reshape(3, 3), p[12:15], p[9:12])
    if name == "Euler3DTransform":
        need(6)
        zyx = len(fixed) >= 4 and fixed[3] != 0.0
        return _centred(_euler(p[0], p[1], p[2], zyx), p[3:6], centre)
    if name == "VersorTransform":
        need(3)
        return _centred(_rotation_from_versor(*p[:3]), (0.0, 0.0, 0.0), centre)
    if name == "VersorRigid3DTransform":
        need(6)
        return _centred(_rotation_from_versor(*p[:3]), p[3:6], centre)
    if name == "Similarity3DTransform":
        need(7)
        return _centred(p[6] * _rotation_from_versor(*p[:3]), p[3:6], centre)
    if name == "ScaleVersor3DTransform":
        need(9)
        linear = _rotation_from_versor(*p[:3]) + np.diag(np.asarray(p[6:9]) - 1.0)
        return _centred(linear, p[3:6], centre)
    if name == "QuaternionRigidTransform":
        need(7)
        q = np.asarray(p[:4], dtype=float)
        if not np.any(q):
            raise RegistrationReadError(f"{transform.class_name}: a zero quaternion")
        q = q / np.linalg.norm(q)
        return _centred(_rotation_from_quaternion(*q), p[4:7], centre)
    if name == "ScaleTransform":
        need(3)
        return _centred(np.diag(np.asarray(p[:3], dtype=float)), (0.0, 0.0, 0.0), centre)
    return None


def read_itk_transform(path: PathLike) -> RegistrationRecord:
    """An ITK / SimpleITK text transform file (``.tfm``, ``.txt``) as one record.

    Linear 3-D transforms (and composites of them) get their 4×4 matrix (fixed → moving,
    LPS); deformable ones (BSpline, displacement field) type DEFORMABLE without one. The
    raw parameters of every transform are in ``components``. Binary transforms (``.h5``,
    ``.mat``) raise ``RegistrationReadError``.
    """
    file = Path(path)
    if file.suffix.lower() in (".h5", ".hdf5", ".mat"):
        raise RegistrationReadError(f"{path}: binary ITK transforms are not supported")
    try:
        text = file.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as error:
        raise RegistrationReadError(f"{path}: not a text transform file") from error
    transforms = parse_itk_transform_text(text)
    if transforms[0].base_name == "CompositeTransform":
        components = transforms[1:]
        if not components:
            raise RegistrationReadError(f"{path}: an empty CompositeTransform")
    else:
        if len(transforms) > 1:
            raise RegistrationReadError(
                f"{path}: {len(transforms)} transforms without a CompositeTransform"
            )
        components = transforms
    warnings: list[str] = []
    types = [itk_transform_type(t) for t in components]
    known_types = [t for t in types if t is not None]
    registration_type = _most_general(known_types) if len(known_types) == len(types) else None
    matrix: NDArray[np.float64] | None = np.eye(4)
    for transform in components:
        step = itk_transform_matrix(transform)
        if step is None:
            if itk_transform_type(transform) != "DEFORMABLE":
                warnings.append(f"{transform.class_name}: no 4×4 for this transform; raw kept")
            matrix = None
            break
        assert matrix is not None
        matrix = matrix @ step  # T0(T1(x)): the later component is applied first
    return RegistrationRecord(
        source_format="ITK",
        source_path=str(path),
        sop_instance_uid=None,
        registration_type=registration_type,
        matrix=None if matrix is None else _flatten(matrix),
        direction="fixed_to_moving",
        source_frame_of_reference_uid=None,
        target_frame_of_reference_uid=None,
        source_series_uids=(),
        target_series_uids=(),
        referenced_series_uids=(),
        matrix_types=tuple(t.class_name for t in components),
        components=tuple(components),
        warnings=tuple(warnings),
    )


def read_registration(path: PathLike) -> list[RegistrationRecord]:
    """A DICOM REG or an ITK text transform, whichever the file is."""
    file = Path(path)
    with file.open("rb") as handle:
        head = handle.read(132)
    if head[128:132] == b"DICM" or file.suffix.lower() == ".dcm":
        return read_dicom_registration(file)
    return [read_itk_transform(file)]


__all__ = [
    "ItkTransform",
    "RegistrationReadError",
    "RegistrationRecord",
    "itk_transform_matrix",
    "itk_transform_type",
    "parse_itk_transform_text",
    "read_dicom_registration",
    "read_itk_transform",
    "read_registration",
]
