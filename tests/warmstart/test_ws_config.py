"""[warmstart] parsing: defaults, values, and errors that name the key and the file."""

import tomllib
from pathlib import Path

import pytest

from hpcopt.errors import ConfigError
from hpcopt.tomlread import Table
from hpcopt.warmstart.config import WarmStartConfig, parse_warmstart


def parse(text: str, base_dir="/cfg"):
    data = tomllib.loads(text)
    return parse_warmstart(Table(data["warmstart"], "warmstart", "fit.toml"), "fit.toml", base_dir)


def test_defaults():
    cfg = parse("[warmstart]\n")
    assert cfg == WarmStartConfig(history=Path("/cfg/history.h5"), source="fit.toml")
    assert cfg.enabled and cfg.record and cfg.design_fraction == 0.5 and cfg.n_starts == 8
    assert cfg.seed is None and cfg.conditions == {}


def test_every_key():
    cfg = parse("""
        [warmstart]
        enabled = true
        history = "runs/history.h5"
        conditions = { temperature = 25, concentration = 0.08 }
        n_starts = 4
        design_fraction = 0.25
        confidence_threshold = 0.1
        min_history = 10
        range_margin = 0.0
        record = false
        trend = "none"
        n_trees = 50
        n_boost = 20
        spread = 2.0
        seed = 9
    """)
    assert cfg.history == Path("/cfg/runs/history.h5")
    assert cfg.conditions == {"temperature": 25.0, "concentration": 0.08}
    assert isinstance(cfg.conditions["temperature"], float)
    assert (cfg.n_starts, cfg.design_fraction, cfg.confidence_threshold, cfg.min_history) == \
        (4, 0.25, 0.1, 10)
    assert (cfg.range_margin, cfg.record, cfg.trend, cfg.n_trees, cfg.n_boost, cfg.spread,
            cfg.seed) == (0.0, False, "none", 50, 20, 2.0, 9)
    assert cfg.effective()["conditions"] == {"temperature": 25.0, "concentration": 0.08}


def test_absolute_history_and_raw_dict():
    cfg = parse_warmstart({"history": "/data/h.h5"}, "fit.toml", "/cfg")
    assert cfg.history == Path("/data/h.h5") and cfg.source == "fit.toml"


@pytest.mark.parametrize("body, key, words", [
    ("histroy = 'h.h5'", "warmstart.histroy", "unknown key"),
    ("design_fraction = 0.0", "warmstart.design_fraction", "never dropped"),
    ("design_fraction = 1.5", "warmstart.design_fraction", "(0, 1]"),
    ("n_starts = 0", "warmstart.n_starts", ">= 1"),
    ("min_history = 1", "warmstart.min_history", ">= 2"),
    ("confidence_threshold = 0", "warmstart.confidence_threshold", "> 0"),
    ("trend = 'cubic'", "warmstart.trend", "'linear'"),
    ("record = 'yes'", "warmstart.record", "true or false"),
    ("history = ''", "warmstart.history", "empty"),
    ("conditions = { temperature = 'hot' }", "warmstart.conditions.temperature", "number"),
    ("conditions = { wet = true }", "warmstart.conditions.wet", "boolean"),
    ("conditions = 5", "warmstart.conditions", "table"),
    ("seed = -1", "warmstart.seed", ">= 0"),
])
def test_errors_name_key_and_file(body, key, words):
    with pytest.raises(ConfigError) as err:
        parse(f"[warmstart]\n{body}\n")
    assert err.value.key == key and err.value.source == "fit.toml"
    assert words in str(err.value) and str(err.value).startswith("fit.toml: " + key)
