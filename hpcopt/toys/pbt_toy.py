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

Objective for ``[objective] function = "hpcopt.toys.pbt_toy:annealing"`` with
``[space] lr = { type = "loguniform", low = 1e-3, high = 1.5 }``; the checkpoint is a
small .npz holding ``m`` and the step. :func:`compare_with_fixed` runs PBT on it against
budget-matched fixed baselines; ``python -m hpcopt.toys.pbt_toy OUT_DIR [N_SEEDS]`` prints
that comparison and draws OUT_DIR/pbt_lineage.png (docs/pbt.md).
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


# -- PBT against fixed learning rates (tests and the docs figure) ----------------------------

def toy_space():
    """The search space of the toy: ``lr`` log-uniform on LR_RANGE."""
    from ..hpo.space import Param, SearchSpace
    return SearchSpace((Param("lr", "loguniform", low=LR_RANGE[0], high=LR_RANGE[1], log=True),))


def uneven_cost(spec) -> float:
    """Virtual duration of a segment for :func:`pbt_sim.simulate`: its steps times 0.5..1.5,
    fixed per task, so results arrive out of order as on a real cluster."""
    u = np.random.default_rng([99, spec.task_id]).random()
    return (spec.end_step - spec.start_step) * (0.5 + u)


def compare_with_fixed(seed: int, root, *, population: int = 8, interval: int = 5,
                       max_steps: int = 200, n_workers: int = 4, cleanup: bool = True) -> dict:
    """Run PBT on :func:`annealing` (simulated farm, checkpoints under `root`) and score the
    fixed-hyperparameter baselines with at least the same budget.

    Returns ``pbt`` (best final score), ``fixed_population`` (best final score of the same
    initial learning rates kept fixed), ``best_fixed_lr`` (the best fixed lr on a fine
    grid), ``steps`` (SGD steps PBT used in total; each fixed member gets
    ceil(steps / population) >= max_steps), ``policy`` and ``records``.
    """
    import math

    from ..hpo.pbt.policy import PbtPolicy
    from ..hpo.pbt.config import PbtSettings
    from ..hpo.pbt.runner import run_segment
    from .pbt_sim import simulate

    space = toy_space()
    settings = PbtSettings(population=population, perturbation_interval=interval,
                           max_steps=max_steps)
    policy = PbtPolicy(settings, space, root=root, seed=seed, cleanup=cleanup)
    initial = [m.params["lr"] for m in policy.members]
    result = simulate(policy, lambda p: run_segment(annealing, p), n_workers=n_workers,
                      cost=uneven_cost)
    ok = [r for r in result.records if r.ok]
    steps = sum(r.spec.end_step - r.spec.start_step for r in ok)
    fixed_steps = max(math.ceil(steps / population), max_steps)
    return {"pbt": min(r.outcome.score for r in ok if r.spec.end_step == max_steps),
            "fixed_population": min(schedule_loss([lr] * fixed_steps) for lr in initial),
            "best_fixed_lr": best_fixed_loss(fixed_steps)[1], "steps": steps,
            "policy": policy, "records": result.records, "space": space}


def main(argv: list[str] | None = None) -> int:
    """``python -m hpcopt.toys.pbt_toy OUT_DIR [N_SEEDS]``: the comparison table and the
    lineage figure of seed 0 (OUT_DIR/pbt_lineage.png)."""
    import sys
    import tempfile
    from pathlib import Path

    from ..hpo.pbt.lineage import lineage_rows
    from ..hpo.pbt.plot import plot_lineage

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else ".")
    seeds = int(args[1]) if len(args) > 1 else 12
    print("seed  pbt        fixed_pop  best_fixed_lr  pbt/fixed_pop  pbt/best_lr  steps")
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as root:
            r = compare_with_fixed(seed, root)
        print(f"{seed:4d}  {r['pbt']:.4g}  {r['fixed_population']:9.4g}  "
              f"{r['best_fixed_lr']:13.4g}  {r['pbt'] / r['fixed_population']:13.2f}  "
              f"{r['pbt'] / r['best_fixed_lr']:11.2f}  {r['steps']}")
        if seed == 0:
            rows = lineage_rows(r["records"], r["space"])
            plot_lineage(rows, out / "pbt_lineage.png",
                         title="PBT on the annealing toy (8 members, 4 workers, seed 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
