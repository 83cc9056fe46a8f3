"""One rule for objective return values across kinds (issue 13 item 17)."""

import numpy as np
import pytest

from hpcopt.hpo.external import read_result
from hpcopt.hpo.objective import PythonRunner, parse_result
from hpcopt.hpo.trials import TrialSpec
from hpcopt.objective_value import objective_value
from hpcopt.sweep.problem import ObjectiveProblem

NUMBERS = [(3, 3.0), (2.5, 2.5), (np.float32(1.5), 1.5), (np.int64(7), 7.0),
           (np.array(2.25), 2.25)]
NOT_NUMBERS = ["1.5", b"1.5", True, False, np.bool_(True), None, 1 + 2j, [1.0],
               np.array([1.0]), {"v": 1}]


@pytest.mark.parametrize("value, expected", NUMBERS)
def test_numbers_and_numpy_scalars_are_accepted(value, expected):
    assert objective_value(value) == expected and type(objective_value(value)) is float


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_strings_booleans_and_containers_are_refused_with_what_came_back(value):
    with pytest.raises(TypeError, match="expected a number"):
        objective_value(value)


@pytest.mark.parametrize("value", ["1.5", True, None])
def test_a_sweep_objective_and_an_hpo_trial_refuse_the_same_values(value):
    problem = ObjectiveProblem(lambda p: value, ("x",))
    with pytest.raises(TypeError, match="expected a number"):
        problem.chi2(np.array([0.5]))                 # the sweep used float(): "1.5" -> 1.5
    outcome = PythonRunner(lambda p: value)(TrialSpec(0, {"x": 0.5}))
    assert outcome.state == "failed" and "expected a number" in outcome.error


@pytest.mark.parametrize("value, expected", NUMBERS[:4])
def test_a_sweep_objective_and_an_hpo_trial_accept_the_same_values(value, expected):
    assert ObjectiveProblem(lambda p: value, ("x",)).chi2(np.array([0.5])) == expected
    assert parse_result(value) == (expected, {}, None)
    assert parse_result({"value": value, "acc": 0.9}) == (expected, {"acc": 0.9}, None)


def test_an_external_command_result_file_follows_the_rule(tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"value": "1.5"}')
    value, _, error = read_result(path, 0)
    assert value is None and "string" in error
    path.write_text('{"value": true}')
    assert "boolean" in read_result(path, 0)[2]
    path.write_text('{"value": 1.5}')
    assert read_result(path, 0) == (1.5, {}, None)
