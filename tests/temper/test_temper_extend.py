"""`--resume` with a larger `rounds`: the file grows, the chains continue (issue 13.2)."""

import h5py
import numpy as np
import pytest
from hpctest import joined_rows, run, write_config

from hpcopt.mpi.runtime import World
from hpcopt.store.resultfile import ResultStore
from hpcopt.temper.extend import FINAL_ATTR, extend_file, n_samples
from temper_helpers import config_from_toml

CONFIG = """
[temper]
replicas = 4
t_min = 1.0
t_max = 6.0
exchange_interval = 5
rounds = {rounds}
burn_in = 10
thin = 3
[problem]
name = "ising"
L = 4
[run]
seed = 11
[output]
path = "pt.h5"
"""

TABLES = ("rounds", "samples", "pairs", "replicas", "slots")


def contents(path):
    with h5py.File(path, "r") as f:
        out = {name: f[name][:].tobytes() for name in TABLES}
        out["attrs"] = {k: repr(f.attrs[k]) for k in ("log_z_ratio", "log_z_stepping_stone",
                                                      "rounds_done", "status", "config")}
        out["best"] = {k: repr(v) for k, v in f["best"].attrs.items()}
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    run(["temper", write_config(d / "pt.toml", CONFIG.format(rounds=200))], check=True)
    return contents(d / "pt.h5")


def test_resume_with_more_rounds_equals_the_longer_run(tmp_path, reference):
    cfg = write_config(tmp_path / "pt.toml", CONFIG.format(rounds=80))
    run(["temper", cfg], check=True)
    with h5py.File(tmp_path / "pt.h5", "r") as f:
        assert f["rounds"].shape == (80,) and f.attrs["status"] == "complete"
    write_config(cfg, CONFIG.format(rounds=200))
    proc = run(["temper", cfg, "--resume"], check=True)
    assert "200/200 rounds" in proc.stdout
    assert contents(tmp_path / "pt.h5") == reference
    # the extended file resumes as one written with the longer config
    assert "200/200 rounds" in run(["temper", cfg, "--resume"], check=True).stdout
    assert contents(tmp_path / "pt.h5") == reference


@pytest.mark.parametrize("change, key", [("rounds = 80", "rounds"), ("seed = 11", "seed")])
def test_other_changes_than_more_rounds_are_refused(tmp_path, change, key):
    cfg = write_config(tmp_path / "pt.toml", CONFIG.format(rounds=120))
    run(["temper", cfg], check=True)
    before = contents(tmp_path / "pt.h5")
    text = CONFIG.format(rounds=120)
    text = text.replace("rounds = 120", "rounds = 80") if key == "rounds" else \
        text.replace("seed = 11", "seed = 12").replace("rounds = 120", "rounds = 200")
    write_config(cfg, text)
    proc = run(["temper", cfg, "--resume"])
    refused = "temper.rounds (120 -> 80)" if key == "rounds" else "run.seed (11 -> 12)"
    assert proc.returncode == 2 and refused in proc.stderr
    assert ("temper.rounds may only grow" in proc.stderr) == (key == "rounds")
    assert proc.stderr.count("hpcopt: error") == 1
    assert contents(tmp_path / "pt.h5") == before


def test_extend_file_keeps_rows_adds_pending_ones_and_clears_the_end_mark(tmp_path):
    small = config_from_toml(CONFIG.format(rounds=30))
    big = config_from_toml(CONFIG.format(rounds=75))
    run(["temper", write_config(tmp_path / "pt.toml", CONFIG.format(rounds=30))], check=True)
    path = tmp_path / "pt.h5"
    with h5py.File(path, "r+") as f:
        rounds, samples = joined_rows(f, "rounds"), joined_rows(f, "samples")
        attrs = dict(f["rounds"].attrs)
        f.create_dataset("rounds.extending", data=np.zeros(3))  # left by a killed extension
        f.create_dataset("rounds_energy.extending", data=np.zeros(3))
    store = ResultStore(World(comm=None, rank=0, size=1, host="here"), path)
    store.resume(world_size=1)
    extend_file(store, small.rounds, big)
    store.close("interrupted")
    with h5py.File(path, "r") as f:
        assert set(f) >= {"rounds", "samples"} and not any(n.endswith(".extending") for n in f)
        assert FINAL_ATTR not in f.attrs
        assert f["rounds"].shape == (75,) and f["samples"].shape == (n_samples(big),)
        # the vectors beside the tables grow with them (a row per round, per sample)
        assert f["rounds_energy"].shape == (75, 4) and f["rounds_swap_accepted"].shape == (75, 3)
        assert f["samples_state"].shape == (n_samples(big), 4, 4)
        assert joined_rows(f, "rounds")[:30].tobytes() == rounds.tobytes()
        assert joined_rows(f, "samples")[:len(samples)].tobytes() == samples.tobytes()
        new = joined_rows(f, "rounds")[30:]
        assert (new["status"] == 0).all() and new["task_id"].tolist() == list(range(30, 75))
        assert np.isnan(new["energy"]).all()
        assert dict(f["rounds"].attrs) == attrs
    assert n_samples(big) == len(range(10, 75, 3))
    with pytest.raises(ValueError):
        extend_file(store, big.rounds, small)
