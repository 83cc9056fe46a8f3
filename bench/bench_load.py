"""Load figures (issue 8): bounded coordinator memory and a report that stays fast.

* a sweep of 100,000 cheap tasks (objectives:empty, local = "none") at 3 ranks, against
  the same sweep with 1,000 tasks;
* an HPO study of 5,000 trials (random sampler, trivial objective, the default journal
  storage) at 3 ranks, against 100 trials.

For each: wall time of the whole run, the farm time (`elapsed_last_run`), the peak RSS of
every rank (each rank runs under rss_wrapper.py: getrusage(RUSAGE_SELF).ru_maxrss at
exit), rank 0's peak RSS ratio large/small (bounded memory: far below the task ratio,
100x and 50x), and the wall time of `hpcopt report FILE --json` on each result file
(a fresh interpreter each time, as a user runs it).  This suite takes several minutes
(the 5,000-trial study dominates: the journal storage fsyncs every write).
"""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

SWEEP_TASKS = (1000, 100_000)
HPO_TRIALS = (100, 5000)
RANKS = 3


def _sweep_config(n_tasks: int, out_name: str) -> str:
    return textwrap.dedent(f"""
        [objective]
        function = "objectives:empty"
        [parameters]
        x = {{ min = 0.0, max = 1.0, points = {n_tasks} }}
        [local]
        method = "none"
        [output]
        path = "{out_name}"
        """)


def _report(d: Path, path: Path) -> dict:
    from mpi_bench import run_cmd, PY
    run = run_cmd([PY, "-m", "hpcopt", "report", str(path), "--json"], d, timeout=600)
    summary = json.loads(run.stdout)
    return {"report_json_s": run.wall_s, "n_tasks": summary["n_tasks"], "n_ok": summary["n_ok"],
            "status": summary["status"]}


def _campaign(d: Path, command: str, name: str, config_text: str) -> dict:
    from mpi_bench import file_attr, peak_rss_mb, run_hpcopt
    cfg = d / f"{name}.toml"
    cfg.write_text(config_text)
    rss_dir = d / f"rss-{name}"
    run = run_hpcopt([command, str(cfg), "-q", "--force"], RANKS, d, rss_dir=rss_dir,
                     timeout=3600)
    out = d / f"{name}.h5"
    rss = peak_rss_mb(rss_dir)
    return {"wall_s": run.wall_s, "farm_s": float(file_attr(out, "elapsed_last_run")),
            "cpu_s_all_ranks": run.cpu_s, "rank0_peak_rss_mb": rss[0],
            "peak_rss_mb_by_rank": [rss[r] for r in sorted(rss)],
            "file_mb": out.stat().st_size / 2**20, **_report(d, out)}


def run() -> dict:
    from bench_hpo_mpi import hpo_config
    from mpi_bench import load_average
    load_before = load_average()
    t_start = time.monotonic()
    detail: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for n in SWEEP_TASKS:
            detail[f"sweep/{n}"] = _campaign(d, "sweep", f"sweep-{n}",
                                             _sweep_config(n, f"sweep-{n}.h5"))
        for n in HPO_TRIALS:
            detail[f"hpo/{n}"] = _campaign(d, "hpo", f"hpo-{n}",
                                           hpo_config(f"hpo-{n}.h5", "random", n))
    flat: dict = {}
    for kind, sizes in (("sweep", SWEEP_TASKS), ("hpo", HPO_TRIALS)):
        small, large = (detail[f"{kind}/{n}"] for n in sizes)
        unit = "tasks" if kind == "sweep" else "trials"
        for n, fig in zip(sizes, (small, large)):
            flat[f"{kind} {n} {unit}: wall s"] = fig["wall_s"]
            flat[f"{kind} {n} {unit}: farm s"] = fig["farm_s"]
            flat[f"{kind} {n} {unit}: rank 0 peak RSS MB"] = fig["rank0_peak_rss_mb"]
            flat[f"{kind} {n} {unit}: report --json s"] = fig["report_json_s"]
        flat[f"{kind} rank 0 peak RSS ratio {sizes[1]}/{sizes[0]} ({sizes[1] // sizes[0]}x "
             f"{unit})"] = large["rank0_peak_rss_mb"] / small["rank0_peak_rss_mb"]
        flat[f"{kind} report --json time ratio {sizes[1]}/{sizes[0]}"] = \
            large["report_json_s"] / small["report_json_s"]
        flat[f"{kind} {sizes[1]}: every {unit[:-1]} ok in the report"] = \
            large["n_ok"] == large["n_tasks"] == sizes[1]
    return {**flat, "runs": detail, "ranks": RANKS, "load_average_before": load_before,
            "load_average_after": load_average(),
            "suite_seconds": round(time.monotonic() - t_start, 1)}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
