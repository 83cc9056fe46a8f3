# hpcopt: every target installs what it needs first (idempotent: a stamp file per venv).
#   make demo         run the main job (an XPCS fit) under `mpiexec -n 2` on bundled data
#   make test         run all tests (MPI tests under mpiexec at 1, 2 and 3 ranks)
#   make install      .venv with MPICH (PyPI wheel: mpiexec + libmpi), mpi4py, h5py and the rest
#   make install-mpio .venv-mpio with Debian's MPICH + parallel HDF5, mpi4py and h5py built from source
#   make test-mpio    the store and write-path MPI tests again with the parallel-HDF5 h5py
#   make test-nojit   the kernel, model, fitting and tempering tests with NUMBA_DISABLE_JIT=1
#   make bench        benchmarks; figures to bench/results.json
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
MPIO_VENV := .venv-mpio
STAMP := $(VENV)/.hpcopt-installed
MPIO_STAMP := $(MPIO_VENV)/.hpcopt-installed
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: install install-mpio demo test test-mpio test-nojit bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hpcopt needs Python >= 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_QUIET) --upgrade pip
	# MPI first: the mpich wheel provides mpiexec and the libmpi that the mpi4py wheel loads.
	$(VENV)/bin/pip install $(PIP_QUIET) 'mpich>=4.1'
	$(VENV)/bin/pip install $(PIP_QUIET) -e '.[test]'
	$(VENV)/bin/mpiexec -n 2 $(VENV)/bin/python -c 'from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2'
	touch $@

# Parallel HDF5: no PyPI wheel has it, so Debian's MPICH + HDF5 and source builds (about 8 min).
$(MPIO_STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hpcopt needs Python >= 3.11 (set PYTHON=...)")'
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    mpich libmpich-dev libhdf5-mpich-dev pkg-config
	$(PYTHON) -m venv $(MPIO_VENV)
	$(MPIO_VENV)/bin/pip install $(PIP_QUIET) --upgrade pip 'setuptools>=68' wheel 'cython>=3' pkgconfig numpy
	MPICC=/usr/bin/mpicc.mpich $(MPIO_VENV)/bin/pip install $(PIP_QUIET) --no-binary=mpi4py 'mpi4py>=3.1'
	CC=/usr/bin/mpicc.mpich HDF5_MPI=ON HDF5_PKGCONFIG_NAME=hdf5-mpich \
	    $(MPIO_VENV)/bin/pip install $(PIP_QUIET) --no-binary=h5py --no-build-isolation 'h5py>=3.9'
	$(MPIO_VENV)/bin/pip install $(PIP_QUIET) -e '.[test]'
	# a wrapper, not a symlink: hydra finds its proxy next to the path it was started as
	printf '#!/bin/sh\nexec /usr/bin/mpiexec.mpich "$$@"\n' > $(MPIO_VENV)/bin/mpiexec
	chmod +x $(MPIO_VENV)/bin/mpiexec
	$(MPIO_VENV)/bin/python -c 'import h5py; assert h5py.get_config().mpi, "h5py without MPI"'
	touch $@

install-mpio: $(MPIO_STAMP)

demo: $(STAMP)
	$(VENV)/bin/mpiexec -n 2 $(VENV)/bin/hpcopt demo

# two pytest-xdist workers: an MPI test keeps about one of the 2 cores busy (its ranks wait
# quietly), so another test runs beside it; the SLURM tests stay on one worker
# (tests/conftest.py). TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/python -m pytest -ra -m "not mpio" -n $(TEST_WORKERS)

# the write paths again with h5py on parallel HDF5 (every rank writes its rows, driver="mpio"):
# the store tests (files compared to the serial venv's) and the MPI tests of campaigns that
# write, stop, resume and fail, at 3 ranks (make test runs all MPI tests at 1, 2 and 3 ranks
# with the serial h5py; wait policies, compile caches and start-up signals do not touch
# the write path)
MPIO_TESTS := tests/store tests/mpi/test_sweep_farm.py tests/mpi/test_temper_mpi.py \
    tests/mpi/test_hpo_mpi.py tests/mpi/test_pbt_mpi.py tests/mpi/test_fit_mpi.py \
    tests/mpi/test_disk_full.py tests/mpi/test_writer_lock.py tests/mpi/test_faults.py \
    tests/mpi/test_signals.py
test-mpio: $(STAMP) $(MPIO_STAMP)
	HPCOPT_SERIAL_PYTHON=$(abspath $(VENV))/bin/python HPCOPT_TEST_RANKS=3 \
	    $(MPIO_VENV)/bin/python -m pytest -ra -m "mpio or mpi" -n $(TEST_WORKERS) $(MPIO_TESTS) \
	    --deselect "tests/mpi/test_signals.py::test_stop_signal_at_any_moment_of_start_up_gives_a_documented_outcome"

# the compiled kernels' Python source runs too (coverage of what numba compiles)
test-nojit: $(STAMP)
	NUMBA_DISABLE_JIT=1 $(VENV)/bin/python -m pytest -ra -q tests/kernels tests/models \
	    tests/sweep tests/temper

bench: $(STAMP)
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) $(MPIO_VENV) build *.egg-info
