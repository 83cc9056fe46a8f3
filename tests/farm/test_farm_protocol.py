"""The farm's protocol in-process (threads as ranks): every task once, retries and
avoid_rank, prefetch windows, the fair first round, STOP drains, stop requests from any
rank, REPORT/DECISION, time-outs, exits raised by objectives, static rounds and node
sub-coordinators.  The same code runs under mpiexec in tests/mpi/test_sweep_farm.py."""

import math
import signal
import time

import numpy as np
import pytest

from farm_helpers import DTYPE, ListSource, run_farm, run_static_farm
from hpcopt.farm import FarmOptions, LocalStop, Outcome
from hpcopt.farm import coordinator as coordinator_module
from hpcopt.store import schema


def ids(rows) -> list[int]:
    return sorted(rows["task_id"].tolist())


@pytest.mark.parametrize("size, node_size", [(1, None), (2, None), (3, None), (5, 2), (9, 4)])
@pytest.mark.parametrize("chunk", [1, 3])
@pytest.mark.parametrize("batches, evaluate_many", [(True, False), (False, False), (True, True)])
def test_every_task_gives_exactly_one_row(size, node_size, chunk, batches, evaluate_many):
    options = FarmOptions(chunk_size=chunk, hierarchy="nodes" if node_size else "flat")
    run = run_farm(size, 50, options=options, node_size=node_size, batch=evaluate_many,
                   source=ListSource(50, batches=batches))
    rows = run.rows
    assert ids(rows) == list(range(50))
    assert (rows["status"] == schema.OK).all()
    np.testing.assert_array_equal(rows["objective"], rows["task_id"].astype(float))
    assert (rows["attempts"] == 1).all()
    if size > 1:
        assert 0 not in set(rows["rank"].tolist())          # rank 0 coordinates only
    assert run.stats[0].tasks_done == 50 and not run.stats[0].interrupted
    if evaluate_many and batches:       # whole chunks went through the evaluator's loop
        sizes = [n for ev in run.evaluators for n in getattr(ev, "batches", [])]
        assert sum(sizes) == 50 and max(sizes) <= chunk


@pytest.mark.parametrize("size", [1, 3])
def test_a_task_raising_inside_evaluate_many_fails_alone_and_the_chunk_goes_on(size):
    """SystemExit in the evaluator's own loop: that task fails, the rest of the chunk
    is evaluated (by a new call) and retries of failed tasks go one by one."""
    def exits(task, ev, report):
        if task.task_id % 7 == 3:
            raise SystemExit(0)
        if task.task_id % 7 == 5 and task.attempt == 0:
            raise RuntimeError("first attempt fails")

    run = run_farm(size, 40, options=FarmOptions(chunk_size=8, max_retries=1), batch=True,
                   behave=exits)
    rows = run.rows
    assert ids(rows) == list(range(40))
    by = {int(r["task_id"]): r for r in rows}
    for t, r in by.items():
        if t % 7 == 3:
            assert r["status"] == schema.FAILED and r["attempts"] == 2
            assert schema.decode_message(r["message"]) == "SystemExit: 0"
        elif t % 7 == 5:
            assert r["status"] == schema.OK and r["attempts"] == 2
        else:
            assert r["status"] == schema.OK and r["attempts"] == 1


def test_failed_task_is_retried_on_another_rank():
    def rank1_fails(task, ev, report):
        if ev.rank == 1:
            raise RuntimeError("rank 1 is broken")
    run = run_farm(3, 30, options=FarmOptions(chunk_size=1, max_retries=1), behave=rank1_fails)
    rows = run.rows
    assert ids(rows) == list(range(30))
    assert (rows["status"] == schema.OK).all() and (rows["rank"] == 2).all()
    retried = rows["attempts"] == 2
    assert retried.any() and (rows["attempts"][~retried] == 1).all()
    # every retried task had first run (and failed) on rank 1: avoid_rank sent it elsewhere
    assert set(rows["task_id"][retried].tolist()) <= set(run.evaluators[1].evaluated)
    assert run.stats[0].retries == int(retried.sum())


def test_retries_exhausted_give_one_failed_row_with_the_message_and_inputs():
    def always_fails(task, ev, report):
        raise ValueError(f"bad task {task.task_id}")
    run = run_farm(2, 10, options=FarmOptions(chunk_size=2, max_retries=2), behave=always_fails)
    rows = run.rows
    assert ids(rows) == list(range(10))                    # one row per task, not per attempt
    assert (rows["status"] == schema.FAILED).all() and (rows["attempts"] == 3).all()
    for r in rows:
        assert schema.decode_message(r["message"]) == f"ValueError: bad task {r['task_id']}"
        assert r["x0"] == r["task_id"]                      # inputs kept on failure
    assert len(run.evaluators[1].evaluated) == 30           # the only worker tried 3 times


def test_retries_across_sub_coordinators_avoid_the_failing_rank():
    def rank3_fails(task, ev, report):
        if ev.rank == 3:
            raise RuntimeError("rank 3 is broken")
    options = FarmOptions(chunk_size=1, max_retries=1, hierarchy="nodes")
    run = run_farm(5, 40, options=options, node_size=2, behave=rank3_fails)
    rows = run.rows
    assert ids(rows) == list(range(40)) and (rows["status"] == schema.OK).all()
    assert 3 not in set(rows["rank"].tolist())
    assert (rows["attempts"] == 2).sum() == len(run.evaluators[3].evaluated)


def test_nan_and_inf_objectives_fail():
    def nonfinite(task, ev, report):
        value = {0: math.nan, 1: math.inf}.get(task.task_id % 3)
        if value is not None:
            return Outcome(schema.OK, {"objective": value})
    rows = run_farm(3, 12, behave=nonfinite).rows
    bad = rows["task_id"] % 3 != 2
    assert (rows["status"][bad] == schema.FAILED).all() and (rows["status"][~bad] == schema.OK).all()
    assert all(b"not finite" in m for m in rows["message"][bad])


@pytest.mark.parametrize("exc", [SystemExit(0), SystemExit(3), SystemExit("bye"),
                                 KeyboardInterrupt()])
@pytest.mark.parametrize("size", [1, 3])
def test_exit_and_interrupt_raised_by_an_objective_fail_the_task_only(exc, size):
    def raises(task, ev, report):
        if task.task_id % 4 == 1:
            raise exc
    rows = run_farm(size, 12, behave=raises).rows
    hit = rows["task_id"] % 4 == 1
    assert ids(rows) == list(range(12))
    assert (rows["status"][hit] == schema.FAILED).all() and (rows["status"][~hit] == schema.OK).all()
    name = type(exc).__name__
    assert all(schema.decode_message(m).startswith(name) for m in rows["message"][hit])


@pytest.mark.parametrize("prefetch, chunk, expect", [(True, 2, 4), (False, 1, 1), (True, 1, 2)])
def test_prefetch_window_of_slow_tasks_is_two_chunks_or_none(prefetch, chunk, expect):
    """Tasks of 60 ms: the window is 2 chunks with prefetch (PREFETCH_SECONDS covers less
    than one such task), 1 chunk without (HPO: a trial sent is a trial started)."""
    def slow(task, ev, report):
        time.sleep(0.06)

    options = FarmOptions(chunk_size=chunk, prefetch=prefetch)
    run = run_farm(3, 16, options=options, behave=slow)
    assert ids(run.rows) == list(range(16))
    first = [n for dest, n in run.tasks_sent[:2]]
    assert first == [expect, expect]                        # the first round: a full window
    assert max(n for _, n in run.tasks_sent) <= expect       # never more than the window


def test_prefetch_window_grows_for_short_tasks():
    """Tasks of ~0.1 ms: the window grows beyond two chunks to hold PREFETCH_SECONDS of work."""
    def short(task, ev, report):
        t_end = time.perf_counter() + 1e-4
        while time.perf_counter() < t_end:
            pass

    run = run_farm(2, 800, options=FarmOptions(chunk_size=1), behave=short)
    assert ids(run.rows) == list(range(800))
    assert max(n for _, n in run.tasks_sent) > 2
    assert max(n for _, n in run.tasks_sent) <= coordinator_module.MAX_PREFETCH


@pytest.mark.parametrize("limit", [2, 3])
def test_a_prefetch_limit_bounds_the_window_however_short_the_tasks(limit):
    """HPO with a history-free sampler: up to WORKER_WINDOW trials held by a worker, never
    a window grown to PREFETCH_SECONDS (that would ask hundreds of trials ahead)."""
    run = run_farm(3, 400, options=FarmOptions(chunk_size=1, prefetch_limit=limit))
    assert ids(run.rows) == list(range(400))
    assert [n for _, n in run.tasks_sent[:2]] == [2, 2]      # the first round: two each
    assert max(n for _, n in run.tasks_sent) <= limit


def test_work_starts_when_every_worker_is_ready():
    """The fair first round: a worker that starts late still gets a first batch, and no
    task ran before it was ready."""
    began = time.time()
    run = run_farm(4, 12, options=FarmOptions(chunk_size=1), start_delay={3: 0.3})
    rows = run.rows
    assert ids(rows) == list(range(12))
    assert {1, 2, 3} <= set(rows["rank"].tolist())
    assert rows["t_start"].min() >= began + 0.3               # nothing before rank 3 was up


def test_stop_on_the_coordinator_drains_every_worker_and_loses_no_row():
    """A stop signal on rank 0 after 10 rows: every worker stops after its current task;
    every task that was evaluated has its row; unstarted tasks stay without one."""
    stops = [LocalStop() for _ in range(3)]

    def stop_after_10(source):
        if len(source.all_rows) >= 10:
            stops[0].request(signal.SIGTERM)

    def slow(task, ev, report):
        time.sleep(0.01)

    run = run_farm(3, options=FarmOptions(chunk_size=2), behave=slow, stops=stops,
                   source=ListSource(200, on_rows=stop_after_10))
    rows = run.rows
    evaluated = sorted(run.evaluators[1].evaluated + run.evaluators[2].evaluated)
    assert ids(rows) == evaluated                   # nothing evaluated was lost
    assert 10 <= len(rows) < 200
    assert run.stats[0].interrupted


@pytest.mark.parametrize("size, node_size, signalled", [(3, None, 2), (5, 2, 3), (5, 2, 2)])
def test_a_stop_signal_on_any_rank_stops_every_rank(size, node_size, signalled):
    """SIGUSR1 on one worker, or on a sub-coordinator (rank 2 of 5 with nodes of 2): it
    asks rank 0 to stop; rank 0 takes the signal as its own (so the job exits 3) and
    stops everyone; every evaluated task has its row."""
    stops = [LocalStop() for _ in range(size)]

    def signal_once(task, ev, report):
        time.sleep(0.005)
        if len(ev.evaluated) == 3 and (ev.rank == signalled or signalled not in
                                       ev_ranks(size, node_size)):
            stops[signalled].request(signal.SIGUSR1)

    options = FarmOptions(chunk_size=1, hierarchy="nodes" if node_size else "flat")
    run = run_farm(size, 400, options=options, node_size=node_size, behave=signal_once,
                   stops=stops)
    rows = run.rows
    assert stops[0].signal() == signal.SIGUSR1
    assert run.stats[0].interrupted
    assert len(rows) < 400
    evaluated = sorted(t for ev in run.evaluators for t in ev.evaluated)
    assert ids(rows) == evaluated


def ev_ranks(size: int, node_size: int | None) -> set[int]:
    """The ranks that evaluate tasks (not rank 0, not sub-coordinators)."""
    if node_size is None:
        return set(range(1, size))
    from hpcopt.farm.tree import node_tree
    from hpcopt.mpi.transport import blocks
    tree = node_tree(blocks(size, node_size))
    return {r for r in range(1, size) if tree.role(r) == "worker"}


@pytest.mark.parametrize("size, node_size", [(1, None), (3, None), (5, 2)])
def test_reports_reach_the_source_and_its_decision_prunes(size, node_size):
    """REPORT/DECISION (HPO pruning): odd tasks are pruned at step 2."""
    def reporting(task, ev, report):
        for step in range(5):
            if report(step, float(task.task_id * 10 + step)):
                return Outcome(schema.PRUNED, {"objective": float(step)}, "pruned")
        return None

    source = ListSource(20, prune=lambda tid, step, value: tid % 2 == 1 and step == 2)
    options = FarmOptions(chunk_size=1, prefetch=False,
                          hierarchy="nodes" if node_size else "flat")
    rows = run_farm(size, options=options, source=source, behave=reporting,
                    node_size=node_size).rows
    odd = rows["task_id"] % 2 == 1
    assert (rows["status"][odd] == schema.PRUNED).all() and (rows["objective"][odd] == 2).all()
    assert (rows["status"][~odd] == schema.OK).all()
    got = sorted(source.reports)
    want = sorted((t, s, float(t * 10 + s)) for t in range(20)
                  for s in (range(3) if t % 2 else range(5)))
    assert got == want


@pytest.mark.parametrize("size", [1, 3])
def test_task_timeout_marks_the_task_and_the_farm_goes_on(size):
    """Threads have no SIGALRM: the watchdog's asynchronous exception ends the task."""
    def hang_some(task, ev, report):
        if task.task_id % 5 == 0:
            while True:
                time.sleep(0.005)

    run = run_farm(size, 10, options=FarmOptions(chunk_size=1, task_timeout=0.2),
                   behave=hang_some)
    rows = run.rows
    hung = rows["task_id"] % 5 == 0
    assert ids(rows) == list(range(10))
    assert (rows["status"][hung] == schema.TIMEOUT).all()
    assert all(b"time limit of 0.2 s" in m for m in rows["message"][hung])
    assert (rows["status"][~hung] == schema.OK).all()
    assert (rows["wall"][hung] < 2.0).all()


def test_nodes_tree_gives_the_same_rows_and_far_fewer_messages_at_rank_0():
    options = FarmOptions(chunk_size=1)
    flat = run_farm(9, 600, options=options)
    nodes = run_farm(9, 600, options=FarmOptions(chunk_size=1, hierarchy="nodes"), node_size=4)
    a, b = np.sort(flat.rows, order="task_id"), np.sort(nodes.rows, order="task_id")
    for name in ["task_id", "status", "attempts", "message", "x0", "objective"]:
        np.testing.assert_array_equal(a[name], b[name])
    # rank 0 serves ranks 1-3 and one sub-coordinator (rank 4, for 5-7) and rank 8
    assert set(nodes.rows["rank"].tolist()) <= {1, 2, 3, 5, 6, 7, 8}
    assert 5 in set(nodes.rows["rank"].tolist())
    assert nodes.received_by_root < flat.received_by_root


# -- static mode -------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("batch", [False, True])
def test_static_rounds_cover_every_pending_task_once(size, batch):
    done = np.zeros(23, bool)
    done[[0, 5, 6, 22]] = True
    rows, stats, _, evs = run_static_farm(size, 23, options=FarmOptions(chunk_size=3), done=done,
                                          batch=batch)
    assert ids(rows) == [t for t in range(23) if not done[t]]
    assert (rows["status"] == schema.OK).all()
    for ev in evs:          # each rank evaluated its own contiguous range
        assert ev.evaluated == sorted(ev.evaluated)


def test_static_retries_on_the_same_rank_and_exits_fail_the_task():
    def flaky(task, ev, report):
        if task.task_id == 4:
            raise SystemExit(0)                   # hung rank 0 forever before (issue 13.7)
        if task.task_id == 2 and task.attempt == 0:
            raise RuntimeError("first attempt fails")
    rows, stats, _, _ = run_static_farm(2, 8, options=FarmOptions(chunk_size=2, max_retries=1),
                                        behave=flaky)
    by_id = {int(r["task_id"]): r for r in rows}
    assert sorted(by_id) == list(range(8))
    assert by_id[2]["status"] == schema.OK and by_id[2]["attempts"] == 2
    assert by_id[4]["status"] == schema.FAILED and by_id[4]["attempts"] == 2
    assert schema.decode_message(by_id[4]["message"]) == "SystemExit: 0"


def test_static_stop_on_one_rank_stops_all_after_the_round_with_its_signal():
    def stop_on_rank_2(task, ev, report):
        if ev.rank == 2 and len(ev.evaluated) == 2:
            ev.stop.request(signal.SIGTERM)
    rows, stats, stops, evs = run_static_farm(3, 60, options=FarmOptions(chunk_size=4),
                                              behave=stop_on_rank_2)
    assert all(s.signal() == signal.SIGTERM for s in stops)     # rank 0 reports it too
    assert all(st.interrupted for st in stats)
    assert len(rows) == 12                                        # one round of 3 x 4 tasks
    assert ids(rows) == sorted(t for ev in evs for t in ev.evaluated)


def test_rows_are_built_per_batch_with_the_dtype():
    rows = run_farm(3, 7).rows
    assert rows.dtype == DTYPE
