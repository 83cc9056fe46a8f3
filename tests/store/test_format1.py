"""Files of format 1 (the old layout) stay readable and resumable (store/schema.FORMAT_VERSION).

The files in tests/data/format1 were written by the hpcopt of format 1 itself (see
tests/data/format1/generate.py): a sweep's points as x0/x vector columns, tempering's
per-replica vectors inside `rounds`, HPO parameter columns for numeric parameters only.
`hpcopt report`, the API and --resume read them; --resume keeps writing their layout.
"""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpctest import TESTS, assert_same_rows, joined_rows, read_table, run, write_config
from hpcopt.report import load
from hpcopt.store import schema

DATA = TESTS / "data" / "format1"
NAMES = ("sweep", "well", "ising", "hpo")


def copy(name: str, tmp_path: Path) -> Path:
    for suffix in (".h5", ".h5.journal"):
        if (DATA / (name + suffix)).exists():
            shutil.copy(DATA / (name + suffix), tmp_path / (name + suffix))
    return tmp_path / f"{name}.h5"


def config_of(path: Path, old: str, new: str) -> Path:
    """The config the file records, with `old` replaced by `new` (an extendable key)."""
    with h5py.File(path, "r") as f:
        text = f.attrs["config"]
    assert old in text
    return write_config(path.with_suffix(".toml"), text.replace(old, new))


@pytest.mark.parametrize("name", NAMES)
def test_the_fixtures_are_the_old_layout(name):
    with h5py.File(DATA / f"{name}.h5", "r") as f:
        assert f.attrs["format_version"] == 1
        main = f[schema.MAIN_TABLE[f.attrs["kind"]]]
        assert "vectors" not in main.attrs and "columns" not in main.attrs
        if name == "sweep":
            assert main.dtype["x0"].shape == (2,) and main.dtype["x"].shape == (2,)
        if name in ("well", "ising"):
            assert main.dtype["energy"].shape == (3,)
        if name == "hpo":
            assert {n for n in main.dtype.names if n.startswith("p_")} == {"p_x", "p_y", "p_n"}
            assert main.dtype["p_n"].kind == "f"


@pytest.mark.parametrize("name", NAMES)
def test_report_and_api_read_format1(name, tmp_path):
    path = copy(name, tmp_path)
    proc = run(["report", path, "--json"], check=True)
    summary = json.loads(proc.stdout)
    r = load(path)
    assert summary["kind"] == r.kind and r.status == "complete"
    assert summary["best"]["objective"] == pytest.approx(r.best["objective"])
    for table in r.tables:
        raw = read_table(path, table)           # format 1: the table is its own rows
        rows = r.table(table, all_rows=True)
        assert rows.dtype.names == raw.dtype.names and len(rows) == len(raw)
        assert r.frame(table).shape[0] == len(r.table(table))
    out = run(["report", path, "--export", tmp_path / "export", "--plots", tmp_path / "plots"])
    assert out.returncode == 0, out.stderr
    if name == "sweep":
        df = r.frame()
        np.testing.assert_array_equal(df["y"], r.table()["x"][:, 1])
        np.testing.assert_array_equal(df["x_start"], r.table()["x0"][:, 0])
    if name == "well":
        assert {"x0", "x1"} <= set(r.frame("samples").columns)


def test_resume_of_a_format1_sweep_keeps_its_layout(tmp_path):
    """samples 6 -> 9: the old rows stay, the new ones are written as x0/x vectors, and
    every row equals the campaign run at once by this hpcopt."""
    path = copy("sweep", tmp_path)
    before = read_table(path, "tasks")
    cfg = config_of(path, "samples = 6", "samples = 9")
    run(["sweep", cfg, "-o", path, "--resume", "--quiet"], check=True)
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == 1 and f["tasks"].dtype["x0"].shape == (2,)
        assert "vectors" not in f["tasks"].attrs
        after = f["tasks"][()]
    assert len(after) == 9 and (after["status"] != schema.PENDING).all()
    assert after[:6].tobytes() == before.tobytes()
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh_cfg = write_config(fresh_dir / "sweep.toml", cfg.read_text())
    run(["sweep", fresh_cfg, "-o", fresh_dir / "sweep.h5", "--quiet"], check=True)
    fresh = read_table(fresh_dir / "sweep.h5", "tasks")
    assert_same_rows(after, fresh)


def test_resume_of_a_format1_temper_file_keeps_its_layout(tmp_path):
    """rounds 16 -> 30: the chains continue in the old layout, bit for bit the campaign
    run for 30 rounds at once."""
    path = copy("ising", tmp_path)
    before = read_table(path, "rounds")
    cfg = config_of(path, "rounds = 16", "rounds = 30")
    run(["temper", cfg, "-o", path, "--resume", "--quiet"], check=True)
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == 1 and f["rounds"].dtype["energy"].shape == (3,)
        assert f["samples"].dtype["state"].shape == (3, 3)
        assert "rounds_energy" not in f and "samples_state" not in f
        after = {t: f[t][()] for t in ("rounds", "samples", "pairs", "replicas", "slots")}
    assert after["rounds"][:16].tobytes() == before.tobytes()
    assert (after["rounds"]["status"] == schema.OK).all() and len(after["rounds"]) == 30
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh_cfg = write_config(fresh_dir / "ising.toml", cfg.read_text())
    run(["temper", fresh_cfg, "-o", fresh_dir / "ising.h5", "--quiet"], check=True)
    with h5py.File(fresh_dir / "ising.h5", "r") as f:
        assert f.attrs["format_version"] == schema.FORMAT_VERSION
        for table, rows in after.items():
            assert_same_rows(rows, joined_rows(f, table))


def test_resume_of_a_format1_hpo_file_keeps_its_layout(tmp_path):
    """n_trials 5 -> 8: three more trials in the old columns (numeric parameters only, as
    float64), the study continued from its journal."""
    path = copy("hpo", tmp_path)
    before = read_table(path, "trials")
    cfg = config_of(path, "n_trials = 5", "n_trials = 8")
    run(["hpo", cfg, "-o", path, "--resume", "--quiet"], check=True, HPOOBJ_SLEEP="0")
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == 1
        assert f["trials"].dtype == before.dtype
        after = f["trials"][()]
    for column in before.dtype.names:          # vlen strings compare as values
        np.testing.assert_array_equal(after[column][:5], before[column][:5], err_msg=column)
    done = after[after["status"] != schema.PENDING]
    assert len(done) == 8 and sorted(done["task_id"]) == list(range(8))
    for row in done[5:]:
        real = json.loads(row["params_json"])
        assert row["p_n"] == real["n"] and row["p_x"] == real["x"]
        assert set(real) == {"x", "y", "n", "act", "layers"}
