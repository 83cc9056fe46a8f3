"""The task farm under mpiexec at 1, 2 and 3 ranks, driven through `hpcopt sweep`."""

import json
import resource
import signal
import time

import numpy as np
import pytest

from hpctest import (RANKS, assert_same_rows, job_exit, kill_group, read_table, run, start,
                     wait_for_rows, write_config)

pytestmark = pytest.mark.mpi

GRID = """
[objective]
function = "testobj:{func}"
[parameters]
x = {{ min = -2.0, max = 2.0, points = {points} }}
y = {{ min = -2.0, max = 2.0, points = {points} }}
[search]
method = "grid"
[local]
method = "{local}"
[run]
mode = "{mode}"
{run_extra}
[output]
path = "out.h5"
"""


def config(tmp_path, name="c.toml", func="quadratic", points=5, local="nelder-mead",
           mode="dynamic", run_extra=""):
    return write_config(tmp_path / name, GRID.format(func=func, points=points, local=local,
                                                     mode=mode, run_extra=run_extra))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The quadratic grid sweep run alone (singleton, no launcher)."""
    d = tmp_path_factory.mktemp("ref")
    cfg = config(d)
    run(["sweep", cfg], check=True)
    return read_table(d / "out.h5", "tasks")


@pytest.mark.parametrize("mode", ["dynamic", "static"])
@pytest.mark.parametrize("n", RANKS)
def test_same_rows_at_every_rank_count_and_mode(tmp_path, n, mode, reference):
    cfg = config(tmp_path, mode=mode)
    proc = run(["sweep", cfg], n=n, check=True)
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert_same_rows(rows, reference)
    assert (rows["status"] == 1).all()
    assert "best: objective" in proc.stdout
    if n > 1 and mode == "dynamic":
        assert set(rows["rank"]) <= set(range(1, n))   # rank 0 coordinates only
    report = json.loads(run(["report", tmp_path / "out.h5", "--json"], check=True).stdout)
    assert report["kind"] == "sweep" and report["status"] == "complete"
    assert report["n_tasks"] == 25 and report["n_ok"] == 25 and report["n_failed"] == 0
    assert report["best"]["params"]["x"] == pytest.approx(0.5, abs=1e-4)
    assert report["best"]["params"]["y"] == pytest.approx(-0.25, abs=1e-4)


@pytest.mark.parametrize("n", RANKS)
def test_failures_nan_and_inf_are_recorded_not_best(tmp_path, n):
    cfg = config(tmp_path, func="failing", local="none", points=7)
    run(["sweep", cfg], n=n, check=True)
    rows = read_table(tmp_path / "out.h5", "tasks")
    x, y = rows["x0"][:, 0], rows["x0"][:, 1]
    raised = x < -1.0
    nonfinite = ~raised & ((y < -1.0) | (y > 1.5))
    assert (rows["status"][raised] == 2).all()
    assert all(b"out of the model's domain" in m for m in rows["message"][raised])
    assert (rows["status"][nonfinite] == 2).all()
    assert all(b"not finite" in m for m in rows["message"][nonfinite])
    assert (rows["status"][~raised & ~nonfinite] == 1).all()
    report = json.loads(run(["report", tmp_path / "out.h5", "--json"], check=True).stdout)
    assert report["n_failed"] == int(raised.sum() + nonfinite.sum())
    assert np.isfinite(report["best"]["objective"])


def test_failed_task_is_retried_on_another_rank(tmp_path):
    cfg = config(tmp_path, func="rank_flaky", local="none",
                 run_extra="max_retries = 1\nchunk_size = 1")
    run(["sweep", cfg], n=3, check=True)
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert (rows["status"] == 1).all()             # every task succeeded in the end...
    assert (rows["rank"] == 2).all()               # ...on rank 2, the one that works
    assert (rows["attempts"] == 2).sum() >= 1      # some first went to rank 1 and failed


def test_retries_exhausted_give_failed_rows(tmp_path):
    cfg = config(tmp_path, func="rank_flaky", local="none", run_extra="max_retries = 2")
    proc = run(["sweep", cfg], n=2)               # rank 1 is the only worker: always fails
    # no task succeeded: exit 4 with the number of failures and the first error
    assert proc.returncode == 4, proc.stderr
    assert "no task succeeded: 25 failed; the first error: RuntimeError: rank 1 is broken" \
        in proc.stderr
    rows = read_table(tmp_path / "out.h5", "tasks")
    assert (rows["status"] == 2).all()
    assert (rows["attempts"] == 3).all()
    assert all(b"rank 1 is broken" in m for m in rows["message"])


@pytest.mark.parametrize("n", [1, 3])
def test_per_task_timeout_marks_task_and_campaign_goes_on(tmp_path, n):
    cfg = config(tmp_path, func="hang_some", local="none", points=5,
                 run_extra="task_timeout = 0.5")
    run(["sweep", cfg], n=n, check=True, timeout=120)
    rows = read_table(tmp_path / "out.h5", "tasks")
    hung = rows["x0"][:, 0] > 1.5
    assert hung.any()
    assert (rows["status"][hung] == 3).all()
    assert (rows["status"][~hung] == 1).all()


@pytest.mark.parametrize("n", RANKS)
def test_bad_config_exits_2_with_one_message(tmp_path, n):
    cfg = write_config(tmp_path / "bad.toml", GRID.format(
        func="quadratic", points=5, local="nelder-mead", mode="dynamic",
        run_extra="max_retries = -1"))
    proc = run(["sweep", cfg], n=n, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("hpcopt: error:") == 1
    assert "bad.toml" in proc.stderr and "run.max_retries" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_error_on_a_worker_rank_aborts_the_job_without_hanging(tmp_path, n):
    cfg = config(tmp_path).read_text().replace("testobj:quadratic", "crash_on_rank1:f") \
        .replace("x = {", "x = {").replace('y = { min = -2.0, max = 2.0, points = 5 }\n', "")
    path = write_config(tmp_path / "crash.toml", cfg)
    t0 = time.monotonic()
    proc = run(["sweep", path], n=n, timeout=60)
    assert proc.returncode == 1
    assert time.monotonic() - t0 < 30
    assert "error on rank 1" in proc.stderr and "simulated bug" in proc.stderr
    assert "Traceback" in proc.stderr


def test_existing_result_file_is_not_overwritten(tmp_path):
    cfg = config(tmp_path)
    run(["sweep", cfg], check=True)
    before = (tmp_path / "out.h5").read_bytes()
    proc = run(["sweep", cfg])
    assert proc.returncode == 2 and "--resume" in proc.stderr and "--force" in proc.stderr
    assert (tmp_path / "out.h5").read_bytes() == before


def test_resume_after_kill_9_of_the_launcher_loses_nothing(tmp_path):
    cfg = config(tmp_path, func="slow", local="none", points=12,
                 run_extra="chunk_size = 2")
    proc = start(["sweep", cfg], n=3, TESTOBJ_SLEEP="0.05")
    try:
        wait_for_rows(tmp_path / "out.h5", "tasks", 30, timeout=120)
    finally:
        kill_group(proc, signal.SIGKILL)
        proc.wait(timeout=30)
    before = read_table(tmp_path / "out.h5", "tasks")
    done_before = before["status"] != 0
    assert 30 <= done_before.sum() < 144
    run(["sweep", cfg, "--resume"], n=3, check=True, TESTOBJ_SLEEP="0")
    after = read_table(tmp_path / "out.h5", "tasks")
    # every row recorded before the kill is still there, untouched (not redone)
    assert after[done_before].tobytes() == before[done_before].tobytes()
    assert (after["status"] == 1).all()
    # and the campaign equals an uninterrupted one
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref = config(ref_dir, func="slow", local="none", points=12)
    run(["sweep", ref], check=True, TESTOBJ_SLEEP="0")
    assert_same_rows(np.sort(after, order="task_id")[["task_id", "x0", "x", "objective"]],
                     read_table(ref_dir / "out.h5", "tasks")[["task_id", "x0", "x", "objective"]])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_stop_signal_checkpoints_and_exits_cleanly(tmp_path, sig):
    cfg = config(tmp_path, func="slow", local="none", points=12)
    proc = start(["sweep", cfg], n=3, TESTOBJ_SLEEP="0.05")
    wait_for_rows(tmp_path / "out.h5", "tasks", 10, timeout=120)
    proc.send_signal(sig)           # to mpiexec, which forwards it to every rank
    out, err = proc.communicate(timeout=60)
    assert job_exit(proc, err) == 3, err
    assert "--resume" in err
    rows = read_table(tmp_path / "out.h5", "tasks")
    report = json.loads(run(["report", tmp_path / "out.h5", "--json"], check=True).stdout)
    assert report["status"] == "interrupted"
    assert 0 < report["n_ok"] < 144 and report["n_ok"] == int((rows["status"] == 1).sum())
    run(["sweep", cfg, "--resume"], n=2, check=True, TESTOBJ_SLEEP="0")
    assert (read_table(tmp_path / "out.h5", "tasks")["status"] == 1).all()


def test_waiting_ranks_do_not_burn_a_core(tmp_path):
    """Two 2 s sleeping tasks at 3 ranks: the coordinator and the idle time cost ~no CPU."""
    def cpu_of(cmd_env_sleep: str) -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        run(["sweep", cfg, "--force"], n=3, check=True, TESTOBJ_SLEEP=cmd_env_sleep)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return cpu, time.monotonic() - t0

    cfg = write_config(tmp_path / "c.toml", GRID.format(
        func="slow", points=1, local="none", mode="dynamic", run_extra="").replace(
        "y = { min = -2.0, max = 2.0, points = 1 }", "y = { min = -2.0, max = 2.0, points = 2 }"))
    base_cpu, base_wall = cpu_of("0")
    cpu, wall = cpu_of("2.0")
    waited = wall - base_wall
    assert waited > 1.5
    # 3 ranks x ~2 s of waiting would add ~6 s of CPU if they spun; allow 10 %
    assert cpu - base_cpu < 0.1 * 3 * waited, (cpu, base_cpu, waited)
