"""The 27 NIST StRD nonlinear regression problems: model formulas and .dat parser.

Each problem's model is one of 20 formulas (several problems share one).  A
formula exists twice: a vectorised numpy function ``f(x, b)`` here (residuals,
plots, test references) and a scalar numba kernel in
:mod:`hpcopt.kernels.nist` (inside the compiled chi2 loop), selected by
``NistModel.kind``.  Importing this module does not import numba.

``x`` is 1-D for one predictor and ``(n, 2)`` for Nelson (x1, x2).  Nelson's
response is ``log(y)`` (the file gives ``log[y] = ...``): see
``NistModel.log_response``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError

# --- formulas (numpy references) ------------------------------------------------------------
# Written to evaluate in the same operation order as the numba kernels.


def bennett5(x, b):
    return b[0] * (b[1] + x) ** (-1.0 / b[2])


def exp_rise(x, b):  # BoxBOD, Misra1a
    return b[0] * (1.0 - np.exp(-b[1] * x))


def chwirut(x, b):
    return np.exp(-b[0] * x) / (b[1] + b[2] * x)


def danwood(x, b):
    return b[0] * x ** b[1]


def enso(x, b):
    a = 2.0 * np.pi * x
    return (b[0] + b[1] * np.cos(a / 12.0) + b[2] * np.sin(a / 12.0)
            + b[4] * np.cos(a / b[3]) + b[5] * np.sin(a / b[3])
            + b[7] * np.cos(a / b[6]) + b[8] * np.sin(a / b[6]))


def eckerle4(x, b):
    u = (x - b[2]) / b[1]
    return (b[0] / b[1]) * np.exp(-0.5 * (u * u))


def gauss(x, b):
    u = x - b[3]
    v = x - b[6]
    return (b[0] * np.exp(-b[1] * x) + b[2] * np.exp(-(u * u) / (b[4] * b[4]))
            + b[5] * np.exp(-(v * v) / (b[7] * b[7])))


def rational33(x, b):  # Hahn1, Thurber
    x2 = x * x
    x3 = x2 * x
    return (b[0] + b[1] * x + b[2] * x2 + b[3] * x3) / (1.0 + b[4] * x + b[5] * x2 + b[6] * x3)


def kirby2(x, b):
    x2 = x * x
    return (b[0] + b[1] * x + b[2] * x2) / (1.0 + b[3] * x + b[4] * x2)


def lanczos(x, b):
    return b[0] * np.exp(-b[1] * x) + b[2] * np.exp(-b[3] * x) + b[4] * np.exp(-b[5] * x)


def mgh09(x, b):
    x2 = x * x
    return b[0] * (x2 + x * b[1]) / (x2 + x * b[2] + b[3])


def mgh10(x, b):
    return b[0] * np.exp(b[1] / (x + b[2]))


def mgh17(x, b):
    return b[0] + b[1] * np.exp(-x * b[3]) + b[2] * np.exp(-x * b[4])


def misra1b(x, b):
    return b[0] * (1.0 - (1.0 + b[1] * x / 2.0) ** (-2.0))


def misra1c(x, b):
    return b[0] * (1.0 - (1.0 + 2.0 * b[1] * x) ** (-0.5))


def misra1d(x, b):
    return b[0] * b[1] * x * ((1.0 + b[1] * x) ** (-1.0))


def nelson(x, b):  # models log(y); x = (x1, x2) in the last axis
    return b[0] - b[1] * x[..., 0] * np.exp(-b[2] * x[..., 1])


def rat42(x, b):
    return b[0] / (1.0 + np.exp(b[1] - b[2] * x))


def rat43(x, b):
    return b[0] / ((1.0 + np.exp(b[1] - b[2] * x)) ** (1.0 / b[3]))


def roszman1(x, b):
    return b[0] - b[1] * x - np.arctan(b[2] / (x - b[3])) / np.pi


#: formula kinds in kernel order: ``FORMULAS[kind]`` is the numpy twin of kernel branch `kind`
FORMULAS: tuple[Callable, ...] = (
    bennett5, exp_rise, chwirut, danwood, enso, eckerle4, gauss, rational33, kirby2, lanczos,
    mgh09, mgh10, mgh17, misra1b, misra1c, misra1d, nelson, rat42, rat43, roszman1)
_KIND = {f.__name__: k for k, f in enumerate(FORMULAS)}


@dataclass(frozen=True)
class NistModel:
    """The model of one NIST problem: formula, parameter count, predictors."""

    name: str                 # problem name as NIST spells it, e.g. "Misra1a"
    formula: str              # the formula text of the .dat header
    kind: int                 # kernel branch (index into FORMULAS)
    n_params: int
    n_predictors: int = 1
    log_response: bool = False  # Nelson: the model predicts log(y)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(f"b{i + 1}" for i in range(self.n_params))

    @property
    def function(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The vectorised numpy formula f(x, b)."""
        return FORMULAS[self.kind]

    def __call__(self, x: np.ndarray, b) -> np.ndarray:
        return FORMULAS[self.kind](np.asarray(x, dtype=float), np.asarray(b, dtype=float))

    def jacobian(self, x: np.ndarray, b) -> np.ndarray:
        """d model / d b as an (n, n_params) array, exact to rounding (complex step).

        Every formula is analytic in b, so f(b + i h e_k) = f(b) + i h df/db_k + O(h^2):
        no cancellation, any tiny h works.  All k are evaluated in one broadcast call.
        """
        b = np.asarray(b, dtype=float)
        h = 1e-30 * np.where(b != 0, np.abs(b), 1.0)
        bk = b[:, None] + np.diag(1j * h)           # column k perturbs parameter k
        x = np.asarray(x, dtype=float)
        xb = x[:, None] if x.ndim == 1 else x[:, None, :]
        with np.errstate(all="ignore"):
            return FORMULAS[self.kind](xb, bk).imag / h


def _m(name, fn, n, formula, **kw) -> NistModel:
    return NistModel(name=name, formula=formula, kind=_KIND[fn], n_params=n, **kw)


_RAT33 = "y = (b1+b2*x+b3*x**2+b4*x**3) / (1+b5*x+b6*x**2+b7*x**3)"
_GAUSS = "y = b1*exp(-b2*x) + b3*exp(-(x-b4)**2/b5**2) + b6*exp(-(x-b7)**2/b8**2)"
_LANCZOS = "y = b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)"
_CHWIRUT = "y = exp(-b1*x)/(b2+b3*x)"
_MODELS = (
    _m("Bennett5", "bennett5", 3, "y = b1 * (b2+x)**(-1/b3)"),
    _m("BoxBOD", "exp_rise", 2, "y = b1*(1-exp[-b2*x])"),
    _m("Chwirut1", "chwirut", 3, _CHWIRUT),
    _m("Chwirut2", "chwirut", 3, _CHWIRUT),
    _m("DanWood", "danwood", 2, "y = b1*x**b2"),
    _m("ENSO", "enso", 9, "y = b1 + b2*cos(2*pi*x/12) + b3*sin(2*pi*x/12) + b5*cos(2*pi*x/b4)"
       " + b6*sin(2*pi*x/b4) + b8*cos(2*pi*x/b7) + b9*sin(2*pi*x/b7)"),
    _m("Eckerle4", "eckerle4", 3, "y = (b1/b2) * exp[-0.5*((x-b3)/b2)**2]"),
    _m("Gauss1", "gauss", 8, _GAUSS),
    _m("Gauss2", "gauss", 8, _GAUSS),
    _m("Gauss3", "gauss", 8, _GAUSS),
    _m("Hahn1", "rational33", 7, _RAT33),
    _m("Kirby2", "kirby2", 5, "y = (b1 + b2*x + b3*x**2) / (1 + b4*x + b5*x**2)"),
    _m("Lanczos1", "lanczos", 6, _LANCZOS),
    _m("Lanczos2", "lanczos", 6, _LANCZOS),
    _m("Lanczos3", "lanczos", 6, _LANCZOS),
    _m("MGH09", "mgh09", 4, "y = b1*(x**2+x*b2) / (x**2+x*b3+b4)"),
    _m("MGH10", "mgh10", 3, "y = b1 * exp[b2/(x+b3)]"),
    _m("MGH17", "mgh17", 5, "y = b1 + b2*exp[-x*b4] + b3*exp[-x*b5]"),
    _m("Misra1a", "exp_rise", 2, "y = b1*(1-exp[-b2*x])"),
    _m("Misra1b", "misra1b", 2, "y = b1 * (1-(1+b2*x/2)**(-2))"),
    _m("Misra1c", "misra1c", 2, "y = b1 * (1-(1+2*b2*x)**(-.5))"),
    _m("Misra1d", "misra1d", 2, "y = b1*b2*x*((1+b2*x)**(-1))"),
    _m("Nelson", "nelson", 3, "log[y] = b1 - b2*x1 * exp[-b3*x2]", n_predictors=2,
       log_response=True),
    _m("Rat42", "rat42", 3, "y = b1 / (1+exp[b2-b3*x])"),
    _m("Rat43", "rat43", 4, "y = b1 / ((1+exp[b2-b3*x])**(1/b4))"),
    _m("Roszman1", "roszman1", 4, "y = b1 - b2*x - arctan[b3/(x-b4)]/pi"),
    _m("Thurber", "rational33", 7, _RAT33),
)
#: the 27 problem names as NIST spells them
NIST_NAMES: tuple[str, ...] = tuple(m.name for m in _MODELS)
_BY_LOWER = {m.name.lower(): m for m in _MODELS}


def get_model(name: str) -> NistModel:
    """The model of NIST problem `name` (case-insensitive); KeyError if unknown."""
    try:
        return _BY_LOWER[name.lower()]
    except KeyError:
        raise KeyError(f"unknown NIST problem {name!r}; known: {', '.join(NIST_NAMES)}") from None


def nist_dir() -> Path:
    """The NIST StRD folder of the shared area (``<repo>/../shared/nist``)."""
    return Path(__file__).resolve().parents[3] / "shared" / "nist"


def nist_path(name: str) -> Path:
    """The .dat file of NIST problem `name` (case-insensitive) in :func:`nist_dir`."""
    return nist_dir() / f"{get_model(name).name}.dat"


# --- .dat parser ----------------------------------------------------------------------------

@dataclass(frozen=True)
class NistProblem:
    """One parsed NIST StRD .dat file."""

    name: str
    x: np.ndarray                   # (n,) or (n, 2) for Nelson
    y: np.ndarray                   # the response as in the file (Nelson: y, not log y)
    param_names: tuple[str, ...]
    start1: np.ndarray
    start2: np.ndarray
    certified: np.ndarray
    certified_std: np.ndarray
    certified_rss: float
    difficulty: str                 # "lower" | "average" | "higher"
    n_obs: int
    path: str = ""

    @property
    def model(self) -> NistModel:
        return get_model(self.name)


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PARAM_LINE = re.compile(rf"^\s*b(\d+)\s*=\s*({_NUM})\s+({_NUM})\s+({_NUM})\s+({_NUM})\s*$")
_DATA_LINES = re.compile(r"^\s*Data\s*\(lines\s+(\d+)\s+to\s+(\d+)\s*\)", re.M)
_NAME = re.compile(r"^Dataset Name:\s*(\S+)", re.M)
_RSS = re.compile(rf"^\s*Residual Sum of Squares:\s*({_NUM})", re.M)
_DIFFICULTY = re.compile(r"\b(Lower|Average|Higher)\s+Level of Difficulty", re.I)
_N_OBS = re.compile(r"^\s*Number of Observations:\s*(\d+)", re.M)


def read_nist(path: str | Path) -> NistProblem:
    """Parse a NIST StRD nonlinear regression .dat file (DataError on anything odd)."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="ascii", errors="strict")
    except FileNotFoundError:
        raise DataError("file not found", path=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read NIST file: {exc}", path=where) from None

    def need(rx: re.Pattern, what: str) -> re.Match:
        m = rx.search(text)
        if m is None:
            raise DataError(f"not a NIST StRD file: no {what} in the header", path=where)
        return m

    name = need(_NAME, "'Dataset Name:'").group(1)
    try:
        model = get_model(name)
    except KeyError as exc:
        raise DataError(str(exc.args[0]), path=where) from None
    first, last = (int(v) for v in need(_DATA_LINES, "'Data (lines A to B)'").groups())
    rss = float(need(_RSS, "'Residual Sum of Squares:'").group(1))
    difficulty = need(_DIFFICULTY, "'Level of Difficulty'").group(1).lower()
    n_obs = int(need(_N_OBS, "'Number of Observations:'").group(1))

    lines = text.splitlines()
    params: dict[int, tuple[float, ...]] = {}
    for line in lines[:first - 1]:
        m = _PARAM_LINE.match(line)
        if m:
            params[int(m.group(1))] = tuple(float(v) for v in m.groups()[1:])
    if sorted(params) != list(range(1, model.n_params + 1)):
        raise DataError(f"expected parameter lines b1..b{model.n_params} for {model.name}, "
                        f"found {['b%d' % k for k in sorted(params)]}", path=where)
    table = np.array([params[k] for k in range(1, model.n_params + 1)], dtype=float)

    if not 1 <= first <= last <= len(lines):
        raise DataError(f"data lines {first} to {last} outside the file ({len(lines)} lines)",
                        path=where)
    rows = []
    for lineno in range(first, last + 1):
        fields = lines[lineno - 1].split()
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            raise DataError(f"line {lineno}: not numbers: {lines[lineno - 1].strip()!r}",
                            path=where) from None
        if len(fields) != 1 + model.n_predictors:
            raise DataError(f"line {lineno}: expected {1 + model.n_predictors} columns, "
                            f"got {len(fields)}", path=where)
    data = np.array(rows, dtype=float)
    if data.shape[0] != n_obs:
        raise DataError(f"{data.shape[0]} data lines but the header says {n_obs} observations",
                        path=where)
    if not np.all(np.isfinite(data)):
        raise DataError("data block holds NaN or inf", path=where)
    x = data[:, 1] if model.n_predictors == 1 else data[:, 1:]
    return NistProblem(
        name=model.name, x=np.ascontiguousarray(x), y=np.ascontiguousarray(data[:, 0]),
        param_names=model.param_names, start1=table[:, 0], start2=table[:, 1],
        certified=table[:, 2], certified_std=table[:, 3], certified_rss=rss,
        difficulty=difficulty, n_obs=n_obs, path=where)
