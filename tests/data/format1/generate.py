"""Make the format-1 result files of this folder with the hpcopt that wrote format 1.

The files are the old layout as the old code wrote it (a sweep's points as x0/x vector
columns, tempering's per-replica vectors inside the `rounds` table, HPO parameter columns
for numeric parameters only), for the tests that format-2 readers read them and that
--resume keeps writing their layout (tests/store/test_format1.py).  Made by:

    git -C REPO archive c7cfe88 | tar -x -C /tmp/hpcopt-format1
    cd REPO && PYTHONPATH=/tmp/hpcopt-format1:tests/objectives TESTOBJ_SLEEP=0 \\
        HPOOBJ_SLEEP=0 .venv/bin/python tests/data/format1/generate.py tests/data/format1

(c7cfe88: the last commit of main before format 2.)  Every campaign runs on one rank
in its own directory; the HPO study's journal is kept beside its file (resume needs it).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

#: name -> (subcommand, config); every result file is NAME.h5
CONFIGS = {
    "sweep": ("sweep", """
[objective]
function = "testobj:failing"
[parameters]
x = { min = -2.0, max = 2.0 }
y = { min = -2.0, max = 2.0 }
[search]
method = "sobol"
samples = 6
[local]
method = "nelder-mead"
max_nfev = 40
[run]
seed = 4
[output]
path = "sweep.h5"
"""),
    "well": ("temper", """
[temper]
replicas = 3
t_min = 0.5
t_max = 8.0
exchange_interval = 5
rounds = 30
burn_in = 10
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
"""),
    "ising": ("temper", """
[temper]
replicas = 3
t_min = 1.0
t_max = 10.0
exchange_interval = 5
rounds = 16
[problem]
name = "ising"
L = 3
[run]
seed = 7
[output]
path = "ising.h5"
"""),
    "hpo": ("hpo", """
[hpo]
sampler = "random"
n_trials = 5
direction = "minimize"
[objective]
function = "hpoobj:quad"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
y = { type = "uniform", low = -5.0, high = 5.0 }
n = { type = "int", low = 1, high = 8 }
act = ["relu", "tanh"]
layers = { type = "categorical", choices = [[64, 32], [128, 64, 32]] }
[run]
seed = 11
[output]
path = "hpo.h5"
"""),
}


def main(out: Path) -> None:
    from hpcopt.cli import main as hpcopt
    from hpcopt.store import schema
    assert schema.FORMAT_VERSION == 1, f"run with the format-1 hpcopt, not {schema.__file__}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (command, text) in CONFIGS.items():
            work = Path(tmp) / name
            work.mkdir()
            (work / f"{name}.toml").write_text(text.lstrip())
            os.chdir(work)
            status = hpcopt([command, f"{name}.toml", "--quiet"])
            assert status in (0, 4), f"{name}: exit {status}"
            for produced in (f"{name}.h5", f"{name}.h5.journal"):
                if (work / produced).exists():
                    shutil.copy(work / produced, out / produced)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
