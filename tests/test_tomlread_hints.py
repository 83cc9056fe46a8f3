"""Issue 15.1: an unknown key is named with the closest known one ("did you mean"), also
when a required key is missing because it was misspelt."""

import pytest

from hpcopt.errors import ConfigError
from hpcopt.sweep.starts import param_spec_from_table
from hpcopt.tomlread import Table


def test_a_misspelt_required_key_is_named_not_only_the_missing_one():
    """Before: 'parameters.D0.max: missing required key', silent about 'maxx'."""
    with pytest.raises(ConfigError) as err:
        param_spec_from_table("D0", {"min": 1.0, "maxx": 2.0}, source="fit.toml")
    assert err.value.key == "parameters.D0.maxx"
    assert "unknown key: maxx" in str(err.value) and "did you mean 'max'?" in str(err.value)
    assert str(err.value).startswith("fit.toml: parameters.D0.maxx: ")


def test_a_missing_key_without_a_lookalike_stays_a_missing_key():
    with pytest.raises(ConfigError) as err:
        param_spec_from_table("D0", {"min": 1.0, "points": 3}, source="fit.toml")
    assert err.value.key == "parameters.D0.max" and err.value.problem == "missing required key"


def test_finish_suggests_the_closest_key_read():
    t = Table({"method": "powell", "maxiterr": 5, "colour": 1}, "local", "c.toml")
    t.str("method")
    t.raw("maxiter", None)
    with pytest.raises(ConfigError) as err:
        t.finish()
    text = str(err.value)
    assert "unknown keys: colour, maxiterr (did you mean 'maxiter'?)" in text
    assert "colour (did" not in text          # nothing close: named without a guess


def test_finish_names_a_single_unknown_key_as_the_error_key():
    t = Table({"Seed": 1}, "run", "c.toml")
    t.int("seed", 0)
    with pytest.raises(ConfigError) as err:
        t.finish()
    assert err.value.key == "run.Seed" and "did you mean 'seed'?" in str(err.value)


@pytest.mark.parametrize("name, candidates, expected", [
    ("maxx", ["min", "max", "points"], "max"),
    ("MaxIter", ["maxiter", "maxfev"], "maxiter"),
    ("xtoll", ["xtol", "ftol", "gtol"], "xtol"),
    ("banana", ["min", "max"], None),
    ("max", ["max"], None),                    # the name itself is no suggestion
])
def test_closest(name, candidates, expected):
    from hpcopt.tomlread import closest
    assert closest(name, candidates) == expected


def test_an_unknown_table_gets_the_closest_table_name(tmp_path):
    from hpcopt.config import check_tables, open_config_text
    root, _ = open_config_text("[parameterz]\n[run]\n", tmp_path / "c.toml")
    with pytest.raises(ConfigError) as err:
        check_tables(root, ("run", "parameters", "search"), "sweep")
    assert err.value.key == "parameterz"
    assert "unknown table for a sweep config: parameterz (did you mean [parameters]?)" in str(
        err.value)
