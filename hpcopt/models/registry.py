"""From ``[model] name`` + ``[data]`` to a :class:`FitProblem`.

Model names:
* ``nist:NAME``      one of the 27 NIST StRD formulas (case-insensitive), parameters b1..bk;
                     data: the problem's .dat file or any curve file with matching x columns;
* ``xpcs:homodyne`` / ``xpcs:heterodyne``  (:mod:`hpcopt.models.xpcs`, imported lazily);
* ``package.module:function``  a user model ``f(x, params) -> y``; its parameter names
                     are the config's ``[parameters]`` in order.
Errors about the name are ConfigErrors on key ``model.name``; about the data, DataErrors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..imports import is_import_spec, load_callable
from .base import FitProblem

MODEL_KEY = "model.name"
XPCS_VARIANTS = ("homodyne", "heterodyne")
# DESIGN.md, "Models": parameter order of the XPCS models
XPCS_PARAM_NAMES = {
    "homodyne": ("D0", "alpha", "D_offset", "gamma_dot_0", "beta", "gamma_dot_offset", "phi0"),
    "heterodyne": ("D0_ref", "alpha_ref", "D_offset_ref", "D0_sample", "alpha_sample",
                   "D_offset_sample", "v0", "beta", "v_offset", "f0", "f1", "f2", "f3", "phi0"),
}


def _kind(model: Any, source: str | None) -> tuple[str, str]:
    """('nist'|'xpcs'|'user', detail) for a model name; ConfigError if it is none of them."""
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"expected a model name ('nist:NAME', 'xpcs:homodyne', "
                          f"'xpcs:heterodyne' or 'package.module:function'), got {model!r}",
                          key=MODEL_KEY, source=source)
    prefix, _, rest = model.partition(":")
    if prefix.lower() == "nist":
        from .nist import NIST_NAMES, get_model
        try:
            return "nist", get_model(rest).name
        except KeyError:
            raise ConfigError(f"unknown NIST problem {rest!r}; expected one of "
                              f"{', '.join(NIST_NAMES)}", key=MODEL_KEY, source=source) from None
    if prefix.lower() == "xpcs":
        if rest.lower() not in XPCS_VARIANTS:
            raise ConfigError(f"unknown XPCS model {rest!r}; expected 'xpcs:homodyne' or "
                              "'xpcs:heterodyne'", key=MODEL_KEY, source=source)
        return "xpcs", rest.lower()
    if is_import_spec(model):
        return "user", model
    raise ConfigError(f"{model!r} is not 'nist:NAME', 'xpcs:homodyne', 'xpcs:heterodyne' or "
                      "'package.module:function'", key=MODEL_KEY, source=source)


def model_param_names(model: str, configured: Sequence[str] = (), *,
                      source: str | None = None) -> tuple[str, ...]:
    """The parameter names `model` needs, in vector order.

    NIST: b1..bk; XPCS: DESIGN.md's names; user models: `configured` (the config's
    [parameters] keys), which must not be empty.  A config validator checks that
    [parameters] covers exactly these.
    """
    kind, detail = _kind(model, source)
    if kind == "nist":
        from .nist import get_model
        return get_model(detail).param_names
    if kind == "xpcs":
        return XPCS_PARAM_NAMES[detail]
    names = tuple(configured)
    if not names:
        raise ConfigError(f"user model {model!r} needs its parameters in [parameters]",
                          key="parameters", source=source)
    return names


def check_param_names(model: str, configured: Sequence[str], *,
                      source: str | None = None) -> tuple[str, ...]:
    """ConfigError (key ``parameters``) unless `configured` names exactly the model's parameters.

    Returns the names in the model's order.
    """
    needed = model_param_names(model, configured, source=source)
    missing = [n for n in needed if n not in configured]
    extra = [n for n in configured if n not in needed]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unknown {', '.join(extra)}")
        raise ConfigError(f"{'; '.join(parts)} (model {model} has parameters "
                          f"{', '.join(needed)})", key="parameters", source=source)
    return needed


def build_problem(model: str, data_path: str | Path, *, data_options: Mapping[str, Any] | None = None,
                  source: str | None = None, base_dir: str | Path | None = None,
                  param_names: Sequence[str] = ()) -> FitProblem:
    """Bind `model` to the data at `data_path` (relative paths: from `base_dir`).

    `param_names` (the config's [parameters] keys in order) is needed for user models.
    Refuses bad data with a DataError naming the file before any fitting starts.
    """
    from .curve import CurveProblem
    from .data import check_options, load_curve

    kind, detail = _kind(model, source)
    path = Path(data_path)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if kind == "xpcs":
        if data_options:
            raise ConfigError("XPCS data takes no options besides 'path' (layout: DESIGN.md)",
                              key=f"data.{next(iter(data_options))}", source=source)
        from .xpcs import XpcsProblem  # lazy: only XPCS runs need it
        return XpcsProblem.from_file(path, detail)
    options = check_options(data_options, source=source)
    data = load_curve(path, options)
    if kind == "nist":
        return CurveProblem.for_nist_model(detail, data.x, data.y, data.sigma, path=str(path))
    f = load_callable(detail, key=MODEL_KEY, source=source or "", base_dir=base_dir)
    names = model_param_names(model, param_names, source=source)
    return CurveProblem(data.x, data.y, data.sigma, model=f, param_names=names, name=model)
