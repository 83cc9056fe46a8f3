"""From ``[model] name`` + ``[data]`` to a :class:`FitProblem`.

Model names:
* ``nist:NAME``      one of the 27 NIST StRD formulas (case-insensitive), parameters b1..bk;
                     data: the problem's .dat file or any curve file with matching x columns;
* ``xpcs:homodyne`` / ``xpcs:heterodyne``  (:mod:`hpcopt.models.xpcs`, imported lazily);
                     ``[model]`` takes ``mode`` and ``scaling``, ``[data]`` the selection
                     keys of :mod:`hpcopt.models.xpcs_layouts` (docs/sweep.md);
* ``package.module:function``  a user model ``f(x, params) -> y``; its parameter names
                     are the config's ``[parameters]`` in order.
Errors about the name are ConfigErrors on key ``model.name``; about the data, DataErrors.
Other models take no [model] keys besides name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..imports import is_import_spec, load_callable
from .base import FitProblem

MODEL_KEY = "model.name"
XPCS_VARIANTS = ("homodyne", "heterodyne")


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


def _xpcs_options(detail: str, model_options: Mapping[str, Any] | None, source: str | None):
    from .xpcs import parse_model_options  # lazy: only XPCS runs need it
    return parse_model_options(model_options, detail, source=source)


def _no_model_options(model_options: Mapping[str, Any] | None, model: str,
                      source: str | None) -> None:
    if model_options:
        key = next(iter(model_options))
        raise ConfigError(f"unknown key: {model} takes no [model] keys besides name (mode and "
                          "scaling belong to the XPCS models)", key=f"model.{key}", source=source)


def model_param_names(model: str, configured: Sequence[str] = (), *,
                      source: str | None = None,
                      model_options: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The parameter names `model` needs, in vector order.

    NIST: b1..bk; XPCS: docs/models.md's names (of the analysis mode in `model_options`);
    user models: `configured` (the config's [parameters] keys), which must not be empty.
    A config validator checks that [parameters] covers exactly these.
    """
    kind, detail = _kind(model, source)
    if kind == "nist":
        from .nist import get_model
        return get_model(detail).param_names
    if kind == "xpcs":
        from .xpcs import param_names_for
        mode, _ = _xpcs_options(detail, model_options, source)
        return param_names_for(detail, mode)
    names = tuple(configured)
    if not names:
        raise ConfigError(f"user model {model!r} needs its parameters in [parameters]",
                          key="parameters", source=source)
    return names


def check_param_names(model: str, configured: Sequence[str], *,
                      source: str | None = None,
                      model_options: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """ConfigError (key ``parameters``) unless `configured` names exactly the model's parameters.

    Returns the names in the model's order.
    """
    needed = model_param_names(model, configured, source=source, model_options=model_options)
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
                  param_names: Sequence[str] = (),
                  model_options: Mapping[str, Any] | None = None) -> FitProblem:
    """Bind `model` to the data at `data_path` (relative paths: from `base_dir`).

    `data_options`: the [data] keys besides path; `model_options`: the [model] keys besides
    name (XPCS: mode, scaling).  `param_names` (the config's [parameters] keys in order) is
    needed for user models.  Refuses bad options (ConfigError naming file and key) and bad
    data (DataError naming the file) before any fitting starts.
    """
    from .curve import CurveProblem
    from .data import check_options, load_curve

    kind, detail = _kind(model, source)
    path = Path(data_path)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if kind == "xpcs":
        mode, scaling = _xpcs_options(detail, model_options, source)
        from .xpcs import XpcsProblem  # lazy: only XPCS runs need it
        from .xpcs_layouts import parse_data_options
        options = parse_data_options(data_options, source=source)
        return XpcsProblem.from_file(path, detail, options=options, mode=mode, scaling=scaling,
                                     source=source)
    _no_model_options(model_options, model, source)
    options = check_options(data_options, source=source)
    data = load_curve(path, options)
    if kind == "nist":
        return CurveProblem.for_nist_model(detail, data.x, data.y, data.sigma, path=str(path))
    f = load_callable(detail, key=MODEL_KEY, source=source or "", base_dir=base_dir)
    names = model_param_names(model, param_names, source=source)
    return CurveProblem(data.x, data.y, data.sigma, model=f, param_names=names, name=model)
