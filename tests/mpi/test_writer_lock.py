"""One writer per result file (under mpiexec): a second run onto a file being written is
refused with exit 2 naming the holder; the lock goes with its holder, even after kill -9.

These tests need the writer lock taken by the campaign lifecycle (today: campaign.py
run_campaign); on a tree without it, the second run starts writing the same file.
"""

import re
import signal
import socket

import numpy as np
import psutil
import pytest

from hpctest import RANKS, job_exit, kill_group, read_table, run, start, wait_for_rows, write_config

pytestmark = pytest.mark.mpi

CFG = """
[objective]
function = "testobj:slow"
[parameters]
x = { min = -2.0, max = 2.0, points = 8 }
y = { min = -2.0, max = 2.0, points = 4 }
[local]
method = "none"
[run]
chunk_size = 1
[output]
path = "out.h5"
"""
N_TASKS = 32
BUSY = "another hpcopt run is writing this result file"


def holder_pid(stderr: str) -> int:
    found = re.search(r"\(pid (\d+) on host (\S+?)[,)]", stderr)
    assert found, stderr
    assert found.group(2) == socket.gethostname()
    return int(found.group(1))


def is_rank_of(pid: int, launcher) -> bool:
    """`pid` is the launcher itself (singleton) or one of its descendants (a rank)."""
    if pid == launcher.pid:
        return True
    try:
        return pid in {p.pid for p in psutil.Process(launcher.pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return False


def check_complete(path, n_rows):
    rows = read_table(path, "tasks")
    assert len(rows) == n_rows and (rows["status"] == 1).all()
    assert list(rows["task_id"]) == list(range(n_rows))
    expected = (rows["x0"][:, 0] - 0.5) ** 2 + 2.0 * (rows["x0"][:, 1] + 0.25) ** 2
    np.testing.assert_allclose(rows["objective"], expected, rtol=1e-12)


def _state_of(proc) -> str:
    """The holder run's state, for a failure message: still running, or how it ended (a
    refusal that did not come may mean the holder was gone already)."""
    if proc.poll() is None:
        return "the first run was still running"
    out, err = proc.communicate(timeout=60)
    return f"the first run had exited {proc.returncode}:\n{out}\n{err}"


@pytest.mark.parametrize("n", RANKS)
def test_second_run_onto_a_file_being_written_is_refused(tmp_path, n):
    cfg = write_config(tmp_path / "c.toml", CFG)
    first = start(["sweep", cfg], n=n, cwd=tmp_path, TESTOBJ_SLEEP="1")   # long enough
    try:
        wait_for_rows(tmp_path / "out.h5", "tasks", 1, timeout=120)
        for extra in (["--force"], ["--resume"]):
            second = run(["sweep", cfg, *extra], n=n, timeout=120, TESTOBJ_SLEEP="0")
            assert second.returncode == 2, (extra, second.stdout, second.stderr,
                                            _state_of(first))
            assert BUSY in second.stderr and "Traceback" not in second.stderr
            assert is_rank_of(holder_pid(second.stderr), first)
        assert first.poll() is None             # the refusals came while it still wrote
        kill_group(first, signal.SIGTERM)
        out, err = first.communicate(timeout=180)
        assert job_exit(first, err) == 3, err       # its own checkpoint, undisturbed
    finally:
        kill_group(first)
    assert not (tmp_path / "out.h5.lock").exists()
    again = run(["sweep", cfg, "--resume"], n=n, timeout=180, TESTOBJ_SLEEP="0")
    assert again.returncode == 0, again.stderr  # the lock went with its holder
    check_complete(tmp_path / "out.h5", N_TASKS)


@pytest.mark.parametrize("n", RANKS)
def test_two_concurrent_resumes_after_kill_9(tmp_path, n):
    cfg = write_config(tmp_path / "c.toml", CFG)
    first = start(["sweep", cfg], n=n, cwd=tmp_path, TESTOBJ_SLEEP="0.1")
    wait_for_rows(tmp_path / "out.h5", "tasks", 3, timeout=120)
    kill_group(first, signal.SIGKILL)
    first.wait(timeout=60)
    assert (tmp_path / "out.h5.lock").exists()        # left behind: must not block
    one = start(["sweep", cfg, "--resume"], n=n, cwd=tmp_path, TESTOBJ_SLEEP="1")
    try:
        before = int(np.count_nonzero(read_table(tmp_path / "out.h5", "tasks")["status"]))
        wait_for_rows(tmp_path / "out.h5", "tasks", before + 1, timeout=120)
        other = run(["sweep", cfg, "--resume"], n=n, timeout=120, TESTOBJ_SLEEP="0")
        assert other.returncode == 2 and BUSY in other.stderr, other.stderr
        assert is_rank_of(holder_pid(other.stderr), one)
        assert one.poll() is None
        kill_group(one, signal.SIGTERM)
        out, err = one.communicate(timeout=180)
        assert job_exit(one, err) == 3, err
    finally:
        kill_group(one)
    run(["sweep", cfg, "--resume"], n=n, check=True, timeout=180, TESTOBJ_SLEEP="0")
    check_complete(tmp_path / "out.h5", N_TASKS)


HPO = """
[hpo]
sampler = "random"
n_trials = 16
[objective]
function = "hpoobj:slow_quad"
[space]
x = { type = "uniform", low = -2.0, high = 2.0 }
y = { type = "uniform", low = -2.0, high = 2.0 }
[output]
path = "s.h5"
"""


def test_hpo_force_onto_a_running_study_keeps_its_journal(tmp_path):
    """`--force` would delete the running study's journal: refused before anything is removed."""
    cfg = write_config(tmp_path / "s.toml", HPO)
    first = start(["hpo", cfg], n=2, cwd=tmp_path, HPOOBJ_SLEEP="1")
    try:
        wait_for_rows(tmp_path / "s.h5", "trials", 1, timeout=120)
        journal = (tmp_path / "s.h5.journal").read_bytes()
        second = run(["hpo", cfg, "--force"], n=2, timeout=120)
        assert second.returncode == 2 and BUSY in second.stderr, second.stderr
        assert (tmp_path / "s.h5.journal").read_bytes()[:len(journal)] == journal
        assert first.poll() is None
        kill_group(first, signal.SIGTERM)
        out, err = first.communicate(timeout=180)
        assert job_exit(first, err) == 3, err
    finally:
        kill_group(first)
    run(["hpo", cfg, "--resume"], n=2, check=True, timeout=180, HPOOBJ_SLEEP="0")
    rows = read_table(tmp_path / "s.h5", "trials")
    rows = rows[rows["status"] != 0]
    assert len(rows) == 16 and len(set(rows["task_id"].tolist())) == 16   # the same study
    assert (rows["status"] == 1).all()
