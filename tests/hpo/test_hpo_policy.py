import json
from dataclasses import replace
import math

import numpy as np
import optuna
import pytest
from hpo_helpers import BRANIN_SPACE, drive, settings, space_from

from hpcopt.errors import ResultFileError
from hpcopt.hpo.config import StorageSpec
from hpcopt.hpo.objective import PythonRunner
from hpcopt.toys.objectives import BRANIN_MIN, branin
from hpcopt.hpo.policy import A_OVER, WORKER_WINDOW, HpoPolicy
from hpcopt.hpo.propose import draw
from hpcopt.hpo.samplers import CachedRandomSampler, reseed
from hpcopt.hpo.trials import TrialOutcome, TrialSpec

SAMPLERS = ["random", "tpe", "qmc", "gp", "cmaes"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_ask_tell_on_branin(sampler):
    space = space_from(BRANIN_SPACE)
    policy = HpoPolicy(settings(sampler=sampler, n_trials=14, n_startup_trials=6), space,
                       seed=1, n_workers=2)
    records = drive(policy, PythonRunner(branin), n_workers=2)
    assert [r.state for r in records] == ["complete"] * 14
    assert sorted(r.number for r in records) == list(range(14))
    for r in records:
        assert -5 <= r.params["x1"] <= 10 and 0 <= r.params["x2"] <= 15
        assert r.value == pytest.approx(branin(r.params)) and r.value >= BRANIN_MIN - 1e-9
    params, value = policy.best()
    assert value == min(r.value for r in records) and params == min(records,
                                                                    key=lambda r: r.value).params


def curve(params, report):
    """A learning curve that converges to the Branin value; worse params are worse early."""
    target = branin(params)
    for step in range(27):
        if report(step, target * (1 + 3.0 / (step + 1))):
            return None
    return target


@pytest.mark.parametrize("pruner, options", [
    ("asha", (("min_resource", 1), ("reduction_factor", 3))),
    ("hyperband", (("min_resource", 1), ("max_resource", 27), ("reduction_factor", 3))),
    ("median", (("pruner_startup_trials", 3),)),
    ("none", ()),
])
def test_pruners_stop_bad_trials_early(pruner, options):
    policy = HpoPolicy(settings(pruner=pruner, pruner_options=options, n_trials=24),
                       space_from(BRANIN_SPACE), seed=3)
    records = drive(policy, PythonRunner(curve))
    pruned = [r for r in records if r.state == "pruned"]
    complete = [r for r in records if r.state == "complete"]
    assert len(records) == 24 and all(len(r.intermediate) == 27 for r in complete)
    if pruner == "none":
        assert not pruned
        return
    assert pruned, "a pruner stopped nothing"
    for r in pruned:   # stopped early, value = the last reported one
        assert 0 < len(r.intermediate) < 27 and r.value == r.intermediate[-1][1]
    best = min(records, key=lambda r: branin(r.params))
    assert best.state == "complete"


def test_asha_prunes_a_bad_trial_at_the_first_rung():
    space = space_from(BRANIN_SPACE)
    policy = HpoPolicy(settings(pruner="asha", n_trials=6, pruner_options=(
        ("min_resource", 1), ("reduction_factor", 3))), space, seed=0)
    good = {"x1": np.pi, "x2": 2.275}
    for _ in range(5):
        policy.study.enqueue_trial(good)
    policy.study.enqueue_trial({"x1": -5.0, "x2": 0.0})     # Branin ~ 308
    records = drive(policy, PythonRunner(curve))
    bad = records[-1]
    assert bad.params == {"x1": -5.0, "x2": 0.0}
    assert bad.state == "pruned" and len(bad.intermediate) <= 2


def test_failures_are_recorded_and_retried_with_the_same_params():
    attempts = {}

    def flaky(params):
        key = json.dumps(params)
        attempts[key] = attempts.get(key, 0) + 1
        if attempts[key] == 1:
            raise RuntimeError(f"disk full on try {attempts[key]}")
        return branin(params)

    policy = HpoPolicy(settings(n_trials=4, max_retries=1), space_from(BRANIN_SPACE), seed=0)
    records = drive(policy, PythonRunner(flaky), n_workers=2)
    failed = [r for r in records if r.state == "failed"]
    done = [r for r in records if r.state == "complete"]
    assert len(failed) == 4 and len(done) == 4
    for f in failed:
        assert f.retried and f.attempt == 0 and "RuntimeError: disk full on try 1" in f.error
        retry = next(r for r in done if r.retry_of == f.number)
        assert retry.params == f.params and retry.attempt == 1 and retry.number > f.number
    study = policy.study
    assert len(study.trials) == 8
    assert "disk full" in study.trials[failed[0].number].user_attrs["hpcopt_error"]


def test_retries_stop_at_max_retries_and_nan_fails():
    policy = HpoPolicy(settings(n_trials=3, max_retries=2), space_from(BRANIN_SPACE), seed=0)
    records = drive(policy, PythonRunner(lambda p: math.nan))
    assert len(records) == 9 and all(r.state == "failed" for r in records)
    assert sorted(r.attempt for r in records) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [r.retried for r in records if r.attempt == 2] == [False] * 3
    assert all("nan" in r.error for r in records)


def test_max_concurrent_and_time_budget():
    now = [0.0]
    policy = HpoPolicy(settings(n_trials=100, max_concurrent=2, time_budget=10.0),
                       space_from(BRANIN_SPACE), seed=0, n_workers=8, clock=lambda: now[0])
    a, b = policy.ask(), policy.ask()
    assert a and b and policy.ask() is None and policy.n_in_flight == 2
    policy.tell_result(TrialOutcome(a.number, "complete", 1.0))
    c = policy.ask()
    assert c is not None
    now[0] = 10.5                                       # the wall-time budget is spent
    assert policy.ask() is None and not policy.done     # b and c still running
    policy.tell_result(TrialOutcome(b.number, "complete", 2.0))
    policy.tell_result(TrialOutcome(c.number, "pruned", None))
    assert policy.done and len(policy.study.trials) == 3


def test_a_trial_queued_ahead_carries_the_time_budgets_end_and_is_re_queued_if_late(
        tmp_path):
    """A queued trial may wait on its worker past the budget: it carries the budget's end
    (start_by) and its worker refuses it after that; the policy re-queues it unstarted."""
    import time

    from hpcopt.hpo.campaign import HpoEvaluator
    from hpcopt.hpo.config import parse_hpo_config
    from hpcopt.farm import Task
    from hpcopt.tomlread import Table
    import tomllib
    now = [0.0]
    policy = HpoPolicy(settings(n_trials=100, time_budget=10.0), space_from(BRANIN_SPACE),
                       seed=0, n_workers=2, has_workers=True, clock=lambda: now[0])
    first = policy.ask()
    now[0] = 4.0
    second = policy.ask()
    assert first.start_by == pytest.approx(time.time() + 10.0, abs=0.5)
    assert second.start_by == pytest.approx(time.time() + 6.0, abs=0.5)   # 4 s of budget used
    for extra in ({}, {"time_budget": None}):            # not queued ahead / no budget
        other = HpoPolicy(settings(n_trials=100, **{"time_budget": 10.0, **extra}),
                          space_from(BRANIN_SPACE), seed=0, n_workers=2,
                          has_workers=bool(extra))
        assert other.ask().start_by is None
    text = ('[hpo]\nsampler = "random"\n[objective]\n'
            'function = "hpcopt.toys.objectives:branin"\n[space]\n' + BRANIN_SPACE)
    hpo = parse_hpo_config(Table(tomllib.loads(text), "", "c.toml"), "c.toml", tmp_path,
                           "c.h5")
    evaluator = HpoEvaluator(hpo, "rank 1 on here")
    late = TrialSpec(7, {"x1": 1.0, "x2": 2.0}, start_by=time.time() - 0.01)
    status, values, _ = evaluator.evaluate(Task(7, payload=late.to_dict()), None)
    refused = TrialOutcome.from_dict(json.loads(values["outcome"]))
    assert refused.interrupted and refused.duration == 0.0 and "time budget" in refused.error
    on_time = TrialSpec(7, {"x1": 1.0, "x2": 2.0}, start_by=time.time() + 60)
    _, values, _ = evaluator.evaluate(Task(7, payload=on_time.to_dict()), None)
    ran = TrialOutcome.from_dict(json.loads(values["outcome"]))
    assert ran.state == "complete" and ran.value == pytest.approx(branin({"x1": 1.0, "x2": 2.0}))
    policy.tell_result(TrialOutcome(second.number, "complete", 1.0))
    policy.tell_result(replace(refused, number=first.number))    # no row, re-queued
    assert policy.drain_records() == []
    waiting = [t for t in policy.study.trials if t.state == optuna.trial.TrialState.WAITING]
    assert len(waiting) == 1
    assert waiting[0].system_attrs["fixed_params"] == policy.study.trials[first.number].params


@pytest.mark.parametrize("sampler, extra, in_flight", [
    ("random", {}, 9), ("qmc", {}, 9),                    # history-free: WORKER_WINDOW each
    ("tpe", {}, 3),                                       # the history matters: one per worker
    ("random", {"deterministic": True}, None),            # its own window (DETERMINISTIC_WINDOW)
    ("random", {"max_concurrent": 2}, 2)])                # the user's limit, exactly
def test_history_free_samplers_queue_trials_ahead_on_each_worker(sampler, extra, in_flight):
    policy = HpoPolicy(settings(sampler=sampler, n_trials=50, **extra), space_from(BRANIN_SPACE),
                       seed=0, n_workers=3, has_workers=True)
    asked = []
    while (spec := policy.ask()) is not None and len(asked) < 20:
        asked.append(spec)
    assert policy.queues_ahead == (in_flight == 9) and WORKER_WINDOW == 3
    if in_flight is not None:
        assert len(asked) == in_flight == policy.n_in_flight
    alone = HpoPolicy(settings(sampler=sampler, n_trials=50, **extra), space_from(BRANIN_SPACE),
                      seed=0, n_workers=1, has_workers=False)       # one rank: nothing queued
    assert not alone.queues_ahead


def test_the_random_sampler_draws_what_optunas_draws():
    """CachedRandomSampler keeps each parameter's transform; the values stay Optuna's own."""
    def objective(trial):
        return (trial.suggest_float("x", -5, 5) + trial.suggest_float("lr", 1e-5, 1, log=True)
                + trial.suggest_float("s", 0, 1, step=0.1) + trial.suggest_int("n", 1, 64, log=True)
                + trial.suggest_int("k", 0, 30, step=3)
                + len(trial.suggest_categorical("c", ["a", "bb", "ccc"])))

    studies = []
    for sampler in (CachedRandomSampler(seed=3), optuna.samplers.RandomSampler(seed=3)):
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=60)
        studies.append([t.params for t in study.trials])
    assert studies[0] == studies[1]


def test_a_joint_random_draw_gives_what_a_draw_parameter_by_parameter_gives():
    """propose.draw takes every parameter of an unconditional random space in one call to
    the random state; the values are those of suggesting them one by one (single-valued
    parameters take no random number, fixed ones are not Optuna's), to the last bit."""
    from hpcopt.hpo.propose import _DrawTrial
    space = space_from("""
        x = { type = "uniform", low = -5.0, high = 5.0 }
        lr = { type = "loguniform", low = 1e-5, high = 1.0 }
        s = { type = "uniform", low = 0.0, high = 1.0, step = 0.1 }
        one = { type = "categorical", choices = ["only"] }
        n = { type = "int", low = 1, high = 64, log = true }
        k = { type = "int", low = 0, high = 30, step = 3 }
        c = { type = "categorical", choices = ["a", "bb", "ccc"] }
        f = { type = "fixed", value = 3 }
        y = { type = "uniform", low = 0.0, high = 1.0 }
        big = { type = "uniform", low = -1e300, high = 1e300 }
        """)
    view = optuna.create_study(sampler=CachedRandomSampler(seed=0))
    for seed in range(200):
        joint = draw(view, space, seed)
        reseed(view.sampler, seed)
        one_by_one = _DrawTrial(view)
        space.suggest(one_by_one)
        assert joint == one_by_one.frozen.params and list(joint) == list(one_by_one.frozen.params)
        assert joint["one"] == "only" and "f" not in joint
    assert len({draw(view, space, seed)["y"] for seed in range(40)}) == 40


def test_maximize_and_stop():
    policy = HpoPolicy(settings(n_trials=50, direction="maximize"), space_from(BRANIN_SPACE))
    records = []
    for _ in range(5):
        spec = policy.ask()
        records += policy.tell_result(TrialOutcome(spec.number, "complete", branin(spec.params)))
    policy.stop("signal")
    assert policy.ask() is None and policy.done
    assert policy.best()[1] == max(r.value for r in records)


def test_deterministic_mode_gives_the_same_trials_whatever_the_completion_order():
    def run(order_seed):
        policy = HpoPolicy(settings(sampler="tpe", n_trials=24, n_startup_trials=4,
                                    deterministic=True, max_concurrent=3),
                           space_from(BRANIN_SPACE), seed=11, n_workers=3)
        records = drive(policy, PythonRunner(branin), n_workers=3,
                        rng=np.random.default_rng(order_seed))
        return [(r.number, r.params["x1"], r.params["x2"], r.value) for r in records]

    first, second = run(1), run(2)
    assert first == second
    assert [n for n, *_ in first] == list(range(24))     # told in trial-number order


def test_without_deterministic_mode_the_order_matters():
    def run(order_seed):
        policy = HpoPolicy(settings(sampler="tpe", n_trials=24, n_startup_trials=4,
                                    max_concurrent=3), space_from(BRANIN_SPACE), seed=11)
        records = drive(policy, PythonRunner(branin), n_workers=3,
                        rng=np.random.default_rng(order_seed))
        return sorted((r.number, r.params["x1"]) for r in records)

    assert run(1) != run(2)


def test_global_budget_is_exact_when_two_coordinators_share_a_study():
    storage = optuna.storages.InMemoryStorage()
    s = settings(n_trials=5)
    space = space_from(BRANIN_SPACE)
    a = HpoPolicy(s, space, seed=0, stream=0, storage=storage, n_workers=3)
    b = HpoPolicy(s, space, seed=0, stream=1, storage=storage, resume=True, n_workers=3)
    specs = [a.ask(), a.ask(), a.ask(), b.ask(), b.ask()]
    assert all(specs) and a.ask() is None and b.ask() is None
    assert specs[0].params != specs[3].params              # different sampler streams
    b._budget_open = lambda: True            # simulate the race: b checked before a asked
    assert b.ask() is None
    del b._budget_open
    over = [t for t in b.study.trials if t.user_attrs.get(A_OVER)]
    assert len(over) == 1 and over[0].state == optuna.trial.TrialState.FAIL
    for spec, pol in zip(specs, (a, a, a, b, b)):
        pol.tell_result(TrialOutcome(spec.number, "complete", 1.0))
    assert a.done and b.done and len(a.finished_records()) == 5


def test_a_siblings_trial_between_the_budget_check_and_the_new_trial_is_counted():
    """The policy counts again after creating its trial unless that trial came right after
    the ones it had counted: a sibling's trial created in between takes the last unit."""
    storage = optuna.storages.InMemoryStorage()
    s = settings(n_trials=3)
    space = space_from(BRANIN_SPACE)
    a = HpoPolicy(s, space, seed=0, stream=0, storage=storage, n_workers=3)
    b = HpoPolicy(s, space, seed=0, stream=1, storage=storage, resume=True, n_workers=3)
    assert a.ask() and a.ask()                       # 2 of 3
    create = b._new_trial

    def sibling_first():
        assert a.ask() is not None                   # after b counted 2, before b creates
        return create()

    b._new_trial = sibling_first
    assert b.ask() is None
    over = [t for t in b.study.trials if t.user_attrs.get(A_OVER)]
    assert [t.number for t in over] == [3] and a.n_in_flight == 3 and b.n_in_flight == 0


def test_an_existing_study_needs_resume(tmp_path):
    spec = StorageSpec("journal", str(tmp_path / "s.journal"))
    space = space_from(BRANIN_SPACE)
    first = HpoPolicy(settings(storage=spec, n_trials=3), space)
    drive(first, PythonRunner(branin))
    with pytest.raises(ResultFileError, match="--resume"):
        HpoPolicy(settings(storage=spec, n_trials=3), space)
    again = HpoPolicy(settings(storage=spec, n_trials=5), space, resume=True)
    records = drive(again, PythonRunner(branin))
    assert sorted(r.number for r in records) == [3, 4]


def test_close_requeues_running_trials_and_a_resumed_run_finishes_them(tmp_path):
    spec = StorageSpec("journal", str(tmp_path / "s.journal"))
    space = space_from(BRANIN_SPACE)
    first = HpoPolicy(settings(storage=spec, n_trials=6), space, seed=5, n_workers=3)
    s0, s1, s2 = first.ask(), first.ask(), first.ask()
    done = first.tell_result(TrialOutcome(s0.number, "complete", branin(s0.params)))
    assert first.close() == []                    # s1, s2 interrupted and enqueued
    second = HpoPolicy(settings(storage=spec, n_trials=6), space, seed=5, resume=True)
    records = drive(second, PythonRunner(branin))
    assert [r.params for r in records[:2]] == [s1.params, s2.params]
    finished = second.finished_records()
    assert len(finished) == 6 and all(r.state == "complete" for r in finished)
    assert finished[0].number == done[0].number and finished[0].value == done[0].value


def test_a_trial_asked_but_never_claimed_by_a_killed_coordinator_is_requeued(tmp_path):
    """Killed between Optuna's ask and recording its owner, a coordinator leaves an
    ownerless RUNNING trial: with no other coordinator alive, the next one re-queues it,
    so the budget is still met exactly."""
    spec = StorageSpec("journal", str(tmp_path / "s.journal"))
    space = space_from(BRANIN_SPACE)
    first = HpoPolicy(settings(storage=spec, n_trials=4), space)
    s0 = first.ask()
    first.tell_result(TrialOutcome(s0.number, "complete", branin(s0.params)))
    orphan = first.study.ask()                     # the kill: no owner recorded
    first._write_heartbeat(closed=True)            # its coordinator is gone
    first.flush()                                  # (group commit: written on flush)
    second = HpoPolicy(settings(storage=spec, n_trials=4), space, resume=True)
    state = {t.number: t.state for t in second.study.get_trials(deepcopy=False)}
    assert state[orphan.number] == optuna.trial.TrialState.FAIL
    records = drive(second, PythonRunner(branin))
    assert len(records) == 3
    assert len(second.finished_records()) == 4     # the budget, exactly


def test_workers_draw_the_next_trials_on_their_replica(tmp_path):
    """worker_sampling: a trial's spec asks its worker to draw; the worker's draw (on a
    read-only replica of the journal) becomes a next trial, so rank 0 draws only the first."""
    import time
    from hpcopt.hpo.objective import ProposingRunner
    from hpcopt.hpo.config import HpoConfig, ObjectiveConfig
    from hpcopt.hpo.policy import A_DRAWN
    spec = StorageSpec("journal", str(tmp_path / "s.journal"))
    s = settings(storage=spec, sampler="tpe", n_trials=12, n_startup_trials=4)
    space = space_from(BRANIN_SPACE)
    policy = HpoPolicy(s, space, seed=2, has_workers=True)
    assert policy.worker_sampling
    config = HpoConfig(s, ObjectiveConfig(function="x:y"), space, "t.toml", tmp_path)

    def slow(params):
        time.sleep(0.2)                             # the worker's draw finishes meanwhile
        return branin(params)
    runner = ProposingRunner(PythonRunner(slow), config)
    records = drive(policy, runner)
    assert len(records) == 12
    drawn = [t.user_attrs[A_DRAWN] for t in policy.study.trials]
    assert drawn[0] == "rank 0" and drawn.count("worker") >= 9
    assert len({tuple(sorted(r.params.items())) for r in records}) == 12
    replica = open_storage_read_only(spec)
    with pytest.raises(PermissionError):             # the replica never writes
        replica.set_study_user_attr(0, "k", 1)


def test_once_its_replica_is_loaded_a_worker_waits_for_its_draw(tmp_path):
    """Zero-cost trials end before their worker's draw: the worker waits for it (after the
    replica's first draw), so that rank 0, whose draws would cost every worker, draws only
    until then (before: every other trial, the draw not being ready)."""
    from hpcopt.hpo.objective import ProposingRunner
    from hpcopt.hpo.config import HpoConfig, ObjectiveConfig
    from hpcopt.hpo.policy import A_DRAWN
    spec = StorageSpec("journal", str(tmp_path / "s.journal"))
    s = settings(storage=spec, sampler="tpe", n_trials=40, n_startup_trials=4)
    space = space_from(BRANIN_SPACE)
    policy = HpoPolicy(s, space, seed=3, has_workers=True)
    config = HpoConfig(s, ObjectiveConfig(function="x:y"), space, "t.toml", tmp_path)
    runner = ProposingRunner(PythonRunner(branin), config)
    records = drive(policy, runner)
    assert len(records) == 40
    drawn = [t.user_attrs[A_DRAWN] for t in policy.study.trials]
    first = drawn.index("worker")
    assert drawn[0] == "rank 0" and first < 39, drawn
    assert drawn[first:] == ["worker"] * (40 - first), drawn
    assert len({tuple(sorted(r.params.items())) for r in records}) == 40


def test_a_stop_signal_ends_a_workers_wait_for_its_draw(tmp_path, monkeypatch):
    """A worker waiting for a slow draw (GP on a long history: seconds) still stops at
    once on SIGTERM/SIGUSR1: the wait gives up and the draw is dropped."""
    import time
    from hpcopt.hpo import propose
    from hpcopt.hpo.config import HpoSettings
    from hpcopt.mpi import runtime

    def slow_draw(view, space, seed):
        time.sleep(3.0)
        return {"x": 0.0, "y": 0.0}
    monkeypatch.setattr(propose, "draw", slow_draw)
    monkeypatch.setattr(propose.WorkerProposer, "_study", lambda self: None)
    proposer = propose.WorkerProposer(HpoSettings(sampler="tpe"), space_from(BRANIN_SPACE))
    proposer._warmed = proposer.ready = True      # the replica has drawn before
    proposer.start(1)
    runtime.request_stop("a signal")
    try:
        t0 = time.monotonic()
        assert proposer.take() is None
        assert time.monotonic() - t0 < 1.0
    finally:
        runtime.reset_stop()
    proposer.start(2)                              # the pending draw is kept (not a new one)
    assert proposer.take() == {"x": 0.0, "y": 0.0}


def open_storage_read_only(spec):
    from hpcopt.hpo.storage import open_storage
    return open_storage(spec, read_only=True)
