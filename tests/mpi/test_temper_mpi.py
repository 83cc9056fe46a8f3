"""`hpcopt temper` under mpiexec: identical at any rank count, resume equals uninterrupted."""

import os
import re
import signal
import time

import h5py
import psutil
import pytest

from hpctest import RANKS, job_exit, kill_group, run, start, wait_for_rows, write_config

pytestmark = pytest.mark.mpi

ISING = """
[temper]
replicas = 6
t_min = 1.0
t_max = 20.0
ladder = "geometric"
exchange_interval = 20
rounds = 60
[problem]
name = "ising"
L = 4
[run]
seed = 7
[output]
path = "pt.h5"
"""

WELL = """
[temper]
replicas = 4
t_min = 0.5
t_max = 8.0
exchange_interval = 10
rounds = 400
burn_in = 20
thin = 2
[problem]
function = "testobj:slow_energy"
x0 = [1.0, 0.0]
step = [0.3, 0.3]
lower = [-3.0, -3.0]
upper = [3.0, 3.0]
[run]
seed = 3
checkpoint_every = 25
[output]
path = "pt.h5"
"""

TABLES = ("rounds", "samples", "pairs", "replicas", "slots")


def contents(path):
    with h5py.File(path, "r") as f:
        out = {name: f[name][:].tobytes() for name in TABLES}
        out["best"] = {k: repr(v) for k, v in f["best"].attrs.items()}
        out["status"] = f.attrs["status"]
    return out


@pytest.fixture(scope="module")
def ising_reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ising")
    run(["temper", write_config(d / "pt.toml", ISING)], check=True)   # singleton
    return contents(d / "pt.h5")


@pytest.mark.parametrize("n", RANKS)
def test_identical_output_at_every_rank_count(tmp_path, n, ising_reference):
    proc = run(["temper", write_config(tmp_path / "pt.toml", ISING)], n=n, check=True)
    assert "best: energy -32" in proc.stdout          # the ground state of the 4x4 lattice
    assert contents(tmp_path / "pt.h5") == ising_reference


def test_more_ranks_than_replicas_is_a_config_error(tmp_path):
    cfg = write_config(tmp_path / "pt.toml", ISING.replace("replicas = 6", "replicas = 2"))
    proc = run(["temper", cfg], n=3, timeout=60)
    assert proc.returncode == 2
    assert "temper.replicas" in proc.stderr and proc.stderr.count("hpcopt: error") == 1


@pytest.fixture(scope="module")
def well_reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("well")
    run(["temper", write_config(d / "pt.toml", WELL)], n=2, check=True, TESTOBJ_SLEEP="0")
    return contents(d / "pt.h5")


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_resume_continues_bit_for_bit(tmp_path, how, well_reference):
    cfg = write_config(tmp_path / "pt.toml", WELL)
    proc = start(["temper", cfg], n=3, TESTOBJ_SLEEP="0.0005")
    wait_for_rows(tmp_path / "pt.h5", "rounds", 60, timeout=120)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert job_exit(proc, err) == 3, err
        with h5py.File(tmp_path / "pt.h5", "r") as f:
            assert f.attrs["status"] == "interrupted"
    else:
        kill_group(proc)
        proc.wait(timeout=30)
    with h5py.File(tmp_path / "pt.h5", "r") as f:
        assert (f["rounds"]["status"] != 0).sum() < 400       # really stopped mid-way
    # resume at another rank count: checkpoints move between rank counts
    run(["temper", cfg, "--resume"], n=2, check=True, TESTOBJ_SLEEP="0")
    assert contents(tmp_path / "pt.h5") == well_reference


# -- stops and errors that start on one rank (issue 13.7, 13.8) -------------------------------

def rank_pids(proc, n, timeout=60.0) -> dict[int, int]:
    """{MPI rank: pid} of the ranks under a launcher started by hpctest.start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {}
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            try:
                env = child.environ()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if "PMI_RANK" in env and "python" in child.name():
                found[int(env["PMI_RANK"])] = child.pid
        if len(found) == n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"found ranks {sorted(found)} of {n}")


@pytest.mark.parametrize("n, target, sig", [(2, 1, signal.SIGTERM), (3, 2, signal.SIGUSR1),
                                            (3, 1, signal.SIGTERM)])
def test_a_signal_to_one_rank_checkpoints_and_exits_3(tmp_path, n, target, sig, well_reference):
    """BUG (issue 13.8): SIGTERM/SIGUSR1 sent to one worker rank only (not to rank 0 or
    the launcher) stopped the campaign but the job exited 0 as if it were complete."""
    cfg = write_config(tmp_path / "pt.toml", WELL)
    proc = start(["temper", cfg], n=n, TESTOBJ_SLEEP="0.0005")
    try:
        pids = rank_pids(proc, n)
        wait_for_rows(tmp_path / "pt.h5", "rounds", 40, timeout=120)
        os.kill(pids[target], sig)
        out, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert job_exit(proc, err) == 3, err
    assert "--resume" in err and sig.name in err
    with h5py.File(tmp_path / "pt.h5", "r") as f:
        assert f.attrs["status"] == "interrupted"
        assert 40 <= (f["rounds"]["status"] != 0).sum() < 400
    run(["temper", cfg, "--resume"], n=2, check=True, TESTOBJ_SLEEP="0")
    assert contents(tmp_path / "pt.h5") == well_reference


EXITING_ENERGY = '''
import os
from mpi4py import MPI

CALLS = [0]


def energy(x):
    """A bowl that, on one rank and after a while, raises what BAD_RAISE names."""
    CALLS[0] += 1
    if MPI.COMM_WORLD.Get_rank() == int(os.environ["BAD_RANK"]) and CALLS[0] > 200:
        raise eval(os.environ["BAD_RAISE"])
    return float(x @ x)
'''

EXITING = """
[temper]
replicas = 4
t_min = 1.0
t_max = 8.0
exchange_interval = 10
rounds = 200
[problem]
function = "exiting_energy:energy"
x0 = [0.5, 0.5]
step = 0.3
[output]
path = "pt.h5"
"""


@pytest.mark.parametrize("n, raise_", [(1, "SystemExit(0)"), (2, "SystemExit(0)"),
                                       (3, "SystemExit(3)"), (2, "KeyboardInterrupt()"),
                                       (3, "SystemExit(None)")])
def test_an_energy_that_exits_is_an_error_naming_rank_and_replica(tmp_path, n, raise_):
    """BUG (issue 13.7): SystemExit(0) raised by the energy on a worker rank ended that rank
    with status 0 and the others waited for it forever; SystemExit(3) read as 'interrupted'."""
    (tmp_path / "exiting_energy.py").write_text(EXITING_ENERGY)
    cfg = write_config(tmp_path / "pt.toml", EXITING)
    bad = n - 1
    t0 = time.monotonic()
    proc = run(["temper", cfg], n=n, timeout=90, BAD_RANK=str(bad), BAD_RAISE=raise_)
    assert proc.returncode not in (0, 3), (proc.returncode, proc.stderr[-3000:])
    assert time.monotonic() - t0 < 60
    name = raise_.split("(")[0]
    assert f"hpcopt: error on rank {bad} " in proc.stderr, proc.stderr[-3000:]
    assert re.search(rf"EnergyError: replica \d+ at T = [\d.]+, round \d+: the energy "
                     rf"'exiting_energy:energy' raised {name}", proc.stderr), proc.stderr[-3000:]


# -- more rounds on --resume (issue 13.2) ------------------------------------------------------

@pytest.mark.parametrize("stopped", [False, True], ids=["after-the-end", "interrupted"])
def test_resume_with_more_rounds_continues_to_the_new_total(tmp_path, stopped, well_reference):
    """A campaign run (or stopped) with rounds = 150 at 3 ranks and resumed at 2 ranks with
    rounds = 400 is bit for bit the 400-round campaign run at once."""
    cfg = write_config(tmp_path / "pt.toml", WELL.replace("rounds = 400", "rounds = 150"))
    if stopped:
        proc = start(["temper", cfg], n=3, TESTOBJ_SLEEP="0.0005")
        wait_for_rows(tmp_path / "pt.h5", "rounds", 40, timeout=120)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert job_exit(proc, err) == 3, err
    else:
        run(["temper", cfg], n=3, check=True, TESTOBJ_SLEEP="0")
    with h5py.File(tmp_path / "pt.h5", "r") as f:
        assert f["rounds"].shape == (150,)
    write_config(cfg, WELL)
    run(["temper", cfg, "--resume"], n=2, check=True, TESTOBJ_SLEEP="0")
    assert contents(tmp_path / "pt.h5") == well_reference
