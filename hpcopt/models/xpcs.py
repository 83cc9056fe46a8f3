"""XPCS two-time correlation fitting: data files, the fit problem, analysis modes, a simulator.

Models ``xpcs:homodyne`` and ``xpcs:heterodyne`` as docs/models.md defines and derives them
(He et al., PNAS 121 (2024) e2401162121); the arithmetic lives in
:mod:`hpcopt.kernels.xpcs`, the file layouts (hpcopt's own, APS-U, older APS) and the
``[data]`` selection in :mod:`hpcopt.models.xpcs_layouts`.  Per angle (or once for every
angle: scaling "constant"), contrast and offset are the closed-form linear least squares,
never search parameters.

Units used throughout (and by :func:`simulate`): time in s, ``q`` in 1/Å, gap ``h`` in Å,
``D(t)`` (the transport coefficient J(t)) in Å²/s (so ``D0`` in Å² s^-(1+alpha)), shear
rate ``gamma_dot(t)`` in 1/s, velocity ``v(t)`` in Å/s, angles in degrees.  The defaults
(q = 0.01 1/Å, dt = 0.1 s, n = 50, h = 1e6 Å = 100 µm, D0 = 6000) make g1**2 decay to
~0.1 across the window and the shear/flow phase reach ~1-4 rad, so every parameter leaves
a visible trace.

Modes of ``xpcs:homodyne`` (``[model] mode``): ``laminar_flow`` (all seven parameters),
``static_anisotropic`` and ``static_isotropic`` (D0, alpha, D_offset; no shear).

A fitted result file carries the root attribute ``xpcs_convention``;
:mod:`hpcopt.models.xpcs_convention` recognises files fitted before the shear term was corrected.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..kernels import xpcs as kx
from . import xpcs_layouts as layouts
from .xpcs_convention import ATTR_CONVENTION, XPCS_CONVENTION, convention_warning  # noqa: F401

HOMODYNE_PARAMS = ("D0", "alpha", "D_offset", "gamma_dot_0", "beta", "gamma_dot_offset", "phi0")
STATIC_PARAMS = HOMODYNE_PARAMS[:3]
HETERODYNE_PARAMS = ("D0_ref", "alpha_ref", "D_offset_ref", "D0_sample", "alpha_sample",
                     "D_offset_sample", "v0", "beta", "v_offset", "f0", "f1", "f2", "f3", "phi0")
PARAM_NAMES: dict[str, tuple[str, ...]] = {"homodyne": HOMODYNE_PARAMS, "heterodyne": HETERODYNE_PARAMS}

#: units of every parameter (docs/models.md); "" for dimensionless
PARAM_UNITS: dict[str, str] = {
    "D0": "Å² s^-(1+alpha)", "alpha": "", "D_offset": "Å²/s",
    "gamma_dot_0": "s^-(1+beta)", "beta": "", "gamma_dot_offset": "1/s", "phi0": "deg",
    "D0_ref": "Å² s^-(1+alpha_ref)", "alpha_ref": "", "D_offset_ref": "Å²/s",
    "D0_sample": "Å² s^-(1+alpha_sample)", "alpha_sample": "", "D_offset_sample": "Å²/s",
    "v0": "Å s^-(1+beta)", "v_offset": "Å/s", "f0": "", "f1": "1/s", "f2": "s", "f3": "",
}

#: analysis modes of xpcs:homodyne: fitted parameters and the default scaling
MODES: dict[str, tuple[tuple[str, ...], str]] = {
    "laminar_flow": (HOMODYNE_PARAMS, "individual"),
    "static_anisotropic": (STATIC_PARAMS, "individual"),
    "static_isotropic": (STATIC_PARAMS, "constant"),
}
SCALINGS = kx.SCALINGS
#: [model] keys of XPCS models besides name
MODEL_KEYS = ("mode", "scaling")


#: parameter values of :func:`simulate` when not given (units in the module docstring)
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    "homodyne": {"D0": 6000.0, "alpha": -0.5, "D_offset": 300.0, "gamma_dot_0": 1e-4,
                 "beta": 0.5, "gamma_dot_offset": 1e-5, "phi0": 10.0},
    "heterodyne": {"D0_ref": 1500.0, "alpha_ref": -0.2, "D_offset_ref": 50.0,
                   "D0_sample": 6000.0, "alpha_sample": -0.5, "D_offset_sample": 300.0,
                   "v0": 40.0, "beta": 0.3, "v_offset": 5.0,
                   "f0": 0.3, "f1": 0.15, "f2": 0.0, "f3": 0.2, "phi0": 10.0},
}

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: the bundled demo dataset (see make_demo_dataset and hpcopt/data/README.md)
DEMO_FILE = DATA_DIR / "xpcs_demo.h5"
#: the bundled APS-U-layout example (see make_beamline_example)
BEAMLINE_FILE = DATA_DIR / "xpcs_aps_u_example.h5"

_RESERVED_ATTRS = ("q", "dt", "h", "t0")


def variant_of(name: str) -> str:
    """'homodyne' or 'heterodyne' from that word or 'xpcs:<word>'; ValueError otherwise."""
    v = name[5:] if isinstance(name, str) and name.startswith("xpcs:") else name
    if v not in PARAM_NAMES:
        raise ValueError(f"unknown XPCS model {name!r}: expected 'homodyne' or 'heterodyne'")
    return v


def param_names_for(variant: str, mode: str | None = None) -> tuple[str, ...]:
    """The fitted parameters of a variant ('homodyne' or 'heterodyne') in an analysis mode."""
    v = variant_of(variant)
    if v == "heterodyne" or mode is None:
        return PARAM_NAMES[v]
    return MODES[mode][0]


def parse_model_options(options: Mapping[str, Any] | None, variant: str, *,
                        source: str | None = None) -> tuple[str | None, str | None]:
    """(mode, scaling) from the [model] keys besides name; ConfigError names file and key."""
    options = dict(options or {})
    for key in options:
        if key not in MODEL_KEYS:
            raise layouts.unknown_key_error(key, MODEL_KEYS, prefix="model", source=source,
                                            what="an XPCS model (besides name)")
    mode, scaling = options.get("mode"), options.get("scaling")
    if mode is not None:
        if variant_of(variant) != "homodyne":
            raise ConfigError("analysis modes belong to xpcs:homodyne (xpcs:heterodyne has "
                              "one parameter set)", key="model.mode", source=source)
        if mode not in MODES:
            close = difflib.get_close_matches(str(mode), MODES, n=1)
            raise ConfigError(f"expected one of {', '.join(MODES)}, got {mode!r}"
                              + (f" (did you mean {close[0]!r}?)" if close else ""),
                              key="model.mode", source=source)
    if scaling is not None and scaling not in SCALINGS:
        raise ConfigError(f"expected one of {', '.join(SCALINGS)}, got {scaling!r}",
                          key="model.scaling", source=source)
    return mode, scaling


@dataclass(frozen=True)
class XpcsData:
    """One XPCS measurement: c2 (n_phi, n, n), phi (degrees), optional sigma, q, dt, h.

    Row k of c2 is at t_k = t0 + dt k (t0 = dt unless a window starts later).  ``pairs``
    says whether c2[i, j] and c2[j, i] are two measurements ("both") or one ("once": a
    symmetric c2, as beamline files hold); ``diagonal`` what was done with the diagonal
    ("keep", "correct": replaced by the mean of its neighbours, "exclude": not fitted).
    """

    c2: np.ndarray
    phi: np.ndarray
    q: float
    dt: float
    h: float | None = None
    sigma: np.ndarray | None = None
    conditions: dict[str, Any] = field(default_factory=dict)  # scalar root attrs, e.g. temperature
    truth: dict[str, Any] | None = None                       # simulated data: true values
    source: str = ""                                           # file it came from, for messages
    t0: float | None = None
    pairs: str = "both"
    layout: str = "hpcopt"
    diagonal: str = "keep"
    notes: tuple[str, ...] = ()                                # what the [data] selection did

    @property
    def n_phi(self) -> int:
        return int(self.c2.shape[0])

    @property
    def n(self) -> int:
        return int(self.c2.shape[1])

    @property
    def times(self) -> np.ndarray:
        """t_k of the rows, in s."""
        return (self.dt if self.t0 is None else self.t0) + self.dt * np.arange(self.n)


# --------------------------------------------------------------------------- validation
def _problem(c2, phi, sigma, q, dt, h, t0=None) -> str | None:
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
    for what, v, required in (("q", q, True), ("dt", dt, True), ("h", h, False), ("t0", t0, False)):
        if v is None:
            if required:
                return f"missing attribute {what!r}"
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            return f"attribute {what!r} must be a number, got {v!r}"
        if not math.isfinite(float(v)) or float(v) <= 0:
            return f"attribute {what!r} must be a finite positive number, got {v!r}"
    return None


def _symmetric(c2: np.ndarray, sigma: np.ndarray | None) -> bool:
    sym = lambda a: np.array_equal(a, a.transpose(0, 2, 1))  # noqa: E731
    return sym(c2) and (sigma is None or sym(sigma))


def make_data(c2, phi, *, q: float, dt: float, h: float | None = None, sigma=None,
              conditions: Mapping[str, Any] | None = None, truth: Mapping[str, Any] | None = None,
              source: str = "", t0: float | None = None, pairs: str | None = None,
              layout: str = "hpcopt", diagonal: str = "keep", notes: Sequence[str] = ()) -> XpcsData:
    """Validated XpcsData from arrays (ValueError naming the problem; DataError if `source` is set).

    pairs None: "once" for an exactly symmetric c2 (and sigma), otherwise "both".
    """
    problem = _problem(c2, phi, sigma, q, dt, h, t0)
    if problem is not None:
        if source:
            raise DataError(problem, path=source)
        raise ValueError(problem)
    c2 = np.ascontiguousarray(c2, dtype=np.float64)
    sigma = None if sigma is None else np.ascontiguousarray(sigma, dtype=np.float64)
    if pairs is None:
        pairs = "once" if _symmetric(c2, sigma) else "both"
    if pairs not in ("both", "once") or diagonal not in layouts.DIAGONAL_MODES:
        raise ValueError(f"pairs must be 'both' or 'once' and diagonal one of "
                         f"{layouts.DIAGONAL_MODES}, got {pairs!r}, {diagonal!r}")
    return XpcsData(c2=c2, phi=np.ascontiguousarray(phi, dtype=np.float64), q=float(q),
                    dt=float(dt), h=None if h is None else float(h), sigma=sigma,
                    conditions=dict(conditions or {}), truth=None if truth is None else dict(truth),
                    source=source, t0=None if t0 is None else float(t0), pairs=pairs,
                    layout=layout, diagonal=diagonal, notes=tuple(notes))


# --------------------------------------------------------------------------- files
def load_xpcs_h5(path: str | Path, options: layouts.DataOptions | Mapping[str, Any] | None = None,
                 *, source: str | None = None) -> XpcsData:
    """Read and validate an XPCS file in any layout (hpcopt's, APS-U, older APS).

    `options`: the [data] selection (a DataOptions or the raw [data] keys besides path).
    DataError names the file and the problem; ConfigError (file `source`) a [data] key the
    file cannot satisfy.
    """
    if not isinstance(options, layouts.DataOptions):
        options = layouts.parse_data_options(options, source=source)
    raw = layouts.read_file(path, options, source=source)
    conditions = {}
    for k, v in raw.attrs.items():
        if k not in _RESERVED_ATTRS and (value := layouts._attr_scalar(v)) is not None:
            conditions[k] = value
    return make_data(raw.c2, raw.phi, q=raw.q, dt=raw.dt, h=raw.h, sigma=raw.sigma,
                     conditions=conditions, truth=raw.truth, source=str(path), t0=raw.t0,
                     pairs=raw.pairs if raw.layout != "hpcopt" else None, layout=raw.layout,
                     diagonal=raw.diagonal, notes=raw.notes)


def save_xpcs_h5(path: str | Path, data: XpcsData, true_params: Mapping[str, Any] | None = None) -> None:
    """Write `data` in hpcopt's layout; true values (or data.truth) go to a `truth` group."""
    import h5py

    truth = dict(true_params) if true_params is not None else data.truth
    clash = [k for k in data.conditions if k in _RESERVED_ATTRS]
    if clash:
        raise ValueError(f"condition names {clash} clash with the attributes {', '.join(_RESERVED_ATTRS)}")
    with h5py.File(path, "w") as f:
        f.create_dataset("c2", data=data.c2)
        f.create_dataset("phi", data=data.phi)
        if data.sigma is not None:  # usually constant: compresses to almost nothing
            f.create_dataset("sigma", data=data.sigma, compression="gzip", shuffle=True)
        f.attrs["q"] = data.q
        f.attrs["dt"] = data.dt
        if data.h is not None:
            f.attrs["h"] = data.h
        if data.t0 is not None:
            f.attrs["t0"] = data.t0
        for k, v in data.conditions.items():
            f.attrs[k] = v
        if truth:
            g = f.create_group("truth")
            for k, v in truth.items():
                g.attrs[k] = v


# --------------------------------------------------------------------------- fit problem
class XpcsProblem:
    """An XPCS model bound to its data (the FitProblem protocol of hpcopt.models.base).

    ``chi2`` runs the fused compiled kernel (no model array, each pair i < j once);
    ``residuals`` and ``model`` build the full (n_phi, n, n) model.  Both use the
    closed-form contrast and offset (per angle, or one for every angle with scaling
    "constant").  chi2 sums the fitted elements of c2 (docs/models.md): every element when
    both triangles are measurements (pairs "both"), the upper triangle when c2 is symmetric
    (pairs "once"), the diagonal unless excluded.  A model that is not finite gives
    chi2 = inf and non-finite residuals.
    """

    def __init__(self, variant: str, c2, phi, *, q: float, dt: float, h: float | None = None,
                 sigma=None, name: str = "", t0: float | None = None, pairs: str | None = None,
                 fit_diagonal: bool = True, mode: str | None = None, scaling: str | None = None):
        self.variant = variant_of(variant)
        data = make_data(c2, phi, q=q, dt=dt, h=h, sigma=sigma, t0=t0, pairs=pairs,
                         diagonal="keep" if fit_diagonal else "exclude")
        if mode is not None and (self.variant != "homodyne" or mode not in MODES):
            raise ValueError(f"mode must be one of {', '.join(MODES)} (xpcs:homodyne only), "
                             f"got {mode!r}")
        self.mode = mode if self.variant == "homodyne" else None
        self.shear = self.variant == "homodyne" and (mode or "laminar_flow") == "laminar_flow"
        if self.shear and data.h is None:
            raise ValueError("the homodyne model needs the gap h (attribute 'h')")
        default_scaling = MODES[mode][1] if self.mode else "individual"
        self.scaling = scaling or default_scaling
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
        self.data = data
        self.name = name or f"xpcs:{self.variant}"
        self.param_names = param_names_for(self.variant, self.mode)
        self.param_units = {n: PARAM_UNITS.get(n, "") for n in self.param_names}
        fit_diag = data.diagonal != "exclude"
        self._folded = kx.fold_data(data.c2, data.sigma, pairs=data.pairs, diagonal=fit_diag)
        n = data.n
        mask = np.ones((n, n), bool) if data.pairs == "both" else np.triu(np.ones((n, n), bool), 1)
        np.fill_diagonal(mask, fit_diag)
        self._mask = mask                      # the elements of each angle's c2 that chi2 sums
        self.n_points = int(mask.sum()) * data.n_phi
        self.n_nuisance = 2 if self.scaling == "constant" else 2 * data.n_phi
        self._sqrt_w = None if data.sigma is None else 1.0 / data.sigma

    @classmethod
    def from_data(cls, data: XpcsData, variant: str, *, mode: str | None = None,
                  scaling: str | None = None) -> "XpcsProblem":
        """Problem on loaded data; a laminar-flow fit without h is a DataError naming the file."""
        v = variant_of(variant)
        if v == "homodyne" and (mode or "laminar_flow") == "laminar_flow" and data.h is None:
            hint = "" if data.layout == "hpcopt" else " (give it in [data] as h = gap in Å)"
            raise DataError(f"missing attribute 'h' (the gap), needed by the homodyne model in "
                            f"laminar-flow mode{hint}", path=data.source or None)
        problem = cls(v, data.c2, data.phi, q=data.q, dt=data.dt, h=data.h, sigma=data.sigma,
                      t0=data.t0, pairs=data.pairs, fit_diagonal=data.diagonal != "exclude",
                      mode=mode, scaling=scaling,
                      name=f"xpcs:{v}" + (f" {Path(data.source).name}" if data.source else ""))
        problem.data = data  # keep conditions, truth, source and how the diagonal was treated
        return problem

    @classmethod
    def from_file(cls, path: str | Path, variant: str, *, options=None, mode: str | None = None,
                  scaling: str | None = None, source: str | None = None) -> "XpcsProblem":
        """Load an XPCS file (see load_xpcs_h5) and bind the model to it."""
        return cls.from_data(load_xpcs_h5(path, options, source=source), variant, mode=mode,
                             scaling=scaling)

    @property
    def result_attrs(self) -> dict[str, Any]:
        """Root attributes a result file fitted with this problem carries (docs/result-files.md)."""
        return {ATTR_CONVENTION: XPCS_CONVENTION, "xpcs_mode": self.mode or "",
                "xpcs_scaling": self.scaling}

    # -- evaluation ------------------------------------------------------------------------
    def kernel_params(self, p: np.ndarray) -> np.ndarray:
        """The kernel's parameter vector: static modes have no shear (gamma_dot = 0, phi0 = 0)."""
        p = np.asarray(p, dtype=np.float64)
        if self.variant == "homodyne" and not self.shear:
            if p.shape != (3,):
                raise ValueError(f"params must be a vector of 3 values (D0, alpha, D_offset), "
                                 f"got shape {p.shape}")
            return np.concatenate([p, np.zeros(4)])
        return p

    def decay(self, p: np.ndarray) -> np.ndarray:
        """The model with contrast 1 and offset 0, shape (n_phi, n, n)."""
        d = self.data
        if self.variant == "homodyne":
            return kx.homodyne_decay(self.kernel_params(p), d.phi, q=d.q, h=d.h or 1.0, dt=d.dt,
                                     n=d.n, t0=d.t0)
        return kx.heterodyne_decay(p, d.phi, q=d.q, dt=d.dt, n=d.n, t0=d.t0)

    def _fit(self, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        d = self.data
        if self.variant == "homodyne":
            return kx.fit_homodyne(self.kernel_params(p), d.phi, self._folded, q=d.q, h=d.h or 1.0,
                                   dt=d.dt, t0=d.t0, scaling=self.scaling)
        return kx.fit_heterodyne(p, d.phi, self._folded, q=d.q, dt=d.dt, t0=d.t0,
                                 scaling=self.scaling)

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
        contrast, offset = self.contrast_offset(p)
        return offset[:, None, None] + contrast[:, None, None] * decay

    def residuals(self, p: np.ndarray) -> np.ndarray:
        """(c2 - model) / sigma of the fitted elements, flattened (length n_points)."""
        r = self.data.c2 - self.model(p)
        if self._sqrt_w is not None:
            r *= self._sqrt_w
        return r[:, self._mask].ravel()


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
             conditions: Mapping[str, Any] | None = None, t0: float | None = None,
             pairs: str = "both") -> XpcsData:
    """Synthetic c2 from the model plus Gaussian noise of standard deviation `noise`.

    `params` override DEFAULT_PARAMS (units in the module docstring).  pairs "both": the
    noise is independent per matrix element (two measurements of each pair); "once": one
    draw per pair i <= j, mirrored (a symmetric c2, as beamline files hold).  The noise is
    stored as a constant `sigma`; noise = 0 gives exact data without sigma.  Row k is at
    t0 + dt k (t0 default dt).  The true values are in the result's `truth`.
    """
    v = variant_of(variant)
    values = full_params(v, params)
    p = np.array([values[k] for k in PARAM_NAMES[v]])
    phi = np.atleast_1d(np.asarray(phi, dtype=np.float64))
    if v == "homodyne":
        if h is None:
            raise ValueError("the homodyne model needs the gap h")
        decay = kx.homodyne_decay(p, phi, q=q, h=h, dt=dt, n=n, t0=t0)
    else:
        decay = kx.heterodyne_decay(p, phi, q=q, dt=dt, n=n, t0=t0)
    contrast = _per_angle(contrast, phi.shape[0], "contrast")
    offset = _per_angle(offset, phi.shape[0], "offset")
    noise = float(noise)
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    if pairs not in ("both", "once"):
        raise ValueError(f"pairs must be 'both' or 'once', got {pairs!r}")
    c2 = offset[:, None, None] + contrast[:, None, None] * decay
    sigma = None
    if noise > 0:
        eps = np.random.default_rng(seed).normal(0.0, noise, size=c2.shape)
        if pairs == "once":
            eps = np.triu(eps) + np.triu(eps, 1).transpose(0, 2, 1)
        c2 = c2 + eps
        sigma = np.full(c2.shape, noise)
    truth = {"variant": v, **values, "contrast": contrast.tolist(), "offset": offset.tolist(),
             "noise": noise, "seed": int(seed)}
    return make_data(c2, phi, q=q, dt=dt, h=h, sigma=sigma, conditions=conditions, truth=truth,
                     t0=t0, pairs=pairs)


#: how hpcopt/data/xpcs_demo.h5 was made (make_demo_dataset); the shear rates are physical
#: (gap-average convention), about 1/pi of the values the first dataset used
DEMO_SETTINGS: dict[str, Any] = {
    "variant": "homodyne",
    "params": {**DEFAULT_PARAMS["homodyne"], "gamma_dot_0": 3e-5, "gamma_dot_offset": 3e-6},
    "n": 60, "phi": (0.0, 45.0, 90.0), "q": 0.01, "dt": 0.1, "h": 1e6,
    "contrast": (0.30, 0.28, 0.32), "offset": (1.0, 1.01, 0.99), "noise": 0.01, "seed": 20240521,
    "conditions": {"temperature": 298.15, "concentration": 0.08},
}


def make_demo_dataset(path: str | Path = DEMO_FILE) -> XpcsData:
    """Write the bundled homodyne demo dataset (DEMO_SETTINGS) to `path`; return its data."""
    s = dict(DEMO_SETTINGS)
    data = simulate(s.pop("variant"), s.pop("params"), **s)
    save_xpcs_h5(path, data)
    return data


#: how hpcopt/data/xpcs_aps_u_example.h5 was made (make_beamline_example): a laminar-flow
#: homodyne measurement on a 2 q x 4 phi grid, one noise draw per pair, a diagonal biased high
#: (as beamline diagonals are), stored as float32 half matrices without dt or h
BEAMLINE_SETTINGS: dict[str, Any] = {
    "params": {"D0": 15000.0, "alpha": -0.3, "D_offset": 500.0, "gamma_dot_0": 1.5e-4,
               "beta": 0.3, "gamma_dot_offset": 2e-5, "phi0": 20.0},
    "q_values": (0.0040, 0.0054), "phi_values": (0.0, 45.0, 90.0, 135.0),
    "n": 100, "dt": 0.05, "h": 1e6, "contrast": 0.22, "offset": 1.0, "noise": 0.01,
    "diagonal_excess": 0.1, "seed": 20250114,
}


def make_beamline_example(path: str | Path = BEAMLINE_FILE) -> dict[int, np.ndarray]:
    """Write the bundled APS-U-layout example (BEAMLINE_SETTINGS) to `path`; return its maps
    (float64, before storage as float32) by 1-based bin."""
    s = BEAMLINE_SETTINGS
    phis = np.asarray(s["phi_values"])
    maps: dict[int, np.ndarray] = {}
    for qi, q in enumerate(s["q_values"]):
        data = simulate("homodyne", s["params"], n=s["n"], phi=phis, q=q, dt=s["dt"], h=s["h"],
                        contrast=s["contrast"], offset=s["offset"], noise=s["noise"],
                        seed=s["seed"] + qi, pairs="once")
        for pi in range(len(phis)):
            c2 = data.c2[pi].copy()
            c2[np.diag_indices(s["n"])] += s["diagonal_excess"]
            maps[qi * len(phis) + pi + 1] = c2
    layouts.save_aps_u(path, maps, s["q_values"], phis)
    return maps
