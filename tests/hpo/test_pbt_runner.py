"""The PBT worker runner: context, .npz checkpoints, scores, errors as data."""

import json
import math
import time

import numpy as np
import pytest

from hpcopt.hpo.pbt.lineage import SegmentOutcome, SegmentSpec
from hpcopt.hpo.pbt.runner import (STATE_FILE, check_pbt_objective, load_pbt_objective,
                                   run_segment)


def spec(tmp_path, **kw):
    base = dict(task_id=7, member=2, segment=3, params={"lr": 0.1}, start_step=20, end_step=30,
                checkpoint_dir=str(tmp_path / "member_2" / "seg_3"), restore_from=None, seed=5)
    base.update(kw)
    return SegmentSpec(**base).to_dict()


def counter(params, ctx):
    """State: a running sum of lr per step."""
    state = ctx.load()
    total = float(state["total"]) if state else 0.0
    for step in ctx.steps:
        total += params["lr"]
        ctx.report(step, total)
    ctx.save(total=total, step=ctx.end_step)
    return total


def test_fresh_segment_saves_an_npz_checkpoint(tmp_path):
    out = run_segment(counter, spec(tmp_path), worker="rank 1")
    assert json.loads(json.dumps(out)) == out            # JSON-able as it stands
    o = SegmentOutcome.from_dict(out)
    assert (o.task_id, o.state, o.last_step, o.worker) == (7, "complete", 30, "rank 1")
    assert o.score == pytest.approx(1.0) and o.duration >= 0 and o.error is None
    with np.load(tmp_path / "member_2" / "seg_3" / STATE_FILE, allow_pickle=False) as f:
        assert float(f["total"]) == pytest.approx(1.0) and int(f["step"]) == 30


def test_restore_reads_the_other_checkpoint_and_leaves_it_alone(tmp_path):
    run_segment(counter, spec(tmp_path))
    donor = tmp_path / "member_2" / "seg_3"
    before = (donor / STATE_FILE).read_bytes()
    out = run_segment(counter, spec(tmp_path, task_id=8, member=4, segment=0, start_step=30,
                                    end_step=40, checkpoint_dir=str(tmp_path / "m4"),
                                    restore_from=str(donor)))
    assert out["score"] == pytest.approx(2.0)
    assert (donor / STATE_FILE).read_bytes() == before


def test_context_fields(tmp_path):
    seen = {}

    def probe(params, ctx):
        seen.update(member=ctx.member, segment=ctx.segment, steps=list(ctx.steps), seed=ctx.seed,
                    empty=list(ctx.checkpoint_dir.iterdir()), restore=ctx.restore_from,
                    loaded=ctx.load())
        params["lr"] = 99                                 # a copy: the spec is not changed
        return 1.5

    payload = spec(tmp_path)
    (tmp_path / "member_2" / "seg_3").mkdir(parents=True)
    (tmp_path / "member_2" / "seg_3" / "stale.txt").write_text("left by a killed run")
    assert run_segment(probe, payload)["score"] == 1.5
    assert seen == {"member": 2, "segment": 3, "steps": list(range(21, 31)), "seed": 5,
                    "empty": [], "restore": None, "loaded": None}
    assert payload["params"] == {"lr": 0.1}


def test_score_is_the_last_reported_value_when_the_objective_returns_none(tmp_path):
    def reports(params, ctx):
        for step in ctx.steps:
            ctx.report(step, -step)

    out = run_segment(reports, spec(tmp_path))
    assert (out["state"], out["score"], out["last_step"]) == ("complete", -30.0, 30)


def test_a_dict_result_keeps_its_extra_keys_as_info(tmp_path):
    out = run_segment(lambda p, ctx: {"value": 2.0, "acc": 0.9}, spec(tmp_path))
    assert out["score"] == 2.0 and out["info"] == {"acc": 0.9}


@pytest.mark.parametrize("func, text", [
    (lambda p, ctx: 1 / 0, "ZeroDivisionError"),
    (lambda p, ctx: math.nan, "objective returned nan"),
    (lambda p, ctx: None, "returned None and reported no value"),
    (lambda p, ctx: "x", "expected a number"),
])
def test_errors_become_failed_outcomes(tmp_path, func, text):
    out = run_segment(func, spec(tmp_path))
    assert out["state"] == "failed" and out["score"] is None and text in out["error"]


def test_timeout_fails_the_segment(tmp_path):
    def slow(params, ctx):
        while True:
            time.sleep(0.01)

    out = run_segment(slow, spec(tmp_path, timeout=0.2))
    assert out["state"] == "failed" and "timed out" in out["error"]


def test_report_is_forwarded(tmp_path):
    got = []
    run_segment(counter, spec(tmp_path), report=lambda s, v: got.append((s, v)) or False)
    assert [s for s, _ in got] == list(range(21, 31))


def test_signature_check():
    check_pbt_objective(counter)
    check_pbt_objective(lambda params, ctx, extra=1: 0)
    with pytest.raises(ValueError, match=r"\(params, ctx\)"):
        check_pbt_objective(lambda params: 0)
    with pytest.raises(ValueError):
        check_pbt_objective(lambda a, b, c: 0)


def test_load_pbt_objective_gives_config_errors(tmp_path):
    from hpcopt.errors import ConfigError
    from types import SimpleNamespace
    cfg = SimpleNamespace(objective=SimpleNamespace(function="hpcopt.toys.objectives:branin"),
                          source="pbt.toml", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="objective.function"):
        load_pbt_objective(cfg)
    cfg.objective.function = "hpcopt.toys.pbt_toy:annealing"
    assert callable(load_pbt_objective(cfg))
