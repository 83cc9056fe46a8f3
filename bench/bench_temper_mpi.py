"""Parallel tempering under MPI (issue 5 figures; bench_temper.py has the in-process side).

1. Exchange overhead per round against the step work, at 1 and 3 ranks, for a cheap
   compiled energy (Ising L=16), a cheap Python energy (4-D Gaussian) and the 2 ms
   energy of bench_temper.  Measured inside `hpcopt temper` itself: this file is also a
   driver (``--driver DIR``) that runs the real CLI with `TemperCampaign` subclassed to
   keep its per-phase timings, so every rank reports step ("advance") seconds and the
   run loop's elapsed seconds (the temper result file has no timing attr).
   step = the slowest rank's advance time per round (the critical path);
   overhead = loop wall per round - step (the gather, exchange decisions, statistics,
   recording and checkpoints); where it goes on rank 0: gather (waiting included),
   sample (the T_min state), decide (decisions, statistics, record), record (the
   writer: rows, progress, HDF5 flushes), checkpoint.  Cross-check without the
   driver's numbers: the subprocess wall time of R rounds minus that of a rounds=1
   run, over R - 1.  The Ising problem also runs at 3 ranks with [run] wait = "spin".
   Baseline for the 3-rank overhead: bare exchanges of one float64 row per replica,
   300 rounds at 3 ranks (what the machine charges per collective): MPI's Iallgather
   with hpcopt's quiet wait, MPI's blocking Allgather, and hpcopt's MpiCollective with
   quiet waits (the direct exchange).
2. Speed-up of the 4-replica 2 ms campaign at 3 ranks over 1 rank (loop wall).
3. The same campaign with the seed's multiprocessing.Pool design (bench_temper.pool_campaign,
   pool start included): wall ratio Pool / hpcopt at 3 ranks, with Pool(3) (as many
   processes stepping replicas as hpcopt's 3 ranks) and Pool(2) (3 processes in all),
   run in turn with hpcopt POOL_REPEATS times (medians), and a check that the chains are
   identical.
"""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

CAMPAIGN = {"replicas": 4, "rounds": 40, "interval": 10}     # the 2 ms campaign

PROBLEMS = {   # name -> (config text without [output], rounds)
    "ising_L16_R8_10sweeps": ("""
        [temper]
        replicas = 8
        t_min = 1.5
        t_max = 4.0
        exchange_interval = 10
        rounds = {rounds}
        [problem]
        name = "ising"
        L = 16
        [run]
        seed = 1
        """, 300),
    "gaussian_py_R8_10steps": ("""
        [temper]
        replicas = 8
        t_min = 1.0
        t_max = 10.0
        exchange_interval = 10
        rounds = {rounds}
        [problem]
        function = "bench_temper:cheap_energy"
        x0 = [0.0, 0.0, 0.0, 0.0]
        step = 1.0
        [run]
        seed = 1
        """, 300),
}


def _costly_text(rounds: int) -> str:
    from bench_temper import campaign_toml
    return campaign_toml(CAMPAIGN["replicas"], rounds, CAMPAIGN["interval"])


# -- driver: `hpcopt temper` with the campaign's timings kept --------------------------------

def driver(out_dir: Path, argv: list[str]) -> int:
    """Run the hpcopt CLI; each rank writes timing.<rank>.json (advance/exchange/sample
    seconds, rounds, replicas owned, loop elapsed)."""
    from hpcopt.temper import runner
    kept: dict = {}

    class TimedCampaign(runner.TemperCampaign):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            kept["campaign"] = self

        def run(self, *args, **kwargs):       # the round loop alone (loop_s)
            t0 = time.perf_counter()
            try:
                return super().run(*args, **kwargs)
            finally:
                self.timings["loop"] = self.timings.get("loop", 0.0) + time.perf_counter() - t0

    original_run = runner.run_temper

    def timed_run(session):
        outcome = original_run(session)
        camp, world = kept["campaign"], session.world
        data = dict(camp.timings, rank=world.rank, size=world.size, owned=len(camp.replicas),
                    elapsed=session.elapsed())
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"timing.{world.rank}.json").write_text(json.dumps(data))
        return outcome

    runner.TemperCampaign = TimedCampaign
    runner.run_temper = timed_run
    from hpcopt.cli import main
    return main(argv)


# -- measurements ----------------------------------------------------------------------------

def _temper(d: Path, name: str, text: str, ranks: int):
    """(subprocess Run, per-rank timings, result path) of one `hpcopt temper` run."""
    from mpi_bench import run_hpcopt
    cfg = d / f"{name}-{ranks}.toml"
    out = d / f"{name}-{ranks}.h5"
    cfg.write_text(textwrap.dedent(text) + f"\n[output]\npath = \"{out.name}\"\n")
    tdir = d / f"timing-{name}-{ranks}"
    run = run_hpcopt(["temper", str(cfg), "-q", "--force"], ranks, d,
                     script=[str(Path(__file__).resolve()), "--driver", str(tdir)])
    timings = [json.loads(p.read_text()) for p in sorted(tdir.glob("timing.*.json"))]
    assert len(timings) == ranks, f"{len(timings)} timing files for {ranks} ranks"
    return run, timings, out


PHASES = ("gather", "sample", "decide", "record", "checkpoint")


def overhead(d: Path, name: str, text: str, rounds: int, ranks: int,
             wait: str | None = None) -> dict:
    """Figures of one campaign at `ranks` ranks ([run] wait as given, default auto)."""
    if wait is not None:
        text = textwrap.dedent(text).replace("[run]\n", f"[run]\nwait = \"{wait}\"\n")
    run_r, tm, out = _temper(d, name, text.format(rounds=rounds), ranks)
    run_1, _, _ = _temper(d, name + "-r1", text.format(rounds=1), ranks)
    root = next(t for t in tm if t["rank"] == 0)
    critical = max(tm, key=lambda t: t["advance"])
    wall = root["elapsed"] / rounds           # the campaign: start-up and summary included
    loop = root["loop"] / rounds              # the round loop alone
    step = critical["advance"] / rounds
    cli = (run_r.wall_s - run_1.wall_s) / (rounds - 1)
    phases = {f"rank0_{p}_ms_per_round": 1e3 * root.get(p, 0.0) / rounds for p in PHASES}
    phases["rank0_rest_ms_per_round"] = 1e3 * (loop - root["advance"] / rounds) - sum(
        phases.values())      # the loop around the round (stop and checkpoint-clock checks)
    return {"ranks": ranks, "rounds": rounds, "wait": wait or "auto",
            "replicas_per_rank": [t["owned"] for t in sorted(tm, key=lambda t: t["rank"])],
            "wall_ms_per_round": 1e3 * wall,
            "loop_ms_per_round": 1e3 * loop,
            "step_ms_per_round": 1e3 * step,
            # the exchange overhead: the loop's time per round beyond the slowest rank's step
            "overhead_ms_per_round": 1e3 * (loop - step),
            "overhead_fraction": (loop - step) / loop,
            # the same with the campaign's fixed costs (file, compile cache, summary) spread
            # over the rounds
            "campaign_overhead_ms_per_round": 1e3 * (wall - step),
            **phases,
            "cli_ms_per_round": 1e3 * cli,             # (wall(R) - wall(1)) / (R - 1), subprocess
            "subprocess_wall_s": run_r.wall_s, "startup_wall_s_rounds1": run_1.wall_s,
            "_file": str(out)}


BARE_ALLGATHER = """
import sys, time
import numpy as np
from mpi4py import MPI
from hpcopt.mpi.collective import MpiCollective
from hpcopt.mpi.runtime import get_world, set_wait_mode, wait_quietly
comm = MPI.COMM_WORLD
rounds, rows = int(sys.argv[1]), int(sys.argv[2])
local = np.zeros((rows, 5))
full = np.empty((rows * comm.size, 5))
set_wait_mode("quiet")
collective = MpiCollective(get_world(), rows * comm.size)
def quiet():
    wait_quietly(comm.Iallgather(local, full))
def blocking():
    comm.Allgather(local, full)
def direct():
    collective.allgather(local)
out = []
for fn in (quiet, blocking, direct):
    comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(rounds):
        fn()
    out.append(1e3 * (time.perf_counter() - t0) / rounds)
if comm.rank == 0:
    print(*out)
"""


def bare_allgather(d: Path, ranks: int = 3, rounds: int = 300) -> dict:
    """ms per round of a bare allgather of one float64 row per replica (8 replicas):
    hpcopt's quiet wait (Iallgather + backoff sleeps) and MPICH's blocking (spinning)
    Allgather: what the machine charges for a collective, without hpcopt around it."""
    from mpi_bench import MPIEXEC, PY, run_cmd
    script = d / "bare_allgather.py"
    script.write_text(BARE_ALLGATHER)
    rows = -(-8 // ranks)
    out = run_cmd([MPIEXEC, "-n", str(ranks), PY, str(script), str(rounds), str(rows)], d)
    quiet, blocking, direct = (float(x) for x in out.stdout.split())
    return {"ranks": ranks, "quiet_wait_ms_per_round": quiet,
            "blocking_ms_per_round": blocking, "direct_quiet_ms_per_round": direct}


POOL_REPEATS = 3


def pool_vs_hpcopt(d: Path, text: str) -> dict:
    """hpcopt at 3 ranks and the Pool design side by side, POOL_REPEATS times in turn (a
    shared machine's load changes between runs): median walls and median ratios."""
    import statistics

    import h5py
    import numpy as np
    from bench_temper import pool_campaign
    walls: dict[str, list[float]] = {"hpcopt": [], "pool_3": [], "pool_2": []}
    same = True
    for _ in range(POOL_REPEATS):
        fig = overhead(d, "costly-pool", text, CAMPAIGN["rounds"], 3)
        walls["hpcopt"].append(fig["wall_ms_per_round"] * CAMPAIGN["rounds"] / 1e3)
        with h5py.File(fig["_file"], "r") as f:
            energies = f["rounds_energy"][()]        # format 2: vectors beside the table
        for workers in (3, 2):
            wall, pool_energies = pool_campaign(CAMPAIGN["replicas"], CAMPAIGN["rounds"],
                                                CAMPAIGN["interval"], workers)
            walls[f"pool_{workers}"].append(wall)
            same &= bool(np.array_equal(pool_energies, energies))
    out = {f"{k}_wall_s": statistics.median(v) for k, v in walls.items()}
    for workers in (3, 2):
        ratios = [p / h for p, h in zip(walls[f"pool_{workers}"], walls["hpcopt"])]
        out[f"pool_{workers}_workers_over_hpcopt_3ranks"] = statistics.median(ratios)
    out["same_chains"] = same
    out["walls_s"] = walls
    return out


def run() -> dict:
    from mpi_bench import load_average
    load_before = load_average()
    t_start = time.monotonic()
    detail: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        _temper(d, "warmup", PROBLEMS["ising_L16_R8_10sweeps"][0].format(rounds=2), 1)  # numba cache
        problems = dict(PROBLEMS)
        problems["costly2ms_R4_10steps"] = (_costly_text(CAMPAIGN["rounds"]).replace(
            f"rounds = {CAMPAIGN['rounds']}", "rounds = {rounds}"), CAMPAIGN["rounds"])
        for name, (text, rounds) in problems.items():
            for ranks in (1, 3):
                detail[f"{name}/{ranks}rank"] = overhead(d, name, text, rounds, ranks)
        ising, rounds = PROBLEMS["ising_L16_R8_10sweeps"]
        detail["ising_L16_R8_10sweeps/3rank/spin"] = overhead(d, "ising-spin", ising, rounds, 3,
                                                              wait="spin")
        c1, c3 = detail["costly2ms_R4_10steps/1rank"], detail["costly2ms_R4_10steps/3rank"]
        wall1 = c1["wall_ms_per_round"] * c1["rounds"] / 1e3
        wall3 = c3["wall_ms_per_round"] * c3["rounds"] / 1e3
        pool = pool_vs_hpcopt(d, problems["costly2ms_R4_10steps"][0])
        bare = bare_allgather(d)
    for fig in detail.values():
        fig.pop("_file")
    serial = CAMPAIGN["replicas"] * CAMPAIGN["rounds"] * CAMPAIGN["interval"] * 0.002
    flat: dict = {}
    for key, fig in detail.items():
        flat[f"{key} step ms/round"] = fig["step_ms_per_round"]
        flat[f"{key} overhead ms/round"] = fig["overhead_ms_per_round"]
        flat[f"{key} overhead fraction"] = fig["overhead_fraction"]
    for name in problems:
        flat[f"{name} overhead 3 ranks / 1 rank"] = (detail[f"{name}/3rank"]["overhead_ms_per_round"]
                                                     / detail[f"{name}/1rank"]["overhead_ms_per_round"])
    flat.update({
        "costly campaign serial energy s": serial,
        "costly campaign 1 rank loop s": wall1,
        "costly campaign 3 ranks loop s": wall3,
        "costly campaign speed-up 3 ranks over 1": wall1 / wall3,
        "costly campaign speed-up 3/1 (subprocess wall)": c1["subprocess_wall_s"]
        / c3["subprocess_wall_s"],
        "bare quiet Iallgather 3 ranks ms/round": bare["quiet_wait_ms_per_round"],
        "bare blocking Allgather 3 ranks ms/round": bare["blocking_ms_per_round"],
        "bare direct exchange (quiet) 3 ranks ms/round": bare["direct_quiet_ms_per_round"],
        "pool(3 workers) / hpcopt 3 ranks wall": pool["pool_3_workers_over_hpcopt_3ranks"],
        "pool(2 workers) / hpcopt 3 ranks wall": pool["pool_2_workers_over_hpcopt_3ranks"],
        "pool chains identical to hpcopt": pool["same_chains"],
    })
    return {**flat, "campaign": dict(CAMPAIGN, energy_ms=2.0), "overhead": detail, "pool": pool,
            "load_average_before": load_before, "load_average_after": load_average(),
            "suite_seconds": round(time.monotonic() - t_start, 1)}


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--driver":
        sys.exit(driver(Path(sys.argv[2]), sys.argv[3:]))
    print(json.dumps(run(), indent=2))
