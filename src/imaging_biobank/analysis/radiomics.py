"""Radiomic features from an IBSI-compliant engine (MIRP), as typed, database-free values.

``compute(image, spacing_mm, mask, config)`` runs MIRP on a (z, y, x) image and a boolean mask
of the same shape and returns every feature with its IBSI family, its four-character IBSI code
(empty when no verified code exists), the tag the IBSI reference values use, a unit and the
texture aggregation it was computed with. The mapping from MIRP's feature names to IBSI lives in
``data/ibsi_features.csv``; ``data/ibsi_features.md`` records where its codes come from.

``RadiomicsConfig`` holds every image-processing choice that changes feature values (resampling,
interpolation, re-segmentation, discretisation, filters, texture aggregation); ``to_dict()`` is
what gets stored as the preprocessing parameters of a run.

Engine choice (MIRP over pyradiomics-bhklab) and how the two compare on the IBSI digital phantom:
see ``data/ibsi_features.md``.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import yaml

ENGINE = "mirp"

Interpolation = Literal["nearest", "linear", "cubic"]
Discretisation = Literal["FBN", "FBS", "none"]
Modality = Literal["CT", "PT", "MR", "generic"]
FilterName = Literal["log", "wavelet"]

#: IBSI feature families, in the order of the IBSI reference manual.
FAMILIES: tuple[str, ...] = (
    "morphology",
    "local intensity",
    "intensity",
    "intensity histogram",
    "intensity-volume histogram",
    "GLCM",
    "GLRLM",
    "GLSZM",
    "GLDZM",
    "NGTDM",
    "NGLDM",
)
TEXTURE_FAMILIES: frozenset[str] = frozenset(FAMILIES[5:])
#: families whose intensities are discretised (``discretisation_method``)
DISCRETISED_FAMILIES: frozenset[str] = frozenset({"intensity histogram", *TEXTURE_FAMILIES})

#: Texture aggregation, spelled as the suffixes of the IBSI reference value tags:
#: 2D = per slice, 2.5D = slices merged, 3D = volume; ``avg`` = features averaged over
#: directions (GLCM, GLRLM), ``comb`` = directional matrices merged first.
AGGREGATIONS: tuple[str, ...] = ("2D_avg", "2D_comb", "2_5D_avg", "2_5D_comb", "3D_avg", "3D_comb")

#: the 3D wavelet filter sets MIRP accepts (l = low pass, h = high pass; z, y, x)
WAVELET_SETS: tuple[str, ...] = ("lll", "llh", "lhl", "lhh", "hll", "hlh", "hhl", "hhh")

_MIRP_FAMILY = {
    "morphology": "morphology",
    "local intensity": "local_intensity",
    "intensity": "statistics",
    "intensity histogram": "intensity_histogram",
    "intensity-volume histogram": "intensity_volume_histogram",
    "GLCM": "glcm",
    "GLRLM": "glrlm",
    "GLSZM": "glszm",
    "GLDZM": "gldzm",
    "NGTDM": "ngtdm",
    "NGLDM": "ngldm",
}
# GLCM and GLRLM have six aggregation methods, the zone/neighbourhood matrices three
_MIRP_DIRECTIONAL = {
    "2D_avg": "2d_average",
    "2D_comb": "2d_slice_merge",
    "2_5D_avg": "2.5d_direction_merge",
    "2_5D_comb": "2.5d_volume_merge",
    "3D_avg": "3d_average",
    "3D_comb": "3d_volume_merge",
}
_MIRP_SPATIAL_PARAMETER = {
    "GLCM": "glcm_spatial_method",
    "GLRLM": "glrlm_spatial_method",
    "GLSZM": "glszm_spatial_method",
    "GLDZM": "gldzm_spatial_method",
    "NGTDM": "ngtdm_spatial_method",
    "NGLDM": "ngldm_spatial_method",
}
# the zone and neighbourhood matrices (GLSZM, GLDZM, NGTDM, NGLDM) have no directions
_MIRP_ZONE_METHOD = {"2D": "2d", "2_5D": "2.5d", "3D": "3d"}
# MIRP's column suffix -> the IBSI tag suffix
_AGGREGATION_OF_SUFFIX = {
    "2d_avg": "2D_avg",
    "2d_s_mrg": "2D_comb",
    "2.5d_d_mrg": "2_5D_avg",
    "2.5d_v_mrg": "2_5D_comb",
    "3d_avg": "3D_avg",
    "3d_v_mrg": "3D_comb",
    "2d": "2D",
    "2.5d": "2_5D",
    "3d": "3D",
}
_SUFFIX_RE = re.compile(
    r"_(2d_avg|2d_s_mrg|2\.5d_d_mrg|2\.5d_v_mrg|3d_avg|3d_v_mrg|2\.5d|2d|3d)(?=_|$)"
)
_CODE_RE = re.compile(r"[0-9A-Z]{4}")
_SPLINE_ORDER = {"nearest": 0, "linear": 1, "cubic": 3}
_MIRP_MODALITY = {"CT": "ct", "PT": "pet", "MR": "mri", "generic": "generic"}
_METADATA_COLUMNS = ("sample_name",)


class RadiomicsConfigError(ValueError):
    """A radiomics configuration that cannot be run; the message names the field."""


class RadiomicsEngineError(RuntimeError):
    """The engine is missing or answered in a way this module does not understand."""


# --- configuration ---------------------------------------------------------------------------


def _fail(name: str, message: str) -> RadiomicsConfigError:
    return RadiomicsConfigError(f"radiomics config: {name!r} {message}")


def _number(
    name: str, value: object, *, positive: bool = False, minimum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(name, f"must be finite, got {value!r}")
    if positive and number <= 0:
        raise _fail(name, f"must be > 0, got {value!r}")
    if minimum is not None and number < minimum:
        raise _fail(name, f"must be >= {minimum}, got {value!r}")
    return number


def _choice(name: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _fail(name, f"must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _sequence(name: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _fail(name, f"must be a list, got {value!r}")
    return tuple(value)


def _subset(name: str, value: object, allowed: Sequence[str], *, empty_ok: bool) -> tuple[str, ...]:
    items = _sequence(name, value)
    if not items and not empty_ok:
        raise _fail(name, f"must not be empty (choose from {', '.join(allowed)})")
    for item in items:
        _choice(name, item, allowed)
    if len(set(items)) != len(items):
        raise _fail(name, f"lists a value twice: {list(items)!r}")
    return tuple(items)


@dataclass(frozen=True)
class RadiomicsConfig:
    """Every image-processing choice that changes radiomic feature values.

    Spacings are in mm and ordered (z, y, x) like the image array. Discretisation: ``FBN``
    (fixed bin number, ``discretisation_value`` = number of bins), ``FBS`` (fixed bin size,
    ``discretisation_value`` = bin width in intensity units, binned from the lower bound of
    ``resegmentation_range`` as IBSI prescribes; without one MIRP starts from its modality
    default, -1000 HU for CT and 0 for PT, else the ROI minimum) or ``none`` (the image is
    already discretised, as the IBSI digital phantom is). ``modality`` sets the engine's intensity
    conventions (CT: integer HU after interpolation; PT: no negative values) and the default
    intensity-volume-histogram discretisation used when ``ivh_discretisation_method`` is
    ``none``. ``filters`` add features of filtered images (Laplacian of Gaussian, separable
    wavelets), computed volumetrically for ``filter_families`` only.
    """

    resampling_spacing_mm: tuple[float, float, float] | None = None
    interpolation: Interpolation = "linear"
    anti_aliasing: bool = False
    mask_inclusion_threshold: float = 0.5
    resegmentation_range: tuple[float | None, float | None] | None = None
    resegmentation_sigma: float | None = None
    discretisation_method: Discretisation = "FBN"
    discretisation_value: float | None = 32
    ivh_discretisation_method: Discretisation = "none"
    ivh_discretisation_value: float | None = None
    modality: Modality = "generic"
    intensity_unit: str | None = None
    families: tuple[str, ...] = FAMILIES
    aggregation: tuple[str, ...] = ("3D_avg",)
    glcm_distance: float = 1.0
    ngldm_distance: float = 1.0
    ngldm_difference_level: float = 0.0
    filters: tuple[FilterName, ...] = ()
    log_sigma_mm: tuple[float, ...] = (1.0,)
    wavelet_family: str = "coif1"
    wavelet_sets: tuple[str, ...] = ("hhh",)
    wavelet_level: int = 1
    filter_families: tuple[str, ...] = ("intensity",)
    filter_discretisation_bins: int = 16

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        if self.resampling_spacing_mm is not None:
            spacing = _sequence("resampling_spacing_mm", self.resampling_spacing_mm)
            if len(spacing) != 3:
                raise _fail("resampling_spacing_mm", f"needs 3 values (z, y, x), got {spacing!r}")
            set_(
                "resampling_spacing_mm",
                tuple(_number("resampling_spacing_mm", v, positive=True) for v in spacing),
            )
        _choice("interpolation", self.interpolation, get_args(Interpolation))
        if not isinstance(self.anti_aliasing, bool):
            raise _fail("anti_aliasing", f"must be true or false, got {self.anti_aliasing!r}")
        threshold = _number("mask_inclusion_threshold", self.mask_inclusion_threshold)
        if not 0.0 < threshold <= 1.0:
            raise _fail("mask_inclusion_threshold", f"must be in (0, 1], got {threshold!r}")
        set_("mask_inclusion_threshold", threshold)
        self._check_resegmentation(set_)
        for prefix in ("", "ivh_"):
            self._check_discretisation(prefix, set_)
        _choice("modality", self.modality, get_args(Modality))
        if self.intensity_unit is not None and (
            not isinstance(self.intensity_unit, str) or not self.intensity_unit.strip()
        ):
            raise _fail(
                "intensity_unit", f"must be a non-empty string or null, got {self.intensity_unit!r}"
            )
        set_("families", _subset("families", self.families, FAMILIES, empty_ok=False))
        set_("aggregation", _subset("aggregation", self.aggregation, AGGREGATIONS, empty_ok=True))
        if TEXTURE_FAMILIES & set(self.families) and not self.aggregation:
            raise _fail("aggregation", f"must name at least one of {', '.join(AGGREGATIONS)}")
        set_("glcm_distance", _number("glcm_distance", self.glcm_distance, positive=True))
        set_("ngldm_distance", _number("ngldm_distance", self.ngldm_distance, positive=True))
        set_(
            "ngldm_difference_level",
            _number("ngldm_difference_level", self.ngldm_difference_level, minimum=0.0),
        )
        self._check_filters(set_)

    def _check_resegmentation(self, set_: Any) -> None:
        if self.resegmentation_range is not None:
            bounds = _sequence("resegmentation_range", self.resegmentation_range)
            if len(bounds) != 2:
                raise _fail("resegmentation_range", f"needs [lower, upper], got {bounds!r}")
            lower, upper = (
                None if v is None else _number("resegmentation_range", v) for v in bounds
            )
            if lower is None and upper is None:
                raise _fail("resegmentation_range", "needs at least one bound (or null for none)")
            if lower is not None and upper is not None and lower >= upper:
                raise _fail(
                    "resegmentation_range", f"lower bound must be below upper, got {bounds!r}"
                )
            set_("resegmentation_range", (lower, upper))
        if self.resegmentation_sigma is not None:
            set_(
                "resegmentation_sigma",
                _number("resegmentation_sigma", self.resegmentation_sigma, positive=True),
            )

    def _check_discretisation(self, prefix: str, set_: Any) -> None:
        method_name, value_name = f"{prefix}discretisation_method", f"{prefix}discretisation_value"
        method = _choice(method_name, getattr(self, method_name), get_args(Discretisation))
        value = getattr(self, value_name)
        if method == "none":
            if value is not None:
                raise _fail(value_name, f"must be null when {method_name} is 'none', got {value!r}")
            return
        if value is None:
            what = "number of bins" if method == "FBN" else "bin width"
            raise _fail(value_name, f"is required for {method} ({what})")
        number = _number(value_name, value, positive=True)
        if method == "FBN" and not number.is_integer():
            raise _fail(value_name, f"must be a whole number of bins for FBN, got {value!r}")
        set_(value_name, number)

    def _check_filters(self, set_: Any) -> None:
        set_("filters", _subset("filters", self.filters, get_args(FilterName), empty_ok=True))
        sigmas = _sequence("log_sigma_mm", self.log_sigma_mm)
        if "log" in self.filters and not sigmas:
            raise _fail("log_sigma_mm", "needs at least one sigma for the 'log' filter")
        set_("log_sigma_mm", tuple(_number("log_sigma_mm", s, positive=True) for s in sigmas))
        if not isinstance(self.wavelet_family, str) or not self.wavelet_family:
            raise _fail(
                "wavelet_family",
                f"must be a wavelet name such as 'coif1', got {self.wavelet_family!r}",
            )
        set_(
            "wavelet_sets", _subset("wavelet_sets", self.wavelet_sets, WAVELET_SETS, empty_ok=False)
        )
        if isinstance(self.wavelet_level, bool) or not isinstance(self.wavelet_level, int):
            raise _fail("wavelet_level", f"must be a whole number, got {self.wavelet_level!r}")
        if self.wavelet_level < 1:
            raise _fail("wavelet_level", f"must be >= 1, got {self.wavelet_level!r}")
        set_(
            "filter_families",
            _subset("filter_families", self.filter_families, FAMILIES, empty_ok=False),
        )
        bins = self.filter_discretisation_bins
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise _fail("filter_discretisation_bins", f"must be a whole number >= 1, got {bins!r}")
        if self.filters and not any(a.startswith("3D") for a in self.aggregation):
            raise _fail(
                "filters", "are computed on the volume: add a 3D aggregation (3D_avg or 3D_comb)"
            )

    # -- (de)serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML types (lists, not tuples); ``from_dict(to_dict())`` gives it back."""

        def plain(value: Any) -> Any:
            return [plain(v) for v in value] if isinstance(value, tuple) else value

        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RadiomicsConfig:
        """Validated configuration from a mapping; unknown keys are an error (typos)."""
        if not isinstance(data, Mapping):
            raise RadiomicsConfigError(
                f"radiomics config must be a mapping of settings, got {type(data).__name__}"
            )
        names = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise RadiomicsConfigError(
                f"radiomics config: unknown setting(s) {', '.join(unknown)}; "
                f"known settings: {', '.join(names)}"
            )
        return cls(**{str(k): v for k, v in data.items()})

    @classmethod
    def from_yaml(cls, source: str | os.PathLike[str]) -> RadiomicsConfig:
        """From YAML text (a ``str``) or a YAML file (a path object such as ``pathlib.Path``)."""
        if isinstance(source, str):
            text, origin = source, "YAML text"
        else:
            path = Path(source)
            text, origin = path.read_text(encoding="utf-8"), str(path)
        try:
            data = yaml.safe_load(io.StringIO(text))
        except yaml.YAMLError as error:
            raise RadiomicsConfigError(
                f"radiomics config: {origin} is not valid YAML: {error}"
            ) from error
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            hint = " (to read a file, pass a pathlib.Path)" if isinstance(source, str) else ""
            raise RadiomicsConfigError(
                f"radiomics config: {origin} must hold a mapping of settings, "
                f"got {type(data).__name__}{hint}"
            )
        return cls.from_dict(data)

    @classmethod
    def ibsi_digital_phantom(cls) -> RadiomicsConfig:
        """The IBSI 1 digital phantom set-up: no resampling, no re-segmentation, no
        discretisation (the phantom's grey levels 1..6 are already discrete), CT conventions,
        GLCM distance 1, NGLDM distance 1 and coarseness 0, every aggregation."""
        return cls(
            discretisation_method="none",
            discretisation_value=None,
            ivh_discretisation_method="none",
            modality="CT",
            aggregation=AGGREGATIONS,
        )


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    """One feature value.

    ``name`` is the engine's own column name (parameters and aggregation included);
    ``ibsi_tag`` the IBSI reference-value tag without aggregation (e.g. ``cm_joint_max``) and
    ``reference_tag`` the full tag of the reference tables (e.g. ``cm_joint_max_3D_avg``).
    ``aggregation`` is one of ``AGGREGATIONS`` for GLCM/GLRLM, ``2D``/``2_5D``/``3D`` for the
    other texture families and ``3D`` for the rest (computed on the volume). ``image_type`` is
    ``original`` or the engine's name of the filtered image.
    """

    name: str
    family: str
    ibsi_code: str | None
    ibsi_tag: str | None
    value: float
    unit: str | None
    aggregation: str
    image_type: str = "original"

    @property
    def reference_tag(self) -> str | None:
        if self.ibsi_tag is None:
            return None
        if self.family in TEXTURE_FAMILIES:
            return f"{self.ibsi_tag}_{self.aggregation}"
        return self.ibsi_tag


@dataclass(frozen=True)
class RadiomicsResult:
    engine: str
    engine_version: str
    config: RadiomicsConfig
    features: tuple[Feature, ...]
    #: warnings the engine raised while computing (e.g. a filter scale below the voxel size)
    messages: tuple[str, ...] = field(default=())

    def by_reference_tag(self, image_type: str = "original") -> dict[str, Feature]:
        """Features of one image type keyed by their full IBSI reference tag."""
        return {
            f.reference_tag: f
            for f in self.features
            if f.reference_tag is not None and f.image_type == image_type
        }


@dataclass(frozen=True)
class IBSIFeature:
    """One row of ``data/ibsi_features.csv``."""

    engine_feature: str
    family: str
    ibsi_code: str | None
    ibsi_tag: str | None
    ibsi_name: str
    code_source: str
    unit: str | None


@functools.cache
def ibsi_features() -> Mapping[str, IBSIFeature]:
    """The engine-feature -> IBSI mapping shipped in ``data/ibsi_features.csv``."""
    text = (resources.files("imaging_biobank.analysis") / "data" / "ibsi_features.csv").read_text(
        encoding="utf-8"
    )
    table: dict[str, IBSIFeature] = {}
    for row in csv.DictReader(io.StringIO(text)):
        code = row["ibsi_code"] or None
        if code is not None and not _CODE_RE.fullmatch(code):
            raise RadiomicsEngineError(f"ibsi_features.csv: malformed IBSI code {code!r}")
        if row["family"] not in FAMILIES:
            raise RadiomicsEngineError(f"ibsi_features.csv: unknown family {row['family']!r}")
        table[row["engine_feature"]] = IBSIFeature(
            engine_feature=row["engine_feature"],
            family=row["family"],
            ibsi_code=code,
            ibsi_tag=row["ibsi_tag"] or None,
            ibsi_name=row["ibsi_name"],
            code_source=row["code_source"],
            unit=row["unit"] or None,
        )
    return table


@functools.cache
def _column_re() -> re.Pattern[str]:
    names = sorted(ibsi_features(), key=len, reverse=True)
    return re.compile(r"(?:^|_)(?P<base>" + "|".join(map(re.escape, names)) + r")(?P<rest>_.*)?$")


def engine_version() -> str:
    try:
        return metadata.version(ENGINE)
    except metadata.PackageNotFoundError as error:
        raise RadiomicsEngineError(f"the radiomics engine {ENGINE!r} is not installed") from error


# --- computation -----------------------------------------------------------------------------


def compute(
    image: npt.NDArray[Any],
    spacing_mm: tuple[float, float, float],
    mask: npt.NDArray[np.bool_],
    config: RadiomicsConfig,
) -> RadiomicsResult:
    """Radiomic features of the masked region of ``image``.

    ``image`` is (z, y, x) in its calibrated intensities (HU for CT), ``spacing_mm`` the voxel
    spacing in the same order and ``mask`` a boolean array of the image's shape.
    """
    pixels, region, spacing = _check_inputs(image, spacing_mm, mask)
    if not isinstance(config, RadiomicsConfig):
        raise TypeError(f"config must be a RadiomicsConfig, got {type(config).__name__}")
    if "wavelet" in config.filters:
        grid = config.resampling_spacing_mm or spacing
        if not np.allclose(grid, grid[0], rtol=1e-6):
            raise ValueError(
                f"wavelet filters need isotropic voxels, the grid is {grid} mm: "
                "set resampling_spacing_mm to three equal values"
            )
    version = engine_version()
    features: list[Feature] = []
    with _engine_messages() as messages:
        for by_slice, families in _runs(config):
            table = _run_engine(pixels, region, spacing, config, by_slice, families)
            features.extend(_features_of(table, config, by_slice, spacing))
    return RadiomicsResult(
        engine=ENGINE,
        engine_version=version,
        config=config,
        features=tuple(features),
        messages=tuple(messages),
    )


def _check_inputs(
    image: object, spacing_mm: object, mask: object
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], tuple[float, float, float]]:
    if not isinstance(image, np.ndarray) or image.ndim != 3:
        raise ValueError("image must be a 3-dimensional (z, y, x) numpy array")
    if image.dtype == np.bool_ or not np.issubdtype(image.dtype, np.number):
        raise TypeError(f"image must hold numbers, got dtype {image.dtype}")
    if np.issubdtype(image.dtype, np.complexfloating):
        raise TypeError("image must hold real numbers")
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise TypeError("mask must be a boolean numpy array")
    if mask.shape != image.shape:
        raise ValueError(f"mask shape {mask.shape} differs from image shape {image.shape}")
    if not mask.any():
        raise ValueError("mask is empty")
    pixels = np.array(image, dtype=np.float64)  # a copy: the engine must not see later edits
    if not np.isfinite(pixels).all():
        raise ValueError("image contains NaN or infinite values")
    if isinstance(spacing_mm, str) or not isinstance(spacing_mm, Sequence) or len(spacing_mm) != 3:
        raise ValueError(f"spacing_mm must be (z, y, x) in mm, got {spacing_mm!r}")
    spacing: list[float] = []
    for value in spacing_mm:
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValueError(f"spacing_mm must hold numbers, got {spacing_mm!r}")
        if not math.isfinite(float(value)) or float(value) <= 0:
            raise ValueError(f"spacing_mm must be positive, got {spacing_mm!r}")
        spacing.append(float(value))
    return pixels, mask.copy(), (spacing[0], spacing[1], spacing[2])


def _runs(config: RadiomicsConfig) -> list[tuple[bool, tuple[str, ...]]]:
    """Engine runs: volumetric (non-texture families, 3D texture, filters) and by slice
    (2D and 2.5D texture); MIRP does one or the other per call."""
    texture = tuple(f for f in config.families if f in TEXTURE_FAMILIES)
    other = tuple(f for f in config.families if f not in TEXTURE_FAMILIES)
    volume_agg = any(a.startswith("3D") for a in config.aggregation)
    slice_agg = any(not a.startswith("3D") for a in config.aggregation)
    runs: list[tuple[bool, tuple[str, ...]]] = []
    volume_families = other + (texture if volume_agg else ())
    if volume_families or config.filters:
        runs.append((False, volume_families))
    if texture and slice_agg:
        runs.append((True, texture))
    return runs


def _spatial_methods(config: RadiomicsConfig, family: str, by_slice: bool) -> list[str]:
    chosen = [a for a in config.aggregation if a.startswith("3D") != by_slice]
    if family in ("GLCM", "GLRLM"):
        return [_MIRP_DIRECTIONAL[a] for a in chosen]
    return sorted({_MIRP_ZONE_METHOD[a.rsplit("_", 1)[0]] for a in chosen})


def _discretisation_arguments(method: str, value: float | None, prefix: str) -> dict[str, Any]:
    if method == "FBN":
        assert value is not None
        return {f"{prefix}_method": "fixed_bin_number", f"{prefix}_n_bins": int(value)}
    if method == "FBS":
        return {f"{prefix}_method": "fixed_bin_size", f"{prefix}_bin_width": value}
    return {f"{prefix}_method": "none"}


def _engine_arguments(
    config: RadiomicsConfig, by_slice: bool, families: tuple[str, ...]
) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "by_slice": by_slice,
        "intensity_normalisation": "none",
        "base_feature_families": [_MIRP_FAMILY[f] for f in families] or "none",
        "glcm_distance": config.glcm_distance,
        "ngldm_distance": config.ngldm_distance,
        "ngldm_difference_level": config.ngldm_difference_level,
        "spline_order": _SPLINE_ORDER[config.interpolation],
        "anti_aliasing": config.anti_aliasing,
        "roi_interpolation_mask_inclusion_threshold": config.mask_inclusion_threshold,
    }
    arguments.update(
        _discretisation_arguments(
            config.discretisation_method, config.discretisation_value, "base_discretisation"
        )
    )
    arguments.update(
        _discretisation_arguments(
            config.ivh_discretisation_method, config.ivh_discretisation_value, "ivh_discretisation"
        )
    )
    for family in TEXTURE_FAMILIES & set(families):
        arguments[_MIRP_SPATIAL_PARAMETER[family]] = _spatial_methods(config, family, by_slice)
    if config.resampling_spacing_mm is not None:
        z, y, x = config.resampling_spacing_mm
        arguments["new_spacing"] = [y, x] if by_slice else [z, y, x]
    if config.resegmentation_range is not None:
        lower, upper = config.resegmentation_range
        arguments["resegmentation_intensity_range"] = [
            math.nan if lower is None else lower,
            math.nan if upper is None else upper,
        ]
    if config.resegmentation_sigma is not None:
        arguments["resegmentation_sigma"] = config.resegmentation_sigma
    if config.filters and not by_slice:
        kernels = []
        if "log" in config.filters:
            kernels.append("laplacian_of_gaussian")
            arguments["laplacian_of_gaussian_sigma"] = list(config.log_sigma_mm)
        if "wavelet" in config.filters:
            kernels.append("separable_wavelet")
            arguments["separable_wavelet_families"] = config.wavelet_family
            arguments["separable_wavelet_set"] = list(config.wavelet_sets)
            arguments["separable_wavelet_decomposition_level"] = config.wavelet_level
        arguments["filter_kernels"] = kernels
        arguments["response_map_feature_families"] = [
            _MIRP_FAMILY[f] for f in config.filter_families
        ]
        arguments["response_map_discretisation_method"] = "fixed_bin_number"
        arguments["response_map_discretisation_n_bins"] = config.filter_discretisation_bins
        for family in TEXTURE_FAMILIES & set(config.filter_families) - set(families):
            arguments[_MIRP_SPATIAL_PARAMETER[family]] = _spatial_methods(config, family, False)
    return arguments


def _run_engine(
    pixels: npt.NDArray[np.float64],
    region: npt.NDArray[np.bool_],
    spacing: tuple[float, float, float],
    config: RadiomicsConfig,
    by_slice: bool,
    families: tuple[str, ...],
) -> Any:
    try:
        from mirp import extract_features  # type: ignore[import-untyped]

        # MIRP's public API ignores the spacing of numpy input (it assumes 1 mm); its own
        # numpy file objects take one. _features_of() checks the spacing the engine used.
        from mirp._data_import.numpy_file import (  # type: ignore[import-untyped]
            ImageNumpyFile,
            MaskNumpyFile,
        )
    except ImportError as error:
        raise RadiomicsEngineError(
            f"the radiomics engine {ENGINE!r} cannot be imported: {error}"
        ) from error

    def wrap(cls: Any, data: npt.NDArray[Any], modality: str) -> Any:
        item = cls(image_modality=modality, image_spacing=spacing, sample_name="roi")
        item.image_data = item.image_metadata = data
        item.complete()
        item.update_image_data()
        item.check(raise_error=True, remove_metadata=False)
        return item

    tables = extract_features(
        image=wrap(ImageNumpyFile, pixels, _MIRP_MODALITY[config.modality]),
        mask=wrap(MaskNumpyFile, region, "generic_mask"),
        write_features=False,
        export_features=True,
        **_engine_arguments(config, by_slice, families),
    )
    if not isinstance(tables, list) or len(tables) != 1 or len(tables[0]) != 1:
        raise RadiomicsEngineError(f"{ENGINE} returned no single feature row for the mask")
    return tables[0]


def _features_of(
    table: Any, config: RadiomicsConfig, by_slice: bool, spacing: tuple[float, float, float]
) -> Iterator[Feature]:
    row = table.iloc[0]
    _check_spacing(row, config, by_slice, spacing)
    mapping = ibsi_features()
    pattern = _column_re()
    for column in table.columns:
        name = str(column)
        if name.startswith("image_") or name in _METADATA_COLUMNS:
            continue
        match = pattern.search(name)
        if match is None:
            raise RadiomicsEngineError(
                f"{ENGINE} feature {name!r} is missing from ibsi_features.csv"
            )
        info = mapping[match["base"]]
        image_type = name[: match.start("base")].rstrip("_") or "original"
        if by_slice and info.family not in TEXTURE_FAMILIES:
            continue  # computed once, on the volume
        suffix = _SUFFIX_RE.search(match["rest"] or "")
        if info.family in TEXTURE_FAMILIES:
            if suffix is None:
                raise RadiomicsEngineError(f"{ENGINE} feature {name!r} has no aggregation suffix")
            aggregation = _AGGREGATION_OF_SUFFIX[suffix[1]]
        else:
            aggregation = "3D"
        yield Feature(
            name=name,
            family=info.family,
            ibsi_code=info.ibsi_code,
            ibsi_tag=info.ibsi_tag,
            value=float(row[column]),
            unit=_unit(info, config, image_type),
            aggregation=aggregation,
            image_type=image_type,
        )


def _check_spacing(
    row: Any, config: RadiomicsConfig, by_slice: bool, spacing: tuple[float, float, float]
) -> None:
    expected = list(spacing)
    if config.resampling_spacing_mm is not None:
        wanted = config.resampling_spacing_mm
        expected = [spacing[0], *wanted[1:]] if by_slice else list(wanted)
    used = [float(row[f"image_voxel_size_{axis}"]) for axis in "zyx"]
    if not np.allclose(used, expected, rtol=1e-6):
        raise RadiomicsEngineError(
            f"{ENGINE} computed on a {used} mm (z, y, x) grid instead of {expected} mm"
        )


def _unit(info: IBSIFeature, config: RadiomicsConfig, image_type: str) -> str | None:
    """``I`` in the mapping's units stands for the image's intensity unit."""
    unit = info.unit
    if unit is None or "I" not in unit:
        return unit
    if config.intensity_unit is None or image_type != "original":
        return None
    if info.family == "intensity-volume histogram" and config.ivh_discretisation_method == "FBN":
        return None  # bin numbers
    return unit.replace("I", config.intensity_unit)


_QUIET = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


@contextlib.contextmanager
def _engine_messages() -> Iterator[list[str]]:
    """Collect the engine's warnings instead of letting it configure logging.

    MIRP calls ``logging.basicConfig(level=INFO, stream=sys.stdout)``; a handler on the root
    logger for the duration of the call makes that a no-op (so nothing is printed and the
    application's logging is left as it was) and records warnings for the result.
    """
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage().strip())

    handler = Collect(level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        # deprecations inside the engine's own dependencies say nothing about the values
        messages.extend(
            str(w.message).strip() for w in caught if not issubclass(w.category, _QUIET)
        )
    finally:
        root.removeHandler(handler)
    messages[:] = list(dict.fromkeys(messages))
