"""Config fuzzing: whatever a user writes, hpcopt exits 2 with one message naming file and key.

In-process (fast, many examples): every campaign kind's ``prepare()`` (what rank 0 runs
before any MPI work) is fed mutated configs (dropped keys, unknown keys and tables, wrong
types, nan/inf, out-of-range numbers, bad import paths) and broken TOML text; it must
accept the config or raise a UsageError whose message names the file and the key, never
anything else and never hang.  Under mpiexec at 1, 2 and 3 ranks, representative bad
configs exit 2 with exactly one ``hpcopt: error:`` line and no traceback.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fuzz_helpers import (BAD_IMPORTS, BASES, HPO, SWEEP_NIST, SWEEP_OBJECTIVE, SWEEP_XPCS,
                          TEMPER_FIT, TEMPER_FUNCTION, TEMPER_ISING, TEMPER_MIXTURE, apply,
                          broken_text, check_prepare, mutated_config, to_toml, toml_values)
from hpctest import run
from hpcopt.errors import ConfigError, DataError, ResultFileError

# no shrink phase: a config that eats memory or hangs costs seconds per attempt, and the
# failure message shows the whole (small) config anyway
FUZZ = settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow],
                phases=[Phase.explicit, Phase.reuse, Phase.generate])
DROP = object()


def write(directory: Path, cfg: dict | bytes | str, name: str = "c.toml") -> Path:
    path = Path(directory) / name
    if isinstance(cfg, dict):
        cfg = to_toml(cfg)
    if isinstance(cfg, str):
        cfg = cfg.encode()
    path.write_bytes(cfg)
    return path


def edited(base: dict, *edits) -> dict:
    """`base` with ("dotted.path", value) edits applied (value DROP deletes the key)."""
    cfg = base
    for dotted, value in edits:
        path = tuple(dotted) if isinstance(dotted, tuple) else tuple(dotted.split("."))
        if value is DROP:
            cfg = apply(cfg, "drop", path, None)
        else:
            cfg = apply(cfg, "replace", path, value)
    return cfg


# --------------------------------------------------------------------------- the writer, the bases

def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


@settings(FUZZ, max_examples=50)
@given(st.dictionaries(st.text(max_size=6), st.dictionaries(st.text(max_size=6), toml_values,
                                                           max_size=4), max_size=3))
def test_toml_writer_round_trips(cfg):
    assert _same(tomllib.loads(to_toml(cfg)), cfg)


@pytest.mark.parametrize("name", sorted(BASES))
def test_base_configs_are_accepted(tmp_path, name):
    kind, base = BASES[name]
    assert check_prepare(kind, write(tmp_path, base)) is None


# --------------------------------------------------------------------------- properties

@pytest.mark.parametrize("name", sorted(BASES))
@FUZZ
@given(data=st.data())
def test_mutated_configs_are_accepted_or_named_usage_errors(name, data):
    kind, base = BASES[name]
    cfg = data.draw(mutated_config(base), label="config")
    with tempfile.TemporaryDirectory() as d:
        check_prepare(kind, write(d, cfg))


@pytest.mark.parametrize("name", ["sweep-objective", "temper-function", "hpo"])
@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_broken_toml_text_is_a_config_error(name, data):
    kind, base = BASES[name]
    raw = data.draw(broken_text(base), label="text")
    with tempfile.TemporaryDirectory() as d:
        check_prepare(kind, write(d, raw))


@settings(FUZZ, max_examples=80)
@given(spec=st.one_of(st.text(max_size=40),
                      st.lists(st.tuples(st.sampled_from(["x", "y", "z", "", "1x", "x y"]),
                                         st.sampled_from(["0", "-1", "1e300", "nan", "inf", "a",
                                                          "1e-300", ""]),
                                         st.sampled_from(["1", "2", "-1e308", "1e308", "inf"]),
                                         st.sampled_from(["0", "1", "3", "-2", "1.5", "10**9",
                                                          "100000000", ""]),
                                         st.sampled_from(["", ":log", ":linear", ":cubic", ":"])),
                               max_size=3).map(lambda items: ",".join(
                                   f"{n}:{lo}:{hi}:{p}{s}" for n, lo, hi, p, s in items))))
def test_parameter_ranges_garbage_is_a_usage_error(spec):
    with tempfile.TemporaryDirectory() as d:
        exc = check_prepare("sweep", write(d, SWEEP_OBJECTIVE), parameter_ranges=spec)
        if isinstance(exc, ConfigError) and exc.key == "--parameter-ranges":
            assert str(exc).startswith("--parameter-ranges: ")


# --------------------------------------------------------------------------- named problems
# (base, edits, key the message must name); every case is a ConfigError

O, N, X = SWEEP_OBJECTIVE, SWEEP_NIST, SWEEP_XPCS
TI, TF, TM, TX = TEMPER_ISING, TEMPER_FUNCTION, TEMPER_MIXTURE, TEMPER_FIT
CASES = [
    # sweeps: missing, unknown, wrong types
    ("sweep", O, [("objective", DROP)], "objective"),
    ("sweep", O, [("search", "grid")], "search"),
    ("sweep", O, [("search.foo", 1)], "search.foo"),
    ("sweep", O, [("foo", {"a": 1})], "foo"),
    ("sweep", O, [("objective.function", 5)], "objective.function"),
    ("sweep", O, [("parameters.x", 5)], "parameters.x"),
    ("sweep", O, [("parameters.x.min", "abc")], "parameters.x.min"),
    ("sweep", O, [("parameters.x.points", 2.5)], "parameters.x.points"),
    ("sweep", O, [("parameters.x.points", True)], "parameters.x.points"),
    ("sweep", O, [("parameters.x.scale", "cubic")], "parameters.x.scale"),
    ("sweep", O, [("local.max_nfev", [1])], "local.max_nfev"),
    ("sweep", O, [("output.path", 5)], "output.path"),
    ("sweep", O, [("output.path", "")], "output.path"),
    ("sweep", O, [("run.mode", "fast")], "run.mode"),
    ("sweep", O, [("slurm.time", "forever")], "slurm.time"),
    # sweeps: out of range
    ("sweep", O, [("parameters", {})], "parameters"),
    ("sweep", O, [("parameters", {"z": {"value": 1.0}})], "parameters"),
    ("sweep", O, [("parameters.x.points", 0)], "parameters.x.points"),
    ("sweep", O, [("parameters.x.points", -3)], "parameters.x.points"),
    ("sweep", O, [("parameters.x.min", 3.0)], "parameters.x"),
    ("sweep", O, [("parameters.x.min", math.nan)], "parameters.x.min"),
    ("sweep", O, [("parameters.x.max", math.inf)], "parameters.x.max"),
    ("sweep", O, [("parameters.y.min", 0.0)], "parameters.y.min"),
    ("sweep", O, [("parameters.y.min", -1.0)], "parameters.y.min"),
    ("sweep", O, [("parameters.z.value", math.nan)], "parameters.z.value"),
    ("sweep", O, [("parameters.z.min", 0.0)], "parameters.z"),
    ("sweep", O, [("parameters.x.points", 10_000), ("parameters.y.points", 10_000)],
     "parameters"),
    ("sweep", O, [("parameters.x.points", 2**63 - 1)], "parameters"),
    ("sweep", O, [("search.method", "sobol"), ("search.samples", 0)], "search.samples"),
    ("sweep", O, [("search.method", "lhs"), ("search.samples", -5)], "search.samples"),
    ("sweep", O, [("search.method", "random"), ("search.samples", 10**12)], "search.samples"),
    ("sweep", O, [("search.method", "annealing")], "search.method"),
    ("sweep", O, [("local.method", "least_squares")], "local.method"),
    ("sweep", O, [("local.max_nfev", 0)], "local.max_nfev"),
    ("sweep", O, [("run.seed", -1)], "run.seed"),
    ("sweep", O, [("run.max_retries", 1000)], "run.max_retries"),
    ("sweep", O, [("run.task_timeout", 0.0)], "run.task_timeout"),
    ("sweep", O, [("run.task_timeout", math.inf)], "run.task_timeout"),
    # sweeps with a model
    ("sweep", N, [("model.name", "nist:Nope")], "model.name"),
    ("sweep", N, [("model.name", "")], "model.name"),
    ("sweep", N, [("model.name", "xpcs:nope")], "model.name"),
    ("sweep", N, [("parameters.b2", DROP)], "parameters"),
    ("sweep", N, [("parameters.b3", {"min": 0.0, "max": 1.0})], "parameters"),
    ("sweep", N, [("data", DROP)], "data.path"),
    ("sweep", N, [("data.x", 5)], "data.x"),
    ("sweep", N, [("data.foo", "a")], "data.foo"),
    ("sweep", N, [("objective", {"function": "testobj:quadratic"})], "objective"),
    ("sweep", X, [("data.sigma", "s")], "data.sigma"),
    ("sweep", X, [("parameters.phi0", DROP)], "parameters"),
    # temper
    ("temper", TI, [("temper.replicas", 0)], "temper.replicas"),
    ("temper", TI, [("temper.replicas", -2)], "temper.replicas"),
    ("temper", TI, [("temper.replicas", 2.0)], "temper.replicas"),
    ("temper", TI, [("temper.t_max", 0.5)], "temper.t_max"),
    ("temper", TI, [("temper.t_min", -1.0)], "temper.t_min"),
    ("temper", TI, [("temper.t_min", math.nan)], "temper.t_min"),
    ("temper", TI, [("temper.rounds", 0)], "temper.rounds"),
    ("temper", TI, [("temper.rounds", DROP)], "temper.rounds"),
    ("temper", TI, [("temper.exchange_interval", -1)], "temper.exchange_interval"),
    ("temper", TI, [("temper.burn_in", 60)], "temper.burn_in"),
    ("temper", TI, [("temper.ladder", "linear")], "temper.ladder"),
    ("temper", TI, [("temper.adapt_lag", 5.0)], "temper.adapt_lag"),
    ("temper", TI, [("temper.temperatures", [1.0, 2.0])], "temper.t_min"),
    ("temper", TI, [("problem.name", "potts")], "problem.name"),
    ("temper", TI, [("problem.L", 1)], "problem.L"),
    ("temper", TI, [("problem", DROP)], "problem"),
    ("temper", TI, [("problem.function", "testobj:slow_energy")], "problem.function"),
    ("temper", TI, [("output", "pt.h5")], "output"),
    ("temper", TF, [("problem.x0", [])], "problem.x0"),
    ("temper", TF, [("problem.x0", [5.0, 0.0])], "problem.x0[0]"),
    ("temper", TF, [("problem.x0", [math.nan, 0.0])], "problem.x0[0]"),
    ("temper", TF, [("problem.step", [0.0, 0.3])], "problem.step"),
    ("temper", TF, [("problem.step", [0.3])], "problem.step"),
    ("temper", TF, [("problem.step", DROP)], "problem.step"),
    ("temper", TF, [("problem.upper", [-4.0, 3.0])], "problem.upper"),
    ("temper", TF, [("problem.names", ["a", "a"])], "problem.names"),
    ("temper", TF, [("problem.boundary", "wrap")], "problem.boundary"),
    ("temper", TM, [("temper.temperatures", [])], "temper.temperatures"),
    ("temper", TM, [("temper.temperatures", [1.0, 1.0, 2.0])], "temper.temperatures[1]"),
    ("temper", TM, [("temper.temperatures", [0.0, 1.0])], "temper.temperatures[0]"),
    ("temper", TM, [("temper.temperatures", [1.0, math.inf])], "temper.temperatures[1]"),
    ("temper", TM, [("temper.burn_in", 0)], "temper.burn_in"),
    ("temper", TM, [("temper.adapt_rounds", 50)], "temper.adapt_rounds"),
    ("temper", TM, [("problem.weights", [1.0])], "problem.weights"),
    ("temper", TM, [("problem.weights", [1.0, -1.0])], "problem.weights"),
    ("temper", TM, [("problem.sigma", 0.0)], "problem.sigma"),
    ("temper", TM, [("problem.centers", [[1.0], [1.0, 2.0]])], "problem.modes"),
    ("temper", TX, [("problem.x0", [1.0, 2.0, 3.0]), ("problem.step", 1.0),
                    ("problem.lower", 0.0), ("problem.upper", 1000.0)], "problem.x0"),
    # hpo
    ("hpo", HPO, [("space", {})], "space"),
    ("hpo", HPO, [("space", DROP)], "space"),
    ("hpo", HPO, [("hpo.n_trials", 0)], "hpo.n_trials"),
    ("hpo", HPO, [("hpo.n_trials", -1)], "hpo.n_trials"),
    ("hpo", HPO, [("hpo.sampler", "bayes")], "hpo.sampler"),
    ("hpo", HPO, [("hpo.direction", "down")], "hpo.direction"),
    ("hpo", HPO, [("hpo.pruner", "asha")], "hpo.n_warmup_steps"),
    ("hpo", HPO, [("hpo.sampler", "random"), ("hpo.multivariate", True)], "hpo.multivariate"),
    ("hpo", HPO, [("hpo.time_budget", -1.0)], "hpo.time_budget"),
    ("hpo", HPO, [("hpo.max_concurrent", 0)], "hpo.max_concurrent"),
    ("hpo", HPO, [("space.x.low", 20.0)], "space.x.high"),
    ("hpo", HPO, [("space.x.low", math.nan)], "space.x.low"),
    ("hpo", HPO, [("space.y.step", 0.0)], "space.y.step"),
    ("hpo", HPO, [("space.lr.low", 0.0)], "space.lr.low"),
    ("hpo", HPO, [("space.n.low", 2.5)], "space.n.low"),
    ("hpo", HPO, [("space.n.low", 9)], "space.n.high"),
    ("hpo", HPO, [("space.layers.choices", [])], "space.layers.choices"),
    ("hpo", HPO, [("space.opt", ["sgd", "sgd"])], "space.opt"),
    ("hpo", HPO, [("space.batch", math.inf)], "space.batch"),
    ("hpo", HPO, [("space.x.type", "normal")], "space.x.type"),
    ("hpo", HPO, [("space.momentum.when.param", "nope")], "space.momentum.when"),
    ("hpo", HPO, [("space.momentum.when.equals", "rmsprop")], "space.momentum.when"),
    ("hpo", HPO, [(("space", "bad name"), 1)], "space.bad name"),
    ("hpo", HPO, [("objective", DROP)], "objective"),
    ("hpo", HPO, [("objective.command", ["python", "train.py"])], "objective"),
    ("hpo", HPO, [("resources.threads", 0)], "resources.threads"),
]
CASES += [("sweep", O, [("objective.function", spec)], "objective.function")
          for spec in BAD_IMPORTS[:11]]
CASES += [("temper", TF, [("problem.function", spec)], "problem.function")
          for spec in BAD_IMPORTS[:11]]
CASES += [("hpo", HPO, [("objective.function", spec)], "objective.function")
          for spec in BAD_IMPORTS[:11]]


def _case_id(case) -> str:
    kind, base, edits, key = case
    name = next(n for n, (k, b) in BASES.items() if b is base)
    return f"{name}:" + ",".join(f"{'.'.join(p) if isinstance(p, tuple) else p}="
                                 f"{'DROP' if v is DROP else v!r}"[:40] for p, v in edits)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_named_config_problems(tmp_path, case):
    kind, base, edits, key = case
    config = write(tmp_path, edited(base, *edits))
    exc = check_prepare(kind, config)
    assert isinstance(exc, ConfigError), f"accepted or not a ConfigError: {exc!r}"
    assert exc.key == key, str(exc)
    assert str(exc).startswith(f"{config}: {key}: ")


def test_missing_data_file_is_a_data_error_naming_it(tmp_path):
    config = write(tmp_path, edited(SWEEP_NIST, ("data.path", "nothere.csv")))
    exc = check_prepare("sweep", config)
    assert isinstance(exc, DataError) and exc.path == str(tmp_path / "nothere.csv")


def test_a_module_that_fails_to_import_is_a_config_error(tmp_path):
    (tmp_path / "fuzz_badimport.py").write_text("raise RuntimeError('broken at import')\n")
    for kind, base, key in (("sweep", O, "objective.function"), ("hpo", HPO, "objective.function"),
                            ("temper", TF, "problem.function")):
        config = write(tmp_path, edited(base, (key, "fuzz_badimport:f")))
        exc = check_prepare(kind, config)
        assert isinstance(exc, ConfigError) and exc.key == key and "broken at import" in str(exc)


# --------------------------------------------------------------------------- known bugs
# Each of these fails today (see the fuzzing report); the fixes are described there.

@pytest.mark.parametrize("base, edits, key", [
    (TI, [("temper.replicas", 2**40)], "temper.replicas"),
    (TI, [("temper.replicas", 2**63 - 1)], "temper.replicas"),
    (TM, [("problem.dim", 2**40)], "problem.dim"),
    (TM, [("problem.modes", 10**8), ("problem.weights", DROP)], "problem.modes"),
    (TM, [("problem.name", "rastrigin"), ("problem.dim", 2**40), ("problem.weights", DROP),
          ("problem.separation", DROP), ("problem.modes", DROP)], "problem.dim"),
], ids=["replicas", "replicas-int64-max", "mixture-dim", "mixture-modes", "rastrigin-dim"])
def test_temper_huge_counts_are_config_errors(tmp_path, base, edits, key):
    """BUG: MemoryError, IndexError or a long allocation instead of a range error."""
    exc = check_prepare("temper", write(tmp_path, edited(base, *edits)))
    assert isinstance(exc, ConfigError) and exc.key == key


@pytest.mark.parametrize("function", ["testobj:quadratic", "hpoobj:quad", "math:sqrt",
                                      "testobj:broken_import_time"])
def test_temper_energy_failing_at_the_start_is_a_config_error(tmp_path, function):
    """BUG: the energy's exception at x0 escapes prepare() (exit 1 and a traceback)."""
    exc = check_prepare("temper", write(tmp_path, edited(TF, ("problem.function", function))))
    assert isinstance(exc, ConfigError) and exc.key in ("problem.function", "problem.x0")


def test_temper_fit_without_data_is_a_config_error(tmp_path):
    """BUG: TypeError (Path(None)) instead of 'problem.data: missing required key'."""
    exc = check_prepare("temper", write(tmp_path, edited(TX, ("problem.data", DROP))))
    assert isinstance(exc, ConfigError) and exc.key == "problem.data"


@pytest.mark.parametrize("model", ["bogus", "nist:Nope", "xpcs:nope"])
def test_temper_fit_model_errors_name_the_file_and_key(tmp_path, model):
    """BUG: the message is 'model.name: ...' without the config file (and the wrong key)."""
    config = write(tmp_path, edited(TX, ("problem.model", model)))
    exc = check_prepare("temper", config)
    assert isinstance(exc, ConfigError) and exc.key == "problem.model"


def test_temper_fit_with_a_user_model(tmp_path):
    """BUG: a 'package.module:function' model cannot be used: _fit_problem calls
    build_problem(model, data) without base_dir (a module next to the config is not found),
    source (the message names no file) or param_names (then 'parameters: user model ...
    needs its parameters in [parameters]', a table temper configs do not have)."""
    (tmp_path / "fuzz_usermodel.py").write_text("def line(x, p):\n    return p[0] + p[1] * x\n")
    data = tmp_path / "line.csv"
    data.write_text("x,y\n0,1\n1,3\n2,5\n")
    cfg = edited(TX, ("problem.model", "fuzz_usermodel:line"), ("problem.data", "line.csv"),
                 ("problem.x0", [1.0, 2.0]), ("problem.step", 0.1), ("problem.lower", -10.0),
                 ("problem.upper", 10.0))
    assert check_prepare("temper", write(tmp_path, cfg)) is None


@pytest.mark.parametrize("t_min, t_max", [(1e-300, 1e300), (1.0, 1.0000000000000002)])
def test_temper_degenerate_geometric_ladder_is_a_config_error(tmp_path, t_min, t_max):
    """BUG: accepted by prepare(); the run then dies (exit 1) in check_ladder."""
    config = write(tmp_path, edited(TI, ("temper.t_min", t_min), ("temper.t_max", t_max)))
    exc = check_prepare("temper", config)
    assert isinstance(exc, ConfigError) and exc.key.startswith("temper.")


@pytest.mark.parametrize("base, edits, key", [
    (TI, [("problem.L", 10**6)], "problem.L"),
    (TM, [("problem.sigma", 1e-300)], "problem.sigma"),
    (TM, [("problem.name", "rastrigin"), ("problem.A", 1e308), ("problem.weights", DROP),
          ("problem.separation", DROP), ("problem.modes", DROP)], "problem.A"),
], ids=["ising-L", "mixture-sigma-underflow", "rastrigin-A"])
def test_temper_problems_that_cannot_run_are_config_errors(tmp_path, base, edits, key):
    """BUG: L = 10**6 passes prepare() and dies allocating 1e12 spins; sigma = 1e-300 makes
    prepare() raise ValueError('math domain error'); A = 1e308 passes prepare() and the run
    dies with 'the energy of the start state is not finite' (exit 1 each time)."""
    exc = check_prepare("temper", write(tmp_path, edited(base, *edits)))
    assert isinstance(exc, ConfigError) and exc.key == key


def test_sweep_range_wider_than_a_double_is_a_config_error(tmp_path):
    """BUG: max - min = inf: accepted, then every start is NaN and every task fails."""
    config = write(tmp_path, edited(O, ("parameters.x.min", -1e308), ("parameters.x.max", 1e308)))
    exc = check_prepare("sweep", config)
    assert isinstance(exc, ConfigError) and exc.key.startswith("parameters.x")


@pytest.mark.parametrize("special", ["device", "fifo"])
def test_config_that_is_not_a_regular_file_is_refused(tmp_path, special):
    """BUG: load_toml reads to the end: /dev/zero eats all memory (MemoryError here, under
    the test's memory cap; the OOM killer in real life) and a named pipe blocks forever."""
    if special == "device":
        if not sys.platform.startswith("linux"):
            pytest.skip("relies on RLIMIT_AS to stop reading /dev/zero")
        config = Path("/dev/zero")
    else:
        config = tmp_path / "pipe.toml"
        os.mkfifo(config)
    exc = check_prepare("sweep", config)
    assert isinstance(exc, ConfigError) and str(exc).startswith(f"{config}: ")


@pytest.mark.parametrize("storage", ["foo://bar", "c.toml/study.journal"])
def test_hpo_unusable_storage_is_a_config_error(tmp_path, storage):
    """BUG: accepted by prepare(); the run dies (exit 1, traceback) opening the storage."""
    exc = check_prepare("hpo", write(tmp_path, edited(HPO, ("hpo.storage", storage))))
    assert isinstance(exc, ConfigError) and exc.key == "hpo.storage"


def test_hpo_float_range_wider_than_a_double_is_a_config_error(tmp_path):
    """BUG: accepted by prepare(); the sampler then raises OverflowError (exit 1)."""
    config = write(tmp_path, edited(HPO, ("space.x.low", -1e308), ("space.x.high", 1e308)))
    exc = check_prepare("hpo", config)
    assert isinstance(exc, ConfigError) and exc.key.startswith("space.x")


@pytest.mark.parametrize("name", ["sweep-objective", "temper-ising", "hpo"])
@pytest.mark.parametrize("target", ["directory", "device"])
def test_output_that_is_not_a_regular_file_is_refused_even_with_force(tmp_path, name, target):
    """BUG: with --force a directory output dies in h5py (exit 1), /dev/null 'succeeds'."""
    kind, base = BASES[name]
    out = tmp_path / "outdir" if target == "directory" else Path("/dev/null")
    if target == "directory":
        out.mkdir()
    exc = check_prepare(kind, write(tmp_path, base), output=str(out), force=True)
    assert isinstance(exc, ResultFileError) and str(out) in str(exc)


# --------------------------------------------------------------------------- command line (item 4)

def _one_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("hpcopt: error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_command_line_problems_in_process(tmp_path):
    config = write(tmp_path, SWEEP_OBJECTIVE)
    exc = check_prepare("sweep", tmp_path / "nothere.toml")
    assert isinstance(exc, ConfigError) and "not found" in str(exc)
    exc = check_prepare("sweep", tmp_path)                     # a directory as config
    assert isinstance(exc, ConfigError) and str(exc).startswith(str(tmp_path))
    (tmp_path / "afile").write_text("")
    exc = check_prepare("sweep", config, output=str(tmp_path / "afile" / "out.h5"))
    assert isinstance(exc, ResultFileError) and "afile" in str(exc)
    exc = check_prepare("sweep", config, resume=True)
    assert isinstance(exc, ResultFileError) and "--resume" in str(exc)
    (tmp_path / "f.h5").write_text("")
    exc = check_prepare("sweep", config)
    assert isinstance(exc, ResultFileError) and "exists" in str(exc)


def test_command_line_problems(tmp_path):
    config = write(tmp_path, SWEEP_OBJECTIVE)
    (tmp_path / "afile").write_text("")
    cases = [
        (["sweep", tmp_path / "nothere.toml"], ["nothere.toml", "not found"]),
        (["sweep", tmp_path], [str(tmp_path), "cannot read"]),
        (["sweep", config, "-o", tmp_path / "afile" / "out.h5"], ["afile"]),
        (["sweep", config, "--resume"], ["--resume"]),
        (["sweep", config, "--parameter-ranges", "garbage"], ["--parameter-ranges"]),
        (["sweep", config, "--parameter-ranges", "x:1:0:3"], ["--parameter-ranges", "min < max"]),
    ]
    for args, words in cases:
        _one_error(run(args, timeout=60, cwd=tmp_path), *words)


# An unwritable output directory: tests/store/test_resultfile.py (as root, through a path
# whose parent is a file; the permission-bit case cannot be shown as root).


# --------------------------------------------------------------------------- under mpiexec
# Each kind sees every rank count once; each run costs ~1-2 s.

MPI_CASES = [
    ("sweep", to_toml(SWEEP_OBJECTIVE)[:-40], 1, ["c.toml", "invalid TOML"]),
    ("sweep", edited(O, ("objective.function", "nomodule:f")), 2,
     ["c.toml", "objective.function"]),
    ("sweep", edited(O, ("parameters.x.points", 10_000), ("parameters.y.points", 10_000)), 3,
     ["c.toml", "parameters", "50,000,000"]),
    ("temper", edited(TI, ("temper.replicas", 0)), 1, ["c.toml", "temper.replicas"]),
    ("temper", edited(TF, ("problem.upper", [-4.0, 3.0])), 2, ["c.toml", "problem.upper"]),
    ("temper", edited(TI, ("problem.foo", 1)), 3, ["c.toml", "problem.foo"]),
    ("hpo", edited(HPO, ("space", {})), 1, ["c.toml", "space"]),
    ("hpo", edited(HPO, ("hpo.n_trials", -1)), 2, ["c.toml", "hpo.n_trials"]),
    ("hpo", edited(HPO, ("space.lr.low", math.nan)), 3, ["c.toml", "space.lr.low"]),
]


@pytest.mark.mpi
@pytest.mark.parametrize("kind, cfg, n, words", MPI_CASES,
                         ids=[f"{c[0]}-{c[3][-1]}-n{c[2]}" for c in MPI_CASES])
def test_bad_config_under_mpiexec(tmp_path, kind, cfg, n, words):
    proc = run([kind, write(tmp_path, cfg)], n=n, timeout=60, cwd=tmp_path)
    _one_error(proc, *words)
    assert not list(tmp_path.glob("*.h5")), "a result file was created for a bad config"


# known bugs, end to end: exit 1 with a traceback today
MPI_BUGS = [
    ("temper", edited(TF, ("problem.function", "testobj:quadratic")), 3, ["problem."]),
    ("hpo", edited(HPO, ("hpo.storage", "foo://bar")), 2, ["hpo.storage"]),
    ("hpo", edited(HPO, ("space.x.low", -1e308), ("space.x.high", 1e308)), 1, ["space.x"]),
]


@pytest.mark.mpi
@pytest.mark.parametrize("kind, cfg, n, words", MPI_BUGS,
                         ids=["temper-energy-raises", "hpo-storage-url", "hpo-huge-range"])
def test_known_bugs_under_mpiexec(tmp_path, kind, cfg, n, words):
    proc = run([kind, write(tmp_path, cfg)], n=n, timeout=90, cwd=tmp_path)
    _one_error(proc, *words)


@pytest.mark.mpi
def test_output_directory_with_force_under_mpiexec(tmp_path):
    """BUG: exit 1 with h5py's IsADirectoryError traceback."""
    (tmp_path / "out").mkdir()
    proc = run(["sweep", write(tmp_path, SWEEP_OBJECTIVE), "-o", tmp_path / "out", "--force"],
               n=2, timeout=60, cwd=tmp_path)
    _one_error(proc, "out")
