"""XPCS two-time correlation fitting: data files, the fit problem and a simulator.

Models ``xpcs:homodyne`` and ``xpcs:heterodyne`` exactly as DESIGN.md defines them
(He et al., PNAS 121 (2024) e2401162121); the arithmetic lives in
:mod:`hpcopt.kernels.xpcs`.  Per angle, contrast and offset are the closed-form linear
least squares, never search parameters.

Units used throughout (and by :func:`simulate`): time in s, ``q`` in 1/Å, gap ``h`` in Å,
``D(t)`` in Å²/s (so ``D0`` in Å² s^-(1+alpha)), shear rate ``gamma_dot(t)`` in 1/s,
velocity ``v(t)`` in Å/s, angles in degrees.  The defaults (q = 0.01 1/Å, dt = 0.1 s,
n = 50, h = 1e6 Å = 100 µm, D0 = 6000) make g1**2 decay to ~0.1 across the window and
the shear/flow phase reach ~1-3 rad, so every parameter leaves a visible trace.

File layout (HDF5, root): datasets ``c2`` (n_phi, n, n), ``phi`` (n_phi,) in degrees,
optional ``sigma`` like ``c2``; attrs ``q``, ``dt``, ``h`` (``h`` needed by the
homodyne model); any other scalar root attr is an experimental condition (e.g.
``temperature``).  Simulated files carry the true values in a ``truth`` group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError
from ..kernels import xpcs as kx

HOMODYNE_PARAMS = ("D0", "alpha", "D_offset", "gamma_dot_0", "beta", "gamma_dot_offset", "phi0")
HETERODYNE_PARAMS = ("D0_ref", "alpha_ref", "D_offset_ref", "D0_sample", "alpha_sample",
                     "D_offset_sample", "v0", "beta", "v_offset", "f0", "f1", "f2", "f3", "phi0")
PARAM_NAMES: dict[str, tuple[str, ...]] = {"homodyne": HOMODYNE_PARAMS, "heterodyne": HETERODYNE_PARAMS}

#: parameter values of :func:`simulate` when not given (units in the module docstring)
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    "homodyne": {"D0": 6000.0, "alpha": -0.5, "D_offset": 300.0, "gamma_dot_0": 1e-4,
                 "beta": 0.5, "gamma_dot_offset": 1e-5, "phi0": 10.0},
    "heterodyne": {"D0_ref": 1500.0, "alpha_ref": -0.2, "D_offset_ref": 50.0,
                   "D0_sample": 6000.0, "alpha_sample": -0.5, "D_offset_sample": 300.0,
                   "v0": 40.0, "beta": 0.3, "v_offset": 5.0,
                   "f0": 0.3, "f1": 0.15, "f2": 0.0, "f3": 0.2, "phi0": 10.0},
}

#: the bundled demo dataset (see make_demo_dataset and hpcopt/data/README.md)
DEMO_FILE = Path(__file__).resolve().parent.parent / "data" / "xpcs_demo.h5"

_RESERVED_ATTRS = ("q", "dt", "h")


def variant_of(name: str) -> str:
    """'homodyne' or 'heterodyne' from that word or 'xpcs:<word>'; ValueError otherwise."""
    v = name[5:] if isinstance(name, str) and name.startswith("xpcs:") else name
    if v not in PARAM_NAMES:
        raise ValueError(f"unknown XPCS model {name!r}: expected 'homodyne' or 'heterodyne'")
    return v


@dataclass(frozen=True)
class XpcsData:
    """One XPCS measurement: c2 (n_phi, n, n), phi (degrees), optional sigma, q, dt, h."""

    c2: np.ndarray
    phi: np.ndarray
    q: float
    dt: float
    h: float | None = None
    sigma: np.ndarray | None = None
    conditions: dict[str, Any] = field(default_factory=dict)  # scalar root attrs, e.g. temperature
    truth: dict[str, Any] | None = None                       # simulated data: true values
    source: str = ""                                           # file it came from, for messages

    @property
    def n_phi(self) -> int:
        return int(self.c2.shape[0])

    @property
    def n(self) -> int:
        return int(self.c2.shape[1])


# --------------------------------------------------------------------------- validation
def _problem(c2, phi, sigma, q, dt, h) -> str | None:
    """The first thing wrong with these arrays and attrs, or None."""
    for what, a in (("c2", c2), ("phi", phi), ("sigma", sigma)):
        if a is not None and np.asarray(a).dtype.kind not in "iuf":
            return f"dataset {what!r} must hold real numbers, got dtype {np.asarray(a).dtype}"
    c2 = np.asarray(c2)
    if c2.ndim != 3:
        return f"dataset 'c2' must have shape (n_phi, n, n), got {c2.shape}"
    if c2.shape[1] != c2.shape[2]:
        return f"dataset 'c2' must hold square (n, n) matrices per angle, got {c2.shape}"
    if c2.shape[0] < 1 or c2.shape[1] < 2:
        return f"dataset 'c2' needs at least 1 angle and 2 time points, got {c2.shape}"
    phi = np.asarray(phi)
    if phi.shape != (c2.shape[0],):
        return f"dataset 'phi' has shape {phi.shape}, expected ({c2.shape[0]},): one angle per c2 matrix"
    for what, a in (("c2", c2), ("phi", phi), ("sigma", sigma)):
        if a is not None and not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            return f"dataset {what!r} contains {bad} non-finite value(s) (nan or inf)"
    if sigma is not None:
        sigma = np.asarray(sigma)
        if sigma.shape != c2.shape:
            return f"dataset 'sigma' has shape {sigma.shape}, expected {c2.shape} like 'c2'"
        if np.any(sigma <= 0):
            return f"dataset 'sigma' must be > 0 everywhere ({int(np.sum(sigma <= 0))} value(s) are not)"
    for what, v, required in (("q", q, True), ("dt", dt, True), ("h", h, False)):
        if v is None:
            if required:
                return f"missing attribute {what!r}"
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            return f"attribute {what!r} must be a number, got {v!r}"
        if not math.isfinite(float(v)) or float(v) <= 0:
            return f"attribute {what!r} must be a finite positive number, got {v!r}"
    return None


def make_data(c2, phi, *, q: float, dt: float, h: float | None = None, sigma=None,
              conditions: Mapping[str, Any] | None = None, truth: Mapping[str, Any] | None = None,
              source: str = "") -> XpcsData:
    """Validated XpcsData from arrays (ValueError naming the problem; DataError if `source` is set)."""
    problem = _problem(c2, phi, sigma, q, dt, h)
    if problem is not None:
        if source:
            raise DataError(problem, path=source)
        raise ValueError(problem)
    return XpcsData(c2=np.ascontiguousarray(c2, dtype=np.float64),
                    phi=np.ascontiguousarray(phi, dtype=np.float64), q=float(q), dt=float(dt),
                    h=None if h is None else float(h),
                    sigma=None if sigma is None else np.ascontiguousarray(sigma, dtype=np.float64),
                    conditions=dict(conditions or {}), truth=None if truth is None else dict(truth),
                    source=source)


# --------------------------------------------------------------------------- files
def _attr_value(v):
    """A scalar HDF5 attr as a Python value; None for arrays and other non-scalars."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, str):
        return v
    a = np.asarray(v)
    if a.ndim != 0 or a.dtype.kind not in "biuf":
        return None
    return a.item()


def load_xpcs_h5(path: str | Path) -> XpcsData:
    """Read and validate the DESIGN.md XPCS layout; DataError names the file and the problem."""
    import h5py

    src = str(path)
    if not Path(path).is_file():
        raise DataError("file not found", path=src)
    try:
        with h5py.File(path, "r") as f:
            arrays = {}
            for name in ("c2", "phi", "sigma"):
                node = f.get(name)
                if node is None:
                    if name != "sigma":
                        raise DataError(f"missing dataset {name!r} (expected c2 (n_phi, n, n) "
                                        "and phi (n_phi,) in degrees at the root)", path=src)
                    arrays[name] = None
                elif not isinstance(node, h5py.Dataset):
                    raise DataError(f"{name!r} must be a dataset, found a group", path=src)
                else:
                    arrays[name] = node[()]
            attrs = {k: f.attrs[k] for k in f.attrs}
            truth = None
            if isinstance(f.get("truth"), h5py.Group):
                truth = {k: (_attr_value(v) if np.ndim(v) == 0 else np.asarray(v).tolist())
                         for k, v in f["truth"].attrs.items()}
    except DataError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read as HDF5: {exc}", path=src) from None
    values = {k: _attr_value(attrs.get(k)) if k in attrs else None for k in _RESERVED_ATTRS}
    for k in _RESERVED_ATTRS:
        if k in attrs and values[k] is None:
            values[k] = attrs[k]  # let validation name the bad value
    phi = arrays["phi"]
    if phi is not None and np.ndim(phi) == 0:
        phi = np.atleast_1d(phi)
    conditions = {}
    for k, v in attrs.items():
        if k not in _RESERVED_ATTRS and (value := _attr_value(v)) is not None:
            conditions[k] = value
    return make_data(arrays["c2"], phi, q=values["q"], dt=values["dt"], h=values["h"],
                     sigma=arrays["sigma"], conditions=conditions, truth=truth, source=src)


def save_xpcs_h5(path: str | Path, data: XpcsData, true_params: Mapping[str, Any] | None = None) -> None:
    """Write `data` in the DESIGN.md layout; true values (or data.truth) go to a `truth` group."""
    import h5py

    truth = dict(true_params) if true_params is not None else data.truth
    clash = [k for k in data.conditions if k in _RESERVED_ATTRS]
    if clash:
        raise ValueError(f"condition names {clash} clash with the attributes q, dt, h")
    with h5py.File(path, "w") as f:
        f.create_dataset("c2", data=data.c2)
        f.create_dataset("phi", data=data.phi)
        if data.sigma is not None:  # usually constant: compresses to almost nothing
            f.create_dataset("sigma", data=data.sigma, compression="gzip", shuffle=True)
        f.attrs["q"] = data.q
        f.attrs["dt"] = data.dt
        if data.h is not None:
            f.attrs["h"] = data.h
        for k, v in data.conditions.items():
            f.attrs[k] = v
        if truth:
            g = f.create_group("truth")
            for k, v in truth.items():
                g.attrs[k] = v


# --------------------------------------------------------------------------- fit problem
class XpcsProblem:
    """An XPCS model bound to its data (the FitProblem protocol of hpcopt.models.base).

    ``chi2`` runs the fused compiled kernel (no model array); ``residuals`` and ``model``
    build the full (n_phi, n, n) model.  Both use the per-angle closed-form contrast and
    offset.  A model that is not finite gives chi2 = inf and non-finite residuals.
    """

    def __init__(self, variant: str, c2, phi, *, q: float, dt: float, h: float | None = None,
                 sigma=None, name: str = ""):
        self.variant = variant_of(variant)
        data = make_data(c2, phi, q=q, dt=dt, h=h, sigma=sigma)
        if self.variant == "homodyne" and data.h is None:
            raise ValueError("the homodyne model needs the gap h (attribute 'h')")
        self.data = data
        self.name = name or f"xpcs:{self.variant}"
        self.param_names = PARAM_NAMES[self.variant]
        self.n_points = int(data.c2.size)
        self.n_nuisance = 2 * data.n_phi
        self._folded = kx.fold_data(data.c2, data.sigma)
        self._inv_sigma = None if data.sigma is None else 1.0 / data.sigma

    @classmethod
    def from_data(cls, data: XpcsData, variant: str) -> "XpcsProblem":
        """Problem on loaded data; a homodyne fit without h is a DataError naming the file."""
        v = variant_of(variant)
        if v == "homodyne" and data.h is None:
            raise DataError("missing attribute 'h' (the gap), needed by the homodyne model",
                            path=data.source or None)
        problem = cls(v, data.c2, data.phi, q=data.q, dt=data.dt, h=data.h, sigma=data.sigma,
                      name=f"xpcs:{v}" + (f" {Path(data.source).name}" if data.source else ""))
        problem.data = data  # keep conditions, truth and source
        return problem

    @classmethod
    def from_file(cls, path: str | Path, variant: str) -> "XpcsProblem":
        """Load an XPCS .h5 file (see load_xpcs_h5) and bind the model to it."""
        return cls.from_data(load_xpcs_h5(path), variant)

    # -- evaluation ------------------------------------------------------------------------
    def decay(self, p: np.ndarray) -> np.ndarray:
        """The model with contrast 1 and offset 0, shape (n_phi, n, n)."""
        d = self.data
        if self.variant == "homodyne":
            return kx.homodyne_decay(p, d.phi, q=d.q, h=d.h, dt=d.dt, n=d.n)
        return kx.heterodyne_decay(p, d.phi, q=d.q, dt=d.dt, n=d.n)

    def _fit(self, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        d = self.data
        if self.variant == "homodyne":
            return kx.fit_homodyne(p, d.phi, self._folded, q=d.q, h=d.h, dt=d.dt)
        return kx.fit_heterodyne(p, d.phi, self._folded, q=d.q, dt=d.dt)

    def chi2(self, p: np.ndarray) -> float:
        """Sum of squared weighted residuals (fused compiled kernel); inf if the model is not finite."""
        return self._fit(p)[0]

    def contrast_offset(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-angle (contrast, offset) that the chi2 at `p` uses (for reports)."""
        _, contrast, offset = self._fit(p)
        return contrast, offset

    def model(self, p: np.ndarray) -> np.ndarray:
        """Model c2 shaped like the data, with its closed-form contrast and offset."""
        decay = self.decay(p)
        contrast, offset = kx.contrast_offset(decay, self.data.c2, self.data.sigma)
        return offset[:, None, None] + contrast[:, None, None] * decay

    def residuals(self, p: np.ndarray) -> np.ndarray:
        """(c2 - model) / sigma, flattened (length n_points)."""
        r = self.data.c2 - self.model(p)
        if self._inv_sigma is not None:
            r *= self._inv_sigma
        return r.ravel()


# --------------------------------------------------------------------------- simulation
def _per_angle(value, n_phi: int, what: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n_phi, float(a))
    if a.shape != (n_phi,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be a finite number or one per angle ({n_phi}), got {value!r}")
    return a


def full_params(variant: str, params: Mapping[str, float] | None = None) -> dict[str, float]:
    """DEFAULT_PARAMS of the variant updated with `params` (unknown names are a ValueError)."""
    v = variant_of(variant)
    out = dict(DEFAULT_PARAMS[v])
    unknown = sorted(set(params or {}) - set(out))
    if unknown:
        raise ValueError(f"unknown {v} parameter(s) {unknown}; known: {list(PARAM_NAMES[v])}")
    out.update({k: float(x) for k, x in (params or {}).items()})
    return out


def simulate(variant: str, params: Mapping[str, float] | None = None, *, n: int = 50,
             phi: Sequence[float] = (0.0, 45.0, 90.0), q: float = 0.01, dt: float = 0.1,
             h: float | None = 1e6, contrast: float | Sequence[float] = 0.3,
             offset: float | Sequence[float] = 1.0, noise: float = 0.01, seed: int = 0,
             conditions: Mapping[str, Any] | None = None) -> XpcsData:
    """Synthetic c2 from the model plus Gaussian noise of standard deviation `noise`.

    `params` override DEFAULT_PARAMS (units in the module docstring).  The noise is
    independent per matrix element and stored as a constant `sigma`; noise = 0 gives
    exact data without sigma.  The true values are in the result's `truth`.
    """
    v = variant_of(variant)
    values = full_params(v, params)
    p = np.array([values[k] for k in PARAM_NAMES[v]])
    phi = np.atleast_1d(np.asarray(phi, dtype=np.float64))
    if v == "homodyne":
        if h is None:
            raise ValueError("the homodyne model needs the gap h")
        decay = kx.homodyne_decay(p, phi, q=q, h=h, dt=dt, n=n)
    else:
        decay = kx.heterodyne_decay(p, phi, q=q, dt=dt, n=n)
    contrast = _per_angle(contrast, phi.shape[0], "contrast")
    offset = _per_angle(offset, phi.shape[0], "offset")
    noise = float(noise)
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    c2 = offset[:, None, None] + contrast[:, None, None] * decay
    sigma = None
    if noise > 0:
        c2 = c2 + np.random.default_rng(seed).normal(0.0, noise, size=c2.shape)
        sigma = np.full(c2.shape, noise)
    truth = {"variant": v, **values, "contrast": contrast.tolist(), "offset": offset.tolist(),
             "noise": noise, "seed": int(seed)}
    return make_data(c2, phi, q=q, dt=dt, h=h, sigma=sigma, conditions=conditions, truth=truth)


#: how hpcopt/data/xpcs_demo.h5 was made (make_demo_dataset)
DEMO_SETTINGS: dict[str, Any] = {
    "variant": "homodyne", "params": DEFAULT_PARAMS["homodyne"], "n": 60,
    "phi": (0.0, 45.0, 90.0), "q": 0.01, "dt": 0.1, "h": 1e6,
    "contrast": (0.30, 0.28, 0.32), "offset": (1.0, 1.01, 0.99), "noise": 0.01, "seed": 20240521,
    "conditions": {"temperature": 298.15, "concentration": 0.08},
}


def make_demo_dataset(path: str | Path = DEMO_FILE) -> XpcsData:
    """Write the bundled homodyne demo dataset (DEMO_SETTINGS) to `path`; return its data."""
    s = dict(DEMO_SETTINGS)
    data = simulate(s.pop("variant"), s.pop("params"), **s)
    save_xpcs_h5(path, data)
    return data
