"""The contract between fitting models and the sweep engine.

A :class:`FitProblem` is a model bound to its data: the sweep engine only ever
calls these methods, so NIST curves, XPCS correlation maps and user models are
interchangeable.  Parameter vectors are float64 arrays in ``param_names`` order.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FitProblem(Protocol):
    #: names of the fitted parameters, in vector order
    param_names: tuple[str, ...]
    #: number of data points entering chi2
    n_points: int
    #: parameters fitted in closed form inside the model (XPCS: 2 per angle), for reduced chi2
    n_nuisance: int

    def residuals(self, p: np.ndarray) -> np.ndarray:
        """Weighted residuals (data - model) / sigma, flattened (least_squares input)."""

    def chi2(self, p: np.ndarray) -> float:
        """Sum of squared weighted residuals (compiled where possible); inf if the model is not finite."""

    def model(self, p: np.ndarray) -> np.ndarray:
        """Model values shaped like the data (for reports and plots)."""


def reduced_chi2(chi2: float, problem: FitProblem) -> float:
    """chi2 / (points - parameters - nuisance parameters); nan when dof <= 0."""
    dof = problem.n_points - len(problem.param_names) - problem.n_nuisance
    return chi2 / dof if dof > 0 else float("nan")
