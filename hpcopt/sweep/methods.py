"""The local methods of a sweep, the spellings accepted for them, and the scipy options
each one takes (under scipy's own names).  Pure data and checks, no scipy import: the
config is validated before anything heavy is loaded.

A name is taken case-insensitively, as hpcopt spells it (``nelder-mead``, ``lbfgsb``) or
as scipy does (``Nelder-Mead``, ``L-BFGS-B``, ``Powell``, ``trf``).  The options are
those of scipy.optimize.minimize(method=...) and scipy.optimize.least_squares, so a
scipy user's ``maxiter``, ``xtol`` or ``maxfun`` means what it means in scipy; an option
the chosen method does not take is refused, naming it (scipy would only warn).
"""

from __future__ import annotations

from typing import Any

from ..tomlread import closest

#: the canonical names (what the result file records)
METHODS = ("least_squares", "dogbox", "nelder-mead", "lbfgsb", "powell", "none")
#: the least-squares methods (residuals needed; scipy.optimize.least_squares)
LEAST_SQUARES = ("least_squares", "dogbox")

#: accepted spellings (lower case) -> canonical name
SPELLINGS = {
    "least_squares": "least_squares", "least-squares": "least_squares", "trf": "least_squares",
    "dogbox": "dogbox",
    "nelder-mead": "nelder-mead", "nelder_mead": "nelder-mead", "neldermead": "nelder-mead",
    "lbfgsb": "lbfgsb", "l-bfgs-b": "lbfgsb", "l_bfgs_b": "lbfgsb",
    "powell": "powell",
    "none": "none",
}
#: how scipy spells each method (messages and docs)
SCIPY_NAMES = {"least_squares": "least_squares(method='trf')",
               "dogbox": "least_squares(method='dogbox')", "nelder-mead": "Nelder-Mead",
               "lbfgsb": "L-BFGS-B", "powell": "Powell", "none": "no refinement"}
#: scipy methods hpcopt does not offer, and why
NOT_OFFERED = {
    "lm": "least_squares method 'lm' takes no bounds; use 'trf' (least_squares) or 'dogbox'",
}

INT, TOL, BOOL = "an integer >= 1", "a tolerance > 0", "true or false"
#: scipy's option names per method (scipy.optimize.show_options documents each)
OPTIONS: dict[str, dict[str, str]] = {
    "least_squares": {"ftol": TOL, "xtol": TOL, "gtol": TOL, "max_nfev": INT},
    "dogbox": {"ftol": TOL, "xtol": TOL, "gtol": TOL, "max_nfev": INT},
    "nelder-mead": {"maxiter": INT, "maxfev": INT, "xatol": TOL, "fatol": TOL,
                    "adaptive": BOOL},
    "powell": {"maxiter": INT, "maxfev": INT, "xtol": TOL, "ftol": TOL},
    "lbfgsb": {"maxiter": INT, "maxfun": INT, "ftol": TOL, "gtol": TOL, "maxcor": INT,
               "maxls": INT},
    "none": {},
}
#: every option name any method takes
ALL_OPTIONS = frozenset(name for opts in OPTIONS.values() for name in opts)
#: the option that is each method's evaluation budget: what hpcopt's max_nfev sets
BUDGET = {"least_squares": "max_nfev", "dogbox": "max_nfev", "nelder-mead": "maxfev",
          "powell": "maxfev", "lbfgsb": "maxfun"}
#: least_squares refuses tolerances below the machine epsilon (they disable the test)
EPS = 2.220446049250313e-16


def canonical_method(name: str) -> str:
    """The canonical method for `name` (any accepted spelling); ValueError otherwise."""
    key = name.strip().lower()
    if key in SPELLINGS:
        return SPELLINGS[key]
    if key in NOT_OFFERED:
        raise ValueError(NOT_OFFERED[key])
    hint = closest(key, SPELLINGS)
    names = ", ".join(f"{m} ({SCIPY_NAMES[m]})" if m != "none" else m for m in METHODS)
    raise ValueError(f"unknown local method {name!r}"
                     + (f" (did you mean {SPELLINGS[hint]!r}?)" if hint else "")
                     + f"; expected one of {names}, in any case")


def option_problem(method: str, name: str, value: Any) -> str | None:
    """Why `name = value` is not an option of `method` (None when it is fine)."""
    takes = OPTIONS[method]
    if method == "none":
        return f"method 'none' (no refinement) takes no option {name!r}"
    if name not in takes:
        listed = ", ".join(takes) or "none"
        same = _same_role(method, name)
        return (f"{SCIPY_NAMES[method]} takes no option {name!r}"
                + (f" (its {name!r} is called {same!r})" if same else "")
                + f"; its options: {listed}")
    kind = takes[name]
    if kind == BOOL:
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected {kind}, got {value!r}"
    if kind == INT:
        if not isinstance(value, int) or value < 1:
            return f"expected {kind}, got {value!r}"
        return None
    if not value > 0 or value != value or value == float("inf"):
        return f"expected {kind}, got {value!r}"
    if method in LEAST_SQUARES and value < EPS:
        return f"least_squares needs tolerances >= {EPS:.3g} (machine epsilon), got {value!r}"
    return None


#: options that play the same role under another name in another method
_ROLES = ({"maxfev", "maxfun", "max_nfev"}, {"xtol", "xatol"}, {"ftol", "fatol"})


def _same_role(method: str, name: str) -> str | None:
    for role in _ROLES:
        if name in role:
            return next((o for o in OPTIONS[method] if o in role), None)
    return None


def check_options(method: str, options: dict) -> None:
    """ValueError for the first option `method` does not take (API callers of refine)."""
    for name, value in options.items():
        problem = option_problem(method, name, value)
        if problem:
            raise ValueError(f"{name}: {problem}")
