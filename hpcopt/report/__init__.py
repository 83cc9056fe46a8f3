"""Post-hoc analysis of result files: `hpcopt report` and the notebook API.

    from hpcopt.report import load
    r = load("study.h5")
    r.table("trials"), r.params(), r.best, r.export("out/"), r.plots("plots/")

Importing this package imports neither MPI nor matplotlib nor Optuna.
"""

from .api import Result, load
from .export import export_all
from .plots import plot_all
from .summary import summarize_file

__all__ = ["load", "Result", "export_all", "plot_all", "summarize_file"]
