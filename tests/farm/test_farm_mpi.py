"""What an objective or a signal does to the job, under mpiexec (issue 13, items 7, 8, 11),
and the node sub-coordinators on one machine (HPCOPT_NODE_SIZE)."""

import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from hpctest import (assert_same_rows, kill_group, read_table, run, start, wait_for_rows,
                     write_config)

pytestmark = pytest.mark.mpi

SWEEP = """
[objective]
function = "{func}"
[parameters]
x = {{ min = -2.0, max = 2.0, points = {points} }}
y = {{ min = -2.0, max = 2.0, points = {points} }}
[local]
method = "none"
[run]
mode = "{mode}"
{run}
[output]
path = "out.h5"
"""

HPO = """
[hpo]
sampler = "random"
n_trials = {n_trials}
[objective]
function = "{func}"
[space]
x = {{ type = "uniform", low = -2.0, high = 2.0 }}
y = {{ type = "uniform", low = -2.0, high = 2.0 }}
[run]
{run}
[output]
path = "s.h5"
"""


def sweep(tmp_path, func, mode="dynamic", points=5, run_table="", name="c.toml"):
    return write_config(tmp_path / name, SWEEP.format(func=func, mode=mode, points=points,
                                                      run=run_table))


def hit(rows):
    return rows["x0"][:, 0] > 1.5


def messages(rows):
    return [m.decode() for m in rows["message"]]


def file_status(path):
    return json.loads(run(["report", path, "--json"], check=True).stdout)["status"]


# -- 13.7: exits raised inside an objective --------------------------------------------------

@pytest.mark.parametrize("mode", ["static", "dynamic"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_system_exit_in_an_objective_is_a_failed_task_not_the_jobs_exit(tmp_path, mode, n):
    """Before: SystemExit(0) in a static sweep at -n 2 left rank 0 waiting forever."""
    cfg = sweep(tmp_path, "farmobj:system_exit_some", mode)
    proc = run(["sweep", cfg], n=n, timeout=90)
    assert proc.returncode == 0, proc.stderr
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert (rows["status"][hit(rows)] == 2).all() and (rows["status"][~hit(rows)] == 1).all()
    assert set(messages(rows[hit(rows)])) == {"SystemExit: 0"}
    assert file_status(tmp_path / "out.h5") == "complete"


@pytest.mark.parametrize("func, text", [("farmobj:interrupt_some", "KeyboardInterrupt"),
                                        ("farmobj:system_exit_some", "SystemExit: 3")])
def test_interrupt_or_exit_code_raised_by_an_objective_fails_only_its_task(tmp_path, func, text):
    cfg = sweep(tmp_path, func, "dynamic")
    proc = run(["sweep", cfg], n=2, timeout=90, FARMOBJ_CODE="3")
    assert proc.returncode == 0, proc.stderr
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert set(messages(rows[hit(rows)])) == {text}
    assert (rows["status"][~hit(rows)] == 1).all()


def test_system_exit_in_an_hpo_objective_is_a_failed_trial(tmp_path):
    """Before: the study hung at -n 2."""
    cfg = write_config(tmp_path / "s.toml", HPO.format(n_trials=16, run="",
                                                       func="farmobj:system_exit_some"))
    proc = run(["hpo", cfg], n=2, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = read_table(tmp_path / "s.h5", "trials")
    rows = rows[rows["status"] != 0]
    assert len(rows) == 16
    exited = rows["p_x"] > 1.5
    assert (rows["status"][exited] == 2).all() and (rows["status"][~exited] == 1).all()
    assert all("SystemExit" in e for e in rows["error"][exited].astype(str))


@pytest.mark.parametrize("mode, n", [("static", 2), ("dynamic", 3), ("dynamic", 1)])
def test_os_exit_without_isolation_ends_the_job_nonzero_naming_rank_and_task(tmp_path, mode, n):
    """Before: MPICH's hydra ended every rank and reported exit status 0, nothing said, the
    file left 'running'."""
    cfg = sweep(tmp_path, "farmobj:os_exit_some", mode, run_table="chunk_size = 1")
    t0 = time.monotonic()
    proc = run(["sweep", cfg], n=n, timeout=90)
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - t0 < 60
    found = re.search(r"error on rank (\d+) .*task (\d+) called os\._exit\(0\) in the "
                      r"objective on rank (\d+)", proc.stderr)
    assert found, proc.stderr
    rank, task, rank_again = map(int, found.groups())
    assert rank == rank_again and (rank == 0 if n == 1 else rank >= 1)
    assert task >= 20          # the task that did it: x = 2 (grid of 5 x 5, x slowest)
    assert 'isolation = "process"' in proc.stderr


# -- 13.8: a stop signal on any single rank ----------------------------------------------

def rank_process(launcher: psutil.Popen | int, rank: int, timeout: float = 60) -> psutil.Process:
    """The process of MPI rank `rank` under a launcher (by its PMI_RANK)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in psutil.Process(launcher).children(recursive=True):
            try:
                if "hpcopt" in " ".join(p.cmdline()) and p.environ().get("PMI_RANK") == str(rank):
                    return p
            except psutil.Error:
                continue
        time.sleep(0.1)
    raise AssertionError(f"no process of rank {rank}")


@pytest.mark.parametrize("mode, sig, victim", [("dynamic", signal.SIGTERM, 1),
                                               ("dynamic", signal.SIGUSR1, 2),
                                               ("static", signal.SIGTERM, 2),
                                               ("static", signal.SIGUSR1, 1)])
def test_stop_signal_to_one_rank_checkpoints_the_whole_job_and_exits_3(tmp_path, mode, sig,
                                                                       victim):
    """Before: dynamic sweeps ignored it (exit 0, everything done), static sweeps stopped
    but exited 0."""
    cfg = sweep(tmp_path, "farmobj:slow", mode, points=12,
                run_table="chunk_size = 2" if mode == "static" else "")
    proc = start(["sweep", cfg], n=3, FARMOBJ_SLEEP="0.05")
    try:
        wait_for_rows(tmp_path / "out.h5", "tasks", 10, timeout=120)
        rank_process(proc.pid, victim).send_signal(sig)
        out, err = proc.communicate(timeout=90)
    finally:
        kill_group(proc)
    assert proc.returncode == 3, err
    assert "--resume" in err
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert 0 < int((rows["status"] == 1).sum()) < 144
    assert file_status(tmp_path / "out.h5") == "interrupted"
    run(["sweep", cfg, "--resume"], n=2, check=True, FARMOBJ_SLEEP="0")
    after = read_table(tmp_path / "out.h5", "tasks")
    assert (after["status"] == 1).all()
    done = rows["status"] != 0
    assert after[done].tobytes() == rows[done].tobytes()     # nothing recorded was redone


def test_stop_signal_to_one_worker_rank_stops_an_hpo_study_with_exit_3(tmp_path):
    cfg = write_config(tmp_path / "s.toml", HPO.format(n_trials=400, run="",
                                                       func="farmobj:slow"))
    proc = start(["hpo", cfg], n=3, FARMOBJ_SLEEP="0.05")
    try:
        wait_for_rows(tmp_path / "s.h5", "trials", 5, timeout=120)
        rank_process(proc.pid, 2).send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
    finally:
        kill_group(proc)
    assert proc.returncode == 3, err
    rows = read_table(tmp_path / "s.h5", "trials")
    assert 0 < int((rows["status"] != 0).sum()) < 400
    assert file_status(tmp_path / "s.h5") == "interrupted"


# -- 13.11: forks and the SIGALRM timer ----------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("mode, n", [("dynamic", 1), ("dynamic", 3), ("static", 2)])
def test_an_objective_that_forks_cannot_keep_the_job_from_exiting(tmp_path, mode, n):
    """Before: a forked child (or a double-forked daemon) sleeping for ten minutes held the
    launcher's pipes, and the job never ended."""
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    cfg = sweep(tmp_path, "farmobj:fork_daemon_some", mode)
    proc = run(["sweep", cfg], n=n, timeout=120, FARMOBJ_DIR=str(evidence))
    assert proc.returncode == 0, proc.stderr
    pids = [json.loads(p.read_text())["pid"] for p in evidence.glob("child.*")]
    assert len(pids) == 2 * 5                     # 5 tasks with x > 1.5, a child and a grandchild
    assert not [p for p in pids if _alive(p)]
    assert "left running" in proc.stderr
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert (rows["status"] == 1).all()


@pytest.mark.parametrize("mode, n", [("dynamic", 2), ("static", 2), ("dynamic", 1)])
def test_a_forked_copy_that_returns_into_the_farm_leaves_at_once(tmp_path, mode, n):
    cfg = sweep(tmp_path, "farmobj:fork_return_some", mode)
    proc = run(["sweep", cfg], n=n, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert (rows["status"] == 1).all() and (rows["objective"] >= 0).all()
    assert len(rows) == 25


@pytest.mark.parametrize("func", ["farmobj:fork_writes_protocol_some", "farmobj:print_fake_result"])
def test_nothing_but_the_isolated_evaluator_can_give_a_tasks_value(tmp_path, func):
    """Before: a line written to fd 1 by the objective or a child it forked became the
    task's result (objective -1e9)."""
    cfg = sweep(tmp_path, func, run_table='isolation = "process"')
    proc = run(["sweep", cfg], n=2, timeout=180)
    assert proc.returncode == 0, proc.stderr
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert (rows["status"] == 1).all()
    x, y = rows["x0"][:, 0], rows["x0"][:, 1]
    np.testing.assert_allclose(rows["objective"], (x - 0.5) ** 2 + 2.0 * (y + 0.25) ** 2)


@pytest.mark.parametrize("n", [1, 2])
def test_replacing_the_sigalrm_handler_cannot_defeat_task_timeout(tmp_path, n):
    """Before: an objective that replaced the handler and then looped ran forever."""
    cfg = sweep(tmp_path, "farmobj:alarm_thief_some", run_table="task_timeout = 0.5")
    t0 = time.monotonic()
    proc = run(["sweep", cfg], n=n, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t0 < 60
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert (rows["status"][hit(rows)] == 3).all() and (rows["status"][~hit(rows)] == 1).all()
    assert all("time limit of 0.5 s" in m for m in messages(rows[hit(rows)]))


@pytest.mark.parametrize("func, text", [("farmobj:alarm_ignorer_some", "replaced the SIGALRM"),
                                        ("farmobj:alarm_canceller_some", "")])
def test_a_disabled_timer_fails_the_task_instead_of_passing_silently(tmp_path, func, text):
    """Before: the task ended 'ok' although its time limit was never in force."""
    cfg = sweep(tmp_path, func, run_table="task_timeout = 0.5")
    proc = run(["sweep", cfg], n=2, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = read_table(tmp_path / "out.h5", "tasks")
    bad = rows[hit(rows)]
    assert (bad["status"] != 1).all() and (rows["status"][~hit(rows)] == 1).all()
    if text:
        assert all(text in m for m in messages(bad))
    else:       # cancelled, then slept 2 s: either the watchdog or the end-of-task check
        assert all("time limit" in m for m in messages(bad))


# -- issue 16.4: one sub-coordinator per node -----------------------------------------------

def test_node_sub_coordinators_give_the_same_file_as_the_flat_farm(tmp_path):
    """-n 5 as nodes of 2 ranks: rank 0 serves rank 1 and the sub-coordinator rank 2 (for
    rank 3); rank 4 is a node alone, a direct worker."""
    flat_dir, nodes_dir = tmp_path / "flat", tmp_path / "nodes"
    flat_dir.mkdir()
    nodes_dir.mkdir()
    cfg_flat = sweep(flat_dir, "testobj:quadratic", points=9,
                     run_table='hierarchy = "flat"\nchunk_size = 2')
    cfg_nodes = sweep(nodes_dir, "testobj:quadratic", points=9,
                      run_table='hierarchy = "nodes"\nchunk_size = 2')
    run(["sweep", cfg_flat], n=5, check=True, timeout=120)
    proc = run(["sweep", cfg_nodes, "-v"], n=5, check=True, timeout=120, HPCOPT_NODE_SIZE="2")
    assert "1 node sub-coordinator(s)" in proc.stderr
    flat = read_table(flat_dir / "out.h5", "tasks")
    nodes = read_table(nodes_dir / "out.h5", "tasks")
    assert_same_rows(nodes, flat)
    assert (nodes["status"] == 1).all()
    assert set(nodes["rank"].tolist()) <= {1, 3, 4} and 3 in set(nodes["rank"].tolist())


def test_node_sub_coordinators_retry_elsewhere_and_stop_on_a_signal(tmp_path):
    cfg = sweep(tmp_path, "testobj:rank_flaky", points=6,
                run_table='hierarchy = "nodes"\nchunk_size = 1\nmax_retries = 1')
    run(["sweep", cfg], n=5, check=True, timeout=120, HPCOPT_NODE_SIZE="2")
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert (rows["status"] == 1).all() and 1 not in set(rows["rank"].tolist())
    cfg = sweep(tmp_path, "farmobj:slow", points=12, name="slow.toml",
                run_table='hierarchy = "nodes"')
    Path(tmp_path / "out.h5").unlink()
    proc = start(["sweep", cfg], n=5, FARMOBJ_SLEEP="0.05", HPCOPT_NODE_SIZE="2")
    try:
        wait_for_rows(tmp_path / "out.h5", "tasks", 10, timeout=120)
        rank_process(proc.pid, 3).send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
    finally:
        kill_group(proc)
    assert proc.returncode == 3, err
    run(["sweep", cfg, "--resume"], n=5, check=True, FARMOBJ_SLEEP="0", HPCOPT_NODE_SIZE="2")
    assert (read_table(tmp_path / "out.h5", "tasks")["status"] == 1).all()


def test_node_size_override_must_be_a_positive_integer(tmp_path):
    cfg = sweep(tmp_path, "testobj:quadratic", run_table='hierarchy = "nodes"')
    proc = run(["sweep", cfg], n=3, timeout=60, HPCOPT_NODE_SIZE="zero")
    assert proc.returncode != 0 and "HPCOPT_NODE_SIZE must be a positive integer" in proc.stderr
    assert os.environ.get("HPCOPT_NODE_SIZE") is None
