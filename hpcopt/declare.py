"""Objectives that declare the parameter names they take, so a misspelt name in [space]
is refused when the config is validated (exit 2) instead of being silently ignored.

    from hpcopt.declare import takes

    @takes(required=("x", "y"), optional=("noise",))
    def my_objective(params): ...

The built-in objectives (hpcopt.toys.objectives) are declared this way; any user objective
may be too.
"""

from __future__ import annotations

import difflib
import functools


def takes(required: tuple[str, ...] = (), optional: tuple[str, ...] = ()):
    """Declare the parameter names a built-in objective takes (``func.hpcopt_params``);
    calls with other names raise ValueError."""
    def mark(func):
        @functools.wraps(func)
        def checked(params, *args, **kwargs):
            problem = params_problem(checked, params)
            if problem:
                raise ValueError(f"{func.__name__}: {problem}")
            return func(params, *args, **kwargs)
        checked.hpcopt_params = (tuple(required), tuple(optional))
        return checked
    return mark


def params_problem(func, names) -> str | None:
    """What is wrong with parameter `names` for a built-in objective `func`, or None."""
    required, optional = func.hpcopt_params
    known = set(required) | set(optional)
    unknown = [n for n in names if n not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}{hint}; it takes "
                f"{', '.join(sorted(known, key=lambda n: (n not in required, n)))}")
    missing = [n for n in required if n not in names]
    if missing:
        return f"missing parameter{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}"
    return None
