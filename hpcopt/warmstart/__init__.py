"""ML warm starts for sweeps: a history of completed fits, a random forest + gradient
boosting predictor of the best parameters from experimental conditions, and a start
design that tries the predicted points first while keeping part of the normal design.

See docs/warmstart.md.  Modules: config ([warmstart] table), history (the HDF5 store),
conditions (conditions of a fit; result files into the history), predictor, starts
(sampling and WarmStartDesign), campaign (what the sweep engine calls).
"""

from .campaign import WarmPlan, plan_warm_starts, record_result, stored_points, warm_starts
from .conditions import add_result_file, data_conditions, fit_conditions
from .config import WarmStartConfig, parse_warmstart
from .history import History, add_fit, load_history, read_records
from .predictor import EnsemblePredictor, ParamAxes, Prediction, predict
from .starts import WarmStartDesign, combine, sample_starts

__all__ = ["WarmPlan", "plan_warm_starts", "record_result", "stored_points", "warm_starts",
           "add_result_file", "data_conditions", "fit_conditions", "WarmStartConfig",
           "parse_warmstart", "History", "add_fit", "load_history", "read_records",
           "EnsemblePredictor", "ParamAxes", "Prediction", "predict", "WarmStartDesign",
           "combine", "sample_starts"]
