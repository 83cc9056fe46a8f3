"""Objectives used by the tests (importable as `testobj:NAME` through PYTHONPATH)."""

import math
import os
import time


def quadratic(p):
    """Minimum 0 at x = 0.5, y = -0.25."""
    return (p["x"] - 0.5) ** 2 + 2.0 * (p["y"] + 0.25) ** 2


def rosenbrock(p):
    return (1 - p["x"]) ** 2 + 100 * (p["y"] - p["x"] ** 2) ** 2


def failing(p):
    """Raises on part of the domain; NaN and inf on other parts."""
    if p["x"] < -1.0:
        raise ValueError(f"x = {p['x']:.3f} is out of the model's domain")
    if p["y"] < -1.0:
        return float("nan")
    if p["y"] > 1.5:
        return float("inf")
    return quadratic(p)


def rank_flaky(p):
    """Fails on MPI rank 1 only: a retry on another rank succeeds."""
    from mpi4py import MPI
    if MPI.COMM_WORLD.Get_rank() == 1:
        raise RuntimeError("rank 1 is broken")
    return quadratic(p)


def slow(p):
    """About 0.05 s of wall time (sleeping: lets tests kill a run mid-way)."""
    time.sleep(float(os.environ.get("TESTOBJ_SLEEP", "0.05")))
    return quadratic(p)


def hang_some(p):
    """Never returns for x > 1.5 (per-task timeouts)."""
    if p["x"] > 1.5:
        while True:
            time.sleep(0.01)
    return quadratic(p)


def busy(p):
    """About 20 ms of CPU-bound work (benchmarks of the farm)."""
    t_end = time.process_time() + float(os.environ.get("TESTOBJ_BUSY", "0.02"))
    s = 0.0
    while time.process_time() < t_end:
        for i in range(1000):
            s += math.sin(i)
    return quadratic(p) + 0.0 * s


def broken_import_time():  # pragma: no cover - referenced by bad-config tests only
    raise AssertionError


def slow_energy(x):
    """A 2-D double well, slowed down by a short sleep (interruptible tempering runs)."""
    time.sleep(float(os.environ.get("TESTOBJ_SLEEP", "0.0002")))
    return float((x[0] ** 2 - 1.0) ** 2 * 4.0 + 0.5 * x[1] ** 2)


def segfault_some(p):
    """Crashes its process (SIGSEGV) for x > 1.5: only process isolation survives this."""
    if p["x"] > 1.5:
        import ctypes
        ctypes.string_at(0)
    return quadratic(p)


def exit_some(p):
    """Calls os._exit for y > 1.5 (a library that 'exits' the process)."""
    if p["y"] > 1.5:
        os._exit(7)
    return quadratic(p)


def hard_hang_some(p):
    """Hangs in C code (no Python bytecode runs, so SIGALRM cannot interrupt) for x < -1.5."""
    if p["x"] < -1.5:
        import ctypes
        libc = ctypes.CDLL(None)
        libc.sleep(3600)
    return quadratic(p)
