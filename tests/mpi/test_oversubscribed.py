"""Protocol correctness with more ranks than cores: -n 8 on the 2-core machine gives the
same results as -n 1 for a sweep, a tempering campaign and a deterministic HPO study."""

import h5py
import numpy as np
import pytest

from hpctest import assert_same_rows, read_table, run, write_config

pytestmark = pytest.mark.mpi

SWEEP = """
[objective]
function = "testobj:rosenbrock"
[parameters]
x = { min = -2.0, max = 2.0, points = 6 }
y = { min = -1.0, max = 3.0, points = 5 }
[local]
method = "nelder-mead"
[output]
path = "o.h5"
"""

TEMPER = """
[temper]
replicas = 8
t_min = 1.0
t_max = 10.0
exchange_interval = 10
rounds = 30
[problem]
name = "gaussian-mixture"
[run]
seed = 5
[output]
path = "o.h5"
"""

HPO = """
[hpo]
sampler = "tpe"
n_trials = 20
deterministic = true
max_concurrent = 2
[objective]
function = "hpoobj:quad"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
y = { type = "uniform", low = -5.0, high = 5.0 }
[run]
seed = 3
[output]
path = "o.h5"
"""


def both(tmp_path, kind, text):
    out = []
    for n in (1, 8):
        d = tmp_path / f"n{n}"
        d.mkdir()
        run([kind, write_config(d / "c.toml", text)], n=n, check=True, timeout=300)
        out.append(d / "o.h5")
    return out


def test_sweep_at_8_ranks_equals_1(tmp_path):
    a, b = both(tmp_path, "sweep", SWEEP)
    assert_same_rows(read_table(a, "tasks"), read_table(b, "tasks"))
    assert set(read_table(b, "tasks")["rank"]) == set(range(1, 8))   # every worker took part


def test_temper_at_8_ranks_equals_1(tmp_path):
    a, b = both(tmp_path, "temper", TEMPER)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for name in ("rounds", "samples", "pairs", "replicas", "slots"):
            assert fa[name][:].tobytes() == fb[name][:].tobytes(), name


def test_deterministic_hpo_at_8_ranks_equals_1(tmp_path):
    a, b = both(tmp_path, "hpo", HPO)
    ra, rb = (np.sort(r[r["status"] != 0], order="task_id") for r in
              (read_table(a, "trials"), read_table(b, "trials")))
    assert ra["params_json"].tolist() == rb["params_json"].tolist()
    assert ra["objective"].tolist() == rb["objective"].tolist()
