"""Parallel HDF5 (driver="mpio") and serial h5py write the same file contents.

Runs in `make test-mpio` (a venv whose h5py has MPI); HPCOPT_SERIAL_PYTHON names the
serial venv's Python so both paths run the same campaign in one test.
"""

import os
import subprocess

import h5py
import numpy as np
import pytest

from hpctest import PY, assert_same_rows, command, env, mpiexec, read_table, write_config
from hpcopt.store import schema

pytestmark = pytest.mark.mpio

CFG = """
[objective]
function = "testobj:quadratic"
[parameters]
x = { min = -2.0, max = 2.0, points = 7 }
y = { min = -2.0, max = 2.0, points = 5 }
[local]
method = "nelder-mead"
[run]
mode = "MODE"
[output]
path = "out.h5"
"""


def test_this_venv_has_parallel_hdf5():
    assert h5py.get_config().mpi, "make test-mpio must run with an MPI-enabled h5py"


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_mpio_file_equals_serial_file(tmp_path, mode):
    serial_python = os.environ.get("HPCOPT_SERIAL_PYTHON")
    assert serial_python, "set HPCOPT_SERIAL_PYTHON to the serial venv's python (make test-mpio does)"
    (tmp_path / "p").mkdir()
    (tmp_path / "s").mkdir()
    cfg_p = write_config(tmp_path / "p" / "c.toml", CFG.replace("MODE", mode))
    cfg_s = write_config(tmp_path / "s" / "c.toml", CFG.replace("MODE", mode))
    subprocess.run(command(["sweep", cfg_p], 3), env=env(), check=True, timeout=300,
                   capture_output=True)
    subprocess.run([serial_python, "-m", "hpcopt", "sweep", str(cfg_s)], env=env(), check=True,
                   timeout=300, capture_output=True)
    with h5py.File(tmp_path / "p" / "out.h5", "r") as f:
        assert f.attrs["world_size"] == 3
    assert_same_rows(read_table(tmp_path / "p" / "out.h5", "tasks"),
                     read_table(tmp_path / "s" / "out.h5", "tasks"))
    for name in ("best",):
        with h5py.File(tmp_path / "p" / "out.h5", "r") as a, \
                h5py.File(tmp_path / "s" / "out.h5", "r") as b:
            assert {k: repr(v) for k, v in a[name].attrs.items()} == \
                {k: repr(v) for k, v in b[name].attrs.items()}


RESUME_SCRIPT = """
import sys
import numpy as np
from hpcopt.mpi.runtime import get_world
from hpcopt.store import schema
from hpcopt.store.dtypes import round_dtype
from hpcopt.store.resultfile import ResultStore, TableSpec

world = get_world(check_launcher=False)
path = sys.argv[1]
dtype = schema.with_status(round_dtype(4))
store = ResultStore(world, path)
store.create(kind="temper", config_text="", config_hash="h", seed=0,
             tables={"rounds": TableSpec(dtype, 20)})
store.close("interrupted")
store = ResultStore(world, path)
store.resume(world_size=world.size)
if world.is_root:                        # as tempering writes: rank 0 alone, vectors beside
    rows = np.zeros(5, dtype)
    rows["task_id"] = np.arange(5)
    rows["status"] = schema.OK
    rows["energy"] = np.arange(20.0).reshape(5, 4)
    store.write_rows("rounds", rows)
store.close("complete")
print("closed", world.rank, flush=True)
"""


def test_one_rank_writing_a_resumed_table_with_side_datasets_closes(tmp_path):
    """Before: the writing rank read the table's `vectors` attribute alone after the
    resume's collective attribute writes, and the collective close then hung for ever
    (tempering resumed under parallel HDF5)."""
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    proc = subprocess.run([mpiexec(), "-n", "2", PY, str(script), str(tmp_path / "r.h5")],
                          env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.count("closed") == 2, proc.stderr
    rows = read_table(tmp_path / "r.h5", "rounds")
    assert (rows["status"][:5] == schema.OK).all() and (rows["status"][5:] == 0).all()
    assert rows["energy"][:5].tolist() == np.arange(20.0).reshape(5, 4).tolist()
