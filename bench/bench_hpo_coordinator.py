"""Rank 0's cost per HPO trial against history size, alone (part 2 of bench_hpo, which the
`hpo` suite also runs; this suite takes minutes instead of the `hpo` suite's half hour):
random and TPE at 1,000 and 10,000 finished trials, the workers drawing TPE's points on
their replica next to rank 0 drawing them itself (the baseline, same run)."""

from __future__ import annotations

from bench_hpo import coordinator_figures
from mpi_bench import load_average


def run() -> dict:
    before = load_average()
    coordinator, flat = coordinator_figures(samplers=("random", "tpe"))
    return {**flat, "coordinator": coordinator, "load_before": before,
            "load_after": load_average()}
