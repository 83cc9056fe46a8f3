"""`--export DIR`: one CSV per table (finished rows), best_config.json, final_results.json,
results/trial_<n>.json per HPO trial (the layout of the seed's async random search)."""

import csv
import json

import h5py
import numpy as np
import pytest
from report_helpers import finished_rows

from hpcopt.report import export_all
from hpcopt.store import schema


def strict_json(path):
    """Parse refusing NaN/Infinity (strict JSON, as other tools read it)."""
    def refuse(token):
        raise ValueError(f"{path}: non-standard JSON constant {token}")
    return json.loads(path.read_text(), parse_constant=refuse)


def read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def table_names(path):
    with h5py.File(path, "r", locking=False) as f:
        return [n for n, o in f.items() if isinstance(o, h5py.Dataset) and o.dtype.names]


@pytest.mark.parametrize("fixture", ["sweep_file", "nist_file", "ising_file", "well_file",
                                     "hpo_file", "hpo_fails_file"])
def test_every_table_becomes_a_csv_of_its_finished_rows(request, fixture, tmp_path):
    path = request.getfixturevalue(fixture)
    written = export_all(path, tmp_path / "out")
    assert all(p.exists() for p in written)
    for name in table_names(path):
        header, rows = read_csv(tmp_path / "out" / f"{name}.csv")
        raw = finished_rows(path, name)
        assert len(rows) == len(raw) > 0
        assert header[0] == "task_id" and [int(r[0]) for r in rows] == raw["task_id"].tolist()
        # array columns flattened to name_0, name_1, ...
        expected = []
        for col in raw.dtype.names:
            size = int(np.prod(raw.dtype[col].shape))
            expected += [f"{col}_{k}" for k in range(size)] if raw.dtype[col].shape else [col]
        assert header == expected
        for col in ("objective", "energy"):
            if col in header:   # full precision: the CSV round-trips the float64 values
                got = np.array([float(r[header.index(col)]) for r in rows])
                np.testing.assert_array_equal(got, raw[col])


def test_sweep_json_files(sweep_file, nist_file, tmp_path):
    export_all(sweep_file, tmp_path / "s")
    best = strict_json(tmp_path / "s" / "best_config.json")
    final = strict_json(tmp_path / "s" / "final_results.json")
    rows = finished_rows(sweep_file, "tasks")
    ok = rows[rows["status"] == schema.OK]
    assert final["best_config"] == best == {"x": ok["x"][np.argmin(ok["objective"])][0],
                                            "y": ok["x"][np.argmin(ok["objective"])][1]}
    assert final["best_error"] == final["best_value"] == ok["objective"].min()
    assert final["kind"] == "sweep" and final["status"] == "complete"
    assert final["n_tasks"] == len(rows) and final["n_ok"] == len(ok)
    assert final["n_failed"] == int((rows["status"] == schema.FAILED).sum()) > 0
    assert sum(g["count"] for g in final["failures"]) == final["n_failed"]
    assert "[objective]" in final["config"]
    assert not (tmp_path / "s" / "results").exists()        # no per-task files for sweeps
    export_all(nist_file, tmp_path / "n")
    fit = strict_json(tmp_path / "n" / "final_results.json")
    assert set(fit["best_stderr"]) == {"b1", "b2"} and fit["best_chi2_reduced"] > 0


def test_hpo_export_has_the_seed_layout(hpo_file, tmp_path):
    written = export_all(hpo_file, tmp_path)
    rows = finished_rows(hpo_file, "trials")
    files = sorted((tmp_path / "results").glob("trial_*.json"))
    assert len(files) == len(rows) and set(written) >= set(files)
    final = strict_json(tmp_path / "final_results.json")
    # the seed's analysis loop: for i in range(n_trials): results/trial_{i}.json
    assert final["n_trials"] == len(rows)
    trials = [strict_json(tmp_path / "results" / f"trial_{i}.json")
              for i in range(final["n_trials"])]
    by_id = {int(r["task_id"]): r for r in rows}
    for t in trials:
        raw = by_id[t["trial_id"]]
        assert t["config"] == json.loads(raw["params_json"])
        assert t["state"] == raw["state"].decode() and t["state"] in ("complete", "pruned")
        assert t["error"] == t["value"] == pytest.approx(raw["objective"])
        info = t["additional_info"]
        assert info["training_time"] == pytest.approx(raw["duration"]) and info["training_time"] > 0
        assert info["rank"] == raw["rank"] and info["worker"] == raw["worker"].decode()
        assert [s for s, _ in info["intermediate_values"]] == list(range(1, raw["n_steps"] + 1))
    pruned = [t for t in trials if t["state"] == "pruned"]
    complete = [t for t in trials if t["state"] == "complete"]
    assert pruned and complete and final["n_pruned"] == len(pruned)
    best = min(complete, key=lambda t: t["error"])
    assert final["best_config"] == best["config"] == strict_json(tmp_path / "best_config.json")
    assert final["best_error"] == pytest.approx(best["error"])
    assert final["direction"] == "minimize" and final["hpo"]["pruner"] == "median"


def test_failed_trials_export_null_values_and_their_errors(hpo_fails_file, tmp_path):
    export_all(hpo_fails_file, tmp_path)
    trials = [strict_json(p) for p in (tmp_path / "results").glob("trial_*.json")]
    failed = [t for t in trials if t["state"] == "failed"]
    assert failed, "the fixture should have failed trials (x > 2 diverges)"
    for t in failed:
        assert t["error"] is None and "diverged" in t["additional_info"]["error_message"]
        assert t["config"]["x"] > 2.0
    final = strict_json(tmp_path / "final_results.json")
    assert final["n_failed"] == len(failed)
    assert final["failures"][0]["message"] == "RuntimeError: diverged at x = #"


def test_temper_export(ising_file, tmp_path):
    export_all(ising_file, tmp_path)
    final = strict_json(tmp_path / "final_results.json")
    assert final["kind"] == "temper" and final["best_value"] == final["best_error"]
    assert len(final["temper"]["pairs"]) == 3 and final["temper"]["log_z_ratio"] is not None
    spins = strict_json(tmp_path / "best_config.json")["spins"]
    assert np.shape(spins) == (4, 4)
    header, rows = read_csv(tmp_path / "samples.csv")
    assert header[-17:-1] == [f"state_{k}" for k in range(16)]
    assert {r[header.index("state_0")] for r in rows} <= {"1", "-1"}
