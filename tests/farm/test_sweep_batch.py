"""The sweep's fast path (evaluate_many: a chunk in one loop) gives the rows that
evaluating its tasks one by one gives, failures included."""

import numpy as np
import pytest

from hpctest import write_config
from hpcopt.farm import RowBuilder, Task, TaskRunner
from hpcopt.farm.evaluate import never_stop
from hpcopt.store import dtypes, schema
from hpcopt.campaign.registry import get
from hpcopt.campaign.source import kind_config
from hpcopt.sweep.engine import SweepEvaluator, build_design, build_target, design_points

CFG = """
[objective]
function = "testobj:{func}"
[parameters]
x = {{ min = -2.0, max = 2.0, points = 7 }}
y = {{ min = -2.0, max = 2.0, points = 7 }}
[search]
method = "{search}"
{samples}
[local]
method = "none"
[output]
path = "out.h5"
"""


def evaluator(tmp_path, func="failing", search="grid"):
    samples = "samples = 40" if search != "grid" else ""
    cfg = kind_config(get("sweep"), write_config(tmp_path / "c.toml", CFG.format(
        func=func, search=search, samples=samples)), None)
    problem = build_target(cfg)
    return SweepEvaluator(cfg, problem, build_design(cfg, problem))


def without_times(rows):
    return {n: rows[n] for n in rows.dtype.names if n not in ("t_start", "wall")}


@pytest.mark.parametrize("search", ["grid", "sobol", "random"])
def test_evaluate_many_equals_one_by_one(tmp_path, search):
    ev = evaluator(tmp_path, search=search)
    ids = np.array([3, 4, 5, 9, 10, 30, 31, 2], dtype=np.int64)     # runs and a jump back
    dtype = dtypes.sweep_dtype(2)
    one = RowBuilder(dtype, 1)
    runner = TaskRunner(ev, 1, None)
    for t in ids.tolist():
        one.add(Task(t), *runner.run(Task(t), never_stop), 0.0, 0.0)
    many = RowBuilder(dtype, 1)
    assert runner.run_many(ids, many) == len(ids)
    a, b = without_times(one.take()), without_times(many.take())
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    statuses = set(b["status"].tolist())
    if search == "grid":
        assert statuses == {schema.OK, schema.FAILED}      # raised, nan and inf starts fail


def test_design_points_of_any_ids_match_point_by_point(tmp_path):
    ev = evaluator(tmp_path, search="lhs")
    ids = np.array([0, 1, 2, 7, 8, 39, 5], dtype=np.int64)
    np.testing.assert_array_equal(design_points(ev.design, ids),
                                  np.array([ev.design.point(i) for i in ids]))
    assert design_points(ev.design, ids[:0]).shape == (0, 2)
