import json
import multiprocessing
import os
import subprocess
import time

import optuna
from optuna.trial import TrialState
import pytest
from hpo_helpers import BRANIN_SPACE, drive, settings, space_from

from hpcopt.hpo.config import StorageSpec
from hpcopt.hpo.objective import PythonRunner
from hpcopt.toys.objectives import branin
from hpcopt.hpo.policy import A_INTERRUPTED, HpoPolicy
from hpcopt.hpo.storage import LinkLock, SafeJournalFileBackend, open_storage
from hpcopt.hpo.trials import TrialOutcome

FORK = multiprocessing.get_context("fork")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _write_lock(path, **holder):
    with open(path, "w") as f:
        json.dump(holder, f)


# -- the lock ---------------------------------------------------------------------------------

def _count_with_lock(target, n):
    lock = LinkLock(target)
    for _ in range(n):
        lock.acquire()
        try:                                   # a read-modify-write race without the lock
            with open(target) as f:
                value = int(f.read())
            with open(target, "w") as f:
                f.write(str(value + 1))
        finally:
            lock.release()


def test_link_lock_excludes_processes(tmp_path):
    target = tmp_path / "counter"
    target.write_text("0")
    procs = [FORK.Process(target=_count_with_lock, args=(str(target), 150)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert target.read_text() == "600"
    assert sorted(os.listdir(tmp_path)) == ["counter"]      # no lock or temp files left


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_at_once(tmp_path):
    target = str(tmp_path / "j")
    _write_lock(target + ".lock", host=os.uname().nodename, pid=_dead_pid(), token="old")
    lock = LinkLock(target, grace=600)
    t0 = time.perf_counter()
    lock.acquire()
    assert time.perf_counter() - t0 < 5
    assert json.load(open(target + ".lock"))["pid"] == os.getpid()
    lock.release()
    assert not os.path.exists(target + ".lock")


def test_a_lock_of_another_host_is_broken_after_the_grace_period(tmp_path):
    target = str(tmp_path / "j")
    _write_lock(target + ".lock", host="elsewhere", pid=1, token="remote")
    lock = LinkLock(target, grace=0.3)
    t0 = time.perf_counter()
    lock.acquire()
    assert time.perf_counter() - t0 >= 0.3
    lock.release()


def test_release_never_removes_a_lock_it_does_not_own(tmp_path):
    target = str(tmp_path / "j")
    lock = LinkLock(target)
    lock.acquire()
    os.unlink(target + ".lock")                     # broken as stale by someone ...
    _write_lock(target + ".lock", host="elsewhere", pid=1, token="theirs")   # ... who holds it
    lock.release()
    assert json.load(open(target + ".lock"))["token"] == "theirs"


# -- the journal --------------------------------------------------------------------------------

def test_a_partial_last_record_from_a_killed_writer_is_repaired(tmp_path):
    path = tmp_path / "s.journal"
    storage = open_storage(StorageSpec("journal", str(path)))
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    with open(path, "ab") as f:
        f.write(b'{"op_code":4,"worker_id":"dead","study_id":0,"datetime_st')   # cut short
    backend = SafeJournalFileBackend(str(path), lock_obj=LinkLock(str(path)))
    study2 = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(backend))
    study2.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    fresh = optuna.load_study(study_name="s", storage=open_storage(
        StorageSpec("journal", str(path))))
    assert [t.number for t in fresh.trials] == [0, 1, 2, 3, 4]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in fresh.trials)
    for line in path.read_bytes().splitlines():
        json.loads(line)


# -- concurrent coordinators -------------------------------------------------------------------

def _coordinator(journal, stream, n_trials):
    space = space_from(BRANIN_SPACE)
    s = settings(storage=StorageSpec("journal", journal), n_trials=n_trials, sampler="tpe",
                 n_startup_trials=5)
    policy = HpoPolicy(s, space, seed=0, stream=stream, n_workers=2, resume=True)
    drive(policy, PythonRunner(_slow_branin), n_workers=2)


def _slow_branin(params):
    time.sleep(0.01)                           # so that the coordinators overlap
    return branin(params)


def test_concurrent_coordinators_lose_and_duplicate_no_trial(tmp_path):
    journal = str(tmp_path / "shared.journal")
    procs = [FORK.Process(target=_coordinator, args=(journal, k, 40)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    study = optuna.load_study(study_name="hpcopt", storage=open_storage(
        StorageSpec("journal", journal)))
    trials = study.trials
    assert [t.number for t in trials] == list(range(len(trials)))         # unique, no gaps
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    others = [t for t in trials if t.state != optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 40                                          # the global budget, exactly
    assert all(t.user_attrs.get("hpcopt_over_budget") for t in others)
    owners = {t.user_attrs["hpcopt_owner"] for t in complete}
    assert len(owners) >= 2                                             # they did share it
    assert len({(t.params["x1"], t.params["x2"]) for t in complete}) == 40   # no repeated point
    for line in open(journal, "rb"):
        json.loads(line)                                                # no interleaved writes


def _killed_coordinator(journal, conn):
    space = space_from(BRANIN_SPACE)
    policy = HpoPolicy(settings(storage=StorageSpec("journal", journal), n_trials=8), space,
                       seed=4, n_workers=3)
    specs = [policy.ask() for _ in range(3)]
    done = []
    for spec in specs[:1]:
        done += policy.tell_result(TrialOutcome(spec.number, "complete", branin(spec.params)))
    more = policy.ask()
    done += policy.tell_result(TrialOutcome(more.number, "complete", branin(more.params)))
    policy.flush()                            # group commit: results are durable once flushed
    conn.send([(r.number, r.value) for r in done] + [("running", s.params) for s in specs[1:]])
    os._exit(0)                               # killed: two trials stay RUNNING in the journal


def test_resume_after_a_kill_keeps_finished_trials_and_reruns_interrupted_ones(tmp_path):
    journal = str(tmp_path / "s.journal")
    parent, child = FORK.Pipe()
    proc = FORK.Process(target=_killed_coordinator, args=(journal, child))
    proc.start()
    sent = parent.recv()
    proc.join(30)
    finished = dict(x for x in sent if x[0] != "running")
    interrupted = [p for tag, p in sent if tag == "running"]
    space = space_from(BRANIN_SPACE)
    policy = HpoPolicy(settings(storage=StorageSpec("journal", journal), n_trials=8), space,
                       seed=4, resume=True)
    records = drive(policy, PythonRunner(branin))
    assert [r.params for r in records[:2]] == interrupted                  # re-run first
    study = policy.study
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 8
    for number, value in finished.items():                               # nothing lost
        assert study.trials[number].value == value
    reaped = [t for t in study.trials if t.user_attrs.get(A_INTERRUPTED)]
    assert len(reaped) == 2 and all("gone" in t.user_attrs["hpcopt_error"] for t in reaped)
    assert len(policy.finished_records()) == 8


@pytest.mark.parametrize("kind", ["memory", "journal"])
def test_open_storage_kinds(tmp_path, kind):
    spec = StorageSpec(kind, str(tmp_path / "x" / "j.journal") if kind == "journal" else "")
    storage = open_storage(spec)
    optuna.create_study(storage=storage).optimize(lambda t: 1.0, n_trials=1)
    assert (tmp_path / "x" / "j.journal").exists() == (kind == "journal")


def test_a_memory_trial_created_whole_equals_one_written_value_by_value():
    """MemoryStorage.create_running_trial stores what create_new_trial + set_trial_param +
    set_trial_user_attr store, and the trial stays Optuna's to copy and finish."""
    dists = {"x": optuna.distributions.FloatDistribution(-5, 5),
             "n": optuna.distributions.IntDistribution(1, 64, log=True),
             "c": optuna.distributions.CategoricalDistribution(["a", "b"])}
    params = {"x": 1.25, "n": 7, "c": "b"}
    attrs = {"owner": "o1", "drawn": "rank 0"}
    trials = []
    for whole in (True, False):
        storage = open_storage(StorageSpec("memory", ""))
        study = optuna.create_study(storage=storage)
        sid = study._study_id
        storage.create_new_trial(sid)                        # a trial before it
        if whole:
            tid = storage.create_running_trial(sid, params, dists, attrs)
        else:
            tid = storage.create_new_trial(sid)
            for name, value in params.items():
                storage.set_trial_param(tid, name, dists[name].to_internal_repr(value),
                                        dists[name])
            for key, value in attrs.items():
                storage.set_trial_user_attr(tid, key, value)
        before = storage.get_trial(tid)
        storage.set_trial_user_attr(tid, "run", 1)            # copy-on-write, as Optuna's
        study.tell(before.number, 2.0)
        assert "run" not in before.user_attrs and before.state == TrialState.RUNNING
        trials.append(storage.get_trial(tid))
    whole, by_value = trials
    for field in ("number", "params", "distributions", "user_attrs", "state", "value"):
        assert getattr(whole, field) == getattr(by_value, field), field
    assert whole.number == 1 and whole.value == 2.0
    assert study.best_trial.number == 1


# -- group commit and a journal that cannot be written ---------------------------------------

def test_group_commit_writes_one_append_per_batch_and_readers_see_everything(tmp_path):
    path = tmp_path / "s.journal"
    storage = open_storage(StorageSpec("journal", str(path)))
    storage.defer(True)
    study = optuna.create_study(study_name="s", storage=storage)
    before = storage.n_appends
    for i in range(20):
        trial = study.ask()                            # creating a trial: ordered, written now
        trial.suggest_float("x", 0, 1)                 # kept
        trial.set_user_attr("i", i)                    # kept
        study.tell(trial, float(i))                    # kept, written with the next create
    storage.flush()
    assert storage.n_appends - before == 21            # one per trial (+ the last flush)
    fresh = optuna.load_study(study_name="s", storage=open_storage(
        StorageSpec("journal", str(path))))
    assert [(t.value, t.user_attrs["i"]) for t in fresh.trials] == [(float(i), i)
                                                                     for i in range(20)]
    assert [t.params for t in fresh.trials] == [t.params for t in study.trials]


def test_kept_operations_of_two_writers_interleave_correctly(tmp_path):
    path = str(tmp_path / "s.journal")
    a, b = (open_storage(StorageSpec("journal", path)) for _ in range(2))
    for storage in (a, b):
        storage.defer(True)
        storage.READ_INTERVAL = 0.0     # see the other writer's records at once
    sa = optuna.create_study(study_name="s", storage=a)
    sb = optuna.load_study(study_name="s", storage=b)
    ta, tb = sa.ask(), sb.ask()                        # numbers 0 and 1
    ta.suggest_float("x", 0, 1)
    tb.suggest_float("x", 0, 1)
    sb.tell(tb, 2.0)
    sa.tell(ta, 1.0)
    b.flush()
    a.flush()
    for reader in (a, b, open_storage(StorageSpec("journal", path))):
        trials = optuna.load_study(study_name="s", storage=reader).trials
        assert [(t.number, t.value) for t in trials] == [(0, 1.0), (1, 2.0)]


def _full_disk_run(journal, n_ok, conn):
    """A coordinator whose journal fsync fails with ENOSPC after `n_ok` calls; sends the
    numbers of the records it kept (HpoSource's rule: flush, then write rows), exits."""
    import errno
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)
    os.fsync = fsync
    policy = HpoPolicy(settings(storage=journal, n_trials=30), space_from(BRANIN_SPACE), seed=1)
    kept, pending = [], []
    for _ in range(200):
        spec = policy.ask()
        if spec is None:
            break
        pending += policy.tell_result(TrialOutcome(spec.number, "complete",
                                                   branin(spec.params)))
        if policy.flush():
            kept += pending
        pending = []
    conn.send((kept and [r.number for r in kept], policy.storage_error,
               policy.ask() is None and policy.close() == []))
    os._exit(0)


def test_a_full_disk_stops_the_policy_and_resume_tells_nothing_twice(tmp_path):
    """Issue 13 item 16, the policy's side: the journal write fails -> stop cleanly; rows
    are only kept for trials the storage holds; the resumed study runs each trial once."""
    journal = StorageSpec("journal", str(tmp_path / "s.journal"))
    parent, child = FORK.Pipe()
    proc = FORK.Process(target=_full_disk_run, args=(journal, 12, child))
    proc.start()
    kept, error, stopped = parent.recv()
    proc.join(30)
    assert error and "No space left" in error and stopped
    assert 5 <= len(kept) <= 12
    resumed = HpoPolicy(settings(storage=journal, n_trials=30), space_from(BRANIN_SPACE),
                        seed=1, resume=True)
    records = drive(resumed, PythonRunner(branin))
    numbers = kept + [r.number for r in records]
    assert len(numbers) == len(set(numbers))           # nothing told twice
    complete = [t for t in resumed.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 30 and set(kept) <= {t.number for t in complete}
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 30


def test_a_journal_replaced_by_a_link_is_never_written_through(tmp_path):
    """A symbolic link planted where the journal is, after the campaign started: the next
    append refuses it (exit 2 error) and the link's target stays untouched."""
    from hpcopt.errors import ResultFileError
    journal = tmp_path / "study.h5.journal"
    storage = open_storage(StorageSpec("journal", str(journal)))
    optuna.create_study(study_name="s", storage=storage)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    journal.unlink()
    journal.symlink_to(victim)
    with pytest.raises(ResultFileError, match="symbolic link"):
        optuna.create_study(study_name="t", storage=storage)
    assert victim.read_text() == "precious\n"
