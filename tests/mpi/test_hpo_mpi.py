"""`hpcopt hpo` under mpiexec: async trials, pruning, failures, resume, determinism."""

import json
import signal

import numpy as np
import pytest

from hpctest import RANKS, job_exit, kill_group, read_table, run, start, wait_for_rows, write_config

pytestmark = pytest.mark.mpi

STUDY = """
[hpo]
sampler = "{sampler}"
pruner = "{pruner}"
n_trials = {n}
direction = "minimize"
{extra}
[objective]
function = "hpoobj:{func}"
[space]
x = {{ type = "uniform", low = -5.0, high = 5.0 }}
y = {{ type = "uniform", low = -5.0, high = 5.0 }}
[run]
seed = 11
[output]
path = "study.h5"
"""


def study(tmp_path, func="quad", n=24, sampler="tpe", pruner="none", extra=""):
    return write_config(tmp_path / "study.toml", STUDY.format(func=func, n=n, sampler=sampler,
                                                               pruner=pruner, extra=extra))


def rows_of(tmp_path):
    rows = read_table(tmp_path / "study.h5", "trials")
    return rows[rows["status"] != 0]


@pytest.mark.parametrize("n", RANKS)
def test_study_runs_every_trial_once(tmp_path, n):
    run(["hpo", study(tmp_path)], n=n, check=True)
    rows = rows_of(tmp_path)
    assert len(rows) == 24 and sorted(rows["task_id"]) == list(range(24))
    assert (rows["status"] == 1).all()
    if n > 1:
        assert set(rows["rank"]) <= set(range(1, n))
    report = json.loads(run(["report", tmp_path / "study.h5", "--json"], check=True).stdout)
    assert report["kind"] == "hpo" and report["status"] == "complete" and report["n_ok"] == 24
    assert report["best"]["objective"] == pytest.approx(rows["objective"].min())
    assert set(report["best"]["params"]) == {"x", "y"}


@pytest.mark.parametrize("extra", ["max_concurrent = 2", ""])
def test_deterministic_mode_gives_the_same_trials_at_any_rank_count(tmp_path, extra):
    """Also without max_concurrent (issue 13 item 6: -n 3 differed unless it was set)."""
    results = []
    for n in (1, 2, 3):                 # the point: every rank count, whatever RANKS
        d = tmp_path / str(n)
        d.mkdir()
        run(["hpo", study(d, extra="deterministic = true\n" + extra)], n=n, check=True)
        rows = np.sort(rows_of(d), order="task_id")
        results.append((rows["params_json"].tolist(), rows["objective"].tolist()))
    assert results[0] == results[1] == results[2]


def test_pruned_trials_stop_early(tmp_path):
    cfg = study(tmp_path, func="curve", n=30, sampler="random", pruner="median",
                extra="")
    run(["hpo", cfg], n=3, check=True)
    rows = rows_of(tmp_path)
    pruned = rows[rows["status"] == 4]
    assert (pruned["last_step"] < 20).sum() >= 3      # stopped before the last epoch
    complete = rows[rows["status"] == 1]
    assert (complete["last_step"] == 20).all()


def test_failures_are_recorded_and_retried(tmp_path):
    cfg = study(tmp_path, func="sometimes_fails", n=20, sampler="random",
                extra="max_retries = 1")
    run(["hpo", cfg], n=3, check=True)
    rows = rows_of(tmp_path)
    failed = rows[rows["status"] == 2]
    assert len(failed) >= 2
    assert all("diverged" in e for e in failed["error"].astype(str))
    retries = rows[rows["retry_of"] >= 0]
    assert len(retries) >= 1
    first = {int(r["task_id"]): r for r in failed}
    for r in retries:                                  # a retry repeats its first attempt's params
        assert r["params_json"] == first[int(r["retry_of"])]["params_json"]


def test_no_generation_barrier(tmp_path):
    """While one 3 s trial runs, the other worker keeps finishing short trials."""
    cfg = study(tmp_path, func="one_slow", n=30, sampler="random")
    run(["hpo", cfg], n=3, check=True, timeout=120)
    rows = rows_of(tmp_path)
    slow = rows[rows["duration"] > 2.5]
    assert len(slow) >= 1
    s = slow[0]
    during = rows[(rows["started"] > s["started"]) &
                  (rows["started"] + rows["duration"] < s["started"] + s["duration"]) &
                  (rows["rank"] != s["rank"])]
    assert len(during) >= 5


def test_resume_after_kill_continues_the_study(tmp_path):
    cfg = study(tmp_path, func="slow_quad", n=40)
    proc = start(["hpo", cfg], n=3, HPOOBJ_SLEEP="0.1")
    try:
        wait_for_rows(tmp_path / "study.h5", "trials", 8, timeout=120)
    finally:
        kill_group(proc, signal.SIGKILL)
        proc.wait(timeout=30)
    before = rows_of(tmp_path)
    assert 8 <= len(before) < 40
    run(["hpo", cfg, "--resume"], n=2, check=True, HPOOBJ_SLEEP="0")
    after = rows_of(tmp_path)
    done = after[after["status"] == 1]
    assert len(done) == 40                                          # the budget, exactly
    assert len(set(done["task_id"].tolist())) == len(done)          # no trial twice
    by_id = {int(r["task_id"]): r for r in after}
    for r in before:                                                # nothing recorded lost
        assert by_id[int(r["task_id"])]["objective"] == r["objective"]


def test_sigusr1_stops_cleanly_and_resume_finishes(tmp_path):
    cfg = study(tmp_path, func="slow_quad", n=30)
    proc = start(["hpo", cfg], n=3, HPOOBJ_SLEEP="0.1")
    wait_for_rows(tmp_path / "study.h5", "trials", 5, timeout=120)
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=60)
    assert job_exit(proc, err) == 3, err
    report = json.loads(run(["report", tmp_path / "study.h5", "--json"], check=True).stdout)
    assert report["status"] == "interrupted" and 5 <= report["n_ok"] < 30
    run(["hpo", cfg, "--resume"], n=3, check=True, HPOOBJ_SLEEP="0")
    done = rows_of(tmp_path)
    assert (done["status"] == 1).sum() == 30


def _points(rows):
    done = rows[rows["status"] == 1]
    return done["params_json"].tolist()


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_resume_after_sigterm_repeats_no_point(tmp_path, sampler):
    """Stopped by SIGTERM at about 6 of 12 trials, the old code re-ran trials 0-5 exactly."""
    cfg = study(tmp_path, func="slow_quad", n=12, sampler=sampler)
    proc = start(["hpo", cfg], n=3, HPOOBJ_SLEEP="0.3")
    wait_for_rows(tmp_path / "study.h5", "trials", 5, timeout=120)
    kill_group(proc, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert job_exit(proc, err) == 3, err
    before = _points(rows_of(tmp_path))
    assert 5 <= len(before) < 12
    run(["hpo", cfg, "--resume"], n=3, check=True, HPOOBJ_SLEEP="0")
    rows = rows_of(tmp_path)
    points = _points(rows)
    assert len(points) == 12 and len(set(points)) == 12, "a resumed study repeated a point"
    assert len(set(rows["task_id"].tolist())) == len(rows)          # every trial once


@pytest.mark.parametrize("n", RANKS)
def test_no_trial_starts_after_the_time_budget(tmp_path, n):
    """docs/hpo.md: after time_budget no new trial starts. A random study keeps a trial
    queued behind each running one; that trial started after the budget (its worker ran
    it when the one before ended, 2 s after the first trial here) until the trial carried
    the budget's end. The budget starts before the first trial does, so a start within
    1.6 s of the first one is no proof of a late start, one after it is."""
    cfg = study(tmp_path, func="slow_quad", n=100, sampler="random", extra="time_budget = 1.6")
    run(["hpo", cfg], n=n, check=True, HPOOBJ_SLEEP="1.0")
    rows = rows_of(tmp_path)
    started = rows["started"]
    assert len(rows) >= 1 and (rows["status"] == 1).all()
    assert started.max() - started.min() < 1.6, "a trial started after the time budget"
    report = json.loads(run(["report", tmp_path / "study.h5", "--json"], check=True).stdout)
    assert report["status"] == "complete" and report["n_ok"] == len(rows)


ARRAY_STUDY = """
[hpo]
sampler = "random"
n_trials = 20
storage = "shared.journal"
study_name = "shared"
[objective]
function = "hpoobj:slow_quad"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
y = { type = "uniform", low = -5.0, high = 5.0 }
[run]
seed = 5
[output]
path = "study.h5"
"""


def test_array_tasks_keep_their_own_trials_on_resume(tmp_path):
    """Two array tasks share one study; resuming one must not copy the other's trials into
    its file (up to 54 trials appeared in two per-task files)."""
    cfg = write_config(tmp_path / "array.toml", ARRAY_STUDY)
    procs = [start(["hpo", cfg, "-o", tmp_path / f"task{k}.h5"], n=2, cwd=tmp_path,
                   SLURM_ARRAY_TASK_ID=str(k), HPOOBJ_SLEEP="0.05") for k in (0, 1)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    run(["hpo", cfg, "-o", tmp_path / "task0.h5", "--resume"], n=2, cwd=tmp_path, check=True,
        SLURM_ARRAY_TASK_ID="0")
    ids = []
    for k in (0, 1):
        rows = read_table(tmp_path / f"task{k}.h5", "trials")
        rows = rows[rows["status"] != 0]
        assert len(set(rows["task_id"].tolist())) == len(rows)       # once within a file
        report = json.loads(run(["report", tmp_path / f"task{k}.h5", "--json"],
                                check=True).stdout)
        assert report["n_ok"] == int((rows["status"] == 1).sum())
        ids += rows["task_id"].tolist()
    assert sorted(ids) == list(range(20))      # over both files: each trial exactly once


COMMAND_STUDY = """
[hpo]
sampler = "random"
n_trials = 6
trial_timeout = 600
[objective]
command = ["{python}", "-c", "import time; time.sleep(60)"]
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
[output]
path = "study.h5"
"""


def test_sigterm_ends_a_job_whose_command_trials_run_long(tmp_path):
    """A stop signal terminates external commands (trial_timeout is 600 s, the command
    sleeps 60 s): the job checkpoints and exits 3 within seconds; resume re-runs them."""
    import time
    cfg = write_config(tmp_path / "cmd.toml", COMMAND_STUDY)
    proc = start(["hpo", cfg], n=3, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(tmp_path.glob("study_trials/trial_*"))) < 2:
        time.sleep(0.2)
    time.sleep(1.0)
    t0 = time.monotonic()
    kill_group(proc, signal.SIGTERM)
    _, err = proc.communicate(timeout=45)
    assert job_exit(proc, err) == 3, err
    assert time.monotonic() - t0 < 30
    report = json.loads(run(["report", tmp_path / "study.h5", "--json"], check=True).stdout)
    assert report["status"] == "interrupted"


FULL_DISK_STUDY = """
[hpo]
sampler = "random"
n_trials = 400
storage = "{journal}"
[objective]
function = "hpoobj:slow_quad"
[space]
x = {{ type = "uniform", low = -5.0, high = 5.0 }}
y = {{ type = "uniform", low = -5.0, high = 5.0 }}
[run]
seed = 2
[output]
path = "study.h5"
"""


def _in_small_fs(size: str, tiny, saved, args, **env_extra):
    """Run hpcopt (3 ranks) with `tiny` a tmpfs of `size` in a private mount namespace
    (gone when the job ends): the journal is copied in from `saved` and back out."""
    import shlex
    from hpctest import command, env
    script = (f"mount -t tmpfs -o size={size} tmpfs {tiny} && "
              f"(cp {saved} {tiny}/s.journal 2>/dev/null || true); "
              f"{shlex.join(command(args, 3))}; rc=$?; cp {tiny}/s.journal {saved}; exit $rc")
    import subprocess
    return subprocess.run(["unshare", "-m", "sh", "-c", script], env=env(**env_extra),
                          capture_output=True, text=True, timeout=300)


def test_a_full_disk_under_the_journal_checkpoints_and_resume_finishes(tmp_path):
    """Issue 13 item 16: ENOSPC from the journal mid-campaign -> status interrupted, exit 3,
    a message naming the journal; rows kept; --resume finishes, no trial twice."""
    tiny, saved = tmp_path / "tiny", tmp_path / "saved.journal"
    tiny.mkdir()
    cfg = write_config(tmp_path / "s.toml", FULL_DISK_STUDY.format(journal=tiny / "s.journal"))
    # trials of 10 ms: the journal is flushed (every 0.2 s) several times before it fills
    proc = _in_small_fs("96k", tiny, saved, ["hpo", cfg], HPOOBJ_SLEEP="0.01")
    assert proc.returncode == 3, proc.stderr
    assert "No space left on device" in proc.stderr and str(tiny / "s.journal") in proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(run(["report", tmp_path / "study.h5", "--json"], check=True).stdout)
    assert report["status"] == "interrupted"
    before = rows_of(tmp_path)
    assert 10 <= len(before) < 400
    proc = _in_small_fs("64m", tiny, saved, ["hpo", cfg, "--resume"], HPOOBJ_SLEEP="0")
    assert proc.returncode == 0, proc.stderr
    rows = rows_of(tmp_path)
    done = rows[rows["status"] == 1]
    assert len(done) == 400 and len(set(rows["task_id"].tolist())) == len(rows)
    assert len(set(done["params_json"].tolist())) == 400
    by_id = {int(r["task_id"]): r for r in rows}
    for r in before:                                              # nothing recorded lost
        assert by_id[int(r["task_id"])]["objective"] == r["objective"]


def test_workers_draw_tpe_trials_at_3_ranks(tmp_path):
    """With a journal, TPE's draws move to the workers (rank 0 only orders the writes)."""
    import optuna
    from hpcopt.hpo.config import StorageSpec
    from hpcopt.hpo.storage import open_storage
    cfg = study(tmp_path, func="slow_quad", n=30, extra="n_startup_trials = 5")
    run(["hpo", cfg], n=3, check=True, HPOOBJ_SLEEP="0.15")
    journal = StorageSpec("journal", str(tmp_path / "study.h5.journal"))
    trials = optuna.load_study(study_name="study", storage=open_storage(journal)).trials
    drawn = [t.user_attrs.get("hpcopt_drawn_on") for t in trials]
    assert drawn.count("worker") >= 15, drawn
    points = _points(rows_of(tmp_path))
    assert len(points) == 30 and len(set(points)) == 30
