"""Helpers for the HPO tests: settings/space builders and a simulated coordinator loop."""

from __future__ import annotations

import tomllib

import numpy as np

from hpcopt.hpo.config import HpoSettings, StorageSpec
from hpcopt.hpo.policy import HpoPolicy
from hpcopt.hpo.space import SearchSpace, parse_space
from hpcopt.tomlread import Table

BRANIN_SPACE = """
x1 = { type = "uniform", low = -5.0, high = 10.0 }
x2 = { type = "uniform", low = 0.0, high = 15.0 }
"""


def space_from(text: str) -> SearchSpace:
    return parse_space(Table(tomllib.loads(text), "space", "test.toml"))


def settings(**kw) -> HpoSettings:
    kw.setdefault("sampler", "random")
    kw.setdefault("storage", StorageSpec("memory"))
    kw.setdefault("n_trials", 10)
    return HpoSettings(**kw)


def drive(policy: HpoPolicy, evaluate, n_workers: int = 1, rng: np.random.Generator | None = None,
          max_steps: int = 100_000):
    """The coordinator loop with simulated workers: up to `n_workers` trials in flight, the
    next one to finish picked by `rng` (random completion order) or oldest first."""
    running, records = [], []
    for _ in range(max_steps):
        if policy.done:
            break
        while len(running) < n_workers and (spec := policy.ask()) is not None:
            running.append(spec)
        records += policy.drain_records()
        if not running:
            assert policy.done, "nothing in flight, nothing to ask, but not done"
            break
        spec = running.pop(int(rng.integers(len(running))) if rng is not None else 0)
        outcome = evaluate(spec, lambda step, value, n=spec.number: policy.report(n, step, value))
        records += policy.tell_result(outcome)
    records += policy.drain_records()
    records += policy.close()
    return records
