"""Small result files of every campaign kind, made once per session by the real CLI
(singleton runs, no mpiexec), plus helpers shared by the report tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hpctest import NIST, env, write_config

# make report_helpers importable from the test modules of this folder
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

SWEEP = """
[objective]
function = "testobj:failing"
[parameters]
x = { min = -2.0, max = 2.0, points = 6 }
y = { min = -2.0, max = 2.0, points = 5 }
[search]
method = "grid"
[local]
method = "none"
[output]
path = "sweep.h5"
"""

# a relative data path: the report must find it from any working directory
NIST_FIT = """
[model]
name = "nist:Misra1a"
[data]
path = "data/Misra1a.dat"
[parameters]
b1 = { min = 100.0, max = 1000.0, points = 3 }
b2 = { min = 1e-5, max = 1e-2, points = 3, scale = "log" }
[search]
method = "grid"
[local]
method = "least_squares"
[output]
path = "misra.h5"
"""

XPCS_FIT = """
[model]
name = "xpcs:homodyne"
[data]
path = "c2.h5"
[parameters]
D0 = { min = 1e3, max = 3e4, scale = "log" }
alpha = { min = -1.5, max = 0.5 }
D_offset = { min = 0.0, max = 2000.0 }
gamma_dot_0 = { min = 1e-6, max = 1e-3, scale = "log" }
beta = { min = -0.5, max = 1.5 }
gamma_dot_offset = { value = 0.0 }
phi0 = { min = -30.0, max = 50.0 }
[search]
method = "sobol"
samples = 8
[local]
method = "none"
[output]
path = "xpcs.h5"
"""

ISING = """
[temper]
replicas = 4
t_min = 1.0
t_max = 20.0
exchange_interval = 10
rounds = 40
[problem]
name = "ising"
L = 4
[run]
seed = 7
[output]
path = "ising.h5"
"""

WELL = """
[temper]
replicas = 3
t_min = 0.5
t_max = 8.0
exchange_interval = 10
rounds = 120
burn_in = 20
thin = 2
[problem]
function = "testobj:slow_energy"
x0 = [1.0, 0.0]
step = [0.3, 0.3]
lower = [-3.0, -3.0]
upper = [3.0, 3.0]
[run]
seed = 3
[output]
path = "well.h5"
"""

HPO = """
[hpo]
sampler = "random"
pruner = "median"
n_trials = 16
direction = "minimize"
[objective]
function = "hpoobj:curve"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
lr = { type = "loguniform", low = 1e-4, high = 1e-1 }
n = { type = "int", low = 1, high = 8 }
layers = { type = "categorical", choices = [[64, 32], [128, 64, 32]] }
[run]
seed = 11
[output]
path = "hpo.h5"
"""

HPO_FAILS = """
[hpo]
sampler = "random"
n_trials = 8
direction = "minimize"
max_retries = 1
[objective]
function = "hpoobj:sometimes_fails"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
y = { type = "uniform", low = -5.0, high = 5.0 }
[run]
seed = 5
[output]
path = "fails.h5"
"""

# every kind of parameter column: float, int, conditional int, string, list and mixed choices
HPO_TYPED = """
[hpo]
sampler = "random"
n_trials = 12
direction = "minimize"
[objective]
function = "hpoobj:quad"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
y = { type = "float", low = -5.0, high = 5.0, step = 0.5 }
n = { type = "int", low = 1, high = 8 }
act = ["relu", "tanh"]
depth = { type = "int", low = 1, high = 3, when = { param = "act", equals = "relu" } }
layers = { type = "categorical", choices = [[64, 32], [128, 64, 32]] }
flag = [true, false]
width = [16, 32, 64]
rate = [0.5, 1, 2]
mixed = [1, "two"]
[run]
seed = 13
[output]
path = "typed.h5"
"""

PBT = """
[hpo]
scheduler = "pbt"
direction = "minimize"
[hpo.pbt]
population = 3
perturbation_interval = 10
max_steps = 30
[objective]
function = "hpcopt.toys.pbt_toy:annealing"
[space]
lr = { type = "loguniform", low = 1e-3, high = 1.5 }
batch = { type = "int", low = 1, high = 4 }
opt = ["sgd", "adam"]
[run]
seed = 3
[output]
path = "pbt.h5"
"""


#: name -> (command, config text, result file); each runs in its own directory
CAMPAIGNS = {
    "sweep": ("sweep", SWEEP, "sweep.h5"),
    "nist": ("sweep", NIST_FIT, "misra.h5"),
    "xpcs": ("sweep", XPCS_FIT, "xpcs.h5"),
    "ising": ("temper", ISING, "ising.h5"),
    "well": ("temper", WELL, "well.h5"),
    "hpo": ("hpo", HPO, "hpo.h5"),
    "fails": ("hpo", HPO_FAILS, "fails.h5"),
    "typed": ("hpo", HPO_TYPED, "typed.h5"),
    "pbt": ("hpo", PBT, "pbt.h5"),
}

# One interpreter runs every campaign through the real command line (hpcopt.cli.main, as
# `python -m hpcopt` does), one after the other: seven separate processes would spend
# most of the test time starting Python, MPI and numba.
RUNNER = """
import os, sys
from hpcopt.cli import main
from hpcopt.models.xpcs import save_xpcs_h5, simulate
root = sys.argv[1]
save_xpcs_h5(os.path.join(root, "xpcs", "c2.h5"), simulate("homodyne", n=12, phi=(0.0, 90.0),
                                                            seed=1))
for name, command in (arg.split("=") for arg in sys.argv[2:]):
    os.chdir(os.path.join(root, name))
    # a relative config path, as a user types it: the file records it relative to cwd
    status = main([command, name + ".toml", "--quiet"])
    if status != 0:
        sys.exit(f"{name}: hpcopt {command} exited {status}")
"""


@pytest.fixture(scope="session")
def campaigns(tmp_path_factory) -> dict:
    """Result files of every kind, made once per session; name -> path."""
    root = tmp_path_factory.mktemp("campaigns")
    for name, (_, text, _) in CAMPAIGNS.items():
        (root / name).mkdir()
        write_config(root / name / f"{name}.toml", text)
    (root / "nist" / "data").mkdir()
    shutil.copy(NIST / "Misra1a.dat", root / "nist" / "data" / "Misra1a.dat")
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(root)]
                          + [f"{n}={c[0]}" for n, c in CAMPAIGNS.items()],
                          env=env(TESTOBJ_SLEEP="0", HPOOBJ_SLEEP="0"), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {name: root / name / result for name, (_, _, result) in CAMPAIGNS.items()}


@pytest.fixture(scope="session")
def sweep_file(campaigns):
    return campaigns["sweep"]


@pytest.fixture(scope="session")
def nist_file(campaigns):
    return campaigns["nist"]


@pytest.fixture(scope="session")
def xpcs_file(campaigns):
    return campaigns["xpcs"]


@pytest.fixture(scope="session")
def ising_file(campaigns):
    return campaigns["ising"]


@pytest.fixture(scope="session")
def well_file(campaigns):
    return campaigns["well"]


@pytest.fixture(scope="session")
def hpo_file(campaigns):
    return campaigns["hpo"]


@pytest.fixture(scope="session")
def hpo_fails_file(campaigns):
    return campaigns["fails"]


@pytest.fixture(scope="session")
def hpo_typed_file(campaigns):
    return campaigns["typed"]


@pytest.fixture(scope="session")
def pbt_file(campaigns):
    return campaigns["pbt"]
