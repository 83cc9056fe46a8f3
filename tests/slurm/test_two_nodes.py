"""hpcopt across two real nodes (issue 16.5): the start-cluster rig, nodes n1 and n2, each
in its own network, UTS and mount namespace, MPI traffic over a bridge between them.

The slow parts are submitted at once when the module starts (two 2-node batch jobs, one
running every campaign under `srun -N 2 -n 4`, one under `mpiexec -n 4`; an array job; the
one-node reference runs); the lock and start-up tests run meanwhile, and the tests at the
end of the module read what the jobs left.
The rig shares the PID namespace and the file system between nodes, which the lock tests
use: a pid check across hosts *could* see the dead coordinator here, so waiting for the
stale time proves that hpcopt does not make one.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from hpctest import assert_same_rows, env, read_table

pytestmark = pytest.mark.slurm

PY = sys.executable
MPIEXEC = str(Path(PY).parent / "mpiexec")
#: block distribution of `-N 2 -n 4`: ranks 0, 1 on n1 and 2, 3 on n2 (checked, not assumed)
HOSTS = {0: "n1", 1: "n1", 2: "n2", 3: "n2"}

SWEEP = """
[objective]
function = "testobj:rosenbrock"
[parameters]
x = { min = -2.0, max = 2.0, points = 4 }
y = { min = -1.0, max = 3.0, points = 4 }
[local]
method = "nelder-mead"
[output]
path = "o.h5"
"""

TEMPER = """
[temper]
replicas = 8
t_min = 1.0
t_max = 10.0
exchange_interval = 10
rounds = 30
[problem]
name = "ising"
L = 4
[run]
seed = 5
[output]
path = "o.h5"
"""

HPO = """
[hpo]
sampler = "tpe"
n_trials = 14
n_startup_trials = 6
deterministic = true
max_concurrent = 2
[objective]
function = "hpoobj:quad"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
y = { type = "uniform", low = -5.0, high = 5.0 }
[run]
seed = 3
[output]
path = "o.h5"
"""

GPUS = """
[hpo]
sampler = "random"
n_trials = 9
[objective]
function = "hpoobj:env_probe"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
[resources]
gpus = 1
threads = 1
[output]
path = "o.h5"
"""

CAMPAIGNS = {"sweep": SWEEP, "temper": TEMPER, "hpo": HPO}

#: per node, the GPUs a job would get from SLURM (gres sets CUDA_VISIBLE_DEVICES per node)
NODE_GPUS = {"n1": "2,3", "n2": "6,7"}

SRUN_JOB = """#!/bin/bash
# every campaign as one `srun -N 2 -n 4` step (PMI2) of this 2-node allocation
cd {root}
srun -l -N 2 -n 4 hostname > hosts.txt
for kind in sweep hpo; do
    srun -l -N 2 -n 4 --kill-on-bad-exit=1 {py} -m hpcopt $kind $kind/c.toml -q > $kind.log 2>&1
    echo "$kind exit $?"
done
# numba's cache in a directory of each node's own: each node compiles once
NUMBA_DEBUG_CACHE=1 srun -l -N 2 -n 4 --kill-on-bad-exit=1 bash -c \\
    'export NUMBA_CACHE_DIR=$0/numba-$(hostname); exec "$@"' {root} \\
    {py} -m hpcopt temper temper/c.toml -q > temper.log 2>&1
echo "temper exit $?"
# the GPUs SLURM would give each node
srun -l -N 2 -n 4 --kill-on-bad-exit=1 bash -c \\
    'case $(hostname) in n1) export CUDA_VISIBLE_DEVICES={gpus_n1};; n2) export CUDA_VISIBLE_DEVICES={gpus_n2};; esac
     exec "$@"' _ {py} -m hpcopt hpo gpus/c.toml -q > gpus.log 2>&1
echo "gpus exit $?"
"""

MPIEXEC_JOB = """#!/bin/bash
# every campaign under hydra's mpiexec inside this 2-node allocation (it starts its
# proxies with srun); numba's cache in one directory both nodes share, as on NFS
cd {root}
{mpiexec} -l -n 4 hostname > hosts.txt
for kind in sweep hpo; do
    {mpiexec} -l -n 4 {py} -m hpcopt $kind $kind/c.toml -q > $kind.log 2>&1
    echo "$kind exit $?"
done
NUMBA_DEBUG_CACHE=1 NUMBA_CACHE_DIR={root}/numba-shared {mpiexec} -l -n 4 \\
    {py} -m hpcopt temper temper/c.toml -q > temper.log 2>&1
echo "temper exit $?"
"""

ARRAY = """
[hpo]
sampler = "random"
n_trials = 16
[objective]
function = "hpoobj:slow_quad"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
y = { type = "uniform", low = -5.0, high = 5.0 }
[output]
path = "study.h5"
[slurm]
array = 4
ntasks = 2
env_setup = ["export PYTHONPATH={pythonpath}", "export HPOOBJ_SLEEP=0.3"]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module", autouse=True)
def jobs(two_node_cluster, tmp_path_factory):
    """Submit the 2-node jobs and start the one-node reference runs when the module starts
    (autouse: the tests that do not need them run meanwhile); wait for nothing."""
    root = tmp_path_factory.mktemp("two-nodes")
    os.chmod(root, 0o755)
    job_env = {**env(), "SLURM_CONF": two_node_cluster.conf}
    out = {"root": root, "env": job_env}
    for launcher, script in (("srun", SRUN_JOB), ("mpiexec", MPIEXEC_JOB)):
        d = root / launcher
        for kind, text in CAMPAIGNS.items():
            write(d / kind / "c.toml", text)
        if launcher == "srun":
            write(d / "gpus" / "c.toml", GPUS)
        job = write(d / "job.sh", script.format(root=d, py=PY, mpiexec=MPIEXEC,
                                                gpus_n1=NODE_GPUS["n1"],
                                                gpus_n2=NODE_GPUS["n2"]))
        out[launcher] = subprocess.run(
            ["sbatch", "--parsable", "-N", "2", "-n", "4", "-o", str(d / "job.out"), str(job)],
            env=job_env, capture_output=True, text=True, check=True).stdout.strip()
    config = write(root / "array" / "c.toml", ARRAY.replace("{pythonpath}", job_env["PYTHONPATH"]))
    submit = subprocess.run([PY, "-m", "hpcopt", "submit", str(config), "--template", "array"],
                            env=job_env, capture_output=True, text=True, timeout=60)
    assert submit.returncode == 0, submit.stderr
    out["array"] = re.search(r"Submitted batch job (\d+)", submit.stdout).group(1)
    # the one-node references: a singleton each, on this host (its own numba cache)
    refs = {}
    for kind, text in CAMPAIGNS.items():
        d = root / "one-node" / kind
        write(d / "c.toml", text)
        refs[kind] = subprocess.Popen(
            [PY, "-m", "hpcopt", kind, str(d / "c.toml"), "-q"], cwd=d,
            env={**job_env, "NUMBA_CACHE_DIR": str(root / "one-node" / "numba")},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out["refs"] = refs
    yield out
    for name in ("srun", "mpiexec", "array"):
        two_node_cluster.run("scancel", out[name], check=False)
    for proc in refs.values():
        proc.kill()


def finished(cluster, jobs, launcher: str) -> tuple[Path, str]:
    """Wait for a launcher's batch job; return its folder and its log."""
    states = cluster.wait_for_job(jobs[launcher], timeout=400)
    d = jobs["root"] / launcher
    log = (d / "job.out").read_text()
    assert [s.state for s in states] == ["COMPLETED"], log
    return d, log


def reference(jobs, kind: str) -> Path:
    proc = jobs["refs"][kind]
    output, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, output
    return jobs["root"] / "one-node" / kind / "o.h5"


def rank_hosts(d: Path) -> dict[int, str]:
    """Rank -> host from `srun -l hostname` ("0: n1") or `mpiexec -l hostname` ("[0] n1")."""
    pairs = re.findall(r"^\[?(\d+)\]?:? (\S+)$", (d / "hosts.txt").read_text(), re.M)
    return {int(r): h for r, h in pairs}


# -- the HPO journal lock and heartbeats with coordinators on two hosts -------------------

def srun_popen(cluster, node: str, args: list[str], *, name: str, ntasks: int = 1,
               **extra) -> subprocess.Popen:
    return subprocess.Popen(["srun", "-N", "1", "-n", str(ntasks), "-w", node,
                             f"--job-name={name}", *args],
                            env={**env(**extra), "SLURM_CONF": cluster.conf},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def job_id_of(cluster, name: str) -> str:
    return cluster.wait_for(lambda: cluster.run("squeue", "-h", "-n", name, "-o", "%i")
                            .stdout.strip(), 60, f"job {name} to start")


def pid_dead(pid: int) -> bool:
    """Here, not on the node: the rig's nodes share this machine's PID namespace."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


HOLD_LOCKS = """
import sys, time
from hpcopt.hpo.storage import LinkLock
for path in sys.argv[1:]:
    LinkLock(path).acquire()
print("held", flush=True)
time.sleep(600)
"""

TAKE_LOCK = """
import sys, time
from hpcopt.hpo.storage import LinkLock
lock = LinkLock(sys.argv[1], grace=float(sys.argv[2]))
t = time.monotonic()
lock.acquire()
print(f"waited {time.monotonic() - t:.3f}", flush=True)
lock.release()
"""


def test_journal_lock_of_a_dead_holder_on_another_host_waits_for_the_grace_time(
        two_node_cluster, tmp_path):
    """A holder killed on n1: on n1 its lock is broken at once (its pid is dead on this
    host), on n2 only after the grace time, although n2 could see the pid too."""
    grace = 4.0
    os.chmod(tmp_path, 0o755)
    here, there = tmp_path / "same-host.journal", tmp_path / "other-host.journal"
    holder = srun_popen(two_node_cluster, "n1", [PY, "-c", HOLD_LOCKS, str(here), str(there)],
                        name="lock-holder")
    assert holder.stdout.readline().strip() == "held", holder.stderr.read()
    job = job_id_of(two_node_cluster, "lock-holder")
    info = json.loads(Path(str(there) + ".lock").read_text())
    assert info["host"] == "n1"
    two_node_cluster.run("scancel", "-s", "KILL", job)
    holder.wait(timeout=60)
    two_node_cluster.wait_for(lambda: pid_dead(info["pid"]), 30, "the holder to die")
    takers = {path: srun_popen(two_node_cluster, node, [PY, "-c", TAKE_LOCK, str(path),
                                                        str(grace)], name=f"take-{node}")
              for node, path in (("n1", here), ("n2", there))}
    waited = {}
    for path, proc in takers.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        waited[path] = float(re.search(r"waited ([0-9.]+)", out).group(1))
        assert "removed stale journal lock" in err
    assert waited[here] < 1.0, waited                      # same host: the pid is dead
    assert grace <= waited[there] < grace + 5.0, waited    # other host: the grace time


KILL_STUDY = """
[hpo]
sampler = "random"
n_trials = 30
storage = "study.journal"
study_name = "shared"
[objective]
function = "hpoobj:slow_quad"
[space]
x = { type = "uniform", low = -5.0, high = 5.0 }
y = { type = "uniform", low = -5.0, high = 5.0 }
[output]
path = "study.h5"
"""


def test_killed_coordinator_on_one_host_is_requeued_by_the_other_after_the_stale_time(
        two_node_cluster, tmp_path):
    """Coordinators A (n1) and B (n2) share a study; A is killed with its trials in flight
    (random: one running on its worker, one queued behind it). B goes on finishing trials,
    sees A's pid dead (the rig shares PIDs) but re-queues A's trials only once A's heartbeat
    is STALE seconds old; every trial is counted once."""
    stale = 6.0
    os.chmod(tmp_path, 0o755)
    config = write(tmp_path / "study.toml", KILL_STUDY)
    hooks = {"HPCOPT_HPO_HEARTBEAT": "0.5", "HPCOPT_HPO_STALE_AFTER": str(stale)}
    journal = JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))

    def study():
        try:
            return optuna.load_study(study_name="shared", storage=journal)
        except KeyError:
            return None

    def coordinator(node, name, task, sleep):
        return srun_popen(two_node_cluster, node, [PY, "-m", "hpcopt", "hpo", str(config), "-o",
                                                   str(tmp_path / f"{name}.h5")],
                          name=f"coordinator-{name}", ntasks=2, SLURM_ARRAY_TASK_ID=task,
                          HPOOBJ_SLEEP=sleep, **hooks)

    a = coordinator("n1", "a", 0, 600)                 # its first trial never ends
    two_node_cluster.wait_for(
        lambda: study() and study().get_trials(states=(TrialState.RUNNING,)), 90,
        "coordinator A's first trial")
    b = coordinator("n2", "b", 1, 0.6)
    two_node_cluster.wait_for(lambda: study().get_trials(states=(TrialState.COMPLETE,)), 90,
                              "coordinator B's first finished trial")
    a_trials = [t.number for t in study().get_trials(states=(TrialState.RUNNING,))
                if str(t.user_attrs.get("hpcopt_owner", "")).startswith("n1:")]
    assert len(a_trials) == 2, a_trials               # the running trial and the queued one
    two_node_cluster.run("scancel", "-s", "KILL", job_id_of(two_node_cluster, "coordinator-a"))
    killed = time.time()
    a.communicate(timeout=60)
    out, err = b.communicate(timeout=180)
    assert b.returncode == 0, err

    attrs = journal.get_study_system_attrs(study()._study_id)
    beats = {v["host"]: v for k, v in attrs.items() if k.startswith("hpcopt:heartbeat:")}
    assert set(beats) == {"n1", "n2"} and not beats["n1"]["closed"]
    assert pid_dead(beats["n1"]["pid"])          # a pid check from n2 would have seen it
    trials = study().get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 30                                  # the budget, each once
    for number in a_trials:
        old = trials[number]
        assert old.state == TrialState.FAIL and old.user_attrs.get("hpcopt_interrupted"), old
        requeued = old.datetime_complete.timestamp()
        assert requeued - beats["n1"]["time"] >= stale           # never before the stale time
        assert sum(t.params == old.params for t in complete) == 1   # re-run by B, once
    requeued = min(trials[n].datetime_complete.timestamp() for n in a_trials)
    meanwhile = [t for t in trials if t.state == TrialState.COMPLETE
                 and killed < t.datetime_complete.timestamp() < requeued]
    assert len(meanwhile) >= 3, (killed, requeued)  # B kept asking (and reaping) meanwhile
    rows = read_table(tmp_path / "b.h5", "trials")
    assert int((rows["status"] == 1).sum()) == 30
    assert "re-queued trials" in err


# -- MPI start-up on the rig --------------------------------------------------------------

COLLIDE_JOB = """#!/bin/bash
# step 0 keeps messages in flight through its node's MPICH segment; step 1 then finds that
# live segment under its own name, as job J of a second cluster on this machine would
# (tests/slurm/mpich_shm_collision.sh), and cannot start MPI
cd {root}
slab0=$({py} {helpers}/mpich_shm.py "$SLURM_JOB_ID.0"); slab1=$({py} {helpers}/mpich_shm.py "$SLURM_JOB_ID.1")
HOLD=40 srun --overlap -n 2 {py} {hold} > hold.out 2>&1 &
for _ in $(seq 1 300); do [ -e "$slab0" ] && break; sleep 0.1; done
sleep 1
ln "$slab0" "$slab1" && echo "planted $slab1"
HPCOPT_MPI_INIT_TIMEOUT=5 timeout 60 srun --overlap -n 2 {py} -m hpcopt sweep c.toml
echo "hpcopt exit $?"
rm -f "$slab1"
kill %1
"""

HOLD = """
import os, time
from mpi4py import MPI
c = MPI.COMM_WORLD
deadline = time.time() + float(os.environ.get("HOLD", "0"))
while time.time() < deadline:
    c.bcast(b"x" * 4000 if c.Get_rank() == 0 else None)
    c.allgather(c.Get_rank())
"""


def test_a_rank_that_cannot_initialise_mpi_exits_with_a_message(two_node_cluster, tmp_path):
    """The failure reported on this rig (MPI_Init broken by another job's MPICH segment)
    made the job hang until killed; now every stuck rank gives up after
    HPCOPT_MPI_INIT_TIMEOUT seconds with one message and the job exits non-zero."""
    os.chmod(tmp_path, 0o755)
    write(tmp_path / "c.toml", SWEEP)
    write(tmp_path / "hold.py", HOLD)
    job = write(tmp_path / "job.sh", COLLIDE_JOB.format(
        root=tmp_path, py=PY, hold=tmp_path / "hold.py", helpers=Path(__file__).parent))
    job_id = two_node_cluster.sbatch(job, "-N", "1", "-n", "2", "-w", "n2", "-o",
                                     str(tmp_path / "job.out"))
    two_node_cluster.wait_for_job(job_id, timeout=120)
    log = (tmp_path / "job.out").read_text()
    assert "planted /dev/shm/mpich_shm_" in log, log
    status = int(re.search(r"hpcopt exit (\d+)", log).group(1))
    assert status not in (0, 124), log                  # failed, and did not hang
    messages = re.findall(r"hpcopt: error on launcher rank \d \(n2\): MPI_Init did not "
                          r"finish within 5 s", log)
    assert 1 <= len(messages) <= 2, log                 # one line per rank still waiting
    assert not (tmp_path / "o.h5").exists()


def test_a_launcher_that_starts_singletons_is_refused(two_node_cluster, tmp_path):
    """`srun --mpi=none` starts two processes that each see a world of one: both would run
    the whole campaign into the same file; hpcopt refuses with one message, exit 1."""
    os.chmod(tmp_path, 0o755)
    config = write(tmp_path / "c.toml", SWEEP)
    proc = two_node_cluster.run("srun", "-N", "2", "-n", "2", "--mpi=none", PY, "-m", "hpcopt",
                                "sweep", str(config), check=False, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("hpcopt: error: the launcher (srun) started 2 processes") == 1, \
        proc.stderr
    assert not (tmp_path / "o.h5").exists()
    info = two_node_cluster.run("srun", "-N", "2", "-n", "2", "--mpi=none", PY, "-m", "hpcopt",
                                "info", check=False, timeout=120)
    assert info.returncode == 1 and info.stdout.count("MPI launcher PROBLEM: ") == 1, info.stdout


# -- campaigns, numba cache and GPUs on two nodes (the module's batch jobs) ------------

@pytest.mark.parametrize("launcher", ["srun", "mpiexec"])
def test_campaigns_on_two_nodes_equal_one_node(two_node_cluster, jobs, launcher):
    d, log = finished(two_node_cluster, jobs, launcher)
    assert rank_hosts(d) == HOSTS, (d / "hosts.txt").read_text()
    for kind in CAMPAIGNS:
        assert f"{kind} exit 0" in log, (d / f"{kind}.log").read_text()
        with h5py.File(d / kind / "o.h5", "r") as f:
            assert f.attrs["status"] == "complete" and f.attrs["world_size"] == 4
    ref = {kind: reference(jobs, kind) for kind in CAMPAIGNS}

    tasks = read_table(d / "sweep" / "o.h5", "tasks")
    assert_same_rows(tasks, read_table(ref["sweep"], "tasks"))
    assert {2, 3} & set(tasks["rank"].tolist())                  # n2's ranks did tasks

    with h5py.File(d / "temper" / "o.h5", "r") as a, h5py.File(ref["temper"], "r") as b:
        for name in ("rounds", "samples", "pairs", "replicas", "slots"):
            assert a[name][:].tobytes() == b[name][:].tobytes(), name

    two, one = (np.sort(r[r["status"] != 0], order="task_id") for r in
                (read_table(d / "hpo" / "o.h5", "trials"), read_table(ref["hpo"], "trials")))
    assert len(two) == 14
    assert two["params_json"].tolist() == one["params_json"].tolist()
    assert two["objective"].tolist() == one["objective"].tolist()
    assert any(w.endswith(b" on n2") for w in two["worker"].tolist())


def numba_cache_events(log: str) -> list[tuple[int, str, str]]:
    """(rank, "saved" | "loaded", cache file) from NUMBA_DEBUG_CACHE lines of a labelled
    (`srun -l` / `mpiexec -l`) log."""
    return [(int(r), what, path) for r, what, path in
            re.findall(r"^\[?(\d+)\]?:? \[cache\] data (saved|loaded) (?:to|from) '([^']+)'",
                       log, re.M)]


def test_numba_cache_is_compiled_once_per_node(two_node_cluster, jobs):
    """Each node's first rank compiles and saves every kernel into its node's cache (two
    nodes: two compilations of each), the node's other rank loads it."""
    d, _ = finished(two_node_cluster, jobs, "srun")
    log = (d / "temper.log").read_text()
    events = numba_cache_events(log)
    saves = collections.Counter((HOSTS[r], Path(p).name) for r, w, p in events if w == "saved")
    kernels = {Path(p).name for _, w, p in events if w == "saved"}
    assert kernels, log[-3000:]
    assert saves == {(host, k): 1 for host in ("n1", "n2") for k in kernels}, saves
    for rank, what, path in events:
        assert f"/numba-{HOSTS[rank]}/" in path                  # each node its own cache
        assert what == ("saved" if rank in (0, 2) else "loaded"), (rank, what, path)
    assert {r for r, w, _ in events if w == "loaded"} == {1, 3}


def test_numba_cache_shared_by_both_nodes_has_no_races(two_node_cluster, jobs):
    """One cache directory on the shared file system: never more than one compilation of
    a kernel per node, the other rank of each node loads it, nothing fails to load."""
    d, _ = finished(two_node_cluster, jobs, "mpiexec")
    log = (d / "temper.log").read_text()
    events = numba_cache_events(log)
    saves = collections.Counter((HOSTS[r], Path(p).name) for r, w, p in events if w == "saved")
    assert saves and max(saves.values()) == 1, saves
    assert not any(r in (1, 3) for r, w, _ in events if w == "saved")   # only node leaders
    assert {r for r, w, _ in events if w == "loaded"} >= {1, 3}
    assert "Traceback" not in log and "NumbaWarning" not in log, log[-3000:]


def test_gpus_are_chosen_by_node_local_rank(two_node_cluster, jobs):
    """[resources] gpus = 1: each worker takes the GPU of its node-local worker index from
    its own node's CUDA_VISIBLE_DEVICES; the coordinator (rank 0) takes none."""
    d, log = finished(two_node_cluster, jobs, "srun")
    assert "gpus exit 0" in log, (d / "gpus.log").read_text()
    rows = read_table(d / "gpus" / "o.h5", "trials")
    rows = rows[rows["status"] == 1]
    seen = {}
    for row in rows:
        info = json.loads(row["info_json"])
        host = row["worker"].decode().rsplit(" on ", 1)[1]
        seen.setdefault((info["rank"], host), set()).add(info["cuda"])
    # n1: rank 0 coordinates, rank 1 is worker 0 -> the first of n1's GPUs;
    # n2: ranks 2 and 3 are workers 0 and 1 -> n2's two GPUs, one each
    assert seen == {(1, "n1"): {"2"}, (2, "n2"): {"6"}, (3, "n2"): {"7"}}, seen


# -- the array template: tasks on both nodes, one study ----------------------------------

def test_array_tasks_on_both_nodes_join_one_study(two_node_cluster, jobs):
    states = two_node_cluster.wait_for_job(jobs["array"], timeout=400)
    log = two_node_cluster.job_log(jobs["array"])
    assert sorted(s.array_task_id for s in states) == ["0", "1", "2", "3"], log
    assert all(s.state == "COMPLETED" and s.exit_code == 0 for s in states), log
    d = jobs["root"] / "array"
    files = sorted(d.glob("study.task*.h5"))
    assert len(files) == 4, log
    nodes = set()
    for p in files:
        with h5py.File(p, "r") as f:
            nodes.add(f.attrs["slurm_nodelist"])
    assert nodes == {"n1", "n2"}, nodes
    rows = np.concatenate([r[r["status"] == 1] for r in (read_table(p, "trials") for p in files)])
    assert len(rows) == 16 and len(set(rows["task_id"].tolist())) == 16   # each trial once
    # no [hpo] storage or study_name: the default journal follows the config's [output]
    journal = JournalStorage(JournalFileBackend(str(d / "study.h5.journal")))
    trials = optuna.load_study(study_name="study", storage=journal).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 16
