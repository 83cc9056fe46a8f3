"""What a finished tempering campaign reports: both log Z estimates (run summary, result file,
`hpcopt report` text and JSON) and figures that show discrete levels and whole titles."""

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from hpctest import run, write_config

from hpcopt.report import plots_temper
from hpcopt.report.plots import PlotContext
from hpcopt.report.tables import reading

LONG_NAME = "a-rather-long-result-file-name-for-a-four-by-four-ising-lattice.h5"

ISING = f"""
[temper]
replicas = 6
t_min = 1.0
t_max = 20.0
exchange_interval = 20
rounds = 300
[problem]
name = "ising"
L = 4
[run]
seed = 7
[output]
path = "{LONG_NAME}"
"""


@pytest.fixture(scope="module")
def ising_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ising")
    proc = run(["temper", write_config(d / "pt.toml", ISING)], check=True)
    return d / LONG_NAME, proc.stdout


def test_both_log_z_estimates_are_reported_by_name(ising_run):
    path, stdout = ising_run
    with h5py.File(path, "r") as f:
        attrs = {k: float(f.attrs[k]) for k in ("log_z_stepping_stone", "log_z_stepping_stone_error",
                                                "log_z_ratio", "log_z_ratio_error")}
    assert all(math.isfinite(v) for v in attrs.values()) and attrs["log_z_ratio_error"] > 0
    assert abs(attrs["log_z_stepping_stone"] - 21.568) < 3 * attrs["log_z_stepping_stone_error"]
    stones = f"{attrs['log_z_stepping_stone']:.6g} +- {attrs['log_z_stepping_stone_error']:.2g} " \
             "by stepping stones"
    trapezoid = f"{attrs['log_z_ratio']:.6g} +- {attrs['log_z_ratio_error']:.2g} by " \
                "thermodynamic integration"
    assert "log Z(T_min) - log Z(T_max):" in stdout and stones in stdout and trapezoid in stdout
    text = run(["report", path], check=True).stdout
    assert stones in text and trapezoid in text
    out = json.loads(run(["report", path, "--json"], check=True).stdout)["temper"]
    assert out["log_z"] == {
        "stepping_stone": {"value": attrs["log_z_stepping_stone"],
                           "error": attrs["log_z_stepping_stone_error"]},
        "thermodynamic_integration": {"value": attrs["log_z_ratio"],
                                      "error": attrs["log_z_ratio_error"]}}
    assert out["log_z_ratio"] == attrs["log_z_ratio"]


class Keep(PlotContext):
    """A plot context that keeps the figures instead of writing PNGs."""

    def save(self, fig, name):
        self.cache.setdefault("figures", {})[name] = fig


def figures_of(path: Path, figure) -> dict:
    with reading(path) as f:
        ctx = Keep(f, path, path.parent, note=lambda text: None)
        figure(ctx)
        return ctx.cache["figures"]


def assert_title_inside(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box = fig._suptitle.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1, (box, fig.bbox)


def test_ising_histograms_have_one_bar_per_level_inside_the_lattice_range(ising_run):
    """Issue 15.5: with only M = -16 and +16 sampled the bars were 25.6 wide (spacing 32 times
    0.8) and reached past +-16; a bar now sits on each level the 4x4 lattice allows."""
    path, _ = ising_run
    fig = figures_of(path, plots_temper.samples)["temper_histograms"]
    assert_title_inside(fig)
    energy_ax, magnet_ax = fig.axes[:2]
    with h5py.File(path, "r") as f:
        samples = f["samples"][:]
    for ax, values, step, limit in ((energy_ax, samples["energy"], 4, 32),
                                    (magnet_ax, samples["magnetisation"], 2, 16)):
        bars = ax.patches
        centers = np.array([b.get_x() + b.get_width() / 2 for b in bars])
        widths = np.array([b.get_width() for b in bars])
        levels, counts = np.unique(values, return_counts=True)
        np.testing.assert_allclose(np.sort(centers), levels)
        assert np.all(widths == pytest.approx(0.8 * step))
        assert np.all(np.abs(centers) + widths / 2 <= limit + 0.4 * step)
        heights = np.array([b.get_height() for b in bars])[np.argsort(centers)]
        np.testing.assert_allclose(heights, counts / counts.sum())
    assert set(samples["magnetisation"]) >= {-16.0, 16.0}      # both ordered states, T = 1


def test_big_lattices_merge_levels_evenly():
    from hpcopt.kernels.ising import levels
    assert levels(16)["magnetisation"] == (-256, 256, 2) and levels(16)["energy"] == (-512, 512, 4)
    assert levels(2)["energy"] == (-8, 8, 8)


@pytest.mark.parametrize("figure, name", [(plots_temper.traces, "temper_traces"),
                                          (plots_temper.round_trips, "temper_round_trips")])
def test_figure_titles_fit_their_figure(ising_run, figure, name):
    path, _ = ising_run
    assert_title_inside(figures_of(path, figure)[name])


def test_a_narrow_corner_plot_keeps_its_whole_title(tmp_path):
    """Issue 15.5: the one-parameter corner plot (2.6 in wide) cut its title at both ends."""
    text = f"""
[temper]
replicas = 3
t_max = 4.0
rounds = 30
exchange_interval = 5
[problem]
name = "gaussian-mixture"
dim = 1
[output]
path = "{LONG_NAME}"
"""
    run(["temper", write_config(tmp_path / "pt.toml", text)], check=True)
    fig = figures_of(tmp_path / LONG_NAME, plots_temper.samples)["temper_posterior"]
    assert fig.get_figwidth() <= 4.0
    assert_title_inside(fig)
    assert LONG_NAME in fig._suptitle.get_text().replace("\n", "")
