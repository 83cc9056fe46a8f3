"""Curve-data loaders and the model registry: good files load, bad ones are refused clearly."""

import sys
import types

import h5py
import numpy as np
import pytest

from hpcopt.errors import ConfigError, DataError
from hpcopt.models import data as D
from hpcopt.models import nist as N
from hpcopt.models.base import FitProblem
from hpcopt.models.registry import build_problem, check_param_names, model_param_names

X = np.linspace(0.0, 4.0, 9)
Y = 2.0 * np.exp(-0.5 * X)
S = np.full(9, 0.1)


def _csv(path, header, rows, sep=","):
    lines = ([sep.join(header)] if header else []) + [sep.join(repr(float(v)) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- good files ------------------------------------------------------------------------------

def test_csv_with_header_any_column_order(tmp_path):
    path = _csv(tmp_path / "d.csv", ["sigma", "y", "x"], zip(S, Y, X))
    d = D.load_curve(path)
    np.testing.assert_array_equal(d.x, X)
    np.testing.assert_array_equal(d.y, Y)
    np.testing.assert_array_equal(d.sigma, S)
    assert d.n_points == 9 and d.path == str(path)


def test_csv_named_columns_and_optional_sigma(tmp_path):
    path = _csv(tmp_path / "d.csv", ["t", "signal"], zip(X, Y))
    d = D.load_curve(path, {"x": "t", "y": "signal"})
    np.testing.assert_array_equal(d.x, X)
    assert d.sigma is None
    path = _csv(tmp_path / "e.csv", ["t", "signal", "other"], zip(X, Y, S))
    d = D.load_curve(path, {"x": "t", "y": "signal", "sigma": "other"})
    np.testing.assert_array_equal(d.sigma, S)


@pytest.mark.parametrize("name", D.SIGMA_NAMES + ("Err", "YERR", "Sigma"))
def test_sigma_column_is_recognised_under_the_usual_names(tmp_path, name):
    """Once `x,y,err` fitted unweighted while the header-less file used its third column."""
    path = _csv(tmp_path / "d.csv", ["x", "y", name], zip(X, Y, S))
    np.testing.assert_array_equal(D.load_curve(path).sigma, S)
    headerless = _csv(tmp_path / "d.txt", None, zip(X, Y, S), sep=" ")
    np.testing.assert_array_equal(D.load_curve(headerless).sigma, S)


def test_columns_named_in_data_and_case_insensitive_defaults(tmp_path):
    path = _csv(tmp_path / "d.csv", ["t", "g2", "err"], zip(X, Y, S))
    d = D.load_curve(path, {"x": "t", "y": "g2", "sigma": "err"})
    np.testing.assert_array_equal(d.x, X)
    np.testing.assert_array_equal(d.y, Y)
    np.testing.assert_array_equal(d.sigma, S)
    upper = _csv(tmp_path / "u.csv", ["X", "Y", "DY"], zip(X, Y, S))
    np.testing.assert_array_equal(D.load_curve(upper).sigma, S)


@pytest.mark.parametrize("header,options,match", [
    (["x", "y", "weight"], {}, "column 'weight' not used"),
    (["x", "y", "err", "flag"], {}, "column 'flag' not used"),
    (["t", "g2", "err"], {"x": "t"}, "no column 'y'"),
    (["x", "y", "err", "std"], {}, "several sigma columns"),
    (["x", "y", "a", "b"], {"sigma": "a"}, "column 'b' not used"),
])
def test_an_unrecognised_extra_column_is_an_error(tmp_path, header, options, match):
    path = _csv(tmp_path / "d.csv", header, zip(*([X, Y, S, S][:len(header)])))
    with pytest.raises(DataError, match=match) as info:
        D.load_curve(path, options)
    assert str(info.value).startswith(f"{path}: ")


def test_npz_and_h5_sigma_under_the_usual_names(tmp_path):
    np.savez(tmp_path / "d.npz", x=X, y=Y, err=S)
    np.testing.assert_array_equal(D.load_curve(tmp_path / "d.npz").sigma, S)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"], f["uncertainty"] = X, Y, S
    np.testing.assert_array_equal(D.load_curve(tmp_path / "d.h5").sigma, S)
    np.savez(tmp_path / "two.npz", x=X, y=Y, err=S, std=S)
    with pytest.raises(DataError, match="several sigma candidates"):
        D.load_curve(tmp_path / "two.npz")
    np.testing.assert_array_equal(D.load_curve(tmp_path / "two.npz", {"sigma": "std"}).sigma, S)


def test_text_without_header_whitespace_and_comments(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("# a comment\n" + "\n".join(f"{a} {b}" for a, b in zip(X, Y)) + "\n\n")
    d = D.load_curve(path)
    np.testing.assert_array_equal(d.x, X)
    assert d.sigma is None
    path3 = _csv(tmp_path / "d3.csv", None, zip(X, Y, S))
    np.testing.assert_array_equal(D.load_curve(path3).sigma, S)


def test_npz_default_and_named_arrays_with_meta(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=X, y=Y, sigma=S, temperature=np.float64(25.0))
    d = D.load_curve(path)
    np.testing.assert_array_equal(d.sigma, S)
    assert d.meta == {"temperature": 25.0}
    path2 = tmp_path / "e.npz"
    np.savez(path2, t=np.column_stack([X, X]), g=Y)
    d2 = D.load_curve(path2, {"x": "t", "y": "g"})
    assert d2.x.shape == (9, 2) and d2.sigma is None


def test_h5_datasets_and_attrs(tmp_path):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["grp/x"] = X
        f["grp/y"] = Y
        f.attrs["q"] = 0.01
        f.attrs["label"] = "text is not a scalar feature"
    d = D.load_curve(path, {"x": "grp/x", "y": "grp/y"})
    np.testing.assert_array_equal(d.y, Y)
    assert d.meta == {"q": 0.01}


def test_nist_dat():
    d = D.load_curve(N.nist_path("Misra1a"))
    assert d.n_points == 14 and d.sigma is None
    assert d.meta["certified_rss"] == pytest.approx(0.12455138894)


# --- bad files: every kind gives a DataError naming the file ---------------------------------

def _bad_files(tmp_path):
    nan_y = Y.copy()
    nan_y[3] = np.nan
    cases = {}
    cases["nan.csv"] = (_csv(tmp_path / "nan.csv", ["x", "y"], zip(X, nan_y)), "NaN or inf")
    cases["inf.txt"] = (_csv(tmp_path / "inf.txt", None, zip(X, Y * np.inf), sep=" "), "NaN or inf")
    cases["sigma0.csv"] = (_csv(tmp_path / "sigma0.csv", ["x", "y", "sigma"],
                                zip(X, Y, S * 0)), "sigma must be > 0")
    cases["nocol.csv"] = (_csv(tmp_path / "nocol.csv", ["x", "why"], zip(X, Y)), "no column 'y'")
    (tmp_path / "empty.csv").write_text("")
    cases["empty.csv"] = (tmp_path / "empty.csv", "empty")
    cases["header.csv"] = (_csv(tmp_path / "header.csv", ["x", "y"], []), "no data rows")
    (tmp_path / "ragged.csv").write_text("x,y\n1,2\n3\n")
    cases["ragged.csv"] = (tmp_path / "ragged.csv", "line 3: expected 2 columns")
    (tmp_path / "word.csv").write_text("x,y\n1,2\n3,abc\n")
    cases["word.csv"] = (tmp_path / "word.csv", "line 3: not a number")
    cases["four.csv"] = (_csv(tmp_path / "four.csv", None, zip(X, Y, S, S)), "x, y\\[, sigma\\]")
    np.savez(tmp_path / "shape.npz", x=X, y=Y[:-1])
    cases["shape.npz"] = (tmp_path / "shape.npz", "does not match")
    np.savez(tmp_path / "sig.npz", x=X, y=Y, sigma=S[:3])
    cases["sig.npz"] = (tmp_path / "sig.npz", "sigma of shape")
    np.savez(tmp_path / "y2d.npz", x=X, y=np.ones((9, 2)))
    cases["y2d.npz"] = (tmp_path / "y2d.npz", "y must be 1-D")
    np.savez(tmp_path / "noy.npz", x=X)
    cases["noy.npz"] = (tmp_path / "noy.npz", "missing array 'y'")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=Y)
    cases["obj.npz"] = (tmp_path / "obj.npz", "cannot read")
    np.savez(tmp_path / "zero.npz", x=np.zeros(0), y=np.zeros(0))
    cases["zero.npz"] = (tmp_path / "zero.npz", "no data points")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    cases["junk.npz"] = (tmp_path / "junk.npz", "cannot read")
    (tmp_path / "junk.h5").write_text("not hdf5")
    cases["junk.h5"] = (tmp_path / "junk.h5", "cannot read HDF5")
    with h5py.File(tmp_path / "nod.h5", "w") as f:
        f["x"] = X
    cases["nod.h5"] = (tmp_path / "nod.h5", "missing dataset 'y'")
    with h5py.File(tmp_path / "grp.h5", "w") as f:
        f["x"] = X
        f.create_group("y")
    cases["grp.h5"] = (tmp_path / "grp.h5", "is a group")
    with h5py.File(tmp_path / "nans.h5", "w") as f:
        f["x"] = X
        f["y"] = nan_y
    cases["nans.h5"] = (tmp_path / "nans.h5", "NaN or inf")
    (tmp_path / "d.json").write_text("{}")
    cases["d.json"] = (tmp_path / "d.json", "unknown data file type")
    cases["missing.csv"] = (tmp_path / "missing.csv", "file not found")
    return cases


def test_every_kind_of_bad_file_is_refused_naming_file_and_problem(tmp_path):
    cases = _bad_files(tmp_path)
    assert len(cases) >= 20
    for name, (path, message) in cases.items():
        with pytest.raises(DataError, match=message) as info:
            D.load_curve(path)
        assert str(path) in str(info.value), name


def test_names_given_but_no_header(tmp_path):
    path = _csv(tmp_path / "d.csv", None, zip(X, Y))
    with pytest.raises(DataError, match="no header"):
        D.load_curve(path, {"x": "t"})


def test_named_sigma_is_required(tmp_path):
    path = _csv(tmp_path / "d.csv", ["x", "y"], zip(X, Y))
    with pytest.raises(DataError, match="no column 'err'"):
        D.load_curve(path, {"sigma": "err"})


def test_check_options():
    assert D.check_options({"x": "t"}) == {"x": "t"}
    with pytest.raises(ConfigError, match="unknown key") as info:
        D.check_options({"colour": "red"}, source="fit.toml")
    assert info.value.key == "data.colour" and info.value.source == "fit.toml"
    with pytest.raises(ConfigError, match="name"):
        D.check_options({"x": 3})


# --- registry --------------------------------------------------------------------------------

def test_build_nist_problem_relative_to_base_dir():
    base = N.nist_dir()
    p = build_problem("nist:MISRA1A", "Misra1a.dat", base_dir=base, source="fit.toml")
    assert isinstance(p, FitProblem)
    assert p.param_names == ("b1", "b2") and p.n_points == 14
    cert = N.read_nist(N.nist_path("Misra1a"))
    assert p.chi2(cert.certified) == pytest.approx(cert.certified_rss, rel=1e-9)


def test_build_nist_model_on_other_data_checks_predictors(tmp_path):
    path = _csv(tmp_path / "d.csv", ["x", "y"], zip(X + 1, Y))
    p = build_problem("nist:misra1a", path)
    assert p.n_points == 9
    with pytest.raises(DataError, match="2 predictor"):
        build_problem("nist:nelson", path)


def test_build_user_model(tmp_path):
    (tmp_path / "usermod_curve.py").write_text(
        "import numpy as np\n"
        "def decay(x, p):\n    return p[0] * np.exp(-p[1] * x)\n")
    path = _csv(tmp_path / "d.csv", ["x", "y", "sigma"], zip(X, Y, S))
    p = build_problem("usermod_curve:decay", path, base_dir=tmp_path, source="fit.toml",
                      param_names=("a", "k"))
    assert p.param_names == ("a", "k")
    assert p.chi2(np.array([2.0, 0.5])) == pytest.approx(0.0, abs=1e-20)
    with pytest.raises(ConfigError, match="cannot import") as info:
        build_problem("no_such_module_xyz:f", path, source="fit.toml", param_names=("a",))
    assert info.value.key == "model.name"


@pytest.mark.parametrize("name", ["nist:Misra9", "xpcs:triodyne", "not a model", "", 3])
def test_bad_model_names_name_the_key(name):
    with pytest.raises(ConfigError) as info:
        model_param_names(name, source="fit.toml")
    assert info.value.key == "model.name" and info.value.source == "fit.toml"


def test_model_param_names():
    assert model_param_names("nist:Thurber") == tuple(f"b{i}" for i in range(1, 8))
    assert model_param_names("xpcs:homodyne")[0] == "D0"
    assert len(model_param_names("xpcs:heterodyne")) == 14
    assert model_param_names("m:f", ("a", "b")) == ("a", "b")
    with pytest.raises(ConfigError, match="needs its parameters"):
        model_param_names("m:f", ())


def test_check_param_names_order_and_errors():
    assert check_param_names("nist:Misra1a", ["b2", "b1"]) == ("b1", "b2")
    with pytest.raises(ConfigError, match="missing b2; unknown c") as info:
        check_param_names("nist:Misra1a", ["b1", "c"], source="fit.toml")
    assert info.value.key == "parameters"


def test_xpcs_is_dispatched_lazily(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("hpcopt.models.xpcs")

    class XpcsProblem:
        @classmethod
        def from_file(cls, path, variant, *, options, mode, scaling, source):
            calls.append(("problem", str(path), variant, mode, scaling, options.frames))
            return "problem"

    fake.XpcsProblem = XpcsProblem
    fake.load_xpcs_h5 = lambda path, options=None: calls.append(("load", str(path))) or "data"
    fake.parse_model_options = lambda options, variant, source=None: (
        (options or {}).get("mode"), (options or {}).get("scaling"))
    fake.param_names_for = lambda variant, mode=None: ("D0",) if mode else ("D0", "phi0")
    monkeypatch.setitem(sys.modules, "hpcopt.models.xpcs", fake)
    assert build_problem("xpcs:Heterodyne", "c2.h5", base_dir=tmp_path) == "problem"
    assert build_problem("xpcs:homodyne", "c2.h5", base_dir=tmp_path,
                         data_options={"frames": [2, 9]},
                         model_options={"mode": "static_isotropic"}) == "problem"
    assert D.load_data(tmp_path / "c2.h5", model="xpcs:homodyne") == "data"
    assert calls == [("problem", str(tmp_path / "c2.h5"), "heterodyne", None, None, None),
                     ("problem", str(tmp_path / "c2.h5"), "homodyne", "static_isotropic", None,
                      (2, 9)),
                     ("load", str(tmp_path / "c2.h5"))]
    assert model_param_names("xpcs:homodyne", model_options={"mode": "x"}) == ("D0",)


def test_xpcs_options_are_checked_naming_file_and_key(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'frames'") as info:
        build_problem("xpcs:homodyne", tmp_path / "c2.h5", data_options={"frame": [1, 5]},
                      source="fit.toml")
    assert info.value.key == "data.frame" and info.value.source == "fit.toml"
    with pytest.raises(ConfigError, match="did you mean 'mode'") as info:
        build_problem("xpcs:homodyne", tmp_path / "c2.h5", model_options={"mod": "x"},
                      source="fit.toml")
    assert info.value.key == "model.mod"
    with pytest.raises(ConfigError, match="did you mean 'static_isotropic'") as info:
        build_problem("xpcs:homodyne", tmp_path / "c2.h5",
                      model_options={"mode": "static_isotropc"})
    assert info.value.key == "model.mode"
    with pytest.raises(ConfigError, match="xpcs:homodyne") as info:
        build_problem("xpcs:heterodyne", tmp_path / "c2.h5", model_options={"mode": "laminar_flow"})
    assert info.value.key == "model.mode"
    with pytest.raises(ConfigError, match="takes no .model. keys") as info:
        build_problem("nist:Misra1a", N.nist_path("Misra1a"), model_options={"mode": "x"})
    assert info.value.key == "model.mode"
    assert model_param_names("xpcs:homodyne", model_options={"mode": "static_anisotropic"}) == (
        "D0", "alpha", "D_offset")
    assert model_param_names("xpcs:homodyne")[-1] == "phi0"
