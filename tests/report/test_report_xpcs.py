"""XPCS figures of `report --plots` (two-time maps, g2 cuts, parameter table) and the report's
warning for result files fitted with the first xpcs:homodyne convention."""

import json
import shutil

import h5py
import numpy as np
import pytest
from report_helpers import is_png, one_figure

from hpcopt.models.xpcs import ATTR_CONVENTION, simulate
from hpcopt.report import plot_all, plots_xpcs
from hpcopt.report.summary import contract_json, format_text, summarize_file


def test_an_xpcs_sweep_draws_maps_cuts_and_the_parameter_table(xpcs_file, tmp_path):
    notes = []
    written = plot_all(xpcs_file, tmp_path, on_note=notes.append)
    names = {p.stem for p in written}
    assert {"sweep_fit_c2", "sweep_fit_g2", "sweep_fit_parameters"} <= names and notes == []
    assert all(is_png(p) for p in written)


def test_the_figures_skip_with_one_note_when_the_data_file_is_missing(xpcs_file, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    copy = alone / xpcs_file.name
    shutil.copy(xpcs_file, copy)
    data = xpcs_file.parent / "c2.h5"
    hidden = data.rename(data.with_suffix(".gone"))
    try:
        notes = []
        written = plot_all(copy, tmp_path / "plots", on_note=notes.append)
        assert not {p.stem for p in written} & {"sweep_fit_c2", "sweep_fit_g2",
                                                "sweep_fit_parameters"}
        assert len(notes) == 1 and "c2.h5 not found" in notes[0]
    finally:
        hidden.rename(data)


def test_many_angles_are_split_over_several_files(xpcs_file, tmp_path):
    big = tmp_path / "big"
    shutil.copytree(xpcs_file.parent, big)
    from hpcopt.models.xpcs import save_xpcs_h5
    save_xpcs_h5(big / "c2.h5", simulate("homodyne", n=12, phi=tuple(range(0, 180, 20)), seed=1))
    with h5py.File(big / xpcs_file.name, "r+") as f:      # the copied config, next to the data
        f.attrs["config_path"] = str(big / "xpcs.toml")
    names, notes = one_figure(big / xpcs_file.name, plots_xpcs.c2_maps, tmp_path / "a")
    assert names == {"sweep_fit_c2_1", "sweep_fit_c2_2", "sweep_fit_c2_3"} and notes == []
    names, _ = one_figure(big / xpcs_file.name, plots_xpcs.g2_cuts, tmp_path / "b")
    assert names == {"sweep_fit_g2_1", "sweep_fit_g2_2"}


@pytest.mark.parametrize("pairs", ["both", "once"])
def test_g2_cuts_are_the_means_along_the_diagonals(pairs):
    rng = np.random.default_rng(0)
    c2 = rng.normal(size=(7, 7))
    if pairs == "once":
        c2 = np.triu(c2) + np.triu(c2, 1).T
    got = plots_xpcs.diagonal_means(c2, pairs)
    for k in range(1, 7):
        vals = [c2[i, i + k] for i in range(7 - k)]
        if pairs == "both":
            vals += [c2[i + k, i] for i in range(7 - k)]
        assert got[k - 1] == pytest.approx(np.mean(vals), rel=1e-14)
    sigma = np.full((7, 7), 0.2)
    err = plots_xpcs.diagonal_errors(c2, sigma, pairs)
    count = np.array([(7 - k) * (1 if pairs == "once" else 2) for k in range(1, 7)])
    np.testing.assert_allclose(err, 0.2 / np.sqrt(count), rtol=1e-14)


def test_the_parameter_table_lists_values_errors_and_units(xpcs_file, tmp_path):
    from hpcopt.report.figures import PlotContext
    from hpcopt.report.loaded import open_loaded
    with open_loaded(xpcs_file) as r:
        f = r.f
        ctx = PlotContext(f, xpcs_file, tmp_path, lambda text: None, loaded=r)
        fit = plots_xpcs.xpcs_fit(ctx, "test")
        rows = plots_xpcs.parameter_rows(fit)
        best = json.loads(f["best"].attrs["params"])
    by_name = {r[0]: r for r in rows}
    assert by_name["D0"][1] == f"{best['D0']:.6g}" and by_name["D0"][3] == "Å² s^-(1+alpha)"
    assert by_name["gamma_dot_offset"][2] == "(fixed)"         # held fixed in the config
    assert by_name["phi0"][3] == "deg"
    assert {"contrast (phi = 0 deg)", "offset (phi = 90 deg)"} <= set(by_name)


def test_report_warns_on_files_fitted_with_the_first_convention(xpcs_file, tmp_path):
    summary = summarize_file(xpcs_file)
    assert summary["warnings"] == []                      # fitted now: convention 2
    with h5py.File(xpcs_file, "r") as f:
        assert f.attrs[ATTR_CONVENTION] == 2 and f.attrs["xpcs_scaling"] == "individual"
    old = tmp_path / "old.h5"
    shutil.copy(xpcs_file, old)
    with h5py.File(old, "r+") as f:                       # as files written before the fix
        for key in (ATTR_CONVENTION, "xpcs_mode", "xpcs_scaling"):
            del f.attrs[key]
    summary = summarize_file(old)
    assert len(summary["warnings"]) == 1 and "divide them by pi" in summary["warnings"][0]
    assert "  warning: fitted with the first xpcs:homodyne convention" in format_text(summary)
    assert contract_json(summary)["warnings"] == summary["warnings"]
