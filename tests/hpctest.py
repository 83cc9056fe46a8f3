"""Helpers shared by the tests: run hpcopt as a user would (alone, under mpiexec)."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
OBJECTIVES = TESTS / "objectives"
SHARED = REPO.parent / "shared"
NIST = SHARED / "nist"
PY = sys.executable

#: every MPI test runs at these rank counts (3 ranks on 2 cores: oversubscribed on purpose);
#: `make test-mpio` repeats the MPI tests with parallel HDF5 at 3 ranks only (HPCOPT_TEST_RANKS)
RANKS = tuple(int(n) for n in os.environ.get("HPCOPT_TEST_RANKS", "1,2,3").split(","))


def mpiexec() -> str:
    here = Path(PY).parent / "mpiexec"
    return str(here) if here.exists() else "mpiexec"


def env(**extra) -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(OBJECTIVES), str(REPO), e.get("PYTHONPATH", "")])
    e.pop("SLURM_JOB_ID", None)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def command(args: list[str], n: int | None) -> list[str]:
    base = [PY, "-m", "hpcopt", *map(str, args)]
    return base if n is None else [mpiexec(), "-n", str(n), *base]


def run(args: list[str], n: int | None = None, *, timeout: float = 180, cwd=None,
        check: bool = False, **env_extra) -> subprocess.CompletedProcess:
    """Run hpcopt (singleton when n is None) with a hard timeout: a hang fails the test."""
    proc = subprocess.run(command(args, n), cwd=cwd, env=env(**env_extra), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"hpcopt {args} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                             f"stderr:\n{proc.stderr}")
    return proc


def start(args: list[str], n: int | None = None, *, cwd=None, **env_extra) -> subprocess.Popen:
    """Start hpcopt in its own process group (so tests can kill the launcher and its ranks)."""
    return subprocess.Popen(command(args, n), cwd=cwd, env=env(**env_extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@functools.cache
def launcher_drops_exit_code_after_a_signal() -> bool:
    """Debian's MPICH 4.0.2 mpiexec (the parallel-HDF5 venv's) forwards SIGTERM/SIGINT to the
    ranks and then returns 0 whatever they returned (seen at one rank, sometimes at two);
    the PyPI wheel's hydra 5 returns the ranks' code.  Probed once: a 1-rank job that exits 3
    on SIGTERM."""
    probe = ("import signal, sys, time; print(flush=True); "
             "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3)); time.sleep(60)")
    proc = subprocess.Popen([mpiexec(), "-n", "1", PY, "-c", probe], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    proc.stdout.readline()                      # its handler is installed
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60) == 0


_STOPPED_BY = re.compile(r"hpcopt: stopped by (Ctrl-C|SIG[A-Z0-9]+)")


def job_exit(proc: subprocess.Popen, err: str) -> int:
    """The exit code the ranks gave a job whose launcher was signalled: the launcher's own,
    unless it is one that drops the code (above) and hpcopt said it stopped by a signal, then
    the code that stop has (130 for Ctrl-C, else 3; hpcopt/errors.py)."""
    stopped = _STOPPED_BY.search(err)
    if proc.returncode == 0 and stopped and launcher_drops_exit_code_after_a_signal():
        return 130 if stopped.group(1) == "Ctrl-C" else 3
    return proc.returncode


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def wait_for_rows(path: Path, table: str, n_rows: int, timeout: float = 120) -> int:
    """Poll a result file (read-only, no locking) until >= n_rows rows are done."""
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        try:
            with h5py.File(path, "r", locking=False) as f:
                done = int(np.count_nonzero(f[table]["status"] != 0))
        except (OSError, KeyError):
            done = 0
        if done >= n_rows:
            return done
        time.sleep(0.1)
    raise AssertionError(f"{path}: only {done} rows done after {timeout} s")


def joined_rows(f: h5py.File, table: str) -> np.ndarray:
    """Plain h5py, following docs/result-files.md: a table's rows with its vectors joined
    back (the `vectors` attribute: named columns or side datasets; none in format 1)."""
    ds = f[table]
    stored = ds[()]
    entries = json.loads(ds.attrs.get("vectors", "[]"))
    if not entries:
        return stored
    by_position = {e["position"]: e for e in entries}
    in_vectors = {c for e in entries for c in e.get("columns", [])}
    scalars = iter(n for n in stored.dtype.names if n not in in_vectors)
    fields, values = [], {}
    for position in range(len(stored.dtype.names) - len(in_vectors) + len(entries)):
        e = by_position.get(position)
        if e is None:
            name = next(scalars)
            fields.append((name, stored.dtype[name]))
            values[name] = stored[name]
        elif "columns" in e:
            v = np.stack([stored[c] for c in e["columns"]], axis=1)
            fields.append((e["field"], v.dtype, (v.shape[1],)))
            values[e["field"]] = v
        else:
            v = f[e["dataset"]][:len(stored)]
            fields.append((e["field"], v.dtype, v.shape[1:]))
            values[e["field"]] = v
    rows = np.zeros(len(stored), dtype=fields)
    for name, v in values.items():
        rows[name] = v
    return rows


def read_table(path: Path, table: str) -> np.ndarray:
    """Every row of a table as the campaign wrote it (plain h5py, vectors joined)."""
    with h5py.File(path, "r", locking=False) as f:
        return joined_rows(f, table)


def without_provenance(rows: np.ndarray) -> dict:
    """Columns that must not depend on rank count, farm mode or write path."""
    from hpcopt.store.schema import PROVENANCE_COLUMNS
    return {name: rows[name] for name in rows.dtype.names if name not in PROVENANCE_COLUMNS}


def assert_same_rows(a: np.ndarray, b: np.ndarray) -> None:
    ca, cb = without_provenance(a), without_provenance(b)
    assert ca.keys() == cb.keys()
    for name in ca:
        np.testing.assert_array_equal(ca[name], cb[name], err_msg=f"column {name}")


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
