"""Issue 15.5, the sweep figures: objective values that differ only by rounding are said
to be one minimum (not coloured), colorbars and axes carry plain labelled ticks (no offset
text), refined points are drawn beside the start points, titles fit their figure."""

import h5py
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection, QuadMesh

from hpctest import joined_rows, run, write_config
from hpcopt.report import plots_sweep
from hpcopt.report.figures import PlainFormatter, PlotContext, same_value
from hpcopt.store.reader import open_result

MODULE = '''
def bowl(p):
    """Minimum 3 at (0.5, -0.25): every refined start reaches 3 up to about 1e-10 (the
    optimizer's tolerance; a kink, so the offset does not square away)."""
    return 3.0 + abs(p["x"] - 0.5) + 2.0 * abs(p["y"] + 0.25)


def tilted(p):
    """1000.000 to 1000.004 over the box: a spread a default axis shows as '+1e3'."""
    return 1000.0 + 0.001 * (p["x"] + p["y"] + 2.0)


def steep(p):
    """1 to 1e6 over the box: a log colour scale."""
    return 10.0 ** (3.0 * (p["x"] + 1.0))
'''
LONG = "a-rather-long-result-file-name-from-a-parameter-scan-at-beamline-8-id.h5"


def sweep(tmp_path, name, function, local="none", search='method = "grid"'):
    (tmp_path / "plotmod.py").write_text(MODULE)
    cfg = write_config(tmp_path / f"{name}.toml", f"""
[objective]
function = "plotmod:{function}"
[parameters]
x = {{ min = -1.0, max = 1.0, points = 5 }}
y = {{ min = -1.0, max = 1.0, points = 5 }}
[search]
{search}
[local]
method = "{local}"
[output]
path = "{name}"
""")
    run(["sweep", cfg], check=True)
    return tmp_path / name


class Keep(PlotContext):
    """Keeps the figures instead of writing PNGs."""

    def save(self, fig, name):
        self.cache.setdefault("figures", {})[name] = fig


def figure(path, draw):
    notes = []
    with open_result(path) as f:
        ctx = Keep(f, path, path.parent, notes.append)
        draw(ctx)
    assert not notes, notes
    (fig,) = ctx.cache["figures"].values()
    FigureCanvasAgg(fig).draw()
    return fig


def ticks(axis) -> list[tuple[float, str]]:
    """(location, label) of the major ticks inside the view."""
    lo, hi = sorted(axis.get_view_interval())
    out = []
    for t in axis.get_major_ticks():
        label = t.label1 if t.label1.get_visible() else t.label2   # a colorbar's: the right
        if lo <= t.get_loc() <= hi and label.get_visible():
            out.append((t.get_loc(), label.get_text()))
    return out


def tick_labels(axis) -> list[str]:
    return [text for _, text in ticks(axis) if text]


def assert_plain_ticks(axis):
    """Labelled ticks that say their value, no offset or multiplier text."""
    shown = ticks(axis)
    labels = [text for _, text in shown]
    assert len(labels) >= 2 and all(labels) and len(set(labels)) == len(labels), labels
    assert axis.get_offset_text().get_text() == "", axis.get_offset_text().get_text()
    if axis.get_scale() == "linear":
        step = np.diff([loc for loc, _ in shown]).min()
        for loc, text in shown:
            assert abs(float(text) - loc) <= 0.01 * step, (text, loc)


def assert_inside(fig, text):
    box = text.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= -1 and box.x1 <= fig.bbox.x1 + 1, (text.get_text(), box, fig.bbox)


@pytest.fixture(scope="module")
def converged(tmp_path_factory):
    return sweep(tmp_path_factory.mktemp("same"), "same.h5", "bowl", local="nelder-mead")


def test_the_fixture_reaches_one_minimum_up_to_rounding(converged):
    with h5py.File(converged, "r") as f:
        y = f["tasks"]["objective"]
    assert y.max() > y.min() and same_value(y)            # noise, not one exact value


def test_one_minimum_is_said_not_coloured(converged):
    """Before: the landscape coloured rounding noise (about 1e-15 relative) with a colorbar
    spanning it."""
    fig = figure(converged, plots_sweep.landscape)
    assert len(fig.axes) == 1                                   # no colorbar
    ax = fig.axes[0]
    assert not [c for c in ax.collections if isinstance(c, QuadMesh)]
    title = fig._suptitle.get_text().replace("\n", " ")
    assert "all 25 starts reached the same minimum, objective = 3" in title


def test_one_minimum_is_a_level_line_not_noise_filling_the_axis(converged):
    fig = figure(converged, plots_sweep.objective_vs_parameters)
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        assert lo < 3.0 < hi and hi - lo > 0.01                 # not the 1e-15 spread
        assert_plain_ticks(ax.yaxis)
    assert "reached the same minimum" in fig._suptitle.get_text().replace("\n", " ")
    conv = figure(converged, plots_sweep.convergence)
    for ax in conv.axes:
        assert ax.get_ylim()[1] - ax.get_ylim()[0] > 0.01
        assert_plain_ticks(ax.yaxis)


def test_colorbar_ticks_are_labelled_without_offset(tmp_path):
    """Before: 1000.000 ... 1000.004 had colorbar ticks '0.000 ... 0.004' and '+1e3' at the
    top of the bar."""
    path = sweep(tmp_path, "tilted.h5", "tilted")
    fig = figure(path, plots_sweep.landscape)
    ax, bar = fig.axes
    assert [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert_plain_ticks(bar.yaxis)
    assert all(t.startswith("1000.00") for t in tick_labels(bar.yaxis))
    for axis in (ax.xaxis, ax.yaxis):
        assert_plain_ticks(axis)


def test_a_log_colour_scale_labels_values(tmp_path):
    path = sweep(tmp_path, "steep.h5", "steep")
    fig = figure(path, plots_sweep.landscape)
    bar = fig.axes[1]
    assert bar.get_yscale() == "log"
    assert len(tick_labels(bar.yaxis)) >= 3                # decades, labelled as values
    assert "log10" not in bar.get_ylabel()


def test_refined_points_are_drawn_beside_the_starts(converged):
    """Before: the landscape showed starts only, and in the objective figure the refined
    points lay under a filled star."""
    with h5py.File(converged, "r") as f:
        rows = joined_rows(f, "tasks")
    fig = figure(converged, plots_sweep.landscape)
    ax = fig.axes[0]
    by_label = {c.get_label(): c for c in ax.collections if isinstance(c, PathCollection)}
    refined, best = by_label["refined point"], by_label["best fit"]
    np.testing.assert_allclose(np.sort(refined.get_offsets()[:, 0]), np.sort(rows["x"][:, 0]))
    assert refined.get_zorder() > best.get_zorder()
    assert "start point" in by_label
    fig = figure(converged, plots_sweep.objective_vs_parameters)
    ax = fig.axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    start, refined, star = by_label["start point"], by_label["refined point"], by_label["best"]
    assert len(refined.get_offsets()) == len(start.get_offsets()) == len(rows)
    assert refined.get_zorder() > start.get_zorder()
    assert star.get_facecolor().size == 0 or star.get_facecolor()[0][3] == 0   # hollow
    assert start.get_facecolor().size == 0 or start.get_facecolor()[0][3] == 0  # hollow
    assert refined.get_facecolor()[0][3] == 1                                    # filled


@pytest.mark.parametrize("draw", [plots_sweep.objective_vs_parameters, plots_sweep.landscape,
                                  plots_sweep.convergence])
def test_titles_fit_their_figure(tmp_path, draw):
    path = sweep(tmp_path, LONG, "tilted", local="powell")
    fig = figure(path, draw)
    assert_inside(fig, fig._suptitle)
    assert LONG in fig._suptitle.get_text().replace("\n", "")
    for ax in fig.axes:
        if ax.get_title():
            assert_inside(fig, ax.title)


@pytest.mark.parametrize("ticks, labels", [
    ([200, 400, 600], ["200", "400", "600"]),
    ([1000.001, 1000.002, 1000.003], ["1000.001", "1000.002", "1000.003"]),
    ([1e-5, 2e-5], ["1e-5", "2e-5"]),
    ([-1.0, -0.5, 5.551115123125783e-17, 0.5], ["-1.0", "-0.5", "0", "0.5"]),
    ([0.0, 2.5e-7, 5e-7], ["0", "2.5e-7", "5.0e-7"]),
])
def test_plain_tick_labels(ticks, labels):
    assert PlainFormatter().format_ticks(ticks) == labels
