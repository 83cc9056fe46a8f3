"""PbtPolicy: exploit/explore decisions, asynchrony, cleanup, failures, determinism, resume."""

import json
import threading
from types import SimpleNamespace
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pytest

from hpcopt.errors import DataError
from hpcopt.hpo.campaign import table_dtype
from hpcopt.hpo.pbt.lineage import PBT_FIELDS, SegmentOutcome, lineage_dtype, lineage_rows
from hpcopt.hpo.pbt.policy import PbtPolicy
from hpcopt.hpo.pbt.config import PbtSettings
from hpcopt.hpo.pbt.runner import run_segment
from hpcopt.toys.pbt_sim import simulate
from hpcopt.toys.pbt_toy import annealing
from hpcopt.store import schema
from hpo_helpers import space_from

SPACE = space_from('lr = { type = "loguniform", low = 1e-3, high = 1.5 }')


def settings(**kw):
    base = dict(population=4, perturbation_interval=10, max_steps=40, quantile_fraction=0.25,
                resample_probability=0.0, perturbation_factors=(0.5,))
    base.update(kw)
    return PbtSettings(**base)


def done(spec, score):
    """A worker's outcome for `spec`, with its checkpoint folder made as the runner would."""
    Path(spec.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    return SegmentOutcome(spec.task_id, "complete", score, spec.end_step)


def toy_runner(payload):
    return run_segment(annealing, payload)


def on_disk(root: Path) -> set:
    return {(int(p.parent.name[7:]), int(p.name[4:])) for p in root.glob("member_*/seg_*")}


def chain_ok(rows):
    """Every completed segment starts where the segment it restored ended."""
    ok = rows[rows["status"] == schema.OK]
    end = {int(r["task_id"]): int(r["end_step"]) for r in ok}
    for r in ok:
        if r["parent_task"] < 0:
            assert r["start_step"] == 0
        else:
            assert r["start_step"] == end[int(r["parent_task"])]


# -- decisions ------------------------------------------------------------------------------

def test_bottom_member_copies_a_top_checkpoint_and_explores(tmp_path):
    policy = PbtPolicy(settings(), SPACE, root=tmp_path, seed=3)
    first = [policy.ask() for _ in range(4)]
    assert [s.member for s in first] == [0, 1, 2, 3] and policy.ask() is None
    assert all(s.restore_from is None and s.start_step == 0 and s.end_step == 10 for s in first)
    # scores arrive 0, 1, 2, 3 (minimize): when member 2 (score 4) arrives it is the worst
    # of three ranked members; the best (member 1) is its donor
    for spec, score in zip(first, [3.0, 1.0, 4.0, 2.0]):
        records = policy.tell_result(done(spec, score))
        assert len(records) == 1 and records[0].ok
    nxt = {s.member: s for s in (policy.ask() for _ in range(4))}
    copy = nxt[2]
    assert copy.parent_member == 1 and copy.parent_task == first[1].task_id
    assert copy.restore_from == first[1].checkpoint_dir and copy.start_step == 10
    assert copy.params["lr"] == pytest.approx(0.5 * first[1].params["lr"])   # factor 0.5
    assert copy.perturbation == {"lr": "*0.5"}
    # member 0 (score 3) was ranked alone when it arrived: it continues, like 1 and 3
    for m in (0, 1, 3):
        s = nxt[m]
        assert s.parent_member == -1 and s.restore_from == first[m].checkpoint_dir
        assert s.params == first[m].params and s.segment == 1 and s.start_step == 10


def test_maximize_flips_the_ranking(tmp_path):
    policy = PbtPolicy(settings(), SPACE, root=tmp_path, seed=3, direction="maximize")
    first = [policy.ask() for _ in range(4)]
    for spec, score in zip(first, [3.0, 1.0, 4.0, 2.0]):
        policy.tell_result(done(spec, score))
    nxt = {s.member: s for s in (policy.ask() for _ in range(4))}
    # member 1 (score 1) is the worst of {0, 1}: it copies member 0; member 2 (4) is now best
    assert nxt[1].parent_member == 0 and nxt[2].parent_member == -1
    assert policy.best() == (first[2].params, 4.0)


def test_quantiles_use_each_members_most_recent_score_up_to_the_step(tmp_path):
    policy = PbtPolicy(settings(population=4, quantile_fraction=0.5), SPACE, root=tmp_path)
    specs = [policy.ask() for _ in range(4)]
    for spec, score in zip(specs, [1.0, 2.0, 3.0, 4.0]):
        policy.tell_result(done(spec, score))
    ahead = policy.ask()                            # member 0 runs on to step 20 ...
    policy.tell_result(done(ahead, 100.0))          # ... and gets much worse
    bottom, top = policy.quantiles(10)              # at step 10 it still counts as best
    assert top == [0, 1] and bottom == [3, 2]
    bottom, top = policy.quantiles(20)
    assert bottom[0] == 0


def test_no_exploit_with_quantile_fraction_zero(tmp_path):
    policy = PbtPolicy(settings(quantile_fraction=0.0, max_steps=30), SPACE, root=tmp_path, seed=1)
    result = simulate(policy, toy_runner, n_workers=3)
    rows = lineage_rows(result.records, SPACE)
    assert np.all(rows["parent_member"] == -1)
    for m in range(4):
        assert len(set(rows["p_lr"][rows["member"] == m])) == 1      # fixed hyperparameters
    assert sorted(rows["end_step"][rows["end_step"] == 30].tolist()) == [30] * 4


def test_finished_members_are_no_donors(tmp_path):
    policy = PbtPolicy(settings(population=2, quantile_fraction=0.5, max_steps=10), SPACE,
                       root=tmp_path)
    a, b = policy.ask(), policy.ask()
    policy.tell_result(done(a, 1.0))
    policy.tell_result(done(b, 5.0))
    assert policy.done and policy.ask() is None     # both reached max_steps: nothing to copy


def test_max_concurrent_and_time_budget(tmp_path):
    policy = PbtPolicy(settings(), SPACE, root=tmp_path, max_concurrent=2)
    assert policy.ask() and policy.ask() and policy.ask() is None
    late = PbtPolicy(settings(), SPACE, root=tmp_path, time_budget=0.0)
    assert late.ask() is None and late.done


# -- asynchrony -----------------------------------------------------------------------------

def test_a_slow_member_does_not_hold_the_others_back(tmp_path):
    policy = PbtPolicy(settings(max_steps=100), SPACE, root=tmp_path, seed=2)
    # member 0's segments take 10x longer (until it exploits another member's state, its
    # segments still belong to member 0: the cost follows the member)
    result = simulate(policy, toy_runner, n_workers=4,
                      cost=lambda s: 10.0 if s.member == 0 else 1.0)
    order = [r.spec.member for r in result.records]
    before_first_slow = order[:order.index(0)]
    for m in (1, 2, 3):
        assert before_first_slow.count(m) >= 5      # others went on, several segments each
    counts = np.bincount(order, minlength=4)
    assert counts[0] < counts[1:].min()             # members advance at their own pace


def test_real_threads_no_population_barrier(tmp_path):
    """Member 0's first segment only finishes once every other member has finished 3
    segments: with a population-wide barrier they could not (the wait would time out)."""
    policy = PbtPolicy(settings(max_steps=60), SPACE, root=tmp_path, seed=4)
    finished = {1: 0, 2: 0, 3: 0}
    enough = threading.Event()

    def objective(params, ctx):
        if ctx.member == 0 and ctx.segment == 0 and not enough.wait(timeout=60):
            raise RuntimeError("the other members did not advance")
        return annealing(params, ctx)

    order = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        running = set()
        while not policy.done:
            while len(running) < 4 and (spec := policy.ask()) is not None:
                running.add(pool.submit(run_segment, objective, spec.to_dict()))
            done_now, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done_now:
                rec = policy.tell_result(fut.result())[0]
                assert rec.ok, rec.outcome.error
                order.append(rec.spec.member)
                if rec.spec.member != 0:
                    finished[rec.spec.member] += 1
                    if min(finished.values()) >= 3:
                        enough.set()
    first_slow = order.index(0)
    assert all(order[:first_slow].count(m) >= 3 for m in (1, 2, 3))
    assert all(m.state == "done" for m in policy.members)


# -- checkpoints ---------------------------------------------------------------------------

def test_only_referenced_checkpoints_stay_on_disk(tmp_path):
    policy = PbtPolicy(settings(max_steps=60, quantile_fraction=0.5), SPACE, root=tmp_path, seed=5)
    seen_copy = [False]
    # run the loop by hand to check the disk after every result
    running = []
    while not policy.done:
        while len(running) < 3 and (spec := policy.ask()) is not None:
            running.append((spec, toy_runner(spec.to_dict())))
        spec, out = running.pop(0)
        policy.tell_result(out)
        writing = {(s.member, s.segment) for s, _ in running}     # segments in flight
        assert on_disk(tmp_path) == policy.referenced() | writing
        held = {(m.restore.member, m.restore.segment) for m in policy.members
                if m.restore and m.state in ("ready", "running")}
        latest = {(m.latest.member, m.latest.segment) for m in policy.members if m.latest}
        if held - latest:
            seen_copy[0] = True       # a donor's older checkpoint kept for a pending copy
    assert seen_copy[0]
    final = {(m.latest.member, m.latest.segment) for m in policy.members}
    assert on_disk(tmp_path) == final and len(final) == 4


def test_failed_segments_are_retried_then_the_member_stops(tmp_path):
    calls = {}

    def flaky(params, ctx):
        calls[(ctx.member, ctx.start_step)] = calls.get((ctx.member, ctx.start_step), 0) + 1
        if ctx.member == 1 and ctx.start_step == 10 and calls[(1, 10)] == 1:
            raise ValueError("transient")
        if ctx.member == 2 and ctx.start_step == 20:
            raise ValueError("permanent")
        return annealing(params, ctx)

    policy = PbtPolicy(settings(quantile_fraction=0.0), SPACE, root=tmp_path, max_retries=1)
    result = simulate(policy, lambda p: run_segment(flaky, p), n_workers=2)
    rows = lineage_rows(result.records, SPACE)
    failed = rows[rows["status"] == schema.FAILED]
    assert sorted(failed["member"].tolist()) == [1, 2, 2]
    assert "transient" in failed[failed["member"] == 1]["error"][0]
    retry = rows[(rows["member"] == 1) & (rows["start_step"] == 10)]
    assert retry["status"].tolist() == [schema.FAILED, schema.OK]
    assert len(set(retry["parent_task"].tolist())) == 1          # same restore point
    assert retry["state"].tolist() == ["failed", "complete"]
    assert retry["attempt"].tolist() == [0, 1] and retry["retried"].tolist() == [1, 0]
    assert retry["retry_of"].tolist() == [-1, retry["task_id"][0]]
    gave_up = failed[failed["member"] == 2]
    assert gave_up["retried"].tolist() == [1, 0] and gave_up["attempt"].tolist() == [0, 1]
    assert [m.state for m in policy.members] == ["done", "done", "stopped", "done"]
    assert on_disk(tmp_path) == {(m.latest.member, m.latest.segment) for m in policy.members}
    chain_ok(rows)


# -- determinism, lineage rows ---------------------------------------------------------------

def run_toy(root, seed, **kw):
    policy = PbtPolicy(settings(population=6, max_steps=80, quantile_fraction=0.34,
                                resample_probability=0.25, perturbation_factors=(0.8, 1.2)),
                       SPACE, root=root, seed=seed, **kw)
    cost = lambda s: 1.0 + (s.task_id * 7919 % 13) / 13     # uneven, fixed durations
    return simulate(policy, toy_runner, n_workers=3, cost=cost)


def comparable(rows):
    keep = [n for n in rows.dtype.names if n not in ("started", "duration", "worker")]
    return [tuple(r[n] for n in keep) for r in rows]


def test_same_seed_same_lineage(tmp_path):
    a = lineage_rows(run_toy(tmp_path / "a", 11).records, SPACE)
    b = lineage_rows(run_toy(tmp_path / "b", 11).records, SPACE)
    c = lineage_rows(run_toy(tmp_path / "c", 12).records, SPACE)
    assert comparable(a) == comparable(b) and comparable(a) != comparable(c)
    assert np.any(a["parent_member"] >= 0)          # the run did exploit
    chain_ok(a)


def test_lineage_rows_hold_every_field(tmp_path):
    records = run_toy(tmp_path, 1).records
    rows = lineage_rows(records, SPACE, ranks={records[0].spec.task_id: 3})
    dtype = lineage_dtype(SPACE)
    assert rows.dtype == dtype and dtype.names[0] == "task_id" and dtype.names[1] == "status"
    # the HPO trials table, then the PBT columns: HPO reports and exports read it unchanged
    hpo = table_dtype(SimpleNamespace(space=SPACE))
    assert list(dtype.names) == list(hpo.names) + [n for n, _, _ in PBT_FIELDS]
    assert all(dtype[n] == hpo[n] for n in hpo.names)
    assert sorted(rows["task_id"].tolist()) == list(range(len(rows)))
    r, rec = rows[0], records[0]
    assert r["rank"] == 3 and r["objective"] == rec.outcome.score and r["state"] == "complete"
    assert json.loads(r["intermediate_json"]) == rec.outcome.intermediate
    assert r["n_steps"] == r["end_step"] - r["start_step"] == r["last_step"] - r["start_step"]
    assert json.loads(r["params_json"]) == rec.spec.params and r["p_lr"] == rec.spec.params["lr"]
    assert r["checkpoint"] == f"member_{rec.spec.member}/seg_{rec.spec.segment}"
    jumps = rows[rows["parent_member"] >= 0]
    assert all(json.loads(t) for t in jumps["perturbation_json"])


# -- resume -------------------------------------------------------------------------------

def test_resume_from_rows_and_checkpoints(tmp_path):
    s = settings(population=5, max_steps=80, quantile_fraction=0.4, resample_probability=0.2,
                 perturbation_factors=(0.8, 1.2))
    first = PbtPolicy(s, SPACE, root=tmp_path, seed=7)
    told, in_flight = [], []
    # run 14 results with 3 workers, then "kill": 3 segments in flight wrote partial checkpoints
    for _ in range(200):
        while len(in_flight) < 3 and (spec := first.ask()) is not None:
            in_flight.append(toy_runner(spec.to_dict()))
        if len(told) == 14:
            break
        told += first.tell_result(in_flight.pop(0))
    lost = {(o["task_id"]) for o in in_flight}
    assert len(lost) == 3 and on_disk(tmp_path) - first.referenced()      # stray folders
    rows = lineage_rows(told, SPACE)
    padded = np.concatenate([rows, schema.empty_rows(rows.dtype, [0, 0])])  # pending tail
    again = PbtPolicy.from_rows(padded, s, SPACE, root=tmp_path, seed=7)
    assert on_disk(tmp_path) == again.referenced()                         # strays removed
    assert again.next_task_id == max(r.spec.task_id for r in told) + 1
    for m in again.members:                                  # each member from its latest
        assert m.state == "ready" and m.restore == m.latest and m.step == m.latest.step
    rest = simulate(again, toy_runner, n_workers=3)          # the toy checks the restored step
    all_rows = np.concatenate([rows, lineage_rows(rest.records, SPACE)])
    assert all(r.ok for r in rest.records)
    assert len(set(all_rows["task_id"].tolist())) == len(all_rows)
    assert not lost & set(rows["task_id"].tolist())          # lost segments left no row
    chain_ok(all_rows)
    assert [m.state for m in again.members] == ["done"] * 5
    finals = all_rows[all_rows["end_step"] == 80]
    assert sorted(set(finals["member"].tolist())) == list(range(5))


def test_resume_keeps_finished_and_stopped_members(tmp_path):
    s = settings(population=2, max_steps=10)
    p = PbtPolicy(s, SPACE, root=tmp_path)
    a, b = p.ask(), p.ask()
    recs = p.tell_result(done(a, 1.0))
    recs += p.tell_result(SegmentOutcome(b.task_id, "failed", error="boom"))
    again = PbtPolicy.from_rows(lineage_rows(recs, SPACE), s, SPACE, root=tmp_path)
    assert [m.state for m in again.members] == ["done", "stopped"] and again.done


def test_resume_without_the_checkpoint_is_a_data_error(tmp_path):
    s = settings()
    p = PbtPolicy(s, SPACE, root=tmp_path)
    spec = p.ask()
    recs = p.tell_result(done(spec, 1.0))
    Path(spec.checkpoint_dir).rmdir()
    with pytest.raises(DataError, match="checkpoint of member 0"):
        PbtPolicy.from_rows(lineage_rows(recs, SPACE), s, SPACE, root=tmp_path)
