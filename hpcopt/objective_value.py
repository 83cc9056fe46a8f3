"""The one rule for what an objective may return as its value, for every campaign kind.

Sweeps (plain ``[objective]`` functions), HPO trials (Python functions and the result
file of an external command) all read the value through :func:`objective_value`:

* accepted: Python ``int`` and ``float``, numpy integer and floating scalars
  (``np.float32(1.5)``, ``np.int64(3)``) and 0-d numpy arrays of them;
* refused with a TypeError that says what came back: ``bool`` (``True`` is not 1.0 here),
  strings (``"1.5"`` is not parsed), ``None``, complex numbers, arrays or lists with
  elements, anything else.

Whether a non-finite value (nan, inf) is acceptable is the campaign's business: a sweep's
minimizer may step through inf (an infeasible point) but a task whose final value is not
finite fails; an HPO trial that returns nan or inf fails.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def objective_value(value: Any, what: str = "the objective's value") -> float:
    """`value` as a float, if it is a real number by the rule above; TypeError otherwise
    ("<what>: expected a number, got ...")."""
    if type(value) is float:            # the common case first (a sweep's cheap tasks)
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what}: expected a number, got a boolean ({value!r})")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{what}: expected a number, got a string ({value!r}; strings are "
                        "not converted)")
    if isinstance(value, (numbers.Real, np.integer, np.floating)):
        return float(value)
    kind = type(value).__name__
    shape = f" of shape {value.shape}" if isinstance(value, np.ndarray) else ""
    raise TypeError(f"{what}: expected a number (int, float or a numpy scalar), "
                    f"got {kind}{shape}")
