"""The coordinator's service rate and how it bounds big jobs (docs/scaling.md, issue 16).

Measured with the farm alone (farm_driver.py: empty tasks, no file), oversubscribed on
purpose (up to 16 ranks on the machine's cores):

* rank 0's CPU time per task (rows written to a sweep result file as a sweep does): its
  service time, the cost of one coordinator per task when it has a core of its own;
  1 / that = the coordinator's service rate (tasks/s), flat and with a sub-coordinator per
  pretend node of 4 ranks (HPCOPT_NODE_SIZE), unchunked (one row per message: fits) and
  chunked (64); with nodes also the share of tasks that reached rank 0 through a
  sub-coordinator and a sub-coordinator's CPU time per task of its node;
* the messages rank 0 handles per task (the hierarchical farm's point);
* end-to-end empty-task sweeps at -n 3, 8 and 16 (tasks/s: the coordinator-bound rate as
  ranks grow on this machine).

From the service rate, docs/scaling.md derives the utilization of 1k and 10k ranks:
U = min(1, S * L / W) for task length L and W workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench_farm import hpcopt_sweep_seconds

BENCH = Path(__file__).resolve().parent
PY = sys.executable
MPIEXEC = str(Path(PY).parent / "mpiexec")


def driver(ranks: int, n_tasks: int, chunk: int, hierarchy: str, node_size: int | None = None,
           file: Path | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH), env.get("PYTHONPATH", "")])
    if node_size:
        env["HPCOPT_NODE_SIZE"] = str(node_size)
    cmd = [MPIEXEC, "-n", str(ranks), PY, str(BENCH / "farm_driver.py"), str(n_tasks),
           str(chunk), hierarchy] + ([str(file)] if file else [])
    out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


CASES = [  # (label, ranks, tasks, chunk, hierarchy, node size)
    ("flat_n3_chunk1", 3, 20000, 1, "flat", None),
    ("flat_n8_chunk1", 8, 20000, 1, "flat", None),
    ("flat_n16_chunk1", 16, 20000, 1, "flat", None),
    ("nodes4_n8_chunk1", 8, 20000, 1, "nodes", 4),
    ("nodes4_n16_chunk1", 16, 20000, 1, "nodes", 4),
    ("flat_n3_chunk64", 3, 200000, 64, "flat", None),
    ("flat_n16_chunk64", 16, 200000, 64, "flat", None),
    ("nodes4_n16_chunk64", 16, 200000, 64, "nodes", 4),
]


def figures(r: dict, node_size: int | None) -> dict:
    """Rates and costs of one driver run (module docstring)."""
    n = r["tasks"]
    out = {"tasks_per_s": r["tasks_per_s"],
           "rank0_cpu_us_per_task": 1e6 * r["rank0_cpu_s"] / n,
           "service_rate_tasks_per_s": n / r["rank0_cpu_s"],
           "rank0_messages_per_task": r["rank0_messages"] / n}
    if node_size:
        from hpcopt.farm.tree import node_tree
        from hpcopt.mpi.transport import blocks
        tree = node_tree(blocks(r["ranks"], node_size))
        by_rank = r["tasks_by_rank"]
        subs = tree.sub_coordinators
        via = {s: sum(by_rank[w] for w in tree.children[s]) for s in subs}
        out["tasks_via_sub_coordinators"] = sum(via.values()) / n
        out["sub_coordinator_cpu_us_per_task"] = (1e6 * sum(r["cpu_s"][s] for s in subs)
                                                  / max(sum(via.values()), 1))
    return out


def run() -> dict:
    import tempfile
    out: dict = {"load_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as d:
        for label, ranks, n, chunk, hierarchy, node_size in CASES:
            r = driver(ranks, n, chunk, hierarchy, node_size, file=Path(d) / f"{label}.h5")
            for key, value in figures(r, node_size).items():
                out[f"{label}/{key}"] = value
    for ranks in (3, 8, 16):
        for chunk in (1, 0):
            n = 20000 if chunk == 1 else 100000
            farm, campaign = hpcopt_sweep_seconds("empty", n, ranks, chunk=chunk)
            label = f"sweep_empty_n{ranks}_{'chunk1' if chunk else 'auto_chunk'}"
            out[f"{label}/tasks_per_s"] = n / campaign          # end to end (file, start-up)
            out[f"{label}/farm_tasks_per_s"] = n / farm
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
