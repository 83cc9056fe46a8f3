"""Companion files (log, lock, journal) are never opened through a planted link or FIFO."""

import os
import stat
import time

import pytest

from hpcopt.errors import ResultFileError
from hpcopt.store.companion import ensure_companion, open_companion


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
