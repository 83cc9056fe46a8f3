"""[hpo] scheduler = "pbt" and the [hpo.pbt] table."""

import tomllib
from pathlib import Path

import pytest

from hpcopt.errors import ConfigError
from hpcopt.hpo.config import parse_hpo_config
from hpcopt.hpo.pbt.config import PbtSettings
from hpcopt.tomlread import Table

REST = """
[objective]
function = "hpcopt.toys.pbt_toy:annealing"
[space]
lr = { type = "loguniform", low = 1e-3, high = 1.5 }
"""


def parse(text: str, tmp_path: Path, output: str = "run.h5"):
    root = Table(tomllib.loads(text), "", "pbt.toml")
    return parse_hpo_config(root, "pbt.toml", tmp_path, output)


def error(text: str, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path)
    return str(info.value)


def test_full_table_parses(tmp_path):
    cfg = parse("""
[hpo]
scheduler = "pbt"
direction = "maximize"
max_retries = 2
trial_timeout = 30
[hpo.pbt]
population = 6
perturbation_interval = 5
max_steps = 40
quantile_fraction = 0.5
resample_probability = 0.1
perturbation_factors = [0.5, 2]
checkpoint_dir = "ckpt"
""" + REST, tmp_path)
    h = cfg.hpo
    assert h.scheduler == "pbt" and h.direction == "maximize" and h.max_retries == 2
    assert h.pbt == PbtSettings(6, 5, 40, 0.5, 0.1, (0.5, 2.0), tmp_path / "ckpt")
    assert h.pbt.segments_per_member == 8
    assert h.pbt.checkpoint_root(tmp_path / "run.h5") == tmp_path / "ckpt"


def test_defaults_and_default_checkpoint_root(tmp_path):
    cfg = parse('[hpo]\nscheduler = "pbt"\n' + REST, tmp_path)
    s = cfg.hpo.pbt
    assert (s.population, s.perturbation_interval, s.max_steps) == (8, 10, 100)
    assert (s.quantile_fraction, s.resample_probability, s.perturbation_factors) == (0.25, 0.25, (0.8, 1.2))
    assert s.checkpoint_root(tmp_path / "out" / "run.h5") == tmp_path / "out" / "run_pbt"


def test_optuna_scheduler_is_the_default_and_has_no_pbt_settings(tmp_path):
    cfg = parse('[hpo]\nsampler = "random"\n' + REST, tmp_path)
    assert cfg.hpo.scheduler == "optuna" and cfg.hpo.pbt is None


@pytest.mark.parametrize("hpo, where, what", [
    ('sampler = "tpe"', "hpo.sampler", "not used with scheduler = 'pbt'"),
    ('n_trials = 10', "hpo.n_trials", "not used with scheduler = 'pbt'"),
    ('storage = "memory"', "hpo.storage", "not used with scheduler = 'pbt'"),
    ('scheduler = "ray"', "hpo.scheduler", "expected one of"),
])
def test_keys_of_the_other_scheduler_are_errors(tmp_path, hpo, where, what):
    extra = "" if "scheduler" in hpo else 'scheduler = "pbt"\n'
    msg = error(f"[hpo]\n{extra}{hpo}\n" + REST, tmp_path)
    assert where in msg and what in msg


def test_pbt_table_needs_the_pbt_scheduler(tmp_path):
    msg = error('[hpo]\n[hpo.pbt]\npopulation = 4\n' + REST, tmp_path)
    assert "hpo.pbt" in msg and "only used with scheduler = 'pbt'" in msg


@pytest.mark.parametrize("line, key", [
    ("population = 1", "hpo.pbt.population"),
    ("perturbation_interval = 0", "hpo.pbt.perturbation_interval"),
    ("max_steps = 3", "hpo.pbt.max_steps"),                 # < perturbation_interval (10)
    ("quantile_fraction = 0.6", "hpo.pbt.quantile_fraction"),
    ("resample_probability = 1.5", "hpo.pbt.resample_probability"),
    ("perturbation_factors = [0.8, -1.0]", "hpo.pbt.perturbation_factors[1]"),
    ("perturbation_factors = []", "hpo.pbt.perturbation_factors"),
    ("seed = 3", "hpo.pbt.seed"),                           # the seed is [run] seed
])
def test_bad_values_name_the_key(tmp_path, line, key):
    msg = error(f'[hpo]\nscheduler = "pbt"\n[hpo.pbt]\n{line}\n' + REST, tmp_path)
    assert msg.startswith("pbt.toml: ") and key in msg


def test_external_commands_are_not_pbt_objectives(tmp_path):
    msg = error("""
[hpo]
scheduler = "pbt"
[objective]
command = ["{python}", "train.py", "--lr={lr}"]
[space]
lr = { type = "loguniform", low = 1e-3, high = 1.5 }
""", tmp_path)
    assert "objective.command" in msg and "function" in msg
