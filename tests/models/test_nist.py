"""NIST StRD: .dat parser, formulas, Jacobians, canonical forms, search boxes."""

import numpy as np
import pytest

from hpcopt.errors import DataError
from hpcopt.models import nist as N
from hpcopt import nist_accuracy as A


@pytest.fixture(scope="module")
def problems():
    return {name: N.read_nist(N.nist_path(name)) for name in N.NIST_NAMES}


def test_all_27_problems_parse(problems):
    assert len(N.NIST_NAMES) == 27
    assert {p.difficulty for p in problems.values()} == {"lower", "average", "higher"}
    for name, p in problems.items():
        k = p.model.n_params
        assert p.name == name
        assert p.param_names == tuple(f"b{i}" for i in range(1, k + 1))
        for a in (p.start1, p.start2, p.certified, p.certified_std):
            assert a.shape == (k,) and np.all(np.isfinite(a))
        assert p.y.shape == (p.n_obs,)
        assert p.x.shape == ((p.n_obs,) if p.model.n_predictors == 1 else (p.n_obs, 2))
        assert p.certified_rss > 0


def test_known_values_of_one_file(problems):
    p = problems["Misra1a"]
    assert p.n_obs == 14 and p.difficulty == "lower"
    np.testing.assert_array_equal(p.start1, [500, 1e-4])
    np.testing.assert_array_equal(p.start2, [250, 5e-4])
    np.testing.assert_array_equal(p.certified, [2.3894212918e02, 5.5015643181e-04])
    assert p.certified_rss == 1.2455138894e-01
    assert (p.y[0], p.x[0], p.y[-1], p.x[-1]) == (10.07, 77.6, 81.78, 760.0)
    nelson = problems["Nelson"]
    assert nelson.x.shape == (128, 2) and nelson.model.log_response


def test_formulas_reproduce_the_certified_rss(problems):
    """Each formula at the certified parameters gives the certified RSS (to the digits
    the 11-digit certified parameters allow; Lanczos1's RSS is rounding noise)."""
    for name, p in problems.items():
        y = np.log(p.y) if p.model.log_response else p.y
        rss = np.sum((y - p.model(p.x, p.certified)) ** 2)
        if name == "Lanczos1":  # certified 1.4e-25; 11-digit parameters give ~1e-21
            assert rss < 1e-19
        else:
            assert A.lre(rss, p.certified_rss) > 9, name


def test_get_model_is_case_insensitive():
    assert N.get_model("misra1A").name == "Misra1a"
    assert N.get_model("ENSO") is N.get_model("enso")
    with pytest.raises(KeyError, match="unknown NIST problem"):
        N.get_model("Misra9")


@pytest.mark.parametrize("name", N.NIST_NAMES)
def test_complex_step_jacobian_matches_central_differences(name, problems):
    p = problems[name]
    b = p.certified
    J = p.model.jacobian(p.x, b)
    assert J.shape == (p.n_obs, b.size)
    for k in range(b.size):
        h = 1e-5 * abs(b[k])
        bp, bm = b.copy(), b.copy()
        bp[k] += h
        bm[k] -= h
        fd = (p.model(p.x, bp) - p.model(p.x, bm)) / (2 * h)
        np.testing.assert_allclose(J[:, k], fd, rtol=1e-5, atol=1e-7 * np.max(np.abs(fd)))


@pytest.mark.parametrize("name", ["Gauss1", "Lanczos2", "MGH17", "ENSO"])
def test_canonical_form_does_not_change_the_curve(name, problems):
    p = problems[name]
    rng = np.random.default_rng(0)
    k = p.certified.size
    for _ in range(20):
        b = p.certified * rng.uniform(0.5, 1.5, k) * rng.choice([-1, 1], k)
        c = A.canonical(p.model, b)
        np.testing.assert_allclose(p.model(p.x, c), p.model(p.x, b), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(A.canonical(p.model, c), c)  # idempotent


def test_canonical_undoes_relabelling(problems):
    g = problems["Gauss2"].certified
    swapped = g[[0, 1, 5, 6, 7, 2, 3, 4]] * [1, 1, 1, 1, -1, 1, 1, -1]
    np.testing.assert_array_equal(A.canonical("Gauss2", swapped), g)
    lz = problems["Lanczos3"].certified
    np.testing.assert_array_equal(A.canonical("Lanczos3", lz[[4, 5, 0, 1, 2, 3]]), lz)
    np.testing.assert_array_equal(A.canonical("Misra1a", [1.0, 2.0]), [1.0, 2.0])


def test_starts_box_spans_both_starts(problems):
    for p in problems.values():
        for widen in (2.0, 10.0):
            lo, hi, scales = A.starts_box(p, widen)
            for s in (p.start1, p.start2):
                assert np.all(lo <= s) and np.all(s <= hi)
            for a, b, sc in zip(lo, hi, scales):
                assert a < b and (sc == "linear" or a > 0)


def test_lre():
    assert A.lre(1.0000001, 1.0) == pytest.approx(7, abs=1e-6)
    assert A.lre(2.0, 2.0) == 15
    assert A.lre(np.nan, 1.0) == 0
    assert A.lre(-1.0, 1.0) == 0


def test_rss_resolution_scales_with_residuals():
    y = np.ones(10)
    small = A.rss_resolution(y, np.full(10, 1e-13))
    assert 0 < small < 1e-26
    assert A.rss_resolution(y, np.full(10, 1.0)) > 1e3 * small


# --- bad files -----------------------------------------------------------------------------

def _write(tmp_path, text, name="Bad.dat"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def misra_text():
    return N.nist_path("Misra1a").read_text()


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("Dataset Name:", "Name:"), "Dataset Name"),
    (lambda t: t.replace("Misra1a           (Misra1a.dat)", "Misra9"), "unknown NIST problem"),
    (lambda t: t.replace("Data              (lines 61 to 74)", "Data (lines 61 to 99)"),
     "outside the file"),
    (lambda t: t.replace("Residual Sum of Squares:", "RSS:"), "Residual Sum of Squares"),
    (lambda t: t.replace("  b2 =     0.0001", "  bx =     0.0001"), "b1..b2"),
    (lambda t: t.replace("      14.73E0     114.9E0", "      14.73E0     abc"), "not numbers"),
    (lambda t: t.replace("      14.73E0     114.9E0", "      14.73E0"), "columns"),
    (lambda t: t.replace("Number of Observations:                            14",
                         "Number of Observations:                            15"), "15 observations"),
])
def test_bad_nist_files_are_refused_naming_the_file(tmp_path, misra_text, mutate, message):
    bad = mutate(misra_text)
    assert bad != misra_text
    path = _write(tmp_path, bad)
    with pytest.raises(DataError, match=message) as info:
        N.read_nist(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_missing_and_binary_nist_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        N.read_nist(tmp_path / "nope.dat")
    path = tmp_path / "bin.dat"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="cannot read"):
        N.read_nist(path)
