"""The writer lock of a result file: one holder, named in the refusal, freed when it dies."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from hpcopt.errors import ResultFileError
from hpcopt.store.lock import acquire_writer_lock, lock_path

HOLD = textwrap.dedent("""
    import os, sys, time
    from hpcopt.store.lock import acquire_writer_lock
    lock = acquire_writer_lock(sys.argv[1])
    if sys.argv[2] == "fork":          # a child that outlives its parent must not keep the lock
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        print("locked", flush=True)
        os._exit(0)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def holder(result, how="60"):
    """Another process that takes the lock of `result` and keeps it (prints 'locked')."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(result), how],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def test_second_holder_is_refused_with_host_and_pid(tmp_path):
    result = tmp_path / "r.h5"
    proc = holder(result)
    try:
        with pytest.raises(ResultFileError) as err:
            acquire_writer_lock(result)
        text = str(err.value)
        assert str(result) in text and "another hpcopt run is writing" in text
        assert f"pid {proc.pid} on host {socket.gethostname()}" in text
    finally:
        stop(proc)


def test_lock_of_a_killed_holder_is_free_at_once(tmp_path):
    result = tmp_path / "r.h5"
    proc = holder(result)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert lock_path(result).exists()          # left behind by kill -9: must not block
    lock = acquire_writer_lock(result)
    assert json.loads(lock_path(result).read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock_path(result).exists()


def test_stale_lock_file_of_a_dead_process_does_not_block(tmp_path):
    result = tmp_path / "r.h5"
    lock_path(result).write_text(json.dumps({"host": socket.gethostname(), "pid": 999999999}))
    with acquire_writer_lock(result) as lock:
        assert lock.held
    lock_path(result).write_text("garbage, not JSON")
    acquire_writer_lock(result).release()


def test_holder_info_never_decides_only_the_kernel_lock_does(tmp_path):
    """A holder on another host cannot be checked by pid: the lock alone decides; the file
    only names the holder in the message."""
    result = tmp_path / "r.h5"
    proc = holder(result)
    try:
        # what a run on another node would have written (a pid that is dead here)
        with open(lock_path(result), "r+") as f:      # a second descriptor in *this* process
            f.write(json.dumps({"host": "node17", "pid": 999999999}) + "\n" * 40)
        with pytest.raises(ResultFileError, match="pid 999999999 on host node17"):
            acquire_writer_lock(result)
    finally:
        stop(proc)


def test_a_forked_child_of_the_holder_does_not_keep_the_lock(tmp_path):
    result = tmp_path / "r.h5"
    proc = holder(result, "fork")
    proc.wait(timeout=10)                     # the parent is gone, its child sleeps on
    try:
        acquire_writer_lock(result).release()
    finally:
        stop(proc)


def test_same_process_cannot_take_it_twice(tmp_path):
    result = tmp_path / "r.h5"
    lock = acquire_writer_lock(result)
    with pytest.raises(ResultFileError, match=f"pid {os.getpid()}"):
        acquire_writer_lock(result)
    # the refused second attempt did not drop the first lock (POSIX locks drop on any close)
    code = subprocess.run([sys.executable, "-c", HOLD, str(result), "0"],
                          capture_output=True, text=True, timeout=60)
    assert code.returncode != 0 and "another hpcopt run is writing" in code.stderr
    lock.release()
    lock.release()                            # idempotent
    acquire_writer_lock(result).release()


def test_planted_symlink_is_refused_and_its_target_untouched(tmp_path):
    result = tmp_path / "r.h5"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock_path(result).symlink_to(victim)
    with pytest.raises(ResultFileError, match="symbolic link"):
        acquire_writer_lock(result)
    assert victim.read_text() == "precious\n"
    dangling = tmp_path / "d.h5"
    lock_path(dangling).symlink_to(tmp_path / "would-be-created")
    with pytest.raises(ResultFileError, match="symbolic link"):
        acquire_writer_lock(dangling)
    assert not (tmp_path / "would-be-created").exists()


def test_fifo_or_directory_in_place_of_the_lock_is_refused_without_blocking(tmp_path):
    os.mkfifo(lock_path(tmp_path / "f.h5"))
    t0 = time.monotonic()
    with pytest.raises(ResultFileError, match="not a regular file"):
        acquire_writer_lock(tmp_path / "f.h5")
    assert time.monotonic() - t0 < 5
    lock_path(tmp_path / "d.h5").mkdir()
    with pytest.raises(ResultFileError, match="not a regular file"):
        acquire_writer_lock(tmp_path / "d.h5")
