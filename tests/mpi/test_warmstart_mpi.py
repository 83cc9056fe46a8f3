"""ML warm starts through `hpcopt sweep`: a series of XPCS fits fills the history, a later
fit at new nearby conditions starts from predicted points and still finds the best fit."""

import json

import h5py
import numpy as np
import pytest

from hpcopt.models.xpcs import save_xpcs_h5, simulate
from hpcopt.warmstart import read_records
from hpctest import joined_rows, run, write_config

pytestmark = pytest.mark.mpi

CONFIG = """
[model]
name = "xpcs:homodyne"
[data]
path = "{data}"
[parameters]
D0 = {{ min = 1e3, max = 3e4, scale = "log" }}
alpha = {{ min = -1.5, max = 0.5 }}
D_offset = {{ value = 300.0 }}
gamma_dot_0 = {{ value = 1e-4 }}
beta = {{ value = 0.5 }}
gamma_dot_offset = {{ value = 1e-5 }}
phi0 = {{ value = 10.0 }}
[search]
method = "sobol"
samples = 8
[local]
method = "least_squares"
[warmstart]
history = "history.h5"
min_history = 4
n_starts = 3
design_fraction = 0.5
[output]
path = "{out}"
"""


def truth(temperature: float) -> dict:
    """Smooth dependence of the transport coefficients on temperature."""
    return {"D0": 3000.0 * np.exp((temperature - 300.0) / 40.0), "alpha": -0.5 + 0.01 * (temperature - 300.0)}


def dataset(tmp_path, temperature: float, seed: int):
    path = tmp_path / f"T{temperature:.0f}.h5"
    data = simulate("homodyne", truth(temperature), n=20, noise=0.01, seed=seed,
                    conditions={"temperature": temperature})
    save_xpcs_h5(path, data)
    return path


def test_history_fills_and_warm_starts_are_used(tmp_path):
    series = [290.0, 300.0, 310.0, 320.0, 330.0]
    for i, t in enumerate(series):
        data = dataset(tmp_path, t, seed=i)
        cfg = write_config(tmp_path / f"fit{i}.toml", CONFIG.format(data=data.name, out=f"fit{i}.h5"))
        run(["sweep", cfg], n=2 if i % 2 else None, check=True, timeout=300)
    records = read_records(tmp_path / "history.h5")
    assert len(records) == len(series)
    # a new dataset between the recorded conditions
    data = dataset(tmp_path, 315.0, seed=99)
    cfg = write_config(tmp_path / "new.toml", CONFIG.format(data=data.name, out="new.h5"))
    proc = run(["sweep", cfg], n=3, check=True, timeout=300)
    assert "warm starts:" in proc.stderr and "predicted starts" in proc.stderr, proc.stderr
    with h5py.File(tmp_path / "new.h5", "r") as f:
        plan = json.loads(f.attrs["warmstart"])
        assert plan["n_starts"] == 3
        assert json.loads(f.attrs["conditions"])["temperature"] == 315.0
        rows = joined_rows(f, "tasks")
        best = json.loads(f["best"].attrs["params"])
    assert len(rows) == 3 + 4                                  # 3 warm + half of 8 design
    expected = truth(315.0)
    first = rows["x0"][0]                                      # the predicted point
    assert abs(np.log(first[0] / expected["D0"])) < 0.3
    assert abs(best["D0"] / expected["D0"] - 1) < 0.1
    assert len(read_records(tmp_path / "history.h5")) == len(series) + 1
