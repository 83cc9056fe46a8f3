"""Example user functions for the configs in this folder (found next to the config)."""

import math

import numpy as np


def f(params):
    """A sweep objective: f(dict of parameters) -> float, minimised (Himmelblau's function)."""
    x, y = params["x"], params["y"]
    return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2


def g(params, report):
    """An HPO objective with intermediate values: report(step, value) -> True means stop."""
    loss = 1.0
    lr, width = params["lr"], sum(params["layers"])
    for epoch in range(1, params["n"] + 1):
        loss = (params["x"] - 2.0) ** 2 / 10 + math.exp(-lr * 50 * epoch) + 10.0 / width
        if report(epoch, loss):
            break
    return loss


def energy(state: np.ndarray) -> float:
    """A tempering energy on a numpy state vector: a 2-D double well (two modes)."""
    x, y = float(state[0]), float(state[1])
    return 4.0 * (x * x - 1.0) ** 2 + 0.5 * y * y


def exponential(x, params):
    """A user model y = f(x, params) for curve fitting (params: a, k)."""
    return params[0] * (1.0 - np.exp(-params[1] * x))
