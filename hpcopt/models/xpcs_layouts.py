"""XPCS data files in every layout hpcopt reads, and the ``[data]`` options that select from them.

Layouts (detected from the datasets present; docs/models.md has the full description):

* ``hpcopt``: root datasets ``c2`` (n_phi, n, n), ``phi``, optional ``sigma``; attrs ``q``,
  ``dt``, ``h``, optional ``t0``;
* ``aps-u`` (APS 8-ID-I after the upgrade): ``xpcs/qmap/dynamic_v_list_dim0`` (q, 1/Å),
  ``xpcs/qmap/dynamic_v_list_dim1`` (phi, degrees), ``xpcs/twotime/processed_bins``
  (1-based bins over the q x phi grid: bin - 1 = q_index * n_phi + phi_index) and
  ``xpcs/twotime/correlation_map/c2_00001, ...`` (upper-triangle half matrices, in bin order);
* ``aps`` (the older APS layout): ``xpcs/dqlist``, ``xpcs/dphilist`` (one row: q and phi of
  each bin) and ``exchange/C2T_all/c2_NNNNN`` half matrices (NNNNN = the bin number).

A half matrix H becomes the symmetric c2 = H + H^T with the diagonal halved.  Beamline
files hold one measurement per pair (i < j); hpcopt's layout may hold two (both triangles).

This module reads arrays and attributes only; :mod:`hpcopt.models.xpcs` validates them into
an XpcsData.  It imports nothing else of hpcopt's models (no cycles).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError

LAYOUTS = ("hpcopt", "aps-u", "aps")
DIAGONAL_MODES = ("correct", "keep", "exclude")
#: [data] keys of XPCS models besides path (docs/sweep.md)
XPCS_DATA_KEYS = ("q", "phi", "phi_ranges", "frames", "stride", "dt", "h", "diagonal")

APS_U_Q = "xpcs/qmap/dynamic_v_list_dim0"
APS_U_PHI = "xpcs/qmap/dynamic_v_list_dim1"
APS_U_BINS = "xpcs/twotime/processed_bins"
APS_U_MAPS = "xpcs/twotime/correlation_map"
APS_Q = "xpcs/dqlist"
APS_PHI = "xpcs/dphilist"
APS_MAPS = "exchange/C2T_all"

_MAP_NAME = re.compile(r"^c2_(\d+)$")
_BLOCK_ROWS = 256          # half matrices are read in blocks of this many rows


# --------------------------------------------------------------------------- [data] options
@dataclass(frozen=True)
class DataOptions:
    """The XPCS [data] keys (docs/sweep.md); None: not given."""

    q: float | None = None                          # 1/Å: the nearest q bin (beamline files)
    phi: tuple[float, ...] | None = None            # degrees: the nearest angle bins
    phi_ranges: tuple[tuple[float, float], ...] | None = None   # degrees, [lo, hi] inclusive
    frames: tuple[int, int] | None = None           # 1-based, inclusive
    stride: int = 1
    dt: float | None = None                         # s between c2 rows (file: attr dt)
    h: float | None = None                          # Å, the gap (file: attr h)
    diagonal: str | None = None                     # default: correct (beamline), keep (hpcopt)

    def diagonal_for(self, layout: str) -> str:
        return self.diagonal or ("keep" if layout == "hpcopt" else "correct")


def _did_you_mean(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key_error(key: str, known: Sequence[str], *, prefix: str, source: str | None,
                      what: str) -> ConfigError:
    """The ConfigError for an unknown key, with a "did you mean" from difflib."""
    return ConfigError(f"unknown key{_did_you_mean(key, known)}; {what} takes "
                       f"{', '.join(known)}", key=f"{prefix}.{key}", source=source)


def _number(value, key: str, source, *, positive: bool = True, integer: bool = False):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value) or (positive and value <= 0):
        what = "an integer" if integer else "a number"
        raise ConfigError(f"expected {what}{' > 0' if positive else ''}, got {value!r}",
                          key=key, source=source)
    return value if integer else float(value)


def parse_data_options(options: Mapping[str, Any] | None, *, source: str | None = None,
                       prefix: str = "data") -> DataOptions:
    """Validate the XPCS [data] keys besides path; ConfigError names the file and the key."""
    options = dict(options or {})
    for key in options:
        if key not in XPCS_DATA_KEYS:
            raise unknown_key_error(key, XPCS_DATA_KEYS, prefix=prefix, source=source,
                                    what="XPCS data (besides path)")
    k = lambda name: f"{prefix}.{name}"  # noqa: E731
    out: dict[str, Any] = {}
    if "q" in options:
        out["q"] = _number(options["q"], k("q"), source)
    if "phi" in options and "phi_ranges" in options:
        raise ConfigError("give phi (nearest angles) or phi_ranges, not both", key=k("phi"),
                          source=source)
    if "phi" in options:
        raw = options["phi"]
        raw = [raw] if isinstance(raw, (int, float)) and not isinstance(raw, bool) else raw
        if not isinstance(raw, list) or not raw:
            raise ConfigError(f"expected an angle or a list of angles (degrees), got {raw!r}",
                              key=k("phi"), source=source)
        out["phi"] = tuple(_number(v, k("phi"), source, positive=False) for v in raw)
    if "phi_ranges" in options:
        raw = options["phi_ranges"]
        if (not isinstance(raw, list) or not raw
                or not all(isinstance(r, list) and len(r) == 2 for r in raw)):
            raise ConfigError(f"expected a list of [lo, hi] pairs (degrees), got {raw!r}",
                              key=k("phi_ranges"), source=source)
        ranges = []
        for lo, hi in raw:
            lo = _number(lo, k("phi_ranges"), source, positive=False)
            hi = _number(hi, k("phi_ranges"), source, positive=False)
            if hi < lo or hi - lo >= 360.0:
                raise ConfigError(f"a range needs lo <= hi < lo + 360, got [{lo:g}, {hi:g}]",
                                  key=k("phi_ranges"), source=source)
            ranges.append((lo, hi))
        out["phi_ranges"] = tuple(ranges)
    if "frames" in options:
        raw = options["frames"]
        if not isinstance(raw, list) or len(raw) != 2:
            raise ConfigError(f"expected [start, end] (1-based frame numbers), got {raw!r}",
                              key=k("frames"), source=source)
        start, end = (_number(v, k("frames"), source, integer=True) for v in raw)
        if end <= start:
            raise ConfigError(f"expected start < end, got [{start}, {end}]", key=k("frames"),
                              source=source)
        out["frames"] = (start, end)
    if "stride" in options:
        out["stride"] = _number(options["stride"], k("stride"), source, integer=True)
    for name in ("dt", "h"):
        if name in options:
            out[name] = _number(options[name], k(name), source)
    if "diagonal" in options:
        value = options["diagonal"]
        if value not in DIAGONAL_MODES:
            raise ConfigError(f"expected one of {', '.join(DIAGONAL_MODES)}, got {value!r}",
                              key=k("diagonal"), source=source)
        out["diagonal"] = value
    return DataOptions(**out)


# --------------------------------------------------------------------------- what a file holds
@dataclass
class RawXpcs:
    """Arrays and attributes read from a file, after the [data] selection (not yet validated)."""

    c2: Any
    phi: Any
    q: Any
    dt: Any
    h: Any
    layout: str
    sigma: Any = None
    t0: Any = None                                   # time of the first row (s)
    pairs: str = "both"                              # "once": one measurement per pair i < j
    diagonal: str = "keep"
    attrs: dict[str, Any] = field(default_factory=dict)   # root attributes
    truth: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)         # what the selection did


def detect_layout(f) -> str | None:
    """'hpcopt', 'aps-u', 'aps' for an open h5py.File, or None."""
    if "c2" in f:
        return "hpcopt"
    if APS_U_MAPS in f and APS_U_Q in f:
        return "aps-u"
    if APS_MAPS in f and APS_Q in f:
        return "aps"
    if "phi" in f:
        return "hpcopt"   # without c2: the reader names what is missing
    return None


def _map_number(name: str) -> int | None:
    m = _MAP_NAME.match(name)
    return int(m.group(1)) if m else None


def _maps(group, where: str, src: str) -> list[tuple[int, str]]:
    """(number, name) of the c2_NNNNN datasets of a group, by number."""
    import h5py
    if not isinstance(group, h5py.Group):
        raise DataError(f"{where!r} must be a group of c2_NNNNN datasets", path=src)
    found = sorted((n, name) for name in group if (n := _map_number(name)) is not None)
    if not found:
        raise DataError(f"{where!r} holds no c2_NNNNN datasets", path=src)
    return found


def _vector(f, where: str, src: str) -> np.ndarray:
    import h5py
    node = f.get(where)
    if not isinstance(node, h5py.Dataset):
        raise DataError(f"missing dataset {where!r}", path=src)
    arr = np.asarray(node[()])
    if arr.dtype.kind not in "iuf":
        raise DataError(f"dataset {where!r} must hold numbers, got dtype {arr.dtype}", path=src)
    return arr.ravel()


def _bins_aps_u(f, src: str) -> list[dict]:
    """One entry per correlation map: its dataset path, q and phi."""
    q_values, phi_values = _vector(f, APS_U_Q, src), _vector(f, APS_U_PHI, src)
    bins = _vector(f, APS_U_BINS, src)
    if bins.dtype.kind == "f" and not np.all(bins == np.round(bins)):
        raise DataError(f"{APS_U_BINS!r} must hold integer bin numbers", path=src)
    bins = bins.astype(np.int64)
    maps = _maps(f[APS_U_MAPS], APS_U_MAPS, src)
    numbers = [num for num, _ in maps]
    if sorted(numbers) == sorted(bins.tolist()):        # maps named by their bin numbers
        pairs = [(num, name) for num, name in maps]
    elif len(maps) == len(bins):                        # maps numbered 1, 2, ... in bin order
        pairs = [(int(b), name) for b, (_, name) in zip(bins, maps)]
    else:
        raise DataError(f"{APS_U_BINS!r} lists {len(bins)} bins but {APS_U_MAPS!r} holds "
                        f"{len(maps)} maps", path=src)
    n_phi = len(phi_values)
    out = []
    for b, name in pairs:
        q_index, phi_index = divmod(b - 1, n_phi)
        if b < 1 or q_index >= len(q_values):
            raise DataError(f"bin {b} of {APS_U_BINS!r} is outside the {len(q_values)} x "
                            f"{n_phi} q x phi grid", path=src)
        out.append({"path": f"{APS_U_MAPS}/{name}", "q": float(q_values[q_index]),
                    "phi": float(phi_values[phi_index]), "bin": int(b)})
    return out


def _bins_aps(f, src: str) -> list[dict]:
    q_values, phi_values = _vector(f, APS_Q, src), _vector(f, APS_PHI, src)
    if len(q_values) != len(phi_values):
        raise DataError(f"{APS_Q!r} has {len(q_values)} values, {APS_PHI!r} {len(phi_values)}: "
                        "expected one q and one phi per bin", path=src)
    out = []
    for num, name in _maps(f[APS_MAPS], APS_MAPS, src):
        if not 1 <= num <= len(q_values):
            raise DataError(f"{APS_MAPS}/{name}: bin {num} has no q/phi (the lists have "
                            f"{len(q_values)} bins)", path=src)
        out.append({"path": f"{APS_MAPS}/{name}", "q": float(q_values[num - 1]),
                    "phi": float(phi_values[num - 1]), "bin": num})
    return out


def _angle_gap(a, b) -> np.ndarray:
    """Distance between angles in degrees, on the circle."""
    d = np.mod(np.asarray(a, dtype=float) - b, 360.0)
    return np.minimum(d, 360.0 - d)


def select_angles(available: Sequence[float], opts: DataOptions, *, source: str | None,
                  path: str) -> list[int]:
    """Indices into `available` chosen by phi (nearest) or phi_ranges (all inside); all if neither."""
    available = np.asarray(available, dtype=float)
    shown = ", ".join(f"{v:g}" for v in available)
    if opts.phi is not None:
        chosen: list[int] = []
        for want in opts.phi:
            idx = int(np.argmin(_angle_gap(available, want)))
            if idx in chosen:
                raise ConfigError(f"phi {want:g} selects the angle {available[idx]:g} a second "
                                  f"time (angles of {Path(path).name}: {shown})",
                                  key="data.phi", source=source)
            chosen.append(idx)
        return chosen
    if opts.phi_ranges is not None:
        chosen = [i for i, v in enumerate(available)
                  if any(np.mod(v - lo, 360.0) <= hi - lo for lo, hi in opts.phi_ranges)]
        if not chosen:
            raise ConfigError(f"no angle of {Path(path).name} lies in these ranges (angles: "
                              f"{shown})", key="data.phi_ranges", source=source)
        return chosen
    return list(range(len(available)))


def frame_rows(n_frames: int, opts: DataOptions, *, source: str | None, path: str) -> np.ndarray:
    """0-based rows of c2 kept by frames = [start, end] (1-based, inclusive) and stride."""
    start, end = opts.frames or (1, n_frames)
    if end > n_frames:
        raise ConfigError(f"frames [{start}, {end}] goes past the {n_frames} frames of "
                          f"{Path(path).name}", key="data.frames", source=source)
    rows = np.arange(start - 1, end, opts.stride)
    if len(rows) < 2:
        raise ConfigError(f"frames [{start}, {end}] with stride {opts.stride} keep {len(rows)} "
                          "time point(s); at least 2 are needed",
                          key="data.stride" if opts.stride > 1 else "data.frames", source=source)
    return rows


def _neighbour_mean(pairs_of: dict[int, list[float]], rows: np.ndarray) -> np.ndarray:
    return np.array([np.mean(pairs_of[int(r)]) for r in rows])


def corrected_diagonal_full(c2: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For an (n, n) c2 at full time resolution: the mean of the nearest off-diagonal
    neighbours c2[i, i+-1], c2[i+-1, i] of each diagonal element of `rows`."""
    n = c2.shape[0]
    pairs_of = {}
    for i in rows.tolist():
        vals = []
        if i + 1 < n:
            vals += [c2[i, i + 1], c2[i + 1, i]]
        if i >= 1:
            vals += [c2[i - 1, i], c2[i, i - 1]]
        pairs_of[i] = vals
    return _neighbour_mean(pairs_of, rows)


def read_half(ds, rows: np.ndarray, correct: bool) -> np.ndarray:
    """The symmetric c2 of the kept rows from an upper-triangle half-matrix dataset.

    c2 = H + H^T with the diagonal halved, read in blocks of rows (never the whole file
    matrix when a window or a stride is asked for).  With `correct`, each diagonal element
    is the mean of its neighbours c2[i, i-1] and c2[i, i+1] at the file's full time
    resolution (one neighbour at the first and last frame of the file).
    """
    n_file = ds.shape[0]
    lo, hi = int(rows[0]), int(rows[-1])
    step = int(rows[1] - rows[0])
    m = len(rows)
    half = np.empty((m, m))
    for b0 in range(0, m, _BLOCK_ROWS):
        b1 = min(m, b0 + _BLOCK_ROWS)
        half[b0:b1] = ds[lo + b0 * step:lo + (b1 - 1) * step + 1:step, lo:hi + 1:step]
    full = half + half.T
    full[np.diag_indices(m)] = np.diagonal(half)
    if correct:
        # c2[i, i + 1] at full resolution for i = lo - 1 .. hi, from square blocks on the diagonal
        first, last = max(lo - 1, 0), min(hi, n_file - 2)
        sup = {}
        for r0 in range(first, last + 1, _BLOCK_ROWS):
            r1 = min(last, r0 + _BLOCK_ROWS - 1)
            blk = np.asarray(ds[r0:r1 + 2, r0:r1 + 2], dtype=np.float64)
            for k in range(r1 - r0 + 1):
                sup[r0 + k] = blk[k, k + 1] + blk[k + 1, k]
        pairs_of = {int(i): [sup[j] for j in (i - 1, i) if j in sup] for i in rows}
        full[np.diag_indices(m)] = _neighbour_mean(pairs_of, rows)
    return full


def _attr_scalar(v):
    """A scalar HDF5 attribute as a Python value; None for arrays and other non-scalars."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, str):
        return v
    a = np.asarray(v)
    if a.ndim != 0 or a.dtype.kind not in "biuf":
        return None
    return a.item()


def read_file(path: str | Path, opts: DataOptions | None = None, *,
              source: str | None = None) -> RawXpcs:
    """Read `path` in whichever layout it has, with the [data] selection applied.

    DataError for files that cannot be read or lack what their layout needs, ConfigError
    (key ``data.<name>``, file `source`) for selections the file cannot satisfy.
    """
    import h5py

    opts = opts or DataOptions()
    src = str(path)
    if not Path(path).is_file():
        raise DataError("file not found", path=src)
    try:
        with h5py.File(path, "r") as f:
            layout = detect_layout(f)
            if layout is None:
                raise DataError("not an XPCS file: expected hpcopt's layout (root datasets "
                                "c2, phi), the APS-U layout (xpcs/twotime/correlation_map, "
                                "xpcs/qmap) or the older APS layout (exchange/C2T_all, "
                                "xpcs/dqlist)", path=src)
            attrs = {k: f.attrs[k] for k in f.attrs}
            if layout == "hpcopt":
                raw = _read_hpcopt(f, opts, src, source)
            else:
                raw = _read_beamline(f, layout, opts, src, source)
            raw.attrs = attrs
    except (DataError, ConfigError):
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read as HDF5: {exc}", path=src) from None
    return raw


def _read_hpcopt(f, opts: DataOptions, src: str, source: str | None) -> RawXpcs:
    import h5py
    arrays = {}
    for name in ("c2", "phi", "sigma"):
        node = f.get(name)
        if node is None:
            if name != "sigma":
                raise DataError(f"missing dataset {name!r} (expected c2 (n_phi, n, n) and phi "
                                "(n_phi,) in degrees at the root)", path=src)
            arrays[name] = None
        elif not isinstance(node, h5py.Dataset):
            raise DataError(f"{name!r} must be a dataset, found a group", path=src)
        else:
            arrays[name] = node[()]
    attr = {k: (_attr_scalar(f.attrs[k]) if k in f.attrs else None) for k in ("q", "dt", "h", "t0")}
    for k in attr:
        if k in f.attrs and attr[k] is None:
            attr[k] = f.attrs[k]  # let validation name the bad value
    for k in ("dt", "h"):          # [data] gives what the file lacks (and wins over it)
        if getattr(opts, k) is not None:
            attr[k] = getattr(opts, k)
    truth = None
    if isinstance(f.get("truth"), h5py.Group):
        truth = {k: (_attr_scalar(v) if np.ndim(v) == 0 else np.asarray(v).tolist())
                 for k, v in f["truth"].attrs.items()}
    c2, phi, sigma = arrays["c2"], arrays["phi"], arrays["sigma"]
    if phi is not None and np.ndim(phi) == 0:
        phi = np.atleast_1d(phi)
    raw = RawXpcs(c2=c2, phi=phi, q=attr["q"], dt=attr["dt"], h=attr["h"], t0=attr["t0"],
                  sigma=sigma, layout="hpcopt", truth=truth, diagonal=opts.diagonal_for("hpcopt"))
    if opts.q is not None:
        raise ConfigError(f"q selects a q bin of a beamline file; {Path(src).name} (hpcopt "
                          f"layout) holds one q (attribute q = {attr['q']})", key="data.q",
                          source=source)
    selecting = (opts.phi is not None or opts.phi_ranges is not None or opts.frames is not None
                 or opts.stride > 1 or raw.diagonal == "correct")
    shaped = (isinstance(c2, np.ndarray) and c2.ndim == 3 and c2.shape[1] == c2.shape[2]
              and c2.dtype.kind in "iuf" and isinstance(phi, np.ndarray)
              and phi.shape == (c2.shape[0],) and phi.dtype.kind in "iuf")
    if not selecting or not shaped:
        return raw   # validation (make_data) names whatever is wrong
    angles = select_angles(phi, opts, source=source, path=src)
    rows = frame_rows(c2.shape[1], opts, source=source, path=src)
    sub = c2[np.ix_(angles, rows, rows)].astype(np.float64)
    if raw.diagonal == "correct":
        for out, a in zip(sub, angles):
            out[np.diag_indices(len(rows))] = corrected_diagonal_full(np.asarray(c2[a], float), rows)
    raw.c2, raw.phi = sub, np.asarray(phi)[angles]
    if sigma is not None and np.shape(sigma) == c2.shape:
        raw.sigma = sigma[np.ix_(angles, rows, rows)]
    raw.t0, raw.dt = _window_times(attr["t0"], attr["dt"], rows, opts.stride)
    return raw


def _window_times(t0, dt, rows: np.ndarray, stride: int):
    """(t0, dt) of the kept rows, for a file whose row 0 is at t0 (default dt) and rows dt apart."""
    if not isinstance(dt, (int, float)) or isinstance(dt, bool):
        return t0, dt                      # validation names the bad dt
    first = dt if t0 is None else t0
    if not isinstance(first, (int, float)) or isinstance(first, bool):
        return t0, dt
    return float(first) + float(dt) * int(rows[0]), float(dt) * stride


def _read_beamline(f, layout: str, opts: DataOptions, src: str, source: str | None) -> RawXpcs:
    import h5py
    bins = _bins_aps_u(f, src) if layout == "aps-u" else _bins_aps(f, src)
    q_values = sorted({b["q"] for b in bins})
    if opts.q is None:
        if len(q_values) > 1:
            raise ConfigError(f"{Path(src).name} holds {len(q_values)} q bins ("
                              + ", ".join(f"{v:g}" for v in q_values) + " 1/Å): choose one with "
                              "q = value", key="data.q", source=source)
        q = q_values[0]
    else:
        q = min(q_values, key=lambda v: abs(v - opts.q))
    at_q = [b for b in bins if b["q"] == q]
    chosen = [at_q[i] for i in select_angles([b["phi"] for b in at_q], opts, source=source,
                                             path=src)]
    shapes = set()
    for b in chosen:
        ds = f[b["path"]]
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 2 or ds.shape[0] != ds.shape[1]:
            raise DataError(f"{b['path']!r} must be a square 2-D half matrix, got "
                            f"{getattr(ds, 'shape', 'a group')}", path=src)
        if ds.dtype.kind not in "iuf":
            raise DataError(f"{b['path']!r} must hold numbers, got dtype {ds.dtype}", path=src)
        shapes.add(ds.shape[0])
    if len(shapes) > 1:
        raise DataError(f"the maps at q = {q:g} have different sizes {sorted(shapes)}", path=src)
    rows = frame_rows(shapes.pop(), opts, source=source, path=src)
    diagonal = opts.diagonal_for(layout)
    c2 = np.stack([read_half(f[b["path"]], rows, diagonal == "correct") for b in chosen])
    dt = opts.dt if opts.dt is not None else (_attr_scalar(f.attrs["dt"]) if "dt" in f.attrs else None)
    h = opts.h if opts.h is not None else (_attr_scalar(f.attrs["h"]) if "h" in f.attrs else None)
    if dt is None:
        raise ConfigError(f"{Path(src).name} ({layout} layout) does not record the time "
                          "between c2 rows: give it as dt = seconds", key="data.dt",
                          source=source)
    t0, step = _window_times(None, dt, rows, opts.stride)
    notes = [f"{layout} layout: q = {q:g} 1/Å, {len(chosen)} angle(s), rows "
             f"{int(rows[0]) + 1}..{int(rows[-1]) + 1} step {opts.stride}, diagonal {diagonal}"]
    return RawXpcs(c2=c2, phi=np.array([b["phi"] for b in chosen]), q=q, dt=step, h=h, t0=t0,
                   layout=layout, pairs="once", diagonal=diagonal, notes=notes)


# --------------------------------------------------------------------------- writers
def half_matrix(c2: np.ndarray) -> np.ndarray:
    """The upper-triangle half matrix H of a symmetric (n, n) c2 (c2 = H + H^T, diagonal halved)."""
    return np.triu(np.asarray(c2))


def _write_map(group, name: str, c2: np.ndarray, dtype) -> None:
    group.create_dataset(name, data=half_matrix(c2).astype(dtype), compression="gzip",
                         shuffle=True)


def save_aps_u(path: str | Path, maps: Mapping[int, np.ndarray], q_values: Sequence[float],
               phi_values: Sequence[float], *, names: str = "order", dtype=np.float32,
               attrs: Mapping[str, Any] | None = None) -> None:
    """Write symmetric c2 maps in the APS-U layout; `maps` keys are the 1-based bins over the
    q x phi grid (bin - 1 = q_index * len(phi_values) + phi_index).

    names "order": c2_00001, c2_00002, ... in bin order; "bin": c2_<bin number>.
    """
    import h5py
    bins = sorted(maps)
    with h5py.File(path, "w") as f:
        f.create_dataset(APS_U_Q, data=np.asarray(q_values, dtype=np.float64))
        f.create_dataset(APS_U_PHI, data=np.asarray(phi_values, dtype=np.float64))
        f.create_dataset(APS_U_BINS, data=np.asarray(bins, dtype=np.int64))
        group = f.create_group(APS_U_MAPS)
        for k, b in enumerate(bins, start=1):
            _write_map(group, f"c2_{(k if names == 'order' else b):05d}", maps[b], dtype)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value


def save_aps(path: str | Path, maps: Sequence[np.ndarray], q_per_bin: Sequence[float],
             phi_per_bin: Sequence[float], *, dtype=np.float32,
             attrs: Mapping[str, Any] | None = None) -> None:
    """Write symmetric c2 maps in the older APS layout: bin k (1-based) has q_per_bin[k-1],
    phi_per_bin[k-1] (xpcs/dqlist, xpcs/dphilist, one row each) and exchange/C2T_all/c2_0000k."""
    import h5py
    with h5py.File(path, "w") as f:
        f.create_dataset(APS_Q, data=np.asarray(q_per_bin, dtype=np.float64)[None, :])
        f.create_dataset(APS_PHI, data=np.asarray(phi_per_bin, dtype=np.float64)[None, :])
        group = f.create_group(APS_MAPS)
        for k, c2 in enumerate(maps, start=1):
            _write_map(group, f"c2_{k:05d}", c2, dtype)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
