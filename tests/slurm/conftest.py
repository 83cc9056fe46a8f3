"""Real SLURM clusters for the tests, and a stand-in for hpcopt in job scripts.

``slurm_cluster`` (session scope) starts slurmctld, slurmd and munge with
``<repo>/../shared/slurm/start-single-node`` in a fresh directory, sets ``SLURM_CONF``
in ``os.environ`` for the session (so sbatch, squeue and ``hpcopt submit`` reach it) and
stops exactly those daemons at the end. A cluster that already answers at ``SLURM_CONF``
(e.g. started by .ci/run) is used as it is and left running. Missing scripts, no root or
a cluster that does not come up fail the test with the reason (they never skip).

``two_node_cluster`` (session scope) does the same with ``start-cluster 2``: nodes n1 and
n2, each in its own network/UTS/mount namespace. It leaves ``os.environ`` alone (both
clusters may be up at once): use its ``env``, ``run`` and ``sbatch``.
HPCOPT_TEST_CLUSTER_CONF names the slurm.conf of a running one to reuse instead.

Both give their cluster job ids of its own (FirstJobId, drawn at random): MPICH names a
node's shared-memory segment after the SLURM job id (/dev/shm/mpich_shm_<hash("J.S")>_<node>),
every fresh cluster would count from 1, and all of them share this machine's /dev/shm, so
job 5 of one cluster would attach to the segment of job 5 of another (or of an earlier
session's killed job 5) and fail or hang in MPI_Init (tests/slurm/mpich_shm_collision.sh).

The fixture yields a :class:`SlurmCluster` with the helpers tests need:
``sbatch``, ``wait_for_job`` (poll ``scontrol show job`` until every task ended),
``job_log``, ``wait_for`` (poll any condition) and ``scontrol``/``scancel`` wrappers.
Tests that need it are marked ``@pytest.mark.slurm``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from mpich_shm import mpich_slab

REPO = Path(__file__).resolve().parents[2]
SHARED_SLURM = REPO.parent / "shared" / "slurm"
#: job states after which a job does not run again (scontrol show job JobState=...)
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


@dataclass
class JobState:
    """One line of ``scontrol show job -o``: a job, or one task of an array job."""

    job_id: str
    state: str
    exit_code: int              # the script's exit status (ExitCode=N:signal)
    array_task_id: str | None
    fields: dict = field(repr=False)


@dataclass
class SlurmCluster:
    base: Path | None           # state directory (None: a cluster started by someone else)
    conf: str                   # SLURM_CONF

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": self.conf}

    def run(self, *args: str, timeout: float = 60, check: bool = True
            ) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}: "
                                 f"{proc.stderr.strip()}")
        return proc

    def sbatch(self, script: str | Path, *options: str, cwd: str | Path | None = None) -> str:
        """Submit a batch script; return the job id."""
        proc = subprocess.run(["sbatch", "--parsable", *options, str(script)], env=self.env,
                              capture_output=True, text=True, timeout=60, cwd=cwd)
        if proc.returncode != 0:
            raise AssertionError(f"sbatch {script} failed: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";")[0]

    def scancel(self, *args: str) -> None:
        self.run("scancel", *args)

    def jobs(self, job_id: str) -> list[JobState]:
        """The job (or every task of an array job) as scontrol shows it now."""
        proc = self.run("scontrol", "show", "job", "-o", str(job_id), check=False)
        if proc.returncode != 0:
            raise AssertionError(f"scontrol show job {job_id}: {proc.stderr.strip()}")
        states = []
        for line in proc.stdout.splitlines():
            # Key=Value pairs; a value (a path, a job name) may hold spaces
            fields = dict(re.findall(r"(\w+)=(.*?)(?= [\w:/]+=|$)", line))
            if "JobId" not in fields:
                continue
            code = fields.get("ExitCode", "0:0").split(":")[0]
            states.append(JobState(fields["JobId"], fields.get("JobState", "?"),
                                   int(code) if code.isdigit() else -1,
                                   fields.get("ArrayTaskId"), fields))
        return states

    def wait_for_job(self, job_id: str, timeout: float = 120) -> list[JobState]:
        """Poll until the job (every array task) has ended; cancel it and fail on timeout."""
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            states = self.jobs(job_id)
            if states and all(s.state in FINAL_STATES for s in states):
                return states
            if time.monotonic() > deadline:
                self.run("scancel", str(job_id), check=False)
                raise AssertionError(f"job {job_id} still running after {timeout} s: "
                                     f"{[(s.job_id, s.state) for s in states]}\n"
                                     f"{self.job_log(job_id)}")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def job_log(self, job_id: str) -> str:
        """The stdout and stderr files of a job (all array tasks), for messages and checks."""
        text = []
        for s in self.jobs(job_id):
            for key in ("StdOut", "StdErr"):
                path = Path(s.fields.get(key, ""))
                if path.is_file() and path.stat().st_size:
                    text.append(f"--- {s.job_id} {key} {path}\n{path.read_text(errors='replace')}")
        return "\n".join(dict.fromkeys(text))

    @staticmethod
    def wait_for(condition: Callable[[], object], timeout: float, what: str):
        """Poll `condition` until it returns a true value; fail naming `what` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.2)


def _answers(conf: str) -> bool:
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], env={**os.environ, "SLURM_CONF": conf},
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and bool(re.search(r"idle|mix|alloc", proc.stdout))


def _make_traversable(path: Path) -> None:
    """munged (user munge) must reach the state directory: add r-x for group and others."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        want = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
        if mode & want != want:
            os.chmod(p, stat.S_IMODE(mode) | want)


def _log_tail(base: Path) -> str:
    lines = []
    for log in sorted((base / "log").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-15:]
        lines.append(f"--- {log}\n" + "\n".join(tail))
    return "\n".join(lines)


#: job ids a test cluster may use after its FirstJobId (for the clean-up of its segments)
JOB_ID_SPAN = 5000


def _own_job_ids(cluster: SlurmCluster) -> int:
    """Make the cluster number its jobs from a random FirstJobId (see the module docstring)
    and keep finished jobs visible to `scontrol show job` for an hour (the generated
    MinJobAge=300 loses the state of a job that ended while other tests ran): appended to
    its generated slurm.conf, then `scontrol reconfigure`. Returns the FirstJobId."""
    first = random.randrange(1_000_000, 60_000_000, JOB_ID_SPAN)
    conf = Path(cluster.conf)
    conf.write_text(conf.read_text() + f"FirstJobId={first}\nMinJobAge=3600\n")
    cluster.run("scontrol", "reconfigure")
    cluster.wait_for(lambda: re.search(rf"FirstJobId\s*=\s*{first}\b",
                                       cluster.run("scontrol", "show", "config").stdout),
                     30, f"slurmctld to take FirstJobId={first}")
    return first


def _remove_own_slabs(first: int, nodes: int) -> None:
    """Segments our killed job steps left in /dev/shm (nobody else uses these job ids)."""
    for job in range(first, first + JOB_ID_SPAN):
        for step in range(8):
            for node in range(nodes):
                mpich_slab(f"{job}.{step}", node).unlink(missing_ok=True)


def _cancel_all(cluster: SlurmCluster, timeout: float = 30) -> None:
    """Cancel every job of our own cluster and let the steps end before the daemons stop
    (job steps left behind by a stopped slurmd would keep running)."""
    cluster.run("scancel", "--full", f"--user={os.getuid()}", check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not cluster.run("squeue", "-h", check=False).stdout.strip():
            return
        time.sleep(0.5)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running single-node SLURM; SLURM_CONF is set in os.environ for the session."""
    old_conf = os.environ.get("SLURM_CONF")
    if old_conf and _answers(old_conf):
        yield SlurmCluster(None, old_conf)
        return
    start, stop = SHARED_SLURM / "start-single-node", SHARED_SLURM / "stop-single-node"
    missing = [str(p) for p in (start, stop) if not p.is_file()]
    if missing:
        pytest.fail(f"the SLURM tests need {', '.join(missing)} (a real single-node SLURM; "
                    f"see {SHARED_SLURM / 'README.md'})", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the SLURM tests start slurmctld/slurmd/munge and must run as root",
                    pytrace=False)
    base = Path(tempfile.mkdtemp(prefix="hpcopt-slurm-"))
    _make_traversable(base)
    state = base / "cluster"
    try:
        proc = subprocess.run(["bash", str(start), str(state)], capture_output=True, text=True,
                              timeout=300)
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(stop), str(state)], capture_output=True, timeout=60)
        pytest.fail(f"start-single-node {state} did not finish in 300 s", pytrace=False)
    conf = str(state / "slurm.conf")
    if proc.returncode != 0 or not _answers(conf):
        detail = f"{proc.stdout}\n{proc.stderr}\n{_log_tail(state) if state.exists() else ''}"
        subprocess.run(["bash", str(stop), str(state)], capture_output=True, timeout=60)
        pytest.fail(f"start-single-node {state} failed (exit {proc.returncode}); is another "
                    f"slurmctld using port 6817 on this machine?\n{detail}", pytrace=False)
    os.environ["SLURM_CONF"] = conf
    cluster = SlurmCluster(state, conf)
    first = None
    try:
        first = _own_job_ids(cluster)
        yield cluster
    finally:
        _cancel_all(cluster)
        subprocess.run(["bash", str(stop), str(state)], capture_output=True, timeout=120)
        if first is not None:
            _remove_own_slabs(first, nodes=1)
        if old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old_conf
        shutil.rmtree(base, ignore_errors=True)


def _idle_nodes(conf: str) -> set[str]:
    try:
        proc = subprocess.run(["sinfo", "-h", "-N", "-t", "idle,mix,alloc", "-o", "%N"],
                              env={**os.environ, "SLURM_CONF": conf}, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(proc.stdout.split()) if proc.returncode == 0 else set()


@pytest.fixture(scope="session")
def two_node_cluster():
    """A running 2-node start-cluster cluster (n1, n2); os.environ is left alone."""
    reuse = os.environ.get("HPCOPT_TEST_CLUSTER_CONF")
    if reuse:
        if _idle_nodes(reuse) != {"n1", "n2"}:
            pytest.fail(f"HPCOPT_TEST_CLUSTER_CONF={reuse}: no cluster with nodes n1 and n2 "
                        f"answers there", pytrace=False)
        yield SlurmCluster(None, reuse)
        return
    start, stop = SHARED_SLURM / "start-cluster", SHARED_SLURM / "stop-cluster"
    missing = [str(p) for p in (start, stop) if not p.is_file()]
    if missing:
        pytest.fail(f"the 2-node tests need {', '.join(missing)} (a multi-node SLURM on this "
                    f"machine; see {SHARED_SLURM / 'README.md'})", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the 2-node tests create network namespaces and start slurmctld/slurmd/"
                    "munge: they must run as root", pytrace=False)
    base = Path(tempfile.mkdtemp(prefix="hpcopt-2nodes-"))
    _make_traversable(base)
    state = base / "cluster"
    try:
        proc = subprocess.run(["bash", str(start), "2", str(state)], capture_output=True,
                              text=True, timeout=300)
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(stop), str(state)], capture_output=True, timeout=120)
        pytest.fail(f"start-cluster 2 {state} did not finish in 300 s", pytrace=False)
    conf = str(state / "slurm.conf")
    if proc.returncode != 0 or _idle_nodes(conf) != {"n1", "n2"}:
        detail = f"{proc.stdout}\n{proc.stderr}\n{_log_tail(state) if state.exists() else ''}"
        if (state / "cluster.env").exists():
            subprocess.run(["bash", str(stop), str(state)], capture_output=True, timeout=120)
        pytest.fail(f"start-cluster 2 {state} failed (exit {proc.returncode}); only one "
                    f"such cluster can exist on this machine (bridge hpct0)\n{detail}",
                    pytrace=False)
    cluster = SlurmCluster(state, conf)
    first = None
    try:
        first = _own_job_ids(cluster)
        yield cluster
    finally:
        _cancel_all(cluster)
        subprocess.run(["bash", str(stop), str(state)], capture_output=True, timeout=120)
        if first is not None:
            _remove_own_slabs(first, nodes=2)
        shutil.rmtree(base, ignore_errors=True)


# -- campaign configs with a [slurm] table ----------------------------------------------

#: the smallest config of each campaign kind (the array template needs a named storage/study)
CAMPAIGNS = {
    "hpo": """
[hpo]
n_trials = 4
storage = "study.journal"
study_name = "s"
[objective]
function = "m:f"
[space]
x = { type = "uniform", low = 0.0, high = 1.0 }
""",
    "sweep": """
[objective]
function = "m:f"
[parameters]
x = { min = 0.0, max = 1.0, points = 2 }
""",
    "temper": """
[temper]
replicas = 2
rounds = 2
[problem]
name = "ising"
""",
}


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)          # a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def _write_config(folder: Path, slurm_table: dict | None, kind: str = "hpo",
                  output: str = "study.h5", name: str = "study.toml", body: str | None = None,
                  resources: dict | None = None) -> Path:
    """Write FOLDER/NAME: a `kind` campaign (or `body`), [output] path, [resources] and
    [slurm] tables."""
    text = (body or CAMPAIGNS[kind]) + f"[output]\npath = {toml_value(output)}\n"
    if resources is not None:
        text += "[resources]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in resources.items())
    if slurm_table is not None:
        text += "[slurm]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in slurm_table.items())
    path = folder / name
    path.write_text(text)
    return path




@pytest.fixture(scope="session")
def write_config():
    """write_config(folder, {slurm keys}, kind="hpo", output="study.h5", name="study.toml",
    body=None, resources=None) -> config path: a campaign config with a [slurm] table."""
    return _write_config


# -- a stand-in for hpcopt in job scripts ------------------------------------------------

STANDIN = '''\
#!{python}
"""Stand-in for hpcopt in job scripts: records its argv, rank and environment as JSON.

STANDIN_DIR: where records go; STANDIN_MODE: "exit" (at once), "sleep:S" (S seconds) or
"wait" (until SIGUSR1/SIGTERM, then exit 3 like an interrupted hpcopt, after
STANDIN_STOP_DELAY seconds of "checkpointing"); STANDIN_MPI=1: initialise MPI (mpi4py)
and record rank and size.
"""
import json, os, signal, socket, sys, time

env = os.environ
rank, size = int(env.get("PMI_RANK", env.get("SLURM_PROCID", "0"))), None
if env.get("STANDIN_MPI") == "1":
    from mpi4py import MPI
    rank, size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
key = f"{{env.get('SLURM_JOB_ID', 'nojob')}}-{{rank}}"
path = os.path.join(env["STANDIN_DIR"], key + ".json")
record = {{"argv": sys.argv[1:], "rank": rank, "size": size, "cwd": os.getcwd(),
           "host": socket.gethostname(), "start": time.time(), "end": None, "signal": None,
           "env": {{k: v for k, v in env.items()
                   if k.startswith(("SLURM_", "PMI_", "STANDIN_", "OMP_", "HPCOPT_TEST"))}}}}


def save():
    with open(path + ".tmp", "w") as f:
        json.dump(record, f)
    os.replace(path + ".tmp", path)


def stop(signum, frame):
    if record["signal"]:                       # a second stop request while stopping
        return
    record["signal"] = signal.Signals(signum).name
    time.sleep(float(env.get("STANDIN_STOP_DELAY", "0")))     # "checkpointing"
    record["end"] = time.time()
    save()
    sys.exit(3)


signal.signal(signal.SIGUSR1, stop)
signal.signal(signal.SIGTERM, stop)
save()
mode = env.get("STANDIN_MODE", "exit")
if mode.startswith("sleep:"):
    time.sleep(float(mode.split(":", 1)[1]))
elif mode == "wait":
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(0.1)
record["end"] = time.time()
save()
'''


def _make_standin(folder: Path) -> Path:
    """Write FOLDER/"stand in"/fake_hpcopt.py (a path with a space) and FOLDER/records/.

    Not a space in the file name itself: it becomes the process name, and SLURM's
    proctrack/linuxproc (used here) then cannot find the process to signal or kill it.
    """
    (folder / "stand in").mkdir(parents=True, exist_ok=True)
    (folder / "records").mkdir(exist_ok=True)
    path = folder / "stand in" / "fake_hpcopt.py"
    path.write_text(STANDIN.format(python=sys.executable))
    path.chmod(0o755)
    return path


def read_records(folder: Path) -> list[dict]:
    """Every stand-in record (JSON) in a folder."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@pytest.fixture(scope="session")
def make_standin():
    """make_standin(folder) -> path of an executable hpcopt stand-in; records go to
    folder/records (set STANDIN_DIR to it); see STANDIN for the modes."""
    return _make_standin


@pytest.fixture
def standin(tmp_path) -> Path:
    """An hpcopt stand-in in tmp_path ("stand in/fake_hpcopt.py"); records in tmp_path/records."""
    return _make_standin(tmp_path)


@pytest.fixture(scope="session")
def records():
    """records(folder) -> the stand-in records (dicts) in that folder."""
    return read_records
