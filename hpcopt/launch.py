"""`hpcopt -n N COMMAND ...`: re-launch this program under the bundled mpiexec with N ranks."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .errors import UsageError


def find_mpiexec() -> str:
    """The mpiexec next to this Python (the venv's MPICH), else the one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    if here.exists():
        return str(here)
    found = shutil.which("mpiexec")
    if not found:
        raise UsageError("no mpiexec found next to this Python or on PATH")
    return found


def rank_count(np_text: str) -> int:
    """-n's value: a number of ranks >= 1, or 'auto' (what `hpcopt info` suggests)."""
    if np_text == "auto":
        from .info import suggest
        return suggest()["ranks"]
    try:
        n = int(np_text)
    except ValueError:
        raise UsageError(f"-n expects a number of ranks or 'auto', got {np_text!r}") from None
    if n < 1:
        raise UsageError(f"-n expects at least 1 rank, got {n}")
    return n


def relaunch(np_text: str, argv: list[str]) -> int:
    """exec the bundled mpiexec with N ranks of this program (argv without -n)."""
    if os.environ.get("SLURM_JOB_ID"):
        raise UsageError("-n is for laptops and workstations; inside a SLURM allocation use "
                         "`srun hpcopt ...` (srun starts the ranks)")
    if os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_SIZE") or \
            os.environ.get("PMI_SIZE"):
        raise UsageError("-n given, but hpcopt already runs under an MPI launcher")
    n = rank_count(np_text)
    cmd = [find_mpiexec(), "-n", str(n), sys.executable, "-m", "hpcopt", *strip_np(argv)]
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached


def strip_np(argv: list[str]) -> list[str]:
    """argv without -n N / --np N / --np=N / -nN (before or after the subcommand)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("-n", "--np"):
            skip = True
            continue
        if a.startswith("--np="):
            continue
        if a.startswith("-n") and len(a) > 2 and a[2:].isdigit():
            continue
        out.append(a)
    return out
