"""Tables that pandas and h5py users take as they are (issue 15.4): scalar columns only,
vectors beside their table, typed HPO parameters, no placeholder rows, a unit and a
description on every column, frame() named after the parameters."""

import json
import math

import h5py
import numpy as np
import pandas as pd
import pytest
from report_helpers import finished_rows

from hpctest import joined_rows
from hpcopt.report import load
from hpcopt.store import schema

KINDS = ["sweep_file", "nist_file", "xpcs_file", "ising_file", "well_file", "hpo_file",
         "hpo_fails_file", "hpo_typed_file", "pbt_file"]


def compound_tables(f: h5py.File) -> list[str]:
    return [n for n, o in f.items() if isinstance(o, h5py.Dataset) and o.dtype.names]


@pytest.mark.parametrize("fixture", KINDS)
def test_pandas_takes_every_table_as_it_is(request, fixture):
    """Before: the sweep's x0/x and tempering's per-replica columns were vectors inside the
    compound tables, and pd.DataFrame(f["tasks"][()]) raised."""
    path = request.getfixturevalue(fixture)
    with h5py.File(path, "r") as f:
        names = compound_tables(f)
        assert names
        for name in names:
            rows = f[name][()]
            assert all(rows.dtype[n].subdtype is None for n in rows.dtype.names), name
            df = pd.DataFrame(rows)
            assert list(df.columns) == list(rows.dtype.names) and len(df) == len(rows)


def test_sweep_points_are_columns_named_after_the_parameters(sweep_file, xpcs_file):
    with h5py.File(sweep_file, "r") as f:
        names = f["tasks"].dtype.names
        assert names[7:11] == ("x0_x", "x0_y", "x_x", "x_y")
        assert "x0" not in names and "x" not in names
        df = pd.DataFrame(f["tasks"][()])
    rows = finished_rows(sweep_file, "tasks")
    np.testing.assert_array_equal(df["x_y"], rows["x"][:, 1])
    np.testing.assert_array_equal(df["x0_x"], rows["x0"][:, 0])
    with h5py.File(xpcs_file, "r") as f:
        docs = json.loads(f["tasks"].attrs["columns"])
    assert docs["x_D0"]["unit"] == "Å² s^-(1+alpha)" and docs["x0_phi0"]["unit"] == "deg"
    assert docs["x_beta"]["unit"] == "" and "refined point" in docs["x_beta"]["description"]


@pytest.mark.parametrize("fixture", ["ising_file", "well_file"])
def test_tempering_vectors_are_datasets_beside_their_table(request, fixture):
    path = request.getfixturevalue(fixture)
    with h5py.File(path, "r") as f:
        n_rounds, n = f["rounds"].shape[0], int(f["rounds"].attrs["n_replicas"])
        assert set(f["rounds"].dtype.names) == {"task_id", "status", "best_energy"}
        for field, width in (("slot", n), ("temperature", n), ("energy", n),
                             ("move_acceptance", n), ("swap_attempted", n - 1),
                             ("swap_accepted", n - 1), ("swap_probability", n - 1)):
            side = f[f"rounds_{field}"]
            assert side.shape == (n_rounds, width) and side.attrs["table"] == "rounds"
            assert side.attrs["description"]
        assert f["samples_state"].shape[0] == f["samples"].shape[0]
        rounds = joined_rows(f, "rounds")
    # the rows as the campaign wrote them: the ladder is a permutation in every round
    done = rounds[rounds["status"] == schema.OK]
    assert (np.sort(done["slot"], axis=1) == np.arange(n)).all()
    r = load(path)
    np.testing.assert_array_equal(r.table("rounds")["energy"], done["energy"])


@pytest.mark.parametrize("fixture", KINDS)
def test_every_column_has_a_unit_and_a_description(request, fixture):
    path = request.getfixturevalue(fixture)
    with h5py.File(path, "r") as f:
        for name in compound_tables(f):
            docs = json.loads(f[name].attrs["columns"])
            sides = [c for c, d in docs.items() if "dataset" in d]
            assert [c for c in docs if c not in sides] == list(f[name].dtype.names), name
            for column, doc in docs.items():
                assert isinstance(doc["unit"], str), (name, column)
                assert len(doc["description"]) > 8, (name, column, doc)
            for column in sides:
                side = f[docs[column]["dataset"]]
                assert side.attrs["description"] == docs[column]["description"]
                assert side.attrs["unit"] == docs[column]["unit"]
            if "t_start" in docs:
                assert docs["t_start"]["unit"] == docs["wall"]["unit"] == "s"


def test_hpo_parameters_are_typed_columns(hpo_typed_file):
    """Before: only numeric parameters had a column, and every one was float64."""
    with h5py.File(hpo_typed_file, "r") as f:
        dt = f["trials"].dtype
        docs = json.loads(f["trials"].attrs["columns"])
    kinds = {n: dt[n].kind for n in dt.names if n.startswith("p_")}
    assert kinds == {"p_x": "f", "p_y": "f", "p_n": "i", "p_act": "O", "p_depth": "f",
                     "p_layers": "O", "p_flag": "O", "p_width": "i", "p_rate": "f",
                     "p_mixed": "O"}
    assert "NaN when the parameter is inactive" in docs["p_depth"]["description"]
    trials = load(hpo_typed_file).table()
    assert len(trials) == 12
    for row in trials:
        real = json.loads(row["params_json"])
        assert row["p_n"] == real["n"] and isinstance(real["n"], int)
        assert row["p_act"] == real["act"] and row["p_act"] in ("relu", "tanh")
        assert json.loads(row["p_layers"]) == real["layers"]
        assert json.loads(row["p_flag"]) is real["flag"]
        assert json.loads(row["p_mixed"]) == real["mixed"]
        assert row["p_width"] == real["width"] and row["p_rate"] == real["rate"]
        if real["act"] == "relu":
            assert row["p_depth"] == real["depth"]
        else:
            assert "depth" not in real and math.isnan(row["p_depth"])
    df = load(hpo_typed_file).frame()
    assert df["n"].dtype == np.int64 and df["width"].dtype == np.int64
    assert set(df["act"]) <= {"relu", "tanh"}


def test_pbt_lineage_has_typed_parameter_columns(pbt_file):
    rows = load(pbt_file).table()
    assert rows.dtype["p_batch"].kind == "i" and rows.dtype["p_opt"].kind == "O"
    assert rows.dtype["p_lr"].kind == "f"
    for row in rows[rows["status"] == schema.OK]:
        real = json.loads(row["params_json"])
        assert (row["p_batch"], row["p_opt"]) == (real["batch"], real["opt"])
    df = load(pbt_file).frame()
    assert {"lr", "batch", "opt", "member", "segment"} <= set(df.columns)


@pytest.mark.parametrize("fixture", ["hpo_file", "hpo_fails_file", "hpo_typed_file",
                                     "pbt_file"])
def test_a_finished_hpo_file_holds_no_placeholder_rows(request, fixture):
    """Before: the trials table kept its preallocated pending rows (n_trials * (1 +
    max_retries)) after the campaign ended."""
    path = request.getfixturevalue(fixture)
    with h5py.File(path, "r") as f:
        status = f["trials"]["status"]
        assert f.attrs["status"] == "complete" and len(status)
        assert (status != schema.PENDING).all()


def test_frame_names_columns_after_parameters(sweep_file, hpo_file, well_file, nist_file):
    df = load(sweep_file).frame()
    rows = finished_rows(sweep_file, "tasks")
    assert list(df.columns) == ["task_id", "status", "attempts", "rank", "t_start", "wall",
                                "message", "x_start", "y_start", "x", "y", "objective",
                                "chi2_reduced", "n_eval"]
    np.testing.assert_array_equal(df["x"], rows["x"][:, 0])
    np.testing.assert_array_equal(df["y_start"], rows["x0"][:, 1])
    fit = load(nist_file).frame()
    assert {"b1", "b2", "b1_start", "b2_start"} <= set(fit.columns)
    hpo = load(hpo_file).frame()
    assert {"x", "lr", "n", "layers", "objective", "state"} <= set(hpo.columns)
    assert not any(c.startswith("p_") for c in hpo.columns)
    assert hpo["n"].dtype == np.int64
    samples = load(well_file).frame("samples")
    assert {"x0", "x1", "energy"} <= set(samples.columns) and "state_0" not in samples
    rounds = load(well_file).frame()               # the main table: rounds
    assert {"energy_0", "energy_2", "temperature_1", "best_energy"} <= set(rounds.columns)
    assert len(rounds) == int(load(well_file).attrs["rounds_done"])


def test_the_main_table_is_read_without_a_name(sweep_file, ising_file, hpo_file, pbt_file):
    for path, main in ((sweep_file, "tasks"), (ising_file, "rounds"), (hpo_file, "trials"),
                       (pbt_file, "trials")):
        r = load(path)
        assert r.main_table == main
        assert r.table().dtype == r.table(main).dtype
        assert r.table()["task_id"].tolist() == r.table(main)["task_id"].tolist()
        assert list(r.frame().columns) == list(r.frame(main).columns)
