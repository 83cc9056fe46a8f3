"""Every config in examples/ runs as documented (in a copy of the folder)."""

import shutil
import subprocess
from pathlib import Path

import h5py
import pytest

from hpctest import REPO, run

EXAMPLES = REPO / "examples"
CONFIGS = sorted(p.name for p in EXAMPLES.glob("*.toml"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """examples/ copied next to a copy of hpcopt/data, so relative paths still resolve."""
    root = tmp_path_factory.mktemp("examples")
    shutil.copytree(EXAMPLES, root / "examples")
    shutil.copytree(REPO / "hpcopt" / "data", root / "hpcopt" / "data")
    return root / "examples"


def test_every_example_is_covered():
    assert set(CONFIGS) == set(RUNS) | {"hpo-array.toml"}


RUNS = {
    "sweep-objective.toml": ("sweep", None),
    "sweep-nist.toml": ("sweep", 3),
    "sweep-user-model.toml": ("sweep", 2),
    "sweep-xpcs.toml": ("sweep", 2),
    "sweep-xpcs-beamline.toml": ("sweep", 2),
    "temper-ising.toml": ("temper", 3),
    "temper-function.toml": ("temper", None),
    "hpo-design.toml": ("hpo", 3),
    "hpo-sklearn.toml": ("hpo", 2),
    "hpo-command.toml": ("hpo", 2),
    "hpo-pbt.toml": ("hpo", 3),
}


@pytest.mark.mpi
@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs(folder, name):
    kind, n = RUNS[name]
    proc = run([kind, folder / name], n=n, check=True, timeout=300)
    assert "results:" in proc.stdout and "best:" in proc.stdout
    out = next(folder.glob(f"{proc.stdout.split('results: ')[1].split(' ')[0].split('/')[-1]}"))
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete" and f.attrs["kind"] == kind


def test_array_example_renders_valid_bash(folder):
    proc = run(["submit", folder / "hpo-array.toml", "--template", "array", "--dry-run"],
               check=True)
    assert "#SBATCH --array=0-3%2" in proc.stdout
    assert "#SBATCH --signal=B:USR1@120" in proc.stdout
    subprocess.run(["bash", "-n"], input=proc.stdout, text=True, check=True)


def test_nist_example_gives_the_certified_values(folder):
    run(["sweep", folder / "sweep-nist.toml", "-o", folder / "m.h5"], check=True)
    import json
    with h5py.File(folder / "m.h5", "r") as f:
        params = json.loads(f["best"].attrs["params"])
    assert params["b1"] == pytest.approx(2.3894212918e2, rel=1e-8)
    assert params["b2"] == pytest.approx(5.5015643181e-4, rel=1e-8)
