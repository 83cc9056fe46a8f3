"""Resumed and extended studies never evaluate a point twice (issue 13 item 1)."""

import optuna
import pytest
from hpo_helpers import BRANIN_SPACE, drive, settings, space_from

from hpcopt.hpo.config import StorageSpec
from hpcopt.hpo.objective import PythonRunner
from hpcopt.toys.objectives import branin
from hpcopt.hpo.policy import HpoPolicy


def _points(records):
    return [tuple(sorted(r.params.items())) for r in records if r.state == "complete"]


def _run(journal, sampler, n_trials, *, stop_after=None, resume=False, seed=3, **kw):
    spec = StorageSpec("journal", str(journal))
    policy = HpoPolicy(settings(storage=spec, sampler=sampler, n_trials=n_trials,
                                n_startup_trials=10, **kw),
                       space_from(BRANIN_SPACE), seed=seed, resume=resume)
    if stop_after is None:
        return drive(policy, PythonRunner(branin))
    records = []
    while len(records) < stop_after:                 # a run stopped (SIGTERM) mid-way
        spec_ = policy.ask()
        records += policy.tell_result(PythonRunner(branin)(spec_))
    records += policy.close("stopped by a signal")
    return records


@pytest.mark.parametrize("sampler", ["random", "qmc", "tpe", "gp", "cmaes"])
def test_a_resumed_study_draws_new_points(tmp_path, sampler):
    """Stopped at 6 of 12 and resumed: the old code re-ran trials 0-5 exactly (random and
    TPE restarted their stream; TPE was still in its start-up phase)."""
    journal = tmp_path / "s.journal"
    first = _run(journal, sampler, 12, stop_after=6)
    second = _run(journal, sampler, 12, resume=True)
    points = _points(first) + _points(second)
    assert len(points) == 12
    assert len(set(points)) == 12, "a resumed study repeated a point"


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_an_extended_study_draws_new_points(tmp_path, sampler):
    journal = tmp_path / "s.journal"
    first = _run(journal, sampler, 8)
    second = _run(journal, sampler, 20, resume=True)       # n_trials raised to 20
    points = _points(first) + _points(second)
    assert len(points) == 20 and len(set(points)) == 20


def test_draws_follow_the_study_not_the_process(tmp_path):
    """The same study history gives the same next point (seeds from seed, stream and the
    trial number), and another stream gives another one."""
    def next_point(journal, stream):
        spec = StorageSpec("journal", str(journal))
        p = HpoPolicy(settings(storage=spec, sampler="random", n_trials=20),
                      space_from(BRANIN_SPACE), seed=3, stream=stream, resume=True)
        s = p.ask()
        p.close()
        return s.params
    a, b, c = (tmp_path / f"{name}.journal" for name in "abc")
    for journal in (a, b, c):
        _run(journal, "random", 5)
    first = next_point(a, 0)
    assert first == next_point(b, 0)
    assert first != next_point(c, 1)


DISCRETE = """
opt = ["sgd", "adam", "rmsprop"]
layers = { type = "int", low = 1, high = 2 }
lr = { type = "uniform", low = 0.1, high = 0.3, step = 0.1, when = { param = "opt", equals = "sgd" } }
"""


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_an_exhausted_discrete_space_stops_and_says_so(tmp_path, sampler):
    space = space_from(DISCRETE)          # sgd x 2 x 3 + (adam, rmsprop) x 2 = 10 points
    assert len(space.enumerate(100)) == 10
    spec = StorageSpec("journal", str(tmp_path / "s.journal"))
    policy = HpoPolicy(settings(storage=spec, sampler=sampler, n_trials=25,
                                n_startup_trials=3), space, seed=0)
    records = drive(policy, PythonRunner(lambda p: p["layers"] + p.get("lr", 0.0)))
    points = [tuple(sorted(r.params.items())) for r in records]
    assert len(points) == 10 and len(set(points)) == 10
    assert policy.stop_reason and "exhausted" in policy.stop_reason and "10" in \
        policy.stop_reason
    complete = [t for t in policy.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 10


def test_retries_still_rerun_the_same_point(tmp_path):
    calls = []

    def flaky(params):
        calls.append(params)
        if len(calls) == 1:
            raise RuntimeError("diverged")
        return branin(params)
    spec = StorageSpec("journal", str(tmp_path / "s.journal"))
    policy = HpoPolicy(settings(storage=spec, n_trials=3, max_retries=1),
                       space_from(BRANIN_SPACE), seed=0)
    records = drive(policy, PythonRunner(flaky))
    assert calls[0] == calls[1] and records[1].retry_of == records[0].number
