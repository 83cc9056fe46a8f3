"""Real hpcopt campaigns through the jobs/ templates on a real SLURM (issue 8).

Every job is submitted with ``hpcopt.slurm.submit_job`` (what ``hpcopt submit`` does) by
one module fixture, so their waits overlap; each test then checks the outcome from the
result files alone.
"""

from __future__ import annotations

import shlex

import h5py
import numpy as np
import pytest

from hpcopt import slurm
from hpctest import OBJECTIVES, read_table, run

pytestmark = pytest.mark.slurm

SWEEP = """
[objective]
function = "testobj:{func}"
[parameters]
x = {{ min = -2.0, max = 2.0, points = {points} }}
y = {{ min = -2.0, max = 2.0, points = 4 }}
[local]
method = "none"
[run]
chunk_size = 1
[output]
path = "out.h5"
"""

STUDY = """
[hpo]
sampler = "random"
n_trials = 30
[objective]
function = "hpoobj:slow_quad"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
y = { type = "uniform", low = -5.0, high = 5.0 }
[output]
path = "study.h5"
"""


def slurm_table(**keys) -> str:
    env = [f"export PYTHONPATH={shlex.quote(str(OBJECTIVES))}", "export TESTOBJ_SLEEP=0.2",
           "export HPOOBJ_SLEEP=0.3"]
    lines = [f"env_setup = {env!r}".replace("'", '"')]
    for k, v in keys.items():
        lines.append(f"{k} = {v!r}".replace("'", '"'))
    return "[slurm]\n" + "\n".join(lines) + "\n"


JOBS = {
    # name: (template, campaign text, [slurm] keys)
    "sweep-srun": ("single", SWEEP.format(func="quadratic", points=4), {"ntasks": 2}),
    "sweep-mpirun": ("mpirun", SWEEP.format(func="quadratic", points=4), {"ntasks": 2}),
    "hpo-array": ("array", STUDY, {"array": 3, "max_concurrent": 2, "ntasks": 2}),
    # 160 tasks of 0.2 s on one worker (32 s) against a 1-minute limit signalled 40 s early:
    # about 20 s of work before the signal (50 s early left 10 s, in which a loaded machine
    # finished no task)
    "time-limit": ("single", SWEEP.format(func="slow", points=40),
                   {"ntasks": 2, "time": 1, "signal_lead": 40}),
    # 1600 tasks of 0.2 s: still running when its test cancels it
    "scancel": ("single", SWEEP.format(func="slow", points=400), {"ntasks": 2}),
}


@pytest.fixture(scope="module")
def jobs(slurm_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("campaigns")
    out = {}
    for name, (template, text, keys) in JOBS.items():
        folder = root / name
        folder.mkdir()
        config = folder / "c.toml"
        config.write_text(text + slurm_table(**keys))
        job = slurm.submit_job(config, template)
        out[name] = (job.job_id, folder, config, template)
    yield out
    for job_id, *_ in out.values():
        slurm_cluster.run("scancel", job_id, check=False)


def finished(cluster, job_id, timeout=240):
    states = cluster.wait_for_job(job_id, timeout=timeout)
    return states, cluster.job_log(job_id)


@pytest.mark.parametrize("name", ["sweep-srun", "sweep-mpirun"])
def test_sweep_under_srun_and_mpirun(slurm_cluster, jobs, name):
    job_id, folder, _, _ = jobs[name]
    states, log = finished(slurm_cluster, job_id)
    assert [(s.state, s.exit_code) for s in states] == [("COMPLETED", 0)], log
    with h5py.File(folder / "out.h5", "r") as f:
        assert f.attrs["status"] == "complete" and f.attrs["world_size"] == 2, log
        assert f.attrs["slurm_job_id"] == job_id
        rows = f["tasks"][:]
    assert (rows["status"] == 1).all() and (rows["rank"] == 1).all()


def test_hpo_array_tasks_join_one_study(slurm_cluster, jobs):
    job_id, folder, _, _ = jobs["hpo-array"]
    states, log = finished(slurm_cluster, job_id)
    assert sorted(s.array_task_id for s in states) == ["0", "1", "2"], log
    assert all(s.exit_code == 0 for s in states), log
    files = sorted(folder.glob("study.task*.h5"))
    assert len(files) == 3, log
    rows = np.concatenate([r[r["status"] != 0] for r in (read_table(p, "trials") for p in files)])
    complete = rows[rows["status"] == 1]
    assert len(complete) == 30                                   # the budget: nothing lost
    assert len(set(complete["task_id"].tolist())) == 30          # nothing run twice
    tasks = [h5py.File(p, "r").attrs["slurm_array_task_id"] for p in files]
    assert sorted(tasks) == ["0", "1", "2"]


def test_time_limit_checkpoints_and_resubmission_finishes(slurm_cluster, jobs):
    job_id, folder, config, template = jobs["time-limit"]
    states, log = finished(slurm_cluster, job_id)
    assert [s.exit_code for s in states] == [3], log               # interrupted, saved
    first = read_table(folder / "out.h5", "tasks")
    done = first["status"] != 0
    assert 0 < done.sum() < len(first), log
    with h5py.File(folder / "out.h5", "r") as f:
        assert f.attrs["status"] == "interrupted"
    for attempt in range(4):                                       # resubmit until complete
        again = slurm.submit_job(config, template)
        states, log = finished(slurm_cluster, again.job_id)
        with h5py.File(folder / "out.h5", "r") as f:
            if f.attrs["status"] == "complete":
                break
    final = read_table(folder / "out.h5", "tasks")
    assert (final["status"] == 1).all(), log
    assert final[done].tobytes() == first[done].tobytes()         # nothing redone or lost
    assert (final["attempts"] == 1).all()


def test_scancel_then_resume(slurm_cluster, jobs):
    job_id, folder, config, _ = jobs["scancel"]
    slurm_cluster.wait_for(lambda: (folder / "out.h5").exists() and
                           (read_table(folder / "out.h5", "tasks")["status"] != 0).sum() >= 10,
                           120, "10 finished tasks")
    slurm_cluster.scancel(job_id)
    states, log = finished(slurm_cluster, job_id, timeout=120)
    before = read_table(folder / "out.h5", "tasks")
    done = before["status"] != 0
    with h5py.File(folder / "out.h5", "r") as f:
        assert f.attrs["status"] == "interrupted", log
    proc = run(["sweep", config, "--resume"], n=2, check=True, TESTOBJ_SLEEP="0")
    after = read_table(folder / "out.h5", "tasks")
    assert (after["status"] == 1).all(), proc.stderr
    assert after[done].tobytes() == before[done].tobytes()
