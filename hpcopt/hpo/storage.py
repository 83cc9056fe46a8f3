"""Optuna storage that many coordinators on many nodes can share (see docs/hpo-storage.md).

Default: Optuna's append-only journal file (:class:`JournalFileBackend`) with

* :class:`LinkLock`, an NFS-safe lock: a unique file linked to ``<journal>.lock`` with
  ``link(2)`` (atomic on every NFS version; a lost reply is detected through the link
  count), holder identity (host, pid, token) in the lock, immediate recovery of a lock
  whose holder died on this host, recovery after a grace period otherwise, and a
  release that never removes a lock it does not own;
* :class:`SafeJournalFileBackend`, which repairs a journal whose last write was cut
  short by a kill (a partial last line would otherwise poison every later reader);
* :class:`GroupCommitJournalStorage`, Optuna's JournalStorage with group commit (in
  deferred mode, operations on this process's own trials are applied at once in memory
  and written together: one locked append per batch instead of one per operation,
  one fsync per flush) and O(1) views of a study's trials (no scan of the whole history per ask).

An RDB URL (PostgreSQL/MySQL) is used as given. SQLite is only safe on a local disk.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Container
from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._storage import JournalOperation, JournalStorageReplayResult
from optuna.trial import FrozenTrial, TrialState

from ..store.companion import companion_fd
from .config import StorageSpec

log = logging.getLogger(__name__)

HOST = socket.gethostname()
DEFAULT_GRACE = 30.0   # seconds a lock may look unchanged before it is taken as stale


class StorageWriteError(OSError):
    """The study storage could not be written (e.g. ENOSPC): stop, nothing more is told."""


def open_storage(spec: StorageSpec, *, lock_grace: float = DEFAULT_GRACE,
                 read_only: bool = False) -> BaseStorage:
    """The Optuna storage named by `spec` (journal file, RDB URL or in-memory).

    A journal is opened as a :class:`GroupCommitJournalStorage`; `read_only` gives a
    replica that refuses writes (workers that run the sampler on their own copy)."""
    if spec.kind == "memory":
        return MemoryStorage()
    if spec.kind == "rdb":
        # pool_pre_ping: cluster databases drop idle connections during long trials.
        return RDBStorage(spec.location, engine_kwargs={"pool_pre_ping": True})
    path = Path(spec.location)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    backend = SafeJournalFileBackend(str(path), lock_obj=LinkLock(str(path), grace=lock_grace))
    return GroupCommitJournalStorage(backend, read_only=read_only)


class MemoryStorage(InMemoryStorage):
    """Optuna's InMemoryStorage (``storage = "memory"``) with a trial created whole.

    InMemoryStorage copies a trial on every write (readers hold the stored object
    itself) and deep-copies a template trial; a trial created and then given its params
    and attributes one by one was copied 15 times, a third of what a random study's
    coordinator spends per trial."""

    def create_running_trial(self, study_id: int, params: dict[str, Any],
                             distributions: dict, user_attrs: dict[str, Any]) -> int:
        """A new RUNNING trial holding `params` (external values) and `user_attrs`."""
        with self._lock:   # reentrant: nobody reads the new trial before it is filled in
            trial_id = self.create_new_trial(study_id)
            trial = self.get_trial(trial_id)       # the stored object, not shared yet
            trial.params, trial.distributions = dict(params), dict(distributions)
            trial.user_attrs = dict(user_attrs)
        return trial_id


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
        try:
            # a new file of our own: never through a link planted under that name
            fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with open(fd, "w") as f:
                json.dump({"host": HOST, "pid": os.getpid(), "token": token}, f)
        except OSError:
            _unlink_quietly(mine)          # a full disk must not leave it behind
            raise
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
            with open(companion_fd(self._file_path, "r+"), "r+b") as f:
                _drop_partial_tail(f)
                f.seek(0, os.SEEK_END)
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        finally:
            self._lock.release()


#: operations on this process's own trials (and study attributes) that commute with every
#: other process's operations, so they may be applied in memory first and written later.
#: Creating a trial (its number is its position in the log) and claiming a WAITING trial
#: (first claim wins) are ordered: they flush the batch and go to the file at once.
_DEFERRABLE = frozenset({JournalOperation.SET_STUDY_USER_ATTR,
                         JournalOperation.SET_STUDY_SYSTEM_ATTR,
                         JournalOperation.SET_TRIAL_PARAM,
                         JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE,
                         JournalOperation.SET_TRIAL_USER_ATTR,
                         JournalOperation.SET_TRIAL_SYSTEM_ATTR})


def _deferrable(log: dict) -> bool:
    op = log["op_code"]
    if op == JournalOperation.SET_TRIAL_STATE_VALUES:
        return TrialState(log["state"]).is_finished()
    return op in _DEFERRABLE


class _IndexedReplay(JournalStorageReplayResult):
    """Optuna's replay result plus, per study, the trials in number order and the numbers
    of WAITING and RUNNING trials, kept up to date as logs are applied (Optuna's own
    get_all_trials walks every trial of the study on every call)."""

    def __init__(self, worker_id_prefix: str) -> None:
        super().__init__(worker_id_prefix)
        self.by_number: dict[int, list[FrozenTrial]] = {}
        self.in_state: dict[tuple[int, TrialState], dict[int, None]] = {}

    def apply_logs(self, logs) -> None:
        for log in logs:
            n_before = len(self._trials)
            super().apply_logs((log,))
            if log["op_code"] == JournalOperation.CREATE_TRIAL:
                if len(self._trials) == n_before:
                    continue
                trial_id = n_before
            elif "trial_id" in log:
                trial_id = log["trial_id"]
            else:
                continue
            trial = self._trials.get(trial_id)
            if trial is not None:
                self._index(self._trial_id_to_study_id[trial_id], trial)

    def _index(self, study_id: int, trial: FrozenTrial) -> None:
        trials = self.by_number.setdefault(study_id, [])
        if trial.number == len(trials):
            trials.append(trial)
        else:
            trials[trial.number] = trial
        for state in (TrialState.WAITING, TrialState.RUNNING):
            numbers = self.in_state.setdefault((study_id, state), {})
            if trial.state == state:
                numbers[trial.number] = None
            else:
                numbers.pop(trial.number, None)

    def get_all_trials(self, study_id: int, states: Container[TrialState] | None
                       ) -> list[FrozenTrial]:
        if study_id not in self._studies:
            return super().get_all_trials(study_id, states)      # raises KeyError
        trials = self.by_number.get(study_id, [])
        if states is None:
            return list(trials)
        wanted = set(states)
        if wanted <= {TrialState.WAITING, TrialState.RUNNING}:
            numbers = sorted(n for s in wanted for n in self.in_state.get((study_id, s), ()))
            return [trials[n] for n in numbers]
        return [t for t in trials if t.state in wanted]


class GroupCommitJournalStorage(JournalStorage):
    """Optuna's JournalStorage with group commit and fast trial views.

    Normally every operation is written and fsynced at once (as in Optuna). After
    :meth:`defer` (True), operations that commute with other processes' (see
    ``_DEFERRABLE``) are applied to this process's view at once and kept; the next
    ordered operation (creating or claiming a trial) appends all of them with it in one
    locked append, and :meth:`flush` appends what is left and fsyncs once for everything
    since the last flush. Kept operations are not visible to other processes and a kill
    loses them; appended ones are visible at once and only a node crash before the
    flush could lose them: callers flush before they record anything elsewhere.

    In deferred mode reads trust a view up to READ_INTERVAL old (one read of the file per
    interval instead of one per call); creating or claiming a trial, and the first read
    after a flush, always read the file first.

    A failed write (ENOSPC, EIO, a quota) raises :class:`StorageWriteError` and every
    later write raises it again: nothing is written after a failure.
    """

    def __init__(self, backend: "SafeJournalFileBackend", *, read_only: bool = False) -> None:
        # JournalStorage.__init__ with the indexed replay result (no snapshot backend here)
        self._worker_id_prefix = str(uuid.uuid4()) + "-"
        self._backend = backend
        self._thread_lock = threading.Lock()
        self._replay_result = _IndexedReplay(self._worker_id_prefix)
        self._read_only = read_only
        self._deferred = False
        self._pending: list[dict] = []
        self._failed: BaseException | None = None
        self.n_appends = 0          # locked appends written (benchmarks, tests)
        self._synced_at = -1.0      # monotonic time of the last read of the file
        self._unsynced = False      # appended since the last fsync (deferred mode)
        self._must_sync = True      # a write of ours is still to be read back
        with self._thread_lock:
            self._sync_with_backend()

    #: in deferred mode, reads trust a view at most this old (seconds): ordered operations
    #: (creating and claiming trials) always read the file under the lock first
    READ_INTERVAL = 0.05

    def _sync_with_backend(self) -> None:
        now = time.monotonic()
        if (self._deferred and not self._must_sync
                and now - self._synced_at < self.READ_INTERVAL):
            return                  # one open+read of the file per interval, not per call
        super()._sync_with_backend()
        self._synced_at, self._must_sync = now, False

    # -- group commit ------------------------------------------------------------------------
    def defer(self, on: bool = True) -> None:
        """Keep commuting operations until flush() (True), or write each at once (False)."""
        if not on:
            self.flush()
        self._deferred = on

    def flush(self) -> None:
        """Write the kept operations and fsync the journal (one locked append, one fsync
        for everything written since the last flush); no-op when there is nothing. The
        next read then reads the file again."""
        with self._thread_lock:
            if self._pending:
                self._commit([], sync=True)
            elif self._unsynced:
                self._check_writable()
                try:
                    fd = os.open(self.path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError as exc:
                    self._failed = exc
                    raise StorageWriteError(exc.errno or errno.EIO,
                                            f"cannot write the study journal {self.path}: "
                                            f"{exc.strerror or exc}") from exc
                self._unsynced = False
            self._must_sync = True

    @property
    def n_pending(self) -> int:
        return len(self._pending)

    @property
    def failed(self) -> BaseException | None:
        """The write error that stopped this storage, if any."""
        return self._failed

    @property
    def path(self) -> str:
        return self._backend._file_path   # noqa: SLF001

    def _write_log(self, op_code: int, extra_fields: dict[str, Any]) -> None:
        if self._read_only:
            raise PermissionError(f"{self.path}: this journal replica is read-only")
        log = {"op_code": op_code, "worker_id": self._replay_result.worker_id, **extra_fields}
        if self._deferred and _deferrable(log):
            self._check_writable()
            replay = self._replay_result
            try:
                replay.apply_logs([log])       # visible here now; read back later: skipped
            finally:
                replay.log_number_read -= 1
            self._pending.append(log)
            return
        # deferred mode: an ordered record (a new trial) is appended under the lock now and
        # fsynced with the next flush; callers flush before they record results elsewhere
        self._commit([log], sync=not self._deferred)

    def _check_writable(self) -> None:
        if self._failed is not None:
            raise StorageWriteError(getattr(self._failed, "errno", None) or errno.EIO,
                                    f"journal {self.path} is not writable after an earlier "
                                    f"failure ({self._failed})")

    def _commit(self, trailing: list[dict], sync: bool = True) -> None:
        """Append the kept logs and then `trailing` under the lock (caller holds the thread
        lock), and fsync if `sync`. The kept ones were applied already: the read position
        skips over them; the trailing ones are read back by the caller's next sync, in log
        order. Without fsync the records are visible to every other process at once (the
        page cache; NFS writes them back on close), only a node crash could lose them."""
        if not self._pending and not trailing:
            return
        self._check_writable()
        backend, replay = self._backend, self._replay_result
        kept = "".join(json.dumps(entry, separators=(",", ":")) + "\n"
                       for entry in self._pending).encode("utf-8")
        rest = "".join(json.dumps(entry, separators=(",", ":")) + "\n"
                       for entry in trailing).encode("utf-8")
        try:
            backend._lock.acquire()           # noqa: SLF001  (writes a small file too)
        except OSError as exc:
            self._failed = exc
            raise StorageWriteError(exc.errno or errno.EIO,
                                    f"cannot lock the study journal {self.path}: "
                                    f"{exc.strerror or exc}") from exc
        try:
            # unbuffered: a failed write must not come back from close() as a second error
            with open(companion_fd(backend._file_path, "r+"), "r+b",   # noqa: SLF001
                      buffering=0) as f:
                _drop_partial_tail(f)
                self._must_sync = True
                self._sync_with_backend()     # others' logs up to the end (we hold the lock)
                end = f.seek(0, os.SEEK_END)
                n_read = replay.log_number_read
                if backend._log_number_offset.get(n_read) != end:   # noqa: SLF001
                    raise ValueError(f"journal {self.path} has an unreadable record before "
                                     f"byte {end}; it cannot be appended to")
                try:
                    data = memoryview(kept + rest)
                    while data:
                        data = data[f.write(data):]
                    if sync:
                        os.fsync(f.fileno())
                except OSError as exc:
                    self._failed = exc
                    try:                      # leave no partial record behind if we can
                        f.truncate(end)
                    except OSError:
                        pass
                    raise StorageWriteError(exc.errno or errno.EIO,
                                            f"cannot write the study journal {self.path}: "
                                            f"{exc.strerror or exc}") from exc
        except StorageWriteError:
            raise
        except OSError as exc:                # opening or repairing the file failed
            self._failed = exc
            raise StorageWriteError(exc.errno or errno.EIO,
                                    f"cannot write the study journal {self.path}: "
                                    f"{exc.strerror or exc}") from exc
        finally:
            backend._lock.release()           # noqa: SLF001
        self.n_appends += 1
        self._unsynced = not sync
        self._must_sync = bool(trailing)      # the caller reads its own record back
        n_kept = len(self._pending)
        backend._log_number_offset[n_read + n_kept] = end + len(kept)   # noqa: SLF001
        replay.log_number_read = n_read + n_kept
        self._pending = []

    # -- fast views ---------------------------------------------------------------------------
    def trials_from(self, study_id: int, start: int) -> list[FrozenTrial]:
        """The study's trials numbered `start` and up (no copy of the earlier ones)."""
        with self._thread_lock:
            self._sync_with_backend()
            if study_id not in self._replay_result._studies:    # noqa: SLF001
                raise KeyError(study_id)
            return self._replay_result.by_number.get(study_id, [])[start:]

    def n_trials(self, study_id: int) -> int:
        with self._thread_lock:
            self._sync_with_backend()
            return len(self._replay_result.by_number.get(study_id, []))


def trials_from(storage: BaseStorage, study_id: int, start: int) -> list[FrozenTrial]:
    """Trials numbered `start` and up, without building the whole list where the storage
    allows it (the journal here; Optuna's InMemoryStorage returns its own list)."""
    if isinstance(storage, GroupCommitJournalStorage):
        return storage.trials_from(study_id, start)
    if isinstance(storage, InMemoryStorage):   # its get_all_trials copies the whole list
        study = getattr(storage, "_studies", {}).get(study_id)
        trials = getattr(study, "trials", None)
        if isinstance(trials, list):
            return trials[start:]
    return storage.get_all_trials(study_id, deepcopy=False)[start:]


def flush(storage: BaseStorage) -> None:
    """Write what a group-commit storage keeps (no-op for the others)."""
    if isinstance(storage, GroupCommitJournalStorage):
        storage.flush()


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


__all__ = ["open_storage", "LinkLock", "SafeJournalFileBackend", "GroupCommitJournalStorage",
           "StorageWriteError", "describe", "flush", "trials_from"]


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
