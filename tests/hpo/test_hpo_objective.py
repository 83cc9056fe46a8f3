import math
import os
import signal
import sys
import textwrap
import time

import optuna
import pytest

from hpcopt.hpo.config import ObjectiveConfig
from hpcopt.hpo.argv_template import build_argv
from hpcopt.hpo.external import CommandRunner
from hpcopt.hpo.objective import PythonRunner, TrialPruned, report_mode
from hpcopt.hpo.trials import TrialSpec


def spec(params, number=0, timeout=None):
    return TrialSpec(number=number, params=params, seed=7, timeout=timeout)


# -- Python callables ---------------------------------------------------------------------------

def test_report_mode_detects_the_signature():
    assert report_mode(lambda p: 0) == "none"
    assert report_mode(lambda p, report: 0) == "positional"
    assert report_mode(lambda p, report=None: 0) == "positional"
    assert report_mode(lambda p, *, report: 0) == "keyword"
    assert report_mode(lambda *a: 0) == "positional"
    for bad in (lambda: 0, lambda a, b, c: 0, lambda p, *, other: 0):
        with pytest.raises(ValueError):
            report_mode(bad)


def test_an_objective_that_changes_its_params_leaves_the_trial_as_drawn():
    """At one rank the spec is the coordinator's own (its record's params)."""
    def greedy(params):
        params["x"] = 99.0
        params["layers"].append(4)
        params["opts"]["lr"] = 1.0
        params["pair"][1].append("z")
        return 0.0

    drawn = {"x": 1.0, "layers": [1, 2], "opts": {"lr": 0.1, "tags": ["a"]}, "pair": (1, ["y"])}
    s = spec({"x": 1.0, "layers": [1, 2], "opts": {"lr": 0.1, "tags": ["a"]}, "pair": (1, ["y"])})
    assert PythonRunner(greedy)(s).state == "complete"
    assert s.params == drawn


def _returning(result):
    return lambda params: result


def test_python_objective_outcomes():
    assert PythonRunner(lambda p: p["x"] ** 2)(spec({"x": 3.0})).value == 9.0
    out = PythonRunner(lambda p: {"value": 1.5, "epochs": 4})(spec({}), worker="rank 1")
    assert (out.state, out.value, out.info) == ("complete", 1.5, {"epochs": 4})
    assert out.worker == "rank 1"
    for result, words in ((math.nan, "nan"), (math.inf, "inf"), ("abc", "str"),
                          ({"loss": 1}, "without 'value'"), (True, "bool")):
        out = PythonRunner(_returning(result))(spec({}))
        assert out.state == "failed" and words in out.error


def test_exceptions_become_failed_outcomes_with_the_message():
    def boom(params):
        raise KeyError("missing column")
    out = PythonRunner(boom)(spec({}))
    assert out.state == "failed" and out.error.startswith("KeyError: 'missing column'")
    assert "boom" in out.error                              # innermost frame named


def test_params_are_a_copy():
    params = {"layers": [64, 32]}
    PythonRunner(lambda p: p["layers"].append(1) or 0.0)(spec(params))
    assert params == {"layers": [64, 32]}


def test_report_stop_prunes_with_the_last_value():
    decisions = []

    def decide(step, value):
        decisions.append((step, value))
        return step >= 2

    def train(params, report):
        for step in range(10):
            if report(step, 10.0 - step):
                return 123.0          # ignored: the trial was stopped
        return 0.0

    out = PythonRunner(train)(spec({}), decide)
    assert out.state == "pruned" and out.value == 8.0 and decisions[-1] == (2, 8.0)
    out = PythonRunner(lambda p, *, report: report(0, 1.0) and 5.0)(spec({}), lambda s, v: False)
    assert out.state == "failed"     # returned False: not a number


def test_trial_pruned_exceptions_and_timeouts():
    def pruned(params):
        raise TrialPruned()

    def optuna_pruned(params):
        raise optuna.TrialPruned()

    assert PythonRunner(pruned)(spec({})).state == "pruned"
    assert PythonRunner(optuna_pruned)(spec({})).state == "pruned"

    def slow(params):
        try:
            for _ in range(500):
                time.sleep(0.01)
        except Exception:             # an objective's own handler must not swallow the timeout
            return 0.0
        return 1.0

    t0 = time.perf_counter()
    out = PythonRunner(slow)(spec({}, timeout=0.2))
    assert out.state == "failed" and "timed out after 0.2 s" in out.error
    assert time.perf_counter() - t0 < 3


# -- external commands ----------------------------------------------------------------------

SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    mode, label = sys.argv[1], sys.argv[2]
    result = os.environ["HPCOPT_RESULT_FILE"]
    def write(obj):
        with open(result, "w") as f:
            json.dump(obj, f)
    if mode == "ok":
        params = json.load(open(os.environ["HPCOPT_PARAMS_FILE"]))
        write({"value": float(sys.argv[3]), "argv": sys.argv[1:], "params": params,
               "cwd": os.getcwd()})
    elif mode == "error":
        write({"error": "diverged at epoch 3"})
    elif mode == "crash":
        print("Traceback: something broke", file=sys.stderr)
        sys.exit(3)
    elif mode == "sleep":
        time.sleep(60)
    elif mode == "curve":
        with open(os.environ["HPCOPT_PROGRESS_FILE"], "a") as f:
            for step in range(400):
                f.write(json.dumps({"step": step, "value": 100.0 - step}) + "\\n")
                f.flush()
                time.sleep(0.01)
        write({"value": 0.0})
""")


@pytest.fixture
def runner(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)

    def make(command, **kw):
        cfg = ObjectiveConfig(command=tuple(command), **kw)
        return CommandRunner(cfg, tmp_path / "trials", kill_grace=1.0)
    return make, str(script)


def test_command_success_params_as_argv_items(runner, tmp_path):
    make, script = runner
    label = 'two words "double" \'single\' $HOME;|'
    run = make(["{python}", script, "{mode}", "{label}", "{x}", "--layers={layers}",
                "--m={momentum}", "{trial_number}"])
    params = {"mode": "ok", "label": label, "x": 0.1, "layers": [64, 32]}
    out = run(spec(params, number=4))
    assert out.state == "complete" and out.value == 0.1, out.error
    assert out.info["argv"] == ["ok", label, "0.1", "--layers=[64, 32]", "4"]   # no --m: inactive
    assert out.info["params"] == params
    tdir = tmp_path / "trials" / "trial_000004"
    assert out.info["cwd"] == str(tdir) and (tdir / "stdout.txt").exists()


def test_command_failures(runner):
    make, script = runner
    run = make(["{python}", script, "{mode}", "-"])
    out = run(spec({"mode": "error"}))
    assert out.state == "failed" and out.error.startswith("diverged at epoch 3")
    out = run(spec({"mode": "crash"}, number=1))
    assert out.state == "failed" and "exited with status 3" in out.error
    assert "something broke" in out.error                    # stderr tail
    out = make(["/nonexistent/prog"])(spec({}, number=2))
    assert out.state == "failed" and "cannot start" in out.error


def test_command_timeout_kills_the_process_group(runner):
    make, script = runner
    t0 = time.perf_counter()
    out = make(["{python}", script, "sleep", "-"])(spec({}, timeout=0.5))
    assert out.state == "failed" and "timed out after 0.5 s" in out.error
    assert time.perf_counter() - t0 < 10


def test_command_progress_is_reported_and_prune_terminates_it(runner, tmp_path):
    make, script = runner
    seen = []

    def decide(step, value):
        seen.append((step, value))
        return step >= 5

    out = make(["{python}", script, "curve", "-"])(spec({}), decide)
    assert out.state == "pruned" and seen[0] == (0, 100.0)
    assert out.value == seen[-1][1] and seen[-1][0] >= 5
    time.sleep(0.2)
    lines = (tmp_path / "trials" / "trial_000000" / "progress.jsonl").read_text().splitlines()
    assert len(lines) < 400                                  # it was stopped, not finished
    assert not (tmp_path / "trials" / "trial_000000" / "result.json").exists()


def test_result_key_reads_seed_style_files(runner, tmp_path):
    make, script = runner
    legacy = tmp_path / "legacy.py"
    legacy.write_text("import json, sys\njson.dump({'trial_id': 0, 'error': 0.25, "
                      "'additional_info': {'training_time': 1}}, open(sys.argv[1], 'w'))\n")
    out = make(["{python}", str(legacy), "{result_file}"], result_key="error")(spec({}))
    assert out.state == "complete" and out.value == 0.25
    assert out.info == {"trial_id": 0, "additional_info": {"training_time": 1}}


def test_build_argv_formats_values():
    argv = build_argv(["{a}", "{b}", "{c:.2e}", "{d}", "x={e}", "{{literal}}"],
                      {"a": True, "b": 3, "c": 12345.0, "d": {"k": [1]}, "e": "s p"})
    assert argv == ["true", "3", "1.23e+04", '{"k": [1]}', "x=s p", "{literal}"]
    assert sys.executable  # {python} is filled by the runner


def test_config_to_records_with_a_command_objective(tmp_path):
    import tomllib

    from hpo_helpers import drive

    from hpcopt.hpo.config import parse_hpo_config
    from hpcopt.hpo.objective import make_runner
    from hpcopt.hpo.policy import HpoPolicy
    from hpcopt.tomlread import Table

    (tmp_path / "sq.py").write_text(
        "import json, os, sys\n"
        "x, layers = float(sys.argv[1]), json.loads(sys.argv[2])\n"
        "with open(os.environ['HPCOPT_PROGRESS_FILE'], 'a') as f:\n"
        "    f.write(json.dumps({'step': 0, 'value': x * x + 1}) + '\\n')\n"
        "json.dump({'value': x * x + len(layers)}, open(sys.argv[3], 'w'))\n")
    text = """
[hpo]
sampler = "random"
n_trials = 4
storage = "memory"
[objective]
command = ["{python}", "{config_dir}/sq.py", "{x}", "{layers}", "{result_file}"]
[space]
x = { type = "uniform", low = -1.0, high = 1.0 }
layers = [[8], [16, 8]]
"""
    cfg = parse_hpo_config(Table(tomllib.loads(text), "", "s.toml"), "s.toml", tmp_path, "s.h5")
    runner = make_runner(cfg)
    assert runner.trial_root == tmp_path / "s_trials"
    records = drive(HpoPolicy.from_config(cfg, seed=0), runner)
    assert len(records) == 4 and all(r.state == "complete" for r in records)
    for r in records:
        assert r.value == pytest.approx(r.params["x"] ** 2 + len(r.params["layers"]))
        assert r.intermediate == ((0, pytest.approx(r.params["x"] ** 2 + 1)),)
        assert (tmp_path / "s_trials" / f"trial_{r.number:06d}" / "params.json").exists()


# -- result and progress files that are not regular files (issue 13 item 11) ------------------

FIFO_SCRIPT = r"""
import os, sys, time
which, then = sys.argv[1], sys.argv[2]
os.mkfifo(os.environ["HPCOPT_RESULT_FILE" if which == "result" else "HPCOPT_PROGRESS_FILE"])
if then == "sleep":
    time.sleep(60)
"""


def _run_in_child(run, trial, limit):
    """runner(trial) in a forked child: (outcome or None if it was still blocked, seconds)."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()

    def target():
        out = run(trial)
        child.send((out.state, out.error))

    proc = ctx.Process(target=target)
    t0 = time.perf_counter()
    proc.start()
    got = parent.recv() if parent.poll(limit) else None
    seconds = time.perf_counter() - t0
    if proc.is_alive():
        proc.kill()
    proc.join(10)
    return got, seconds


def test_a_fifo_as_result_file_fails_the_trial_at_once(runner, tmp_path):
    make, _ = runner
    script = tmp_path / "fifo.py"
    script.write_text(FIFO_SCRIPT)
    got, seconds = _run_in_child(make(["{python}", str(script), "result", "exit"]),
                                 spec({}, timeout=30), limit=20)
    assert got is not None, "the worker blocked opening the FIFO"   # old code: open() waits
    state, error = got
    assert state == "failed" and "FIFO" in error and seconds < 15


def test_a_fifo_as_progress_file_is_bounded_by_trial_timeout(runner, tmp_path):
    make, _ = runner
    script = tmp_path / "fifo.py"
    script.write_text(FIFO_SCRIPT)
    got, seconds = _run_in_child(make(["{python}", str(script), "progress", "sleep"]),
                                 spec({}, timeout=1.0), limit=20)
    assert got is not None, "the worker blocked opening the FIFO"
    state, error = got
    assert state == "failed" and "timed out after 1 s" in error and seconds < 15


def test_a_stop_signal_terminates_the_command_and_marks_the_trial_for_a_rerun(runner):
    from hpcopt.mpi import runtime
    make, script = runner
    run = make(["{python}", script, "sleep", "-"])
    runtime.install_stop_handlers()
    timer = __import__("threading").Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        t0 = time.perf_counter()
        out = run(spec({}, timeout=600))
    finally:
        timer.cancel()
        runtime.reset_stop()
        for sig in runtime.STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
    assert time.perf_counter() - t0 < 10                  # not the command's 60 s
    assert out.state == "failed" and out.interrupted
