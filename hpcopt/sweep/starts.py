"""Start-point designs over parameter bounds: grid, random, Sobol, Latin hypercube.

``StartDesign(kind, specs, n_samples, seed).point(i)`` is a pure function of the
design and the task id `i`, so any rank can compute any start without the others
and without materialising a large grid:

* grid: the index is unravelled over the per-parameter point counts (last
  parameter fastest); ``points = 1`` is the midpoint (geometric on a log scale);
* random: task i draws from its own stream (:func:`hpcopt.seeding.task_rng`, domain
  DESIGN), independent of every other task;
* sobol / lhs: one scipy.stats.qmc sample of n_samples points seeded by the campaign
  seed (n x d floats, materialised once per process).

Log-scale parameters are spaced/sampled in log space.  Fixed parameters
(``value = ...``) take their value in every start and have lower == upper.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .. import seeding
from ..errors import ConfigError
from ..tomlread import Table

KINDS = ("grid", "random", "sobol", "lhs")
SCALES = ("linear", "log")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a sweep: bounds, grid points and scale, or a fixed value."""

    name: str
    min: float = math.nan
    max: float = math.nan
    points: int = 1
    scale: str = "linear"
    value: float | None = None

    @property
    def fixed(self) -> bool:
        return self.value is not None

    @property
    def lower(self) -> float:
        return self.value if self.fixed else self.min

    @property
    def upper(self) -> float:
        return self.value if self.fixed else self.max

    def check(self, key: str | None = None, source: str | None = None) -> "ParamSpec":
        """Raise ConfigError (key ``parameters.NAME[.field]`` unless `key` is given) if invalid."""
        def err(problem: str, field: str | None = None) -> ConfigError:
            k = key or f"parameters.{self.name}" + (f".{field}" if field else "")
            return ConfigError(problem, key=k, source=source)

        if self.fixed:
            if not math.isfinite(self.value):
                raise err(f"expected a finite value, got {self.value!r}", "value")
            return self
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise err("expected finite 'min' and 'max' (or 'value' to hold it fixed)")
        if not math.isfinite(self.max - self.min):
            raise err(f"the range max - min overflows a double (min={self.min!r}, "
                      f"max={self.max!r})")
        if not self.min < self.max:
            raise err(f"expected min < max, got min={self.min!r}, max={self.max!r}")
        if self.scale not in SCALES:
            raise err(f"expected 'linear' or 'log', got {self.scale!r}", "scale")
        if self.scale == "log" and not self.min > 0:
            raise err(f"a log scale needs min > 0, got {self.min!r}", "min")
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < 1:
            raise err(f"expected an integer >= 1, got {self.points!r}", "points")
        return self

    def grid(self) -> np.ndarray:
        """The grid values of this parameter (the value alone if fixed)."""
        if self.fixed:
            return np.array([self.value])
        if self.scale == "log":
            lo, hi = math.log(self.min), math.log(self.max)
            if self.points == 1:
                return np.array([math.exp((lo + hi) / 2)])
            return np.exp(np.linspace(lo, hi, self.points))
        if self.points == 1:
            return np.array([(self.min + self.max) / 2])
        return np.linspace(self.min, self.max, self.points)

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map u in [0, 1] to the parameter's range on its scale."""
        if self.fixed:
            return np.full(np.shape(u), self.value)
        if self.scale == "log":
            lo, hi = math.log(self.min), math.log(self.max)
            return np.clip(np.exp(lo + u * (hi - lo)), self.min, self.max)
        return self.min + u * (self.max - self.min)


def param_spec_from_table(name: str, data: Any, *, source: str | None = None,
                          prefix: str = "parameters") -> ParamSpec:
    """Read one ``[parameters]`` entry: ``{min, max, points?, scale?}`` or ``{value}``."""
    t = Table(data, f"{prefix}.{name}", source or "")
    if "value" in t:
        value = t.float("value")
        if any(k in t for k in ("min", "max", "points", "scale")):
            raise t.error("'value' holds the parameter fixed: give it alone, without "
                          "min/max/points/scale")
        t.finish()
        return ParamSpec(name, value=value)
    spec = ParamSpec(name, min=t.float("min"), max=t.float("max"),
                     points=t.int("points", 1, min=1),
                     scale=t.str("scale", "linear", choices=SCALES))
    t.finish()
    return spec.check(source=source or None)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_parameter_ranges(text: str, *, option: str = "--parameter-ranges") -> list[ParamSpec]:
    """Parse the seed-000 shortcut ``"D0:1e-12:1e-10:10,alpha:0.5:2.0:5"``.

    Each item is ``name:min:max:points``, optionally ``:log`` or ``:linear`` at the end.
    """
    def err(problem: str) -> ConfigError:
        return ConfigError(f"{problem} (expected 'name:min:max:points[:log]', comma-separated, "
                           f"e.g. 'D0:1e-12:1e-10:10:log,alpha:0.5:2.0:5')", key=option)

    if not isinstance(text, str) or not text.strip():
        raise err("empty parameter ranges")
    specs: list[ParamSpec] = []
    for item in text.split(","):
        fields = [f.strip() for f in item.strip().split(":")]
        if len(fields) not in (4, 5):
            raise err(f"{item.strip()!r} has {len(fields)} fields")
        name = fields[0]
        if not _NAME.match(name):
            raise err(f"{name!r} is not a parameter name")
        if any(s.name == name for s in specs):
            raise err(f"parameter {name!r} given twice")
        try:
            lo, hi = float(fields[1]), float(fields[2])
        except ValueError:
            raise err(f"{name}: min and max must be numbers, got {fields[1]!r}, {fields[2]!r}") from None
        try:
            points = int(fields[3])
        except ValueError:
            raise err(f"{name}: points must be an integer, got {fields[3]!r}") from None
        scale = fields[4] if len(fields) == 5 else "linear"
        try:
            specs.append(ParamSpec(name, min=lo, max=hi, points=points, scale=scale).check(key=option))
        except ConfigError as exc:
            raise err(f"{name}: {exc.problem}") from None
    return specs


class StartDesign:
    """Start points of a sweep; ``point(i)`` depends only on the design and i."""

    def __init__(self, kind: str, specs: Sequence[ParamSpec], n_samples: int | None = None,
                 seed: int = 0):
        if kind not in KINDS:
            raise ValueError(f"unknown search method {kind!r}; expected one of {', '.join(KINDS)}")
        if not specs:
            raise ValueError("a start design needs at least one parameter")
        self.kind = kind
        self.specs = tuple(s.check() for s in specs)
        self.seed = int(seed)
        self.param_names = tuple(s.name for s in self.specs)
        self.lower = np.array([s.lower for s in self.specs], dtype=np.float64)
        self.upper = np.array([s.upper for s in self.specs], dtype=np.float64)
        self._free = [k for k, s in enumerate(self.specs) if not s.fixed]
        self._base = np.array([s.value if s.fixed else np.nan for s in self.specs])
        if kind == "grid":
            self._axes = [self.specs[k].grid() for k in self._free]
            self._shape = tuple(len(a) for a in self._axes)
            self.n_tasks = math.prod(self._shape)
        else:
            if n_samples is None or isinstance(n_samples, bool) or int(n_samples) < 1:
                raise ValueError(f"search method {kind!r} needs n_samples >= 1, got {n_samples!r}")
            self.n_tasks = int(n_samples)
        self._unit: np.ndarray | None = None  # sobol/lhs sample, built on first use

    @property
    def dim(self) -> int:
        """Number of free (searched) parameters."""
        return len(self._free)

    def point(self, i: int) -> np.ndarray:
        """The start of task `i` (all parameters, fixed ones included)."""
        return self.points(i, i + 1)[0]

    def points(self, i0: int, i1: int) -> np.ndarray:
        """Starts of tasks i0..i1-1 as an (i1 - i0, n_params) array."""
        i0, i1 = int(i0), int(i1)
        if not 0 <= i0 <= i1 <= self.n_tasks:
            raise IndexError(f"tasks {i0}..{i1} outside 0..{self.n_tasks}")
        out = np.tile(self._base, (i1 - i0, 1))
        if not self._free or i1 == i0:
            return out
        if self.kind == "grid":
            idx = self._unravel(i0, i1)
            for col, (k, axis) in enumerate(zip(self._free, self._axes)):
                out[:, k] = axis[idx[col]]
            return out
        if self.kind == "random":
            unit = np.array([seeding.task_rng(self.seed, i, seeding.DESIGN).random(self.dim)
                             for i in range(i0, i1)])
        else:
            unit = self._qmc()[i0:i1]
        for col, k in enumerate(self._free):
            out[:, k] = self.specs[k].from_unit(unit[:, col])
        return out

    def _unravel(self, i0: int, i1: int) -> tuple[np.ndarray, ...]:
        """Grid indices per free parameter of tasks i0..i1-1 (last parameter fastest)."""
        if self.n_tasks < 2**62:
            return np.unravel_index(np.arange(i0, i1, dtype=np.int64), self._shape)
        # beyond int64: Python integers (nobody runs such a grid, but any task id is valid)
        idx = np.empty((len(self._shape), i1 - i0), dtype=np.int64)
        for r, i in enumerate(range(i0, i1)):
            for col in range(len(self._shape) - 1, -1, -1):
                i, idx[col, r] = divmod(i, self._shape[col])
        return tuple(idx)

    def _qmc(self) -> np.ndarray:
        if self._unit is None:
            from scipy.stats import qmc
            rng = np.random.default_rng(seeding.seed_sequence(self.seed, seeding.DESIGN, 0))
            engine = (qmc.Sobol(self.dim, scramble=True, rng=rng) if self.kind == "sobol"
                      else qmc.LatinHypercube(self.dim, rng=rng))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Sobol balance warning for n != 2**m
                self._unit = engine.random(self.n_tasks)
        return self._unit

    def __repr__(self) -> str:
        return f"StartDesign({self.kind!r}, {self.param_names}, n_tasks={self.n_tasks}, seed={self.seed})"
