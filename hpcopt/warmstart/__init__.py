"""ML warm starts for sweeps: a history of completed fits, a random forest + gradient
boosting predictor of the best parameters from experimental conditions, and a start
design that tries the predicted points first while keeping part of the normal design.

See docs/warmstart.md.  Modules: config ([warmstart] table), history (the HDF5 store),
conditions (conditions of a fit; result files into the history), predictor, starts
(sampling and WarmStartDesign), campaign (what the sweep engine calls).
"""

from importlib import import_module

# the names of the package, imported from their modules on first use (PEP 562): importing
# the package alone loads none of its modules
_NAMES = {
    "WarmPlan": ".campaign",
    "plan_warm_starts": ".campaign",
    "record_result": ".campaign",
    "stored_points": ".campaign",
    "warm_starts": ".campaign",
    "add_result_file": ".conditions",
    "data_conditions": ".conditions",
    "fit_conditions": ".conditions",
    "WarmStartConfig": ".config",
    "parse_warmstart": ".config",
    "History": ".history",
    "add_fit": ".history",
    "load_history": ".history",
    "read_records": ".history",
    "EnsemblePredictor": ".predictor",
    "ParamAxes": ".predictor",
    "Prediction": ".predictor",
    "predict": ".predictor",
    "WarmStartDesign": ".starts",
    "combine": ".starts",
    "sample_starts": ".starts",
}
__all__ = list(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(import_module(_NAMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
