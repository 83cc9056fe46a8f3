"""A file system that fills up during a campaign (a small tmpfs, filled by another writer):
checkpoint, status "interrupted", exit 3 and one message naming the file system; every
row written before is kept; --resume continues once there is room (under mpiexec)."""

import errno
import os
import subprocess

import h5py
import numpy as np
import pytest

from hpctest import RANKS, read_table, run, start, wait_for_rows, write_config

pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")]


@pytest.fixture
def small_fs(tmp_path):
    """An 8 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(fs, sizes=(65536, 4096, 512, 1)):
    """Another program takes the free space of `fs` (in blocks of `sizes`, largest first)."""
    fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in sizes:
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)


def status_of(path):
    with h5py.File(path, "r", locking=False) as f:
        return f.attrs["status"]


HPO = """
[hpo]
sampler = "random"
n_trials = 300
[objective]
function = "testobj:slow"
[space]
x = {{ type = "uniform", low = -2.0, high = 2.0 }}
y = {{ type = "uniform", low = -2.0, high = 2.0 }}
[output]
path = "{out}"
"""


@pytest.mark.parametrize("n", RANKS)
def test_hpo_stops_cleanly_when_the_disk_fills_and_resume_finishes(tmp_path, small_fs, n):
    out = small_fs / "study.h5"
    cfg = write_config(tmp_path / "s.toml", HPO.format(out=out))
    proc = start(["hpo", cfg], n=n, cwd=tmp_path, TESTOBJ_SLEEP="0.01")
    wait_for_rows(out, "trials", 10, timeout=120)
    fill(small_fs)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, (stdout, stderr)
    assert "Traceback" not in stderr and "Abort" not in stderr
    assert f"the file system {small_fs} is full" in stderr
    assert "Continue with:" in stderr and "--resume" in stderr
    assert status_of(out) == "interrupted"
    before = read_table(out, "trials")
    kept = before[before["status"] != 0]
    assert len(kept) >= 10
    assert not (small_fs / "study.h5.reserve").exists()      # given up for the checkpoint

    (small_fs / "filler").unlink()
    run(["hpo", cfg, "--resume"], n=n, cwd=tmp_path, check=True, timeout=300,
        TESTOBJ_SLEEP="0")
    after = read_table(out, "trials")
    done = after[after["status"] != 0]
    # trials interrupted by the stop are re-queued under new numbers (as after SIGTERM)
    assert len(done) == 300 and len(set(done["task_id"].tolist())) == 300
    assert (done["status"] == 1).all() and status_of(out) == "complete"
    np.testing.assert_array_equal(after[:len(kept)]["task_id"], kept["task_id"])
    np.testing.assert_array_equal(after[:len(kept)]["objective"], kept["objective"])


SWEEP = """
[objective]
function = "testobj:slow"
[parameters]
x = {{ min = -2.0, max = 2.0, points = 12 }}
y = {{ min = -2.0, max = 2.0, points = 12 }}
[local]
method = "none"
[run]
chunk_size = 1
[output]
path = "{out}"
"""


@pytest.mark.parametrize("n", RANKS)
def test_sweep_on_a_disk_that_fills_keeps_a_readable_file(tmp_path, small_fs, n):
    """Sweep rows are preallocated, but the end of the run (best, status) needs room: on a
    full disk HDF5 left an unreadable file; the reserve gives the close its room."""
    out = small_fs / "sweep.h5"
    cfg = write_config(tmp_path / "c.toml", SWEEP.format(out=out))
    proc = start(["sweep", cfg], n=n, cwd=tmp_path, TESTOBJ_SLEEP="0.05")
    wait_for_rows(out, "tasks", 20, timeout=120)
    fill(small_fs, sizes=(65536,))             # what dd leaves: less than a block free
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode in (0, 3), (stdout, stderr)
    assert "Traceback" not in stderr
    status = status_of(out)
    assert (proc.returncode, status) in {(0, "complete"), (3, "interrupted")}
    report = run(["report", out], timeout=60)
    assert report.returncode == 0, report.stderr
    (small_fs / "filler").unlink()
    run(["sweep", cfg, "--resume"], n=n, cwd=tmp_path, check=True, timeout=300,
        TESTOBJ_SLEEP="0")
    rows = read_table(out, "tasks")
    assert (rows["status"] == 1).all() and status_of(out) == "complete"


def test_resume_on_a_full_disk_is_refused_before_any_work(tmp_path, small_fs):
    out = small_fs / "study.h5"
    cfg = write_config(tmp_path / "s.toml", HPO.format(out=out).replace("300", "5"))
    run(["hpo", cfg], cwd=tmp_path, check=True, timeout=120, TESTOBJ_SLEEP="0")
    fill(small_fs)
    proc = run(["hpo", cfg, "--resume"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        line for line in proc.stderr.strip().splitlines() if line.startswith("hpcopt: error:")]
    assert f"the file system {small_fs} has" in proc.stderr and "make room" in proc.stderr
