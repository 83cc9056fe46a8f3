"""The notebook API: load() -> Result, tables equal plain h5py reads, params(), frame()."""

import json
import subprocess
import sys
import types

import h5py
import numpy as np
import pytest
from report_helpers import finished_rows

from hpctest import REPO
from hpcopt.report import Result, load
from hpcopt.report.api import PANDAS_MISSING, to_frame
from hpcopt.store import schema


def assert_rows_equal(got: np.ndarray, raw: np.ndarray) -> None:
    """API rows == h5py rows, column by column (vlen strings: str in the API, bytes in h5py)."""
    assert got.dtype.names == raw.dtype.names and len(got) == len(raw)
    for name in raw.dtype.names:
        if raw.dtype[name].kind == "O":
            assert list(got[name]) == [v.decode() if isinstance(v, bytes) else v
                                       for v in raw[name]]
        else:
            np.testing.assert_array_equal(got[name], raw[name])


@pytest.mark.parametrize("fixture, kind", [("sweep_file", "sweep"), ("ising_file", "temper"),
                                           ("well_file", "temper"), ("hpo_file", "hpo")])
def test_tables_equal_h5py_reads(request, fixture, kind):
    path = request.getfixturevalue(fixture)
    r = load(path)
    assert isinstance(r, Result) and r.kind == kind and r.status == "complete"
    with h5py.File(path, "r", locking=False) as f:
        names = [n for n, o in f.items() if isinstance(o, h5py.Dataset) and o.dtype.names]
        assert r.attrs["seed"] == int(f.attrs["seed"])
        assert r.config == f.attrs["config"] and "[" in r.config
    assert sorted(r.tables) == sorted(names) and r.main_table == schema.MAIN_TABLE[kind]
    for name in names:
        assert_rows_equal(r.table(name), finished_rows(path, name))
    assert_rows_equal(r.table(), finished_rows(path, r.main_table))


def test_best_and_attributes_of_each_kind(sweep_file, nist_file, ising_file, hpo_file):
    s = load(sweep_file)
    rows = finished_rows(sweep_file, "tasks")
    ok = rows[rows["status"] == schema.OK]
    assert s.best["objective"] == ok["objective"].min()
    i = int(np.argmin(ok["objective"]))
    assert s.best["params"] == {"x": ok["x"][i][0], "y": ok["x"][i][1]}
    fit = load(nist_file)
    assert set(fit.best["stderr"]) == {"b1", "b2"} and fit.best["stderr"]["b1"] > 0
    assert fit.table_attrs("tasks")["param_names"] == ["b1", "b2"]
    t = load(ising_file)
    assert t.best["objective"] == min(finished_rows(ising_file, "rounds")["best_energy"])
    assert isinstance(t.attrs["temperatures"], list) and len(t.attrs["temperatures"]) == 4
    h = load(hpo_file)
    trials = finished_rows(hpo_file, "trials")
    done = trials[trials["status"] == schema.OK]
    assert h.best["objective"] == pytest.approx(done["objective"].min())
    assert set(h.best["params"]) == {"x", "lr", "n", "layers"}
    with pytest.raises(KeyError, match="no table 'nope'"):
        h.table("nope")


def test_params_give_named_columns(sweep_file, well_file, ising_file, hpo_file):
    rows = finished_rows(sweep_file, "tasks")
    p = load(sweep_file).params()
    assert p.dtype.names[:3] == ("task_id", "x", "y")
    np.testing.assert_array_equal(p["x"], rows["x"][:, 0])
    np.testing.assert_array_equal(p["y"], rows["x"][:, 1])
    np.testing.assert_array_equal(p["objective"], rows["objective"])
    start = load(sweep_file).params(start=True)
    np.testing.assert_array_equal(start["y"], rows["x0"][:, 1])

    trials = finished_rows(hpo_file, "trials")
    hp = load(hpo_file).params()
    real = [json.loads(t) for t in trials["params_json"]]
    np.testing.assert_array_equal(hp["x"], [v["x"] for v in real])
    np.testing.assert_array_equal(hp["n"], [v["n"] for v in real])
    assert hp["layers"].dtype == object and list(hp["layers"]) == [v["layers"] for v in real]

    samples = finished_rows(well_file, "samples")
    wp = load(well_file).params()
    assert wp.dtype.names == ("task_id", "x0", "x1", "energy")
    np.testing.assert_array_equal(wp["x1"], samples["state"][:, 1])
    with pytest.raises(ValueError, match="not named parameters"):
        load(ising_file).params()


def test_frame_without_pandas_raises_a_helpful_import_error(sweep_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)      # import pandas -> ImportError
    with pytest.raises(ImportError, match="needs pandas") as info:
        load(sweep_file).frame("tasks")
    assert str(info.value) == PANDAS_MISSING and "Result.table()" in str(info.value)


def test_frame_gets_flat_columns(sweep_file, monkeypatch):
    """The DataFrame path with a stand-in pandas module that records what it was given."""
    fake = types.ModuleType("pandas")

    class DataFrame:
        def __init__(self, columns):
            self.columns = columns
    fake.DataFrame = DataFrame
    monkeypatch.setitem(sys.modules, "pandas", fake)
    df = load(sweep_file).frame()
    rows = finished_rows(sweep_file, "tasks")
    assert list(df.columns)[:3] == ["task_id", "status", "attempts"]
    # named after the parameters (x, y): the refined point, and the start as <name>_start
    assert list(df.columns)[7:11] == ["x_start", "y_start", "x", "y"]
    np.testing.assert_array_equal(df.columns["y"], rows["x"][:, 1])
    np.testing.assert_array_equal(df.columns["y_start"], rows["x0"][:, 1])
    assert set(df.columns["status"]) == {"ok", "failed"}
    failed = rows["status"] == schema.FAILED
    assert all(isinstance(m, str) for m in df.columns["message"])
    assert [m for m, bad in zip(df.columns["message"], failed) if bad][0] == \
        rows["message"][failed][0].decode()
    # the same conversion on temper rows: 2-D states flatten in C order
    from hpcopt.report.tables import flat_columns
    state = np.zeros(2, dtype=[("task_id", "<i8"), ("state", "i1", (2, 3))])
    state["state"][1] = np.arange(6).reshape(2, 3)
    cols = to_frame(state, fake).columns
    assert list(cols) == ["task_id"] + [f"state_{k}" for k in range(6)]
    assert [cols[f"state_{k}"][1] for k in range(6)] == list(range(6))
    assert list(flat_columns(state)) == list(cols)


def test_the_api_never_imports_mpi(sweep_file, well_file, hpo_file, tmp_path):
    code = f"""
import sys
from hpcopt.report import load
for p in {[str(sweep_file), str(well_file), str(hpo_file)]!r}:
    r = load(p)
    r.table(); r.params(); r.summary(); r.export({str(tmp_path)!r} + "/" + r.kind)
load({str(sweep_file)!r}).plots({str(tmp_path / "plots")!r})
print("mpi4py" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
