"""PBT against a fixed-hyperparameter population on the annealing toy; the lineage plot."""

import numpy as np
import pytest

from hpcopt.toys import pbt_toy
from hpcopt.hpo.pbt.lineage import lineage_rows
from hpcopt.hpo.pbt.plot import plot_lineage

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_toy_needs_a_schedule():
    """The premise: a decaying learning rate beats the best fixed one by a wide margin."""
    lr, fixed = pbt_toy.best_fixed_loss(200)
    decay = pbt_toy.schedule_loss(np.geomspace(1.0, 0.02, 200))
    assert pbt_toy.LR_RANGE[0] < lr < pbt_toy.LR_RANGE[1]
    assert decay < 0.6 * fixed
    # and the grid optimum is a real optimum: neighbours on either side are worse
    assert pbt_toy.schedule_loss([lr * 1.3] * 200) > fixed < pbt_toy.schedule_loss([lr / 1.3] * 200)


def test_no_exploit_population_is_the_fixed_population(tmp_path):
    from hpcopt.hpo.pbt.policy import PbtPolicy
    from hpcopt.hpo.pbt.config import PbtSettings
    from hpcopt.hpo.pbt.runner import run_segment
    from hpcopt.toys.pbt_sim import simulate
    s = PbtSettings(population=8, perturbation_interval=5, max_steps=50, quantile_fraction=0.0)
    policy = PbtPolicy(s, pbt_toy.toy_space(), root=tmp_path, seed=0)
    initial = [m.params["lr"] for m in policy.members]
    result = simulate(policy, lambda p: run_segment(pbt_toy.annealing, p), n_workers=4,
                      cost=pbt_toy.uneven_cost)
    finals = {r.spec.member: r.outcome.score for r in result.records if r.spec.end_step == 50}
    for m, lr in enumerate(initial):
        assert finals[m] == pytest.approx(pbt_toy.schedule_loss([lr] * 50), rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_pbt_beats_fixed_hyperparameters_with_the_same_budget(tmp_path, seed):
    # 8 members, 4 workers, segments of 5 steps, 200 steps; exploits that copy a member
    # behind cost extra steps, so each fixed member gets ceil(PBT's steps / 8) >= 200 steps
    r = pbt_toy.compare_with_fixed(seed, tmp_path, cleanup=False)
    assert r["steps"] >= 8 * 200
    assert r["pbt"] < r["fixed_population"]    # the same 8 initial learning rates, kept
    assert r["pbt"] < r["best_fixed_lr"]       # better than any fixed lr, not only those 8
    # the winner learned a schedule: along its ancestry (restored checkpoints back to a
    # fresh start) the learning rate ended well below where it started
    ok = [x for x in r["records"] if x.ok]
    by_task = {x.spec.task_id: x.spec for x in ok}
    spec = min((x for x in ok if x.spec.end_step == 200), key=lambda x: x.outcome.score).spec
    lrs = [spec.params["lr"]]
    while spec.parent_task >= 0:
        spec = by_task[spec.parent_task]
        lrs.append(spec.params["lr"])
    assert len(lrs) == 200 // 5 and lrs[0] < 0.5 * lrs[-1]      # lrs[0] is the last segment's


def test_lineage_plot_is_written(tmp_path):
    r = pbt_toy.compare_with_fixed(1, tmp_path / "ckpt", population=5, interval=10,
                                   max_steps=60)
    rows = lineage_rows(r["records"], r["space"])
    out = plot_lineage(rows, tmp_path / "plots" / "lineage.png")
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 10_000
    with pytest.raises(ValueError, match="p_momentum"):
        plot_lineage(rows, tmp_path / "x.png", params=["momentum"])
    only_score = plot_lineage(rows, tmp_path / "score.svg", params=[], log_score=True)
    assert only_score.read_text().lstrip().startswith("<?xml")
