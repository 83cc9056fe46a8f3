"""Reports on files that are still being written, interrupted or killed, and clear errors
(ResultFileError, exit status 2) for corrupted, foreign and newer files."""

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from report_helpers import finished_rows, is_png, one_figure

from hpctest import REPO
from hpcopt.cli import main
from hpcopt.errors import ResultFileError
from hpcopt.report import export_all, load, plot_all, plots_temper, summarize_file
from hpcopt.store import schema

# A separate process writes a sweep file the way the campaign does (ResultStore, rows in
# place, flushed), then waits for a line on stdin before writing more and closing.
WRITER = r"""
import sys
from types import SimpleNamespace
import numpy as np
from hpcopt.store import schema
from hpcopt.store.dtypes import sweep_dtype
from hpcopt.store.resultfile import ResultStore, TableSpec

path, n = sys.argv[1], 30
store = ResultStore(SimpleNamespace(is_root=True, size=1, rank=0), path, parallel=False)
attrs = {"param_names": ["x", "y"], "lower": [-2.0, -2.0], "upper": [2.0, 2.0], "model": "",
         "objective_function": "testobj:quadratic", "search": "random", "local": "none"}
store.create(kind="sweep", config_text="[objective]\nfunction = 'testobj:quadratic'\n",
             config_hash="h", seed=0, tables={"tasks": TableSpec(sweep_dtype(2), n, attrs)},
             attrs={"config_path": "live.toml"})

def rows(ids):
    r = schema.empty_rows(sweep_dtype(2), ids)
    x = np.random.default_rng(len(ids)).uniform(-2, 2, size=(len(ids), 2))
    r["x0"] = r["x"] = x
    r["objective"] = ((x - 0.5) ** 2).sum(axis=1)
    r["status"] = schema.OK
    r["t_start"], r["wall"], r["n_eval"], r["attempts"] = 1000.0 + ids, 0.5, 1, 1
    return r

store.write_rows("tasks", rows(np.arange(0, 12)))
store.flush()
print("written", flush=True)
sys.stdin.readline()
more = rows(np.arange(12, 20))
more["status"][:3] = schema.FAILED
more["objective"][:3] = np.inf
more["message"][:3] = b"ValueError: out of domain"
store.write_rows("tasks", more)
store.flush()
print("written", flush=True)
sys.stdin.readline()
store.close("interrupted")
print("closed", flush=True)
"""


def test_a_file_that_is_still_being_written(tmp_path):
    path = tmp_path / "live.h5"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == "written", writer.stderr.read()
        r = load(path)                               # the writer still holds the file open
        assert r.status == "running" and len(r.table()) == 12
        written = finished_rows(path, "tasks")
        assert r.best["objective"] == written["objective"].min()
        assert r.best["task_id"] == written["task_id"][np.argmin(written["objective"])]
        s = summarize_file(path)
        assert (s["n_ok"], s["n_pending"], s["n_tasks"]) == (12, 18, 30)
        out = export_all(path, tmp_path / "export")
        assert len((tmp_path / "export" / "tasks.csv").read_text().splitlines()) == 1 + 12
        assert json.loads((tmp_path / "export" / "final_results.json").read_text())["status"] \
            == "running" and out
        figures = plot_all(path, tmp_path / "plots", on_note=lambda text: None)
        assert len(figures) == 3 and all(is_png(p) for p in figures)

        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "written"
        assert len(r.table()) == 20                  # tables are read fresh on every call
        assert summarize_file(path)["failures"] == [
            {"message": "ValueError: out of domain", "count": 3,
             "example": "ValueError: out of domain"}]
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "closed"
    finally:
        writer.kill()
        writer.wait()
    assert r.status == "running" and r.reload().status == "interrupted"
    s = summarize_file(path)
    assert (s["status"], s["n_ok"], s["n_failed"], s["n_pending"]) == ("interrupted", 17, 3, 10)


def as_killed_temper(src, dst, rounds_done: int):
    """A copy of a complete temper file in the state a job killed after `rounds_done` rounds
    leaves: later rows pending, samples unwritten, no end-of-run tables, attrs or best."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        rounds = f["rounds"][:]
        rounds[rounds_done:] = schema.empty_rows(rounds.dtype, np.arange(rounds_done, len(rounds)))
        f["rounds"][...] = rounds
        samples = f["samples"][:]
        late = samples["task_id"] >= rounds_done
        samples[late] = schema.empty_rows(samples.dtype, np.flatnonzero(late))
        f["samples"][...] = samples
        for name in ("pairs", "replicas", "slots"):
            f[name][...] = schema.empty_rows(f[name].dtype, np.arange(f[name].shape[0]))
        for attr in ("rounds_done", "log_z_ratio", "temperatures"):
            del f.attrs[attr]
        for attr in list(f["best"].attrs):
            del f["best"].attrs[attr]
        f.attrs["status"] = "running"
    return dst


def test_a_killed_temper_file_reports_from_its_rounds(well_file, tmp_path):
    path = as_killed_temper(well_file, tmp_path / "killed.h5", rounds_done=70)
    r = load(path)
    rounds = finished_rows(path, "rounds")
    assert len(r.table("rounds")) == len(rounds) == 70
    assert len(r.table("pairs")) == 0                     # not written before the end
    assert len(r.table("samples")) == len(finished_rows(path, "samples")) == (70 - 20) // 2
    assert r.best == {"params": {}, "objective": float(rounds["best_energy"].min())}
    s = summarize_file(path)
    t = s["temper"]
    assert t["from_rounds"] and t["rounds_done"] == 70 and len(t["pairs"]) == 2
    after = rounds[rounds["task_id"] >= 20]               # burn_in = 20 in the config
    for k, p in enumerate(t["pairs"]):
        assert p["attempted"] == after["swap_attempted"][:, k].sum()
        assert p["acceptance"] == pytest.approx(after["swap_accepted"][:, k].sum() / p["attempted"])
    assert len(t["round_trips"]) == 3
    export_all(path, tmp_path / "export")
    assert (tmp_path / "export" / "pairs.csv").read_text().splitlines() == [
        "task_id,t_low,t_high,attempted,accepted,acceptance,mean_probability"]
    for figure in (plots_temper.acceptance, plots_temper.round_trips, plots_temper.samples):
        names, notes = one_figure(path, figure, tmp_path / "plots")
        assert len(names) == 1 and notes == []


def test_an_interrupted_hpo_file(hpo_file, tmp_path):
    path = tmp_path / "stopped.h5"
    shutil.copy(hpo_file, path)
    with h5py.File(path, "r+") as f:
        rows = f["trials"][:]
        keep = 10
        rows["status"][keep:] = schema.PENDING
        f["trials"][...] = rows
        for attr in list(f["best"].attrs):
            del f["best"].attrs[attr]
        f.attrs["status"] = "interrupted"
    s = summarize_file(path)
    assert s["status"] == "interrupted" and s["n_tasks"] == 10
    done = rows[:keep][rows["status"][:keep] == schema.OK]
    assert s["best"]["objective"] == done["objective"].min()
    export_all(path, tmp_path / "export")
    assert len(list((tmp_path / "export" / "results").glob("trial_*.json"))) == keep


def make_bad_files(tmp_path, good):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:2000])
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"this is not HDF5\n" * 100)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(10)
    newer = tmp_path / "newer.h5"
    shutil.copy(good, newer)
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = schema.FORMAT_VERSION + 1
    return {"truncated": (truncated, "not a readable HDF5 file"),
            "garbage": (garbage, "not a readable HDF5 file"),
            "foreign": (foreign, "not an hpcopt result file"),
            "newer": (newer, "newer hpcopt"),
            "missing": (tmp_path / "missing.h5", "no such file")}


def test_bad_files_give_a_clear_error(sweep_file, tmp_path, capsys):
    for name, (path, message) in make_bad_files(tmp_path, sweep_file).items():
        for call in (load, summarize_file, lambda p: export_all(p, tmp_path / "x"),
                     lambda p: plot_all(p, tmp_path / "y")):
            with pytest.raises(ResultFileError, match=message):
                call(path)
        assert main(["report", str(path), "--export", str(tmp_path / "z")]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("hpcopt: error: ") and message in err and str(path) in err


def test_damage_found_while_reading_is_a_clear_error(hpo_file, tmp_path, capsys):
    """The file opens but a table's strings cannot be read (global heap signature broken)."""
    raw = hpo_file.read_bytes()
    heaps = [i for i in range(len(raw)) if raw.startswith(b"GCOL", i)]
    assert heaps
    for k, offset in enumerate(heaps):
        damaged = bytearray(raw)
        damaged[offset:offset + 4] = b"XXXX"
        path = tmp_path / f"damaged{k}.h5"
        path.write_bytes(bytes(damaged))
        for call in (load, summarize_file, lambda p: export_all(p, tmp_path / "x"),
                     lambda p: plot_all(p, tmp_path / "y")):
            with pytest.raises(ResultFileError, match="it may be corrupted"):
                call(path)
        assert main(["report", str(path), "--json"]) == 2
        assert "global heap" in capsys.readouterr().err
