"""Parallel HDF5 (driver="mpio") and serial h5py write the same file contents.

Runs in `make test-mpio` (a venv whose h5py has MPI); HPCOPT_SERIAL_PYTHON names the
serial venv's Python so both paths run the same campaign in one test.
"""

import os
import subprocess

import h5py
import pytest

from hpctest import assert_same_rows, command, env, read_table, write_config

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
