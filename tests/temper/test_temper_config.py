"""[temper] / [problem] parsing: the design example, defaults, and errors naming key and file."""

import textwrap

import numpy as np
import pytest
from temper_helpers import config_from_toml

from hpcopt.errors import ConfigError
from hpcopt.temper import make_problem
from hpcopt.temper.config import FitSpec, FunctionSpec, GaussianMixtureSpec, IsingSpec

EXAMPLE = """
[temper]
replicas = 6
t_min = 1.0
t_max = 20.0
ladder = "geometric"
exchange_interval = 50
rounds = 100
[problem]
name = "ising"
L = 4
"""


def test_design_example():
    cfg = config_from_toml(EXAMPLE)
    assert cfg.n_replicas == 6 and cfg.rounds == 100 and cfg.exchange_interval == 50
    assert cfg.ladder.kind == "geometric"
    assert cfg.ladder.temperatures[0] == 1.0 and cfg.ladder.temperatures[-1] == 20.0
    assert cfg.problem == IsingSpec(4)
    assert (cfg.thin, cfg.burn_in) == (1, 0)


def test_other_tables_are_left_to_the_driver():
    import tomllib

    from hpcopt.temper import parse_temper_config
    from hpcopt.tomlread import Table
    root = Table(tomllib.loads(EXAMPLE + "[run]\nseed = 7\n"), "", "pt.toml")
    parse_temper_config(root, "pt.toml")
    with pytest.raises(ConfigError, match="unknown key: run"):
        root.finish()                     # temper and problem were read, run was not


def test_explicit_and_adaptive_ladders():
    cfg = config_from_toml("""
        [temper]
        temperatures = [1.0, 1.5, 2.5, 4.0]
        rounds = 10
        [problem]
        name = "rastrigin"
        """)
    assert cfg.ladder.kind == "explicit" and cfg.n_replicas == 4
    cfg = config_from_toml("""
        [temper]
        replicas = 5
        t_max = 9.0
        ladder = "adaptive"
        rounds = 50
        burn_in = 20
        [problem]
        name = "gaussian-mixture"
        weights = [1.0, 3.0]
        """)
    assert cfg.ladder.kind == "adaptive" and cfg.ladder.adapt_rounds == 20
    assert isinstance(cfg.problem, GaussianMixtureSpec)
    assert cfg.problem.weights == (0.25, 0.75)
    assert cfg.problem.centers == ((-5.0, 0.0), (5.0, 0.0))
    assert cfg.problem.moves.x0 == (-5.0, 0.0)


def error_of(text, source="pt.toml"):
    with pytest.raises(ConfigError) as info:
        config_from_toml(textwrap.dedent(text), source)
    return str(info.value)


PROBLEM = "[problem]\nname = 'ising'\n"


@pytest.mark.parametrize("temper,key,words", [
    ("replicas = 0\nt_max = 2.0\nrounds = 5", "temper.replicas", ">= 1"),
    ("replicas = 3\nt_min = 0.0\nt_max = 2.0\nrounds = 5", "temper.t_min", "> 0"),
    ("replicas = 3\nt_min = 3.0\nt_max = 2.0\nrounds = 5", "temper.t_max", "greater"),
    ("replicas = 3\nrounds = 5", "temper.t_max", "missing"),
    ("temperatures = [1.0, 3.0, 2.0]\nrounds = 5", "temper.temperatures[2]", "increasing"),
    ("temperatures = [1.0, 2.0]\nreplicas = 3\nrounds = 5", "temper.replicas", "2 values"),
    ("temperatures = [1.0, 2.0]\nt_min = 1.0\nrounds = 5", "temper.t_min", "either"),
    ("replicas = 3\nt_max = 2.0", "temper.rounds", "missing"),
    ("replicas = 3\nt_max = 2.0\nrounds = 5\nladder = 'linear'", "temper.ladder", "geometric"),
    ("replicas = 3\nt_max = 2.0\nrounds = 5\nladder = 'adaptive'", "temper.burn_in", "adaptive"),
    ("replicas = 3\nt_max = 2.0\nrounds = 5\nburn_in = 5", "temper.burn_in", "smaller"),
    ("replicas = 3\nt_max = 2.0\nrounds = 9\nburn_in = 5\nladder = 'adaptive'\nadapt_rounds = 6",
     "temper.adapt_rounds", "<= 5"),
    ("replicas = 3\nt_max = 2.0\nrounds = 5\nadapt_lag = 5.0", "temper.adapt_lag", "adaptive"),
    ("replicas = 3\nt_max = 2.0\nrounds = 5\nexchange_interval = 0", "temper.exchange_interval", ">= 1"),
    ("replicas = 3\nt_max = 2.0\nrounds = 5\nswap = 1", "temper.swap", "unknown"),
    ("replicas = 1\nt_max = 2.0\nrounds = 5", "temper.t_max", "single replica"),
])
def test_temper_errors_name_key_and_file(temper, key, words):
    message = error_of("[temper]\n" + temper + "\n" + PROBLEM, "my/pt.toml")
    assert message.startswith(f"my/pt.toml: {key}:"), message
    assert words in message


TEMPER = "[temper]\nreplicas = 3\nt_max = 3.0\nrounds = 5\n"


@pytest.mark.parametrize("problem,key,words", [
    ("", "problem", "missing"),
    ("name = 'ising'\nfunction = 'a:b'", "problem.function", "only one"),
    ("name = 'potts'", "problem.name", "ising"),
    ("name = 'ising'\nL = 1", "problem.L", ">= 2"),
    ("name = 'ising'\nstep = 1.0", "problem.step", "unknown"),
    ("name = 'gaussian-mixture'\nweights = [1.0]", "problem.weights", "2 values"),
    ("name = 'gaussian-mixture'\nweights = [1.0, -1.0]", "problem.weights", "> 0"),
    ("name = 'gaussian-mixture'\ncenters = [[0.0], [1.0, 2.0]]", "problem.centers", "same number"),
    ("name = 'gaussian-mixture'\ncenters = [[0.0], [1.0]]\nmodes = 2", "problem.modes", "either"),
    ("name = 'gaussian-mixture'\nstep = [1.0]", "problem.step", "2 values"),
    ("name = 'gaussian-mixture'\nstep = 0.0", "problem.step", "> 0"),
    ("name = 'rastrigin'\nx0 = [9.0, 0.0]", "problem.x0[0]", "outside"),
    ("name = 'rastrigin'\nlower = 1.0\nupper = 0.0", "problem.upper", "greater"),
    ("name = 'rastrigin'\nboundary = 'wrap'", "problem.boundary", "reflect"),
    ("function = 'no_such_module_xyz:f'\nx0 = [0.0]\nstep = 1.0", "problem.function", "import"),
    ("function = 'not a spec'\nx0 = [0.0]\nstep = 1.0", "problem.function", "package.module"),
    ("function = 'math:fabs'\nx0 = [0.0]", "problem.step", "missing"),
    ("function = 'math:fabs'\nx0 = [0.0]\nstep = 1.0\nnames = ['a', 'b']", "problem.names", "1 distinct"),
    ("model = 'nist:Misra1a'\nstep = 1.0", "problem.data", "missing"),
    ("model = 'nist:Misra1a'\ndata = 'm.dat'\nstep = 1.0", "problem.x0", "missing"),
])
def test_problem_errors_name_key_and_file(problem, key, words):
    message = error_of(TEMPER + "[problem]\n" + problem + "\n")
    assert message.startswith(f"pt.toml: {key}:"), message
    assert words in message


def test_user_function_next_to_the_config(tmp_path):
    (tmp_path / "pt_energy_mod.py").write_text(
        "import numpy as np\ndef bowl(x):\n    return float(np.sum((x - 1.0) ** 2))\n"
        "def broken(x):\n    return float('nan')\n")
    text = TEMPER + textwrap.dedent("""
        [problem]
        function = "pt_energy_mod:bowl"
        x0 = [0.0, 2.0]
        step = [0.5, 0.25]
        lower = [-3.0, -3.0]
        upper = 3.0
        names = ["a", "b"]
        boundary = "reject"
        step_scaling = "sqrt-t"
        """)
    cfg = config_from_toml(text, str(tmp_path / "pt.toml"), tmp_path)
    assert isinstance(cfg.problem, FunctionSpec)
    p = make_problem(cfg.problem, cfg.source)
    assert p.param_names == ("a", "b") and p.energy(np.array([1.0, 1.0])) == 0.0
    assert p.step.tolist() == [0.5, 0.25] and p.upper.tolist() == [3.0, 3.0]
    assert p.boundary == "reject" and p.step_factor(4.0, 1.0) == 2.0
    bad = config_from_toml(text.replace("bowl", "broken"), "pt.toml", tmp_path)
    with pytest.raises(ConfigError, match=r"pt.toml: problem.x0: .*not finite"):
        make_problem(bad.problem, "pt.toml")


def test_fit_problem_paths_are_taken_from_the_config_directory(tmp_path):
    cfg = config_from_toml(TEMPER + "[problem]\nmodel = 'nist:Misra1a'\ndata = 'd/Misra1a.dat'\n"
                           "x0 = [500.0, 1e-4]\nstep = [10.0, 1e-6]\n", "pt.toml", tmp_path)
    assert isinstance(cfg.problem, FitSpec)
    assert cfg.problem.data == str(tmp_path / "d" / "Misra1a.dat")


@pytest.mark.parametrize("table,key,items", [
    ("temper", "temperatures", "temperatures"),
    ("problem", "centers", "modes"),
    ("problem", "x0", "parameters"),
])
def test_list_lengths_are_capped_before_their_values_are_read(table, key, items):
    """BUG (issue 13.14): without `replicas`, a million temperatures bypassed the replica cap
    (a 679 MB file and minutes to stop); over-long lists are now refused at once."""
    from hpcopt.temper.config import MAX_DIM, MAX_MODES, MAX_REPLICAS
    cap = {"temperatures": MAX_REPLICAS, "centers": MAX_MODES, "x0": MAX_DIM}[key]
    values = (", ".join(str(1.0 + i) for i in range(cap + 1)) if key != "centers"
              else ", ".join("[0.0]" for _ in range(cap + 1)))
    if table == "temper":
        text = f"[temper]\ntemperatures = [{values}]\nrounds = 10\n[problem]\nname = 'ising'\n"
    elif key == "centers":
        text = TEMPER + f"[problem]\nname = 'gaussian-mixture'\ncenters = [{values}]\n"
    else:
        text = TEMPER + f"[problem]\nfunction = 'math:fsum'\nx0 = [{values}]\nstep = 1.0\n"
    message = error_of(text)
    assert message.startswith(f"pt.toml: {table}.{key}:"), message[:200]
    assert f"at most {cap:,} {items}" in message


def test_a_huge_ladder_stops_the_command_with_exit_2_and_no_file(tmp_path):
    from hpctest import run

    from hpcopt.temper.config import MAX_REPLICAS
    temps = ", ".join(f"{1.0 + i}" for i in range(MAX_REPLICAS + 1))
    cfg = tmp_path / "pt.toml"
    cfg.write_text(f"[temper]\ntemperatures = [{temps}]\nrounds = 10\n[problem]\nname = 'ising'\n"
                   "L = 4\n[output]\npath = 'pt.h5'\n")
    proc = run(["temper", cfg], timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("hpcopt: error") == 1 and "temper.temperatures" in proc.stderr
    assert not (tmp_path / "pt.h5").exists()
