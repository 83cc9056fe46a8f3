"""The tempering kind's report hooks: the lowest energy, ladder and swap lines, T_min samples."""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import tables as _tables
from .hooks import Loaded, ReportHooks
from .temper_data import temper_details
from .text import named_columns, num


def temper_params(rows: np.ndarray, names: list[str]) -> np.ndarray:
    """task_id (round), one column per coordinate of the T_min samples, energy."""
    state = rows["state"].reshape(len(rows), -1)
    cols = {n: state[:, i] for i, n in enumerate(names)}
    cols["energy"] = rows["energy"]
    return named_columns(rows["task_id"], cols)


class TemperReport(ReportHooks):
    noun = "rounds"
    section = "temper"
    best_label = "lowest energy"

    def details(self, r: Loaded) -> dict:
        return temper_details(r.f)

    def best(self, r: Loaded) -> dict | None:
        g = r.f.get("best")
        if g is not None and "objective" in g.attrs:
            return super().best(r)
        energies = [rows["best_energy"] for rows in _tables.iter_rows(r.f, "rounds",
                                                                       fields=["best_energy"])]
        e = np.concatenate(energies) if energies else np.zeros(0)
        e = e[np.isfinite(e)]
        return {"params": {}, "objective": float(e.min())} if len(e) else None

    def detail_lines(self, s: dict) -> list[str]:
        t = s["temper"]
        src = " (from the rounds so far)" if t["from_rounds"] else ""
        lines = [f"  problem {t['problem']}; {t['n_replicas']} replicas; {t['rounds_done']} "
                 f"rounds done; {t['n_samples']} T_min samples stored"]
        if t.get("temperatures"):
            lines.append("  temperatures: " + ", ".join(f"{v:.4g}" for v in t["temperatures"]))
        if t["pairs"]:
            lines.append(f"  neighbour swap acceptance{src}:")
            for p in t["pairs"]:
                lines.append(f"    T {p['t_low']:.4g} <-> {p['t_high']:.4g}: "
                             f"{num(p['acceptance'], 3)} of {p['attempted']} attempts")
        if t["round_trips"]:
            trips = t["round_trips"]
            lines.append(f"  round trips T_min -> T_max -> T_min{src}: {sum(trips)} in total; "
                         "per replica " + ", ".join(str(n) for n in trips))
        from ..temper.stats import log_z_lines
        lines += log_z_lines({m: (e["value"], e["error"]) for m, e in t.get("log_z", {}).items()},
                             indent="  ")
        return lines

    def figures(self, r: Loaded) -> list[Callable]:
        from . import plots_temper
        return list(plots_temper.FIGURES)

    def frame_columns(self, r: Loaded, table: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """A continuous problem's sample states under the parameters' names."""
        names = r.table_attrs(table).get("param_names") if table == "samples" else None
        return _tables.flat_columns(rows, {"state": names} if names else None)

    def params(self, r: Loaded, *, start: bool = False) -> np.ndarray:
        names = (r.table_attrs("samples").get("param_names") if "samples" in r.f else None) or []
        if not names:
            raise ValueError(f"{r.path}: this tempering problem's states are not named "
                             "parameters (e.g. Ising spins); use table('samples')['state']")
        return temper_params(_tables.read_table(r.f, "samples"), names)


TEMPER_REPORT = TemperReport()
