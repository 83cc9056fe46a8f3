"""Data fuzzing: bad data files are refused with a DataError naming the file (exit 2).

Curve data (.dat NIST, .csv, .txt, .npz, .h5) and XPCS .h5 files are generated with
hypothesis, valid or broken in one known way (NaN/inf, wrong shapes, missing columns,
datasets or attributes, sigma <= 0, empty files, truncation, binary garbage).  A sweep
and a tempering fit posterior point at them; ``prepare()`` must accept the valid ones and
refuse the broken ones with a DataError whose message starts with the data file's path.
Under mpiexec, a few of them exit 2 with one ``hpcopt: error:`` line at 1, 2 and 3 ranks.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from fuzz_helpers import (MISRA1A, SWEEP_NIST, SWEEP_XPCS, TEMPER_FIT, XPCS_DEMO, check_prepare,
                          to_toml)
from hpctest import run
from hpcopt.errors import DataError

FUZZ = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow],
                phases=[Phase.explicit, Phase.reuse, Phase.generate])   # see test_fuzz_config

OK, BAD, EITHER, ANY = "ok", "bad", "either", "any"

CURVE_DEFECTS = ["none", "nan_x", "inf_y", "nan_sigma", "zero_sigma", "neg_sigma", "short_y",
                 "y_2d", "x_2d", "no_points", "missing_x", "missing_y", "strings", "empty_file",
                 "garbage", "truncated"]
SUFFIXES = [".csv", ".txt", ".npz", ".h5"]


def expectation(defect: str, suffix: str) -> str:
    if defect == "none":
        return OK
    if defect in ("garbage", "truncated"):
        return EITHER          # random bytes might still be a valid file (e.g. "1,2")
    if suffix == ".txt" and defect in ("y_2d", "x_2d", "missing_x", "missing_y"):
        return ANY             # headerless columns are positional: other data, maybe valid
    return BAD


# --------------------------------------------------------------------------- curve files

@st.composite
def curve(draw) -> dict:
    n = draw(st.integers(1, 12))
    # x >= 0: Misra1a's exp(-b2 x) stays finite, so valid data has a finite start energy
    x = np.array(draw(st.lists(st.floats(0.0, 1e4), min_size=n, max_size=n)))
    y = np.array(draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n)))
    sigma = (np.array(draw(st.lists(st.floats(1e-3, 1e3), min_size=n, max_size=n)))
             if draw(st.booleans()) else None)
    return {"x": x, "y": y, "sigma": sigma}


def damage(arrays: dict, defect: str, at: int, inf: float = np.inf) -> dict:
    """Arrays (name -> ndarray or None) with one defect at row `at`; file-level defects
    (empty, garbage, truncated) are applied by make_curve_file."""
    a = dict(arrays)
    n = len(a["y"])
    if defect == "nan_x":
        a["x"] = a["x"].copy()
        a["x"][at] = np.nan
    elif defect == "inf_y":
        a["y"] = a["y"].copy()
        a["y"][at] = inf
    elif defect in ("nan_sigma", "zero_sigma", "neg_sigma"):
        s = np.ones(n) if a["sigma"] is None else a["sigma"].copy()
        s[at] = {"nan_sigma": np.nan, "zero_sigma": 0.0, "neg_sigma": -1.0}[defect]
        a["sigma"] = s
    elif defect == "short_y":
        a["x"] = np.append(a["x"], 1.0)
    elif defect == "y_2d":
        a["y"] = np.stack([a["y"], a["y"]], axis=1)
    elif defect == "x_2d":
        a["x"] = np.stack([a["x"], a["x"]], axis=1)
    elif defect == "no_points":
        a = {k: (None if v is None else v[:0]) for k, v in a.items()}
    elif defect == "missing_x":
        a.pop("x")
    elif defect == "missing_y":
        a.pop("y")
    elif defect == "strings":
        a["y"] = np.array(["abc"] * n)
    return a


def write_curve(path: Path, arrays: dict) -> None:
    cols = {k: v for k, v in arrays.items() if v is not None}
    if path.suffix == ".npz":
        np.savez(path, **cols)
    elif path.suffix == ".h5":
        with h5py.File(path, "w") as f:
            for k, v in cols.items():
                f.create_dataset(k, data=v.astype("S") if v.dtype.kind == "U" else v)
    else:
        _write_text(path, cols)


def _write_text(path: Path, cols: dict) -> None:
    """.csv: header row, commas; .txt: no header, whitespace (x, y[, sigma] by position)."""
    names = [k for k in ("x", "y", "sigma") if k in cols]
    flat = {k: np.asarray(cols[k]).reshape(len(cols[k]), -1) if len(cols[k]) else [] for k in names}
    rows = max((len(v) for v in flat.values()), default=0)

    def cell(k, i):
        v = flat[k]
        return " ".join(map(str, v[i])) if i < len(v) else ""

    if path.suffix == ".csv":
        lines = [",".join(names)] + [",".join(cell(k, i) for k in names) for i in range(rows)]
    else:
        lines = [" ".join(cell(k, i) for k in names) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


@st.composite
def curve_file_case(draw, defect: str | None = None):
    suffix = draw(st.sampled_from(SUFFIXES))
    defect = defect or draw(st.sampled_from(CURVE_DEFECTS))
    arrays = draw(curve())
    arrays = damage(arrays, defect, draw(st.integers(0, len(arrays["y"]) - 1)),
                    draw(st.sampled_from([np.inf, -np.inf])))
    garbage = draw(st.binary(max_size=300))
    cut = draw(st.floats(0.0, 0.99))
    return suffix, defect, arrays, garbage, cut


def make_curve_file(directory: Path, suffix, defect, arrays, garbage, cut) -> Path:
    path = Path(directory) / f"data{suffix}"
    if defect == "empty_file":
        path.write_bytes(b"")
    elif defect == "garbage":
        path.write_bytes(garbage)
    else:
        write_curve(path, arrays)
        if defect == "truncated":
            raw = path.read_bytes()
            path.write_bytes(raw[:int(len(raw) * cut)])
    return path


# --------------------------------------------------------------------------- NIST .dat files

NIST_DEFECTS = ["none", "token", "drop_line", "extra_column", "truncate", "header_count",
                "header_lines", "dataset_name", "no_params", "binary", "empty_file"]
MISRA_TEXT = MISRA1A.read_text()


@st.composite
def nist_case(draw, defect: str | None = None) -> tuple[str, bytes]:
    lines = MISRA_TEXT.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("Data:   y")) + 1
    data_rows = range(first, first + 14)
    defect = defect or draw(st.sampled_from(NIST_DEFECTS))
    row = draw(st.sampled_from(data_rows))
    if defect == "token":
        token = draw(st.sampled_from(["nan", "inf", "-inf", "abc", "1e999", "1..2", "0x1"]))
        fields = lines[row].split()
        fields[draw(st.integers(0, 1))] = token
        lines[row] = "  ".join(fields)
    elif defect == "drop_line":
        del lines[row]
    elif defect == "extra_column":
        lines[row] += "  1.0"
    elif defect == "header_count":
        lines = [re.sub(r"(Number of Observations:\s+)14", r"\g<1>13", ln) for ln in lines]
    elif defect == "header_lines":
        lines = [ln.replace("(lines 61 to 74)", draw(st.sampled_from(
            ["(lines 61 to 99)", "(lines 0 to 74)", "(lines 74 to 61)", "(lines 61 to 60)"])))
            for ln in lines]
    elif defect == "dataset_name":
        lines = [ln.replace("Misra1a", draw(st.sampled_from(["Nope", ""])))
                 if ln.startswith("Dataset Name:") else ln for ln in lines]
    elif defect == "no_params":
        lines = [ln for ln in lines if not ln.lstrip().startswith("b2 =")]
    text = ("\n".join(lines) + "\n").encode()
    if defect == "truncate":
        text = text[:draw(st.integers(0, len(text) - 2))]
    elif defect == "binary":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=16)) + text[at:]
    elif defect == "empty_file":
        text = b""
    return defect, text


# --------------------------------------------------------------------------- XPCS files

XPCS_DEFECTS = ["none", "missing_c2", "missing_phi", "c2_group", "c2_2d", "c2_not_square",
                "one_time_point", "no_angles", "phi_length", "nan_c2", "inf_phi", "nan_sigma",
                "zero_sigma", "sigma_shape", "c2_strings", "c2_bool", "missing_q", "missing_dt",
                "q_string", "q_array", "q_negative", "dt_zero", "dt_nan", "h_negative",
                "garbage", "truncated"]


def _demo_arrays():
    with h5py.File(XPCS_DEMO, "r") as f:
        return f["c2"][:, :8, :8], f["phi"][:], f["sigma"][:, :8, :8], dict(f.attrs)


DEMO_C2, DEMO_PHI, DEMO_SIGMA, DEMO_ATTRS = _demo_arrays()


@st.composite
def xpcs_case(draw, defect: str | None = None) -> tuple[str, dict, dict, bytes, float]:
    n_phi = draw(st.integers(1, 3))
    n = draw(st.integers(2, 8))
    arrays = {"c2": DEMO_C2[:n_phi, :n, :n].copy(), "phi": DEMO_PHI[:n_phi].copy(),
              "sigma": DEMO_SIGMA[:n_phi, :n, :n].copy() if draw(st.booleans()) else None}
    attrs = {k: DEMO_ATTRS[k] for k in ("q", "dt", "h", "temperature")}
    defect = defect or draw(st.sampled_from(XPCS_DEFECTS))
    idx = tuple(draw(st.integers(0, size - 1)) for size in (n_phi, n, n))
    if defect == "missing_c2":
        arrays["c2"] = None
    elif defect == "missing_phi":
        arrays["phi"] = None
    elif defect == "c2_group":
        arrays["c2"] = "group"
    elif defect == "c2_2d":
        arrays["c2"] = arrays["c2"][0]
    elif defect == "c2_not_square":
        arrays["c2"] = arrays["c2"][:, :, :-1]
    elif defect == "one_time_point":
        arrays["c2"] = arrays["c2"][:, :1, :1]
        arrays["sigma"] = None
    elif defect == "no_angles":
        arrays["c2"], arrays["phi"] = arrays["c2"][:0], arrays["phi"][:0]
        arrays["sigma"] = None
    elif defect == "phi_length":
        arrays["phi"] = np.append(arrays["phi"], 90.0)
    elif defect == "nan_c2":
        arrays["c2"][idx] = np.nan
    elif defect == "inf_phi":
        arrays["phi"][idx[0]] = np.inf
    elif defect in ("nan_sigma", "zero_sigma"):
        if arrays["sigma"] is None:
            arrays["sigma"] = np.ones_like(arrays["c2"])
        arrays["sigma"][idx] = np.nan if defect == "nan_sigma" else 0.0
    elif defect == "sigma_shape":
        arrays["sigma"] = np.ones((n_phi, n, n + 1))
    elif defect == "c2_strings":
        arrays["c2"] = np.full(arrays["c2"].shape, b"x")
    elif defect == "c2_bool":
        arrays["c2"] = arrays["c2"] > 1.0
    elif defect == "missing_q":
        del attrs["q"]
    elif defect == "missing_dt":
        del attrs["dt"]
    elif defect == "q_string":
        attrs["q"] = "0.01"
    elif defect == "q_array":
        attrs["q"] = np.array([0.01, 0.02])
    elif defect == "q_negative":
        attrs["q"] = -0.01
    elif defect == "dt_zero":
        attrs["dt"] = 0.0
    elif defect == "dt_nan":
        attrs["dt"] = np.nan
    elif defect == "h_negative":
        attrs["h"] = -1.0
    return defect, arrays, attrs, draw(st.binary(max_size=300)), draw(st.floats(0.0, 0.99))


def make_xpcs_file(directory: Path, defect, arrays, attrs, garbage, cut) -> Path:
    path = Path(directory) / "xpcs_data.h5"
    if defect == "garbage":
        path.write_bytes(garbage)
        return path
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if isinstance(v, str):
                f.create_group(k)
            elif v is not None:
                f.create_dataset(k, data=v)
        f.attrs.update(attrs)
    if defect == "truncated":
        raw = path.read_bytes()
        path.write_bytes(raw[:int(len(raw) * cut)])
    return path


# --------------------------------------------------------------------------- configs and checks

def sweep_config(directory: Path, data: Path, model: str = "nist:Misra1a") -> Path:
    base = SWEEP_XPCS if model.startswith("xpcs:") else SWEEP_NIST
    cfg = {**base, "data": {"path": str(data)}}
    path = Path(directory) / "c.toml"
    path.write_text(to_toml(cfg))
    return path


def temper_config(directory: Path, data: Path) -> Path:
    cfg = {**TEMPER_FIT, "problem": {**TEMPER_FIT["problem"], "data": str(data)}}
    path = Path(directory) / "t.toml"
    path.write_text(to_toml(cfg))
    return path


def check_data(kind: str, config: Path, data: Path, expected: str) -> None:
    """OK: accepted; BAD: a DataError naming `data`; EITHER: one of those two; ANY: accepted
    or any UsageError (check_prepare checks that its message names the file)."""
    exc = check_prepare(kind, config)
    if expected == OK:
        assert exc is None, f"valid data {data.name} refused: {exc}"
    elif expected == BAD:
        assert exc is not None, f"broken data {data.name} accepted"
    if exc is not None and expected != ANY:
        assert isinstance(exc, DataError), f"{data.name}: not a DataError: {exc!r}"
        assert exc.path == str(data) and str(exc).startswith(f"{data}: "), str(exc)


# every defect gets its own examples (hypothesis would favour some of them)
@pytest.mark.parametrize("defect", CURVE_DEFECTS)
@settings(FUZZ, max_examples=16)
@given(data=st.data(), consumer=st.sampled_from(["sweep", "temper"]))
def test_curve_files(defect, data, consumer):
    case = data.draw(curve_file_case(defect), label="case")
    suffix = case[0]
    event(f"{consumer} {suffix}")
    with tempfile.TemporaryDirectory() as d:
        data = make_curve_file(Path(d), *case)
        config = sweep_config(d, data) if consumer == "sweep" else temper_config(d, data)
        check_data(consumer, config, data, expectation(defect, suffix))


@pytest.mark.parametrize("defect", NIST_DEFECTS)
@settings(FUZZ, max_examples=10)
@given(data=st.data())
def test_nist_dat_files(defect, data):
    _, text = data.draw(nist_case(defect), label="case")
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "Misra1a.dat"
        data.write_bytes(text)
        expected = OK if defect == "none" else EITHER if defect in ("truncate", "binary") else BAD
        check_data("sweep", sweep_config(d, data), data, expected)


@pytest.mark.parametrize("defect", XPCS_DEFECTS)
@settings(FUZZ, max_examples=8)
@given(data=st.data())
def test_xpcs_files(defect, data):
    case = data.draw(xpcs_case(defect), label="case")
    with tempfile.TemporaryDirectory() as d:
        data = make_xpcs_file(Path(d), *case)
        expected = OK if defect == "none" else EITHER if defect in ("garbage", "truncated") else BAD
        check_data("sweep", sweep_config(d, data, "xpcs:homodyne"), data, expected)


@pytest.mark.parametrize("defect", [d for d in CURVE_DEFECTS if d not in ("garbage", "truncated")])
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_every_curve_defect_in_every_format(tmp_path, suffix, defect):
    """Each (format, defect) pair at least once, whatever hypothesis draws."""
    rng = np.random.default_rng(0)
    arrays = {"x": np.linspace(1.0, 10.0, 6), "y": rng.normal(size=6), "sigma": np.full(6, 0.5)}
    arrays = damage(arrays, defect, 2)
    data = make_curve_file(tmp_path, suffix, defect, arrays, b"", 0.5)
    check_data("sweep", sweep_config(tmp_path, data), data, expectation(defect, suffix))


def test_data_options_name_columns_and_datasets(tmp_path):
    """[data] x/y/sigma rename columns: missing names are DataErrors, others are fine."""
    data = tmp_path / "d.csv"
    data.write_text("t,v,err\n1,2,0.1\n2,3,0.1\n3,5,0.1\n")
    for options, expected in (({"x": "t", "y": "v", "sigma": "err"}, OK),
                              ({"x": "t", "y": "v"}, OK),
                              ({"x": "t", "y": "nope"}, BAD),
                              ({"x": "t", "y": "v", "sigma": "s"}, BAD)):
        cfg = {**SWEEP_NIST, "data": {"path": str(data), **options}}
        config = tmp_path / "c.toml"
        config.write_text(to_toml(cfg))
        check_data("sweep", config, data, expected)


# --------------------------------------------------------------------------- under mpiexec

def _bad_csv(d: Path) -> Path:
    p = d / "nan.csv"
    p.write_text("x,y\n1,2\n2,nan\n3,4\n")
    return p


def _bad_sigma(d: Path) -> Path:
    p = d / "sigma.txt"
    p.write_text("1 2 0.1\n2 3 0\n3 4 0.1\n")
    return p


def _xpcs_without_q(d: Path) -> Path:
    attrs = {k: v for k, v in DEMO_ATTRS.items() if k != "q"}
    return make_xpcs_file(d, "missing_q", {"c2": DEMO_C2, "phi": DEMO_PHI, "sigma": None},
                          attrs, b"", 0.0)


def _garbage_h5(d: Path) -> Path:
    p = d / "junk.h5"
    p.write_bytes(bytes(range(256)) * 4)
    return p


MPI_DATA = [("sweep", _bad_csv, "nist:Misra1a", 1, "NaN"),
            ("sweep", _xpcs_without_q, "xpcs:homodyne", 2, "'q'"),
            ("temper", _bad_sigma, "nist:Misra1a", 3, "sigma"),
            ("sweep", _garbage_h5, "nist:Misra1a", 3, "HDF5")]


@pytest.mark.mpi
@pytest.mark.parametrize("kind, make, model, n, word", MPI_DATA,
                         ids=[f"{m[0]}-{m[1].__name__.strip('_')}-n{m[3]}" for m in MPI_DATA])
def test_bad_data_under_mpiexec(tmp_path, kind, make, model, n, word):
    data = make(tmp_path)
    config = (sweep_config(tmp_path, data, model) if kind == "sweep"
              else temper_config(tmp_path, data))
    proc = run([kind, config], n=n, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("hpcopt: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"hpcopt: error: {data}: ") and word in lines[0], lines[0]


def test_csv_with_a_byte_order_mark_is_read(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM (once refused: "no column 'x'" for '\\ufeffx')."""
    data = tmp_path / "excel.csv"
    data.write_bytes("\ufeffx,y\n77.6,10.07\n114.9,14.73\n141.1,17.94\n".encode())
    check_data("sweep", sweep_config(tmp_path, data), data, OK)


# --------------------------------------------------------------------------- known bugs
# These fail today (see the fuzzing report); the fixes are described there.

@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_complex_data_is_refused(tmp_path, suffix):
    """BUG: complex x/y are cast to float with only a ComplexWarning (imaginary parts lost)."""
    data = tmp_path / f"complex{suffix}"
    write_curve(data, {"x": np.array([1.0, 2.0, 3.0]), "y": np.array([1 + 2j, 2.0, 3.0])})
    check_data("sweep", sweep_config(tmp_path, data), data, BAD)
