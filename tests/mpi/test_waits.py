"""The wait policy ([run] wait): how it resolves, how a wait polls, and that it reaches
every wait of a real job (tempering rounds, the sweep farm) under mpiexec."""

import math
import os
import time

import psutil
import pytest

from hpctest import RANKS, run, start, wait_for_rows, write_config
from hpcopt.mpi import runtime
from test_temper_mpi import rank_pids

pytestmark = pytest.mark.mpi


@pytest.fixture(autouse=True)
def default_mode():
    yield
    runtime.set_wait_mode("quiet")


def test_policies_resolve_from_cores_per_rank():
    assert runtime.set_wait_mode("quiet", 8.0).spin_seconds == 0.0
    assert runtime.set_wait_mode("spin", 0.5).spin_seconds == math.inf
    auto = runtime.set_wait_mode("auto", 1.0)
    assert auto.spin_seconds == runtime.AUTO_SPIN_SECONDS and not auto.quiet
    assert runtime.set_wait_mode("auto", 2 / 3).quiet
    assert runtime.set_wait_mode("auto", None).quiet
    with pytest.raises(ValueError):
        runtime.set_wait_mode("busy")


def test_cores_per_rank_counts_the_node_union_and_slurm():
    shared = [{0, 1}, {0, 1}, {0, 1}]
    assert runtime.cores_per_rank(shared, env={}) == pytest.approx(2 / 3)
    bound = [{0}, {1}, {2}, {3}]
    assert runtime.cores_per_rank(bound, env={}) == 1.0
    assert runtime.cores_per_rank([{0}, {0}], env={}) == 0.5       # two ranks on one core
    assert runtime.cores_per_rank([set(range(8))] * 2, env={"SLURM_CPUS_PER_TASK": "2"}) == 2.0
    assert runtime.cores_per_rank([set(range(8))] * 8, env={"SLURM_CPUS_PER_TASK": "4"}) == 1.0


class FakeClock:
    """runtime's view of time: sleeping advances it, each poll costs 10 us."""

    def __init__(self):
        self.now, self.slept = 100.0, []

    def monotonic(self):
        return self.now

    def sleep(self, d):
        self.slept.append(d)
        self.now += d


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(runtime, "time", fake)
    return fake


def polls(backoff, clock, seconds):
    """Call backoff.sleep() (one poll each) for `seconds` of the fake clock; what it slept."""
    clock.slept = []
    end = clock.now + seconds
    while clock.now < end:
        backoff.sleep()
        clock.now += 1e-5
    return clock.slept


def test_a_quiet_wait_sleeps_from_the_first_poll(clock):
    runtime.set_wait_mode("quiet")
    slept = polls(runtime.Backoff(), clock, 0.01)
    assert slept[0] == runtime.BACKOFF_MIN and max(slept) == runtime.BACKOFF_SHORT
    slept = polls(runtime.Backoff(), clock, 0.2)
    assert max(slept) == runtime.BACKOFF_MAX            # a long wait settles at 2 ms


def test_auto_with_a_core_per_rank_spins_a_millisecond_then_sleeps(clock):
    runtime.set_wait_mode("auto", 1.0)
    backoff = runtime.Backoff()
    assert polls(backoff, clock, 0.9 * runtime.AUTO_SPIN_SECONDS) == []
    assert polls(backoff, clock, 0.01)[0] == runtime.BACKOFF_MIN


def test_spin_never_sleeps(clock):
    runtime.set_wait_mode("spin")
    assert polls(runtime.Backoff(), clock, 1.0) == []


def test_the_config_key_is_checked():
    import tomllib

    from hpcopt.config import parse_run
    from hpcopt.errors import ConfigError
    from hpcopt.tomlread import Table
    assert parse_run(Table({}, "", "c.toml")).wait == "auto"
    assert parse_run(Table(tomllib.loads("[run]\nwait = 'spin'"), "", "c.toml")).wait == "spin"
    with pytest.raises(ConfigError, match="c.toml: run.wait: expected one of 'auto', 'quiet'"):
        parse_run(Table(tomllib.loads("[run]\nwait = 'busy'"), "", "c.toml"))


# -- under mpiexec -------------------------------------------------------------------------

LAZY_RANK0 = '''
import time
from mpi4py import MPI

SLOW = MPI.COMM_WORLD.Get_rank() == 0


def energy(x):
    """A bowl whose evaluation takes 20 ms on rank 0 (sleeping) and nothing elsewhere."""
    if SLOW:
        time.sleep(0.02)
    return float(x @ x)
'''

IDLE = """
[temper]
replicas = 4
t_min = 1.0
t_max = 4.0
exchange_interval = 10
rounds = 40
[problem]
function = "lazy_rank0:energy"
x0 = [0.1, 0.2]
step = 0.3
[run]
wait = "{wait}"
[output]
path = "pt.h5"
"""


def cpu_share_of_waiting_ranks(tmp_path, wait: str) -> list[float]:
    """Ranks 1 and 2 of a 3-rank tempering job wait ~0.2 s per round for rank 0 (its one
    replica of the four: 10 steps of 20 ms): the part of a core each uses over 20 rounds
    (start-up excluded)."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "lazy_rank0.py").write_text(LAZY_RANK0)
    cfg = write_config(tmp_path / "pt.toml", IDLE.format(wait=wait))
    proc = start(["temper", cfg], n=3)
    try:
        ranks = {r: psutil.Process(pid) for r, pid in rank_pids(proc, 3).items()}
        wait_for_rows(tmp_path / "pt.h5", "rounds", 5, timeout=120)
        t0, cpu0 = time.monotonic(), {r: sum(p.cpu_times()[:2]) for r, p in ranks.items()}
        wait_for_rows(tmp_path / "pt.h5", "rounds", 25, timeout=120)
        t1, cpu1 = time.monotonic(), {r: sum(p.cpu_times()[:2]) for r, p in ranks.items()}
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
    assert t1 - t0 > 2.0
    return [(cpu1[r] - cpu0[r]) / (t1 - t0) for r in (1, 2)]


@pytest.mark.parametrize("wait", ["auto", "quiet"])
def test_waiting_tempering_ranks_stay_quiet_on_an_oversubscribed_node(tmp_path, wait):
    if len(os.sched_getaffinity(0)) >= 3:
        pytest.skip("3 ranks are not oversubscribed here: auto would spin briefly")
    shares = cpu_share_of_waiting_ranks(tmp_path, wait)
    assert max(shares) < 0.05, shares


def test_spin_reaches_the_tempering_waits(tmp_path):
    """The policy is not decoration: with spin, the same waiting ranks keep polling (what
    share of a core they get depends on the machine's load: compare with quiet ones)."""
    spin = cpu_share_of_waiting_ranks(tmp_path / "spin", "spin")
    quiet = cpu_share_of_waiting_ranks(tmp_path / "quiet", "quiet")
    assert min(spin) > max(0.02, 3 * max(quiet)), (spin, quiet)


MARKED = '''
import os
import time
from pathlib import Path


def objective(p):
    """Says it has started (a file per task), then sleeps 2 s."""
    Path(os.environ["MARK_DIR"], f"started.{p['x']:+.1f}").touch()
    time.sleep(2.0)
    return p["x"] ** 2
'''

SWEEP = """
[objective]
function = "marked:objective"
[parameters]
x = {{ min = -1.0, max = 1.0, points = 2 }}
y = {{ min = -1.0, max = 1.0, points = 1 }}
[local]
method = "none"
[run]
wait = "{wait}"
[output]
path = "out.h5"
"""


def test_the_farm_follows_the_policy(tmp_path):
    """A sweep of two 2 s tasks at 3 ranks: while both run, the coordinator only waits; with
    spin it polls without sleeping, with quiet it sleeps."""
    (tmp_path / "marked.py").write_text(MARKED)
    shares = {}
    for wait in ("spin", "quiet"):
        marks = tmp_path / wait
        marks.mkdir()
        cfg = write_config(tmp_path / f"{wait}.toml", SWEEP.format(wait=wait))
        proc = start(["sweep", cfg, "-o", tmp_path / f"{wait}.h5"], n=3, MARK_DIR=marks)
        try:
            root = psutil.Process(rank_pids(proc, 3)[0])
            deadline = time.monotonic() + 120
            while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            t0, c0 = time.monotonic(), sum(root.cpu_times()[:2])
            time.sleep(1.0)
            shares[wait] = (sum(root.cpu_times()[:2]) - c0) / (time.monotonic() - t0)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        finally:
            proc.kill()
    assert shares["quiet"] < 0.05 and shares["spin"] > max(0.02, 3 * shares["quiet"]), shares


@pytest.mark.parametrize("n", RANKS)
def test_auto_resolves_from_the_ranks_on_the_node(tmp_path, n):
    cfg = write_config(tmp_path / "pt.toml", IDLE.format(wait="auto").replace(
        'function = "lazy_rank0:energy"', 'name = "gaussian-mixture"').replace(
        "x0 = [0.1, 0.2]\nstep = 0.3\n", "").replace("rounds = 40", "rounds = 3"))
    proc = run(["temper", cfg, "-v"], n=n, check=True)
    cpus = len(os.sched_getaffinity(0))
    expect = "spin 0.001 s" if cpus >= n else "ranks share cores"
    assert f"waits: auto -> {expect}" in proc.stderr or expect in proc.stderr, proc.stderr[-2000:]


def run_script(tmp_path, text: str, n: int) -> dict:
    """Run a Python script under mpiexec at `n` ranks; the JSON of its last line."""
    import json
    import subprocess
    from hpctest import PY, env, mpiexec
    script = tmp_path / "script.py"
    script.write_text(text)
    out = subprocess.run([mpiexec(), "-n", str(n), PY, str(script)], capture_output=True,
                         text=True, timeout=120, env=env(), check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


LATE_RANKS = """
import json, sys, time
from hpcopt.mpi.runtime import configure_waits, get_world
from hpcopt.resources import Resources, apply_on_workers
world = get_world()
if world.rank:
    time.sleep(1.5)               # still importing a campaign's modules
c0, t0 = time.process_time(), time.monotonic()
configure_waits(world, "auto")
apply_on_workers(world, Resources())
if world.rank == 0:
    print(json.dumps({"cpu": time.process_time() - c0, "wall": time.monotonic() - t0}))
"""


def test_rank_0_waits_quietly_for_ranks_that_start_late(tmp_path):
    """The node-local collectives at a campaign's start (the wait policy, the workers'
    threads) begin with a quiet barrier: rank 0 used to spin in MPI_Comm_split_type for
    as long as the other ranks were still importing (0.6 s of a core in a tempering run),
    taking the CPU they imported with."""
    got = run_script(tmp_path, LATE_RANKS, 3)
    assert got["wall"] > 1.0                         # it did wait for the late ranks
    assert got["cpu"] < 0.15 * got["wall"], got      # ...without burning a core


ONE_POLL = """
import json, time
from mpi4py import MPI
from hpcopt.mpi.runtime import wait_quietly
from hpcopt.mpi.transport import MpiTransport
comm = MPI.COMM_WORLD
transport = MpiTransport(comm)
polled = tested = 0
for i in range(10):
    comm.Barrier()
    if comm.Get_rank() == 1:
        transport.send(i, 0, 3)
        transport.flush()
        comm.Barrier()
        comm.send(i, dest=0, tag=4)
    else:
        request = comm.irecv(source=1, tag=4)
        time.sleep(0.05)                  # a quiet wait's sleep: both have long arrived
        got = transport.poll()
        polled += got is not None
        got = got or transport.recv(timeout=30)
        comm.Barrier()
        time.sleep(0.05)
        done, _ = request.test()
        tested += bool(done)
        if not done:
            wait_quietly(request)
    comm.Barrier()
if comm.Get_rank() == 0:
    print(json.dumps({"polled": polled, "tested": tested}))
"""


def test_one_poll_after_a_sleep_sees_a_message_that_has_arrived(tmp_path):
    """MPICH's first probe after a rank has not called MPI for a while only moves an
    arrived message into its queue and reports nothing: every quiet wait saw its message
    one poll late (2-4 ms instead of 0-2 for an idle coordinator between trials): the
    transport probes again before it sleeps (polled: 0 of 10 before). A request's test
    after a sleep does see its completion (tested)."""
    got = run_script(tmp_path, ONE_POLL, 2)
    assert got == {"polled": 10, "tested": 10}, got
