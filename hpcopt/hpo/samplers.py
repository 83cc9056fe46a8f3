"""Optuna samplers and pruners built from ``[hpo]``, seeded from the campaign seed.

Seeds follow the study's history, not the process: before each draw the policy restarts
the sampler's random state with :func:`draw_seed` (campaign seed, `stream`, trial number
or study size, attempt). So a resumed or extended study continues with new points instead
of replaying the stream it started with, every coordinator that joins a study (array
tasks: `stream` is the SLURM array task id) draws its own points, and deterministic mode
gives the same trials however many ranks run them. QMC's scrambled sequence is the
exception: it must be the same in every coordinator (the position in the sequence is
shared through the study), so it uses the seed itself.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import optuna
from optuna.pruners import (BasePruner, HyperbandPruner, MedianPruner, NopPruner,
                            SuccessiveHalvingPruner)
from optuna._transform import _SearchSpaceTransform
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, QMCSampler, RandomSampler, TPESampler
from optuna.samplers._lazy_random_state import LazyRandomState

from ..seeding import seed_word
from .config import HpoSettings


_SAMPLER_DOMAIN = 1000   # spawn-key domain of sampler streams (trials use seeding.TRIAL)
_DRAW_DOMAIN = 1001      # spawn-key domain of per-draw reseeds

#: samplers whose draw needs no trial in the storage: the policy can draw for a trial
#: before creating it, and workers can draw on a read-only replica (see propose.py)
DIRECT_SAMPLERS = ("random", "tpe", "gp", "qmc")
#: of those, the ones a worker can run on its replica (QMC's position is a study counter)
REPLICA_SAMPLERS = ("random", "tpe", "gp")
#: samplers whose next point does not depend on the results told so far: a trial can be
#: queued on a worker ahead of time at no cost to the search (policy.queues_ahead)
HISTORY_FREE_SAMPLERS = ("random", "qmc")


def stream_seed(seed: int, stream: int = 0) -> int:
    """A 32-bit sampler seed for coordinator `stream` of a campaign with `seed`."""
    return seed_word(int(seed), _SAMPLER_DOMAIN, int(stream))


def draw_seed(seed: int, stream: int, key: int, attempt: int = 0, where: int = 0) -> int:
    """A 32-bit seed for one draw: `key` is the trial number (or the study size for a
    trial not yet created), `attempt` counts redraws of a repeated point, `where` tells
    the coordinator's draws (0) from a worker's (1)."""
    return seed_word(int(seed), _DRAW_DOMAIN, int(stream), int(where), int(key), int(attempt))


def _restart(state: LazyRandomState, value: int) -> None:
    state.rng.seed(value)        # in place: building a new RandomState costs far more


def reseed(sampler: BaseSampler, value: int) -> None:
    """Restart the random state of `sampler` (and its fallback sampler) at `value`."""
    if isinstance(sampler, RandomSampler):
        _restart(sampler._rng, value)                              # noqa: SLF001
    elif isinstance(sampler, TPESampler):
        _restart(sampler._rng, value)                              # noqa: SLF001
        reseed(sampler._random_sampler, (value + 1) % 2**32)       # noqa: SLF001
    elif callable(getattr(sampler, "reseed", None)):    # hpcopt.hpo.gp (not imported here:
        sampler.reseed(value)                           # scipy.stats costs seconds)
    else:
        if isinstance(getattr(sampler, "_cma_rng", None), LazyRandomState):
            _restart(sampler._cma_rng, value)                      # noqa: SLF001
        elif isinstance(getattr(sampler, "_rng", None), LazyRandomState) \
                and not isinstance(sampler, QMCSampler):
            _restart(sampler._rng, value)                          # noqa: SLF001  (GPSampler)
        inner = getattr(sampler, "_independent_sampler", None)
        if inner is not None:
            reseed(inner, (value + 1) % 2**32)


class CachedRandomSampler(RandomSampler):
    """Optuna's RandomSampler drawing the same values, with each parameter's search-space
    transform built once instead of for every value (40 % of a draw; the HPO
    coordinator draws every trial of a random study)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self._transforms: dict[tuple[str, BaseDistribution], Any] = {}
        self._plans: dict[tuple, tuple] = {}

    def sample_independent(self, study, trial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        key = (param_name, param_distribution)
        trans = self._transforms.get(key)
        if trans is None:
            trans = self._transforms[key] = _SearchSpaceTransform({param_name: param_distribution})
        values = self._rng.rng.uniform(trans.bounds[:, 0], trans.bounds[:, 1])
        return trans.untransform(values)[param_name]

    def sample_all(self, distributions: dict[str, BaseDistribution]) -> dict[str, Any]:
        """What ``optuna.Trial`` gets for `distributions` suggested in turn (one
        sample_independent each; a single-valued one takes its value and no random
        number), drawn at once: ``RandomState.uniform(low, high)`` is ``low + (high - low)
        * random_sample()`` per column, in column order, so one draw for all columns gives
        the numbers of one call per parameter (uniform's own checks cost 4x the draw)."""
        key = tuple(distributions.items())
        plan = self._plans.get(key)
        if plan is None:
            drawn = {n: d for n, d in distributions.items() if not d.single()}
            trans = _SearchSpaceTransform(drawn) if drawn else None
            low = None if trans is None else trans.bounds[:, 0].copy()
            span = None if trans is None else trans.bounds[:, 1] - low
            if span is not None and not np.all(np.isfinite(span)):
                raise OverflowError("Range exceeds valid bounds")      # as uniform() says
            plan = self._plans[key] = (trans, low, span, {
                n: optuna.distributions._get_single_value(d)       # noqa: SLF001
                for n, d in distributions.items() if d.single()})
        trans, low, span, single = plan
        values = {} if trans is None else trans.untransform(
            low + span * self._rng.rng.random_sample(len(low)))
        return {n: single[n] if n in single else values[n] for n in distributions}


def make_sampler(settings: HpoSettings, seed: int, stream: int = 0) -> BaseSampler:
    """The sampler named by ``settings.sampler``."""
    s = stream_seed(seed, stream)
    name = settings.sampler
    if name == "random":
        return CachedRandomSampler(seed=s)
    if name == "tpe":
        return TPESampler(seed=s, multivariate=settings.multivariate,
                          constant_liar=settings.constant_liar,
                          n_startup_trials=settings.n_startup_trials)
    if name == "qmc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return QMCSampler(qmc_type="sobol", scramble=True, seed=seed % 2**32,
                              independent_sampler=CachedRandomSampler(seed=s),
                              warn_asynchronous_seeding=False, warn_independent_sampling=False)
    if name == "cmaes":
        from optuna.samplers import CmaEsSampler
        return CmaEsSampler(seed=s, n_startup_trials=settings.n_startup_trials,
                            independent_sampler=CachedRandomSampler(seed=s),
                            warn_independent_sampling=False)
    if name == "gp":
        return _gp_sampler(settings, s)
    raise ValueError(f"unknown sampler {name!r}")


def _gp_sampler(settings: HpoSettings, s: int) -> BaseSampler:
    """Optuna's GPSampler when torch is installed, else hpcopt's scikit-learn GP sampler."""
    try:
        import torch  # noqa: F401
    except ImportError:
        from .gp import SklearnGPSampler
        return SklearnGPSampler(seed=s, n_startup_trials=settings.n_startup_trials)
    from optuna.samplers import GPSampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return GPSampler(seed=s, n_startup_trials=settings.n_startup_trials,
                         independent_sampler=CachedRandomSampler(seed=s))


def make_pruner(settings: HpoSettings) -> BasePruner:
    """The pruner named by ``settings.pruner`` with its options."""
    opt = settings.pruner_option
    name = settings.pruner
    if name == "asha":
        return SuccessiveHalvingPruner(
            min_resource=opt("min_resource") or "auto",
            reduction_factor=opt("reduction_factor") or 4,
            min_early_stopping_rate=opt("min_early_stopping_rate"),
            bootstrap_count=opt("bootstrap_count"))
    if name == "hyperband":
        min_resource = opt("min_resource")
        return HyperbandPruner(
            min_resource=1 if min_resource in (None, "auto") else min_resource,
            max_resource=opt("max_resource"),
            reduction_factor=opt("reduction_factor") or 3,
            bootstrap_count=opt("bootstrap_count"))
    if name == "median":
        return MedianPruner(n_startup_trials=opt("pruner_startup_trials"),
                            n_warmup_steps=opt("n_warmup_steps"),
                            interval_steps=opt("interval_steps"),
                            n_min_trials=opt("n_min_trials"))
    if name == "none":
        return NopPruner()
    raise ValueError(f"unknown pruner {name!r}")
