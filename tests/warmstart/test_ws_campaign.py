"""Warm starts around a real sweep: conditions, result files into the history, the plan
the engine builds on rank 0, and recording at the end."""

import json
import logging

import h5py
import numpy as np
import pytest

from hpcopt.errors import ResultFileError
from hpcopt.models.xpcs import save_xpcs_h5, simulate
from hpcopt.sweep.starts import ParamSpec, StartDesign
from hpcopt.tomlread import Table
from hpcopt.warmstart import (WarmStartDesign, add_fit, add_result_file, data_conditions,
                              fit_conditions, load_history, parse_warmstart, plan_warm_starts,
                              read_records, record_result, warm_starts)
from hpcopt.warmstart.campaign import ATTR_WARMSTART

CONFIG = """
[model]
name = "xpcs:homodyne"
[data]
path = "data.h5"
[parameters]
D0 = {{ min = 1e3, max = 3e4, scale = "log" }}
alpha = {{ min = -1.5, max = 0.5 }}
D_offset = {{ min = 0.0, max = 2000.0 }}
gamma_dot_0 = {{ value = 1e-4 }}
beta = {{ value = 0.5 }}
gamma_dot_offset = {{ value = 1e-5 }}
phi0 = {{ value = 10.0 }}
[search]
method = "sobol"
samples = 2
[local]
method = "least_squares"
[output]
path = "fit.h5"
[warmstart]
history = "history.h5"
conditions = {{ pressure = {pressure} }}
"""


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """A real (one-process) sweep of a small XPCS dataset that has conditions."""
    from hpcopt.campaign.contract import CampaignRequest
    from hpcopt.campaign.lifecycle import execute
    from hpcopt.mpi.runtime import get_world
    d = tmp_path_factory.mktemp("sweep")
    data = simulate("homodyne", n=12, seed=1, conditions={"temperature": 25.0, "sample": "A"})
    save_xpcs_h5(d / "data.h5", data)
    (d / "fit.toml").write_text(CONFIG.format(pressure=2.5))
    summary = execute(get_world(), CampaignRequest("sweep", d / "fit.toml", quiet=True)).summary
    assert summary["status"] == "complete"
    return d, summary


def test_data_conditions_of_an_xpcs_file(finished_sweep):
    d, _ = finished_sweep
    cond = data_conditions("xpcs:homodyne", d / "data.h5")
    assert cond == {"q": 0.01, "temperature": 25.0, "sample": "A"}   # not dt, not h
    assert fit_conditions({"pressure": 2.5, "temperature": 30.0}, "xpcs:homodyne", d / "data.h5") \
        == {"q": 0.01, "temperature": 30.0, "sample": "A", "pressure": 2.5}
    assert data_conditions("nist:Misra1a", d / "x.dat") == {}
    assert data_conditions(None, None) == {}


def test_curve_file_conditions(tmp_path):
    np.savez(tmp_path / "c.npz", x=np.arange(5.0), y=np.arange(5.0), temperature=np.array(300.0))
    assert data_conditions("mymod:f", tmp_path / "c.npz") == {"temperature": 300.0}


def test_result_file_into_the_history(finished_sweep, tmp_path):
    d, summary = finished_sweep
    hist = tmp_path / "history.h5"
    rid = add_result_file(hist, d / "fit.h5")
    assert add_result_file(hist, d / "fit.h5") == rid          # recorded once
    (rec,) = read_records(hist)
    assert rec["model"] == "xpcs:homodyne"
    # no `conditions` attr in the file: from its config's data file and [warmstart]
    assert rec["conditions"] == {"q": 0.01, "temperature": 25.0, "sample": "A", "pressure": 2.5}
    assert rec["params"] == summary["best"]["params"]
    assert rec["chi2"] == summary["best"]["objective"]
    assert rec["chi2_reduced"] == pytest.approx(summary["best"]["chi2_reduced"])
    h = load_history(hist, "xpcs:homodyne")
    assert h.param_names[0] == "D0" and len(h) == 1


def test_stored_conditions_attr_wins(finished_sweep, tmp_path):
    d, _ = finished_sweep
    copy = tmp_path / "fit.h5"
    copy.write_bytes((d / "fit.h5").read_bytes())
    with h5py.File(copy, "r+") as f:
        f.attrs["conditions"] = json.dumps({"temperature": 99.0})
    add_result_file(tmp_path / "h.h5", copy, conditions={"extra": 1.0})
    assert read_records(tmp_path / "h.h5")[0]["conditions"] == {"temperature": 99.0, "extra": 1.0}


def test_incomplete_or_foreign_result_files_are_refused(finished_sweep, tmp_path):
    d, _ = finished_sweep
    copy = tmp_path / "fit.h5"
    copy.write_bytes((d / "fit.h5").read_bytes())
    with h5py.File(copy, "r+") as f:
        f.attrs["status"] = "interrupted"
    with pytest.raises(ResultFileError, match="interrupted, not complete"):
        add_result_file(tmp_path / "h.h5", copy)
    assert add_result_file(tmp_path / "h.h5", copy, allow_incomplete=True) == 0
    with h5py.File(copy, "r+") as f:
        f.attrs["kind"] = "temper"
        f.create_dataset("rounds", data=[0])
    with pytest.raises(ResultFileError, match="temper"):
        add_result_file(tmp_path / "h.h5", copy)


def _specs():
    return (ParamSpec("D0", 1e3, 3e4, scale="log"), ParamSpec("alpha", -1.5, 0.5),
            ParamSpec("phi0", value=10.0))


def _fill(hist, n=12):
    rng = np.random.default_rng(0)
    for T in rng.uniform(20, 60, n):
        add_fit(hist, "xpcs:homodyne", ("D0", "alpha", "phi0"), {"temperature": T},
                [5000 * np.exp(0.02 * (T - 40)), -0.5 + 0.01 * (T - 40), 10.0], 100.0)


def test_plan_what_the_engine_does(tmp_path):
    ws = parse_warmstart(Table({"history": "history.h5", "n_starts": 3, "n_trees": 30,
                                "n_boost": 20}, "warmstart", "fit.toml"), "fit.toml", tmp_path)
    specs = _specs()
    design = StartDesign("sobol", specs, 16, seed=4)
    # no history yet: the normal design, and the plan says why
    plan = plan_warm_starts(ws, model="xpcs:homodyne", specs=specs,
                            conditions={"temperature": 30.0}, seed=4)
    assert not plan.used and "no fits" in plan.message()
    assert WarmStartDesign(design, plan.points, ws.design_fraction).n_tasks == 16
    _fill(ws.history)
    plan = plan_warm_starts(ws, model="xpcs:homodyne", specs=specs,
                            conditions={"temperature": 30.0}, seed=4)
    assert plan.used and plan.points.shape == (3, 3), plan.message()
    np.testing.assert_allclose(plan.points[0, :2], [5000 * np.exp(-0.2), -0.6], rtol=0.05, atol=0.02)
    wd = WarmStartDesign(design, plan.points, ws.design_fraction)
    assert wd.n_tasks == 3 + 8
    attrs = plan.attrs()
    assert json.loads(attrs["conditions"]) == {"temperature": 30.0}
    info = json.loads(attrs[ATTR_WARMSTART])
    assert info["used"] and info["n_starts"] == 3 and info["n_history"] == 12
    again = warm_starts(ws, {"temperature": 30.0}, specs, model="xpcs:homodyne", seed=4)
    np.testing.assert_array_equal(again, plan.points)                 # deterministic
    off = parse_warmstart({"history": "history.h5", "enabled": False}, "fit.toml", tmp_path)
    assert not plan_warm_starts(off, model="xpcs:homodyne", specs=specs,
                                conditions={"temperature": 30.0}, seed=4).used


def test_record_result_adds_or_logs(finished_sweep, tmp_path, caplog):
    d, _ = finished_sweep
    ws = parse_warmstart({"history": "h.h5", "conditions": {"pressure": 1.0}}, "fit.toml", tmp_path)
    assert record_result(ws, d / "fit.h5") == 0
    assert read_records(tmp_path / "h.h5")[0]["conditions"]["pressure"] == 1.0
    off = parse_warmstart({"history": "h.h5", "record": False}, "fit.toml", tmp_path)
    assert record_result(off, d / "fit.h5") is None
    with caplog.at_level(logging.WARNING, logger="hpcopt"):
        assert record_result(ws, tmp_path / "missing.h5") is None
    assert "could not add" in caplog.text


def test_command_line_add_and_show(finished_sweep, tmp_path, capsys):
    from hpcopt.cli import main as cli_main

    def main(argv):
        return cli_main(["warmstart", *argv])
    d, _ = finished_sweep
    hist = tmp_path / "h.h5"
    assert main(["add", str(hist), str(d / "fit.h5"), "--condition", "temperature=31",
                 "--condition", "cell=B"]) == 0
    assert read_records(hist)[0]["conditions"]["temperature"] == 31.0
    assert read_records(hist)[0]["conditions"]["cell"] == "B"
    assert main(["show", str(hist), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("record 0\n", 1)[1])[0]["model"] == "xpcs:homodyne"
    assert main(["show", str(hist)]) == 0
    assert "1 fit(s)" in capsys.readouterr().out
    assert main(["add", str(hist), str(tmp_path / "nope.h5")]) == 2
    assert "nope.h5" in capsys.readouterr().err
