"""Curve fitting y = f(x, params) (+ optional sigma) as a :class:`FitProblem`.

The model is one of
* a built-in NIST formula (:class:`~hpcopt.models.nist.NistModel`): chi2 runs in the
  cached compiled kernel, residuals and model values in numpy;
* a numba-compiled user function ``f(x, params) -> y`` (a numba dispatcher): chi2
  calls it inside a compiled loop;
* any other Python callable ``f(x, params) -> y``: numpy throughout (slower).

Parameters are float64 vectors in ``param_names`` order.  A model value that is not
finite gives chi2 = inf and non-finite residuals (least_squares then shrinks its step).
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .nist import NistModel, NistProblem, get_model


def _is_numba_dispatcher(f) -> bool:
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba is a dependency
        return False
    return isinstance(f, Dispatcher)


class CurveProblem:
    """Weighted least squares of a curve model against (x, y[, sigma])."""

    n_nuisance = 0

    def __init__(self, x: np.ndarray, y: np.ndarray, sigma: np.ndarray | None = None, *,
                 model: NistModel | Callable, param_names: Sequence[str], name: str = ""):
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        if self.y.ndim != 1 or self.x.shape[:1] != self.y.shape:
            raise ValueError(f"x {self.x.shape} and y {self.y.shape} do not match")
        self.sigma = None if sigma is None else np.ascontiguousarray(sigma, dtype=np.float64)
        self.w = np.ones_like(self.y) if self.sigma is None else 1.0 / self.sigma
        self.param_names = tuple(param_names)
        self.n_points = int(self.y.shape[0])
        self.name = name
        self._model = model
        self._nist = model if isinstance(model, NistModel) else None
        if self._nist is not None and len(self.param_names) != self._nist.n_params:
            raise ValueError(f"{self._nist.name} has {self._nist.n_params} parameters, "
                             f"got names {self.param_names}")
        self._compiled_user = _is_numba_dispatcher(model)
        self._x2 = None  # lazily: the (n, k) predictor layout of the NIST kernel

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def from_nist(cls, problem: NistProblem) -> "CurveProblem":
        """The NIST problem as published (Nelson fits log y)."""
        return cls.for_nist_model(problem.model, problem.x, problem.y, None,
                                  path=problem.path)

    @classmethod
    def for_nist_model(cls, model: NistModel | str, x, y, sigma=None, *, path: str = ""
                       ) -> "CurveProblem":
        """A NIST formula fitted to any data (x must have the formula's predictor count)."""
        model = get_model(model) if isinstance(model, str) else model
        x = np.asarray(x, dtype=np.float64)
        k = 1 if x.ndim == 1 else x.shape[1]
        if k != model.n_predictors or x.ndim > 2:
            raise DataError(f"model nist:{model.name} needs {model.n_predictors} predictor "
                            f"column(s), the data has x of shape {x.shape}", path=path or None)
        y = np.asarray(y, dtype=np.float64)
        if model.log_response:
            if np.any(y <= 0):
                raise DataError(f"model nist:{model.name} fits log(y): y must be > 0",
                                path=path or None)
            y = np.log(y)
        return cls(x, y, sigma, model=model, param_names=model.param_names,
                   name=f"nist:{model.name}")

    # -- FitProblem -------------------------------------------------------------------------
    def model(self, p: np.ndarray) -> np.ndarray:
        """Model values at the data's x (Nelson: log y)."""
        p = np.asarray(p, dtype=np.float64)
        with np.errstate(all="ignore"):
            mu = np.asarray(self._model(self.x, p), dtype=np.float64)
        if mu.shape != self.y.shape:
            raise ConfigError(f"the model returned shape {mu.shape}, the data has "
                              f"{self.y.shape} points", key="model.name")
        return mu

    def residuals(self, p: np.ndarray) -> np.ndarray:
        """(y - model) / sigma, vectorised."""
        return (self.y - self.model(p)) * self.w

    def chi2(self, p: np.ndarray) -> float:
        """Sum of squared weighted residuals in a compiled loop where possible; inf if not finite."""
        p = np.ascontiguousarray(p, dtype=np.float64)
        from ..kernels import chi2 as k
        if self._nist is not None:
            if self._x2 is None:
                self._x2 = k.as_predictors(self.x)
            return float(k._chi2_nist(self._nist.kind, self._x2, p, self.y, self.w))
        if self._compiled_user:
            from numba.core.errors import NumbaError
            try:
                value = float(k._chi2_user(self._model, self.x, p, self.y, self.w))
            except NumbaError as exc:  # numba cannot compile the model with these types
                warnings.warn(f"{self.name or 'model'}: compiled chi2 loop unavailable "
                              f"({type(exc).__name__}); using numpy", RuntimeWarning)
                self._compiled_user = False
            else:
                if np.isnan(value):  # the kernel's signal for a wrongly shaped result
                    self.model(p)  # raises the clear error
                return value
        return float(k._chi2_values(self.y, self.model(p), self.w))

    # -- optional extension of FitProblem: an exact Jacobian -------------------------------
    @property
    def has_jacobian(self) -> bool:
        """True when :meth:`jacobian` is exact (built-in NIST formulas)."""
        return self._nist is not None

    def jacobian(self, p: np.ndarray) -> np.ndarray:
        """d residuals / d p, shape (n_points, n_params) (NIST formulas only)."""
        if self._nist is None:
            raise NotImplementedError("no exact Jacobian for this model")
        return -self.w[:, None] * self._nist.jacobian(self.x, np.asarray(p, dtype=np.float64))

    def __repr__(self) -> str:
        return f"CurveProblem({self.name or 'model'}, n={self.n_points}, params={self.param_names})"
