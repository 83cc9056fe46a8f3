"""A toy problem where population-based training provably helps: annealing a learning rate.

SGD with gradient noise on the quadratic ``f(w) = 1/2 sum_i a_i w_i**2`` (curvatures
``a_i`` from 0.05 to 1). Instead of sampling the noise we follow the *expected* squared
error exactly, so the objective is deterministic and cheap::

    m_i <- (1 - lr * a_i)**2 * m_i + lr**2 * sigma**2        (m_i = E[w_i**2], m_i(0) = 100)
    loss = 1/2 sum_i a_i m_i                                  (minimize)

A large learning rate removes the initial error fast but stalls at a noise floor that
grows with ``lr``; a small one has a low floor but is slow. With a fixed ``lr`` for all
``T`` steps the final loss is bounded below by both effects (:func:`best_fixed_loss` finds
the best fixed value on a fine grid), while a decaying schedule beats it: the best
hyperparameter changes over time, which PBT can follow and a fixed-hyperparameter
population cannot.

Objective for ``[objective] function = "hpcopt.hpo.pbt_toy:annealing"`` with
``[space] lr = { type = "loguniform", low = 1e-3, high = 1.5 }``; the checkpoint is a
small .npz holding ``m`` and the step.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

CURVATURES = np.geomspace(0.05, 1.0, 8)
NOISE_VARIANCE = 1.0
START_ERROR = 100.0
LR_RANGE = (1e-3, 1.5)   # lr < 2 / max(a) keeps every direction stable


def _advance(m: np.ndarray, lr: float) -> np.ndarray:
    return (1.0 - lr * CURVATURES) ** 2 * m + lr * lr * NOISE_VARIANCE


def expected_loss(m: np.ndarray) -> float:
    """The expected loss of the state `m` (per-direction mean squared errors)."""
    return float(0.5 * np.dot(CURVATURES, m))


def annealing(params: dict[str, Any], ctx) -> float:
    """PBT objective: ``ctx.steps`` SGD steps with ``params["lr"]``; checkpoint ``m``."""
    lr = float(params["lr"])
    state = ctx.load()
    if state is None:
        m = np.full(CURVATURES.shape, START_ERROR)
    else:
        m = state["m"]
        if int(state["step"]) != ctx.start_step:   # the policy handed out a wrong checkpoint
            raise RuntimeError(f"checkpoint holds step {int(state['step'])}, "
                               f"expected {ctx.start_step}")
    for step in ctx.steps:
        m = _advance(m, lr)
        ctx.report(step, expected_loss(m))
    ctx.save(m=m, step=np.int64(ctx.end_step))
    return expected_loss(m)


def schedule_loss(lrs: Sequence[float]) -> float:
    """Final loss after one step per entry of `lrs` from the start state."""
    m = np.full(CURVATURES.shape, START_ERROR)
    for lr in lrs:
        m = _advance(m, float(lr))
    return expected_loss(m)


def best_fixed_loss(steps: int, n_grid: int = 400) -> tuple[float, float]:
    """(lr, loss) of the best fixed learning rate over `steps` steps (log grid on LR_RANGE)."""
    grid = np.geomspace(*LR_RANGE, n_grid)
    m = np.full((n_grid, CURVATURES.size), START_ERROR)
    factor = (1.0 - grid[:, None] * CURVATURES[None, :]) ** 2
    noise = (grid ** 2 * NOISE_VARIANCE)[:, None]
    for _ in range(steps):
        m = factor * m + noise
    losses = 0.5 * m @ CURVATURES
    i = int(np.argmin(losses))
    return float(grid[i]), float(losses[i])
