"""The store's answer to a full file system: reserve, stop request, one retry (in-process;
tests/mpi/test_disk_full.py fills a real file system under mpiexec)."""

import errno
import shutil
from collections import namedtuple

import h5py
import pytest

from hpcopt.mpi import runtime
from hpcopt.mpi.runtime import get_world, stop_reason, stop_requested
from hpcopt.store import dtypes, schema, space
from hpcopt.store.resultfile import ResultStore, TableSpec
from hpcopt.store.space import RESERVE_BYTES, SpaceReserve, guard, is_disk_full, reserve_path


@pytest.fixture(autouse=True)
def no_stop():
    runtime.reset_stop()
    yield
    runtime.reset_stop()


def test_disk_full_errors_are_recognised():
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(RuntimeError("Can't write data (file write failed: ... errno = 28, "
                                     "error message = 'No space left on device')"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("No space left on device"))


def test_reserve_is_taken_and_given_back(tmp_path):
    reserve = SpaceReserve(tmp_path / "r.h5")
    reserve.take()
    assert reserve_path(tmp_path / "r.h5").stat().st_size == RESERVE_BYTES
    assert reserve.release() and not reserve_path(tmp_path / "r.h5").exists()
    assert not reserve.release()


def test_guard_turns_a_full_disk_into_a_stop_request(tmp_path):
    reserve = SpaceReserve(tmp_path / "r.h5")
    reserve.take()
    with guard(tmp_path / "journal"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert stop_requested() and "is full (writing" in stop_reason()
    assert str(tmp_path / "journal") in stop_reason()
    assert not reserve.path.exists()                  # freed for the checkpoint
    with pytest.raises(OSError, match="denied"):
        with guard(tmp_path / "journal"):
            raise OSError(errno.EACCES, "Permission denied")


def make_store(path):
    store = ResultStore(get_world(), path, parallel=False)
    store.create(kind="sweep", config_text="x = 1", config_hash="h", seed=0,
                 tables={"tasks": TableSpec(dtypes.sweep_dtype(1), 4)})
    return store


def test_a_write_that_fails_on_a_full_disk_stops_the_campaign_and_is_retried(tmp_path,
                                                                             monkeypatch):
    store = make_store(tmp_path / "r.h5")
    assert store.reserve.path.exists()
    real = h5py.Dataset.__setitem__
    failures = []

    def full_once(self, key, value):
        if not failures:
            failures.append(key)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", full_once)
    rows = schema.empty_rows(dtypes.sweep_dtype(1), [2])
    rows["status"] = schema.OK
    store.write_rows("tasks", rows)
    monkeypatch.undo()
    assert failures and stop_requested() and "is full" in stop_reason()
    assert not store.reserve.path.exists()
    store.close("interrupted")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert f["tasks"]["status"][2] == schema.OK and f.attrs["status"] == "interrupted"


def test_low_free_space_gives_up_the_reserve_before_the_write(tmp_path, monkeypatch):
    store = make_store(tmp_path / "r.h5")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 30, 1 << 30, 1000))
    store.flush()
    monkeypatch.undo()
    assert stop_requested() and not store.reserve.path.exists()
    store.close("interrupted")
    assert not reserve_path(tmp_path / "r.h5").exists()


def test_a_complete_campaign_leaves_no_reserve(tmp_path):
    make_store(tmp_path / "r.h5").close("complete")
    assert not reserve_path(tmp_path / "r.h5").exists() and not stop_requested()


def test_file_system_names_the_mount_point(tmp_path):
    assert space.file_system("/proc/self/status") == "/proc"
    assert space.file_system(tmp_path / "missing" / "r.h5") == space.file_system(tmp_path)
