import json
import math

import numpy as np
import pytest
from hpo_helpers import drive, settings, space_from

from hpcopt.toys import objectives as obj
from hpcopt.hpo.objective import PythonRunner
from hpcopt.hpo.policy import HpoPolicy, record_from_frozen
from hpcopt.hpo.rows import BASE_FIELDS, params_from_row, trial_row, trial_row_fields


def test_branin_minima():
    for x1, x2 in ((-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)):
        assert obj.branin({"x1": x1, "x2": x2}) == pytest.approx(obj.BRANIN_MIN, abs=1e-5)
    grid = np.linspace(0, 1, 31)
    values = [obj.branin({"x1": -5 + 15 * a, "x2": 15 * b}) for a in grid for b in grid]
    assert min(values) > obj.BRANIN_MIN


def test_hartmann6_minimum_against_a_plain_loop():
    x = dict(zip([f"x{i}" for i in range(1, 7)], obj.HARTMANN6_ARGMIN))
    assert obj.hartmann6(x) == pytest.approx(obj.HARTMANN6_MIN, abs=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = {f"x{i}": float(v) for i, v in enumerate(rng.random(6), start=1)}
        total = 0.0
        for i in range(4):
            inner = sum(obj._H6_A[i, j] * (p[f"x{j + 1}"] - obj._H6_P[i, j]) ** 2 for j in range(6))
            total -= obj._H6_ALPHA[i] * math.exp(-inner)
        assert obj.hartmann6(p) == pytest.approx(total, rel=1e-12)
        assert obj.hartmann6(p) > obj.HARTMANN6_MIN


def test_digits_objectives_report_each_epoch_and_stop_when_told():
    steps = []
    error = obj.digits_sgd({"epochs": 4, "alpha": 1e-4}, lambda s, v: steps.append((s, v)) or False)
    assert [s for s, _ in steps] == [0, 1, 2, 3] and error == steps[-1][1] and 0 <= error < 0.3
    steps.clear()
    obj.digits_mlp({"epochs": 5, "layers": [16]}, lambda s, v: steps.append(s) or s >= 1)
    assert steps == [0, 1]


LIST_SPACE = """
layers = { type = "categorical", choices = [[64, 32], [128, 64, 32]] }
opt = ["sgd", "adam"]
lr = { type = "loguniform", low = 1e-4, high = 1e-1 }
momentum = { type = "uniform", low = 0.0, high = 0.9, when = { param = "opt", equals = "sgd" } }
epochs = 3
"""


def test_rows_hold_real_params_and_a_typed_column_per_param():
    """Before: only numeric parameters had a column (float64); now every parameter has one:
    lists as JSON text, strings as strings, ints as ints, conditional floats with NaN."""
    space = space_from(LIST_SPACE)
    fields = trial_row_fields(space)
    names = [n for n, _ in fields]
    assert names[0] == "task_id" and names[:len(BASE_FIELDS)] == [f[0] for f in BASE_FIELDS]
    assert fields[len(BASE_FIELDS):] == [("p_layers", "json"), ("p_opt", "str"),
                                         ("p_lr", "float"), ("p_momentum", "float"),
                                         ("p_epochs", "int")]

    def train(params, report):
        report(0, params["lr"])
        return params["lr"] * len(params["layers"])

    policy = HpoPolicy(settings(n_trials=12), space, seed=2)
    records = drive(policy, PythonRunner(train))
    for rec in records:
        row = trial_row(rec, space, rank=2)
        assert set(row) == set(names)
        assert params_from_row(row) == rec.params and isinstance(rec.params["layers"], list)
        assert row["p_lr"] == rec.params["lr"] and row["rank"] == 2
        assert math.isnan(row["p_momentum"]) == (rec.params["opt"] != "sgd")
        assert json.loads(row["p_layers"]) == rec.params["layers"]
        assert row["p_opt"] == rec.params["opt"] and row["p_epochs"] == 3
        assert json.loads(row["intermediate_json"]) == [[0, rec.params["lr"]]]
        assert row["n_steps"] == 1 and row["last_step"] == 0 and row["error"] == ""
        again = record_from_frozen(policy.study.trials[rec.number], space)   # from storage only
        assert again.params == rec.params and again.value == rec.value
        assert again.intermediate == rec.intermediate


# -- built-in objectives declare their parameters (issue 15 item 3) ---------------------------

BUILTIN_CONFIG = """
[hpo]
n_trials = 2
storage = "memory"
[objective]
function = "hpcopt.toys.objectives:{name}"
[space]
{space}
[output]
path = "out.h5"
"""


def _validate(tmp_path, name, space):
    from hpcopt.campaign.contract import CampaignRequest
    from hpcopt.campaign.lifecycle import prepare
    cfg = tmp_path / "c.toml"
    cfg.write_text(BUILTIN_CONFIG.format(name=name, space=space))
    return prepare(CampaignRequest("hpo", cfg))


def test_digits_mlp_refuses_an_unknown_parameter_at_validation(tmp_path):
    """digits_mlp silently ignored `lr`: four trials from 3e-4 to 0.07 gave one value."""
    from hpcopt.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        _validate(tmp_path, "digits_mlp", 'lr = { type = "loguniform", low = 1e-4, high = 0.1 }')
    assert err.value.key == "space.lr" and err.value.exit_code == 2
    assert "'lr'" in str(err.value) and "learning_rate_init" in str(err.value)


def test_builtins_name_missing_required_parameters(tmp_path):
    from hpcopt.errors import ConfigError
    with pytest.raises(ConfigError, match="missing parameter 'x2'"):
        _validate(tmp_path, "branin", 'x1 = { type = "uniform", low = -5.0, high = 10.0 }')
    _validate(tmp_path, "branin", 'x1 = { type = "uniform", low = -5.0, high = 10.0 }\n'
                                  'x2 = { type = "uniform", low = 0.0, high = 15.0 }')
    _validate(tmp_path, "digits_sgd", 'alpha = { type = "loguniform", low = 1e-6, high = 0.1 }\n'
                                      'epochs = 2')


def test_a_direct_call_with_an_unknown_parameter_raises():
    from hpcopt.toys.objectives import branin, digits_mlp
    with pytest.raises(ValueError, match="unknown parameter 'lr'"):
        digits_mlp({"lr": 0.01, "epochs": 1})
    with pytest.raises(ValueError, match="did you mean 'x1'"):
        branin({"x1": 1.0, "x2": 2.0, "x_1": 0.0})


# -- Optuna's tools (issue 15 item 8) ---------------------------------------------------------

def test_the_summary_prints_the_storage_as_optunas_tools_take_it(tmp_path):
    from hpcopt.hpo.campaign import format_summary, storage_text
    from hpcopt.hpo.config import StorageSpec
    journal = str(tmp_path / "study.h5.journal")
    assert storage_text(StorageSpec("journal", journal)) == journal      # not "journal:..."
    text = format_summary({"path": "study.h5", "status": "complete", "n_rows": 3,
                           "elapsed": 1.0, "study": "study", "storage": journal,
                           "best": None})
    assert f"in {journal}" in text and f"dashboard: optuna-dashboard {journal}" in text
    assert "optuna-dashboard" not in format_summary({
        "path": "s.h5", "status": "complete", "n_rows": 3, "elapsed": 1.0, "study": "s",
        "storage": "memory", "best": None})


def test_the_optuna_cli_opens_the_journal_by_its_plain_path(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    from hpcopt.hpo.config import StorageSpec
    journal = tmp_path / "s.journal"
    policy = HpoPolicy(settings(storage=StorageSpec("journal", str(journal)), n_trials=3),
                       space_from('x = { type = "uniform", low = 0.0, high = 1.0 }'))
    drive(policy, PythonRunner(lambda p: p["x"]))
    cli = str(Path(sys.executable).parent / "optuna")          # Optuna's own command line
    out = subprocess.run([cli, "trials", "--storage", str(journal),
                          "--study-name", "hpcopt", "-f", "json"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    trials = json.loads(out.stdout)
    assert len(trials) == 3
    durations = [t["user_attrs"]["duration_s"] for t in trials]
    assert all(isinstance(d, float) and d >= 0 for d in durations)    # flat: sortable
