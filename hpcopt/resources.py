"""`[resources]`: CPU threads and GPUs per worker rank (so per trial or task).

Threads: the thread-count variables of OpenMP, MKL, OpenBLAS and numexpr are set
in the worker before any objective runs, and thread pools that are already loaded
(numpy's BLAS; numba's, through numba.set_num_threads) are limited at once, so R x T threads
never oversubscribe a node.  GPUs: each worker rank gets `gpus` ids from the
node's list (CUDA_VISIBLE_DEVICES as the job got it, or 0..gpus_per_node-1),
chosen by its node-local worker index, so ranks on one node never share a GPU
unless `share_gpus = true`.  Child processes (external commands, isolated
evaluators) inherit the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .errors import ConfigError
from .tomlread import Table

# NUMBA_NUM_THREADS is not among them: numba re-reads it at every compile and refuses a
# value that differs from its running pool; numba.set_num_threads() limits it instead
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


@dataclass(frozen=True)
class Resources:
    threads: int | None = None          # CPU threads per worker rank (None: default_threads()
                                        # with several ranks, untouched alone)
    gpus: int = 0                       # GPUs per worker rank
    gpus_per_node: int | None = None    # when CUDA_VISIBLE_DEVICES is not set by the job
    share_gpus: bool = False            # allow more ranks than GPUs (round robin)


def parse_resources(root: Table, source: str) -> Resources:
    t = root.table("resources")
    threads = t.raw("threads", None)
    if threads is not None:
        threads = t.int("threads", min=1, max=4096)
    gpus = t.int("gpus", 0, min=0, max=64)
    per_node = t.raw("gpus_per_node", None)
    if per_node is not None:
        per_node = t.int("gpus_per_node", min=1, max=1024)
    share = t.bool("share_gpus", False)
    t.finish()
    return Resources(threads, gpus, per_node, share)


def node_gpu_ids(res: Resources, env: dict) -> list[str]:
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [g.strip() for g in visible.split(",") if g.strip()]
    if res.gpus_per_node:
        return [str(i) for i in range(res.gpus_per_node)]
    return []


def gpu_ids_for(res: Resources, local_worker: int, env: dict) -> list[str]:
    """The GPU ids of the `local_worker`-th worker rank on its node."""
    ids = node_gpu_ids(res, env)
    if not res.gpus:
        return []
    if not ids:
        raise ConfigError(f"resources.gpus = {res.gpus} but this node shows no GPUs (no "
                          "CUDA_VISIBLE_DEVICES and no resources.gpus_per_node)",
                          key="resources.gpus")
    first = local_worker * res.gpus
    if first + res.gpus > len(ids) and not res.share_gpus:
        raise ConfigError(f"worker {local_worker} on this node needs GPUs {first}.."
                          f"{first + res.gpus - 1} but the node has {len(ids)} "
                          f"({','.join(ids)}); use fewer ranks per node or share_gpus = true",
                          key="resources.gpus")
    return [ids[(first + k) % len(ids)] for k in range(res.gpus)]


def apply(res: Resources, *, local_worker: int, env: dict | None = None) -> dict:
    """Set thread and GPU variables in `env` (default os.environ); return what was set."""
    env = os.environ if env is None else env
    changed: dict[str, str] = {}
    if res.threads is not None:
        for var in THREAD_VARS:
            changed[var] = str(res.threads)
        _limit_loaded_pools(res.threads)
    if res.gpus:
        changed["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids_for(res, local_worker, env))
    env.update(changed)
    return changed


def _limit_loaded_pools(threads: int) -> None:
    """Thread pools loaded before the variables were set take the limit directly."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    import numba
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def default_threads(env: dict | None = None) -> int:
    """Threads per rank when [resources] threads is not given, in a multi-rank job: what
    SLURM allocated per task, else 1.  MPI ranks are the parallelism; BLAS pools of
    several threads in every rank oversubscribe the cores (measured: small least-squares
    fits 20x slower with the default OpenBLAS pool on a busy 2-core node)."""
    env = os.environ if env is None else env
    return int(env.get("SLURM_CPUS_PER_TASK") or 1)


def apply_on_workers(world, res: Resources, *, rank0_evaluates: bool = False) -> dict:
    """Every rank: find its node-local worker index and apply().  The coordinator of a
    task farm evaluates nothing and keeps its environment (tempering: every rank works)."""
    if world.size == 1:
        return apply(res, local_worker=0)
    if res.threads is None:
        res = replace(res, threads=default_threads())
    evaluates = rank0_evaluates or world.rank != 0
    with world.node() as node:
        flags = node.allgather(evaluates)
        local_worker = sum(flags[:node.Get_rank()])
    return apply(res, local_worker=local_worker) if evaluates else {}
