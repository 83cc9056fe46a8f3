"""`hpcopt hpo` under MPI (issue 6 figures; bench_hpo.py has the plain-optuna baselines).

1. Coordinator overhead per trial (ms/trial) at 3 ranks (coordinator + 2 workers) on a
   trivial objective, random and TPE, journal storage (hpcopt's default) and
   ``storage = "memory"``, at 1,000 and 10,000 trials, next to plain optuna
   ``study.optimize`` (one thread) with in-memory storage (bench_hpo.optuna_overhead's
   setup) and with a journal file (optuna's own JournalFileBackend; both fsync).
   Each configuration is one run of 10,000 trials stopped after CAP_S seconds
   (hpcopt: ``time_budget``; optuna: between chunks of 500). ms/trial at N is the time
   from the first trial's start to the N-th finished trial, over N (coordinator start-up
   excluded); where 10,000 was not reached, the per-chunk cost is fitted as a + b*n and
   averaged over 0..10,000 (bench_hpo._summarize), marked "extrapolated" (with fewer than
   3 chunks or a negative slope: the measured mean held flat, marked "flat").  The per-chunk
   ms/trial series is kept in the details.
2. Time to reach a target on Hartmann-6 (``hartmann6_timed``: trials of 25-75 ms), same
   TPE settings and trial budget, several seeds: hpcopt at 3 ranks (memory storage, as
   the optuna side) against optuna n_jobs=2 and concurrency 1 (bench_hpo.hartmann_trajectory,
   timed from just before study.optimize), targets -2.5 and -3.0 (global min -3.32).
   hpcopt's times come from the result file: finish = started + duration, measured from
   the first trial's start.
3. Idle fraction of the workers with trials of 0.05-0.3 s (``timed``: the duration a hash
   of the params), random and TPE, 3 ranks: 1 - (busy seconds of a worker) / (first start
   to last finish of the run), averaged over the workers, the median of IDLE_REPEATS runs
   (DeepHyper 0.13 RandomSearch, measured in issue 16: 3.3 %).
4. One study at a 10,000-trial history (a journal written before; the run joins it as an
   array task), TPE, zero-cost trials, 3 ranks: trials/s with the workers drawing
   (``worker_sampling``, the default) against rank 0 drawing (``worker_sampling = false``),
   same run; and rank 0's CPU seconds per trial (its own process time) in the steady state
   (between the 10th and the last finished trial, from rank0_cpu.py's samples) and over the
   whole run (start-up and the replay of the 10,000 trials included).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

SIZES = (1000, 10000)
CHUNK = 250
MIN_CHUNKS_FOR_FIT = 3
CAP_S = 45.0
HARTMANN = {"n_trials": 60, "seeds": (0, 1, 2), "cost": 0.05, "targets": (-2.5, -3.0)}


def trivial(params: dict) -> float:
    """The trivial objective (importable as bench_hpo_mpi:trivial; stdlib imports only)."""
    return params["x"] ** 2 + params["y"] ** 2


def timed(params: dict) -> float:
    """Sleeps 0.05-0.3 s (a hash of the params), then the trivial value."""
    import math
    u = (math.sin(12.9898 * params["x"] + 78.233 * params["y"]) * 43758.5453) % 1.0
    time.sleep(0.05 + 0.25 * u)
    return trivial(params)


def idle_fraction(path: Path) -> dict:
    """Workers' idle share between the run's first start and last finish."""
    import h5py
    import numpy as np
    with h5py.File(path, "r") as f:
        t = f["trials"][()]
    t = t[t["status"] != 0]
    begin, end = float(np.min(t["started"])), float(np.max(t["started"] + t["duration"]))
    ranks = sorted(set(t["rank"].tolist()))
    busy = [float(t["duration"][t["rank"] == r].sum()) for r in ranks]
    return {"trials": int(len(t)), "span_s": round(end - begin, 3),
            "idle_fraction": 1.0 - float(np.mean(busy)) / (end - begin),
            "mean_trial_s": float(np.mean(t["duration"]))}


#: runs per idle figure (the median is quoted): one run of 120 trials moved between 2.3 %
#: and 14 % for the same code on this machine
IDLE_REPEATS = 3


def idle_run(d: Path, sampler: str, n_trials: int = 120) -> dict:
    """The median idle fraction of IDLE_REPEATS runs (each run's figures in "runs")."""
    import statistics
    from mpi_bench import run_hpcopt
    name = f"idle-{sampler}"
    cfg = d / f"{name}.toml"
    cfg.write_text(hpo_config(f"{name}.h5", sampler, n_trials, function="bench_hpo_mpi:timed"))
    runs = []
    for _ in range(IDLE_REPEATS):
        run_hpcopt(["hpo", str(cfg), "-q", "--force"], 3, d)
        runs.append(idle_fraction(d / f"{name}.h5"))
    return {"idle_fraction": statistics.median(r["idle_fraction"] for r in runs), "runs": runs}


RANK0_CPU = Path(__file__).resolve().parent / "rank0_cpu.py"


def history_run(d: Path, worker_sampling: bool, history: int = 10000, n: int = 150) -> dict:
    """Join a study of `history` finished trials; trials/s of the n new ones."""
    import numpy as np
    from bench_hpo import write_history
    from mpi_bench import run_hpcopt
    name = f"hist-{'workers' if worker_sampling else 'rank0'}"
    journal = d / f"{name}.journal"
    write_history(str(journal), history)
    cfg = d / f"{name}.toml"
    text = hpo_config(f"{name}.h5", "tpe", history + n, storage=str(journal))
    text = text.replace("[hpo]\n", f"[hpo]\nstudy_name = \"bench\"\n"
                        f"worker_sampling = {'true' if worker_sampling else 'false'}\n")
    cfg.write_text(text)
    cpu_file = d / f"{name}.cpu"
    run_hpcopt([str(cpu_file), "hpo", str(cfg), "-q", "--force"], 3, d,
               script=[str(RANK0_CPU)], SLURM_ARRAY_TASK_ID="0")
    origin, finish, _ = finished_trials(d / f"{name}.h5")
    # steady state: from the 10th finished trial on (the workers' replicas replay first)
    rate = (len(finish) - 10) / float(finish[-1] - finish[9])
    cpu = json.loads(cpu_file.read_text())
    wall, cpu_at = np.array(cpu["samples"]).T
    window = origin + np.array([finish[9], finish[-1]])
    steady_cpu = float(np.diff(np.interp(window, wall, cpu_at))[0])
    return {"history": history, "trials": int(len(finish)), "trials_per_s": rate,
            # the whole process (start-up and the replay of the history included) per trial
            "rank0_cpu_ms_per_trial_whole_run": 1e3 * cpu["cpu_s"] / len(finish),
            # the steady state: rank 0's CPU between the 10th and the last finished trial
            "rank0_cpu_ms_per_trial": 1e3 * steady_cpu / (len(finish) - 10),
            "rank0_cpu_s": cpu["cpu_s"], "worker_sampling": worker_sampling,
            "wall_s": float(np.max(finish))}


def hpo_config(out_name: str, sampler: str, n_trials: int, *, storage: str | None = None,
               time_budget: float | None = None, function: str = "bench_hpo_mpi:trivial",
               space: str | None = None, seed: int = 0) -> str:
    """An `hpcopt hpo` config (default: the trivial objective over x, y in [-5, 5])."""
    lines = ["[hpo]", f'sampler = "{sampler}"', f"n_trials = {n_trials}"]
    if storage is not None:
        lines.append(f'storage = "{storage}"')
    if time_budget is not None:
        lines.append(f"time_budget = {time_budget}")
    lines += ["[objective]", f'function = "{function}"', "[space]",
              space or ('x = { type = "uniform", low = -5.0, high = 5.0 }\n'
                        'y = { type = "uniform", low = -5.0, high = 5.0 }'),
              "[run]", f"seed = {seed}", "[output]", f'path = "{out_name}"']
    return "\n".join(lines) + "\n"


def finished_trials(path: Path):
    """(origin, sorted finish times, objectives in finish order) of the complete trials."""
    import h5py
    import numpy as np
    with h5py.File(path, "r") as f:
        t = f["trials"][()]
    state = np.array([s.decode() if isinstance(s, bytes) else s for s in t["state"]])
    t = t[state == "complete"]
    origin = float(np.min(t["started"]))
    finish = t["started"] + t["duration"]
    order = np.argsort(finish)
    return origin, finish[order] - origin, t["objective"][order]


def _per_trial(counts: list[int], times: list[float], n: int) -> dict:
    from bench_hpo import _summarize
    if counts and counts[-1] >= n:
        k = counts.index(next(c for c in counts if c >= n))
        total = float(sum(times[:k + 1]))
        return {"trials": n, "seconds": round(total, 3), "ms_per_trial": 1e3 * total / n,
                "extrapolated": False}
    if len(counts) >= MIN_CHUNKS_FOR_FIT:
        fit = _summarize(counts, times, n, CHUNK)
        if fit["fit_ms_per_trial"][1] >= 0:
            return fit
    # too few chunks for a slope, or a negative one (the cost per trial does not fall as
    # the study grows: a falling fit is load noise): the measured mean, held flat
    total = float(sum(times))
    return {"trials": n, "measured_trials": counts[-1] if counts else 0,
            "seconds_measured": round(total, 3),
            "ms_per_trial": 1e3 * total / counts[-1] if counts else float("nan"),
            "extrapolated": "flat"}


def _chunked(finish, chunk: int = CHUNK) -> tuple[list[int], list[float]]:
    """Cumulative counts and per-chunk seconds from sorted finish times (origin 0)."""
    counts, times, last = [], [], 0.0
    for k in range(chunk, len(finish) + 1, chunk):
        counts.append(k)
        times.append(float(finish[k - 1]) - last)
        last = float(finish[k - 1])
    return counts, times


def hpcopt_overhead(d: Path, sampler: str, storage: str) -> dict:
    from mpi_bench import run_hpcopt
    name = f"ovh-{sampler}-{storage}"
    cfg = d / f"{name}.toml"
    cfg.write_text(hpo_config(f"{name}.h5", sampler, SIZES[-1],
                              storage="memory" if storage == "memory" else None,
                              time_budget=CAP_S))
    run = run_hpcopt(["hpo", str(cfg), "-q", "--force"], 3, d)
    _, finish, _ = finished_trials(d / f"{name}.h5")
    counts, times = _chunked(finish)
    out = {f"{n}": _per_trial(counts, times, n) for n in SIZES}
    out["trials_done"] = len(finish)
    out["chunk_ms_per_trial"] = [round(1e3 * t / CHUNK, 3) for t in times]
    out["cpu_ms_per_trial_all_ranks"] = 1e3 * run.cpu_s / len(finish)
    out["subprocess_wall_s"] = run.wall_s
    return out


def optuna_overhead(d: Path, sampler: str, storage: str) -> dict:
    """Plain optuna study.optimize, chunks of CHUNK trials until SIZES[-1] or CAP_S."""
    import optuna
    from bench_hpo import _chunks
    from hpcopt.hpo.config import HpoSettings
    from hpcopt.hpo.samplers import make_sampler
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = None
    if storage == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        store = JournalStorage(JournalFileBackend(str(d / f"optuna-{sampler}.journal")))
    study = optuna.create_study(storage=store,
                                sampler=make_sampler(HpoSettings(sampler=sampler), seed=0))

    def objective(trial):
        return trivial({"x": trial.suggest_float("x", -5, 5),
                        "y": trial.suggest_float("y", -5, 5)})

    counts, times = _chunks(lambda k: study.optimize(objective, n_trials=k), SIZES[-1], CHUNK,
                            CAP_S)
    out = {f"{n}": _per_trial(counts, times, n) for n in SIZES}
    out["trials_done"] = counts[-1]
    out["chunk_ms_per_trial"] = [round(1e3 * t / CHUNK, 3) for t in times]
    return out


def hpcopt_hartmann(d: Path, seed: int) -> list[tuple[float, float]]:
    """(seconds since the first trial's start, best so far) after each finished trial."""
    import numpy as np
    from mpi_bench import run_hpcopt
    h = HARTMANN
    space = "\n".join([f'x{i} = {{ type = "uniform", low = 0.0, high = 1.0 }}' for i in range(1, 7)]
                      + [f'cost = {{ type = "fixed", value = {h["cost"]} }}'])
    name = f"hartmann-{seed}"
    cfg = d / f"{name}.toml"
    cfg.write_text(hpo_config(f"{name}.h5", "tpe", h["n_trials"], storage="memory",
                              function="hpcopt.toys.objectives:hartmann6_timed", space=space,
                              seed=seed))
    run_hpcopt(["hpo", str(cfg), "-q", "--force"], 3, d)
    _, finish, values = finished_trials(d / f"{name}.h5")
    return list(zip(finish.tolist(), np.minimum.accumulate(values).tolist()))


def hartmann_runs(d: Path) -> dict:
    """Per mode and seed: time to each target, final best, wall (last finish)."""
    from bench_hpo import hartmann_trajectory, time_to_target
    h = HARTMANN
    modes = {"hpcopt_3ranks": lambda seed: hpcopt_hartmann(d, seed),
             "optuna_n_jobs_2": lambda seed: hartmann_trajectory(2, h["n_trials"], seed, h["cost"]),
             "concurrency_1": lambda seed: hartmann_trajectory(1, h["n_trials"], seed, h["cost"])}
    out: dict = {}
    for mode, trajectory in modes.items():
        out[mode] = []
        for seed in h["seeds"]:
            points = trajectory(seed)
            out[mode].append({"seed": seed, "final_best": points[-1][1],
                              "wall_s": round(points[-1][0], 3),
                              "time_to_target_s": {str(t): time_to_target(points, t)
                                                   for t in h["targets"]}})
    return out


def _hartmann_summary(runs: list[dict], target: float) -> dict:
    import numpy as np
    reached = [r["time_to_target_s"][str(target)] for r in runs]
    reached = [t for t in reached if t is not None]
    return {"runs_reaching_target": len(reached),
            "mean_time_to_target_s": float(np.mean(reached)) if reached else None,
            "mean_final_best": float(np.mean([r["final_best"] for r in runs])),
            "mean_wall_s": float(np.mean([r["wall_s"] for r in runs]))}


def run() -> dict:
    from mpi_bench import load_average
    load_before = load_average()
    t_start = time.monotonic()
    overhead: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for sampler in ("random", "tpe"):
            for storage in ("journal", "memory"):
                overhead[f"hpcopt_3ranks/{sampler}/{storage}"] = hpcopt_overhead(d, sampler,
                                                                                 storage)
                overhead[f"optuna_optimize/{sampler}/{storage}"] = optuna_overhead(d, sampler,
                                                                                   storage)
        hartmann = hartmann_runs(d)
        idle = {s: idle_run(d, s) for s in ("random", "tpe")}
        history = {"workers draw": history_run(d, True), "rank 0 draws": history_run(d, False)}
    h = HARTMANN

    flat: dict = {}
    for key, fig in overhead.items():
        for n in SIZES:
            f = fig[str(n)]
            how = {False: "", True: " (extrapolated)", "flat": " (extrapolated flat)"}
            flat[f"{key}/{n} ms/trial{how[f['extrapolated']]}"] = f["ms_per_trial"]
    for sampler in ("random", "tpe"):
        for storage in ("journal", "memory"):
            for n in SIZES:
                a = overhead[f"hpcopt_3ranks/{sampler}/{storage}"][str(n)]["ms_per_trial"]
                b = overhead[f"optuna_optimize/{sampler}/{storage}"][str(n)]["ms_per_trial"]
                flat[f"ratio hpcopt/optuna {sampler}/{storage}/{n}"] = a / b
    summaries: dict = {}
    for target in h["targets"]:
        for label, runs in hartmann.items():
            sm = summaries.setdefault(str(target), {})[label] = _hartmann_summary(runs, target)
            flat[f"hartmann6/{label} runs reaching {target}"] = sm["runs_reaching_target"]
            if sm["mean_time_to_target_s"] is not None:
                flat[f"hartmann6/{label} mean time to {target} s"] = sm["mean_time_to_target_s"]
        base = summaries[str(target)]["hpcopt_3ranks"]["mean_time_to_target_s"]
        for label in ("optuna_n_jobs_2", "concurrency_1"):
            other = summaries[str(target)][label]["mean_time_to_target_s"]
            if base and other:
                flat[f"hartmann6 time to {target}: {label} / hpcopt_3ranks"] = other / base
    for sampler, fig in idle.items():
        flat[f"idle fraction {sampler}, 0.05-0.3 s trials, 3 ranks"] = fig["idle_fraction"]
    for key, fig in history.items():
        flat[f"tpe at 10k history, {key}: trials/s"] = fig["trials_per_s"]
        flat[f"tpe at 10k history, {key}: rank-0 CPU ms/trial (steady state)"] = (
            fig["rank0_cpu_ms_per_trial"])
        flat[f"tpe at 10k history, {key}: rank-0 CPU ms/trial (whole run)"] = (
            fig["rank0_cpu_ms_per_trial_whole_run"])
    flat["tpe at 10k history: trials/s, workers draw / rank 0 draws"] = (
        history["workers draw"]["trials_per_s"] / history["rank 0 draws"]["trials_per_s"])
    for label, runs in hartmann.items():
        sm = _hartmann_summary(runs, h["targets"][0])
        flat[f"hartmann6/{label} mean final best"] = sm["mean_final_best"]
        flat[f"hartmann6/{label} mean wall s"] = sm["mean_wall_s"]
    return {**flat, "overhead": overhead,
            "hartmann6": {"settings": {**h, "seeds": list(h["seeds"]),
                                       "targets": list(h["targets"])}, "runs": hartmann,
                          "summary": summaries},
            "idle": idle, "history_10k": history,
            "cap_seconds_per_run": CAP_S, "load_average_before": load_before,
            "load_average_after": load_average(),
            "suite_seconds": round(time.monotonic() - t_start, 1)}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
