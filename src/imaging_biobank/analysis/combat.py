"""ComBat harmonisation of features across batches (scanners, sites).

The method of Johnson, Li and Rabinovic (2007, *Biostatistics* 8:118-127) as R
``sva::ComBat`` computes it (and ``neuroCombat``, which follows sva): per feature, a linear
model of batch indicators and covariates standardises the data; each batch's location
(gamma) and scale (delta) are then shrunk towards the batch's average over all features by
empirical Bayes, parametric (normal / inverse-gamma priors, solved by iteration) or
non-parametric (sva's ``int.eprior``: a likelihood-weighted average over the other
features, no Monte Carlo), and removed.

Our own implementation in numpy, checked against sva's output (``tests/test_combat.py``).
Data are (features x samples) as in sva; covariates a (samples x k) design without an
intercept (``design_from`` builds one, categorical columns one-hot encoded).

``learn`` estimates a ``CombatModel`` (storable with ``to_json``); ``CombatModel.apply``
harmonises samples of the batches it was learnt on, one sample at a time (a sample's result
does not depend on the others it is given with); ``harmonise`` is both on the same data.

Differences from sva, all on purpose: inputs sva would turn into NaN or silently change are
refused with ``CombatError`` (a batch of one sample, where sva switches to ``mean.only``;
NaN or infinite values; covariates confounded with batch; a pooled variance of zero); fewer
than two batches are refused too. Like sva (3.30 and later), a feature that is constant
within any batch (in particular one constant in all the data) is not adjusted: it passes
through unchanged and is listed in ``CombatModel.passthrough``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
Label = str | int | float
"""A batch label or a categorical covariate's value: kept as given, stored as JSON."""
Labels = Sequence[Label] | npt.NDArray[Any]

JSON_FORMAT: Final = "imaging_biobank.combat"
JSON_VERSION: Final = 1
CONVERGENCE: Final = 1e-4
"""sva's ``conv``: the parametric iteration stops when no estimate changes by more."""
MAX_ITERATIONS: Final = 10_000
_CHUNK_ELEMENTS: Final = 1 << 22  # memory bound of the non-parametric pairwise matrix


class CombatError(ValueError):
    """Input ComBat cannot harmonise (or a model it cannot use), with the reason."""


# --------------------------------------------------------------------------- inputs


def _label(value: object, what: str) -> Label:
    """``value`` as a plain str/int/float (numpy scalars unwrapped), or CombatError."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise CombatError(f"{what} {value!r} is not a text, an integer or a finite number")


def _labels(values: Labels, n_samples: int, what: str) -> tuple[Label, ...]:
    """Labels for ``n_samples`` samples, or CombatError if the count differs."""
    labels = tuple(_label(value, what) for value in values)
    if len(labels) != n_samples:
        raise CombatError(f"{len(labels)} {what}s for {n_samples} samples")
    return labels


def _sorted_levels(labels: Sequence[Label]) -> tuple[Label, ...]:
    """The distinct labels in order: numbers ascending, then texts (R's factor levels)."""
    return tuple(sorted(set(labels), key=lambda v: (isinstance(v, str), v)))


def _as_data(data: npt.ArrayLike, n_features: int | None = None) -> FloatArray:
    """Data as a finite 2-D float64 (features x samples) array, or CombatError."""
    array = np.array(data, dtype=np.float64)
    if array.ndim != 2:
        raise CombatError(f"data must be 2-D (features x samples), not {array.ndim}-D")
    if n_features is not None and array.shape[0] != n_features:
        raise CombatError(f"data have {array.shape[0]} features, the model {n_features}")
    _require_finite(array, "data")
    return array


def _as_covariates(covariates: npt.ArrayLike | None, n_samples: int) -> FloatArray:
    """Covariates as a finite (samples x k) float64 array (k = 0 when None)."""
    if covariates is None:
        return np.zeros((n_samples, 0))
    array = np.array(covariates, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2 or array.shape[0] != n_samples:
        raise CombatError(
            f"covariates must be (samples x k) with {n_samples} rows, not shape {array.shape}"
        )
    _require_finite(array, "covariates")
    return array


def _require_finite(array: FloatArray, what: str) -> None:
    """CombatError naming the first NaN or infinite value of a 2-D array, if any."""
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        row, col = bad[0]
        raise CombatError(
            f"{len(bad)} NaN or infinite value(s) in {what}, the first "
            f"{array[row, col]} at [{row}, {col}]: impute or drop them first"
        )


def design_from(
    columns: Mapping[str, Sequence[Any] | npt.NDArray[Any]],
    categorical: AbstractSet[str] = frozenset(),
    *,
    levels: Mapping[str, Sequence[Label]] | None = None,
) -> FloatArray:
    """A (samples x k) covariate design from named columns, in the mapping's order.

    A continuous column becomes one column of its values. A categorical column (named in
    ``categorical``) becomes one 0/1 column per level except the first (the levels sorted,
    as R's ``model.matrix``); ``levels`` fixes a column's levels, e.g. to build the design
    of new samples exactly as the one a model was learnt with. No intercept column: the
    batch indicators carry it.
    """
    missing = sorted(set(categorical) - set(columns))
    if missing:
        raise CombatError(
            f"covariate(s) {missing} requested but not given (given: {list(columns)})"
        )
    pinned = dict(levels or {})
    if stray := sorted(set(pinned) - set(categorical)):
        raise CombatError(f"levels given for {stray}, which are not categorical covariates")
    if not columns:
        raise CombatError("no covariate columns given (pass covariates=None instead)")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise CombatError(f"covariate columns differ in length: {lengths}")
    parts = [
        _one_hot(name, values, pinned.get(name))
        if name in categorical
        else _continuous(name, values)
        for name, values in columns.items()
    ]
    return np.hstack(parts)


def _continuous(name: str, values: Sequence[Any] | npt.NDArray[Any]) -> FloatArray:
    """A continuous covariate as one finite float column, or CombatError."""
    try:
        column = np.array(values, dtype=np.float64).reshape(-1, 1)
    except (TypeError, ValueError) as error:
        raise CombatError(
            f"covariate {name!r} is not numeric ({error}); declare it categorical"
        ) from error
    _require_finite(column, f"covariate {name!r}")
    return column


def _one_hot(
    name: str, values: Sequence[Any] | npt.NDArray[Any], levels: Sequence[Label] | None
) -> FloatArray:
    """0/1 columns for each level of a categorical covariate but its first."""
    labels = [_label(value, f"covariate {name!r} value") for value in values]
    known = _sorted_levels(labels) if levels is None else tuple(levels)
    if unknown := sorted(set(labels) - set(known), key=str):
        raise CombatError(f"covariate {name!r} has values {unknown} outside its levels {known}")
    return np.array([[label == level for level in known[1:]] for label in labels], dtype=float)


def _check_full_rank(batch_design: FloatArray, covariates: FloatArray) -> None:
    """CombatError naming the first covariate column confounded with batch (or earlier ones)."""
    n_samples, n_batches = batch_design.shape
    n_parameters = n_batches + covariates.shape[1]
    if n_parameters > n_samples:
        raise CombatError(
            f"{n_batches} batches and {covariates.shape[1]} covariate columns are "
            f"{n_parameters} parameters for {n_samples} samples: too many covariates"
        )
    design = batch_design
    for column in range(covariates.shape[1]):
        design = np.hstack([design, covariates[:, column : column + 1]])
        if np.linalg.matrix_rank(design) < design.shape[1]:
            raise CombatError(
                f"covariate column {column} is confounded with batch or with the columns "
                "before it (the design is not of full rank; a constant or intercept column "
                "is confounded too): drop it or collect samples that separate them"
            )


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, eq=False)
class CombatModel:
    """What ``learn`` estimated: everything ``apply`` needs, storable as JSON.

    Arrays are per feature over all ``n_features`` features; a passthrough feature (see
    ``passthrough``) has neutral values (mean 0, variance 1, no effects) and is copied.
    ``gamma_star``/``delta_star`` are (batches x features), rows in ``batch_levels``
    order; ``covariate_coefficients`` is (covariate columns x features).
    """

    batch_levels: tuple[Label, ...]
    batch_sizes: tuple[int, ...]
    reference_batch: Label | None
    parametric: bool
    empirical_bayes: bool
    mean_only: bool
    passthrough: tuple[int, ...]
    grand_mean: FloatArray
    var_pooled: FloatArray
    covariate_coefficients: FloatArray
    gamma_star: FloatArray
    delta_star: FloatArray
    _index: dict[Label, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Validate on construction; arrays become read-only float64 copies."""
        for name in ("grand_mean", "var_pooled", "covariate_coefficients"):
            self._freeze(name)
        self._freeze("gamma_star")
        self._freeze("delta_star")
        object.__setattr__(self, "_index", {b: i for i, b in enumerate(self.batch_levels)})
        self._validate()

    def _freeze(self, name: str) -> None:
        """Replace field ``name`` with a read-only float64 copy."""
        array = np.array(getattr(self, name), dtype=np.float64)
        array.setflags(write=False)
        object.__setattr__(self, name, array)

    def _validate(self) -> None:
        """CombatError if the fields do not make a usable model."""
        n_batches, n_features = len(self.batch_levels), self.grand_mean.shape[0]
        if len(self._index) != n_batches or len(self.batch_sizes) != n_batches:
            raise CombatError("batch levels must be distinct, one size per level")
        if self.reference_batch is not None and self.reference_batch not in self._index:
            raise CombatError(f"reference batch {self.reference_batch!r} is not a batch level")
        shapes = {
            "grand_mean": (n_features,),
            "var_pooled": (n_features,),
            "gamma_star": (n_batches, n_features),
            "delta_star": (n_batches, n_features),
        }
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise CombatError(f"{name} has shape {getattr(self, name).shape}, not {shape}")
        coefficients = self.covariate_coefficients
        if coefficients.ndim != 2 or coefficients.shape[1] != n_features:
            raise CombatError(f"covariate_coefficients has shape {coefficients.shape}")
        for name in ("grand_mean", "var_pooled", "covariate_coefficients", "gamma_star"):
            _require_finite(np.atleast_2d(getattr(self, name)), name)
        if not (np.all(self.var_pooled > 0) and np.all(self.delta_star > 0)):
            raise CombatError("var_pooled and delta_star must be positive and finite")
        if any(not 0 <= i < n_features for i in self.passthrough):
            raise CombatError(f"passthrough indices outside 0..{n_features - 1}")

    @property
    def n_features(self) -> int:
        """Number of features (rows of the data) the model harmonises."""
        return int(self.grand_mean.shape[0])

    @property
    def n_covariates(self) -> int:
        """Number of covariate columns ``apply`` expects."""
        return int(self.covariate_coefficients.shape[0])

    def batch_index(self, batch: Labels, n_samples: int) -> IntArray:
        """Each sample's row in ``batch_levels``; CombatError naming unknown labels."""
        labels = _labels(batch, n_samples, "batch label")
        unknown = sorted({b for b in labels if b not in self._index}, key=str)
        if unknown:
            raise CombatError(
                f"unknown batch(es) {unknown}: the model knows {list(self.batch_levels)}"
            )
        return np.array([self._index[b] for b in labels], dtype=np.intp)

    def apply(
        self, data: npt.ArrayLike, batch: Labels, covariates: npt.ArrayLike | None = None
    ) -> FloatArray:
        """Harmonise (features x samples) data of known batches; covariates as at learning."""
        values = _as_data(data, self.n_features)
        index = self.batch_index(batch, values.shape[1])
        design = _as_covariates(covariates, values.shape[1])
        if design.shape[1] != self.n_covariates:
            raise CombatError(
                f"{design.shape[1]} covariate columns, the model was learnt with "
                f"{self.n_covariates}"
            )
        stand_mean = self.grand_mean[:, np.newaxis] + (design @ self.covariate_coefficients).T
        scale = np.sqrt(self.var_pooled)[:, np.newaxis]
        standardised = (values - stand_mean) / scale
        adjusted = (standardised - self.gamma_star[index].T) / np.sqrt(self.delta_star[index].T)
        result: FloatArray = adjusted * scale + stand_mean
        result[list(self.passthrough)] = values[list(self.passthrough)]
        if self.reference_batch is not None:
            reference = index == self._index[self.reference_batch]
            result[:, reference] = values[:, reference]
        return result

    def to_json(self) -> str:
        """The model as JSON text (floats exactly: ``from_json`` gives the same results)."""
        document = {
            "format": JSON_FORMAT,
            "version": JSON_VERSION,
            "batch_levels": list(self.batch_levels),
            "batch_sizes": list(self.batch_sizes),
            "reference_batch": self.reference_batch,
            "parametric": self.parametric,
            "empirical_bayes": self.empirical_bayes,
            "mean_only": self.mean_only,
            "passthrough": list(self.passthrough),
            "n_covariates": self.n_covariates,
            "grand_mean": self.grand_mean.tolist(),
            "var_pooled": self.var_pooled.tolist(),
            "covariate_coefficients": self.covariate_coefficients.tolist(),
            "gamma_star": self.gamma_star.tolist(),
            "delta_star": self.delta_star.tolist(),
        }
        return json.dumps(document, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> CombatModel:
        """A model from ``to_json`` text; CombatError if it is not one."""
        try:
            document = json.loads(text)
            if document.get("format") != JSON_FORMAT or document.get("version") != JSON_VERSION:
                raise CombatError(f"not a ComBat model of version {JSON_VERSION}")
            n_features = len(document["grand_mean"])
            return cls(
                batch_levels=tuple(document["batch_levels"]),
                batch_sizes=tuple(int(n) for n in document["batch_sizes"]),
                reference_batch=document["reference_batch"],
                parametric=bool(document["parametric"]),
                empirical_bayes=bool(document["empirical_bayes"]),
                mean_only=bool(document["mean_only"]),
                passthrough=tuple(int(i) for i in document["passthrough"]),
                grand_mean=np.array(document["grand_mean"], dtype=np.float64),
                var_pooled=np.array(document["var_pooled"], dtype=np.float64),
                covariate_coefficients=np.array(
                    document["covariate_coefficients"], dtype=np.float64
                ).reshape(int(document["n_covariates"]), n_features),
                gamma_star=np.array(document["gamma_star"], dtype=np.float64),
                delta_star=np.array(document["delta_star"], dtype=np.float64),
            )
        except CombatError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CombatError(f"not a ComBat model: {error!r}") from error


# --------------------------------------------------------------------------- estimation


def learn(
    data: npt.ArrayLike,
    batch: Labels,
    covariates: npt.ArrayLike | None = None,
    *,
    parametric: bool = True,
    empirical_bayes: bool = True,
    mean_only: bool = False,
    reference_batch: Label | None = None,
) -> CombatModel:
    """Estimate ComBat's parameters from (features x samples) data.

    ``batch`` gives each sample's batch (at least two batches of at least two samples);
    ``covariates`` a (samples x k) design whose effects are kept (see ``design_from``).
    ``parametric`` chooses the parametric priors over sva's non-parametric integration,
    ``empirical_bayes=False`` uses the per-batch estimates unshrunk, ``mean_only`` adjusts
    locations only, and ``reference_batch`` harmonises to that batch, left unchanged.
    """
    values = _as_data(data)
    n_samples = values.shape[1]
    labels = _labels(batch, n_samples, "batch label")
    levels = _sorted_levels(labels)
    index = np.array([levels.index(b) for b in labels], dtype=np.intp)
    sizes = np.bincount(index, minlength=len(levels))
    _check_batches(levels, sizes)
    reference = _reference_index(levels, reference_batch)
    design_cov = _as_covariates(covariates, n_samples)
    batch_design = np.eye(len(levels))[index]
    if reference is not None:
        batch_design[:, reference] = 1.0  # sva: the reference column is the intercept
    _check_full_rank(batch_design, design_cov)

    passthrough = _constant_within_batches(values, index, len(levels))
    kept = ~passthrough
    if empirical_bayes and kept.sum() < 2:
        raise CombatError(
            f"only {int(kept.sum())} feature(s) vary within every batch (the others pass "
            "through): empirical Bayes needs 2 or more; use empirical_bayes=False"
        )
    fit = _standardise(values[kept], batch_design, design_cov, index, reference)
    gamma_star, delta_star = _batch_effects(
        fit.standardised,
        batch_design,
        index,
        parametric=parametric,
        empirical_bayes=empirical_bayes,
        mean_only=mean_only,
    )
    if reference is not None:
        gamma_star[reference], delta_star[reference] = 0.0, 1.0
    _check_estimates(gamma_star, delta_star)
    return CombatModel(
        batch_levels=levels,
        batch_sizes=tuple(int(n) for n in sizes),
        reference_batch=None if reference is None else levels[reference],
        parametric=parametric,
        empirical_bayes=empirical_bayes,
        mean_only=mean_only,
        passthrough=tuple(int(i) for i in np.flatnonzero(passthrough)),
        grand_mean=_widen(fit.grand_mean[np.newaxis], kept, 0.0)[0],
        var_pooled=_widen(fit.var_pooled[np.newaxis], kept, 1.0)[0],
        covariate_coefficients=_widen(fit.covariate_coefficients, kept, 0.0),
        gamma_star=_widen(gamma_star, kept, 0.0),
        delta_star=_widen(delta_star, kept, 1.0),
    )


def harmonise(
    data: npt.ArrayLike,
    batch: Labels,
    covariates: npt.ArrayLike | None = None,
    *,
    parametric: bool = True,
    empirical_bayes: bool = True,
    mean_only: bool = False,
    reference_batch: Label | None = None,
) -> tuple[FloatArray, CombatModel]:
    """``learn`` on the data, then ``apply`` to them: (harmonised data, model)."""
    model = learn(
        data,
        batch,
        covariates,
        parametric=parametric,
        empirical_bayes=empirical_bayes,
        mean_only=mean_only,
        reference_batch=reference_batch,
    )
    return model.apply(data, batch, covariates), model


def _widen(columns: FloatArray, kept: BoolArray, neutral: float) -> FloatArray:
    """(rows x kept features) widened to (rows x all features), ``neutral`` elsewhere."""
    out = np.full((columns.shape[0], kept.shape[0]), neutral)
    out[:, kept] = columns
    return out


def _check_batches(levels: tuple[Label, ...], sizes: IntArray) -> None:
    """CombatError unless there are two or more batches of two or more samples."""
    if len(levels) < 2:
        raise CombatError(f"one batch only ({levels[0]!r}): nothing to harmonise")
    small = [f"{b!r} ({n})" for b, n in zip(levels, sizes, strict=True) if n < 2]
    if small:
        raise CombatError(
            f"batch(es) with fewer than 2 samples: {', '.join(small)}; "
            "a batch's variance needs 2 or more: merge or drop them"
        )


def _reference_index(levels: tuple[Label, ...], reference: Label | None) -> int | None:
    """The reference batch's row in ``levels``, or CombatError if it is not a batch."""
    if reference is None:
        return None
    label = _label(reference, "reference batch")
    if label not in levels:
        raise CombatError(f"reference batch {label!r} is not among the batches {list(levels)}")
    return levels.index(label)


def _constant_within_batches(values: FloatArray, index: IntArray, n_batches: int) -> BoolArray:
    """Features whose values are all equal within some batch (passed through, as sva)."""
    constant = np.zeros(values.shape[0], dtype=bool)
    for b in range(n_batches):
        block = values[:, index == b]
        constant |= np.all(block == block[:, :1], axis=1)
    return constant


def _least_squares(design: FloatArray, targets: FloatArray) -> FloatArray:
    """Coefficients (design columns x targets) minimising the squared residuals."""
    return np.asarray(np.linalg.lstsq(design, targets, rcond=None)[0], dtype=np.float64)


@dataclass(frozen=True)
class _Standardisation:
    """The feature-wise linear model: grand mean, pooled variance, covariate effects."""

    grand_mean: FloatArray
    var_pooled: FloatArray
    covariate_coefficients: FloatArray
    standardised: FloatArray


def _standardise(
    values: FloatArray,
    batch_design: FloatArray,
    covariates: FloatArray,
    index: IntArray,
    reference: int | None,
) -> _Standardisation:
    """Fit batch + covariates per feature by least squares and standardise the data.

    The grand mean is the size-weighted mean of the batch coefficients (or the reference
    batch's intercept); the pooled variance is the mean squared residual (over the
    reference batch's samples only when there is one), as in sva.
    """
    n_batches = batch_design.shape[1]
    sizes = np.bincount(index, minlength=n_batches)
    design = np.hstack([batch_design, covariates])
    coefficients = _least_squares(design, values.T)
    if reference is None:
        grand_mean = (sizes / sizes.sum()) @ coefficients[:n_batches]
    else:
        grand_mean = coefficients[reference]
    residuals = values - (design @ coefficients).T
    if reference is not None:
        residuals = residuals[:, index == reference]
    var_pooled = np.mean(residuals**2, axis=1)
    if np.any(var_pooled <= 0):
        raise CombatError(
            f"{int(np.sum(var_pooled <= 0))} feature(s) have a pooled variance of zero: the "
            "covariates fit them exactly (too few samples for the covariates)"
        )
    covariate_coefficients = coefficients[n_batches:]
    stand_mean = grand_mean[:, np.newaxis] + (covariates @ covariate_coefficients).T
    standardised = (values - stand_mean) / np.sqrt(var_pooled)[:, np.newaxis]
    return _Standardisation(grand_mean, var_pooled, covariate_coefficients, standardised)


def _batch_estimates(
    standardised: FloatArray, batch_design: FloatArray, index: IntArray, mean_only: bool
) -> tuple[FloatArray, FloatArray]:
    """Per batch and feature: location gamma-hat (least squares) and variance delta-hat."""
    gamma_hat = _least_squares(batch_design, standardised.T)
    n_batches = batch_design.shape[1]
    if mean_only:
        return gamma_hat, np.ones_like(gamma_hat)
    delta_hat = np.array(
        [np.var(standardised[:, index == b], axis=1, ddof=1) for b in range(n_batches)]
    )
    return gamma_hat, delta_hat


def _batch_effects(
    standardised: FloatArray,
    batch_design: FloatArray,
    index: IntArray,
    *,
    parametric: bool,
    empirical_bayes: bool,
    mean_only: bool,
) -> tuple[FloatArray, FloatArray]:
    """gamma* and delta* (batches x features): the batch estimates, shrunk as asked."""
    gamma_hat, delta_hat = _batch_estimates(standardised, batch_design, index, mean_only)
    if not empirical_bayes:
        return gamma_hat, delta_hat
    if parametric:
        return _parametric_eb(standardised, index, gamma_hat, delta_hat, mean_only)
    return _nonparametric_eb(standardised, index, gamma_hat, delta_hat)


def _postmean(
    g_hat: FloatArray, g_bar: float, n: float, d_star: FloatArray | float, t2: float
) -> FloatArray:
    """Posterior mean of a batch's locations under a normal prior (mean g_bar, var t2)."""
    result: FloatArray = (t2 * n * g_hat + d_star * g_bar) / (t2 * n + d_star)
    return result


def _postvar(sum2: FloatArray, n: int, a: float, b: float) -> FloatArray:
    """Posterior variance under an inverse-gamma prior of shape a and scale b."""
    result: FloatArray = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
    return result


def _inverse_gamma_prior(delta_hat: FloatArray) -> tuple[float, float]:
    """Method-of-moments inverse-gamma (shape, scale) for one batch's variances."""
    mean, var = float(np.mean(delta_hat)), float(np.var(delta_hat, ddof=1))
    return (2.0 * var + mean**2) / var, (mean * var + mean**3) / var


def _parametric_eb(
    standardised: FloatArray,
    index: IntArray,
    gamma_hat: FloatArray,
    delta_hat: FloatArray,
    mean_only: bool,
) -> tuple[FloatArray, FloatArray]:
    """Parametric empirical Bayes: gamma* and delta* per batch (rows) and feature."""
    gamma_bar = np.mean(gamma_hat, axis=1)
    t2 = np.var(gamma_hat, axis=1, ddof=1)
    gamma_star, delta_star = np.empty_like(gamma_hat), np.ones_like(delta_hat)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in range(gamma_hat.shape[0]):
            if mean_only:
                gamma_star[b] = _postmean(gamma_hat[b], gamma_bar[b], 1.0, 1.0, t2[b])
                continue
            a_prior, b_prior = _inverse_gamma_prior(delta_hat[b])
            gamma_star[b], delta_star[b] = _iterate_posteriors(
                standardised[:, index == b],
                gamma_hat[b],
                delta_hat[b],
                (gamma_bar[b], t2[b], a_prior, b_prior),
            )
    return gamma_star, delta_star


def _iterate_posteriors(
    block: FloatArray,
    g_hat: FloatArray,
    d_hat: FloatArray,
    priors: tuple[float, float, float, float],
) -> tuple[FloatArray, FloatArray]:
    """sva's ``it.sol``: alternate the posterior mean and variance until they settle.

    The stopping rule is sva's: the largest of ``|new - old| / old`` over both estimates
    and all features (signed denominator as in sva, so results match it) below 1e-4.
    """
    g_bar, t2, a_prior, b_prior = priors
    n = block.shape[1]
    g_old, d_old = g_hat, d_hat
    for _ in range(MAX_ITERATIONS):
        g_new = _postmean(g_hat, g_bar, n, d_old, t2)
        sum2 = np.sum((block - g_new[:, np.newaxis]) ** 2, axis=1)
        d_new = _postvar(sum2, n, a_prior, b_prior)
        change = max(_largest_change(g_new, g_old), _largest_change(d_new, d_old))
        g_old, d_old = g_new, d_new
        if not change > CONVERGENCE:
            return g_new, d_new
    raise CombatError(f"the parametric estimates did not converge in {MAX_ITERATIONS} steps")


def _largest_change(new: FloatArray, old: FloatArray) -> float:
    """max((|new - old|) / old) as sva computes it; 0/0 (no change from 0) counts as 0."""
    ratio = np.abs(new - old) / old
    return float(np.max(np.where(np.isnan(ratio), 0.0, ratio)))


def _nonparametric_eb(
    standardised: FloatArray, index: IntArray, gamma_hat: FloatArray, delta_hat: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Non-parametric empirical Bayes (sva's ``int.eprior``) for every batch."""
    pairs = [
        _integrate_prior(standardised[:, index == b], gamma_hat[b], delta_hat[b])
        for b in range(gamma_hat.shape[0])
    ]
    return np.array([g for g, _ in pairs]), np.array([d for _, d in pairs])


def _integrate_prior(
    block: FloatArray, g_hat: FloatArray, d_hat: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """sva's ``int.eprior`` for one batch, without Monte Carlo.

    Feature i's gamma* and delta* are the averages of the other features' (gamma-hat,
    delta-hat), each weighted by the normal likelihood of feature i's standardised values
    under it. Weights are computed in log space and scaled by their maximum, which leaves
    the averages unchanged but cannot underflow; features with delta-hat 0 get no weight.
    """
    n_features, n = block.shape
    sum1, sum_sq = block.sum(axis=1), np.sum(block**2, axis=1)
    usable = d_hat > 0
    with np.errstate(divide="ignore"):
        log_norm = np.where(usable, -0.5 * n * np.log(2.0 * np.pi * d_hat), -np.inf)
    safe_d = np.where(usable, d_hat, 1.0)
    g_star, d_star = np.empty(n_features), np.empty(n_features)
    chunk = max(1, _CHUNK_ELEMENTS // max(n_features, 1))
    for start in range(0, n_features, chunk):
        rows = np.arange(start, min(start + chunk, n_features))
        sum2 = sum_sq[rows, None] - 2.0 * sum1[rows, None] * g_hat + n * g_hat**2
        log_lh = log_norm - np.maximum(sum2, 0.0) / (2.0 * safe_d)
        log_lh[np.arange(len(rows)), rows] = -np.inf  # leave feature i itself out
        with np.errstate(invalid="ignore"):
            weights = np.exp(log_lh - np.max(log_lh, axis=1, keepdims=True))
            total = weights.sum(axis=1)
            g_star[rows] = (weights @ g_hat) / total
            d_star[rows] = (weights @ d_hat) / total
    return g_star, d_star


def _check_estimates(gamma_star: FloatArray, delta_star: FloatArray) -> None:
    """CombatError if empirical Bayes gave a non-finite or non-positive estimate."""
    if not (np.all(np.isfinite(gamma_star)) and np.all(np.isfinite(delta_star))):
        raise CombatError(
            "the batch effects could not be estimated (non-finite values): the features "
            "may be too few or too alike for empirical Bayes; try empirical_bayes=False"
        )
    if np.any(delta_star <= 0):
        raise CombatError("a batch's variance was estimated as zero: the features cannot be scaled")
