"""What a replica samples: continuous energies (random-walk moves) or the 2D Ising model.

A problem is immutable and shared by all replicas of a rank.  It knows its state
layout (for checkpoints and sample tables), its start state, its energy and the
observables recorded per round.  The Metropolis moves themselves live in
replica.py (continuous) and hpcopt/kernels/ising.py (lattice).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import ConfigError, HpcoptError
from ..imports import load_callable
from ..kernels import ising
from .config import (FitSpec, FunctionSpec, GaussianMixtureSpec, IsingSpec, MoveSpec,
                     ProblemSpec, RastriginSpec)


class EnergyError(HpcoptError):
    """The energy function failed; the message says how (the exception is the cause).

    SystemExit and KeyboardInterrupt raised by an energy become this too: user code
    must not decide the job's exit status or leave the other ranks waiting.
    """


def describe_exception(exc: BaseException) -> str:
    """'SystemExit(0)', 'ValueError: bad x': how an exception reads in one line."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ContinuousProblem:
    """A float64 state vector with energy `energy_fn(x) -> float` and Gaussian proposals.

    Non-finite energies (nan, +-inf) count as +inf: such proposals are always rejected.
    """

    kind = "continuous"
    state_dtype = np.dtype(np.float64)
    observable_names: tuple[str, ...] = ()

    def __init__(self, name: str, energy_fn: Callable[[np.ndarray], float], *, x0=None, step=1.0,
                 lower=None, upper=None, boundary: str = "reflect", step_scaling: str = "fixed",
                 param_names=None, dim: int | None = None):
        if dim is None:
            if x0 is None:
                raise ValueError("give x0 or dim")
            dim = len(x0)
        self.name = name
        self.energy_fn = energy_fn
        self.dim = int(dim)
        self.state_shape = (self.dim,)
        self.x0 = None if x0 is None else self._vec(x0, "x0")
        self.step = self._vec(np.broadcast_to(np.asarray(step, float), (self.dim,)), "step")
        self.lower = self._vec(np.broadcast_to(-np.inf if lower is None else lower, (self.dim,)), "lower")
        self.upper = self._vec(np.broadcast_to(np.inf if upper is None else upper, (self.dim,)), "upper")
        if not (np.all(self.step > 0) and np.all(self.upper > self.lower)):
            raise ValueError("need step > 0 and upper > lower")
        if boundary not in ("reflect", "reject") or step_scaling not in ("fixed", "sqrt-t"):
            raise ValueError(f"unknown boundary {boundary!r} or step_scaling {step_scaling!r}")
        self.boundary = boundary
        self.step_scaling = step_scaling
        self.bounded = bool(np.any(np.isfinite(self.lower)) or np.any(np.isfinite(self.upper)))
        if self.x0 is None and not (np.all(np.isfinite(self.lower)) and np.all(np.isfinite(self.upper))):
            raise ValueError("a random start (no x0) needs finite bounds")
        self.param_names = tuple(param_names) if param_names else tuple(f"x{i}" for i in range(self.dim))

    def _vec(self, v, what: str) -> np.ndarray:
        a = np.array(v, dtype=np.float64).reshape(-1)
        if a.shape != (self.dim,) or np.any(np.isnan(a)):
            raise ValueError(f"{what} must hold {self.dim} numbers, got {v!r}")
        a.setflags(write=False)
        return a

    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        """x0, or uniform within the bounds (drawn from the replica's own stream)."""
        if self.x0 is not None:
            return self.x0.copy()
        return self.lower + (self.upper - self.lower) * rng.random(self.dim)

    def energy(self, x: np.ndarray) -> float:
        """The energy at `x` (non-finite: +inf); any failure of the function is an EnergyError."""
        try:
            value = self.energy_fn(x)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: BLE001 - user code
            raise EnergyError(f"the energy {self.name!r} raised {describe_exception(exc)}") from exc
        try:
            e = float(value)
        except (TypeError, ValueError):
            raise EnergyError(f"the energy {self.name!r} must return a number, got "
                              f"{type(value).__name__}") from None
        return e if math.isfinite(e) else math.inf

    def observables(self, x: np.ndarray) -> np.ndarray:
        return np.empty(0)

    def fold(self, y: np.ndarray) -> np.ndarray:
        """Reflect a proposal back into the box (a symmetric map: detailed balance holds)."""
        lo, hi = self.lower, self.upper
        if np.all((y >= lo) & (y <= hi)):
            return y
        y = y.copy()
        both = np.isfinite(lo) & np.isfinite(hi)
        width = hi - lo
        t = np.mod(y[both] - lo[both], 2 * width[both])
        y[both] = lo[both] + np.where(t <= width[both], t, 2 * width[both] - t)
        below = ~both & (y < lo)
        y[below] = 2 * lo[below] - y[below]
        above = ~both & (y > hi)
        y[above] = 2 * hi[above] - y[above]
        return y

    def step_factor(self, temperature: float, t_min: float) -> float:
        """Proposal scale multiplier at `temperature` (sqrt(T / T_min) with step_scaling = sqrt-t)."""
        return math.sqrt(temperature / t_min) if self.step_scaling == "sqrt-t" else 1.0


class IsingProblem:
    """2D Ising model, L x L periodic, J = 1, h = 0; state: int8 spins; moves: lattice sweeps."""

    kind = "ising"
    state_dtype = np.dtype(np.int8)
    observable_names = ("magnetisation",)
    param_names = None

    def __init__(self, L: int):
        if L < 2:
            raise ValueError(f"L must be >= 2, got {L}")
        self.name = "ising"
        self.L = int(L)
        self.state_shape = (self.L, self.L)
        self.n_sites = self.L * self.L

    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        """A random (infinite temperature) lattice from the replica's stream."""
        return (2 * rng.integers(0, 2, size=self.state_shape) - 1).astype(np.int8)

    def energy(self, spins: np.ndarray) -> float:
        return float(ising.energy(spins))

    def observables(self, spins: np.ndarray) -> np.ndarray:
        return np.array([float(ising.magnetisation(spins))])

    def step_factor(self, temperature: float, t_min: float) -> float:
        return 1.0


Problem = ContinuousProblem | IsingProblem


# -- built-in energies -------------------------------------------------------------------------

class GaussianMixtureEnergy:
    """E(x) = -log sum_k w_k N(x; mu_k, sigma^2 I): normalised, so Z(beta = 1) = 1."""

    def __init__(self, centers, weights, sigma: float):
        self.centers = np.array(centers, dtype=np.float64)
        self.weights = np.array(weights, dtype=np.float64) / np.sum(weights)
        self.sigma = float(sigma)
        d = self.centers.shape[1]
        self._log_w = np.log(self.weights) - 0.5 * d * math.log(2 * math.pi * self.sigma ** 2)
        self._inv2s2 = 0.5 / self.sigma ** 2

    def __call__(self, x: np.ndarray) -> float:
        a = self._log_w - self._inv2s2 * ((self.centers - x) ** 2).sum(axis=1)
        m = a.max()
        return -(m + math.log(np.exp(a - m).sum()))

    def mode_of(self, x: np.ndarray) -> int:
        """Index of the nearest centre (which mode a sample belongs to)."""
        return int(np.argmin(((self.centers - np.asarray(x)) ** 2).sum(axis=-1)))


class RastriginEnergy:
    """E(x) = A d + sum(x_i^2 - A cos(2 pi x_i)); global minimum 0 at x = 0."""

    def __init__(self, A: float = 10.0):
        self.A = float(A)

    def __call__(self, x: np.ndarray) -> float:
        return float(self.A * x.size + np.sum(x * x - self.A * np.cos(2 * np.pi * x)))


# -- from a config -----------------------------------------------------------------------------

def make_problem(spec: ProblemSpec, source: str = "") -> Problem:
    """Build the problem of a parsed [problem] table; errors name the key and the file."""
    if isinstance(spec, IsingSpec):
        return IsingProblem(spec.L)
    if isinstance(spec, GaussianMixtureSpec):
        energy = GaussianMixtureEnergy(spec.centers, spec.weights, spec.sigma)
        problem = _continuous("gaussian-mixture", energy, spec.moves, None)
    elif isinstance(spec, RastriginSpec):
        problem = _continuous("rastrigin", RastriginEnergy(spec.A), spec.moves, None)
    elif isinstance(spec, FunctionSpec):
        fn = load_callable(spec.function, key="problem.function", source=source,
                           base_dir=spec.base_dir)
        problem = _continuous(spec.function, fn, spec.moves, spec.names)
    elif isinstance(spec, FitSpec):
        problem = _fit_problem(spec, source)
    else:
        raise TypeError(f"unknown problem spec {spec!r}")
    if problem.x0 is not None:
        try:
            start_energy = problem.energy(problem.x0.copy())
        except EnergyError as exc:
            raise ConfigError(f"at the start point {exc}", key="problem.x0",
                              source=source) from None
        if not math.isfinite(start_energy):
            raise ConfigError("the energy at the start point is not finite", key="problem.x0",
                              source=source)
    return problem


def _continuous(name: str, fn, moves: MoveSpec, names) -> ContinuousProblem:
    return ContinuousProblem(name, fn, x0=moves.x0, step=moves.step, lower=moves.lower,
                             upper=moves.upper, boundary=moves.boundary,
                             step_scaling=moves.step_scaling, param_names=names,
                             dim=len(moves.step))


def _fit_problem(spec: FitSpec, source: str) -> ContinuousProblem:
    try:  # imported lazily: the model registry belongs to the fitting code
        from ..models.registry import build_problem
    except ImportError as exc:
        raise ConfigError(f"fit posteriors need hpcopt.models.registry ({exc})", key="problem.model",
                          source=source) from None
    try:
        fit = build_problem(spec.model, spec.data, source=source, base_dir=spec.base_dir,
                            param_names=spec.names)
    except ConfigError as exc:   # the registry names [model]/[parameters] keys of a sweep
        raise ConfigError(exc.problem, key="problem.model", source=source) from None
    names = tuple(fit.param_names)
    if len(names) != len(spec.moves.step):
        raise ConfigError(f"model {spec.model!r} has {len(names)} parameters ({', '.join(names)}), "
                          f"x0 has {len(spec.moves.step)} values", key="problem.x0", source=source)

    def half_chi2(x: np.ndarray) -> float:
        return 0.5 * float(fit.chi2(x))

    problem = _continuous(f"fit:{spec.model}", half_chi2, spec.moves, names)
    problem.fit = fit  # for reports (model curves at the best state)
    return problem
