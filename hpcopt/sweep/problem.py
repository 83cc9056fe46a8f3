"""A plain objective behind the FitProblem contract, so the sweep engine treats
objective sweeps and model fits alike.

:class:`ObjectiveProblem`: a plain user objective ``f(params: dict) -> float``
(docs/sweep.md, "[objective] function"), minimised as is; it has no residuals.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..objective_value import objective_value


class ObjectiveProblem:
    """f(dict of parameters) -> float as a FitProblem whose chi2 is the objective."""

    n_points = 0
    n_nuisance = 0
    #: chi2 takes a point as a list of floats too (the sweep's batches: no numpy per task)
    takes_float_lists = True

    def __init__(self, func: Callable[[dict], float], param_names: tuple[str, ...]):
        self.func = func
        self.param_names = tuple(param_names)

    def chi2(self, p: np.ndarray) -> float:
        # one rule for return values across kinds (hpcopt.objective_value): no "1.5", no True
        values = p.tolist() if isinstance(p, np.ndarray) else [float(v) for v in p]
        return objective_value(self.func(dict(zip(self.param_names, values))))

    def residuals(self, p: np.ndarray) -> np.ndarray:
        raise TypeError("a plain objective has no residuals; least_squares needs a model")

    def model(self, p: np.ndarray) -> np.ndarray:
        raise TypeError("a plain objective has no model values")
