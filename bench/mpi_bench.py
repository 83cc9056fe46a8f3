"""Running `hpcopt` under the venv's mpiexec from a benchmark (shared by the MPI suites).

``run_hpcopt(args, ranks, cwd)`` starts ``[mpiexec -n N] python -m hpcopt ARGS`` with
bench/ on PYTHONPATH and returns its wall time, the CPU seconds of all its processes
and its output; with ``rss_dir`` every rank runs under rss_wrapper.py and leaves its
peak RSS there (``peak_rss_mb(rss_dir)``).  Result-file attrs are read with plain h5py.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PY = sys.executable
MPIEXEC = str(Path(PY).parent / "mpiexec")
RSS_WRAPPER = str(BENCH / "rss_wrapper.py")


def env(**extra: str) -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(BENCH), e.get("PYTHONPATH", "")])
    e.update(extra)
    return e


@dataclass
class Run:
    wall_s: float        # the whole subprocess (interpreter and MPI start-up included)
    cpu_s: float         # user + system seconds of every process it started
    stdout: str
    stderr: str


def run_cmd(cmd: list[str], cwd: Path, timeout: float = 1800, **extra_env: str) -> Run:
    """Run `cmd`, failing loudly (with its stderr) on a non-zero exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(**extra_env), capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu, proc.stdout, proc.stderr)


def run_hpcopt(args: list[str], ranks: int, cwd: Path, *, rss_dir: Path | None = None,
               script: list[str] | None = None, timeout: float = 1800, **extra_env: str) -> Run:
    """``[mpiexec -n ranks] python [rss_wrapper.py DIR] -m hpcopt ARGS`` in `cwd`.

    `script` replaces ``-m hpcopt`` by another entry point (e.g. a timing driver)."""
    entry = script if script is not None else ["-m", "hpcopt"]
    cmd = [PY, *([RSS_WRAPPER, str(rss_dir)] if rss_dir is not None else []), *entry, *args]
    if ranks > 1:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    return run_cmd(cmd, cwd, timeout, **extra_env)


def peak_rss_mb(rss_dir: Path) -> dict[int, float]:
    """Peak RSS (MB) by rank, as written by rss_wrapper.py."""
    out = {}
    for path in sorted(rss_dir.glob("rss.*.json")):
        data = json.loads(path.read_text())
        out[int(data["rank"])] = data["maxrss_kb"] / 1024.0
    return out


def file_attr(path: Path, name: str, group: str = "/"):
    import h5py
    with h5py.File(path, "r") as f:
        value = f[group].attrs[name]
    return value.item() if hasattr(value, "item") else value


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
