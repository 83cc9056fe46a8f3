"""PBT's explore step on a :class:`SearchSpace`: sample, perturb or resample hyperparameters.

Pure functions of a numpy Generator, so the policy's decisions are reproducible.

Perturbing one value by a factor ``f`` (drawn from ``perturbation_factors``):

* ``loguniform``, and ``uniform``/``int`` with ``low > 0``: multiply, ``v * f``;
* ``uniform``/``int`` with ``low <= 0``: shift by a fraction of the range,
  ``v + (f - 1) * (high - low)`` (a product would never leave 0 or change sign);
* ``int``: rounded to the step grid, and moved at least one step when ``f != 1``;
* ``categorical``: the neighbouring choice, the next one when ``f > 1``, the previous one
  when ``f < 1`` (bouncing back at either end), unchanged when ``f == 1``;
* ``fixed``: unchanged.

Every result is clipped to the parameter's bounds and grid. Conditional parameters follow
their parents: a child that becomes active is sampled, one that becomes inactive is dropped.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import numpy as np

from ..space import Param, SearchSpace, _same


def is_active(space: SearchSpace, p: Param, values: dict[str, Any]) -> bool:
    """Whether `p` is present given the values of the parameters before it."""
    return SearchSpace._active(p, values)   # one definition of "active": the space's


def sample_value(p: Param, rng: np.random.Generator) -> Any:
    """A random value of `p` (uniform over its range, log-uniform on a log scale)."""
    if p.kind == "fixed":
        return copy.deepcopy(p.value)
    if p.kind == "categorical":
        return copy.deepcopy(p.choices[int(rng.integers(len(p.choices)))])
    if p.kind == "int":
        if p.log:
            x = math.exp(rng.uniform(math.log(p.low), math.log(p.high + 1)))
            return int(min(max(math.floor(x), p.low), p.high))
        n = (int(p.high) - int(p.low)) // int(p.step or 1)
        return int(p.low) + int(p.step or 1) * int(rng.integers(n + 1))
    if p.log:
        return float(math.exp(rng.uniform(math.log(p.low), math.log(p.high))))
    if p.step:
        n = int(math.floor((p.high - p.low) / p.step + 1e-9))
        return float(p.low + p.step * int(rng.integers(n + 1)))
    return float(rng.uniform(p.low, p.high))


def sample_params(space: SearchSpace, rng: np.random.Generator) -> dict[str, Any]:
    """Random values for every active parameter, in space order (a new member)."""
    values: dict[str, Any] = {}
    for p in space.params:
        if is_active(space, p, values):
            values[p.name] = sample_value(p, rng)
    return values


def clip_value(p: Param, value: Any) -> Any:
    """`value` moved into the bounds (and onto the step grid) of a numeric `p`."""
    if p.kind == "int":
        step = int(p.step or 1)
        k = round((float(value) - p.low) / step)
        top = (int(p.high) - int(p.low)) // step
        return int(p.low) + step * int(min(max(k, 0), top))
    if p.kind in ("uniform", "loguniform"):
        v = min(max(float(value), float(p.low)), float(p.high))
        if p.step:
            top = math.floor((p.high - p.low) / p.step + 1e-9)
            v = float(p.low + p.step * min(max(round((v - p.low) / p.step), 0), top))
        return v
    return value


def perturb_value(p: Param, value: Any, factor: float) -> Any:
    """`value` perturbed by `factor` (rules in the module docstring), within bounds."""
    if p.kind == "fixed":
        return value
    if p.kind == "categorical":
        i = _index(p.choices, value)
        n = len(p.choices)
        if factor == 1 or n == 1:
            return copy.deepcopy(p.choices[i])
        d = 1 if factor > 1 else -1
        j = i + d if 0 <= i + d < n else i - d
        return copy.deepcopy(p.choices[j])
    multiplicative = p.log or p.low > 0
    x = float(value) * factor if multiplicative else float(value) + (factor - 1) * (p.high - p.low)
    if p.kind == "int":
        new = clip_value(p, x)
        if new == value and factor != 1:   # small ints would never move: force one step
            new = clip_value(p, value + (1 if factor > 1 else -1) * int(p.step or 1))
        return new
    return clip_value(p, x)


def explore(space: SearchSpace, params: dict[str, Any], rng: np.random.Generator, *,
            factors: Sequence[float], resample_probability: float
            ) -> tuple[dict[str, Any], dict[str, str]]:
    """New values derived from `params` and what happened to each: ``{"lr": "*1.2",
    "opt": "resample", "layers": "next"}`` (fixed parameters are left out)."""
    new: dict[str, Any] = {}
    changes: dict[str, str] = {}
    for p in space.params:
        if not is_active(space, p, new):
            continue
        if p.kind == "fixed":
            new[p.name] = copy.deepcopy(p.value)
            continue
        # the draws happen in the same order for every parameter: reproducible decisions
        resample = rng.random() < resample_probability
        factor = float(factors[int(rng.integers(len(factors)))])
        if p.name not in params:
            new[p.name], changes[p.name] = sample_value(p, rng), "new"
        elif resample:
            new[p.name], changes[p.name] = sample_value(p, rng), "resample"
        else:
            new[p.name] = perturb_value(p, params[p.name], factor)
            changes[p.name] = (("next" if factor > 1 else "previous" if factor < 1 else "same")
                               if p.kind == "categorical" else f"*{factor:g}")
    return new, changes


def _index(choices: tuple, value: Any) -> int:
    for i, c in enumerate(choices):
        if _same(c, value):
            return i
    raise ValueError(f"{value!r} is not one of the choices {list(choices)!r}")
