"""Curve-data loaders: NIST .dat, .npz, .csv/.txt columns, .h5 datasets.

Every loader returns a validated :class:`Dataset` or raises :class:`DataError`
naming the file and the problem (NaN/inf, shapes, sigma <= 0, missing
datasets/columns, empty or unreadable files) before any MPI work starts.
XPCS .h5 files have their own layout and loader (:mod:`hpcopt.models.xpcs`).

Column/dataset names come from the ``[data]`` table: ``x``, ``y``, ``sigma``
(defaults "x" and "y"; sigma is optional unless named, and found under the usual names
:data:`SIGMA_NAMES`).  A text file's header must not name columns that nothing uses: an
extra column is refused, never silently ignored (docs/sweep.md, "Data files").
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError, DataError

#: [data] keys a curve loader understands besides `path`
DATA_OPTIONS = ("x", "y", "sigma")
TEXT_SUFFIXES = (".csv", ".txt")
#: names a sigma column/array/dataset is recognised under when [data] sigma is not given
#: (case-insensitive for text headers)
SIGMA_NAMES = ("sigma", "err", "error", "yerr", "dy", "uncertainty", "std")


@dataclass(frozen=True)
class Dataset:
    """Curve data: x (n,) or (n, k), y (n,), optional sigma (n,), named scalar metadata."""

    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray | None
    path: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # named scalars (ML features later)

    @property
    def n_points(self) -> int:
        return int(self.y.shape[0])


def validate(x, y, sigma=None, *, path: str, meta: Mapping[str, Any] | None = None) -> Dataset:
    """Check shapes and values; return a float64 Dataset (DataError otherwise)."""
    def bad(problem: str) -> DataError:
        return DataError(problem, path=path)

    arrays = {}
    for name, a in (("x", x), ("y", y), ("sigma", sigma)):
        if a is None:
            continue
        if np.iscomplexobj(a):
            raise bad(f"{name} holds complex numbers (expected real values)")
        try:
            arrays[name] = np.ascontiguousarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            raise bad(f"{name} is not numeric") from None
    x, y, sigma = arrays["x"], arrays["y"], arrays.get("sigma")
    if y.ndim != 1:
        raise bad(f"y must be 1-D, got shape {y.shape}")
    if y.shape[0] == 0:
        raise bad("no data points")
    if x.ndim not in (1, 2) or x.shape[0] != y.shape[0] or (x.ndim == 2 and x.shape[1] == 0):
        raise bad(f"x of shape {x.shape} does not match y of shape {y.shape} "
                  "(expected (n,) or (n, k) with n = len(y))")
    if sigma is not None and sigma.shape != y.shape:
        raise bad(f"sigma of shape {sigma.shape} does not match y of shape {y.shape}")
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            where = np.flatnonzero(~np.isfinite(a.reshape(a.shape[0], -1)).any(axis=1))
            raise bad(f"{name} holds NaN or inf ({where.size} rows, first at row {where[0]})")
    if sigma is not None and not np.all(sigma > 0):
        where = np.flatnonzero(sigma <= 0)
        raise bad(f"sigma must be > 0 ({where.size} values are not, first at row {where[0]})")
    return Dataset(x, y, sigma, path, dict(meta or {}))


def check_options(options: Mapping[str, Any] | None, *, source: str | None = None,
                  prefix: str = "data") -> dict[str, str]:
    """Validate the [data] names (x, y, sigma): strings; unknown keys are ConfigErrors."""
    out: dict[str, str] = {}
    for key, value in (options or {}).items():
        if key not in DATA_OPTIONS:
            close = difflib.get_close_matches(key, DATA_OPTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key{hint}; curve data takes {', '.join(DATA_OPTIONS)} "
                              "besides path", key=f"{prefix}.{key}", source=source)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"expected a column/dataset name, got {value!r}",
                              key=f"{prefix}.{key}", source=source)
        out[key] = value
    return out


def load_curve(path: str | Path, options: Mapping[str, str] | None = None) -> Dataset:
    """Load curve data by file suffix (.dat NIST, .npz, .csv/.txt, .h5/.hdf5)."""
    path = Path(path)
    names = dict(options or {})
    if not path.exists():
        raise DataError("file not found", path=str(path))
    if not path.is_file():
        raise DataError("not a file", path=str(path))
    suffix = path.suffix.lower()
    if suffix == ".dat":
        return load_nist_dat(path)
    if suffix == ".npz":
        return load_npz(path, names)
    if suffix in TEXT_SUFFIXES:
        return load_text(path, names)
    if suffix in (".h5", ".hdf5"):
        return load_h5(path, names)
    raise DataError(f"unknown data file type {suffix!r} (expected .dat, .npz, .csv, .txt, .h5)",
                    path=str(path))


def load_data(path: str | Path, *, model: str = "", options: Mapping[str, Any] | None = None):
    """The data for `model`: XPCS files go to :func:`hpcopt.models.xpcs.load_xpcs_h5`."""
    if model.lower().startswith("xpcs:"):
        from .xpcs import load_xpcs_h5  # lazy: only XPCS runs need it
        return load_xpcs_h5(path, options)
    return load_curve(path, options)


def load_nist_dat(path: str | Path) -> Dataset:
    """A NIST StRD .dat file (its own y-then-x layout); meta holds the certified RSS."""
    from .nist import read_nist
    p = read_nist(path)
    return validate(p.x, p.y, None, path=str(path),
                    meta={"nist_name": p.name, "n_obs": p.n_obs, "certified_rss": p.certified_rss,
                          "difficulty": p.difficulty})


def _names(names: Mapping[str, str]) -> tuple[str, str, str, bool]:
    return (names.get("x", "x"), names.get("y", "y"), names.get("sigma", "sigma"),
            "sigma" in names)


def _sigma_key(available, names: Mapping[str, str], where: str) -> str | None:
    """The array/dataset holding sigma: the [data] name, else the one usual name present."""
    if "sigma" in names:
        return names["sigma"]
    found = [k for k in SIGMA_NAMES if k in available]
    if len(found) > 1:
        raise DataError(f"several sigma candidates ({', '.join(found)}): name the one to use "
                        "in [data] as sigma = \"...\"", path=where)
    return found[0] if found else None


def load_npz(path: Path, names: Mapping[str, str]) -> Dataset:
    """An .npz with arrays x, y[, sigma] (or the names given); other 0-d arrays become meta."""
    xn, yn, _, sigma_required = _names(names)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - zip/format/pickle refusals alike
        raise DataError(f"cannot read .npz file: {type(exc).__name__}: {exc}", path=str(path)) from None
    sn = _sigma_key(arrays, names, str(path))
    for key, required in ((xn, True), (yn, True), (sn, sigma_required)):
        if required and key not in arrays:
            raise DataError(f"missing array {key!r} (has: {', '.join(sorted(arrays)) or 'none'})",
                            path=str(path))
    meta = {k: a.item() for k, a in arrays.items()
            if k not in (xn, yn, sn) and a.ndim == 0 and a.dtype.kind in "biuf"}
    return validate(arrays[xn], arrays[yn], arrays.get(sn) if sn else None, path=str(path),
                    meta=meta)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _header_column(header: list[str], name: str) -> int | None:
    """Index of `name` in the header: an exact match, else the one case-insensitive match."""
    if name in header:
        return header.index(name)
    folded = [i for i, h in enumerate(header) if h.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def _text_columns(header: list[str], names: Mapping[str, str], where: str) -> dict[str, int]:
    """Role -> column index for a header row; DataError for missing or unused columns."""
    xn, yn, sn, sigma_required = _names(names)
    columns = {}
    for role, key in (("x", xn), ("y", yn)):
        idx = _header_column(header, key)
        if idx is None:
            raise DataError(f"no column {key!r} in the header (columns: {', '.join(header)})",
                            path=where)
        columns[role] = idx
    if sigma_required:
        idx = _header_column(header, sn)
        if idx is None:
            raise DataError(f"no column {sn!r} in the header (columns: {', '.join(header)})",
                            path=where)
        columns["sigma"] = idx
    else:
        found = [i for i, h in enumerate(header) if h.lower() in SIGMA_NAMES
                 and i not in columns.values()]
        if len(found) > 1:
            raise DataError(f"several sigma columns ({', '.join(header[i] for i in found)}): "
                            "name the one to use in [data] as sigma = \"...\"", path=where)
        if found:
            columns["sigma"] = found[0]
    unused = [h for i, h in enumerate(header) if i not in columns.values()]
    if unused:
        raise DataError(f"column{'s' if len(unused) > 1 else ''} {', '.join(map(repr, unused))} "
                        f"not used (x = {header[columns['x']]!r}, y = {header[columns['y']]!r}"
                        + (f", sigma = {header[columns['sigma']]!r}" if "sigma" in columns else
                           ", no sigma") + "): name columns in [data] (x, y, sigma) or remove "
                        "the extra ones; sigma is recognised as " + ", ".join(SIGMA_NAMES),
                        path=where)
    return columns


def load_text(path: Path, names: Mapping[str, str]) -> Dataset:
    """.csv/.txt columns: a header row naming x, y[, sigma], or no header: x, y[, sigma].

    Comma- or whitespace-separated; lines starting with '#' are comments.  With a header,
    sigma is the column [data] names, else the one under a usual name (SIGMA_NAMES);
    every column must be used.
    """
    where = str(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # Excel writes a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read text file: {exc}", path=where) from None
    rows = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    if not rows:
        raise DataError("no data (the file is empty)", path=where)
    delimiter = "," if "," in rows[0][1] else None

    def split(line: str) -> list[str]:
        return [t.strip() for t in line.split(delimiter)]

    first = split(rows[0][1])
    if all(_is_number(t) for t in first):
        if any(k in names for k in DATA_OPTIONS):
            raise DataError("column names were given in [data] but the file has no header row",
                            path=where)
        if len(first) not in (2, 3):
            raise DataError(f"without a header row the columns must be x, y[, sigma]; "
                            f"line {rows[0][0]} has {len(first)} columns", path=where)
        columns = {"x": 0, "y": 1, **({"sigma": 2} if len(first) == 3 else {})}
        body = rows
    else:
        columns = _text_columns([h.strip().strip('"') for h in first], names, where)
        body = rows[1:]
    if not body:
        raise DataError("no data rows", path=where)
    width = len(first)
    data = np.empty((len(body), width))
    for r, (lineno, line) in enumerate(body):
        tokens = split(line)
        if len(tokens) != width:
            raise DataError(f"line {lineno}: expected {width} columns, got {len(tokens)}", path=where)
        try:
            data[r] = [float(t) for t in tokens]
        except ValueError:
            raise DataError(f"line {lineno}: not a number in {line.strip()!r}", path=where) from None
    sigma = data[:, columns["sigma"]] if "sigma" in columns else None
    return validate(data[:, columns["x"]], data[:, columns["y"]], sigma, path=where)


def load_h5(path: Path, names: Mapping[str, str]) -> Dataset:
    """Curve data from an HDF5 file: datasets x, y[, sigma] (or the names given).

    Scalar root attributes become meta.
    """
    import h5py  # lazy: h5py pulls in the HDF5 library
    xn, yn, _, sigma_required = _names(names)
    where = str(path)
    try:
        with h5py.File(path, "r") as f:
            sn = _sigma_key([k for k in SIGMA_NAMES if k in f], names, where)
            def read(key: str, required: bool):
                if key not in f:
                    if required:
                        raise DataError(f"missing dataset {key!r} (has: "
                                        f"{', '.join(sorted(f.keys())) or 'none'})", path=where)
                    return None
                obj = f[key]
                if not isinstance(obj, h5py.Dataset):
                    raise DataError(f"{key!r} is a group, not a dataset", path=where)
                return obj[()]
            x, y = read(xn, True), read(yn, True)
            sigma = read(sn, sigma_required) if sn else None
            meta = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()
                    if np.ndim(v) == 0 and isinstance(v, (int, float, np.integer, np.floating))}
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - not HDF5, truncated, permissions
        raise DataError(f"cannot read HDF5 file: {type(exc).__name__}: {exc}", path=where) from None
    return validate(x, y, sigma, path=where, meta=meta)
