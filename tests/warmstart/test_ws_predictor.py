"""The predictor: coordinates, learning a smooth relation and transferring it to nearby
conditions, and every reason to decline (fallback)."""

import functools
import math

import numpy as np
import pytest

from hpcopt.sweep.starts import ParamSpec
from hpcopt.warmstart.history import History
from hpcopt.warmstart.predictor import EnsemblePredictor, ParamAxes
from hpcopt.warmstart.predictor import predict as full_predict

# smaller ensembles than the defaults keep the tests fast; the behaviour is the same
predict = functools.partial(full_predict, n_trees=40, n_boost=30)

SPECS = (ParamSpec("D0", 1e2, 1e5, scale="log"), ParamSpec("alpha", -1.5, 0.5),
         ParamSpec("gamma", 1e-6, 1e-3),            # positive, 3 decades: learnt in log space
         ParamSpec("phi0", value=10.0))             # fixed


def truth(T, c):
    """A smooth relation (Arrhenius-like D0, alpha linear-ish, gamma power law)."""
    return np.array([6000.0 * math.exp(0.03 * (T - 40) - 2.0 * c), -0.5 + 0.01 * (T - 40) + 0.8 * c,
                     1e-4 * (1 + 5 * c) ** 2, 10.0])


def history(conds, noise=0.0, seed=0, model="m"):
    rng = np.random.default_rng(seed)
    P = np.array([truth(T, c) for T, c in conds])
    if noise:
        P[:, 1] += rng.normal(0, noise, len(P))
        P[:, 0] *= np.exp(rng.normal(0, 3 * noise, len(P)))
    n = len(P)
    return History(model, ("D0", "alpha", "gamma", "phi0"), ("concentration", "temperature"),
                   P, np.array([[c, T] for T, c in conds]).reshape(n, 2), np.ones(n), np.ones(n),
                   np.arange(n), ("",) * n, ("",) * n)


def grid_conditions(exclude=None):
    out = [(T, c) for T in np.linspace(20, 60, 6) for c in np.linspace(0.02, 0.2, 5)]
    return [p for p in out if exclude is None or not exclude(*p)]


def unit_error(pred_point, T, c):
    axes = ParamAxes.from_specs(SPECS)
    return np.abs(axes.to_unit(pred_point)[0] - axes.to_unit(truth(T, c))[0])


def test_axes_round_trip_log_where_it_fits():
    axes = ParamAxes.from_specs(SPECS)
    assert axes.log.tolist() == [True, False, True, False]
    assert axes.free.tolist() == [True, True, True, False]
    x = np.array([[1e3, 0.0, 1e-5, 10.0], [1e2, -1.5, 1e-3, 10.0]])
    u = axes.to_unit(x)
    np.testing.assert_allclose(u, [[1 / 3, 0.75, 1 / 3], [0.0, 0.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(axes.from_unit(u, x[0]), x, rtol=1e-12)
    # outside [0, 1]: clipped to the bounds; non-positive values on a log axis: nan
    np.testing.assert_allclose(axes.from_unit([[2.0, -1.0, 0.5]], x[0])[0, :2], [1e5, -1.5])
    assert np.isnan(axes.to_unit([[-1.0, 0.0, 1e-5, 10.0]])[0, 0])


@pytest.mark.parametrize("trend", ["linear", "none"])
def test_transfer_to_nearby_new_conditions(trend):
    """Train without the middle of the (T, c) box; predict inside the hole and between points."""
    hole = lambda T, c: 32 < T < 48 and 0.07 < c < 0.15
    h = history(grid_conditions(exclude=hole))
    tol = 0.03 if trend == "linear" else 0.12   # fraction of each parameter's range
    for T, c in [(40.0, 0.11), (35.0, 0.08), (45.0, 0.14), (27.0, 0.05), (52.0, 0.17)]:
        p = predict(h, {"temperature": T, "concentration": c}, SPECS, seed=1, trend=trend)
        assert p.ok, p.reason
        assert p.point[3] == 10.0                       # fixed parameter kept
        err = unit_error(p.point, T, c)
        assert np.all(err < tol), (T, c, err)
        assert p.features == ("concentration", "temperature")


def test_more_history_and_less_noise_mean_smaller_uncertainty():
    few = history(grid_conditions()[::4])
    many = history(grid_conditions())
    noisy = history(grid_conditions(), noise=0.1, seed=3)
    at = {"temperature": 41.0, "concentration": 0.1}
    u = {k: predict(h, at, SPECS, min_history=2, seed=0).uncertainty
         for k, h in (("few", few), ("many", many), ("noisy", noisy))}
    assert u["many"] < u["noisy"]
    assert u["many"] < u["few"]


def test_declines_when_history_is_too_small():
    h = history(grid_conditions()[:4])
    p = predict(h, {"temperature": 30.0, "concentration": 0.05}, SPECS, min_history=5)
    assert not p.ok and "4 usable fits" in p.reason and p.point is None
    p = predict(history([]), {"temperature": 30.0}, SPECS)
    assert not p.ok and "no fits" in p.reason


def test_declines_outside_the_range_of_the_history():
    h = history([(T, c) for T in (20.0, 30.0, 40.0) for c in (0.05, 0.1, 0.15)])
    ok = predict(h, {"temperature": 41.0, "concentration": 0.1}, SPECS)   # within the 10% margin
    assert ok.ok, ok.reason
    p = predict(h, {"temperature": 60.0, "concentration": 0.1}, SPECS)
    assert not p.ok and "temperature = 60" in p.reason and "outside" in p.reason
    p = predict(h, {"temperature": 60.0, "concentration": 0.1}, SPECS, range_margin=3.0)
    assert p.ok


def test_declines_when_too_uncertain():
    noisy = history(grid_conditions(), noise=0.3, seed=1)
    at = {"temperature": 41.0, "concentration": 0.1}
    loose = predict(noisy, at, SPECS, confidence_threshold=1.0)
    assert loose.ok
    tight = predict(noisy, at, SPECS, confidence_threshold=loose.uncertainty / 2)
    assert not tight.ok and "above confidence_threshold" in tight.reason
    assert tight.uncertainty == pytest.approx(loose.uncertainty)


def test_declines_without_common_conditions_or_parameters():
    h = history(grid_conditions())
    p = predict(h, {"pressure": 1.0}, SPECS)
    assert not p.ok and "no condition in common" in p.reason and p.ignored == ("pressure",)
    p = predict(h, {"temperature": 40.0, "concentration": 0.1, "pressure": 1.0}, SPECS)
    assert p.ok and p.ignored == ("pressure",)
    other = SPECS + (ParamSpec("extra", 0.0, 1.0),)
    p = predict(h, {"temperature": 40.0}, other)
    assert not p.ok and "extra" in p.reason


def test_string_conditions_are_not_inputs():
    h = history(grid_conditions())
    p = predict(h, {"temperature": 40.0, "concentration": 0.1, "sample": "silica"}, SPECS)
    assert p.ok and "sample" not in p.ignored + p.features


def test_ensemble_is_deterministic_given_the_seed():
    rng = np.random.default_rng(0)
    X, Y = rng.random((12, 2)), rng.random((12, 3))
    a = EnsemblePredictor(seed=5).fit(X, Y).predict(X[0])
    b = EnsemblePredictor(seed=5).fit(X, Y).predict(X[0])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError):
        EnsemblePredictor(trend="cubic")
