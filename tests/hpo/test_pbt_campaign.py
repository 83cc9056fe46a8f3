"""The PBT kind on the task farm at world size 1 (in process): result file, report, stop and
resume."""

import json

import h5py
import numpy as np
import pytest

from hpcopt.campaign.contract import CampaignRequest
from hpcopt.campaign.lifecycle import execute, prepare
from hpcopt.hpo.pbt.lineage import lineage_dtype
from hpcopt.hpo.pbt.plot import FIGURES as PBT_FIGURES
from hpcopt.hpo.pbt.plot import is_pbt_table, plot_lineage_file, read_lineage
from hpcopt.mpi import runtime
from hpcopt.report.figures import PlotContext
from hpcopt.report.summary import contract_json, summarize_file
from hpcopt.store import schema

CONFIG = """
[hpo]
scheduler = "pbt"
direction = "minimize"
[hpo.pbt]
population = 4
perturbation_interval = 10
max_steps = 50
quantile_fraction = 0.25
[objective]
function = "{function}"
[space]
lr = {{ type = "loguniform", low = 1e-3, high = 1.5 }}
[run]
seed = 3
[output]
path = "pbt.h5"
"""

STOPPER = """
import signal
from hpcopt.mpi import runtime
from hpcopt.toys.pbt_toy import annealing

CALLS = [0]

def train(params, ctx):
    CALLS[0] += 1
    if CALLS[0] == 7:                        # as if SIGUSR1 arrived during the 7th segment
        runtime._STOP["signal"] = signal.SIGUSR1
    return annealing(params, ctx)
"""

WORLD = runtime.World(comm=None, rank=0, size=1, host="testhost")


def request(config, resume=False):
    return CampaignRequest("hpo", config, resume=resume, quiet=True)


def run_pbt(config, resume=False) -> dict:
    """The campaign in this process (rank 0 of a world of one); its summary."""
    return execute(WORLD, request(config, resume)).summary


@pytest.fixture(autouse=True)
def no_stop():
    runtime.reset_stop()
    yield
    runtime.reset_stop()


def write(tmp_path, function="hpcopt.toys.pbt_toy:annealing"):
    path = tmp_path / "pbt.toml"
    path.write_text(CONFIG.format(function=function))
    return path


def ok_rows(path):
    rows = read_lineage(path)
    return rows[rows["status"] != schema.PENDING]


def test_campaign_writes_the_lineage_and_the_report_reads_it(tmp_path):
    plan = prepare(request(write(tmp_path)))
    summary = run_pbt(write(tmp_path))
    assert summary["status"] == "complete" and summary["n_rows"] >= 4 * 5
    with h5py.File(tmp_path / "pbt.h5", "r") as f:
        assert f["trials"].shape == (summary["n_rows"],)       # no pending tail
    rows = ok_rows(tmp_path / "pbt.h5")
    assert is_pbt_table(rows.dtype) and rows.dtype == lineage_dtype(plan.config.hpo.space)
    assert np.all(rows["status"] == schema.OK) and np.all(rows["rank"] == 0)
    assert sorted(set(rows[rows["end_step"] == 50]["member"].tolist())) == [0, 1, 2, 3]
    with h5py.File(tmp_path / "pbt.h5", "r") as f:
        assert f["trials"].attrs["scheduler"] == "pbt" and f.attrs["kind"] == "hpo"
    report = contract_json(summarize_file(tmp_path / "pbt.h5"))
    best = int(np.argmin(rows["objective"]))
    assert report["kind"] == "hpo" and report["status"] == "complete"
    assert report["n_ok"] == report["n_tasks"] == len(rows) and report["n_failed"] == 0
    assert report["best"]["objective"] == pytest.approx(rows["objective"][best])
    assert report["best"]["params"] == json.loads(rows["params_json"][best])
    # one checkpoint per member is left: its final state
    left = sorted(p.relative_to(tmp_path / "pbt_pbt").as_posix()
                  for p in (tmp_path / "pbt_pbt").glob("member_*/seg_*"))
    finals = sorted(r["checkpoint"].decode() if isinstance(r["checkpoint"], bytes) else r["checkpoint"]
                    for r in rows[rows["end_step"] == 50])
    assert left == finals
    png = plot_lineage_file(tmp_path / "pbt.h5", tmp_path / "lineage.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    # the figure function for `hpcopt report --plots` (report/plots.py PlotContext)
    notes = []
    with h5py.File(tmp_path / "pbt.h5", "r") as f:
        ctx = PlotContext(f, tmp_path / "pbt.h5", tmp_path / "plots", notes.append)
        (tmp_path / "plots").mkdir()
        for figure in PBT_FIGURES:
            figure(ctx)
    assert [p.name for p in ctx.written] == ["pbt_lineage.png"] and not notes
    assert ctx.written[0].read_bytes()[:4] == b"\x89PNG"


def test_stop_then_resume_continues_every_member(tmp_path):
    (tmp_path / "pbt_stopper_obj.py").write_text(STOPPER)
    config = write(tmp_path, "pbt_stopper_obj:train")
    first = run_pbt(config)
    assert first["status"] == "interrupted" and first["signal"] == "SIGUSR1"
    before = ok_rows(tmp_path / "pbt.h5")
    assert len(before) == 7
    runtime.reset_stop()
    second = run_pbt(config, resume=True)
    assert second["status"] == "complete"
    rows = ok_rows(tmp_path / "pbt.h5")
    assert len(rows) == second["n_rows"] and np.array_equal(rows[:7], before)
    assert len(set(rows["task_id"].tolist())) == len(rows)
    end = {int(r["task_id"]): int(r["end_step"]) for r in rows}
    for r in rows[7:]:       # the toy also checks that each restored checkpoint is at start_step
        assert r["start_step"] == (end[int(r["parent_task"])] if r["parent_task"] >= 0 else 0)
    assert sorted(set(rows[rows["end_step"] == 50]["member"].tolist())) == [0, 1, 2, 3]
    with h5py.File(tmp_path / "pbt.h5", "r") as f:
        assert f.attrs["status"] == "complete" and int(f.attrs["resumes"]) == 1


def test_source_and_evaluator_speak_the_farm_protocol(tmp_path):
    from hpcopt.farm import run_task
    from hpcopt.hpo.pbt.campaign import PbtEvaluator, PbtSource
    from hpcopt.hpo.pbt.policy import PbtPolicy
    from hpcopt.store.dtypes import OUTCOME_DTYPE as TRANSPORT_DTYPE
    plan = prepare(request(write(tmp_path)))
    policy = PbtPolicy.from_config(plan.config.hpo, seed=0, output_path=plan.paths.output)
    written = []
    source = PbtSource(policy, written.append)
    evaluator = PbtEvaluator(plan.config.hpo, "rank 5 on testhost")
    first, second = source.next_task(), source.next_task()
    row = run_task(evaluator, first, TRANSPORT_DTYPE, 5, None, lambda s, v: False)
    assert row["status"][0] == schema.OK
    # a row the farm made itself (the worker died or timed out): no outcome text
    lost = schema.empty_rows(TRANSPORT_DTYPE, [second.task_id])
    lost["status"], lost["rank"] = schema.TIMEOUT, 2
    lost["message"] = schema.encode_message("task exceeded its time limit of 5 s")
    source.on_results(np.concatenate([row, lost]))
    source.write()
    rows = np.concatenate(written)
    assert rows["task_id"].tolist() == [first.task_id, second.task_id]
    assert rows["rank"].tolist() == [5, 2] and rows["worker"][0] == "rank 5 on testhost"
    assert rows["state"].tolist() == ["complete", "failed"]
    assert "time limit" in rows["error"][1] and rows["status"][1] == schema.FAILED
    assert not source.exhausted()
