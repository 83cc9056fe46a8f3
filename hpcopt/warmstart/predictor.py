"""Predict a fit's parameters from its experimental conditions, with an uncertainty.

Inputs are the numeric conditions (standardised over the history); outputs are the
free parameters mapped to [0, 1] over their bounds (:class:`ParamAxes`: in log space
for log-scale parameters and for positive bounds spanning two decades or more), so
every uncertainty is a fraction of the parameter's range.

The ensemble: a random forest (one multi-output forest) and gradient boosting (one
model per parameter), both on the residuals of a linear trend in the conditions
(``trend = "linear"``; trees alone interpolate in steps and extrapolate flat, a
trend carries smooth relations to nearby new conditions) or on the outputs
themselves (``trend = "none"``).  Prediction = trend + mean of forest and boosting;
uncertainty per parameter = standard deviation of the mixture {forest trees, boosting}
(equal weight to forest and boosting), never below the forest's out-of-bag error.

:func:`predict` returns no point (``ok = False`` and the reason) when the history has
fewer than `min_history` usable fits, the new conditions lie outside the history's
range by more than `range_margin` of that range, or the mean uncertainty exceeds the
confidence threshold.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .history import History

#: positive bounds spanning this ratio or more are learnt in log space
LOG_SPAN = 100.0
#: smallest standard deviation of a condition used for standardisation (relative)
_TINY = 1e-12


@dataclass(frozen=True)
class ParamAxes:
    """The [0, 1] coordinates of the free parameters (log space where it fits)."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    log: np.ndarray     # bool per parameter
    free: np.ndarray    # bool per parameter (lower < upper)

    @classmethod
    def from_specs(cls, specs: Sequence) -> "ParamAxes":
        """From hpcopt.sweep.starts.ParamSpec objects (fixed ones: lower == upper)."""
        lower = np.array([s.lower for s in specs], dtype=np.float64)
        upper = np.array([s.upper for s in specs], dtype=np.float64)
        log = np.array([(getattr(s, "scale", "linear") == "log" or
                         (s.lower > 0 and s.upper >= LOG_SPAN * s.lower)) and s.lower > 0
                        for s in specs])
        return cls(tuple(s.name for s in specs), lower, upper, log, lower < upper)

    def _t(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.where(self.log, np.log(np.where(self.log, x, 1.0)), x)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """(n, n_params) values -> (n, n_free) coordinates (nan where a log value is <= 0)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        lo, hi = self._t(self.lower), self._t(self.upper)
        with np.errstate(all="ignore"):
            t = np.where(self.log & (x <= 0), np.nan, self._t(x))
            u = (t - lo) / np.where(self.free, hi - lo, 1.0)
        return u[:, self.free]

    def from_unit(self, u: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """(n, n_free) coordinates -> (n, n_params) values within the bounds; fixed
        parameters (and free ones if `base` is None) take `base` or the lower bound."""
        u = np.clip(np.atleast_2d(np.asarray(u, dtype=np.float64)), 0.0, 1.0)
        out = np.tile(self.lower if base is None else np.asarray(base, np.float64), (len(u), 1))
        lo, hi = self._t(self.lower)[self.free], self._t(self.upper)[self.free]
        t = lo + u * (hi - lo)
        log = self.log[self.free]
        out[:, self.free] = np.where(log, np.exp(np.where(log, t, 0.0)), t)
        return np.clip(out, self.lower, self.upper)


class EnsemblePredictor:
    """Random forest + gradient boosting on standardised conditions (see module docstring)."""

    def __init__(self, *, n_trees: int = 100, n_boost: int = 50, trend: str = "linear",
                 seed: int = 0):
        if trend not in ("linear", "none"):
            raise ValueError(f"trend must be 'linear' or 'none', got {trend!r}")
        self.n_trees, self.n_boost, self.trend, self.seed = int(n_trees), int(n_boost), trend, seed

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "EnsemblePredictor":
        """Train on conditions X (n, c) and outputs Y (n, k)."""
        from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
        from sklearn.linear_model import Ridge

        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y) or len(X) < 2:
            raise ValueError(f"need X (n, c) and Y (n, k) with n >= 2, got {X.shape}, {Y.shape}")
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > _TINY * np.maximum(1.0, np.abs(self.mean_)), scale, 1.0)
        Z = (X - self.mean_) / self.scale_
        seed = int(self.seed) % 2**32
        if self.trend == "linear":
            self.linear_ = Ridge(alpha=0.1).fit(Z, Y)
            R = Y - self.linear_.predict(Z)
        else:
            self.linear_ = None
            R = Y
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few samples: some never out of bag
            self.forest_ = RandomForestRegressor(n_estimators=self.n_trees, oob_score=True,
                                                 random_state=seed).fit(Z, R)
            oob = np.asarray(self.forest_.oob_prediction_, dtype=np.float64).reshape(R.shape)
            self.oob_error_ = np.sqrt(np.nan_to_num(np.nanmean((oob - R) ** 2, axis=0), nan=np.inf))
        self.boost_ = [GradientBoostingRegressor(n_estimators=self.n_boost, max_depth=2,
                                                 learning_rate=0.1, random_state=seed).fit(Z, R[:, j])
                       for j in range(R.shape[1])]
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean (k,), standard deviation (k,)) at the conditions x (c,)."""
        z = ((np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_).reshape(1, -1)
        base = self.linear_.predict(z)[0] if self.linear_ is not None else 0.0
        trees = np.array([t.predict(z)[0] for t in self.forest_.estimators_]).reshape(
            len(self.forest_.estimators_), -1)
        forest = trees.mean(axis=0)
        boost = np.array([b.predict(z)[0] for b in self.boost_])
        mean = base + (forest + boost) / 2
        # mixture of two equal-weight components: the forest (its trees' spread) and boosting
        sigma = np.sqrt(0.5 * trees.var(axis=0) + ((forest - boost) / 2) ** 2)
        return mean, np.maximum(sigma, self.oob_error_)


@dataclass(frozen=True)
class Prediction:
    """A predicted start point, or why there is none."""

    ok: bool
    reason: str                        # "" when ok
    point: np.ndarray | None           # (n_params,) within the bounds, fixed values kept
    unit_mean: np.ndarray | None       # (n_free,) in [0, 1] coordinates (unclipped)
    unit_sigma: np.ndarray | None      # (n_free,) fraction of each parameter's range
    uncertainty: float                 # mean of unit_sigma (nan when not predicted)
    n_history: int                     # usable fits
    features: tuple[str, ...] = ()     # conditions used as inputs
    ignored: tuple[str, ...] = ()      # given conditions the history does not have

    def summary(self) -> dict[str, Any]:
        """JSON-able description (for the result file and logs)."""
        return {"used": self.ok, "reason": self.reason, "n_history": self.n_history,
                "uncertainty": None if math.isnan(self.uncertainty) else self.uncertainty,
                "features": list(self.features), "ignored": list(self.ignored),
                "point": None if self.point is None else self.point.tolist(),
                "unit_sigma": None if self.unit_sigma is None else self.unit_sigma.tolist()}


def predict(history: History, conditions: Mapping[str, Any], specs: Sequence, *,
            base: np.ndarray | None = None, min_history: int = 5,
            confidence_threshold: float = 0.25, range_margin: float = 0.1,
            n_trees: int = 100, n_boost: int = 50, trend: str = "linear",
            seed: int = 0) -> Prediction:
    """Predict the best parameters for `conditions` from `history` (see module docstring).

    `specs`: the campaign's ParamSpecs (bounds, scale, fixed values) in the order of
    the parameter vector; `base`: values of fixed parameters (default: their spec value).
    """
    axes = ParamAxes.from_specs(specs)
    base = np.array([s.lower for s in specs], np.float64) if base is None else base

    def no(reason: str, n: int = 0, features=(), ignored=(), unc=math.nan) -> Prediction:
        return Prediction(False, reason, None, None, None, unc, n, tuple(features), tuple(ignored))

    given = {k: float(v) for k, v in conditions.items() if not isinstance(v, str)}
    features = [k for k in history.condition_names if k in given]
    ignored = sorted(k for k in given if k not in history.condition_names)
    if len(history) == 0:
        return no(f"no fits of {history.model} in the history yet", ignored=ignored)
    if list(history.param_names) != list(axes.names):
        order = [history.param_names.index(n) if n in history.param_names else -1
                 for n in axes.names]
        if min(order) < 0:
            return no(f"the history's fits of {history.model} lack parameters "
                      f"{[n for n, o in zip(axes.names, order) if o < 0]}", len(history))
        params = history.params[:, order]
    else:
        params = history.params
    if not features:
        return no("no condition in common with the history (history has "
                  f"{list(history.condition_names) or 'none'}; given {sorted(given) or 'none'})",
                  len(history), ignored=ignored)
    cols = [history.condition_names.index(k) for k in features]
    X = history.conditions[:, cols]
    U = axes.to_unit(params)
    usable = np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(U), axis=1) \
        & np.isfinite(history.chi2)
    X, U, n = X[usable], U[usable], int(usable.sum())
    if n < min_history:
        return no(f"{n} usable fits in the history (min_history = {min_history})", n,
                  features, ignored)
    x = np.array([given[k] for k in features])
    lo, hi = X.min(axis=0), X.max(axis=0)
    slack = range_margin * (hi - lo)
    outside = [f"{k} = {v:g} (history {a:g}..{b:g})" for k, v, a, b, s
               in zip(features, x, lo, hi, slack) if v < a - s or v > b + s]
    if outside:
        return no("conditions outside the history's range: " + ", ".join(outside), n,
                  features, ignored)
    model = EnsemblePredictor(n_trees=n_trees, n_boost=n_boost, trend=trend, seed=seed).fit(X, U)
    mean, sigma = model.predict(x)
    uncertainty = float(np.mean(sigma)) if sigma.size else 0.0
    if not uncertainty <= confidence_threshold:
        return no(f"predicted uncertainty {uncertainty:.3g} of the parameter ranges is above "
                  f"confidence_threshold = {confidence_threshold:g}", n, features, ignored,
                  uncertainty)
    point = axes.from_unit(mean, base)[0]
    return Prediction(True, "", point, mean, sigma, uncertainty, n, tuple(features),
                      tuple(ignored))
