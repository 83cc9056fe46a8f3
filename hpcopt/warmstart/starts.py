"""Warm start points and the start design that puts them first.

:func:`sample_starts`: the predicted point plus k-1 points drawn around it (normal,
standard deviation = `spread` x predicted uncertainty per parameter, in the [0, 1]
coordinates of :class:`~hpcopt.warmstart.predictor.ParamAxes`, so log-scale
parameters scatter multiplicatively), clipped to the bounds; deterministic given
the seed.

:class:`WarmStartDesign` has the interface of :class:`hpcopt.sweep.starts.StartDesign`
(n_tasks, point(i), points(i0, i1), lower, upper, dim, param_names, specs): tasks
0..k-1 are the warm starts, then ``ceil(design_fraction * n)`` starts of the normal
design (its first ones for sobol/lhs/random, a well-spread subset of a grid), so a
bad prediction cannot hide the optimum the normal design would find.  Without warm
starts it is the normal design, unchanged.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import seeding

from .predictor import ParamAxes, Prediction

#: SeedSequence spawn-key domain of warm-start sampling (hpcopt.seeding uses 0..4)
WARM_DOMAIN = seeding.WARM
#: smallest sampling width (fraction of a parameter's range): starts never coincide
MIN_WIDTH = 0.01
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def sample_starts(prediction: Prediction, specs: Sequence, k: int, *, seed: int,
                  spread: float = 1.0) -> np.ndarray:
    """(k, n_params) starts: the predicted point, then k-1 points around it; (0, n_params)
    when the prediction was not made."""
    n_params = len(specs)
    if not prediction.ok or k < 1:
        return np.zeros((0, n_params))
    axes = ParamAxes.from_specs(specs)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(WARM_DOMAIN, 0)))
    centre = np.clip(prediction.unit_mean, 0.0, 1.0)
    width = spread * np.maximum(prediction.unit_sigma, MIN_WIDTH)
    unit = centre + width * rng.standard_normal((k - 1, centre.size))
    unit = np.vstack([centre[None, :], unit])
    return axes.from_unit(unit, prediction.point)


class WarmStartDesign:
    """Warm starts first, then a share of the normal design (module docstring)."""

    def __init__(self, design, warm: np.ndarray, design_fraction: float = 0.5):
        if not 0.0 < design_fraction <= 1.0:
            raise ValueError(f"design_fraction must be in (0, 1], got {design_fraction!r}")
        warm = np.asarray(warm, dtype=np.float64).reshape(-1, len(design.param_names))
        if not np.all(np.isfinite(warm)):
            raise ValueError("warm starts must be finite")
        self.design = design
        self.warm = np.clip(warm, design.lower, design.upper)
        self.design_fraction = float(design_fraction)
        self.n_warm = len(self.warm)
        n = design.n_tasks
        self.n_design = n if self.n_warm == 0 else max(1, math.ceil(design_fraction * n - 1e-9))
        self.n_tasks = self.n_warm + self.n_design
        # a grid subset follows a full-period stride (golden ratio of the grid size), so the
        # kept grid points spread over the whole grid; sampled designs keep their first points
        self._stride = 1
        if design.kind == "grid" and self.n_design < n:
            self._stride = max(1, round(_GOLDEN * n))
            while math.gcd(self._stride, n) != 1:
                self._stride += 1
        # the StartDesign interface
        self.specs = design.specs
        self.param_names = design.param_names
        self.lower, self.upper = design.lower, design.upper
        self.kind = design.kind if self.n_warm == 0 else f"warm+{design.kind}"
        self.seed = design.seed

    @property
    def dim(self) -> int:
        return self.design.dim

    def design_index(self, i: int) -> int:
        """The task of the normal design that task `i` (>= n_warm) runs."""
        j = int(i) - self.n_warm
        if not 0 <= j < self.n_design:
            raise IndexError(f"task {i} is not a design task (n_warm {self.n_warm}, "
                             f"n_tasks {self.n_tasks})")
        return (j * self._stride) % self.design.n_tasks if self._stride != 1 else j

    def origin(self, i: int) -> str:
        """'warm' or 'design'."""
        if not 0 <= int(i) < self.n_tasks:
            raise IndexError(f"task {i} outside 0..{self.n_tasks}")
        return "warm" if int(i) < self.n_warm else "design"

    def point(self, i: int) -> np.ndarray:
        return self.points(i, i + 1)[0]

    def points(self, i0: int, i1: int) -> np.ndarray:
        """Starts of tasks i0..i1-1 as an (i1 - i0, n_params) array."""
        i0, i1 = int(i0), int(i1)
        if not 0 <= i0 <= i1 <= self.n_tasks:
            raise IndexError(f"tasks {i0}..{i1} outside 0..{self.n_tasks}")
        parts = []
        if i0 < self.n_warm:
            parts.append(self.warm[i0:min(i1, self.n_warm)])
        a, b = max(i0, self.n_warm), i1
        if a < b:
            if self._stride == 1:
                j0 = a - self.n_warm
                parts.append(self.design.points(j0, j0 + (b - a)))
            else:
                parts.append(np.vstack([self.design.point(self.design_index(i))
                                        for i in range(a, b)]))
        return np.vstack(parts) if parts else np.zeros((0, len(self.param_names)))

    def __repr__(self) -> str:
        return (f"WarmStartDesign({self.n_warm} warm + {self.n_design} of {self.design!r})")


def combine(design, warm: np.ndarray, design_fraction: float = 0.5
            ) -> tuple[np.ndarray, list[str]]:
    """Every start of the combined design and its origin ('warm' or 'design')."""
    d = WarmStartDesign(design, warm, design_fraction)
    return d.points(0, d.n_tasks), [d.origin(i) for i in range(d.n_tasks)]
