"""The jobs/ templates on a real SLURM (tests/slurm/conftest.py starts it).

hpcopt is replaced by a stand-in ([slurm] hpcopt = its path) that records argv, MPI
rank/size and environment and, like hpcopt, exits 3 on SIGUSR1/SIGTERM. All jobs are
submitted at once by one module fixture through ``hpcopt.slurm.submit_job`` (what
``hpcopt submit`` does), so their waits overlap.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from hpcopt import slurm

pytestmark = pytest.mark.slurm


def env_lines(folder, mode: str, mpi: bool) -> list[str]:
    """[slurm] env_setup lines that configure the stand-in (user lines, run verbatim)."""
    return [f"export STANDIN_DIR={shlex.quote(str(folder / 'records'))}",
            f"export STANDIN_MODE={mode}", f"export STANDIN_MPI={int(mpi)}",
            "export STANDIN_STOP_DELAY=1"]


JOBS = {
    # name: (template, [slurm] table beyond hpcopt/env_setup, stand-in mode, MPI)
    "srun-usr1": ("single", {"ntasks": 2, "time": 1, "signal_lead": 50,
                             "job_name": 'srun "usr1" test'}, "wait", True),
    "mpirun-usr1": ("mpirun", {"ntasks": 2, "time": 1, "signal_lead": 50}, "wait", True),
    "array": ("array", {"array": 3, "max_concurrent": 2}, "sleep:3", False),
    "scancel": ("single", {}, "wait", False),
}


@pytest.fixture(scope="module")
def submitted(slurm_cluster, tmp_path_factory, write_config, make_standin):
    """Submit every job of JOBS; name -> (job id, folder, config path)."""
    root = tmp_path_factory.mktemp("cluster")
    jobs = {}
    for name, (template, table, mode, mpi) in JOBS.items():
        folder = root / name
        folder.mkdir()
        standin = make_standin(folder)
        config = write_config(folder, {**table, "hpcopt": [str(standin)],
                                       "env_setup": env_lines(folder, mode, mpi)},
                              output="out dir/study.h5")
        if name == "array":
            (folder / "out dir").mkdir()
            (folder / "out dir" / "study.task1.h5").write_bytes(b"")   # task 1 resumes
        job = slurm.submit_job(config, template)
        assert job.script == folder / f"study.{template}.sbatch"
        jobs[name] = (job.job_id, folder, config)
    yield jobs
    for job_id, _, _ in jobs.values():                   # nothing left running
        slurm_cluster.run("scancel", job_id, check=False)


def check_usr1_job(cluster, submitted, records, name):
    job_id, folder, config = submitted[name]
    states = cluster.wait_for_job(job_id, timeout=150)
    log = cluster.job_log(job_id)
    assert [s.exit_code for s in states] == [3], log          # hpcopt's "interrupted" status
    recs = records(folder / "records")
    assert sorted(r["rank"] for r in recs) == [0, 1], log
    for r in recs:
        assert r["size"] == 2                                 # one 2-rank MPI job, not singletons
        assert r["signal"] == "SIGUSR1"                       # --signal=B:USR1 reached the ranks
        assert r["argv"] == ["hpo", str(config), "-o", str(folder / "out dir" / "study.h5")]
        assert r["env"]["SLURM_JOB_ID"] == job_id
    assert "SIGUSR1 at" in log and "checkpointed" in log
    return states, log


def test_srun_step_gets_the_time_limit_signal(slurm_cluster, submitted, records):
    states, log = check_usr1_job(slurm_cluster, submitted, records, "srun-usr1")
    job_id, folder, _ = submitted["srun-usr1"]
    # job name and log path with quotes and spaces survived sbatch's directive parsing
    show = slurm_cluster.run("scontrol", "show", "job", job_id).stdout
    assert 'JobName=srun "usr1" test' in show
    assert (folder / "out dir" / f"srun__usr1__test-{job_id}.out").is_file()
    assert "running" in log and "srun --mpi=pmi2" in log


def test_mpirun_with_hostfile_gets_the_time_limit_signal(slurm_cluster, submitted, records):
    states, log = check_usr1_job(slurm_cluster, submitted, records, "mpirun-usr1")
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    assert f"hydra hostfile: {host}:2" in log


def test_array_tasks_with_throttle(slurm_cluster, submitted, records):
    job_id, folder, config = submitted["array"]
    states = slurm_cluster.wait_for_job(job_id, timeout=120)
    log = slurm_cluster.job_log(job_id)
    assert sorted(s.array_task_id for s in states) == ["0", "1", "2"], log
    assert all(s.state == "COMPLETED" and s.exit_code == 0 for s in states), log
    assert all(s.fields.get("ArrayJobId") == job_id for s in states)
    recs = {r["env"]["SLURM_ARRAY_TASK_ID"]: r for r in records(folder / "records")}
    assert sorted(recs) == ["0", "1", "2"]
    for task, r in recs.items():
        result = str(folder / "out dir" / f"study.task{task}.h5")
        assert r["argv"] == ["hpo", str(config), "-o", result] + (["--resume"] if task == "1"
                                                                   else [])
        assert r["env"]["SLURM_ARRAY_JOB_ID"] == job_id
    # %2: never more than two tasks at once (the node has room for all three)
    events = sorted([(r["start"], 1) for r in recs.values()] +
                    [(r["end"], -1) for r in recs.values()], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 2
    for task in "012":
        assert (folder / "out dir" / f"hpcopt-hpo-study-{job_id}_{task}.out").is_file()


def test_scancel_lets_the_step_checkpoint(slurm_cluster, submitted, records):
    """scancel: the ranks get TERM from SLURM and USR1 from the batch shell (not a TERM to
    srun, which would kill the step at once) and have KillWait seconds to checkpoint."""
    job_id, folder, _ = submitted["scancel"]
    slurm_cluster.wait_for(lambda: records(folder / "records"), 60, "the stand-in to start")
    slurm_cluster.scancel(job_id)
    states = slurm_cluster.wait_for_job(job_id, timeout=60)
    log = slurm_cluster.job_log(job_id)
    assert [(s.state, s.exit_code) for s in states] == [("CANCELLED", 3)], log
    [rec] = records(folder / "records")
    assert rec["signal"] in ("SIGTERM", "SIGUSR1") and rec["end"] is not None, log
    assert "Exited with exit code 3" in log and "checkpointed" in log


def test_slurm_ids_inside_a_job(slurm_cluster):
    """slurm_ids() and in_slurm_allocation() as hpcopt sees them in a job step."""
    code = ("import json; from hpcopt import slurm; from hpcopt.store.resultfile import "
            "slurm_ids; print(json.dumps([slurm.in_slurm_allocation(), slurm_ids()]))")
    proc = slurm_cluster.run("srun", "-n", "1", sys.executable, "-c", code, timeout=60)
    inside, ids = json.loads(proc.stdout)
    assert inside is True and ids["slurm_job_id"].isdigit()
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    assert ids["slurm_nodelist"] == host
