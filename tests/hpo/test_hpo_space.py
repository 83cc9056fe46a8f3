import json
import tomllib

import optuna
import pytest
from hpo_helpers import space_from

from hpcopt.errors import ConfigError
from hpcopt.hpo.space import parse_space
from hpcopt.tomlread import Table

FULL = """
batch = 64
width = { type = "fixed", value = [64, 32] }
act = ["relu", "tanh"]
layers = { type = "categorical", choices = [[64, 32], [128, 64, 32]] }
x = { type = "uniform", low = -5.0, high = 10.0 }
q = { type = "uniform", low = 0.0, high = 1.0, step = 0.25 }
lr = { type = "loguniform", low = 1e-4, high = 1e-1 }
n = { type = "int", low = 1, high = 8 }
k = { type = "int", low = 2, high = 20, step = 3 }
m = { type = "int", low = 1, high = 1024, log = true }
momentum = { type = "uniform", low = 0.0, high = 0.9, when = { param = "opt", equals = "sgd" } }
beta = { type = "uniform", low = 0.5, high = 0.9, when = { param = "opt", in = ["adam", "adamw"] } }
momentum_on = [true, false]
opt = ["sgd", "adam", "adamw"]
[nesterov]
type = "categorical"
choices = [true, false]
when = { param = "momentum_on", equals = true }
"""


def test_every_type_parses_and_samples_inside_its_range():
    space = space_from(FULL)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_opts, seen_layers = set(), set()
    for _ in range(60):
        trial = study.ask()
        p = space.suggest(trial)
        assert p["batch"] == 64 and p["width"] == [64, 32]
        assert p["act"] in ("relu", "tanh")
        assert p["layers"] in ([64, 32], [128, 64, 32]) and isinstance(p["layers"], list)
        seen_layers.add(json.dumps(p["layers"]))
        assert -5 <= p["x"] <= 10 and p["q"] in (0.0, 0.25, 0.5, 0.75, 1.0)
        assert 1e-4 <= p["lr"] <= 1e-1
        assert isinstance(p["n"], int) and 1 <= p["n"] <= 8
        assert (p["k"] - 2) % 3 == 0 and 2 <= p["k"] <= 20
        assert 1 <= p["m"] <= 1024
        # conditional parameters exist exactly when their parent has the value
        assert ("momentum" in p) == (p["opt"] == "sgd")
        assert ("beta" in p) == (p["opt"] in ("adam", "adamw"))
        assert ("nesterov" in p) == (p["momentum_on"] is True)
        seen_opts.add(p["opt"])
        # decode(trial.params) gives the same real values
        assert space.decode(trial.params) == p
        study.tell(trial, 0.0)
    assert seen_opts == {"sgd", "adam", "adamw"} and len(seen_layers) == 2


def test_parents_are_ordered_before_children_and_list_choices_go_to_optuna_as_json():
    space = space_from(FULL)
    names = space.names
    assert names.index("opt") < names.index("momentum")
    assert names.index("momentum_on") < names.index("nesterov")
    dist = space["layers"].distribution()
    assert dist.choices == ("[64, 32]", "[128, 64, 32]")
    assert space["batch"].distribution() is None
    assert space.static_distributions() is None          # conditional: suggest() needed
    assert space.encode({"layers": [64, 32], "batch": 64}) == {"layers": "[64, 32]"}


def test_static_distributions_for_an_unconditional_space():
    space = space_from('a = [1, 2]\nb = { type = "loguniform", low = 1e-3, high = 1.0 }\nc = 5')
    dists = space.static_distributions()
    assert set(dists) == {"a", "b"}
    trial = optuna.create_study().ask(fixed_distributions=dists)
    p = space.decode(trial.params)
    assert p["c"] == 5 and p["a"] in (1, 2)
    assert space["a"].is_numeric and space["b"].is_numeric and space["c"].is_numeric


def test_the_distributions_cache_is_not_part_of_the_campaigns_config():
    """--resume compares the stored config with the file's field by field
    (campaign.resume.plain): the cache of static_distributions must not show there (as a
    dataclass field it refused every resume of a file written before it)."""
    from hpcopt.campaign.resume import plain
    space = space_from('a = [1, 2]\nb = { type = "loguniform", low = 1e-3, high = 1.0 }')
    before = json.dumps(plain(space), sort_keys=True)
    dists = space.static_distributions()
    dists.clear()                                        # a copy: the cache stays whole
    assert json.dumps(plain(space), sort_keys=True) == before
    assert set(space.static_distributions()) == {"a", "b"}


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_space(Table(tomllib.loads(text), "space", "study.toml"))
    return str(info.value)


@pytest.mark.parametrize("text, key, words", [
    ('x = { type = "uniform", low = 1.0, high = 0.5 }', "space.x.high", "must be >"),
    ('x = { type = "loguniform", low = 0.0, high = 1.0 }', "space.x.low", "low > 0"),
    ('x = { type = "gauss", low = 0.0, high = 1.0 }', "space.x.type", "expected one of"),
    ('x = { type = "uniform", low = 0.0, high = 1.0, scale = 2 }', "space.x", "unknown key"),
    ('x = { low = 0.0, high = 1.0 }', "space.x", "missing 'type'"),
    ('x = { type = "int", low = 1, high = 9, step = 2, log = true }', "space.x.step", "log"),
    ('x = { type = "int", low = 0.5, high = 9 }', "space.x.low", "integer"),
    ('x = []', "space.x", "non-empty"),
    ('x = [1, 1]', "space.x", "distinct"),
    ('x = { type = "categorical", choices = "ab" }', "space.x.choices", "list"),
    ('x = { type = "fixed", value = 1979-05-27 }', "space.x.value", "no dates"),
    ('"a-b" = 1', "space.a-b", "identifiers"),
    ('x = { type = "uniform", low = 0.0, high = 1.0, when = { param = "y", equals = 1 } }',
     "space.x.when", "unknown parent"),
    ('y = ["a", "b"]\n'
     'x = { type = "uniform", low = 0.0, high = 1.0, when = { param = "y", equals = "c" } }',
     "space.x.when", "not one of the choices"),
    ('y = { type = "uniform", low = 0.0, high = 1.0 }\n'
     'x = { type = "uniform", low = 0.0, high = 1.0, when = { param = "y", equals = 0.5 } }',
     "space.x.when", "continuous"),
    ('y = [1, 2]\nx = { type = "uniform", low = 0.0, high = 1.0, when = { param = "y" } }',
     "space.x.when", "exactly one"),
    ('a = { type = "categorical", choices = [1, 2], when = { param = "b", equals = 1 } }\n'
     'b = { type = "categorical", choices = [1, 2], when = { param = "a", equals = 1 } }',
     "space.", "cycle"),
])
def test_errors_name_the_key_and_the_file(text, key, words):
    message = _error(text)
    assert message.startswith("study.toml: " + key), message
    assert words in message


def test_an_empty_space_is_an_error():
    assert "empty" in _error("")


# -- Optuna's spelling and unknown keys (issue 15 item 1) --------------------------------------

def test_optuna_float_spelling_gives_optunas_distributions():
    space = space_from("""
a = { type = "float", low = 1e-4, high = 1e-1, log = true }
b = { type = "float", low = 0.0, high = 1.0, step = 0.25 }
c = { type = "float", low = -1.0, high = 1.0 }
d = { type = "int", low = 1, high = 64, log = true }
""")
    dists = space.static_distributions()
    assert dists["a"] == optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    assert dists["b"] == optuna.distributions.FloatDistribution(0.0, 1.0, step=0.25)
    assert dists["c"] == optuna.distributions.FloatDistribution(-1.0, 1.0)
    assert dists["d"] == optuna.distributions.IntDistribution(1, 64, log=True)


@pytest.mark.parametrize("entry, key, hint", [
    ('{ type = "uniform", low = 0.0, maxx = 1.0 }', "maxx", "high"),
    ('{ type = "uniform", low = 0.0, hihg = 1.0 }', "hihg", "high"),
    ('{ type = "float", min = 0.0, high = 1.0 }', "min", "low"),
    ('{ type = "categorical", values = [1, 2] }', "values", "choices"),
    ('{ type = "int", low = 1, high = 9, stepp = 2 }', "stepp", "step"),
])
def test_an_unknown_key_is_named_with_the_closest_known_one(entry, key, hint):
    with pytest.raises(ConfigError) as err:
        space_from(f"x = {entry}")
    text = str(err.value)
    assert err.value.key == f"space.x.{key}" and f"did you mean {hint!r}" in text
    assert "missing" not in text               # the old message: "high: missing required key"


def test_float_log_and_step_together_are_refused():
    with pytest.raises(ConfigError, match="step cannot be combined with log"):
        space_from('x = { type = "float", low = 0.1, high = 1.0, log = true, step = 0.1 }')


def test_enumerate_lists_every_point_of_a_discrete_space_and_none_for_a_continuous_one():
    space = space_from("""
opt = ["sgd", "adam"]
n = { type = "int", low = 1, high = 3 }
q = { type = "float", low = 0.0, high = 0.3, step = 0.1, when = { param = "opt", equals = "sgd" } }
""")
    points = space.enumerate(1000)
    assert len(points) == 3 * 4 + 3                       # sgd: n x q, adam: n
    assert all(("q" in p) == (p["opt"] == "sgd") for p in points)
    assert space.enumerate(10) is None                     # over the limit
    assert space_from('x = { type = "uniform", low = 0.0, high = 1.0 }').enumerate(10) is None
