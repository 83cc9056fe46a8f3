"""Objectives for the benchmarks (importable as `objectives:NAME` with bench/ on PYTHONPATH)."""

import time


def empty(p):
    return 0.0


def busy(p, seconds=0.02):
    """`seconds` of CPU-bound work (the task-farm speed-up benchmark)."""
    t_end = time.process_time() + seconds
    s = 0
    while time.process_time() < t_end:
        s += 1
    return float(p["x"]) ** 2


def empty_task(i):
    return 0.0


def busy_task(i):
    return busy({"x": i})


def sleepy(p):
    """Sleeps BENCH_SLEEP seconds (a waiting coordinator and an idle worker meanwhile)."""
    import os
    time.sleep(float(os.environ.get("BENCH_SLEEP", "3")))
    return 0.0
