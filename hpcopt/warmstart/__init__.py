"""ML warm starts for sweeps: a history of completed fits, a random forest + gradient
boosting predictor of the best parameters from experimental conditions, and a start
design that tries the predicted points first while keeping part of the normal design.

See docs/warmstart.md.  Modules: config ([warmstart] table), history (the HDF5 store),
conditions (conditions of a fit; result files into the history), predictor, starts
(sampling and WarmStartDesign), campaign (what the sweep engine calls).
"""

from ..lazy import lazy_names

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

__getattr__ = lazy_names(__name__, _NAMES)
