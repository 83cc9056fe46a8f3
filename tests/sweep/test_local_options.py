"""Issue 15.1: [local] takes scipy's method names (any case) beside hpcopt's, and scipy's
option names, passed to scipy for the method that takes them; an option the method does
not take is refused, naming it."""

import inspect
import warnings

import numpy as np
import pytest
from scipy.optimize import OptimizeWarning, least_squares, minimize

from hpctest import run, write_config
from hpcopt.config import open_config_text, parse_run
from hpcopt.errors import ConfigError
from hpcopt.models.curve import CurveProblem
from hpcopt.sweep import local
from hpcopt.sweep.config import parse_sweep_tables
from hpcopt.sweep.methods import ALL_OPTIONS, LEAST_SQUARES, OPTIONS, SCIPY_NAMES

BASE = """
[objective]
function = "testobj:quadratic"
[parameters]
x = { min = -1.0, max = 1.0, points = 2 }
y = { min = -1.0, max = 1.0, points = 2 }
"""
FIT = """
[model]
name = "nist:Misra1a"
[data]
path = "Misra1a.dat"
[parameters]
b1 = { min = 100.0, max = 1000.0, points = 2 }
b2 = { min = 1e-5, max = 1e-2, points = 2 }
"""


def parse(local_table: str, base: str = BASE):
    root, cf = open_config_text(base + "[local]\n" + local_table, "c.toml")
    return parse_sweep_tables(root, cf, parse_run(root))


def refused(local_table: str, base: str = BASE) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse(local_table, base)
    return err.value


# -- the table of options agrees with scipy itself ----------------------------------------

@pytest.mark.parametrize("method", ["nelder-mead", "powell", "lbfgsb"])
def test_every_listed_option_is_one_scipy_minimize_takes_and_no_other(method):
    """scipy warns "Unknown solver options" for an option the method does not take: each
    option listed for the method passes silently, every other method's option warns."""
    values = {"adaptive": True}
    for name in sorted(ALL_OPTIONS - {"max_nfev"}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            minimize(lambda z: float(np.sum((z - 0.3) ** 2)), [0.5, 0.5],
                     method=SCIPY_NAMES[method], bounds=[(0, 1), (0, 1)],
                     options={name: values.get(name, 50 if "max" in name else 1e-8)})
        unknown = [w for w in caught if issubclass(w.category, OptimizeWarning)
                   and "Unknown solver options" in str(w.message)]
        assert bool(unknown) == (name not in OPTIONS[method]), (method, name)


def test_least_squares_options_are_parameters_of_least_squares():
    params = set(inspect.signature(least_squares).parameters)
    for method in LEAST_SQUARES:
        assert set(OPTIONS[method]) <= params
        assert not (ALL_OPTIONS - set(OPTIONS[method])) & params


# -- method names --------------------------------------------------------------------------

@pytest.mark.parametrize("given, canonical", [
    ("Nelder-Mead", "nelder-mead"), ("NELDER-MEAD", "nelder-mead"), ("nelder-mead", "nelder-mead"),
    ("L-BFGS-B", "lbfgsb"), ("l-bfgs-b", "lbfgsb"), ("lbfgsb", "lbfgsb"),
    ("Powell", "powell"), ("POWELL", "powell"), ("None", "none")])
def test_scipy_and_hpcopt_spellings_of_minimize_methods(given, canonical):
    cfg = parse(f'method = "{given}"')
    assert cfg.local_method == canonical
    assert cfg.effective["local"]["method"] == canonical    # --resume sees one method


@pytest.mark.parametrize("given, canonical", [("trf", "least_squares"), ("TRF", "least_squares"),
                                              ("least_squares", "least_squares"),
                                              ("Least_Squares", "least_squares"),
                                              ("dogbox", "dogbox")])
def test_least_squares_spellings(given, canonical):
    assert parse(f'method = "{given}"', FIT).local_method == canonical


def test_unknown_and_unsupported_methods_are_refused_with_the_reason():
    err = refused('method = "BFGS"')
    assert err.key == "local.method" and "unknown local method 'BFGS'" in str(err)
    assert "Nelder-Mead" in str(err) and "L-BFGS-B" in str(err)
    assert "did you mean 'nelder-mead'" in str(refused('method = "nelder-maed"'))
    assert "takes no bounds" in str(refused('method = "lm"', FIT))
    assert "needs a model with residuals" in str(refused('method = "trf"'))


# -- options -------------------------------------------------------------------------------

def test_options_are_recorded_under_scipy_names_and_in_the_canonical_form():
    cfg = parse('method = "Nelder-Mead"\nmaxiter = 40\nxatol = 1e-6\nadaptive = true')
    assert cfg.local_options == {"maxiter": 40, "xatol": 1e-6, "adaptive": True}
    assert cfg.effective["local"] == {"method": "nelder-mead", "max_nfev": None, "maxiter": 40,
                                      "xatol": 1e-6, "adaptive": True}
    assert parse('method = "powell"').effective["local"] == {"method": "powell",
                                                             "max_nfev": None}


@pytest.mark.parametrize("table, key, words", [
    ('method = "Powell"\ngtol = 1e-6', "local.gtol", ["Powell takes no option 'gtol'"]),
    ('method = "Nelder-Mead"\nxtol = 1e-6', "local.xtol",
     ["Nelder-Mead takes no option 'xtol'", "called 'xatol'"]),
    ('method = "L-BFGS-B"\nmaxfev = 10', "local.maxfev", ["called 'maxfun'"]),
    ('method = "none"\nmaxiter = 10', "local.maxiter", ["takes no option 'maxiter'"]),
    ('method = "nelder-mead"\nmaxiter = 2.5', "local.maxiter", ["an integer >= 1"]),
    ('method = "nelder-mead"\nmaxiter = 0', "local.maxiter", ["an integer >= 1"]),
    ('method = "powell"\nxtol = -1.0', "local.xtol", ["a tolerance > 0"]),
    ('method = "nelder-mead"\nadaptive = 1', "local.adaptive", ["true or false"]),
    ('method = "nelder-mead"\nmax_nfev = 10\nmaxfev = 20', "local.maxfev", ["give one"]),
    ('method = "nelder-mead"\nmaxiterr = 10', "local.maxiterr", ["did you mean 'maxiter'"]),
])
def test_an_option_the_method_does_not_take_is_named(table, key, words):
    err = refused(table)
    assert err.key == key and str(err).startswith(f"c.toml: {key}: ")
    for w in words:
        assert w in str(err)


def test_least_squares_tolerances_below_machine_epsilon_are_refused():
    err = refused('method = "trf"\nxtol = 1e-20', FIT)
    assert err.key == "local.xtol" and "machine epsilon" in str(err)
    assert "takes no option 'maxiter'" in str(refused('method = "trf"\nmaxiter = 5', FIT))


# -- the options reach scipy ---------------------------------------------------------------

@pytest.fixture
def problem():
    x = np.linspace(0, 4, 30)
    model = lambda x, p: p[0] * np.exp(-p[1] * x) + p[2]        # noqa: E731
    return CurveProblem(x, model(x, [2.0, 1.3, 0.3]), model=model, param_names=("a", "k", "c"))


LOWER, UPPER, START = [0.1, 0.1, -1.0], [10.0, 10.0, 1.0], [1.0, 0.5, 0.0]


def spy(monkeypatch, name):
    calls = []
    real = getattr(local, name)

    def wrapper(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)
    monkeypatch.setattr(local, name, wrapper)
    return calls


@pytest.mark.parametrize("method, options, max_nfev, expected", [
    ("nelder-mead", {"maxiter": 7, "xatol": 1e-3}, None, {"maxiter": 7, "xatol": 1e-3}),
    ("nelder-mead", {}, 30, {"maxfev": 30, "xatol": 1e-10}),
    ("powell", {"ftol": 1e-4, "maxiter": 3}, 50, {"ftol": 1e-4, "maxiter": 3, "maxfev": 50,
                                                  "xtol": 1e-10}),
    ("lbfgsb", {"gtol": 1e-3, "maxcor": 4}, 40, {"gtol": 1e-3, "maxcor": 4, "maxfun": 40,
                                                 "ftol": 1e-15}),
])
def test_minimize_gets_the_options_over_the_defaults(monkeypatch, problem, method, options,
                                                     max_nfev, expected):
    calls = spy(monkeypatch, "minimize")
    local.refine(problem, START, LOWER, UPPER, method, max_nfev=max_nfev, options=options)
    assert calls[0]["method"] == SCIPY_NAMES[method]
    got = calls[0]["options"]
    assert {k: got[k] for k in expected} == expected


def test_least_squares_gets_its_options(monkeypatch, problem):
    calls = spy(monkeypatch, "least_squares")
    local.refine(problem, START, LOWER, UPPER, "dogbox", max_nfev=25, options={"xtol": 1e-6})
    kw = calls[0]
    assert (kw["method"], kw["xtol"], kw["max_nfev"], kw["ftol"]) == ("dogbox", 1e-6, 25,
                                                                       local.LSQ_TOL)


def test_maxiter_stops_nelder_mead_early(problem):
    free = local.refine(problem, START, LOWER, UPPER, "nelder-mead")
    short = local.refine(problem, START, LOWER, UPPER, "nelder-mead", options={"maxiter": 5})
    assert "Maximum number of iterations" in short.message and not short.success
    assert short.nfev < free.nfev / 4 and short.chi2 > free.chi2


def test_refine_refuses_an_option_of_another_method(problem):
    with pytest.raises(ValueError, match="Powell takes no option 'gtol'"):
        local.refine(problem, START, LOWER, UPPER, "powell", options={"gtol": 1e-3})


# -- end to end ----------------------------------------------------------------------------

def test_a_sweep_with_scipy_names_runs_and_records_them(tmp_path):
    import h5py
    cfg = write_config(tmp_path / "c.toml", BASE + '[local]\nmethod = "Nelder-Mead"\n'
                       'maxfev = 12\n[output]\npath = "o.h5"\n')
    run(["sweep", cfg], check=True)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f["tasks"].attrs["local"] == "nelder-mead"
        n_eval = f["tasks"]["n_eval"]
    assert 0 < n_eval.max() <= 12 + 1          # scipy's budget plus the start's evaluation
    bad = write_config(tmp_path / "b.toml", BASE + '[local]\nmethod = "Powell"\ngtol = 1e-3\n')
    proc = run(["sweep", bad])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}: local.gtol: Powell takes no option 'gtol'" in proc.stderr
