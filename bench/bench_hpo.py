"""HPO benchmarks without MPI (the campaign adds the MPI coordinator's side).

1. Overhead per trial (ms/trial) on a trivial objective, 1,000 and 10,000 trials, TPE and
   random: plain ``optuna study.optimize`` next to hpcopt's HpoPolicy ask/tell loop (one
   worker, in process) with in-memory and journal-file storage. TPE's cost per trial grows
   with the number of trials; where 10,000 TPE trials would take too long the run stops
   early, fits ``ms/trial = a + b * n`` to the measured chunks and reports the average
   over 10,000 as an extrapolation (``"extrapolated": true``).
2. Coordinator cost against history size (1,000 and 10,000 finished trials in a journal):
   rank 0's work per trial (ask, tell, one group-commit append; an fsync every 0.2 s, as
   the campaign flushes before writing rows) when the workers draw the
   points on their replica (``worker_sampling``, TPE and GP) next to rank 0 drawing them
   itself (the baseline, same run), and the worker's draw time; max trials/s of one
   study = 1000 / (rank-0 ms per trial). Random draws on rank 0 (cheap).
3. Hartmann-6 best-value trajectories (``hartmann6_timed``: trials of random duration)
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


def optuna_overhead(sampler: str, n_trials: int, max_seconds: float = 120.0,
                    journal: bool = False) -> dict:
    """Plain optuna study.optimize on a trivial objective (in memory, or on Optuna's own
    journal file backend)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = tempfile.TemporaryDirectory()
    storage = None
    if journal:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        storage = JournalStorage(JournalFileBackend(str(Path(tmp.name) / "optuna.journal")))
    study = optuna.create_study(storage=storage,
                                sampler=make_sampler(HpoSettings(sampler=sampler), seed=0))

    def objective(trial):
        return trial.suggest_float("x", -5, 5) ** 2 + trial.suggest_float("y", -5, 5) ** 2

    chunk = max(100, n_trials // 20)
    study.optimize(objective, n_trials=WARMUP)          # first-use imports, not per trial
    counts, times = _chunks(lambda k: study.optimize(objective, n_trials=k), n_trials, chunk,
                            max_seconds)
    tmp.cleanup()
    return _summarize(counts, times, n_trials, chunk)


def policy_overhead(sampler: str, n_trials: int, storage: str = "memory",
                    max_seconds: float = 120.0) -> dict:
    """hpcopt's HpoPolicy ask -> evaluate -> tell loop, one worker, no MPI."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = StorageSpec("memory") if storage == "memory" else \
            StorageSpec("journal", str(Path(tmp) / "bench.journal"))
        policy = HpoPolicy(HpoSettings(sampler=sampler, n_trials=n_trials + WARMUP,
                                       storage=spec), TRIVIAL_SPACE, seed=0)

        def step(k):
            for _ in range(k):
                s = policy.ask()
                policy.tell_result(TrialOutcome(s.number, "complete", _trivial(s.params)))

        chunk = max(100, n_trials // 20)
        step(WARMUP)                                    # first-use imports, not per trial
        counts, times = _chunks(step, n_trials, chunk, max_seconds)
        policy.close()
    return _summarize(counts, times, n_trials, chunk)


WARMUP = 3     # trials before timing (imports, the replica's first replay)
FLUSH_S = 0.2  # the campaign flushes (fsyncs) the journal this often (store FlushClock)


def fsync_ms(n: int = 100) -> float:
    """ms of one small append + fsync in the temporary directory (the disk's share)."""
    import os
    with tempfile.TemporaryDirectory() as tmp:
        fd = os.open(str(Path(tmp) / "f"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        t0 = time.perf_counter()
        for _ in range(n):
            os.write(fd, b"x" * 300 + b"\n")
            os.fsync(fd)
        ms = 1e3 * (time.perf_counter() - t0) / n
        os.close(fd)
    return ms


def write_history(path: str, n: int, seed: int = 0, study_name: str = "bench") -> None:
    """A journal holding one study with `n` complete trials over TRIVIAL_SPACE (one append)."""
    import datetime as dt
    from optuna.distributions import distribution_to_json
    from hpcopt.hpo.storage import open_storage
    storage = open_storage(StorageSpec("journal", path))
    optuna.create_study(study_name=study_name, storage=storage)
    dists = TRIVIAL_SPACE.static_distributions()
    rng = np.random.default_rng(seed)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
    logs = []
    for x, y in rng.uniform(-5, 5, (n, 2)):
        logs.append({"op_code": 4, "worker_id": "history", "study_id": 0,
                     "datetime_start": now, "datetime_complete": now, "state": 1,
                     "value": float(x * x + y * y), "values": None,
                     "distributions": {k: distribution_to_json(d) for k, d in dists.items()},
                     "params": {"x": float(x), "y": float(y)}, "user_attrs": {},
                     "system_attrs": {}, "intermediate_values": {}})
    storage._backend.append_logs(logs)          # noqa: SLF001 (one append: a fast fixture)


def coordinator_cost(sampler: str, history: int, n: int = 100, worker_sampling: bool = True
                     ) -> dict:
    """Rank 0's ms per trial at a `history`-trial journal (see the module docstring)."""
    from hpcopt.hpo.propose import WorkerProposer
    from hpcopt.hpo.samplers import draw_seed
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.journal")
        write_history(path, history)
        settings = HpoSettings(sampler=sampler, n_trials=history + n + WARMUP, study_name="bench",
                               storage=StorageSpec("journal", path),
                               worker_sampling=worker_sampling)
        policy = HpoPolicy(settings, TRIVIAL_SPACE, seed=0, resume=True, n_workers=2,
                           has_workers=True)
        proposer = WorkerProposer(settings, TRIVIAL_SPACE) if policy.worker_sampling else None
        rank0 = worker = 0.0
        proposal = None
        flushed = time.perf_counter()
        for k in range(n + WARMUP):
            if k == WARMUP:
                rank0 = worker = 0.0
                appends0 = policy._storage.n_appends    # noqa: SLF001
            t0 = time.perf_counter()
            if proposal is not None:
                policy.offer(proposal)
            spec = policy.ask()                     # writes the kept tell with the new trial
            policy.tell_result(TrialOutcome(spec.number, "complete", _trivial(spec.params)))
            if t0 - flushed >= FLUSH_S:             # HpoSource: flush (fsync), then rows
                policy.flush()
                flushed = t0
            t1 = time.perf_counter()
            rank0 += t1 - t0
            if proposer is not None:                # what the worker does while k runs
                proposal = proposer._draw(draw_seed(0, 0, spec.number, where=1))  # noqa: SLF001
                worker += time.perf_counter() - t1
        t0 = time.perf_counter()
        policy.flush()
        rank0 += time.perf_counter() - t0
        appends = policy._storage.n_appends - appends0   # noqa: SLF001
        policy.close()
    ms = 1e3 * rank0 / n
    return {"history": history, "trials": n, "rank0_ms_per_trial": round(ms, 3),
            "max_trials_per_s": round(1e3 / ms, 1), "appends_per_trial": appends / n,
            "worker_draw_ms": round(1e3 * worker / n, 2) if proposer else None,
            "worker_sampling": policy.worker_sampling}


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


def coordinator_figures(sizes=(1000, 10000), samplers=("random", "tpe", "gp")
                        ) -> tuple[dict, dict]:
    """Part 2 of the module docstring: (per-case results, flat figures with the ratios)."""
    coordinator = {"fsync_ms_before": fsync_ms()}
    for n in sizes:
        for sampler in samplers:
            coordinator[f"{sampler}/{n}/workers draw"] = coordinator_cost(
                sampler, n, n=40 if sampler == "gp" else 100)
            if sampler != "random":
                coordinator[f"{sampler}/{n}/rank 0 draws"] = coordinator_cost(
                    sampler, n, n=10 if sampler == "gp" else 30, worker_sampling=False)
    coordinator["fsync_ms_after"] = fsync_ms()
    flat = {"disk: append+fsync ms (before, after)":
            f'{coordinator["fsync_ms_before"]:.2f}, {coordinator["fsync_ms_after"]:.2f}'}
    for key, fig in coordinator.items():
        if not isinstance(fig, dict):
            continue
        flat[f"coordinator {key}: rank-0 ms/trial"] = fig["rank0_ms_per_trial"]
        flat[f"coordinator {key}: max trials/s"] = fig["max_trials_per_s"]
        if fig["worker_draw_ms"] is not None:
            flat[f"coordinator {key}: worker draw ms"] = fig["worker_draw_ms"]
    for n in sizes:
        for sampler in samplers:
            if sampler == "random":
                continue
            a = coordinator[f"{sampler}/{n}/rank 0 draws"]["rank0_ms_per_trial"]
            b = coordinator[f"{sampler}/{n}/workers draw"]["rank0_ms_per_trial"]
            flat[f"coordinator {sampler}/{n}: rank-0 time, rank 0 draws / workers draw"] = a / b
    return coordinator, flat


def run(quick: bool = False) -> dict:
    """All HPO benchmarks of this module as one dict."""
    sizes = (1000,) if quick else (1000, 10000)
    limit = 20.0 if quick else 120.0
    overhead = {}
    for n in sizes:
        for sampler in ("random", "tpe"):
            overhead[f"optuna_optimize/{sampler}/{n}"] = optuna_overhead(sampler, n, limit)
            overhead[f"optuna_optimize_journal/{sampler}/{n}"] = optuna_overhead(
                sampler, n, limit, journal=True)
            overhead[f"policy_memory/{sampler}/{n}"] = policy_overhead(sampler, n, "memory",
                                                                       limit)
            overhead[f"policy_journal/{sampler}/{n}"] = policy_overhead(sampler, n, "journal",
                                                                        limit)
    coordinator, flat = coordinator_figures(sizes)
    hartmann = compare_hartmann(n_trials=30 if quick else 60, seeds=(0,) if quick else (0, 1, 2))
    for n in sizes:
        for sampler in ("random", "tpe"):
            flat[f"ratio policy_journal/optuna_optimize {sampler}/{n}"] = (
                overhead[f"policy_journal/{sampler}/{n}"]["ms_per_trial"]
                / overhead[f"optuna_optimize_journal/{sampler}/{n}"]["ms_per_trial"])
            flat[f"ratio policy_memory/optuna_optimize {sampler}/{n}"] = (
                overhead[f"policy_memory/{sampler}/{n}"]["ms_per_trial"]
                / overhead[f"optuna_optimize/{sampler}/{n}"]["ms_per_trial"])
    for key, fig in overhead.items():   # scalars first: bench/__main__ prints these
        flat[f"{key} ms/trial" + (" (extrapolated)" if fig["extrapolated"] else "")] = \
            fig["ms_per_trial"]
    for mode, runs in hartmann["runs"].items():
        flat[f"hartmann6/{mode} mean final best"] = float(np.mean([r["final_best"]
                                                                   for r in runs]))
        flat[f"hartmann6/{mode} runs reaching {hartmann['target']}"] = sum(
            r["time_to_target_s"] is not None for r in runs)
        flat[f"hartmann6/{mode} mean wall s"] = float(np.mean([r["wall_s"] for r in runs]))
    from mpi_bench import load_average
    return {**flat, "overhead_ms_per_trial": overhead, "coordinator": coordinator,
            "hartmann6": hartmann, "load_average": load_average()}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
