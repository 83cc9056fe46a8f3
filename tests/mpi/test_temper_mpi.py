"""`hpcopt temper` under mpiexec: identical at any rank count, resume equals uninterrupted."""

import signal

import h5py
import pytest

from hpctest import RANKS, kill_group, run, start, wait_for_rows, write_config

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
        assert proc.returncode == 3, err
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
