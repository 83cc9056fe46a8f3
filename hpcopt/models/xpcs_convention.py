"""Which xpcs:homodyne convention a result file was fitted with, and the warning for old files.

Kept apart from :mod:`hpcopt.models.xpcs` so that ``hpcopt report`` can check any file
without importing the compiled kernels.
"""

from __future__ import annotations

import tomllib
from typing import Any, Mapping

#: result-file root attribute: the model convention the file was fitted with
ATTR_CONVENTION = "xpcs_convention"
#: 1 (files without the attribute): the first contract, Phi = q h/(2 pi) cos(phi0 - phi) J_G,
#: which made every fitted shear rate pi times the physical one;
#: 2: the gap average, Phi = q h cos(phi0 - phi) J_G / 2 (docs/models.md)
XPCS_CONVENTION = 2


def _fitted_model(config_text: str) -> str | None:
    """The model a stored config fits: [model] name (sweeps) or [problem] model (temper)."""
    try:
        cfg = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError:
        return None
    for table, key in (("model", "name"), ("problem", "model")):
        section = cfg.get(table)
        if isinstance(section, dict) and isinstance(section.get(key), str):
            return section[key]
    return None


def convention_warning(attrs: Mapping[str, Any]) -> str | None:
    """The warning for a result file fitted with the first xpcs:homodyne convention, or None.

    `attrs`: the file's root attributes (its stored ``config`` names the model).  Files
    written since the correction carry ``xpcs_convention`` = 2.
    """
    convention = attrs.get(ATTR_CONVENTION)
    try:
        if convention is not None and int(convention) >= XPCS_CONVENTION:
            return None
    except (TypeError, ValueError):
        pass
    text = attrs.get("config", "")
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    model = _fitted_model(text)
    if model is None or model.strip().lower() != "xpcs:homodyne":
        return None
    return ("fitted with the first xpcs:homodyne convention (shear phase q h/(2 pi) cos(phi0 - "
            "phi) J_G, low by pi): its gamma_dot_0 and gamma_dot_offset (values and "
            "uncertainties) are pi times the physical shear rates; divide them by pi to convert "
            "(D0, alpha, D_offset, beta, phi0 are unchanged), or refit (docs/models.md, "
            "'The first convention')")
