"""Warm start sampling and the combined design: determinism, bounds, design fraction."""

import math

import numpy as np
import pytest

from hpcopt.sweep.starts import ParamSpec, StartDesign
from hpcopt.warmstart.predictor import ParamAxes, Prediction
from hpcopt.warmstart.starts import WarmStartDesign, combine, sample_starts

SPECS = (ParamSpec("D0", 1e2, 1e5, scale="log", points=4), ParamSpec("alpha", -1.5, 0.5, points=5),
         ParamSpec("phi0", value=10.0))


def prediction(unit_mean=(0.5, 0.9), unit_sigma=(0.05, 0.2)):
    axes = ParamAxes.from_specs(SPECS)
    mean = np.array(unit_mean, float)
    point = axes.from_unit(mean, np.array([1e2, -1.5, 10.0]))[0]
    return Prediction(True, "", point, mean, np.array(unit_sigma, float),
                      float(np.mean(unit_sigma)), 10)


def test_first_start_is_the_prediction_then_samples_in_bounds():
    pred = prediction()
    pts = sample_starts(pred, SPECS, 50, seed=3)
    assert pts.shape == (50, 3)
    np.testing.assert_allclose(pts[0], pred.point)
    lo, hi = np.array([1e2, -1.5, 10.0]), np.array([1e5, 0.5, 10.0])
    assert np.all(pts >= lo) and np.all(pts <= hi)
    assert np.all(pts[:, 2] == 10.0)
    # spread follows the predicted uncertainty: D0 (log) tight, alpha wide (clipped at 0.5)
    u = ParamAxes.from_specs(SPECS).to_unit(pts)
    assert 0.02 < np.std(u[1:, 0]) < 0.09
    assert np.std(u[1:, 1]) > np.std(u[1:, 0])
    assert np.any(pts[:, 1] == 0.5)


def test_sampling_is_deterministic_given_the_seed():
    pred = prediction()
    a, b = sample_starts(pred, SPECS, 8, seed=7), sample_starts(pred, SPECS, 8, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_starts(pred, SPECS, 8, seed=8))
    # a longer list starts with the shorter one's first point (the prediction)
    np.testing.assert_array_equal(sample_starts(pred, SPECS, 1, seed=7), a[:1])


def test_no_prediction_gives_no_starts():
    no = Prediction(False, "history too small", None, None, None, math.nan, 2)
    assert sample_starts(no, SPECS, 8, seed=0).shape == (0, 3)


@pytest.mark.parametrize("kind", ["sobol", "lhs", "random"])
@pytest.mark.parametrize("fraction", [0.5, 0.25, 1.0, 0.3])
def test_design_fraction_is_respected(kind, fraction):
    design = StartDesign(kind, SPECS, 20, seed=2)
    warm = sample_starts(prediction(), SPECS, 6, seed=1)
    d = WarmStartDesign(design, warm, fraction)
    assert d.n_warm == 6 and d.n_design == math.ceil(fraction * 20) and d.n_tasks == 6 + d.n_design
    pts = d.points(0, d.n_tasks)
    np.testing.assert_array_equal(pts[:6], warm)
    np.testing.assert_array_equal(pts[6:], design.points(0, d.n_design))
    assert [d.origin(i) for i in range(d.n_tasks)] == ["warm"] * 6 + ["design"] * d.n_design
    for i in range(d.n_tasks):   # point(i) is the same function as points()
        np.testing.assert_array_equal(d.point(i), pts[i])
    np.testing.assert_array_equal(d.points(4, 9), pts[4:9])
    assert d.param_names == design.param_names and d.dim == design.dim == 2
    np.testing.assert_array_equal(d.lower, design.lower)


def test_without_warm_starts_it_is_the_normal_design():
    design = StartDesign("sobol", SPECS, 16, seed=2)
    d = WarmStartDesign(design, np.zeros((0, 3)), 0.5)
    assert d.n_tasks == 16 and d.n_warm == 0 and d.kind == "sobol"
    np.testing.assert_array_equal(d.points(0, 16), design.points(0, 16))


def test_grid_subset_is_spread_over_the_grid_and_distinct():
    design = StartDesign("grid", SPECS)              # 4 x 5 grid
    d = WarmStartDesign(design, sample_starts(prediction(), SPECS, 3, seed=0), 0.5)
    assert d.n_design == 10
    idx = [d.design_index(i) for i in range(3, d.n_tasks)]
    assert len(set(idx)) == 10 and all(0 <= j < 20 for j in idx)
    sub = d.points(3, d.n_tasks)
    assert len(np.unique(sub[:, 0])) == 4 and len(np.unique(sub[:, 1])) >= 4   # every D0 row
    full = WarmStartDesign(design, sample_starts(prediction(), SPECS, 3, seed=0), 1.0)
    np.testing.assert_array_equal(full.points(3, 23), design.points(0, 20))


def test_combine_and_validation():
    design = StartDesign("sobol", SPECS, 8, seed=0)
    warm = sample_starts(prediction(), SPECS, 2, seed=0)
    pts, origin = combine(design, warm, 0.5)
    assert pts.shape == (6, 3) and origin == ["warm", "warm"] + ["design"] * 4
    with pytest.raises(ValueError, match="design_fraction"):
        WarmStartDesign(design, warm, 0.0)
    with pytest.raises(ValueError, match="finite"):
        WarmStartDesign(design, np.full((1, 3), np.nan), 0.5)
    with pytest.raises(IndexError):
        WarmStartDesign(design, warm, 0.5).point(6)
    # warm starts outside the bounds are clipped into them
    far = WarmStartDesign(design, [[1e9, -9.0, 10.0]], 0.5)
    np.testing.assert_array_equal(far.point(0), [1e5, -1.5, 10.0])
