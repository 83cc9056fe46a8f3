"""HPO benchmarks without MPI (the campaign adds the MPI coordinator's side).

1. Overhead per trial (ms/trial) on a trivial objective, 1,000 and 10,000 trials, TPE and
   random: plain ``optuna study.optimize`` next to hpcopt's HpoPolicy ask/tell loop (one
   worker, in process) with in-memory and journal-file storage. TPE's cost per trial grows
   with the number of trials; where 10,000 TPE trials would take too long the run stops
   early, fits ``ms/trial = a + b * n`` to the measured chunks and reports the average
   over 10,000 as an extrapolation (``"extrapolated": true``).
2. Hartmann-6 best-value trajectories (``hartmann6_timed``: trials of random duration)
   with optuna ``n_jobs=2`` and with concurrency 1, same budget and seed, for the
   time-to-target comparison against a 3-rank hpcopt run.

    python bench/bench_hpo.py [--quick]        # prints one JSON object
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpcopt.hpo.config import HpoSettings, StorageSpec  # noqa: E402
from hpcopt.toys.objectives import HARTMANN6_MIN, hartmann6_timed  # noqa: E402
from hpcopt.hpo.policy import HpoPolicy  # noqa: E402
from hpcopt.hpo.samplers import make_sampler  # noqa: E402
from hpcopt.hpo.space import Param, SearchSpace  # noqa: E402
from hpcopt.hpo.trials import TrialOutcome  # noqa: E402

TRIVIAL_SPACE = SearchSpace((Param("x", "uniform", low=-5.0, high=5.0),
                             Param("y", "uniform", low=-5.0, high=5.0)))
HARTMANN_SPACE = SearchSpace(tuple(Param(f"x{i}", "uniform", low=0.0, high=1.0)
                                   for i in range(1, 7)))


def _trivial(params: dict) -> float:
    return params["x"] ** 2 + params["y"] ** 2


def _chunks(step_fn, n_trials: int, chunk: int, max_seconds: float) -> tuple[list, list]:
    """Run `step_fn(k)` for k trials at a time; (trials done after each chunk, seconds)."""
    done, counts, times = 0, [], []
    t_start = time.perf_counter()
    while done < n_trials:
        k = min(chunk, n_trials - done)
        t0 = time.perf_counter()
        step_fn(k)
        times.append(time.perf_counter() - t0)
        done += k
        counts.append(done)
        if time.perf_counter() - t_start > max_seconds and done < n_trials:
            break
    return counts, times


def _summarize(counts: list, times: list, n_trials: int, chunk: int) -> dict:
    total = float(np.sum(times))
    if counts[-1] >= n_trials:
        return {"trials": n_trials, "seconds": round(total, 3),
                "ms_per_trial": round(1e3 * total / n_trials, 3), "extrapolated": False}
    # ms/trial of a chunk, at its midpoint n: fit a + b*n, average it over 0..n_trials
    mids = np.array(counts) - chunk / 2
    per = 1e3 * np.array(times) / chunk
    b, a = np.polyfit(mids, per, 1)
    avg = a + b * n_trials / 2
    return {"trials": n_trials, "measured_trials": counts[-1], "seconds_measured": round(total, 3),
            "ms_per_trial": round(float(avg), 3), "fit_ms_per_trial": [round(float(a), 4),
                                                                      round(float(b), 7)],
            "extrapolated": True}


def optuna_overhead(sampler: str, n_trials: int, max_seconds: float = 120.0) -> dict:
    """Plain optuna study.optimize on a trivial objective."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=make_sampler(HpoSettings(sampler=sampler), seed=0))

    def objective(trial):
        return trial.suggest_float("x", -5, 5) ** 2 + trial.suggest_float("y", -5, 5) ** 2

    chunk = max(100, n_trials // 20)
    counts, times = _chunks(lambda k: study.optimize(objective, n_trials=k), n_trials, chunk,
                            max_seconds)
    return _summarize(counts, times, n_trials, chunk)


def policy_overhead(sampler: str, n_trials: int, storage: str = "memory",
                    max_seconds: float = 120.0) -> dict:
    """hpcopt's HpoPolicy ask -> evaluate -> tell loop, one worker, no MPI."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = StorageSpec("memory") if storage == "memory" else \
            StorageSpec("journal", str(Path(tmp) / "bench.journal"))
        policy = HpoPolicy(HpoSettings(sampler=sampler, n_trials=n_trials, storage=spec),
                           TRIVIAL_SPACE, seed=0)

        def step(k):
            for _ in range(k):
                s = policy.ask()
                policy.tell_result(TrialOutcome(s.number, "complete", _trivial(s.params)))

        chunk = max(100, n_trials // 20)
        counts, times = _chunks(step, n_trials, chunk, max_seconds)
        policy.close()
    return _summarize(counts, times, n_trials, chunk)


def hartmann_trajectory(n_jobs: int, n_trials: int, seed: int, cost: float = 0.05,
                        sampler: str = "tpe") -> list[tuple[float, float]]:
    """(seconds since start, best value so far) after each finished trial, optuna with
    ``n_jobs`` threads (1 = the seeds' concurrency 1) on hartmann6_timed."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = HpoSettings(sampler=sampler, n_startup_trials=10)
    study = optuna.create_study(sampler=make_sampler(settings, seed))
    t0 = time.perf_counter()
    points: list[tuple[float, float]] = []
    best = [np.inf]

    def objective(trial):
        params = {f"x{i}": trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(1, 7)}
        return hartmann6_timed({**params, "cost": cost})

    def record(study, trial):
        if trial.value is not None and trial.value < best[0]:
            best[0] = trial.value
        points.append((time.perf_counter() - t0, best[0]))

    study.optimize(objective, n_trials=n_trials, n_jobs=n_jobs, callbacks=[record])
    return points


def time_to_target(points: list[tuple[float, float]], target: float) -> float | None:
    """First time the best value reached `target` (None if never)."""
    return next((t for t, best in points if best <= target), None)


def compare_hartmann(n_trials: int = 60, seeds=(0, 1, 2), cost: float = 0.05,
                     target: float = -3.0) -> dict:
    """Time to target and final best for optuna n_jobs=2 and concurrency 1."""
    out: dict = {"n_trials": n_trials, "cost_s": cost, "target": target,
                 "global_min": HARTMANN6_MIN, "runs": {}}
    for label, n_jobs in (("optuna_n_jobs_2", 2), ("concurrency_1", 1)):
        runs = []
        for seed in seeds:
            pts = hartmann_trajectory(n_jobs, n_trials, seed, cost)
            runs.append({"seed": seed, "time_to_target_s": time_to_target(pts, target),
                         "final_best": pts[-1][1], "wall_s": round(pts[-1][0], 3)})
        out["runs"][label] = runs
    return out


def run(quick: bool = False) -> dict:
    """All HPO benchmarks of this module as one dict."""
    sizes = (1000,) if quick else (1000, 10000)
    limit = 20.0 if quick else 120.0
    overhead = {}
    for n in sizes:
        for sampler in ("random", "tpe"):
            overhead[f"optuna_optimize/{sampler}/{n}"] = optuna_overhead(sampler, n, limit)
            overhead[f"policy_memory/{sampler}/{n}"] = policy_overhead(sampler, n, "memory",
                                                                       limit)
            overhead[f"policy_journal/{sampler}/{n}"] = policy_overhead(sampler, n, "journal",
                                                                        limit)
    hartmann = compare_hartmann(n_trials=30 if quick else 60, seeds=(0,) if quick else (0, 1, 2))
    flat: dict = {}
    for key, fig in overhead.items():   # scalars first: bench/__main__ prints these
        flat[f"{key} ms/trial" + (" (extrapolated)" if fig["extrapolated"] else "")] = \
            fig["ms_per_trial"]
    for mode, runs in hartmann["runs"].items():
        flat[f"hartmann6/{mode} mean final best"] = float(np.mean([r["final_best"]
                                                                   for r in runs]))
        flat[f"hartmann6/{mode} runs reaching {hartmann['target']}"] = sum(
            r["time_to_target_s"] is not None for r in runs)
        flat[f"hartmann6/{mode} mean wall s"] = float(np.mean([r["wall_s"] for r in runs]))
    return {**flat, "overhead_ms_per_trial": overhead, "hartmann6": hartmann}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
