"""Optuna storage that many coordinators on many nodes can share (see docs/hpo-storage.md).

Default: Optuna's append-only journal file (:class:`JournalFileBackend`) with

* :class:`LinkLock`, an NFS-safe lock: a unique file linked to ``<journal>.lock`` with
  ``link(2)`` (atomic on every NFS version; a lost reply is detected through the link
  count), holder identity (host, pid, token) in the lock, immediate recovery of a lock
  whose holder died on this host, recovery after a grace period otherwise, and a
  release that never removes a lock it does not own;
* :class:`SafeJournalFileBackend`, which repairs a journal whose last write was cut
  short by a kill (a partial last line would otherwise poison every later reader).

An RDB URL (PostgreSQL/MySQL) is used as given. SQLite is only safe on a local disk.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path

from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from .config import StorageSpec

log = logging.getLogger(__name__)

HOST = socket.gethostname()
DEFAULT_GRACE = 30.0   # seconds a lock may look unchanged before it is taken as stale


def open_storage(spec: StorageSpec, *, lock_grace: float = DEFAULT_GRACE) -> BaseStorage:
    """The Optuna storage named by `spec` (journal file, RDB URL or in-memory)."""
    if spec.kind == "memory":
        return InMemoryStorage()
    if spec.kind == "rdb":
        # pool_pre_ping: cluster databases drop idle connections during long trials.
        return RDBStorage(spec.location, engine_kwargs={"pool_pre_ping": True})
    path = Path(spec.location)
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = SafeJournalFileBackend(str(path), lock_obj=LinkLock(str(path), grace=lock_grace))
    return JournalStorage(backend)


class LinkLock:
    """Mutual exclusion between processes on any hosts sharing a (network) file system.

    Protocol (the classic NFS lock-file recipe, as in open(2) and liblockfile):
    acquire writes ``<lock>.<host>.<pid>.<token>`` holding ``{"host", "pid", "token"}``
    and links it to ``<lock>``; success when link() returns 0 or the unique file's
    link count is 2 (the server did it but the reply was lost). The unique name is
    then removed; the lock keeps the content.
    """

    def __init__(self, target: str, *, grace: float = DEFAULT_GRACE, max_sleep: float = 0.2):
        self.lock_path = target + ".lock"
        self.grace = grace
        self.max_sleep = max_sleep
        self._token: str | None = None

    # -- protocol used by optuna's JournalFileBackend ----------------------------------------
    def acquire(self) -> bool:
        token = uuid.uuid4().hex
        mine = f"{self.lock_path}.{HOST}.{os.getpid()}.{token}"
        with open(mine, "w") as f:
            json.dump({"host": HOST, "pid": os.getpid(), "token": token}, f)
        try:
            self._wait_and_link(mine)
        finally:
            _unlink_quietly(mine)
        self._token = token
        return True

    def release(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        aside = f"{self.lock_path}.release.{uuid.uuid4().hex}"
        if not _rename(self.lock_path, aside):
            log.warning("journal lock %s vanished while held (broken as stale?)", self.lock_path)
            return
        holder = _read_holder(aside)
        if holder.get("token") != token:
            # Our lock was broken as stale and someone else holds it now: give it back.
            _restore(aside, self.lock_path)
            log.warning("journal lock %s was taken over while held; the holder's write may "
                        "have overlapped (increase the grace period?)", self.lock_path)
            return
        _unlink_quietly(aside)

    # -- internals ----------------------------------------------------------------------------
    def _wait_and_link(self, mine: str) -> None:
        sleep = 0.001
        seen_ident, seen_since = None, time.monotonic()
        while True:
            try:
                os.link(mine, self.lock_path)
                return
            except OSError as err:
                if err.errno != errno.EEXIST:
                    raise
                if os.stat(mine).st_nlink == 2:     # linked, reply lost
                    return
            ident, holder = _identity(self.lock_path)
            now = time.monotonic()
            if ident != seen_ident:
                seen_ident, seen_since = ident, now
            dead_here = holder.get("host") == HOST and not _pid_alive(holder.get("pid"))
            if ident is not None and (dead_here or now - seen_since > self.grace):
                self._break(ident, "holder died" if dead_here else
                            f"unchanged for {now - seen_since:.0f} s")
                sleep = 0.001
                continue
            time.sleep(sleep)
            sleep = min(2 * sleep, self.max_sleep)

    def _break(self, stale: str, why: str) -> None:
        """Remove the lock if it is still the stale one (never someone's fresh lock)."""
        aside = f"{self.lock_path}.stale.{uuid.uuid4().hex}"
        if not _rename(self.lock_path, aside):
            return                          # released or broken meanwhile
        if _identity(aside)[0] == stale:
            log.warning("removed stale journal lock %s (%s)", self.lock_path, why)
            _unlink_quietly(aside)
        else:
            _restore(aside, self.lock_path)


class SafeJournalFileBackend(JournalFileBackend):
    """Journal file whose appends first cut off a partial last line left by a killed writer."""

    def append_logs(self, logs: list[dict]) -> None:
        text = "\n".join(json.dumps(entry, separators=(",", ":")) for entry in logs) + "\n"
        self._lock.acquire()
        try:
            with open(self._file_path, "r+b") as f:
                _drop_partial_tail(f)
                f.seek(0, os.SEEK_END)
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        finally:
            self._lock.release()


def _drop_partial_tail(f) -> None:
    """Truncate `f` after its last newline (only a writer killed mid-write leaves more)."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return
    pos = size
    while pos > 0:
        start = max(0, pos - 65536)
        f.seek(start)
        chunk = f.read(pos - start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            f.truncate(start + cut + 1)
            log.warning("journal %s ended in a partial record; removed it", f.name)
            return
        pos = start
    f.truncate(0)


def _identity(path: str) -> tuple[str | None, dict]:
    """(identity, holder info) of a lock file; identity is None when there is no lock.

    Our locks are identified by their token; a foreign lock on the same path (Optuna's
    own symlink or open lock, which also exclude ours) by inode and mtime.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, {}
    holder = {} if os.path.islink(path) else _read_holder(path)
    token = holder.get("token")
    return (token if isinstance(token, str) else f"inode-{st.st_ino}-{st.st_mtime_ns}"), holder


def _read_holder(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True                         # unknown: never assume dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process whose parent has not reaped it yet (state Z) is dead for us."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _rename(src: str, dst: str) -> bool:
    try:
        os.rename(src, dst)
        return True
    except FileNotFoundError:
        return os.path.exists(dst)          # NFS: the reply to a done rename may be lost


def _restore(aside: str, lock_path: str) -> None:
    try:
        os.link(aside, lock_path)
    except FileExistsError:
        log.warning("journal lock %s: could not restore a lock taken by mistake", lock_path)
    _unlink_quietly(aside)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def describe(storage: BaseStorage) -> str:
    """A short human-readable name of the storage (for logs and the result file)."""
    if isinstance(storage, JournalStorage):
        return f"journal:{storage._backend._file_path}"   # noqa: SLF001 (display only)
    if isinstance(storage, RDBStorage):
        return f"rdb:{storage.engine.url.render_as_string(hide_password=True)}"
    return type(storage).__name__


__all__ = ["open_storage", "LinkLock", "SafeJournalFileBackend", "describe"]


def check_storage(spec, source: str) -> None:
    """Refuse a storage that cannot work before any MPI work (exit 2, key hpo.storage)."""
    from ..errors import ConfigError
    from ..store.resultfile import directory_problem

    def bad(problem: str) -> ConfigError:
        return ConfigError(problem, key="hpo.storage", source=source)

    if spec.kind == "journal":
        path = Path(spec.location)
        if path.exists() and not path.is_file():
            raise bad(f"{path} exists and is not a file")
        problem = directory_problem(path.parent)
        if problem:
            raise bad(f"unusable journal directory: {problem}")
    elif spec.kind == "rdb":
        try:
            from sqlalchemy.engine import make_url
            make_url(spec.location).get_dialect()
        except Exception as exc:  # noqa: BLE001 - any parse/dialect error is the user's URL
            raise bad(f"not a usable database URL ({type(exc).__name__}: {exc})") from None


def _load_study(spec, study_name: str):
    """The study `study_name` in the storage `spec`, or None (no storage file, no study)."""
    import optuna
    if spec.kind == "memory" or (spec.kind == "journal" and not Path(spec.location).exists()):
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=study_name, storage=open_storage(spec))
    except KeyError:
        return None


def existing_trials(spec, study_name: str) -> int:
    """How many trials the study already has (0 when it or its storage does not exist)."""
    study = _load_study(spec, study_name)
    return 0 if study is None else len(study.get_trials(deepcopy=False))


def study_problem(spec, study_name: str, result_path) -> str | None:
    """Why the result file `result_path` cannot continue `study_name` in `spec` (None if it
    can): the storage or the study is missing, or the study does not hold the file's trials
    (it was replaced or belongs to another campaign). Resuming then would start over."""
    import h5py
    import numpy as np
    if spec.kind == "memory":
        return ("the study was kept in memory and is gone; set [hpo] storage to a journal "
                "file or a database to resume")
    study = _load_study(spec, study_name)
    if study is None:
        return (f"study {study_name!r} is not in {spec.location} (the storage was deleted, "
                "moved or never written); start a new campaign instead (another -o path, or "
                "--force)")
    with h5py.File(result_path, "r", locking=False) as f:
        table = f["trials"]
        status = table.fields("status")[:]
        ids = table.fields("task_id")[:][status != 0]
        recorded = table.attrs.get("study_name")
    if isinstance(recorded, bytes):
        recorded = recorded.decode()
    if isinstance(recorded, str) and recorded != study_name:
        return (f"the result file belongs to study {recorded!r}, the config names "
                f"{study_name!r}")
    numbers = {t.number for t in study.get_trials(deepcopy=False)}
    missing = sorted(set(np.asarray(ids).tolist()) - numbers)
    if missing:
        return (f"study {study_name!r} in {spec.location} does not hold trials "
                f"{missing[:5]}{'...' if len(missing) > 5 else ''} of the result file: it was "
                "replaced or belongs to another campaign")
    return None
