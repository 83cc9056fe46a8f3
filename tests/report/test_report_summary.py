"""`hpcopt report FILE [--json]`: the text summary of every kind and the DESIGN.md JSON."""

import json

import numpy as np
import pytest
from report_helpers import finished_rows

from hpctest import run
from hpcopt.cli import main
from hpcopt.report.summary import failure_groups
from hpcopt.store import schema


def report(capsys, *args):
    assert main(["report", *map(str, args)]) == 0
    out = capsys.readouterr().out
    return out


def strict(text):
    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")
    return json.loads(text, parse_constant=refuse)


def test_json_of_the_real_command_is_the_design_contract(sweep_file):
    proc = run(["report", sweep_file, "--json"], check=True)
    out = strict(proc.stdout)
    rows = finished_rows(sweep_file, "tasks")
    ok = rows["status"] == schema.OK
    assert out["kind"] == "sweep" and out["status"] == "complete"
    assert out["n_tasks"] == 30 and out["n_ok"] == ok.sum()
    assert out["n_failed"] == (rows["status"] == schema.FAILED).sum() > 0
    assert out["best"]["objective"] == rows["objective"][ok].min()
    assert set(out["best"]["params"]) == {"x", "y"}
    assert out["best"]["chi2_reduced"] is None         # NaN for a plain objective: null
    assert [t["objective"] for t in out["top"]] == sorted(rows["objective"][ok])[:10]


@pytest.mark.parametrize("fixture", ["nist_file", "ising_file", "hpo_file", "hpo_fails_file"])
def test_json_of_every_kind_is_strict(request, fixture, capsys):
    path = request.getfixturevalue(fixture)
    out = strict(report(capsys, path, "--json"))
    assert {"kind", "status", "n_tasks", "n_ok", "n_failed", "best"} <= set(out)
    assert isinstance(out["best"]["objective"], float) and isinstance(out["best"]["params"], dict)


def test_sweep_text_has_best_with_uncertainties_top_k_and_failures(sweep_file, nist_file,
                                                                   capsys):
    text = report(capsys, nist_file, "--top", "3")
    assert "nist:Misra1a" in text and "reduced chi2" in text
    assert "b1 = " in text and "+/-" in text and "top 3:" in text
    assert len([ln for ln in text.splitlines() if ln.startswith("    ") and ln.split()[0].isdigit()
                ]) == 3
    text = report(capsys, sweep_file)
    # testobj:failing raises "x = -2.000 is out of the model's domain" for x < -1 and gives
    # NaN/inf (not finite) for y < -1 or y > 1.5: one group each, not one per x value
    x0 = finished_rows(sweep_file, "tasks")["x0"]
    raised = x0[:, 0] < -1.0
    nonfinite = ~raised & ((x0[:, 1] < -1.0) | (x0[:, 1] > 1.5))
    assert len(set(x0[raised, 0])) > 1 and nonfinite.any()
    assert "failures by error:" in text
    lines = [ln.strip() for ln in text.splitlines()]
    domain = [ln for ln in lines if "out of the model's domain" in ln]
    assert len(domain) == 1 and domain[0].startswith(f"{raised.sum()} x ValueError: x = # is out")
    assert any(ln.startswith(f"{nonfinite.sum()} x ") and "not finite" in ln for ln in lines)


def test_failure_groups_mask_numbers_and_keep_an_example(tmp_path):
    import h5py
    rows = np.zeros(5, dtype=[("status", "i1"), ("message", "S200")])
    rows["status"] = [schema.FAILED, schema.FAILED, schema.TIMEOUT, schema.OK, schema.FAILED]
    rows["message"] = [b"diverged at x = 1.5e3", b"diverged at x = -2", b"",
                       b"fine", b"Traceback line 1\n  File 'a.py', line 3"]
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["t"] = rows
        groups = failure_groups(f["t"])
    assert groups == [
        {"message": "diverged at x = #", "count": 2, "example": "diverged at x = 1.5e3"},
        {"message": "Traceback line #", "count": 1, "example": "Traceback line 1"},
        {"message": "timed out", "count": 1, "example": "timed out"}]


def test_temper_text_has_acceptance_round_trips_and_log_z(ising_file, capsys):
    text = report(capsys, ising_file)
    assert "temper campaign, complete" in text and "lowest energy: " in text
    assert "neighbour swap acceptance:" in text and text.count(" <-> ") == 3
    assert "round trips T_min -> T_max -> T_min" in text
    assert "log Z(T_min) - log Z(T_max)" in text
    out = strict(report(capsys, ising_file, "--json"))
    assert out["best"]["objective"] == -32.0           # a 4x4 Ising ground state
    assert len(out["temper"]["pairs"]) == 3 and out["temper"]["n_samples"] > 0


def test_hpo_text_has_pruned_counts_and_the_study(hpo_file, capsys):
    rows = finished_rows(hpo_file, "trials")
    pruned = int((rows["status"] == schema.PRUNED).sum())
    text = report(capsys, hpo_file)
    assert f"{pruned} pruned" in text and pruned > 0
    assert "study 'hpo' in /" in text and ".journal" in text and "pruner median" in text
    assert "layers" in text and "[64, 32]" in text or "[128, 64, 32]" in text
    out = strict(report(capsys, hpo_file, "--json"))
    assert out["n_pruned"] == pruned and out["hpo"]["study_name"] == "hpo"
    assert out["n_tasks"] == len(rows) and out["hpo"]["n_trials_budget"] == 16


def test_json_lists_exported_files_and_figures(sweep_file, tmp_path, capsys):
    out = strict(report(capsys, sweep_file, "--json", "--export", tmp_path / "e",
                        "--plots", tmp_path / "p"))
    assert sorted(out["exported"]) == sorted(str(p) for p in (tmp_path / "e").iterdir())
    assert sorted(out["plots"]) == sorted(str(p) for p in (tmp_path / "p").glob("*.png"))
    text = report(capsys, sweep_file, "--export", tmp_path / "e2")
    assert "exported 3 files to" in text and str(tmp_path / "e2" / "tasks.csv") in text


WORDS_MODULE = '''
import time


def line(x, p):
    """c does not enter the model: the data cannot determine it."""
    return p[0] * x + p[1] + 0.0 * p[2]


def mixed(p):
    if p["x"] > 0.5:
        time.sleep(30)                      # beyond [run] task_timeout: a timeout
    if p["x"] < -0.5:
        raise ValueError("out of the domain")
    return p["x"] ** 2 + p["y"] ** 2
'''
WORDS_FIT = """
[model]
name = "wordsmod:line"
[data]
path = "line.csv"
[parameters]
a = { min = -5.0, max = 5.0, points = 2 }
b = { min = -5.0, max = 5.0, points = 2 }
c = { min = -1.0, max = 1.0, points = 1 }
[local]
method = "least_squares"
[output]
path = "fit.h5"
"""
WORDS_TIMEOUTS = """
[objective]
function = "wordsmod:mixed"
[parameters]
x = { min = -1.0, max = 1.0, points = 5 }
y = { min = -1.0, max = 1.0, points = 2 }
[local]
method = "none"
[run]
task_timeout = 1.0
[output]
path = "mixed.h5"
"""


def test_run_summary_and_report_use_the_same_words(tmp_path):
    """Issue 15.6: the run said '(not determined by the data)' where the report said
    '+/- nan', and counted timeouts as failures where the report counted them apart."""
    (tmp_path / "wordsmod.py").write_text(WORDS_MODULE)
    x = np.linspace(0.0, 4.0, 12)
    y = 1.5 * x - 0.5 + 0.01 * np.sin(7 * x)
    np.savetxt(tmp_path / "line.csv", np.column_stack([x, y]), delimiter=",",
               header="x,y", comments="")
    (tmp_path / "fit.toml").write_text(WORDS_FIT)
    (tmp_path / "mixed.toml").write_text(WORDS_TIMEOUTS)
    fit = run(["sweep", tmp_path / "fit.toml"], check=True).stdout
    fit_report = run(["report", tmp_path / "fit.h5"], check=True).stdout
    for text in (fit, fit_report):
        assert "c = " in text and "(not determined by the data)" in text, text
        assert "nan" not in text.split("best")[1].split("top")[0], text
        assert "+/-" in text                                  # a and b are determined
    mixed = run(["sweep", tmp_path / "mixed.toml"], check=True).stdout
    mixed_report = run(["report", tmp_path / "mixed.h5"], check=True).stdout
    words = "6 ok, 2 failed, 2 timed out, 0 pending"
    assert f"(complete; {words} of 10 tasks;" in mixed, mixed
    assert f"starts: 10 ({words})" in mixed_report, mixed_report
