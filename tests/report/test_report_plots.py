"""`--plots DIR`: the figures of every campaign kind are written as PNG files; figures
that cannot be drawn are skipped with a note, never an error."""

import shutil
from types import SimpleNamespace

import h5py
import numpy as np
from report_helpers import is_png, one_figure

from hpcopt.report import plot_all, plots_hpo, plots_sweep
from hpcopt.report.figures import PlotContext
from hpcopt.report.plots_sweep import best_so_far
from hpcopt.store import schema
from hpcopt.store.reader import open_result


def plot(path, out_dir):
    notes = []
    written = plot_all(path, out_dir, on_note=notes.append)
    assert all(is_png(p) and p.parent == out_dir for p in written)
    assert sorted(written) == sorted(out_dir.glob("*.png"))
    return {p.stem for p in written}, notes


def test_objective_sweep_figures(sweep_file, tmp_path):
    names, notes = plot(sweep_file, tmp_path)
    assert names == {"sweep_objective_vs_parameters", "sweep_landscape", "sweep_convergence"}
    assert notes == []          # a plain objective has no data figure, and that is no skip


def test_curve_fit_figure_finds_the_data_from_another_directory(nist_file, tmp_path,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)   # the config path in the file is relative to the job's cwd
    names, notes = one_figure(nist_file, plots_sweep.data_vs_model, tmp_path / "plots")
    assert names == {"sweep_fit_curve"} and notes == []


def test_xpcs_figure_or_a_note_when_its_data_file_is_missing(xpcs_file, tmp_path):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    copy = moved / xpcs_file.name
    shutil.copy(xpcs_file, copy)            # the result file alone, on a laptop without c2.h5
    data = xpcs_file.parent / "c2.h5"
    hidden = data.rename(data.with_suffix(".hidden"))   # not at the config's path either
    try:
        names, notes = one_figure(copy, plots_sweep.data_vs_model, tmp_path / "plots")
        assert names == set()
        assert len(notes) == 1 and "c2.h5 not found" in notes[0] and "data vs model" in notes[0]
        # copied along with the result file: found next to it (measured, fitted, residual c2)
        shutil.copy(hidden, moved / "c2.h5")
        names, notes = one_figure(copy, plots_sweep.data_vs_model, tmp_path / "plots")
        assert names == {"sweep_fit_c2"} and notes == []
    finally:
        hidden.rename(data)


def test_temper_figures(ising_file, well_file, tmp_path):
    ising, notes = plot(ising_file, tmp_path / "ising")
    assert ising == {"temper_traces", "temper_acceptance", "temper_round_trips",
                     "temper_histograms"} and notes == []
    well, notes = plot(well_file, tmp_path / "well")
    assert well == {"temper_traces", "temper_acceptance", "temper_round_trips",
                    "temper_posterior"} and notes == []


def test_hpo_figures(hpo_file, tmp_path):
    names, notes = plot(hpo_file, tmp_path)
    assert names == {"hpo_history", "hpo_importances", "hpo_parallel_coordinates",
                     "hpo_slices", "hpo_intermediate_values"} and notes == []


def test_hpo_figures_that_cannot_be_drawn_are_noted(hpo_fails_file, hpo_file, tmp_path):
    names, notes = one_figure(hpo_fails_file, plots_hpo.intermediate_values, tmp_path / "a")
    assert names == set() and notes[0].startswith("intermediate values skipped")
    names, _ = one_figure(hpo_fails_file, plots_hpo.history, tmp_path / "a")
    assert names == {"hpo_history"}          # failed trials marked, no error
    copy = tmp_path / "few.h5"
    shutil.copy(hpo_file, copy)
    with h5py.File(copy, "r+") as f:           # keep 3 complete trials
        rows = f["trials"][:]
        done = np.flatnonzero(rows["status"] == schema.OK)
        rows["status"][done[3:]] = schema.PENDING
        f["trials"][...] = rows
    names, notes = one_figure(copy, plots_hpo.importances, tmp_path / "b")
    assert names == set() and "importances skipped" in notes[0] and "have 3" in notes[0]


def test_influence_ranks_the_parameter_that_matters_first():
    x, y = np.meshgrid(np.linspace(-1, 1, 7), np.linspace(0, 5, 6), indexing="ij")
    rows = np.zeros(x.size, dtype=[("x0", "f8", (3,)), ("objective", "f8")])
    rows["x0"] = np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])
    rows["objective"] = x.ravel() ** 2 + 0.01 * y.ravel()
    data = SimpleNamespace(rows=rows, free=[0, 1], lower=np.array([-1.0, 0.0, 0.0]),
                           upper=np.array([1.0, 5.0, 0.0]), log_scale=[False, False, False])
    scores = plots_sweep.influence(data)
    assert scores[0] > 0.5 > scores[1] > 0.0
    assert plots_sweep.average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1, 3.5, 2]


def test_best_so_far_follows_completion_order():
    rows = np.zeros(4, dtype=[("status", "i1"), ("t_start", "f8"), ("wall", "f8"),
                              ("objective", "f8")])
    rows["status"] = [schema.OK, schema.OK, schema.FAILED, schema.OK]
    rows["t_start"] = [0.0, 0.0, 0.0, 5.0]
    rows["wall"] = [9.0, 1.0, 2.0, 1.0]          # completion order: 1, 2, 3, 0
    rows["objective"] = [0.5, 3.0, np.nan, 2.0]
    done, elapsed, best = best_so_far(rows)
    assert done.tolist() == [1, 2, 3, 4]
    assert elapsed.tolist() == [1.0, 2.0, 6.0, 9.0]
    assert best.tolist() == [3.0, 3.0, 2.0, 0.5]



def test_importance_study_is_rebuilt_from_the_space_or_from_the_values(hpo_file, monkeypatch):
    with open_result(hpo_file) as f:
        ctx = PlotContext(f, hpo_file, hpo_file.parent, print)
        from_space = plots_hpo.Trials(ctx)
        monkeypatch.setattr(plots_hpo, "_space", lambda text: None)   # config not parsable
        from_values = plots_hpo.Trials(ctx)
    assert from_space.space is not None and from_values.space is None
    complete = int(from_space.complete.sum())
    for t in (from_space, from_values):
        study = plots_hpo.rebuilt_study(t)
        assert len(study.trials) == complete
        best = study.best_trial
        assert best.value == t.value[t.complete].min()
        assert set(best.params) == {"x", "lr", "n", "layers"}
    dist = plots_hpo.rebuilt_study(from_space).best_trial.distributions
    assert dist["lr"].log and dist["n"].step == 1                  # the configured space
    inferred = plots_hpo.rebuilt_study(from_values).best_trial.distributions
    assert sorted(inferred["layers"].choices) == ["[128, 64, 32]", "[64, 32]"]
