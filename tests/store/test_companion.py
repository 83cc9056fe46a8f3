"""Companion files (log, lock, journal) are never opened through a planted link or FIFO."""

import os
import stat
import time

import pytest

from hpcopt.errors import ResultFileError
from hpcopt.store.companion import check_companion, ensure_companion, open_companion

from hpctest import RANKS, run, write_config


def test_regular_file_is_created_then_appended(tmp_path):
    path = tmp_path / "r.h5.log"
    with open_companion(path, "a") as f:
        f.write("one\n")
    with open_companion(path, "a") as f:
        f.write("two\n")
    assert path.read_text() == "one\ntwo\n"
    assert stat.S_ISREG(os.lstat(path).st_mode)
    with open_companion(path, "r+", encoding=None) as f:
        assert f.read() == b"one\ntwo\n"


@pytest.mark.parametrize("mode", ["a", "r+", "w"])
def test_symlinks_are_refused_never_followed(tmp_path, mode):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(ResultFileError, match="link: is a symbolic link"):
        open_companion(tmp_path / "link", mode)
    assert victim.read_text() == "precious\n"
    (tmp_path / "dangling").symlink_to(tmp_path / "created-through-link")
    with pytest.raises(ResultFileError, match="symbolic link"):
        ensure_companion(tmp_path / "dangling")
    assert not (tmp_path / "created-through-link").exists()


def test_fifo_device_and_directory_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    t0 = time.monotonic()
    for mode in ("a", "r+", "w"):
        with pytest.raises(ResultFileError, match="not a regular file"):
            open_companion(tmp_path / "fifo", mode)
    assert time.monotonic() - t0 < 5
    (tmp_path / "dir").mkdir()
    with pytest.raises(ResultFileError, match="not a regular file"):
        open_companion(tmp_path / "dir", "r+")
    with pytest.raises(ResultFileError, match="not a regular file"):
        ensure_companion("/dev/null")


def test_check_before_another_library_opens_it(tmp_path):
    check_companion(tmp_path / "missing.journal")
    assert not (tmp_path / "missing.journal").exists()          # checked, not created
    (tmp_path / "j").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ResultFileError, match="symbolic link"):
        check_companion(tmp_path / "j")
    os.mkfifo(tmp_path / "f")
    with pytest.raises(ResultFileError, match="not a regular file"):
        check_companion(tmp_path / "f")


HPO = """
[hpo]
sampler = "random"
n_trials = 3
[objective]
function = "testobj:quadratic"
[space]
x = { type = "uniform", low = -2.0, high = 2.0 }
y = { type = "uniform", low = -2.0, high = 2.0 }
[output]
path = "s.h5"
"""


@pytest.mark.mpi
@pytest.mark.parametrize("n", RANKS)
def test_hpo_journal_planted_as_a_symlink_is_refused(tmp_path, n):
    cfg = write_config(tmp_path / "s.toml", HPO)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "s.h5.journal").symlink_to(victim)
    proc = run(["hpo", cfg], n=n, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "s.h5.journal: is a symbolic link" in proc.stderr, \
        proc.stderr
    assert victim.read_text() == "precious\n" and not (tmp_path / "s.h5").exists()
