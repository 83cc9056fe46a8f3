"""Built-in demo objectives: ``function = "hpcopt.toys.objectives:NAME"``.

* ``branin``: x1 in [-5, 10], x2 in [0, 15]; minimum 0.397887 at (-pi, 12.275),
  (pi, 2.275), (9.42478, 2.475).
* ``hartmann6``: x1..x6 in [0, 1]; minimum -3.32237 at
  (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573).
* ``hartmann6_timed``: hartmann6 that also sleeps ``cost * (0.5 + u)`` seconds, u in [0, 1)
  a hash of the params (``cost`` a fixed parameter, default 0): trials of random duration
  for the asynchronous time-to-target benchmark.
* ``digits_sgd``: validation error of a linear SGD classifier on scikit-learn's bundled
  digits data (no download), one report per epoch; params alpha, eta0, learning_rate,
  penalty, epochs, seed (all optional).
* ``digits_mlp``: validation error of a small MLP on the same data, one report per epoch;
  params layers (a list of layer sizes), learning_rate_init, alpha, batch_size, epochs,
  seed (all optional).

Each declares the parameter names it takes (:func:`takes`); a [space] naming another
one (``lr`` for ``digits_mlp``) is refused when the config is validated (exit 2) and a
direct call with one raises ValueError: a misspelt name is never silently ignored.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from ..declare import takes

BRANIN_MIN = 0.39788735772973816
HARTMANN6_MIN = -3.3223680114155147
HARTMANN6_ARGMIN = (0.20168952, 0.15001069, 0.47687398, 0.27533243, 0.31165162, 0.65730054)

_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]], dtype=float)
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]],
                        dtype=float)


_H6 = tuple(f"x{i}" for i in range(1, 7))


@takes(required=("x1", "x2"))
def branin(params: dict[str, Any]) -> float:
    """Branin-Hoo function of params x1, x2."""
    x1, x2 = float(params["x1"]), float(params["x2"])
    b, c = 5.1 / (4 * math.pi ** 2), 5 / math.pi
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


@takes(required=_H6)
def hartmann6(params: dict[str, Any]) -> float:
    """Hartmann 6-D function of params x1..x6."""
    x = np.array([float(params[f"x{i}"]) for i in range(1, 7)])
    inner = np.sum(_H6_A * (x - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)))


@takes(required=_H6, optional=("cost",))
def hartmann6_timed(params: dict[str, Any]) -> float:
    """hartmann6 with a params-dependent sleep (see module docstring)."""
    import time
    x = [float(params[f"x{i}"]) for i in range(1, 7)]
    u = (math.sin(12.9898 * x[0] + 78.233 * x[1] + 37.719 * x[2] + 4.581 * x[3]) * 43758.5453) % 1.0
    cost = float(params.get("cost", 0.0))
    if cost > 0:
        time.sleep(cost * (0.5 + u))
    return hartmann6({k: params[k] for k in _H6})


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scaled digits data split 75/25 with a fixed permutation."""
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.75 * len(y))
    train, valid = order[:cut], order[cut:]
    return x[train], y[train], x[valid], y[valid]


def _epochs(model, params: dict[str, Any], report: Callable[[int, float], bool] | None,
            default_epochs: int) -> float:
    """partial_fit epoch by epoch, reporting the validation error; returns the last one."""
    xt, yt, xv, yv = _digits()
    classes = np.unique(yt)
    error = 1.0
    for epoch in range(int(params.get("epochs", default_epochs))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # convergence warnings per partial_fit
            model.partial_fit(xt, yt, classes=classes)
        error = 1.0 - float(model.score(xv, yv))
        if report is not None and report(epoch, error):
            break
    return error


@takes(optional=("alpha", "eta0", "learning_rate", "penalty", "epochs", "seed"))
def digits_sgd(params: dict[str, Any], report: Callable[[int, float], bool] | None = None
               ) -> float:
    """Validation error of SGDClassifier on digits (minimize)."""
    from sklearn.linear_model import SGDClassifier
    model = SGDClassifier(alpha=float(params.get("alpha", 1e-4)),
                          eta0=float(params.get("eta0", 0.01)),
                          learning_rate=params.get("learning_rate", "optimal"),
                          penalty=params.get("penalty", "l2"),
                          random_state=int(params.get("seed", 0)))
    return _epochs(model, params, report, default_epochs=20)


@takes(optional=("layers", "learning_rate_init", "alpha", "batch_size", "epochs", "seed"))
def digits_mlp(params: dict[str, Any], report: Callable[[int, float], bool] | None = None
               ) -> float:
    """Validation error of a small MLPClassifier on digits (minimize)."""
    from sklearn.neural_network import MLPClassifier
    model = MLPClassifier(hidden_layer_sizes=tuple(int(n) for n in params.get("layers", [32])),
                          learning_rate_init=float(params.get("learning_rate_init", 1e-3)),
                          alpha=float(params.get("alpha", 1e-4)),
                          batch_size=int(params.get("batch_size", 64)),
                          random_state=int(params.get("seed", 0)))
    return _epochs(model, params, report, default_epochs=15)
