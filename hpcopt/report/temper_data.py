"""What a tempering result file says about its ladder, swaps, round trips and log Z.

From the end-of-run tables when the run wrote them, otherwise from the rounds so far;
shared by the tempering report hooks and its figures.
"""

from __future__ import annotations

import math
import tomllib

import h5py
import numpy as np

from ..store import schema
from ..store.reader import attr_str
from . import tables as _tables


def config_value(f: h5py.File, table: str, key: str, default):
    try:
        return tomllib.loads(attr_str(f, schema.ATTR_CONFIG)).get(table, {}).get(key, default)
    except (tomllib.TOMLDecodeError, AttributeError):
        return default


def temper_details(f: h5py.File) -> dict:
    """Ladder, neighbour acceptance, round trips, log Z ratio: from the end-of-run tables when
    written, otherwise from the rounds so far (after burn-in)."""
    from ..temper.stats import LOG_Z_ATTRS
    finished = _tables.FINAL_MARK in f.attrs
    log_z = {method: {"value": float(f.attrs.get(value, math.nan)),
                      "error": float(f.attrs.get(error, math.nan))}
             for method, (value, error) in LOG_Z_ATTRS.items()}
    out: dict = {"rounds_done": 0, "n_replicas": int(f["rounds"].attrs.get("n_replicas", 0)),
                 "problem": attr_str(f["rounds"], "problem"), "from_rounds": not finished,
                 "log_z_ratio": log_z["thermodynamic_integration"]["value"], "log_z": log_z,
                 "n_samples": sum(len(r) for r in _tables.iter_rows(f, "samples",
                                                                     fields=["task_id"]))
                 if "samples" in f else 0}
    if finished:
        pairs = _tables.read_table(f, "pairs")
        reps = _tables.read_table(f, "replicas")
        out["rounds_done"] = int(f.attrs[_tables.FINAL_MARK])
        out["temperatures"] = _tables.decode_attr("temperatures", f.attrs.get("temperatures", "[]"))
        out["pairs"] = [{"t_low": float(p["t_low"]), "t_high": float(p["t_high"]),
                         "acceptance": float(p["acceptance"]), "attempted": int(p["attempted"])}
                        for p in pairs]
        out["round_trips"] = [int(v) for v in reps["round_trips"]]
        out["mean_round_trip"] = [float(v) for v in reps["mean_round_trip"]]
        return out
    fields = [c for c in ("task_id", "slot", "temperature", "swap_attempted", "swap_accepted")
              if c in _tables.columns(f, "rounds")]
    rounds = _tables.read_table(f, "rounds", fields=fields)
    out["rounds_done"] = len(rounds)
    burn_in = int(config_value(f, "temper", "burn_in", 0) or 0)
    after = rounds[rounds["task_id"] >= burn_in]
    temps = []
    if len(rounds):
        t = rounds["temperature"][-1]
        temps = np.sort(t).tolist()
    out["temperatures"] = temps
    if "swap_attempted" in fields and len(after):
        att = after["swap_attempted"].sum(axis=0)
        acc = after["swap_accepted"].sum(axis=0)
        out["pairs"] = [{"t_low": temps[k], "t_high": temps[k + 1],
                         "acceptance": float(acc[k] / att[k]) if att[k] else math.nan,
                         "attempted": int(att[k])} for k in range(len(att))]
    else:
        out["pairs"] = []
    if len(after) and after["slot"].shape[1] > 1:
        from ..temper.stats import round_trips_from_slots
        trips = round_trips_from_slots(after["slot"], int(after["task_id"][0]))
        out["round_trips"] = trips.count.tolist()
        out["mean_round_trip"] = trips.mean_time().tolist()
    else:
        out["round_trips"], out["mean_round_trip"] = [], []
    return out
