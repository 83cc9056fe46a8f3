"""Post-hoc analysis of result files: `hpcopt report` and the notebook API.

    from hpcopt.report import load
    r = load("study.h5")
    r.table("trials"), r.params(), r.best, r.export("out/"), r.plots("plots/")

Importing this package imports neither MPI nor matplotlib nor Optuna, and nothing of its
modules until a name below is used (so campaign code can import report helpers freely).
"""

from ..lazy import lazy_names

_NAMES = {"load": ".api", "Result": ".api", "export_all": ".export", "plot_all": ".plots",
          "summarize_file": ".summary"}
__all__ = list(_NAMES)

__getattr__ = lazy_names(__name__, _NAMES)
