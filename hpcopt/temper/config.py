"""The [temper] and [problem] tables of a tempering config, as frozen dataclasses.

Everything is validated here (unknown keys, types, ranges, list lengths) so a bad
config stops on rank 0 with one message naming the file and the key.  The common
tables ([output], [run]) belong to the command driver.

    [temper]
    replicas = 6              # or temperatures = [1.0, 1.5, ...] (strictly increasing)
    t_min = 1.0
    t_max = 20.0
    ladder = "geometric"      # geometric | adaptive
    exchange_interval = 50    # Metropolis steps (Ising: lattice sweeps) per replica per round
    rounds = 100
    thin = 1                  # store a T_min sample every `thin` rounds after burn-in
    burn_in = 0               # rounds left out of samples and statistics
    adapt_rounds = ...        # adaptive ladder: rounds that adapt (<= burn_in, the default)
    adapt_lag = 100.0         # adaptive ladder: rate kappa(t) = 1 / (adapt_time * (1 + t / adapt_lag))
    adapt_time = 10.0

    [problem]                 # one of:
    name = "ising"            #   L = 16
    name = "gaussian-mixture" #   dim = 2, modes = 2, separation = 10.0 (on axis 0), or
                              #   centers = [[...], ...]; weights = [...], sigma = 1.0
    name = "rastrigin"        #   dim = 2, A = 10.0 (bounds +-5.12, random start)
    function = "pkg.mod:f"    #   energy f(x: ndarray) -> float; x0 = [...] required, names = [...]
    model = "nist:Misra1a"    #   fit posterior, energy chi2/2; data = "path", x0 required
    # continuous problems also take: x0, step (number or list; required for function/model),
    # lower, upper (number or list), boundary = "reflect" | "reject",
    # step_scaling = "fixed" | "sqrt-t" (step * sqrt(T / T_min) at temperature T)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..imports import load_callable
from ..tomlread import Table
from .ladder import check_ladder, geometric_ladder

LADDER_KINDS = ("geometric", "adaptive")
# sizes beyond these are typos, not campaigns (each becomes memory or a table row)
MAX_REPLICAS = 100_000
MAX_ROUNDS = 10_000_000
MAX_DIM = 100_000
MAX_MODES = 10_000
BUILTIN_PROBLEMS = ("ising", "gaussian-mixture", "rastrigin")
BOUNDARIES = ("reflect", "reject")
STEP_SCALINGS = ("fixed", "sqrt-t")


@dataclass(frozen=True)
class LadderSpec:
    """Initial slot temperatures (slot 0 coldest) and how they may adapt."""

    kind: str                           # "geometric" | "explicit" | "adaptive"
    temperatures: tuple[float, ...]
    adapt_rounds: int = 0               # adaptive: rounds 0..adapt_rounds-1 adapt, then frozen
    adapt_lag: float = 100.0
    adapt_time: float = 10.0


@dataclass(frozen=True)
class MoveSpec:
    """Random-walk Metropolis proposal of a continuous problem."""

    x0: tuple[float, ...] | None        # None: the problem's own start (see problems.py)
    step: tuple[float, ...]             # Gaussian proposal scale per parameter
    lower: tuple[float, ...]            # -inf where unbounded
    upper: tuple[float, ...]            # +inf where unbounded
    boundary: str = "reflect"           # reflect proposals at bounds, or reject them
    step_scaling: str = "fixed"         # "sqrt-t": step * sqrt(T / T_min) at temperature T


@dataclass(frozen=True)
class IsingSpec:
    L: int
    name: str = "ising"


@dataclass(frozen=True)
class GaussianMixtureSpec:
    centers: tuple[tuple[float, ...], ...]
    weights: tuple[float, ...]          # normalised
    sigma: float
    moves: MoveSpec
    name: str = "gaussian-mixture"


@dataclass(frozen=True)
class RastriginSpec:
    dim: int
    A: float
    moves: MoveSpec
    name: str = "rastrigin"


@dataclass(frozen=True)
class FunctionSpec:
    function: str                       # "package.module:function", energy(x: ndarray) -> float
    names: tuple[str, ...]
    moves: MoveSpec
    base_dir: str | None = None
    name: str = "function"


@dataclass(frozen=True)
class FitSpec:
    """Posterior of a fit: energy = chi2 / 2 of `model` on the data at `data`."""

    model: str
    data: str | None
    moves: MoveSpec
    base_dir: str | None = None
    name: str = "fit"
    names: tuple[str, ...] = ()     # parameter names: needed for user models f(x, params)


ProblemSpec = IsingSpec | GaussianMixtureSpec | RastriginSpec | FunctionSpec | FitSpec


@dataclass(frozen=True)
class TemperConfig:
    n_replicas: int
    ladder: LadderSpec
    exchange_interval: int
    rounds: int
    thin: int
    burn_in: int
    problem: ProblemSpec
    source: str = ""


def parse_temper_config(root: Table, source: str, base_dir: str | Path | None = None) -> TemperConfig:
    """Read and validate [temper] and [problem] of a config root (other tables untouched)."""
    base = str(base_dir) if base_dir is not None else None
    problem = _parse_problem(root.table("problem"), base)
    t = root.table("temper")
    ladder, n_replicas = _parse_ladder(t)
    rounds = t.int("rounds", min=1, max=MAX_ROUNDS)
    exchange_interval = t.int("exchange_interval", 100, min=1, max=10**9)
    thin = t.int("thin", 1, min=1)
    burn_in = t.int("burn_in", 0, min=0)
    if burn_in >= rounds:
        raise t.error(f"must be smaller than temper.rounds ({rounds}), got {burn_in}", "burn_in")
    if ladder.kind == "adaptive":
        if burn_in == 0:
            raise t.error("ladder = 'adaptive' adapts during burn-in and then freezes: set "
                          "temper.burn_in > 0", "burn_in")
        # samples and statistics (after burn-in) always come from the frozen ladder
        adapt_rounds = t.int("adapt_rounds", burn_in, min=1, max=burn_in)
        ladder = LadderSpec("adaptive", ladder.temperatures, adapt_rounds,
                            t.float("adapt_lag", 100.0, positive=True),
                            t.float("adapt_time", 10.0, positive=True))
    else:
        for key in ("adapt_rounds", "adapt_lag", "adapt_time"):
            if key in t:
                raise t.error("only used with ladder = 'adaptive'", key)
    t.finish()
    return TemperConfig(n_replicas, ladder, exchange_interval, rounds, thin, burn_in, problem, source)


def _capped_list(t: Table, key: str, cap: int, what: str) -> None:
    """Refuse a list longer than `cap` before reading its values (each value becomes work)."""
    raw = t.raw(key, None)
    if isinstance(raw, list) and len(raw) > cap:
        raise t.error(f"has {len(raw):,} values; at most {cap:,} {what} are allowed", key)


def _parse_ladder(t: Table) -> tuple[LadderSpec, int]:
    kind = t.str("ladder", "geometric", choices=LADDER_KINDS)
    if "temperatures" in t:
        for key in ("t_min", "t_max"):
            if key in t:
                raise t.error("give either temper.temperatures or t_min/t_max, not both", key)
        _capped_list(t, "temperatures", MAX_REPLICAS, "temperatures (one replica each)")
        temps = t.float_list("temperatures")
        for i, (a, b) in enumerate(zip(temps, temps[1:])):
            if not b > a:
                raise t.error(f"must be strictly increasing, got {a!r} then {b!r}",
                              f"temperatures[{i + 1}]")
        if not temps[0] > 0:
            raise t.error(f"temperatures must be > 0, got {temps[0]!r}", "temperatures[0]")
        n = t.int("replicas", len(temps), min=1, max=MAX_REPLICAS)
        if n != len(temps):
            raise t.error(f"is {n} but temper.temperatures has {len(temps)} values", "replicas")
        return LadderSpec("adaptive" if kind == "adaptive" else "explicit", tuple(temps)), n
    n = t.int("replicas", min=1, max=MAX_REPLICAS)
    t_min = t.float("t_min", 1.0, positive=True)
    if n == 1:
        t_max = t.float("t_max", t_min, positive=True)
        if t_max != t_min:
            raise t.error("a single replica runs at t_min: t_max must equal t_min or be left out",
                          "t_max")
    else:
        t_max = t.float("t_max", positive=True)
        if not t_max > t_min:
            raise t.error(f"must be greater than temper.t_min ({t_min!r}), got {t_max!r}", "t_max")
    try:
        temps = check_ladder(geometric_ladder(t_min, t_max, n))
    except ValueError:
        raise t.error(f"a geometric ladder of {n} temperatures from {t_min!r} to {t_max!r} "
                      "is not strictly increasing in double precision", "t_max") from None
    return LadderSpec(kind, tuple(temps.tolist())), n


# -- [problem] ---------------------------------------------------------------------------------

def _parse_problem(p: Table, base_dir: str | None) -> ProblemSpec:
    given = [k for k in ("name", "function", "model") if k in p]
    if len(given) != 1:
        problem = ("missing: set one of name (ising | gaussian-mixture | rastrigin), "
                   "function = 'package.module:function' or model (a fit posterior)") if not given \
            else f"give only one of {', '.join(given)}"
        raise p.error(problem, None if not given else given[1])
    if "name" in p:
        name = p.str("name", choices=BUILTIN_PROBLEMS)
        spec = {"ising": _ising, "gaussian-mixture": _mixture, "rastrigin": _rastrigin}[name](p)
    elif "function" in p:
        spec_text = p.str("function")
        load_callable(spec_text, key=p.path("function"), source=p.source, base_dir=base_dir)
        _capped_list(p, "x0", MAX_DIM, "parameters")
        x0 = p.float_list("x0")
        names = _names(p, len(x0))
        spec = FunctionSpec(spec_text, names, _moves(p, len(x0), x0_required=True), base_dir)
    else:
        model = p.str("model")
        path = Path(p.str("data"))
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        _capped_list(p, "x0", MAX_DIM, "parameters")
        x0 = p.float_list("x0")
        names = _names(p, len(x0))        # user models f(x, params) need names; others ignore
        spec = FitSpec(model, str(path), _moves(p, len(x0), x0_required=True), base_dir,
                       names=names)
    p.finish()
    return spec


def _ising(p: Table) -> IsingSpec:
    return IsingSpec(p.int("L", 16, min=2, max=4096))


def _mixture(p: Table) -> GaussianMixtureSpec:
    sigma = p.float("sigma", 1.0, positive=True)
    if not 0 < sigma * sigma < math.inf:
        raise p.error(f"sigma**2 must be a positive finite number, got sigma = {sigma!r}", "sigma")
    if "centers" in p:
        for key in ("modes", "separation", "dim"):
            if key in p:
                raise p.error("give either centers or modes/separation/dim", key)
        _capped_list(p, "centers", MAX_MODES, "modes")
        raw = p.raw("centers")
        if not isinstance(raw, list) or not raw or not all(isinstance(c, list) and c for c in raw):
            raise p.error("expected a list of coordinate lists, e.g. [[-5.0, 0.0], [5.0, 0.0]]",
                          "centers")
        centers = [Table({"c": c}, p.path(f"centers[{i}]"), p.source).float_list("c")
                   for i, c in enumerate(raw)]
        dim = len(centers[0])
        if any(len(c) != dim for c in centers):
            raise p.error("all centers need the same number of coordinates", "centers")
    else:
        modes = p.int("modes", 2, min=1, max=MAX_MODES)
        dim = p.int("dim", 2, min=1, max=MAX_DIM)
        separation = p.float("separation", 10.0, positive=True)
        # modes on the first axis, `separation` apart, centred on the origin
        centers = [[(k - (modes - 1) / 2) * separation] + [0.0] * (dim - 1) for k in range(modes)]
    weights = p.float_list("weights", [1.0] * len(centers))
    if len(weights) != len(centers):
        raise p.error(f"expected {len(centers)} values (one per mode), got {len(weights)}", "weights")
    if not all(w > 0 for w in weights):
        raise p.error("weights must be > 0", "weights")
    total = math.fsum(weights)
    moves = _moves(p, dim, default_step=sigma, default_x0=centers[0])
    return GaussianMixtureSpec(tuple(map(tuple, centers)), tuple(w / total for w in weights),
                               sigma, moves)


def _rastrigin(p: Table) -> RastriginSpec:
    dim = p.int("dim", 2, min=1, max=MAX_DIM)
    A = p.float("A", 10.0, positive=True, max=1e100)
    moves = _moves(p, dim, default_step=0.5, default_bounds=(-5.12, 5.12))
    return RastriginSpec(dim, A, moves)


def _names(p: Table, dim: int) -> tuple[str, ...]:
    raw = p.raw("names", None)
    if raw is None:
        return tuple(f"x{i}" for i in range(dim))
    if (not isinstance(raw, list) or len(raw) != dim or not all(isinstance(n, str) for n in raw)
            or len(set(raw)) != dim):
        raise p.error(f"expected {dim} distinct strings (one per entry of x0)", "names")
    return tuple(raw)


def _vector(p: Table, key: str, dim: int, default):
    """A list of `dim` numbers, or one number for all (returned as a tuple)."""
    raw = p.raw(key, None)
    if raw is None:
        return default
    if isinstance(raw, list):
        values = p.float_list(key)
        if len(values) != dim:
            raise p.error(f"expected {dim} values (one per parameter), got {len(values)}", key)
        return tuple(values)
    return (p.float(key),) * dim


def _moves(p: Table, dim: int, *, x0_required: bool = False, default_step: float | None = None,
           default_x0=None, default_bounds=(-math.inf, math.inf)) -> MoveSpec:
    if x0_required:
        x0 = tuple(p.float_list("x0"))
    else:
        x0 = _vector(p, "x0", dim, None if default_x0 is None else tuple(default_x0))
        if x0 is not None and "x0" in p and not isinstance(p.raw("x0"), list):
            raise p.error(f"expected a list of {dim} numbers", "x0")
    step = _vector(p, "step", dim, None if default_step is None else (default_step,) * dim)
    if step is None:
        raise p.error("missing required key (proposal scale: one number or one per parameter)",
                      "step")
    if not all(s > 0 for s in step):
        raise p.error("proposal scales must be > 0", "step")
    lower = _vector(p, "lower", dim, (default_bounds[0],) * dim)
    upper = _vector(p, "upper", dim, (default_bounds[1],) * dim)
    for i, (lo, hi) in enumerate(zip(lower, upper)):
        if not hi > lo:
            raise p.error(f"must be greater than lower ({lo!r}) for parameter {i}, got {hi!r}",
                          "upper")
    if x0 is not None:
        for i, (lo, v, hi) in enumerate(zip(lower, x0, upper)):
            if not lo <= v <= hi:
                raise p.error(f"{v!r} is outside the bounds [{lo!r}, {hi!r}]", f"x0[{i}]")
    boundary = p.str("boundary", "reflect", choices=BOUNDARIES)
    scaling = p.str("step_scaling", "fixed", choices=STEP_SCALINGS)
    return MoveSpec(x0, step, lower, upper, boundary, scaling)
