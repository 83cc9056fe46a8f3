"""Start designs: grid/log/midpoint/fixed, per-task determinism, rank independence, parsing."""

import itertools

import numpy as np
import pytest

from hpcopt.errors import ConfigError
from hpcopt.sweep.starts import (ParamSpec, StartDesign, param_spec_from_table,
                                 parse_parameter_ranges)


def lin(name, lo, hi, points=1):
    return ParamSpec(name, min=lo, max=hi, points=points)


def log(name, lo, hi, points=1):
    return ParamSpec(name, min=lo, max=hi, points=points, scale="log")


def test_grid_is_the_cartesian_product_last_parameter_fastest():
    d = StartDesign("grid", [lin("a", 0, 1, 3), log("b", 1e-3, 1e-1, 3)])
    assert d.n_tasks == 9 and d.param_names == ("a", "b")
    expected = list(itertools.product([0.0, 0.5, 1.0], [1e-3, 1e-2, 1e-1]))
    np.testing.assert_allclose(d.points(0, 9), expected, rtol=1e-14)
    np.testing.assert_allclose(d.point(4), [0.5, 1e-2], rtol=1e-14)


def test_one_point_is_the_midpoint_geometric_on_log_scale():
    d = StartDesign("grid", [lin("a", 2, 6), log("b", 1e-4, 1e-2)])
    assert d.n_tasks == 1
    np.testing.assert_allclose(d.point(0), [4.0, 1e-3], rtol=1e-14)


def test_fixed_parameters_take_their_value_everywhere():
    d = StartDesign("grid", [lin("a", 0, 1, 2), ParamSpec("c", value=7.5), lin("b", 0, 1, 3)])
    assert d.n_tasks == 6 and d.dim == 2
    pts = d.points(0, 6)
    assert np.all(pts[:, 1] == 7.5)
    assert d.lower[1] == d.upper[1] == 7.5
    for kind in ("random", "sobol", "lhs"):
        pts = StartDesign(kind, [lin("a", 0, 1), ParamSpec("c", value=-1.0)], 8).points(0, 8)
        assert np.all(pts[:, 1] == -1.0)


def test_all_fixed_gives_one_grid_task():
    d = StartDesign("grid", [ParamSpec("a", value=1.0), ParamSpec("b", value=2.0)])
    assert d.n_tasks == 1
    np.testing.assert_array_equal(d.point(0), [1.0, 2.0])


def test_huge_grid_is_never_materialised():
    d = StartDesign("grid", [lin(f"p{i}", 0, 1, 100) for i in range(12)])
    assert d.n_tasks == 100 ** 12  # beyond int64
    last = d.point(d.n_tasks - 1)
    np.testing.assert_array_equal(last, np.ones(12))
    np.testing.assert_allclose(d.point(1), [0.0] * 11 + [1 / 99])
    small = StartDesign("grid", [lin(f"p{i}", 0, 1, 100) for i in range(6)])
    np.testing.assert_allclose(small.point(small.n_tasks - 2), [1.0] * 5 + [98 / 99])


@pytest.mark.parametrize("kind", ["random", "sobol", "lhs"])
def test_samples_stay_in_bounds_log_scale_in_log_space(kind):
    specs = [lin("a", -2, 3), log("b", 1e-6, 1e2)]
    pts = StartDesign(kind, specs, 256, seed=3).points(0, 256)
    assert pts.shape == (256, 2)
    assert np.all((pts[:, 0] >= -2) & (pts[:, 0] <= 3))
    assert np.all((pts[:, 1] >= 1e-6) & (pts[:, 1] <= 1e2))
    # log scale: about half the points lie below the geometric midpoint 1e-2
    frac = np.mean(pts[:, 1] < 1e-2)
    assert 0.4 < frac < 0.6


@pytest.mark.parametrize("kind", ["random", "sobol", "lhs"])
def test_point_i_is_a_pure_function_of_design_and_i(kind):
    specs = [lin("a", 0, 1), log("b", 1, 100), lin("c", -1, 1)]
    full = StartDesign(kind, specs, 50, seed=11).points(0, 50)
    # "ranks": fresh designs asking for their own tasks, in any order, in pieces
    rank_a = StartDesign(kind, specs, 50, seed=11)
    rank_b = StartDesign(kind, specs, 50, seed=11)
    for i in reversed(range(0, 50, 2)):
        np.testing.assert_array_equal(rank_a.point(i), full[i])
    np.testing.assert_array_equal(rank_b.points(17, 33), full[17:33])
    other_seed = StartDesign(kind, specs, 50, seed=12).points(0, 50)
    assert not np.allclose(other_seed, full)


def test_random_starts_do_not_depend_on_the_number_of_tasks():
    specs = [lin("a", 0, 1), lin("b", 0, 1)]
    few = StartDesign("random", specs, 5, seed=4).points(0, 5)
    many = StartDesign("random", specs, 500, seed=4).points(0, 5)
    np.testing.assert_array_equal(few, many)
    assert len(np.unique(few[:, 0])) == 5


def test_design_errors():
    with pytest.raises(ValueError, match="search method"):
        StartDesign("halton", [lin("a", 0, 1)], 4)
    with pytest.raises(ValueError, match="n_samples"):
        StartDesign("sobol", [lin("a", 0, 1)])
    with pytest.raises(IndexError):
        StartDesign("grid", [lin("a", 0, 1, 3)]).point(3)
    with pytest.raises(ConfigError, match="min < max") as info:
        StartDesign("grid", [lin("a", 1, 1)])
    assert info.value.key == "parameters.a"
    with pytest.raises(ConfigError, match="min > 0") as info:
        StartDesign("grid", [log("b", 0, 1)])
    assert info.value.key == "parameters.b.min"


# --- parsing ---------------------------------------------------------------------------------

def test_parse_parameter_ranges_seed_000_example():
    specs = parse_parameter_ranges("D0:1e-12:1e-10:10,alpha:0.5:2.0:5")
    assert [s.name for s in specs] == ["D0", "alpha"]
    assert (specs[0].min, specs[0].max, specs[0].points, specs[0].scale) == (1e-12, 1e-10, 10, "linear")
    assert StartDesign("grid", specs).n_tasks == 50
    assert parse_parameter_ranges(" D0 : 1e-12 : 1e-10 : 3 : log ")[0].scale == "log"


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("D0:1:2", "3 fields"),
    ("D0:a:2:3", "must be numbers"),
    ("D0:1:2:x", "must be an integer"),
    ("D0:2:1:3", "min < max"),
    ("D0:1:2:0", ">= 1"),
    ("D0:0:2:3:log", "min > 0"),
    ("D0:1:2:3:cubic", "'linear' or 'log'"),
    ("D0:1:2:3,D0:1:2:3", "twice"),
    ("2x:1:2:3", "not a parameter name"),
    ("D0:nan:2:3", "finite"),
])
def test_parse_parameter_ranges_errors_name_the_option(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_parameter_ranges(text)
    assert info.value.key == "--parameter-ranges"


def test_param_spec_from_table():
    s = param_spec_from_table("b", {"min": 1e-5, "max": 1e-2, "points": 4, "scale": "log"},
                              source="fit.toml")
    assert (s.min, s.max, s.points, s.scale, s.fixed) == (1e-5, 1e-2, 4, "log", False)
    assert param_spec_from_table("c", {"value": 0}).value == 0.0
    assert param_spec_from_table("d", {"min": 0, "max": 1}).points == 1


@pytest.mark.parametrize("table, key, message", [
    ({"min": 1.0}, "parameters.b.max", "missing"),
    ({"min": 1.0, "max": 2.0, "step": 1}, "parameters.b.step", "unknown key"),
    ({"min": 1.0, "max": 2.0, "points": 0}, "parameters.b.points", ">= 1"),
    ({"min": 1.0, "max": 2.0, "scale": "ln"}, "parameters.b.scale", "'linear', 'log'"),
    ({"min": 2.0, "max": 1.0}, "parameters.b", "min < max"),
    ({"value": 1.0, "min": 0.0}, "parameters.b", "alone"),
    ({"min": "a", "max": 1.0}, "parameters.b.min", "number"),
])
def test_param_spec_from_table_errors(table, key, message):
    with pytest.raises(ConfigError, match=message) as info:
        param_spec_from_table("b", table, source="fit.toml")
    assert info.value.key == key and info.value.source == "fit.toml"
