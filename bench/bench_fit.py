"""Time to fit a homodyne XPCS dataset with a 100-start sweep, 1 rank vs 3 ranks (issue 4).

The bundled hpcopt/data/xpcs_demo.h5 with the parameter bounds of hpcopt/data/demo.toml,
100 Sobol starts, each refined by least squares.  Times are the farm's
(`elapsed_last_run` of the result file: interpreter start, config checks and the numba
cache load excluded; a 2-start run first fills numba's cache).  Both runs must give the
same best chi2 (results do not depend on the number of ranks).

The main figure runs with `[resources] threads = 1` (one BLAS/OpenMP thread per rank).
Without it each rank's OpenBLAS starts a thread per CPU; least_squares' SVD then
oversubscribes the cores (3 ranks x 2 threads on 2 cores) and, on a busy machine, a
start costs 10-20x more.  DEFAULT_SAMPLES starts run both ways show that (farm time,
default environment / threads = 1).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
DATA = BENCH.parent / "hpcopt" / "data"
SAMPLES = 100
DEFAULT_SAMPLES = 6


def fit_config(samples: int, out_name: str, threads: int | None = 1) -> str:
    """demo.toml with `samples` Sobol starts, the bundled data by absolute path and
    `[resources] threads` (None: no [resources] table, the default environment)."""
    text = (DATA / "demo.toml").read_text()
    text = text.replace('path = "xpcs_demo.h5"', f'path = "{DATA / "xpcs_demo.h5"}"')
    text = text.replace("samples = 24", f"samples = {samples}")
    text = text.replace('path = "hpcopt-demo.h5"', f'path = "{out_name}"')
    assert f"samples = {samples}" in text and out_name in text, "demo.toml changed its layout"
    if threads is not None:
        text += f"\n[resources]\nthreads = {threads}\n"
    return text


def fit(d: Path, ranks: int, samples: int = SAMPLES, threads: int | None = 1) -> dict:
    import h5py
    import numpy as np
    from mpi_bench import run_hpcopt
    name = f"fit-{samples}-{ranks}-{threads}"
    cfg = d / f"{name}.toml"
    cfg.write_text(fit_config(samples, f"{name}.h5", threads))
    run = run_hpcopt(["sweep", str(cfg), "-q", "--force"], ranks, d)
    with h5py.File(d / f"{name}.h5", "r") as f:
        elapsed = float(f.attrs["elapsed_last_run"])
        best = float(f["best"].attrs["objective"])
        reduced = float(f["best"].attrs["chi2_reduced"])
        objectives = np.asarray(f["tasks"]["objective"])
    return {"ranks": ranks, "farm_s": elapsed, "subprocess_wall_s": run.wall_s,
            "cpu_s_all_ranks": run.cpu_s, "best_chi2": best, "best_chi2_reduced": reduced,
            "objectives": objectives}


def run() -> dict:
    import numpy as np
    from mpi_bench import load_average
    load_before = load_average()
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        fit(d, 1, samples=2)                      # numba cache
        one, three = fit(d, 1), fit(d, 3)
        small = {(r, t): fit(d, r, DEFAULT_SAMPLES, threads=t) for r in (1, 3) for t in (None, 1)}
        for fig in small.values():
            fig.pop("objectives")
    same_rows = bool(np.array_equal(one.pop("objectives"), three.pop("objectives"),
                                    equal_nan=True))
    rel = abs(one["best_chi2"] - three["best_chi2"]) / abs(one["best_chi2"])
    return {
        "xpcs fit 100 starts 1 rank s": one["farm_s"],
        "xpcs fit 100 starts 3 ranks s": three["farm_s"],
        "xpcs fit speed-up 3 ranks over 1": one["farm_s"] / three["farm_s"],
        "xpcs fit speed-up 3/1 (subprocess wall)": one["subprocess_wall_s"]
        / three["subprocess_wall_s"],
        "best chi2 1 rank": one["best_chi2"],
        "best chi2 3 ranks": three["best_chi2"],
        "best chi2 relative difference": rel,
        "same best chi2": rel <= 1e-12,
        "same objective in every row": same_rows,
        "best reduced chi2": one["best_chi2_reduced"],
        **{f"{DEFAULT_SAMPLES} starts {r} rank(s): default threads / threads = 1":
           small[(r, None)]["farm_s"] / small[(r, 1)]["farm_s"] for r in (1, 3)},
        "runs": {"1": one, "3": three,
                 **{f"{DEFAULT_SAMPLES}_starts_{r}_ranks_threads_{t or 'default'}": v
                    for (r, t), v in small.items()}},
        "load_average_before": load_before, "load_average_after": load_average(),
        "suite_seconds": round(time.monotonic() - t_start, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
