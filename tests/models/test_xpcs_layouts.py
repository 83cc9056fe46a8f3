"""XPCS files in every layout (hpcopt's, APS-U, older APS) and the [data] selection.

Fixture files are written here in each layout from known symmetric maps; what the loader
returns is compared with those maps sliced by plain numpy (and the diagonal correction
with a loop over the neighbours at full time resolution).
"""

import h5py
import numpy as np
import pytest
from scipy.optimize import least_squares

from hpcopt.errors import ConfigError, DataError
from hpcopt.models import xpcs as M
from hpcopt.models import xpcs_layouts as L

Q_VALUES = (0.004, 0.0054)
PHI_VALUES = (0.0, 60.0, 120.0, 300.0)
N = 24


def symmetric_maps(seed=0):
    """1-based bin -> a symmetric (N, N) c2 with a high diagonal, over the q x phi grid."""
    rng = np.random.default_rng(seed)
    maps = {}
    for b in range(1, len(Q_VALUES) * len(PHI_VALUES) + 1):
        a = rng.normal(1.0, 0.1, (N, N))
        c2 = np.triu(a) + np.triu(a, 1).T
        c2[np.diag_indices(N)] += 0.5
        maps[b] = c2.astype(np.float32).astype(np.float64)   # exact after a float32 round trip
    return maps


def bin_of(qi, pi):
    return qi * len(PHI_VALUES) + pi + 1


@pytest.fixture
def aps_u(tmp_path):
    maps = symmetric_maps()
    path = tmp_path / "aps_u.h5"
    L.save_aps_u(path, maps, Q_VALUES, PHI_VALUES)
    return path, maps


@pytest.fixture
def aps(tmp_path):
    maps = symmetric_maps(1)
    bins = sorted(maps)
    q = [Q_VALUES[(b - 1) // len(PHI_VALUES)] for b in bins]
    phi = [PHI_VALUES[(b - 1) % len(PHI_VALUES)] for b in bins]
    path = tmp_path / "aps.h5"
    L.save_aps(path, [maps[b] for b in bins], q, phi)
    return path, maps


def load(path, **options):
    return M.load_xpcs_h5(path, options, source="fit.toml")


def brute_force_corrected_diagonal(full, rows):
    out = []
    for i in rows:
        neighbours = [full[i, j] for j in (i - 1, i + 1) if 0 <= j < full.shape[0]]
        out.append(sum(neighbours) / len(neighbours))
    return np.array(out)


# --------------------------------------------------------------------------- layouts
def test_half_matrix_round_trip():
    c2 = symmetric_maps()[1]
    half = L.half_matrix(c2)
    assert np.all(np.tril(half, -1) == 0)
    full = half + half.T
    full[np.diag_indices(N)] /= 2
    np.testing.assert_array_equal(full, c2)


@pytest.mark.parametrize("names", ["order", "bin"])
def test_aps_u_layout_is_detected_and_read(tmp_path, names):
    maps = symmetric_maps()
    subset = {b: maps[b] for b in (bin_of(1, 0), bin_of(1, 2), bin_of(1, 3), bin_of(0, 1))}
    path = tmp_path / "u.h5"
    L.save_aps_u(path, subset, Q_VALUES, PHI_VALUES, names=names)
    with h5py.File(path, "r") as f:
        assert L.detect_layout(f) == "aps-u"
        assert list(f[L.APS_U_BINS][()]) == sorted(subset)
    d = load(path, q=0.0055, dt=0.1, diagonal="keep")
    assert d.layout == "aps-u" and d.pairs == "once" and d.q == 0.0054
    np.testing.assert_array_equal(d.phi, [0.0, 120.0, 300.0])
    for a, pi in enumerate((0, 2, 3)):
        np.testing.assert_array_equal(d.c2[a], maps[bin_of(1, pi)])
    assert d.sigma is None and d.t0 == 0.1 and d.dt == 0.1


def test_aps_layout_is_detected_and_read(aps):
    path, maps = aps
    with h5py.File(path, "r") as f:
        assert L.detect_layout(f) == "aps"
        assert f[L.APS_Q].shape == (1, len(maps))
    d = load(path, q=0.004, dt=0.5, diagonal="keep")
    assert d.layout == "aps" and d.q == 0.004
    np.testing.assert_array_equal(d.phi, PHI_VALUES)
    for pi in range(len(PHI_VALUES)):
        np.testing.assert_array_equal(d.c2[pi], maps[bin_of(0, pi)])


def test_hpcopt_layout_keeps_working(tmp_path):
    data = M.simulate("homodyne", n=12, noise=0.01, seed=2)
    M.save_xpcs_h5(tmp_path / "own.h5", data)
    with h5py.File(tmp_path / "own.h5", "r") as f:
        assert L.detect_layout(f) == "hpcopt"
    back = M.load_xpcs_h5(tmp_path / "own.h5")
    np.testing.assert_array_equal(back.c2, data.c2)
    assert back.layout == "hpcopt" and back.pairs == "both" and back.diagonal == "keep"


# --------------------------------------------------------------------------- selection
def test_nearest_q_and_nearest_angles_on_the_circle(aps_u):
    path, maps = aps_u
    d = load(path, q=0.0041, phi=[-50.0, 115.0], dt=0.1, diagonal="keep")
    assert d.q == 0.004
    np.testing.assert_array_equal(d.phi, [300.0, 120.0])            # -50 is nearest 300
    np.testing.assert_array_equal(d.c2[0], maps[bin_of(0, 3)])
    with pytest.raises(ConfigError, match="a second time") as info:
        load(path, q=0.004, phi=[100.0, 130.0], dt=0.1)
    assert info.value.key == "data.phi"


def test_phi_ranges_wrap_around(aps_u):
    path, _ = aps_u
    d = load(path, q=0.0054, phi_ranges=[[-70.0, 10.0], [100.0, 130.0]], dt=0.1)
    np.testing.assert_array_equal(d.phi, [0.0, 120.0, 300.0])
    with pytest.raises(ConfigError, match="no angle") as info:
        load(path, q=0.0054, phi_ranges=[[10.0, 50.0]], dt=0.1)
    assert info.value.key == "data.phi_ranges"


@pytest.mark.parametrize("frames,stride", [((1, N), 1), ((5, 20), 1), ((3, 22), 3), ((1, N), 5)])
def test_frames_stride_and_the_time_grid(aps_u, frames, stride):
    path, maps = aps_u
    d = load(path, q=0.0054, phi=[60.0], frames=list(frames), stride=stride, dt=0.2,
             diagonal="keep")
    rows = np.arange(frames[0] - 1, frames[1], stride)
    np.testing.assert_array_equal(d.c2[0], maps[bin_of(1, 1)][np.ix_(rows, rows)])
    # row k is frame rows[k] + 1 of the file, at (rows[k] + 1) * dt
    np.testing.assert_allclose(d.times, (rows + 1) * 0.2, rtol=1e-14)
    assert d.dt == pytest.approx(0.2 * stride)


@pytest.mark.parametrize("frames,stride", [((1, N), 1), ((4, 20), 2), ((2, N), 1)])
def test_diagonal_correction_is_the_mean_of_the_neighbours(aps_u, frames, stride):
    path, maps = aps_u
    d = load(path, q=0.004, frames=list(frames), stride=stride, dt=0.1)   # correct: the default
    assert d.diagonal == "correct"
    rows = np.arange(frames[0] - 1, frames[1], stride)
    for a, pi in enumerate(range(len(PHI_VALUES))):
        full = maps[bin_of(0, pi)]
        want = full[np.ix_(rows, rows)].copy()
        want[np.diag_indices(len(rows))] = brute_force_corrected_diagonal(full, rows)
        np.testing.assert_allclose(d.c2[a], want, rtol=1e-15)


def test_hpcopt_layout_selection_and_diagonal_options(tmp_path):
    data = M.simulate("homodyne", n=30, phi=(0.0, 45.0, 90.0), noise=0.01, seed=5,
                      pairs="once", t0=2.0)
    M.save_xpcs_h5(tmp_path / "own.h5", data)
    back = M.load_xpcs_h5(tmp_path / "own.h5")
    assert back.pairs == "once" and back.t0 == 2.0       # exactly symmetric: one draw per pair
    d = M.load_xpcs_h5(tmp_path / "own.h5", {"phi": [90.0], "frames": [3, 28], "stride": 2,
                                             "diagonal": "correct"})
    rows = np.arange(2, 28, 2)
    want = data.c2[2][np.ix_(rows, rows)].copy()
    want[np.diag_indices(len(rows))] = brute_force_corrected_diagonal(data.c2[2], rows)
    np.testing.assert_allclose(d.c2[0], want, rtol=1e-15)
    np.testing.assert_array_equal(d.sigma[0], data.sigma[2][np.ix_(rows, rows)])
    np.testing.assert_allclose(d.times, 2.0 + 0.1 * rows, rtol=1e-14)
    assert M.load_xpcs_h5(tmp_path / "own.h5", {"dt": 0.5, "h": 2e6}).dt == 0.5
    with pytest.raises(ConfigError, match="holds one q") as info:
        M.load_xpcs_h5(tmp_path / "own.h5", {"q": 0.01}, source="fit.toml")
    assert info.value.key == "data.q" and info.value.source == "fit.toml"


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("options,key,match", [
    ({"q": 0.0054}, "data.dt", "time between c2 rows"),
    ({"dt": 0.1}, "data.q", "2 q bins"),
    ({"q": 0.0054, "dt": 0.1, "frames": [1, 99]}, "data.frames", "past the 24 frames"),
    ({"q": 0.0054, "dt": 0.1, "frames": [5, 6], "stride": 2}, "data.stride", "at least 2"),
    ({"q": 0.0054, "dt": 0.1, "frame": [1, 5]}, "data.frame", "did you mean 'frames'"),
    ({"q": 0.0054, "dt": 0.1, "strid": 2}, "data.strid", "did you mean 'stride'"),
    ({"q": 0.0054, "dt": 0.1, "phi": [0.0], "phi_ranges": [[0, 10]]}, "data.phi", "not both"),
    ({"q": 0.0054, "dt": 0.1, "diagonal": "fix"}, "data.diagonal", "correct, keep, exclude"),
    ({"q": 0.0054, "dt": -1.0}, "data.dt", "> 0"),
    ({"q": 0.0054, "dt": 0.1, "frames": [5, 2]}, "data.frames", "start < end"),
    ({"q": 0.0054, "dt": 0.1, "stride": 1.5}, "data.stride", "integer"),
    ({"q": 0.0054, "dt": 0.1, "phi_ranges": [[10, 5]]}, "data.phi_ranges", "lo <= hi"),
])
def test_bad_selections_name_the_key(aps_u, options, key, match):
    path, _ = aps_u
    with pytest.raises(ConfigError, match=match) as info:
        load(path, **options)
    assert info.value.key == key and info.value.source == "fit.toml"


def test_broken_beamline_files_are_refused_naming_the_file(tmp_path, aps_u):
    path, maps = aps_u
    with h5py.File(path, "a") as f:
        del f[L.APS_U_BINS]
        f[L.APS_U_BINS] = np.array([1, 2, 3])
    with pytest.raises(DataError, match="lists 3 bins but") as info:
        load(path, q=0.004, dt=0.1)
    assert str(info.value).startswith(f"{path}: ")
    with h5py.File(path, "a") as f:
        del f[L.APS_U_BINS]
        f[L.APS_U_BINS] = np.arange(1, 9) + 90
    with pytest.raises(DataError, match="outside the 2 x 4"):
        load(path, q=0.004, dt=0.1)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_group("entry")
    with pytest.raises(DataError, match="not an XPCS file"):
        load(empty)


# --------------------------------------------------------------------------- fitting beamline data
def test_problem_counts_each_pair_once_on_beamline_data(aps_u):
    path, _ = aps_u
    for diagonal, per_angle in (("correct", N * (N - 1) // 2 + N), ("exclude", N * (N - 1) // 2)):
        d = load(path, q=0.0054, dt=0.1, h=1e6, diagonal=diagonal)
        problem = M.XpcsProblem.from_data(d, "homodyne")
        assert problem.n_points == 4 * per_angle
        p = np.array([6000.0, -0.5, 300.0, 1e-4, 0.5, 1e-5, 10.0])
        r = problem.residuals(p)
        assert r.size == problem.n_points
        assert problem.chi2(p) == pytest.approx(np.sum(r ** 2), rel=1e-12)


def test_the_uncertainty_of_symmetric_data_matches_the_scatter_of_refits():
    """One measurement per pair: counting both triangles would make the stderr too small
    (these 60 refits give 1.36 instead of 0.99 with pairs "both")."""
    truth = {"D0": 0.0, "alpha": 0.0, "D_offset": 3000.0}      # Brownian: J constant
    fits, errors = [], []
    for seed in range(60):
        data = M.simulate("homodyne", {**truth, "gamma_dot_0": 0.0, "gamma_dot_offset": 0.0},
                          n=30, phi=(0.0,), noise=0.02, seed=seed, pairs="once")
        problem = M.XpcsProblem.from_data(data, "homodyne", mode="static_anisotropic")
        fit = least_squares(lambda x: problem.residuals([0.0, 0.0, x[0]]), [2500.0])
        dof = problem.n_points - 1 - problem.n_nuisance
        cov = np.linalg.inv(fit.jac.T @ fit.jac) * (2 * fit.cost / dof)
        fits.append(fit.x[0])
        errors.append(np.sqrt(cov[0, 0]))
    ratio = np.std(fits, ddof=1) / np.mean(errors)
    assert 0.85 < ratio < 1.15, ratio


def test_bundled_beamline_example_recovers_its_truth():
    s = M.BEAMLINE_SETTINGS
    d = M.load_xpcs_h5(M.BEAMLINE_FILE, {"q": 0.0054, "phi_ranges": [[-10.0, 100.0]],
                                         "frames": [5, 100], "dt": s["dt"], "h": s["h"]})
    assert M.BEAMLINE_FILE.stat().st_size < 300_000
    problem = M.XpcsProblem.from_data(d, "homodyne")
    truth = np.array([s["params"][k] for k in problem.param_names])
    start = truth * (1 + 0.15 * np.random.default_rng(3).uniform(-1, 1, truth.size))
    fit = least_squares(problem.residuals, start, x_scale="jac")
    dof = problem.n_points - truth.size - problem.n_nuisance
    red = 2 * fit.cost / dof
    assert 0.85 < red / s["noise"] ** 2 < 1.15
    cov = np.linalg.inv(fit.jac.T @ fit.jac) * red
    z = (fit.x - truth) / np.sqrt(np.diag(cov))
    assert np.all(np.abs(z) < 4), dict(zip(problem.param_names, np.round(z, 2)))
    # the diagonal as stored (biased high) pulls the fit away: the correction matters
    kept = M.load_xpcs_h5(M.BEAMLINE_FILE, {"q": 0.0054, "phi_ranges": [[-10.0, 100.0]],
                                            "frames": [5, 100], "dt": s["dt"], "h": s["h"],
                                            "diagonal": "keep"})
    biased = M.XpcsProblem.from_data(kept, "homodyne")
    assert biased.chi2(truth) > 1.2 * problem.chi2(truth)


# --------------------------------------------------------------------------- through the CLI
BEAMLINE_SWEEP = """
[model]
name = "xpcs:homodyne"
mode = "static_isotropic"
[data]
path = "{path}"
q = 0.0054
{extra}
[parameters]
D0 = {{ min = 1e3, max = 3e4 }}
alpha = {{ min = -1.0, max = 0.5 }}
D_offset = {{ min = 0.0, max = 2000.0 }}
[search]
method = "sobol"
samples = 2
[local]
method = "none"
[output]
path = "out.h5"
"""


@pytest.mark.parametrize("extra,key", [("", "data.dt"), ("dt = 0.1\nstrid = 2", "data.strid"),
                                       ("dt = 0.1\nframes = [1, 500]", "data.frames")])
def test_a_bad_beamline_selection_exits_2_naming_file_and_key(aps_u, tmp_path, extra, key):
    from hpctest import run
    path, _ = aps_u
    config = tmp_path / "fit.toml"
    config.write_text(BEAMLINE_SWEEP.format(path=path, extra=extra))
    proc = run(["sweep", config], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"{config}: {key}:" in proc.stderr
    assert not (tmp_path / "out.h5").exists()             # refused before any work


def test_a_static_fit_of_a_beamline_file_runs_and_records_the_convention(aps_u, tmp_path):
    from hpctest import run
    path, _ = aps_u
    config = tmp_path / "fit.toml"
    config.write_text(BEAMLINE_SWEEP.format(path=path, extra="dt = 0.1\nstride = 2"))
    run(["sweep", config], cwd=tmp_path, check=True)
    with h5py.File(tmp_path / "out.h5", "r") as f:
        assert f.attrs["xpcs_convention"] == 2 and f.attrs["xpcs_mode"] == "static_isotropic"
        assert f.attrs["xpcs_scaling"] == "constant"
        assert f["tasks"].attrs["param_names"] == '["D0", "alpha", "D_offset"]'
        assert np.all(f["tasks"]["status"] == 1)
