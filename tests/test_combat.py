"""ComBat harmonisation against R sva::ComBat's output, and its guards.

The expected values are sva 3.46.0's on the shared test matrix (200 features x 10 scans),
as listed in shared/reference/standards/clinical.md section 5.1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from imaging_biobank.analysis.combat import (
    CombatError,
    CombatModel,
    design_from,
    harmonise,
    learn,
)
from tests.conftest import SHARED, server_unavailable

TESTDATA = SHARED / "reference" / "combat" / "testdata.csv"
BATCH = [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
GENDER = [1, 2] * 5
AGE = [5, 7, 3, 9, 2, 4, 8, 6, 1, 3.5]

# fmt: off
# config: (options, sum of all values, row 0, value [199, 9]), sva 3.46.0 (clinical.md 5.1)
REFERENCE: dict[str, tuple[dict[str, Any], float, list[float], float]] = {
    "gender parametric": (
        {"covariates": "gender"},
        11124.3318694535,
        [
            8.04849315,
            6.23753511,
            7.95061215,
            4.12699809,
            5.91171181,
            4.02180808,
            9.01064360,
            3.06684927,
            9.17348928,
            2.66563265,
        ],
        5.39808215,
    ),
    "no covariate": (
        {},
        11138.6755948989,
        [
            7.80968794,
            5.59183578,
            7.68890476,
            2.98747564,
            5.17294284,
            5.00097221,
            8.96581099,
            4.11105433,
            9.11756548,
            3.73716401,
        ],
        6.18507608,
    ),
    "age continuous": (
        {"covariates": "age"},
        11109.3146707194,
        [
            8.49068817,
            5.82915573,
            8.09606225,
            2.66252977,
            4.68977881,
            5.03674240,
            8.43192747,
            4.10636648,
            8.97736362,
            3.90949708,
        ],
        6.11825453,
    ),
    "gender non-parametric": (
        {"covariates": "gender", "parametric": False},
        11151.2814792432,
        [
            7.90841331,
            5.92901861,
            7.81755665,
            3.96994233,
            5.92497610,
            4.24326538,
            9.21444045,
            3.30860658,
            9.37382444,
            2.91591880,
        ],
        5.54546168,
    ),
    "gender reference batch 1": (
        {"covariates": "gender", "reference_batch": 1},
        2855.5748761612,
        [
            3.01874617,
            1.21551378,
            2.92054298,
            -0.90197026,
            0.87493142,
            -1.03805479,
            3.84911610,
            -1.87615411,
            3.99203416,
            -2.22827336,
        ],
        1.46452637,
    ),
}
# fmt: on
INPUT_SUM = 11134.8202184953


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """The shared test matrix (features x scans)."""
    if not TESTDATA.exists():  # a failure in CI, where ../shared is always beside
        server_unavailable("../shared is not beside the repository")
    values = np.loadtxt(TESTDATA, delimiter=",", skiprows=1)
    assert values.shape == (200, 10)
    assert abs(values.sum() - INPUT_SUM) < 1e-9
    return values


def options(config: str) -> dict[str, Any]:
    """Keyword arguments of ``harmonise``/``learn`` for a row of the reference table."""
    kwargs = dict(REFERENCE[config][0])
    covariate = kwargs.pop("covariates", None)
    if covariate == "gender":
        kwargs["covariates"] = design_from({"gender": GENDER}, {"gender"})
    elif covariate == "age":
        kwargs["covariates"] = design_from({"age": AGE}, set())
    return kwargs


@pytest.mark.parametrize("config", list(REFERENCE))
def test_matches_sva(data: np.ndarray, config: str) -> None:
    _, total, row0, last = REFERENCE[config]
    adjusted, _ = harmonise(data, BATCH, **options(config))
    assert adjusted.shape == data.shape
    assert abs(adjusted.sum() - total) < 1e-6
    assert_allclose(adjusted[0], row0, rtol=0, atol=1e-6)
    assert abs(adjusted[199, 9] - last) < 1e-6


def test_reference_batch_is_left_exactly(data: np.ndarray) -> None:
    adjusted, model = harmonise(data, BATCH, **options("gender reference batch 1"))
    assert_array_equal(adjusted[:, :5], data[:, :5])
    assert model.reference_batch == 1
    assert_array_equal(model.gamma_star[0], 0.0)
    assert_array_equal(model.delta_star[0], 1.0)


@pytest.mark.parametrize("config", list(REFERENCE))
def test_learn_then_apply_is_harmonise(data: np.ndarray, config: str) -> None:
    kwargs = options(config)
    adjusted, _ = harmonise(data, BATCH, **kwargs)
    covariates = kwargs.pop("covariates", None)
    model = learn(data, BATCH, covariates, **kwargs)
    assert np.max(np.abs(model.apply(data, BATCH, covariates) - adjusted)) < 1e-12
    # a sample's result does not depend on the samples it is applied with
    some = [2, 7, 8]
    part = model.apply(
        data[:, some], [BATCH[i] for i in some], None if covariates is None else covariates[some]
    )
    assert np.max(np.abs(part - adjusted[:, some])) < 1e-12


def test_sample_order_does_not_matter(data: np.ndarray) -> None:
    order = [9, 0, 5, 3, 8, 1, 2, 7, 6, 4]
    design = design_from({"gender": GENDER}, {"gender"})
    adjusted, _ = harmonise(data, BATCH, design)
    shuffled, _ = harmonise(data[:, order], [BATCH[i] for i in order], design[order])
    assert_allclose(shuffled, adjusted[:, order], rtol=0, atol=1e-12)


def test_round_trip_through_json_gives_identical_results(data: np.ndarray) -> None:
    for config in REFERENCE:
        kwargs = options(config)
        covariates = kwargs.pop("covariates", None)
        model = learn(data, BATCH, covariates, **kwargs)
        stored = CombatModel.from_json(model.to_json())
        assert stored.to_json() == model.to_json()
        assert_array_equal(
            stored.apply(data, BATCH, covariates), model.apply(data, BATCH, covariates)
        )
    # text labels and three batches survive too
    labels = ["GE"] * 3 + ["Siemens"] * 4 + ["Philips"] * 3
    model = learn(data, labels, parametric=False, mean_only=True, reference_batch="Siemens")
    stored = CombatModel.from_json(model.to_json())
    assert stored.batch_levels == ("GE", "Philips", "Siemens")
    assert_array_equal(stored.apply(data, labels), model.apply(data, labels))


def test_apply_refuses_an_unknown_batch(data: np.ndarray) -> None:
    model = learn(data, BATCH)
    with pytest.raises(CombatError, match=r"unknown batch\(es\) \[3\].*knows \[1, 2\]"):
        model.apply(data[:, :2], [1, 3])
    with pytest.raises(CombatError, match="covariate columns"):
        model.apply(data, BATCH, design_from({"age": AGE}))
    with pytest.raises(CombatError, match="199 features, the model 200"):
        model.apply(data[1:], BATCH)


def test_a_constant_feature_passes_through(data: np.ndarray) -> None:
    values = data.copy()
    values[3] = 5.0  # constant in all the data
    values[7, :5] = 2.5  # constant within batch 1 only (sva does not adjust it either)
    for parametric in (True, False):
        adjusted, model = harmonise(values, BATCH, parametric=parametric)
        assert model.passthrough == (3, 7)
        assert_array_equal(adjusted[[3, 7]], values[[3, 7]])
        assert np.all(np.isfinite(adjusted))
    adjusted, model = harmonise(values, BATCH, empirical_bayes=False)
    assert_array_equal(adjusted[3], 5.0)


def test_without_empirical_bayes_batches_get_the_same_mean_and_variance(
    data: np.ndarray,
) -> None:
    adjusted, model = harmonise(data, BATCH, empirical_bayes=False)
    first, second = adjusted[:, :5], adjusted[:, 5:]
    assert_allclose(first.mean(axis=1), model.grand_mean, atol=1e-12)
    assert_allclose(second.mean(axis=1), model.grand_mean, atol=1e-12)
    assert_allclose(first.var(axis=1, ddof=1), model.var_pooled, rtol=1e-12)
    assert_allclose(second.var(axis=1, ddof=1), model.var_pooled, rtol=1e-12)
    # mean only: the means are aligned, each batch's spread is kept
    adjusted, model = harmonise(data, BATCH, empirical_bayes=False, mean_only=True)
    assert_allclose(adjusted[:, :5].mean(axis=1), adjusted[:, 5:].mean(axis=1), atol=1e-12)
    assert_allclose(adjusted[:, 5:].std(axis=1), data[:, 5:].std(axis=1), rtol=1e-12)
    assert_array_equal(model.delta_star, 1.0)


def test_design_from_encodes_categorical_columns() -> None:
    design = design_from({"sex": ["M", "F", "F", "X"], "age": [1, 2, 3, 4.5]}, {"sex"})
    assert_array_equal(design, [[1, 0, 1], [0, 0, 2], [0, 0, 3], [0, 1, 4.5]])
    pinned = design_from({"sex": ["F", "F"]}, {"sex"}, levels={"sex": ["F", "M", "X"]})
    assert_array_equal(pinned, [[0, 0], [0, 0]])
    with pytest.raises(CombatError, match=r"'U'.*outside its levels"):
        design_from({"sex": ["U"]}, {"sex"}, levels={"sex": ["F", "M"]})
    with pytest.raises(CombatError, match="'site' is not numeric"):
        design_from({"site": ["a", "b"]}, set())
    with pytest.raises(CombatError, match=r"in covariate 'age', the first nan"):
        design_from({"age": [1.0, np.nan]}, set())
    with pytest.raises(CombatError, match=r"covariate 'sex' value None is not a text"):
        design_from({"sex": ["F", None]}, {"sex"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("one-sample batch", r"fewer than 2 samples: 3 \(1\)"),
        ("nan", r"1 NaN or infinite value\(s\) in data, the first nan at \[4, 6\]"),
        ("inf covariate", r"1 NaN or infinite value\(s\) in covariates, the first inf"),
        ("confounded", r"covariate column 1 is confounded with batch"),
        ("missing covariate", r"covariate\(s\) \['sex'\] requested but not given"),
        ("batch count", r"9 batch labels for 10 samples"),
        ("one batch", r"one batch only"),
        ("unknown reference", r"reference batch 7 is not among the batches"),
    ],
)
def test_degenerate_input_is_refused(data: np.ndarray, change: str, message: str) -> None:
    values, batch = data.copy(), list(BATCH)
    covariates: np.ndarray | None = None
    kwargs: dict[str, Any] = {}
    with pytest.raises(CombatError, match=message):
        if change == "one-sample batch":
            batch[9] = 3
        elif change == "nan":
            values[4, 6] = np.nan
        elif change == "inf covariate":
            covariates = np.array([[*AGE[:9], np.inf]]).T
        elif change == "confounded":  # age, then a column equal to the batch indicator
            covariates = np.column_stack([AGE, [b == 2 for b in BATCH]]).astype(float)
        elif change == "missing covariate":
            covariates = design_from({"age": AGE}, {"sex"})
        elif change == "batch count":
            batch = batch[:9]
        elif change == "one batch":
            batch = [1] * 10
        elif change == "unknown reference":
            kwargs["reference_batch"] = 7
        harmonise(values, batch, covariates, **kwargs)


def test_a_corrupt_model_is_refused(data: np.ndarray) -> None:
    text = learn(data, BATCH).to_json()
    with pytest.raises(CombatError, match="not a ComBat model"):
        CombatModel.from_json(text.replace('"gamma_star": [[', '"gamma_star": [[[1], '))
    with pytest.raises(CombatError, match="not a ComBat model"):
        CombatModel.from_json("{}")
