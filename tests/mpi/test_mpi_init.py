"""MPI start-up: a rank that cannot finish MPI_Init (a peer of the job never starts) gives
up after HPCOPT_MPI_INIT_TIMEOUT seconds with one line and exit status 1 (mpi4py's own
MPI_Init holds the GIL, so hpcopt calls MPI_Init_thread itself, through ctypes)."""

import re
import subprocess
import time

import pytest

from hpctest import PY, RANKS, env, mpiexec, run, write_config

pytestmark = pytest.mark.mpi

SWEEP = """
[objective]
function = "testobj:quadratic"
[parameters]
x = { min = -1.0, max = 1.0, points = 3 }
y = { value = 0.5 }
[output]
path = "o.h5"
"""


@pytest.mark.parametrize("n", RANKS)
def test_ranks_stuck_in_mpi_init_give_up_with_one_line_each(tmp_path, n):
    """n hpcopt ranks and one process of the same job that never calls MPI_Init; before
    the watchdog they waited until killed."""
    config = write_config(tmp_path / "c.toml", SWEEP)
    cmd = [mpiexec(), "-n", str(n), PY, "-m", "hpcopt", "sweep", str(config), ":",
           "-n", "1", "sleep", "120"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env(HPCOPT_MPI_INIT_TIMEOUT="3"), capture_output=True,
                          text=True, timeout=90, cwd=tmp_path)
    took = time.monotonic() - t0
    assert proc.returncode != 0 and took < 60, (took, proc.stderr)
    lines = re.findall(r"^hpcopt: error on launcher rank (\d+) \([^)]+\): MPI_Init did not "
                       r"finish within 3 s", proc.stderr, re.M)
    # at most one line per waiting rank (hydra ends the others when the first one exits)
    assert lines and len(set(lines)) == len(lines) and set(lines) <= {str(r) for r in range(n)}, \
        proc.stderr
    assert not (tmp_path / "o.h5").exists()


def test_a_normal_start_is_not_affected(tmp_path):
    config = write_config(tmp_path / "c.toml", SWEEP)
    proc = run(["sweep", config], n=2, HPCOPT_MPI_INIT_TIMEOUT="30", check=True)
    assert "MPI_Init did not finish" not in proc.stderr


def test_a_bad_timeout_value_is_a_usage_error(tmp_path):
    config = write_config(tmp_path / "c.toml", SWEEP)
    proc = run(["sweep", config], HPCOPT_MPI_INIT_TIMEOUT="soon")
    assert proc.returncode == 2
    assert proc.stderr.count("HPCOPT_MPI_INIT_TIMEOUT: expected seconds") == 1
