"""Every config in examples/ runs as documented, in a copy of the folder made elsewhere
(no repository around it), and examples/README.md describes each one."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import h5py
import pytest

from hpctest import REPO, run

EXAMPLES = REPO / "examples"
CONFIGS = sorted(p.name for p in EXAMPLES.glob("*.toml"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """examples/ alone, copied where no hpcopt checkout is near: bundled data must come
    through the installed package ({hpcopt_data}), not through ../hpcopt/data."""
    root = tmp_path_factory.mktemp("examples")
    shutil.copytree(EXAMPLES, root / "examples")
    return root / "examples"


def test_every_example_is_covered():
    assert set(CONFIGS) == set(RUNS) | {"hpo-array.toml"}


def test_the_readme_describes_every_example_and_how_to_run_it():
    readme = (EXAMPLES / "README.md").read_text()
    rows = {m.group(1): m.group(2) for m in
            re.finditer(r"^\| `([\w-]+\.toml)` \|.*\| `(hpcopt [^`]+)` \|$", readme, re.M)}
    assert set(rows) == set(CONFIGS)
    for name, command in rows.items():
        assert f"examples/{name}" in command, command
        kind, n = RUNS.get(name, ("submit", None))
        assert f" {kind} " in f" {command} "
        assert (f"-n {n} " in command) == (n is not None), command


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


@pytest.mark.parametrize("name", CONFIGS)
def test_no_example_reaches_outside_its_folder(name):
    """Before: sweep-xpcs.toml named ../hpcopt/data/xpcs_demo.h5, which a copy lost."""
    config = tomllib.loads((EXAMPLES / name).read_text())
    for text in strings(config):
        assert not text.startswith("..") and "hpcopt/data" not in text, (name, text)


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


def test_an_example_copied_alone_runs_where_it_is_copied(tmp_path):
    """The XPCS example copied without anything else: its data is the bundled dataset,
    found through the installed package."""
    shutil.copy(EXAMPLES / "sweep-xpcs.toml", tmp_path / "fit.toml")
    proc = run(["sweep", "fit.toml", "-q"], cwd=tmp_path, check=True, timeout=300)
    assert "results:" in proc.stdout
    with h5py.File(tmp_path / "xpcs-fit.h5", "r") as f:
        assert f.attrs["status"] == "complete"
    assert (tmp_path / "xpcs-fit.h5.log").exists()
