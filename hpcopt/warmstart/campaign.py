"""What a sweep calls: plan the warm starts (rank 0, before the farm) and record the fit.

    plan = plan_warm_starts(ws, model=..., specs=design.specs, conditions=..., seed=...)
    design = WarmStartDesign(design, plan.points, ws.design_fraction)   # every rank
    ... the sweep runs ...
    record_result(ws, result_path)                                      # rank 0, at the end

No MPI here: rank 0 plans and broadcasts ``plan.points`` (small), every rank builds
the same WarmStartDesign.  The planned points are stored in the result file so that
``--resume`` reuses them even if the history changed meanwhile.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .conditions import ATTR_CONDITIONS, add_result_file, clean_conditions
from .config import WarmStartConfig
from .history import load_history
from .predictor import Prediction, predict
from .starts import sample_starts

log = logging.getLogger("hpcopt")

#: result-file root attr describing the plan (JSON), and the dataset of planned points
ATTR_WARMSTART = "warmstart"
DATASET_POINTS = "warm_starts"


@dataclass(frozen=True)
class WarmPlan:
    """Warm start points (possibly none) and why."""

    points: np.ndarray          # (k, n_params); (0, n_params) = use the normal design
    prediction: Prediction
    conditions: dict[str, Any]  # the fit's conditions (data file + config)

    @property
    def used(self) -> bool:
        return len(self.points) > 0

    def attrs(self) -> dict[str, str]:
        """Root attrs for the result file: ``conditions`` and ``warmstart`` (JSON text)."""
        return {ATTR_CONDITIONS: json.dumps(clean_conditions(self.conditions)),
                ATTR_WARMSTART: json.dumps({**self.prediction.summary(),
                                            "n_starts": int(len(self.points))})}

    def message(self) -> str:
        """One log line."""
        p = self.prediction
        if self.used:
            return (f"warm starts: {len(self.points)} predicted starts from {p.n_history} "
                    f"fits (conditions {', '.join(p.features)}; uncertainty "
                    f"{p.uncertainty:.3g} of the ranges)")
        return f"warm starts: not used ({p.reason}); normal start design"


def plan_warm_starts(ws: WarmStartConfig, *, model: str, specs: Sequence,
                     conditions: Mapping[str, Any], seed: int) -> WarmPlan:
    """Predict starts for a fit of `model` under `conditions` (rank 0; reads the history).

    `specs` are the campaign's ParamSpecs in parameter-vector order; `seed` the
    campaign seed (``ws.seed`` overrides it).  Never raises for a missing or small
    history: the plan then has no points and says why.
    """
    names = tuple(s.name for s in specs)
    seed = int(ws.seed if ws.seed is not None else seed)
    conditions = dict(conditions)
    if not ws.enabled:
        pred = Prediction(False, "[warmstart] enabled = false", None, None, None, float("nan"), 0)
        return WarmPlan(np.zeros((0, len(names))), pred, conditions)
    history = load_history(ws.history, model, names)
    pred = predict(history, conditions, specs, min_history=ws.min_history,
                   confidence_threshold=ws.confidence_threshold, range_margin=ws.range_margin,
                   n_trees=ws.n_trees, n_boost=ws.n_boost, trend=ws.trend, seed=seed)
    points = sample_starts(pred, specs, ws.n_starts, seed=seed, spread=ws.spread)
    return WarmPlan(points, pred, conditions)


def warm_starts(ws: WarmStartConfig, conditions: Mapping[str, Any], specs: Sequence, *,
                model: str, seed: int) -> np.ndarray:
    """Just the (k, n_params) warm starts ((0, n_params) when the prediction is not used)."""
    return plan_warm_starts(ws, model=model, specs=specs, conditions=conditions, seed=seed).points


def stored_points(result_file, n_params: int) -> np.ndarray | None:
    """The planned warm starts of an open result file (h5py.File), for ``--resume``; None
    if the file has none recorded."""
    if DATASET_POINTS not in result_file:
        return None
    return np.asarray(result_file[DATASET_POINTS][()], dtype=np.float64).reshape(-1, n_params)


def record_result(ws: WarmStartConfig, result_path: str | Path) -> int | None:
    """Add a completed sweep's best fit to the history if ``ws.record``; the record id.

    A failure to record is logged, not raised: the campaign itself succeeded.
    """
    if not (ws.enabled and ws.record):
        return None
    try:
        rid = add_result_file(ws.history, result_path, conditions=ws.conditions)
    except Exception as exc:  # noqa: BLE001 - the fit is done; the history is a bonus
        log.warning(f"warm starts: could not add {result_path} to {ws.history}: {exc}")
        return None
    log.info(f"warm starts: fit recorded in {ws.history} (record {rid})")
    return rid
