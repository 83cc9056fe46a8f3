"""`hpcopt info`: what hpcopt sees of the machine, MPI, HDF5 and SLURM, and a suggestion."""

from __future__ import annotations

import json
import os
import platform
import sys

SLURM_VARS = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_NTASKS",
              "SLURM_CPUS_PER_TASK", "SLURM_JOB_NODELIST", "SLURM_NNODES", "SLURM_PROCID")


def cpu_info() -> dict:
    import psutil
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        usable = os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or usable
    return {"logical": os.cpu_count() or 1, "usable": usable, "physical": min(physical, usable),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}


def suggest(cpus: dict | None = None, env: dict | None = None) -> dict:
    """Ranks and threads per rank for this machine (what `-n auto` uses).

    One rank per usable physical core, one thread each: MPI ranks are
    hpcopt's parallelism, and BLAS/numba threads inside ranks would fight
    over the same cores.  Inside SLURM the allocation decides.
    """
    cpus = cpus or cpu_info()
    env = os.environ if env is None else env
    if env.get("SLURM_NTASKS"):
        ranks = int(env["SLURM_NTASKS"])
        threads = int(env.get("SLURM_CPUS_PER_TASK", "1") or 1)
    else:
        ranks, threads = max(1, cpus["physical"]), 1
    return {"ranks": ranks, "threads_per_rank": threads,
            "reason": "SLURM allocation" if env.get("SLURM_NTASKS") else
            "one rank per physical core; the coordinator rank sleeps while it waits"}


def gather(world_size: int | None = None, launcher_problem: str | None = None) -> dict:
    import h5py
    import numba
    import numpy
    from mpi4py import MPI

    from . import __version__
    cpus = cpu_info()
    return {
        "hpcopt": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": platform.node(),
        "mpi": {"library": MPI.Get_library_version().strip().splitlines()[0],
                "standard": "%d.%d" % MPI.Get_version(), "mpi4py": __import__("mpi4py").__version__,
                "world_size": MPI.COMM_WORLD.Get_size() if world_size is None else world_size,
                "launcher_problem": launcher_problem},
        "hdf5": {"h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
                 "mpi": bool(h5py.get_config().mpi)},
        "numba": numba.__version__, "numpy": numpy.__version__,
        "cpus": cpus,
        "slurm": {k: os.environ[k] for k in SLURM_VARS if k in os.environ},
        "suggestion": suggest(cpus),
    }


def format_info(info: dict) -> str:
    s = info["suggestion"]
    lines = [f"hpcopt {info['hpcopt']} on {info['host']} (Python {info['python']})",
             f"MPI: {info['mpi']['library']} (MPI {info['mpi']['standard']}, mpi4py "
             f"{info['mpi']['mpi4py']}), world size {info['mpi']['world_size']}",
             *([f"MPI launcher PROBLEM: {info['mpi']['launcher_problem']}"]
               if info["mpi"].get("launcher_problem") else []),
             f"HDF5: {info['hdf5']['hdf5']} via h5py {info['hdf5']['h5py']}, parallel (mpio): "
             f"{'yes' if info['hdf5']['mpi'] else 'no'}",
             f"numba {info['numba']}, numpy {info['numpy']}",
             f"CPUs: {info['cpus']['usable']} usable ({info['cpus']['physical']} physical cores), "
             f"{info['cpus']['memory_gb']} GB memory",
             "SLURM: " + (", ".join(f"{k}={v}" for k, v in info["slurm"].items()) or "not in a job"),
             f"suggestion: {s['ranks']} ranks x {s['threads_per_rank']} thread(s) ({s['reason']})"]
    return "\n".join(lines)


def run_info(as_json: bool) -> int:
    """Print what this process sees; a launcher that started singletons is reported (by
    the launcher's first process), not refused as campaigns refuse it. Exit 1 then."""
    from .mpi.runtime import get_world
    from .mpi.startup import launcher_mismatch, launcher_rank
    world = get_world(check_launcher=False)
    problem = launcher_mismatch(world.size)
    info = gather(world.size, problem)
    if world.is_root and (problem is None or launcher_rank() in ("0", "?")):
        print(json.dumps(info, indent=2) if as_json else format_info(info))
    return 1 if problem else 0
