import tomllib
from pathlib import Path

import pytest

from hpcopt.errors import ConfigError
from hpcopt.hpo.config import parse_hpo_config
from hpcopt.tomlread import Table

SPACE = """
[space]
x = { type = "uniform", low = -5.0, high = 10.0 }
opt = ["sgd", "adam"]
"""


def parse(text: str, tmp_path: Path, output: str | None = "study.h5"):
    root = Table(tomllib.loads(text), "", "study.toml")
    return parse_hpo_config(root, "study.toml", tmp_path, output)


def error(text: str, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path)
    return str(info.value)


def test_design_example_parses_with_defaults(tmp_path):
    cfg = parse("""
[hpo]
sampler = "tpe"
pruner = "none"
n_trials = 40
direction = "minimize"
[objective]
function = "mymod:g"
[space]
x = { type = "uniform", low = -5.0, high = 10.0 }
lr = { type = "loguniform", low = 1e-4, high = 1e-1 }
layers = { type = "categorical", choices = [[64, 32], [128, 64, 32]] }
n = { type = "int", low = 1, high = 8 }
""", tmp_path)
    h = cfg.hpo
    assert (h.sampler, h.pruner, h.n_trials, h.direction) == ("tpe", "none", 40, "minimize")
    assert h.study_name == "study" and h.storage.kind == "journal"
    assert h.storage.location == str(tmp_path / "study.h5.journal")
    assert h.multivariate and h.constant_liar and not h.deterministic and h.max_retries == 0
    assert cfg.objective.function == "mymod:g" and cfg.objective.command is None
    assert cfg.space.names == ["x", "lr", "layers", "n"]


def test_all_options(tmp_path):
    cfg = parse("""
[hpo]
sampler = "random"
pruner = "hyperband"
n_trials = 7
time_budget = 60
max_concurrent = 3
direction = "maximize"
deterministic = true
study_name = "s1"
storage = "postgresql://user@db/hpo"
trial_timeout = 2.5
max_retries = 2
min_resource = 2
max_resource = 27
reduction_factor = 3
[objective]
command = ["{python}", "train.py", "--x={x}", "{opt}", "{trial_dir}"]
result_file = "out.json"
result_key = "error"
workdir = "runs"
env = { OMP_NUM_THREADS = "1" }
""" + SPACE, tmp_path)
    h = cfg.hpo
    assert h.time_budget == 60.0 and h.max_concurrent == 3 and h.direction == "maximize"
    assert h.storage.kind == "rdb" and h.storage.location.startswith("postgresql://")
    assert h.pruner_option("max_resource") == 27 and h.pruner_option("reduction_factor") == 3
    assert h.pruner_option("bootstrap_count") == 0
    o = cfg.objective
    assert o.command[2] == "--x={x}" and o.result_file == "out.json" and o.result_key == "error"
    assert o.workdir == tmp_path / "runs" and dict(o.env) == {"OMP_NUM_THREADS": "1"}


def test_relative_journal_path_is_taken_from_the_config_dir(tmp_path):
    cfg = parse('[hpo]\nstorage = "db/j.log"\n[objective]\nfunction = "m:f"\n' + SPACE, tmp_path)
    assert cfg.hpo.storage.location == str(tmp_path / "db" / "j.log")
    cfg = parse('[hpo]\nstorage = "memory"\n[objective]\nfunction = "m:f"\n' + SPACE, tmp_path)
    assert cfg.hpo.storage.kind == "memory"


@pytest.mark.parametrize("hpo, key, words", [
    ('sampler = "bayes"', "hpo.sampler", "expected one of"),
    ('n_trials = 0', "hpo.n_trials", ">= 1"),
    ('time_budget = -1', "hpo.time_budget", "> 0"),
    ('direction = "down"', "hpo.direction", "expected one of"),
    ('pruner = "median"\nreduction_factor = 3', "hpo.reduction_factor", "only used with"),
    ('sampler = "random"\nmultivariate = false', "hpo.multivariate", "only used with"),
    ('pruner = "asha"\nreduction_factor = 1', "hpo.reduction_factor", ">= 2"),
    ('colour = "red"', "hpo.colour", "unknown key"),
    ('storage = "not a url://x"', "hpo.storage", "not a database URL"),
])
def test_hpo_errors_name_key_and_file(tmp_path, hpo, key, words):
    message = error(f'[hpo]\n{hpo}\n[objective]\nfunction = "m:f"\n' + SPACE, tmp_path)
    assert message.startswith(f"study.toml: {key}") and words in message, message


@pytest.mark.parametrize("objective, key, words", [
    ('', "objective", "exactly one"),
    ('function = "m:f"\ncommand = ["a"]', "objective", "exactly one"),
    ('command = "python train.py"', "objective.command", "list of strings"),
    ('command = ["run", "{lr}"]', "objective.command[1]", "unknown field {lr}"),
    ('command = ["run", "{x.real}"]', "objective.command[1]", "plain {name}"),
    ('command = ["run", "{x"]', "objective.command[1]", "bad template"),
    ('command = ["run"]\nresult_file = "../r.json"', "objective.result_file", "plain file name"),
])
def test_objective_errors(tmp_path, objective, key, words):
    message = error(f"[objective]\n{objective}\n" + SPACE, tmp_path)
    assert message.startswith(f"study.toml: {key}") and words in message, message


def test_optunas_timeout_is_the_time_budget(tmp_path):
    rest = '[objective]\nfunction = "mymod:g"\n' + SPACE
    as_optuna = parse('[hpo]\ntimeout = 90\n' + rest, tmp_path)
    assert as_optuna.hpo.time_budget == 90.0
    assert parse('[hpo]\ntime_budget = 90\n' + rest, tmp_path).hpo == as_optuna.hpo
    with pytest.raises(ConfigError, match="not both") as err:
        parse('[hpo]\ntimeout = 90\ntime_budget = 60\n' + rest, tmp_path)
    assert err.value.key == "hpo.timeout"
