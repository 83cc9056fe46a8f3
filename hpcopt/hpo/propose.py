"""Drawing a trial's parameters without a trial in the storage.

:func:`draw` runs a sampler the way ``optuna.Trial`` does (relative search space, relative
sample, then independent samples for the rest) but for a trial that does not exist yet.
The policy uses it to draw before it creates the trial (one storage operation per trial
instead of one per parameter), and worker ranks use it on their own read-only replica
of the journal (:class:`WorkerProposer`), so that a model-based sampler (TPE, GP) runs on
the workers and the coordinator only orders storage writes: a worker draws the next
point in a thread while its trial runs and returns it with the result; the coordinator
starts the next trial from it (see docs/hpo.md, "Where the sampler runs").
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any

import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution,
                                  FloatDistribution, IntDistribution)
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..mpi.runtime import stop_requested
from .config import HpoSettings
from .samplers import CachedRandomSampler, make_sampler, reseed
from .space import SearchSpace

log = logging.getLogger(__name__)


class _DrawView:
    """The study's storage as a sampler sees it while drawing for a trial that does not
    exist: reads pass through; TPE's constant-liar note about the trial's relative params
    (a trial system attribute) has no trial to go to and is dropped."""

    def __init__(self, storage: BaseStorage):
        self._storage = storage

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if trial_id >= 0:
            self._storage.set_trial_system_attr(trial_id, key, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


def draw_study(study: optuna.Study, sampler: BaseSampler) -> optuna.Study:
    """A Study object over `study`'s storage for drawing with `sampler` (see _DrawView)."""
    return optuna.Study(study.study_name, storage=_DrawView(study._storage),  # noqa: SLF001
                        sampler=sampler, pruner=study.pruner)


def _blank_trial() -> FrozenTrial:
    return FrozenTrial(number=-1, trial_id=-1, state=TrialState.RUNNING, value=None,
                       values=None, datetime_start=_dt.datetime.now(), datetime_complete=None,
                       params={}, distributions={}, user_attrs={}, system_attrs={},
                       intermediate_values={})


class _DrawTrial:
    """What ``SearchSpace.suggest`` needs of a trial, answered by the sampler as
    ``optuna.Trial._suggest`` does, without a trial in the storage."""

    def __init__(self, view: optuna.Study):
        self.view, self.frozen = view, _blank_trial()
        sampler = view.sampler
        sampler.before_trial(view, self.frozen)
        self.space = sampler.infer_relative_search_space(view, self.frozen)
        self.relative = sampler.sample_relative(view, self.frozen, self.space) \
            if self.space else {}

    def _suggest(self, name: str, dist: BaseDistribution) -> Any:
        if dist.single():
            value = optuna.distributions._get_single_value(dist)   # noqa: SLF001
        elif name in self.relative and name in self.space and _fits(dist, self.relative[name]):
            value = self.relative[name]
        else:
            value = self.view.sampler.sample_independent(self.view, self.frozen, name, dist)
        self.frozen.params[name] = value                 # later draws of this trial see it
        self.frozen.distributions[name] = dist
        return value

    def suggest_float(self, name, low, high, *, step=None, log=False):
        return self._suggest(name, FloatDistribution(low, high, log=log, step=step))

    def suggest_int(self, name, low, high, *, step=1, log=False):
        return self._suggest(name, IntDistribution(low, high, log=log, step=step))

    def suggest_categorical(self, name, choices):
        return self._suggest(name, CategoricalDistribution(choices))


def draw(view: optuna.Study, space: SearchSpace, seed: int) -> dict[str, Any]:
    """Optuna params (external values) of one new trial over `space`, drawn by
    ``view.sampler`` restarted at `seed`."""
    reseed(view.sampler, seed)
    static = (space.static_distributions() if isinstance(view.sampler, CachedRandomSampler)
              else None)
    if static is not None:
        values = view.sampler.sample_all(static)     # history-free: no trial, no study
        return {name: dist.to_external_repr(dist.to_internal_repr(values[name]))
                for name, dist in static.items()}
    view._thread_local.cached_all_trials = None      # noqa: SLF001  (see the latest history)
    trial = _DrawTrial(view)
    space.suggest(trial)
    frozen = trial.frozen           # plain Python values (numpy scalars do not cross JSON)
    return {name: dist.to_external_repr(dist.to_internal_repr(frozen.params[name]))
            for name, dist in frozen.distributions.items()}


def _fits(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))   # noqa: SLF001
    except (ValueError, TypeError):
        return False


def checked_params(space: SearchSpace, params: Any) -> dict[str, Any] | None:
    """`params` (Optuna values, e.g. a worker's proposal that crossed a process boundary)
    if they are exactly the active parameters of `space`, each inside its distribution;
    else None."""
    if not isinstance(params, dict) or not all(isinstance(k, str) and k in space
                                               for k in params):
        return None
    out = {}
    for name, value in params.items():
        dist = space[name].distribution()
        if dist is None:
            return None
        if isinstance(dist, IntDistribution) and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _fits(dist, value):
            return None
        out[name] = value
    try:
        active = space.encode(space.decode(out))
    except (ValueError, TypeError, KeyError):
        return None
    return out if set(active) == set(out) else None


#: the longest a worker waits after its trial for its draw of a next trial (a GP draw on a
#: long history takes seconds); past it the draw goes with a later result
DRAW_WAIT_S = 120.0


class WorkerProposer:
    """A worker's replica of the study and the sampler that draws on it, in one thread.

    ``start(seed)`` syncs the replica and draws in the background while the trial runs;
    ``take()`` returns the draw.  Until the replica's first draw is done (it replays the
    journal and imports the sampler's modules: seconds) nothing waits for it and the
    coordinator draws meanwhile; after that a trial shorter than its draw waits for the
    draw: the worker's time, not the coordinator's, whose draws would cost every worker
    (rank 0 drawing a TPE point at a 10,000-trial history: 100 ms). A draw still running
    when the next trial starts is kept and sent with that trial instead of starting
    another one.
    """

    def __init__(self, settings: HpoSettings, space: SearchSpace):
        from .storage import open_storage
        self.settings, self.space = settings, space
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hpcopt-propose")
        self._view: optuna.Study | None = None
        self._open = lambda: open_storage(settings.storage, read_only=True)
        self._pending: Future | None = None
        self._warmed = False
        self.ready = False          # the replica has drawn once (loaded, modules imported)

    def warm(self) -> None:
        """Load the sampler's lazily imported modules in the background now (scipy, for
        TPE and GP: seconds on a busy node), so the first real draw is not late."""
        self._warmed = True
        self._pool.submit(self._warm)

    def _warm(self) -> None:
        try:
            settings = self.settings
            study = optuna.create_study(sampler=make_sampler(settings, 0),
                                        direction=settings.direction)
            view = draw_study(study, study.sampler)
            for k in range(settings.n_startup_trials + 2):   # past the random start-up
                params = draw(view, self.space, k)
                study.add_trial(optuna.trial.create_trial(
                    params=params, value=float(k),
                    distributions={n: self.space[n].distribution() for n in params}))
            draw(view, self.space, 0)
        except Exception as exc:  # noqa: BLE001 - only a warm-up
            log.debug("warming the worker's sampler failed: %s", exc)

    def _study(self) -> optuna.Study:
        if self._view is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.load_study(study_name=self.settings.study_name, storage=self._open(),
                                      sampler=make_sampler(self.settings, 0))
            self._view = draw_study(study, study.sampler)
        return self._view

    def _draw(self, seed: int) -> dict[str, Any] | None:
        with self._lock:
            try:
                params = draw(self._study(), self.space, seed)
                self.ready = True
                return params
            except Exception as exc:  # noqa: BLE001 - the coordinator draws instead
                log.warning("drawing the next trial on this worker failed (%s: %s); "
                            "the coordinator draws it", type(exc).__name__, exc)
                return None

    def start(self, seed: int) -> None:
        """Draw in the background (unless a draw is still pending); the first call warms
        the sampler up first."""
        if not self._warmed:
            self._warmed = True
            self.warm()
        if self._pending is None:
            self._pending = self._pool.submit(self._draw, seed)

    def take(self) -> dict[str, Any] | None:
        """The pending draw if it is done, or, once the replica is ready, when it is done
        (at most DRAW_WAIT_S, and not past a stop signal); then it is consumed. Else None."""
        pending = self._pending
        if pending is None:
            return None
        deadline = time.monotonic() + DRAW_WAIT_S
        while self.ready and not pending.done() and not stop_requested() \
                and time.monotonic() < deadline:     # a stop signal is seen within 0.25 s
            futures_wait([pending], timeout=0.25)
        if not pending.done():
            return None
        self._pending = None
        try:
            return pending.result()
        except Exception:  # noqa: BLE001 - the coordinator draws instead
            return None
