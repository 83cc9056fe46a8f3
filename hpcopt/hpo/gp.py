"""A Gaussian-process sampler on scikit-learn, used for ``sampler = "gp"`` when torch
(needed by Optuna's own GPSampler) is not installed.

Numeric parameters (float, int, log or not) are modelled jointly: a Matern-5/2 GP with
automatic relevance determination on the unit cube, expected improvement maximized over
random and local candidates. Trials still running are included with the mean observed
value (a constant liar), so concurrent asks spread out. Categorical parameters and the
first `n_startup_trials` trials are sampled at random. The fit is cubic in the number of
points, so on a long history it uses at most `max_fit_points` of them: the best half and
a random draw of the rest (a 10,000-trial study draws in about the time of a 256-trial one).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import norm


class SklearnGPSampler(BaseSampler):
    """GP + expected improvement over the numeric parameters (see module docstring)."""

    def __init__(self, *, seed: int | None = None, n_startup_trials: int = 10,
                 n_candidates: int = 2048, max_fit_points: int = 256):
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._random = RandomSampler(seed=seed)
        self._space = IntersectionSearchSpace()
        self._n_startup = n_startup_trials
        self._n_candidates = n_candidates
        self._max_fit = max_fit_points

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def reseed(self, seed: int) -> None:
        """Restart the random state at `seed` (hpcopt reseeds before every draw)."""
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return {name: d for name, d in self._space.calculate(study).items()
                if isinstance(d, (FloatDistribution, IntDistribution)) and d.low < d.high}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        names = sorted(search_space)
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if all(n in t.params for n in names)]
        if len(done) < max(self._n_startup, 2):
            return {}
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        if len(done) > self._max_fit:
            order = np.argsort([sign * t.value for t in done])
            best, rest = order[:self._max_fit // 2], order[self._max_fit // 2:]
            rest = self._rng.choice(rest, self._max_fit - len(best), replace=False)
            done = [done[i] for i in sorted(np.concatenate([best, rest]))]
        x = np.array([[_to_unit(t.params[n], search_space[n]) for n in names] for t in done])
        y = sign * np.array([t.value for t in done], dtype=float)
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if t.number != trial.number and all(n in t.params for n in names)]
        if running:   # constant liar: pending points get the mean observed value
            x = np.vstack([x, [[_to_unit(t.params[n], search_space[n]) for n in names]
                               for t in running]])
            y = np.concatenate([y, np.full(len(running), y.mean())])
        best = float(np.min(y[:len(done)]))
        gp = self._fit(x, y)
        cand = self._candidates(x[:len(done)][np.argsort(y[:len(done)])[:5]], len(names))
        mu, sd = gp.predict(cand, return_std=True)
        sd = np.maximum(sd, 1e-12)
        z = (best - mu) / sd
        ei = sd * (z * norm.cdf(z) + norm.pdf(z))
        u = cand[int(np.argmax(ei))]
        return {n: _from_unit(v, search_space[n]) for n, v in zip(names, u)}

    def _fit(self, x: np.ndarray, y: np.ndarray):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
        kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                  * Matern(length_scale=np.full(x.shape[1], 0.3), length_scale_bounds=(1e-2, 1e2),
                           nu=2.5)
                  + WhiteKernel(1e-6, (1e-9, 1e-1)))
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True,
                                      random_state=int(self._rng.integers(2**31)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")           # convergence warnings at the bounds
            gp.fit(x, y)
        return gp

    def _candidates(self, best_x: np.ndarray, dim: int) -> np.ndarray:
        uniform = self._rng.random((self._n_candidates, dim))
        local = np.clip(np.repeat(best_x, 64, axis=0)
                        + self._rng.normal(0.0, 0.05, (64 * len(best_x), dim)), 0.0, 1.0)
        return np.vstack([uniform, local])

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)


def _to_unit(value: float, d: FloatDistribution | IntDistribution) -> float:
    lo, hi, v = float(d.low), float(d.high), float(value)
    if d.log:
        lo, hi, v = math.log(lo), math.log(hi), math.log(v)
    return (v - lo) / (hi - lo)


def _from_unit(u: float, d: FloatDistribution | IntDistribution) -> float | int:
    lo, hi = float(d.low), float(d.high)
    v = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if d.log else lo + u * (hi - lo)
    if d.step is not None:
        v = d.low + round((v - d.low) / d.step) * d.step
    v = min(max(v, d.low), d.high)
    return int(round(v)) if isinstance(d, IntDistribution) else float(v)
