"""Reading pyradiomics batch-mode CSV output, with every feature mapped onto IBSI.

pyradiomics' batch mode (``pyradiomics cases.csv -o out.csv -f csv``) writes one row per case:
the columns of the input case list (``Image``, ``Mask`` and whatever else it carried, e.g. a
``series_instance_uid`` or ``Label``), then ``diagnostics_*`` columns (versions, settings, image
and mask summaries), then one column per feature named ``<imageType>_<class>_<feature>``:
``original_glcm_JointEnergy``, ``log-sigma-1-0-mm-3D_firstorder_Mean``,
``wavelet-LLH_glrlm_RunEntropy``.

``read_pyradiomics_csv(path)`` returns one ``PyradiomicsRow`` per case with its identifying
columns, its diagnostics (and the pyradiomics version and settings parsed from them) and its
features, each with its IBSI family, reference tag and four-character IBSI code. The mapping
lives in ``data/pyradiomics_ibsi.csv``; ``data/pyradiomics_ibsi.md`` gives the evidence for each
mapping. Codes are only given where pyradiomics computes the same quantity as IBSI: kurtosis
(+3), the PCA axis lengths (covariance over N, not N-1) and the 2D shape class have none.

Two settings change what a coded feature computes; when a row's
``diagnostics_Configuration_Settings`` sets them, the affected features lose their code and say
why in ``note``: ``voxelArrayShift`` other than 0 (firstorder Energy and RootMeanSquared) and
``symmetricalGLCM: False`` (every GLCM feature; IBSI GLCMs are symmetric). Without settings in
the file, pyradiomics' defaults (both IBSI-compatible) are assumed.

Pure: reads one file, touches no database.
"""

from __future__ import annotations

import ast
import csv
import functools
import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from imaging_biobank.analysis.radiomics import FAMILIES, IBSIFeature, ibsi_features

#: pyradiomics' feature classes and the IBSI family each belongs to (firstorder Entropy and
#: Uniformity are the exception: intensity histogram, see ``data/pyradiomics_ibsi.csv``)
CLASS_FAMILY: Mapping[str, str] = {
    "shape": "morphology",
    "shape2D": "morphology",
    "firstorder": "intensity",
    "glcm": "GLCM",
    "glrlm": "GLRLM",
    "glszm": "GLSZM",
    "gldm": "NGLDM",
    "ngtdm": "NGTDM",
}

SETTINGS_COLUMN = "diagnostics_Configuration_Settings"
IMAGE_TYPES_COLUMN = "diagnostics_Configuration_EnabledImageTypes"
VERSION_COLUMN = "diagnostics_Versions_PyRadiomics"
_DIAGNOSTICS_PREFIX = "diagnostics_"
_VERSIONS_PREFIX = "diagnostics_Versions_"

# the image type names pyradiomics' filters yield (radiomics/imageoperations.py)
_IMAGE_TYPE_RE = re.compile(
    r"original|wavelet\d*-[LH]+|log-sigma-[0-9]+(?:-[0-9]+)?-mm-[23]D|square|squareroot"
    r"|logarithm|exponential|gradient|lbp-2D|lbp-3D-(?:m\d+|k)"
)
_FEATURE_COLUMN_RE = re.compile(r"(?P<image_type>[^_]+)_(?P<cls>[^_]+)_(?P<name>[^_]+)")
_GLCM_GLRLM = frozenset({"glcm", "glrlm"})
_ZONE_CLASSES = frozenset({"glszm", "gldm", "ngtdm"})
_VOLUME_CLASSES = frozenset({"firstorder", "shape"})


class PyradiomicsCsvError(ValueError):
    """A file that is not readable pyradiomics CSV output; ``line``, ``row`` and ``column``
    locate the problem when it has a place in the file."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.line = line
        self.row = row
        self.column = column


@dataclass(frozen=True)
class PyradiomicsMapping:
    """One row of ``data/pyradiomics_ibsi.csv``: a pyradiomics feature and its IBSI feature."""

    pyradiomics_class: str
    pyradiomics_feature: str
    family: str
    #: the IBSI 1 reference tag without aggregation suffix (``cm_energy``); None when the
    #: feature is not an IBSI feature or computes a different quantity
    ibsi_tag: str | None
    #: the four-character IBSI code; None when there is no verified code
    ibsi_code: str | None
    note: str


@dataclass(frozen=True)
class PyradiomicsFeature:
    """One feature value of one row.

    ``aggregation`` spells pyradiomics' texture aggregation as the IBSI reference tags do
    (``3D_avg``, ``2_5D_comb``, ``3D``, ...; see ``texture_aggregation``); None when the
    row's settings are unknown or select something IBSI does not define. ``known`` is False
    for a class or feature missing from ``data/pyradiomics_ibsi.csv`` (then ``family`` comes
    from the class, or is None for an unknown class, and there is no tag or code). ``value``
    is NaN for an empty cell (pyradiomics writes one for a failed feature with
    ``--skip-nans`` or a case that failed).
    """

    column: str
    image_type: str
    pyradiomics_class: str
    name: str
    value: float
    family: str | None
    ibsi_tag: str | None
    ibsi_code: str | None
    note: str
    aggregation: str | None
    known: bool

    @property
    def reference_tag(self) -> str | None:
        """The full tag of the IBSI reference tables (``cm_energy_3D_avg``), as
        ``RadiomicsResult.by_reference_tag`` keys them; None without tag or aggregation."""
        if self.ibsi_tag is None:
            return None
        if self.pyradiomics_class in _GLCM_GLRLM or self.pyradiomics_class in _ZONE_CLASSES:
            return None if self.aggregation is None else f"{self.ibsi_tag}_{self.aggregation}"
        return self.ibsi_tag


@dataclass(frozen=True)
class PyradiomicsRow:
    """One case of a pyradiomics CSV file.

    ``row`` counts data rows from 1, ``line`` is the row's first line in the file (the header
    is line 1). ``identifiers`` are the columns that are neither diagnostics nor features, in
    file order (``Image``, ``Mask``, any id column); ``diagnostics`` the ``diagnostics_*``
    cells as written. ``settings`` and ``enabled_image_types`` are those diagnostics parsed
    (None when absent or not a Python literal); ``versions`` maps ``PyRadiomics``, ``Numpy``,
    ``SimpleITK``, ... to the versions written.
    """

    row: int
    line: int
    identifiers: Mapping[str, str]
    diagnostics: Mapping[str, str]
    features: tuple[PyradiomicsFeature, ...]
    pyradiomics_version: str | None
    versions: Mapping[str, str]
    settings: Mapping[str, Any] | None
    enabled_image_types: Mapping[str, Any] | None

    @property
    def image(self) -> str | None:
        return self.identifiers.get("Image")

    @property
    def mask(self) -> str | None:
        return self.identifiers.get("Mask")

    @property
    def image_types(self) -> tuple[str, ...]:
        """The image types with features in this row, in column order."""
        return tuple(dict.fromkeys(f.image_type for f in self.features))

    @property
    def unknown_features(self) -> tuple[PyradiomicsFeature, ...]:
        """Features whose class or name is not in ``data/pyradiomics_ibsi.csv``."""
        return tuple(f for f in self.features if not f.known)

    def feature(self, column: str) -> PyradiomicsFeature:
        """The feature of one column (``original_glcm_JointEnergy``); KeyError if absent."""
        for f in self.features:
            if f.column == column:
                return f
        raise KeyError(column)


# --- the mapping ------------------------------------------------------------------------------


@functools.cache
def pyradiomics_ibsi() -> Mapping[tuple[str, str], PyradiomicsMapping]:
    """The (class, feature) -> IBSI mapping shipped in ``data/pyradiomics_ibsi.csv``.

    Every tag and code is checked against ``data/ibsi_features.csv`` (the verified code table):
    a tag must be one of its tags, with the same code and family.
    """
    text = (
        resources.files("imaging_biobank.analysis") / "data" / "pyradiomics_ibsi.csv"
    ).read_text(encoding="utf-8")
    by_tag: dict[str, IBSIFeature] = {
        f.ibsi_tag: f for f in ibsi_features().values() if f.ibsi_tag is not None
    }
    table: dict[tuple[str, str], PyradiomicsMapping] = {}
    for row in csv.DictReader(io.StringIO(text)):
        key = (row["pyradiomics_class"], row["pyradiomics_feature"])
        where = f"pyradiomics_ibsi.csv: {key[0]} {key[1]}"
        if key in table:
            raise ValueError(f"{where}: listed twice")
        if row["family"] not in FAMILIES:
            raise ValueError(f"{where}: unknown family {row['family']!r}")
        tag = row["ibsi_tag"] or None
        code = row["ibsi_code"] or None
        if tag is None:
            if code is not None:
                raise ValueError(f"{where}: a code without a tag")
        else:
            reference = by_tag.get(tag)
            if reference is None:
                raise ValueError(f"{where}: {tag!r} is not a tag of ibsi_features.csv")
            if code != reference.ibsi_code or row["family"] != reference.family:
                raise ValueError(
                    f"{where}: {code!r}/{row['family']!r} disagree with ibsi_features.csv "
                    f"({reference.ibsi_code!r}/{reference.family!r} for {tag})"
                )
        table[key] = PyradiomicsMapping(
            pyradiomics_class=key[0],
            pyradiomics_feature=key[1],
            family=row["family"],
            ibsi_tag=tag,
            ibsi_code=code,
            note=row["note"],
        )
    return table


def texture_aggregation(pyradiomics_class: str, settings: Mapping[str, Any] | None) -> str | None:
    """How pyradiomics aggregated a class's features under ``settings``, spelled as the
    suffixes of the IBSI reference tags.

    From pyradiomics' own IBSI benchmark mapping (``AIM-Harvard/pyradiomics_ibsi-benchmark``):
    GLCM and GLRLM give ``3D_avg`` by default (features averaged over the 13 directions),
    ``3D_comb`` with ``weightingNorm: no_weighting`` (directional matrices merged) and the
    ``2_5D`` variants with ``force2D``; GLSZM, GLDM and NGTDM give ``3D`` or ``2_5D``;
    firstorder and shape are computed on the volume (``3D``). None for unknown settings, for
    distance-weighted merging (``weightingNorm`` manhattan/euclidean/infinity), for slices
    other than axial (``force2Ddimension`` not 0), for shape2D and for unknown classes.
    """
    if pyradiomics_class in _VOLUME_CLASSES:
        return "3D"
    if settings is None or (
        pyradiomics_class not in _GLCM_GLRLM and pyradiomics_class not in _ZONE_CLASSES
    ):
        return None
    force_2d = bool(settings.get("force2D", False))
    if force_2d and settings.get("force2Ddimension", 0) != 0:
        return None
    prefix = "2_5D" if force_2d else "3D"
    if pyradiomics_class in _ZONE_CLASSES:
        return prefix
    weighting = settings.get("weightingNorm")
    if weighting is None:
        return f"{prefix}_avg"
    if weighting == "no_weighting":
        return f"{prefix}_comb"
    return None


def _settings_deviation(
    pyradiomics_class: str, name: str, settings: Mapping[str, Any] | None
) -> str | None:
    """Why a coded feature is not the IBSI quantity under this row's settings, if it is not."""
    if settings is None:
        return None
    if pyradiomics_class == "firstorder" and name in ("Energy", "RootMeanSquared", "TotalEnergy"):
        shift = settings.get("voxelArrayShift", 0)
        if shift != 0:
            return f"voxelArrayShift = {shift!r} adds a constant to every intensity"
    if pyradiomics_class == "glcm" and settings.get("symmetricalGLCM", True) is False:
        return "symmetricalGLCM = False, while IBSI co-occurrence matrices are symmetric"
    return None


def _resolve(
    column: str,
    image_type: str,
    pyradiomics_class: str,
    name: str,
    value: float,
    settings: Mapping[str, Any] | None,
) -> PyradiomicsFeature:
    mapping = pyradiomics_ibsi().get((pyradiomics_class, name))
    aggregation = texture_aggregation(pyradiomics_class, settings)
    if mapping is None:
        family = CLASS_FAMILY.get(pyradiomics_class)
        note = (
            "feature not in pyradiomics_ibsi.csv"
            if family is not None
            else "pyradiomics class not in pyradiomics_ibsi.csv"
        )
        return PyradiomicsFeature(
            column=column,
            image_type=image_type,
            pyradiomics_class=pyradiomics_class,
            name=name,
            value=value,
            family=family,
            ibsi_tag=None,
            ibsi_code=None,
            note=note,
            aggregation=aggregation,
            known=False,
        )
    tag, code, note = mapping.ibsi_tag, mapping.ibsi_code, mapping.note
    deviation = _settings_deviation(pyradiomics_class, name, settings)
    if deviation is not None and tag is not None:
        note = f"differs from IBSI {tag} in this run: {deviation}" + (f"; {note}" if note else "")
        tag = code = None
    return PyradiomicsFeature(
        column=column,
        image_type=image_type,
        pyradiomics_class=pyradiomics_class,
        name=name,
        value=value,
        family=mapping.family,
        ibsi_tag=tag,
        ibsi_code=code,
        note=note,
        aggregation=aggregation,
        known=True,
    )


# --- reading ----------------------------------------------------------------------------------


def _feature_parts(column: str) -> tuple[str, str, str] | None:
    """(image type, class, feature) when ``column`` is a feature column: three parts of
    which the image type is one pyradiomics yields or the class is a pyradiomics class."""
    match = _FEATURE_COLUMN_RE.fullmatch(column)
    if match is None:
        return None
    image_type, cls, name = match.group("image_type", "cls", "name")
    if _IMAGE_TYPE_RE.fullmatch(image_type) is None and cls not in CLASS_FAMILY:
        return None
    return image_type, cls, name


def _literal(text: str | None) -> Mapping[str, Any] | None:
    """A diagnostics cell holding a Python dict literal (how pyradiomics writes settings)."""
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _number(cell: str, *, path: Path, row: int, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise PyradiomicsCsvError(
            f"{path}: row {row} (line {line}), column {column!r}: {cell!r} is not a number",
            line=line,
            row=row,
            column=column,
        ) from None


def read_pyradiomics_csv(
    path: str | Path, *, id_columns: Iterable[str] = ()
) -> list[PyradiomicsRow]:
    """The rows of a pyradiomics batch-mode CSV file, features mapped onto IBSI.

    A column is a feature column when it reads ``<imageType>_<class>_<feature>`` with an image
    type pyradiomics yields (``original``, ``wavelet-LLH``, ``log-sigma-1-0-mm-3D``, ...) or a
    pyradiomics class; ``diagnostics_*`` columns are diagnostics; every other column (and any
    named in ``id_columns``) identifies the case. Raises ``PyradiomicsCsvError`` for an empty
    or undecodable file, a header without feature column or with a repeated column, a row
    with more or fewer cells than the header, and a feature cell that is not a number (the
    message names row, line and column).
    """
    path = Path(path)
    forced_ids = frozenset(id_columns)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise PyradiomicsCsvError(f"{path}: not UTF-8 text ({error})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise PyradiomicsCsvError(f"{path}: empty file, no header")
        repeated = sorted(name for name, n in Counter(header).items() if n > 1)
        if repeated:
            raise PyradiomicsCsvError(
                f"{path}: column {repeated[0]!r} appears more than once in the header",
                line=1,
                column=repeated[0],
            )
        kinds: list[tuple[str, tuple[str, str, str] | None]] = []
        for column in header:
            parts = None if column in forced_ids else _feature_parts(column)
            if parts is not None:
                kinds.append(("feature", parts))
            elif column.startswith(_DIAGNOSTICS_PREFIX) and column not in forced_ids:
                kinds.append(("diagnostics", None))
            else:
                kinds.append(("id", None))
        if not any(kind == "feature" for kind, _ in kinds):
            raise PyradiomicsCsvError(
                f"{path}: no feature column (<imageType>_<class>_<feature>, e.g. "
                f"original_glcm_JointEnergy) in the header: not pyradiomics output",
                line=1,
            )
        rows: list[PyradiomicsRow] = []
        line = reader.line_num + 1  # where the next record starts
        for cells in reader:
            if cells:  # csv yields [] for a blank line
                rows.append(_read_row(path, header, kinds, cells, len(rows) + 1, line))
            line = reader.line_num + 1
    except csv.Error as error:
        raise PyradiomicsCsvError(
            f"{path}: line {reader.line_num}: malformed CSV ({error})", line=reader.line_num
        ) from None
    return rows


def _read_row(
    path: Path,
    header: Sequence[str],
    kinds: Sequence[tuple[str, tuple[str, str, str] | None]],
    cells: Sequence[str],
    number: int,
    line: int,
) -> PyradiomicsRow:
    if len(cells) != len(header):
        raise PyradiomicsCsvError(
            f"{path}: row {number} (line {line}) has {len(cells)} cells, the header {len(header)}",
            line=line,
            row=number,
        )
    identifiers: dict[str, str] = {}
    diagnostics: dict[str, str] = {}
    for column, (kind, _), cell in zip(header, kinds, cells, strict=True):
        if kind == "id":
            identifiers[column] = cell
        elif kind == "diagnostics":
            diagnostics[column] = cell
    settings = _literal(diagnostics.get(SETTINGS_COLUMN))
    features: list[PyradiomicsFeature] = []
    for column, (kind, parts), cell in zip(header, kinds, cells, strict=True):
        if kind != "feature" or parts is None:
            continue
        value = _number(cell, path=path, row=number, line=line, column=column)
        features.append(_resolve(column, *parts, value, settings))
    version = diagnostics.get(VERSION_COLUMN, "").strip()
    return PyradiomicsRow(
        row=number,
        line=line,
        identifiers=identifiers,
        diagnostics=diagnostics,
        features=tuple(features),
        pyradiomics_version=version.removeprefix("v") or None,
        versions={
            column.removeprefix(_VERSIONS_PREFIX): cell
            for column, cell in diagnostics.items()
            if column.startswith(_VERSIONS_PREFIX)
        },
        settings=settings,
        enabled_image_types=_literal(diagnostics.get(IMAGE_TYPES_COLUMN)),
    )


def count_unknown(rows: Iterable[PyradiomicsRow]) -> Counter[tuple[str, str]]:
    """How many values each (class, feature) missing from ``data/pyradiomics_ibsi.csv`` has."""
    return Counter((f.pyradiomics_class, f.name) for row in rows for f in row.unknown_features)
