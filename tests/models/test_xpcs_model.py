"""XPCS data files, the XpcsProblem (FitProblem protocol), the simulator and parameter recovery.

(Named test_xpcs_model.py, not test_xpcs.py: tests/kernels/test_xpcs.py has that basename and
pytest's default import mode needs unique basenames in folders without __init__.py.)
"""

import importlib.util
from pathlib import Path

import h5py
import numba
import numpy as np
import pytest
from scipy.optimize import least_squares

from hpcopt.errors import DataError
from hpcopt.models import xpcs as M
from hpcopt.models.base import FitProblem, reduced_chi2

# the plain numpy references of the kernel tests (written from the formulas of docs/models.md)
_spec = importlib.util.spec_from_file_location(
    "xpcs_kernel_refs", Path(__file__).resolve().parents[1] / "kernels" / "test_xpcs.py")
refs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(refs)


def truth_vector(data, problem):
    return np.array([data.truth[k] for k in problem.param_names])


# --------------------------------------------------------------------------- names, problem
def test_parameter_names_follow_the_docs():
    assert M.PARAM_NAMES["homodyne"] == ("D0", "alpha", "D_offset", "gamma_dot_0", "beta",
                                         "gamma_dot_offset", "phi0")
    assert M.PARAM_NAMES["heterodyne"] == (
        "D0_ref", "alpha_ref", "D_offset_ref", "D0_sample", "alpha_sample", "D_offset_sample",
        "v0", "beta", "v_offset", "f0", "f1", "f2", "f3", "phi0")
    assert M.variant_of("xpcs:heterodyne") == "heterodyne"
    with pytest.raises(ValueError, match="unknown XPCS model"):
        M.variant_of("xpcs:dynamic")


@pytest.mark.parametrize("variant", ["homodyne", "heterodyne"])
def test_problem_matches_numpy_reference(variant):
    data = M.simulate(variant, n=20, phi=(0.0, 30.0, 100.0, 170.0), noise=0.02, seed=3)
    sigma = data.sigma * np.random.default_rng(0).uniform(0.5, 2.0, data.c2.shape)  # non-uniform
    problem = M.XpcsProblem(variant, data.c2, data.phi, q=data.q, dt=data.dt, h=data.h, sigma=sigma)
    assert isinstance(problem, FitProblem)
    assert problem.n_points == 4 * 20 * 20 and problem.n_nuisance == 8
    assert problem.param_names == M.PARAM_NAMES[variant]
    p = truth_vector(data, problem) * np.random.default_rng(1).uniform(0.9, 1.1, len(problem.param_names))
    if variant == "homodyne":
        decay = refs.ref_homodyne(p, data.phi, data.q, data.h, data.dt, 20)
    else:
        decay = refs.ref_heterodyne(p, data.phi, data.q, data.dt, 20)
    want_chi2, want_c, want_o = refs.ref_chi2(decay, data.c2, sigma)
    want_model = want_o[:, None, None] + want_c[:, None, None] * decay
    want_res = ((data.c2 - want_model) / sigma).ravel()
    # residuals are differences of numbers ~1: compare them on the scale of c2/sigma
    np.testing.assert_allclose(problem.residuals(p), want_res, rtol=1e-12,
                               atol=1e-12 * np.abs(data.c2 / sigma).max())
    np.testing.assert_allclose(problem.model(p), want_model, rtol=1e-12)
    assert problem.chi2(p) == pytest.approx(want_chi2, rel=1e-12)
    assert problem.chi2(p) == pytest.approx(np.sum(problem.residuals(p) ** 2), rel=1e-12)
    contrast, offset = problem.contrast_offset(p)
    np.testing.assert_allclose(contrast, want_c, rtol=1e-12)
    np.testing.assert_allclose(offset, want_o, rtol=1e-12)
    assert reduced_chi2(problem.chi2(p), problem) == pytest.approx(
        want_chi2 / (problem.n_points - len(p) - 8), rel=1e-12)


@pytest.mark.parametrize("mode,scaling,names", [
    ("laminar_flow", "individual", M.HOMODYNE_PARAMS),
    ("static_anisotropic", "individual", ("D0", "alpha", "D_offset")),
    ("static_isotropic", "constant", ("D0", "alpha", "D_offset")),
])
def test_analysis_modes_match_numpy_reference(mode, scaling, names):
    data = M.simulate("homodyne", n=18, phi=(0.0, 40.0, 95.0), noise=0.02, seed=7,
                      contrast=(0.3, 0.25, 0.2))
    problem = M.XpcsProblem.from_data(data, "homodyne", mode=mode)
    assert problem.param_names == names and problem.scaling == scaling
    assert problem.n_nuisance == (2 if scaling == "constant" else 6)
    p = np.array([data.truth[k] for k in names]) * 1.05
    full = np.concatenate([p, np.zeros(7 - len(p))])
    decay = refs.ref_homodyne(full, data.phi, data.q, data.h, data.dt, 18)
    want, want_c, want_o = refs.ref_fit(decay, data.c2, data.sigma, constant=scaling == "constant")
    assert problem.chi2(p) == pytest.approx(want, rel=1e-12)
    contrast, offset = problem.contrast_offset(p)
    np.testing.assert_allclose(contrast, want_c, rtol=1e-12)
    np.testing.assert_allclose(offset, want_o, rtol=1e-12)
    assert problem.chi2(p) == pytest.approx(np.sum(problem.residuals(p) ** 2), rel=1e-12)
    other = M.XpcsProblem.from_data(data, "homodyne", mode=mode,
                                    scaling="individual" if scaling == "constant" else "constant")
    assert other.chi2(p) != pytest.approx(problem.chi2(p), rel=1e-6)


def test_static_modes_need_no_gap_and_refuse_bad_modes():
    data = M.simulate("homodyne", {"gamma_dot_0": 0.0, "gamma_dot_offset": 0.0}, n=10, seed=1)
    bare = M.make_data(data.c2, data.phi, q=data.q, dt=data.dt, sigma=data.sigma)
    problem = M.XpcsProblem.from_data(bare, "homodyne", mode="static_isotropic")
    assert np.isfinite(problem.chi2(np.array([6000.0, -0.5, 300.0])))
    with pytest.raises(DataError, match="missing attribute 'h'"):
        M.XpcsProblem.from_data(bare, "homodyne")
    with pytest.raises(ValueError, match="mode must be"):
        M.XpcsProblem.from_data(data, "homodyne", mode="dynamic")
    with pytest.raises(ValueError, match="mode must be"):
        M.XpcsProblem.from_data(data, "heterodyne", mode="static_isotropic")
    with pytest.raises(ValueError, match="3 values"):
        problem.chi2(np.ones(7))


def test_static_isotropic_fit_recovers_the_truth_with_one_contrast():
    truth = {"D0": 8000.0, "alpha": -0.4, "D_offset": 200.0, "gamma_dot_0": 0.0,
             "gamma_dot_offset": 0.0}
    data = M.simulate("homodyne", truth, n=30, phi=(0.0, 60.0, 120.0), contrast=0.25,
                      offset=1.02, noise=0.01, seed=4)
    problem = M.XpcsProblem.from_data(data, "homodyne", mode="static_isotropic")
    x = np.array([truth[k] for k in problem.param_names])
    fit = least_squares(problem.residuals, x * 1.2, x_scale="jac")
    dof = problem.n_points - 3 - problem.n_nuisance
    cov = np.linalg.inv(fit.jac.T @ fit.jac) * 2 * fit.cost / dof
    assert np.all(np.abs(fit.x - x) < 4 * np.sqrt(np.diag(cov)))
    contrast, offset = problem.contrast_offset(fit.x)
    assert np.all(contrast == contrast[0]) and contrast[0] == pytest.approx(0.25, rel=0.02)
    assert np.all(offset == offset[0]) and offset[0] == pytest.approx(1.02, rel=0.002)


def test_result_attrs_and_the_convention_warning():
    problem = M.XpcsProblem.from_data(M.simulate("homodyne", n=8, seed=0), "homodyne")
    assert problem.result_attrs == {"xpcs_convention": 2, "xpcs_mode": "", "xpcs_scaling": "individual"}
    sweep = '[model]\nname = "xpcs:homodyne"\n[data]\npath = "c2.h5"\n'
    temper = '[problem]\nmodel = "XPCS:homodyne"\ndata = "c2.h5"\n'
    for config in (sweep, temper, sweep.encode()):
        text = M.convention_warning({"config": config})
        assert "divide them by pi" in text and "gamma_dot_0" in text
        assert M.convention_warning({"config": config, "xpcs_convention": np.int64(2)}) is None
    assert M.convention_warning({"config": sweep, "xpcs_convention": 1}) is not None
    for other in ('[model]\nname = "xpcs:heterodyne"\n', '[model]\nname = "nist:Misra1a"\n',
                  '[objective]\nfunction = "m:f"\n', "not toml [", ""):
        assert M.convention_warning({"config": other}) is None


def test_problem_refuses_bad_arrays_and_parameters():
    data = M.simulate("homodyne", n=8, noise=0.01, seed=0)
    with pytest.raises(ValueError, match="needs the gap h"):
        M.XpcsProblem("homodyne", data.c2, data.phi, q=data.q, dt=data.dt)
    with pytest.raises(ValueError, match="one angle per c2"):
        M.XpcsProblem("homodyne", data.c2, data.phi[:2], q=data.q, dt=data.dt, h=1e6)
    problem = M.XpcsProblem.from_data(data, "homodyne")
    with pytest.raises(ValueError, match="vector of 7"):
        problem.chi2(np.ones(6))
    assert problem.chi2(np.array([1e308, 1.0, 1e308, 0.0, 0.0, 0.0, 0.0])) == np.inf
    hetero = M.XpcsProblem("heterodyne", data.c2, data.phi, q=data.q, dt=data.dt)  # no h needed
    assert np.isfinite(hetero.chi2(np.array(list(M.DEFAULT_PARAMS["heterodyne"].values()))))


# --------------------------------------------------------------------------- simulator
def test_simulate_exact_and_noisy():
    exact = M.simulate("homodyne", {"D0": 4000.0}, n=16, contrast=(0.2, 0.3, 0.4), offset=1.05, noise=0.0)
    assert exact.sigma is None and exact.truth["D0"] == 4000.0
    p = np.array(list(M.full_params("homodyne", {"D0": 4000.0}).values()))
    decay = refs.ref_homodyne(p, exact.phi, exact.q, exact.h, exact.dt, 16)
    np.testing.assert_allclose(exact.c2, 1.05 + np.array([0.2, 0.3, 0.4])[:, None, None] * decay, rtol=1e-12)
    noisy = M.simulate("homodyne", {"D0": 4000.0}, n=16, contrast=(0.2, 0.3, 0.4), offset=1.05,
                       noise=0.05, seed=9)
    noise = noisy.c2 - exact.c2
    assert np.all(noisy.sigma == 0.05)
    assert abs(noise.std() / 0.05 - 1) < 0.1 and abs(noise.mean()) < 0.01
    again = M.simulate("homodyne", {"D0": 4000.0}, n=16, contrast=(0.2, 0.3, 0.4), offset=1.05,
                       noise=0.05, seed=9)
    np.testing.assert_array_equal(again.c2, noisy.c2)
    other = M.simulate("homodyne", {"D0": 4000.0}, n=16, noise=0.05, seed=10)
    assert not np.allclose(other.c2, noisy.c2)
    with pytest.raises(ValueError, match="unknown homodyne parameter"):
        M.simulate("homodyne", {"D_0": 1.0})
    with pytest.raises(ValueError, match="noise"):
        M.simulate("homodyne", noise=-1.0)
    with pytest.raises(ValueError, match="one per angle"):
        M.simulate("homodyne", contrast=(0.1, 0.2))


def test_bundled_demo_dataset_is_reproducible(tmp_path):
    fresh = M.make_demo_dataset(tmp_path / "demo.h5")
    bundled = M.load_xpcs_h5(M.DEMO_FILE)
    np.testing.assert_allclose(bundled.c2, fresh.c2, rtol=1e-12)
    np.testing.assert_array_equal(bundled.phi, fresh.phi)
    assert bundled.truth == M.load_xpcs_h5(tmp_path / "demo.h5").truth
    assert bundled.c2.shape == (3, 60, 60) and bundled.h == 1e6
    assert bundled.conditions == {"temperature": 298.15, "concentration": 0.08}
    assert M.DEMO_FILE.stat().st_size < 300_000
    assert bundled.truth["gamma_dot_0"] == M.DEMO_SETTINGS["params"]["gamma_dot_0"] == 3e-5
    problem = M.XpcsProblem.from_file(M.DEMO_FILE, "xpcs:homodyne")
    truth = truth_vector(bundled, problem)
    assert 0.9 < reduced_chi2(problem.chi2(truth), problem) < 1.1
    # made with the corrected model: the first convention's phase (pi times smaller at the
    # same shear rates) does not fit it
    old = truth.copy()
    old[[3, 5]] /= np.pi
    assert reduced_chi2(problem.chi2(old), problem) > 1.1


def test_bundled_beamline_example_is_reproducible(tmp_path):
    fresh = M.make_beamline_example(tmp_path / "u.h5")
    with h5py.File(M.BEAMLINE_FILE, "r") as f:
        bundled = {b: f[f"xpcs/twotime/correlation_map/c2_{k:05d}"][()]
                   for k, b in enumerate(f["xpcs/twotime/processed_bins"][()], start=1)}
    assert sorted(bundled) == sorted(fresh) == list(range(1, 9))
    for b, c2 in fresh.items():
        np.testing.assert_array_equal(bundled[b], np.triu(c2).astype(np.float32))


# --------------------------------------------------------------------------- files
def test_file_round_trip(tmp_path):
    data = M.simulate("heterodyne", n=12, phi=(10.0, 80.0), noise=0.01, seed=4,
                      conditions={"temperature": 310.0, "sample": "silica", "run": 7})
    path = tmp_path / "x.h5"
    M.save_xpcs_h5(path, data)
    back = M.load_xpcs_h5(path)
    np.testing.assert_array_equal(back.c2, data.c2)
    np.testing.assert_array_equal(back.phi, data.phi)
    np.testing.assert_array_equal(back.sigma, data.sigma)
    assert (back.q, back.dt, back.h) == (data.q, data.dt, data.h)
    assert back.conditions == {"temperature": 310.0, "sample": "silica", "run": 7}
    assert back.truth == data.truth and back.source == str(path)
    problem = M.XpcsProblem.from_file(path, "heterodyne")
    assert problem.data.conditions["temperature"] == 310.0
    # without sigma and without h: fine for the heterodyne model, refused for the homodyne one
    bare = M.make_data(data.c2, data.phi, q=data.q, dt=data.dt)
    M.save_xpcs_h5(path, bare, true_params={"D0_ref": 1.0})
    back = M.load_xpcs_h5(path)
    assert back.sigma is None and back.h is None and back.truth == {"D0_ref": 1.0}
    assert np.isfinite(M.XpcsProblem.from_file(path, "heterodyne").chi2(truth_vector(data, problem)))
    with pytest.raises(DataError, match=rf"{path}: missing attribute 'h'"):
        M.XpcsProblem.from_file(path, "homodyne")


def _write(path, c2=None, phi=None, sigma=None, attrs=None, skip=()):
    rng = np.random.default_rng(0)
    arrays = {"c2": 1 + 0.1 * rng.random((2, 5, 5)), "phi": np.array([0.0, 90.0]),
              "sigma": np.full((2, 5, 5), 0.01)}
    arrays.update({k: v for k, v in (("c2", c2), ("phi", phi), ("sigma", sigma)) if v is not None})
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if k not in skip:
                f.create_dataset(k, data=v)
        for k, v in {"q": 0.01, "dt": 0.1, "h": 1e6, **(attrs or {})}.items():
            if k not in skip:
                f.attrs[k] = v


BAD_FILES = {
    "missing c2": (dict(skip=("c2",)), "missing dataset 'c2'"),
    "missing phi": (dict(skip=("phi",)), "missing dataset 'phi'"),
    "c2 not 3-D": (dict(c2=np.ones((5, 5))), r"shape \(n_phi, n, n\)"),
    "c2 not square": (dict(c2=np.ones((2, 5, 4)), sigma=np.ones((2, 5, 4))), "square"),
    "c2 with NaN": (dict(c2=np.where(np.eye(5) > 0, np.nan, 1.0)[None].repeat(2, 0)),
                    r"'c2' contains 10 non-finite"),
    "c2 of strings": (dict(c2=np.array([b"a", b"b"])), "real numbers"),
    "phi length": (dict(phi=np.array([0.0, 45.0, 90.0])), "one angle per c2"),
    "phi NaN": (dict(phi=np.array([0.0, np.nan])), "'phi' contains 1"),
    "sigma zero": (dict(sigma=np.zeros((2, 5, 5))), "'sigma' must be > 0"),
    "sigma negative": (dict(sigma=-np.ones((2, 5, 5))), "'sigma' must be > 0"),
    "sigma shape": (dict(sigma=np.ones((2, 5, 4))), "'sigma' has shape"),
    "sigma inf": (dict(sigma=np.full((2, 5, 5), np.inf)), "'sigma' contains 50"),
    "missing q": (dict(skip=("q",)), "missing attribute 'q'"),
    "missing dt": (dict(skip=("dt",)), "missing attribute 'dt'"),
    "q negative": (dict(attrs={"q": -0.01}), "'q' must be a finite positive"),
    "dt text": (dict(attrs={"dt": "fast"}), "'dt' must be a number"),
    "h zero": (dict(attrs={"h": 0.0}), "'h' must be a finite positive"),
    "q array": (dict(attrs={"q": [0.01, 0.02]}), "'q' must be a number"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_refused_naming_file_and_problem(tmp_path, case):
    kwargs, match = BAD_FILES[case]
    path = tmp_path / "bad.h5"
    _write(path, **kwargs)
    with pytest.raises(DataError, match=match) as info:
        M.load_xpcs_h5(path)
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(DataError):
        M.XpcsProblem.from_file(path, "homodyne")


def test_unreadable_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        M.load_xpcs_h5(tmp_path / "nope.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(DataError, match=rf"{text}: cannot read as HDF5"):
        M.load_xpcs_h5(text)
    group = tmp_path / "group.h5"
    with h5py.File(group, "w") as f:
        f.create_group("c2")
    with pytest.raises(DataError, match="'c2' must be a dataset"):
        M.load_xpcs_h5(group)


# --------------------------------------------------------------------------- recovery
def fit_recovery(data, variant, free, seed, k=4.0):
    """least_squares (trf, x_scale='jac') from a start 20% off; true values within k stderr."""
    problem = M.XpcsProblem.from_data(data, variant)
    truth = truth_vector(data, problem)
    idx = [problem.param_names.index(name) for name in free]
    start = truth[idx] * (1 + 0.2 * np.random.default_rng(seed + 100).uniform(-1, 1, len(idx)))

    def residuals(x):
        p = truth.copy()
        p[idx] = x
        return problem.residuals(p)

    fit = least_squares(residuals, start, method="trf", x_scale="jac")
    assert fit.status > 0
    chi2 = 2 * fit.cost
    dof = problem.n_points - len(idx) - problem.n_nuisance
    assert 0.85 < chi2 / dof < 1.15  # the fit reaches the noise level
    cov = np.linalg.inv(fit.jac.T @ fit.jac) * chi2 / dof
    stderr = np.sqrt(np.diag(cov))
    z = (fit.x - truth[idx]) / stderr
    assert np.all(np.abs(z) < k), dict(zip(free, np.round(z, 2)))
    assert chi2 <= np.sum(residuals(start) ** 2)
    return z


@pytest.mark.parametrize("n,noise,seed", [(30, 0.005, 0), (30, 0.02, 1), (40, 0.01, 2)])
def test_homodyne_parameters_are_recovered(n, noise, seed):
    data = M.simulate("homodyne", n=n, noise=noise, seed=seed)
    fit_recovery(data, "homodyne", M.HOMODYNE_PARAMS, seed)


# f2 stays fixed: f0 * exp(f1 (t - f2)) = (f0 exp(-f1 f2)) exp(f1 t), so f0 and f2 are one parameter
HETERODYNE_FREE = tuple(name for name in M.HETERODYNE_PARAMS if name != "f2")


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="13-parameter fits take minutes in pure Python")
@pytest.mark.parametrize("n,noise,seed", [(30, 0.005, 1), (30, 0.02, 2), (40, 0.01, 0)])
def test_heterodyne_parameters_are_recovered(n, noise, seed):
    data = M.simulate("heterodyne", n=n, noise=noise, seed=seed)
    fit_recovery(data, "heterodyne", HETERODYNE_FREE, seed)
