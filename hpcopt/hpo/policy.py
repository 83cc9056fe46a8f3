"""HpoPolicy: the coordinator's side of asynchronous HPO around an Optuna study. No MPI here.

The campaign's message loop (one coordinator per allocation or array task) is thin:

    policy = HpoPolicy(settings, space, seed=seed, stream=array_task_id, n_workers=n)
    while not policy.done:
        while idle_worker and (spec := policy.ask()):      # TrialSpec or None
            send(worker, spec.to_dict())
        write_rows(policy.drain_records())                 # deterministic mode tells in ask()
        msg = wait_for_message(timeout=..., on_idle=policy.heartbeat)
        if msg is a report:  reply(policy.report(number, step, value))   # True: stop it
        if msg is a result:  write_rows(policy.tell_result(TrialOutcome.from_dict(...)))
    write_rows(policy.close())  # also on SIGTERM/SIGUSR1: running trials are re-queued

Semantics:

* Budget: ``n_trials`` counts the trials of the whole study (every coordinator that
  shares the storage), exactly: a trial asked beyond it is told FAIL, marked
  ``hpcopt_over_budget`` and never handed out. Retried and interrupted attempts do
  not count (their re-run does). ``time_budget`` stops asking; trials in flight finish.
  ``max_concurrent`` bounds this coordinator's trials in flight.
* Failures: the error is stored (``hpcopt_error``); up to ``max_retries`` times the same
  params are enqueued again (``hpcopt_retry_of``, ``hpcopt_attempt``).
* Deterministic mode: with window w (``max_concurrent``, else DETERMINISTIC_WINDOW,
  never the number of workers), the k-th ask happens after results 0..k-w are told, in
  ask order, and before any later one: the sampler sees the same history whatever the
  timing or rank count. (Pruning decisions still depend on when reports arrive.)
* Seeds follow the study: each draw restarts the sampler at a seed made from the
  campaign seed, the stream and the trial number (or study size), so a resumed or
  extended study draws new points. A drawn point that the study already holds is drawn
  again (then uniformly at random, then from the unevaluated rest of a discrete space);
  a discrete space whose every point was evaluated stops the study ("exhausted").
* Group commit: with the journal, storage operations are kept and written by
  :meth:`flush` (or the next trial creation) in one append; callers flush before they
  record a trial anywhere else (HpoSource does). A failed write (disk full) stops the
  policy: nothing more is asked or told, and :attr:`storage_error` says why.
* Where the sampler runs: with ``worker_sampling`` the worker that runs trial k draws a
  next point on its replica of the journal while k runs (TrialSpec.propose_seed) and
  returns it with the outcome; the next ask starts from it, so the coordinator only
  orders storage writes (see propose.py).
* Resume / shared studies: each coordinator writes a heartbeat to the study; RUNNING
  trials whose coordinator is gone (closed, its pid dead on this host, or silent for
  ``stale_after`` s) are told FAIL (``hpcopt_interrupted``) and their params enqueued.
  Call :meth:`heartbeat` at least every few seconds while waiting for messages.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import time
import uuid
import warnings
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
import optuna
from optuna.samplers import RandomSampler
from optuna.storages import BaseStorage
from optuna.study._tell import _tell_with_warning   # Study.tell minus a deep copy
from optuna.trial import FrozenTrial, TrialState

from ..errors import ConfigError, ResultFileError
from ..mpi.runtime import request_stop
from .config import HpoConfig, HpoSettings
from .propose import checked_params, draw, draw_study
from .samplers import (DIRECT_SAMPLERS, HISTORY_FREE_SAMPLERS, REPLICA_SAMPLERS, draw_seed,
                       make_pruner, make_sampler)
from .samplers import reseed
from .space import SearchSpace
from .storage import (HOST, GroupCommitJournalStorage, MemoryStorage, StorageWriteError,
                      describe, flush, open_storage, trials_from)
from .trials import TrialOutcome, TrialRecord, TrialSpec, trial_seed

log = logging.getLogger(__name__)

# trial user attrs written by hpcopt (visible in optuna-dashboard)
A_OWNER, A_ERROR, A_RETRIED = "hpcopt_owner", "hpcopt_error", "hpcopt_retried"
A_RETRY_OF, A_ATTEMPT, A_INFO = "hpcopt_retry_of", "hpcopt_attempt", "hpcopt_info"
A_OVER, A_INTERRUPTED = "hpcopt_over_budget", "hpcopt_interrupted"
A_RUN = "hpcopt_run"          # {"started": unix time, "duration": s, "worker": "..."}
A_DURATION = "duration_s"     # the trial's wall seconds on its worker, flat (dashboard sorts)
A_FILE = "hpcopt_result_file"  # the result file that records the trial (array tasks)
A_DUPLICATE = "hpcopt_duplicate"   # drawn point repeated an earlier trial: never run
A_DRAWN = "hpcopt_drawn_on"        # "worker" (its replica), "rank 0", or "space" (enumerated)
HEARTBEAT_PREFIX = "hpcopt:heartbeat:"       # study system attr per coordinator
# heartbeat period and the silence after which a coordinator on another host is gone (s);
# the variables are a test hook: seconds instead of minutes on a test cluster
HEARTBEAT_INTERVAL = float(os.environ.get("HPCOPT_HPO_HEARTBEAT", "30"))
STALE_AFTER = float(os.environ.get("HPCOPT_HPO_STALE_AFTER", "300"))
_NOT_COUNTED = (A_OVER, A_INTERRUPTED, A_RETRIED, A_DUPLICATE)
_MAX_ERROR = 4000
#: trials in flight in deterministic mode when max_concurrent is not set: a constant, so
#: that the trials do not depend on the number of ranks
DETERMINISTIC_WINDOW = 8
#: trials a worker holds at most (the running one and those queued behind it) with a
#: history-free sampler: while its trials are short the farm queues more than one behind
#: (farm prefetch, PREFETCH_SECONDS), so it never waits for rank 0 between them
WORKER_WINDOW = 3
#: draws of the sampler before a repeated point is replaced by a uniform random one
MAX_REDRAWS = 12
#: uniform random draws before a discrete space is enumerated to find what is left
MAX_RANDOM_DRAWS = 500
#: a discrete space is enumerated (exhaustion, the last unevaluated points) up to this size
MAX_ENUMERATE = 200_000


class HpoPolicy:
    """Ask/tell/report around one Optuna study (see the module docstring)."""

    def __init__(self, settings: HpoSettings, space: SearchSpace, *, seed: int = 0,
                 stream: int = 0, n_workers: int = 1, resume: bool = False,
                 storage: BaseStorage | None = None,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL,
                 stale_after: float = STALE_AFTER, clock: Callable[[], float] = time.monotonic,
                 result_file: str = "", has_workers: bool = False):
        optuna.logging.set_verbosity(optuna.logging.WARNING)   # no line per trial on stderr
        self.settings, self.space, self.seed, self.stream = settings, space, seed, stream
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.result_file = result_file
        self._clock = clock
        self._start = clock()
        # a history-free sampler loses nothing when a worker has its next trial queued
        # behind the running one: it never waits for rank 0's answer (farm prefetch)
        self.queues_ahead = (has_workers and not settings.deterministic
                             and settings.max_concurrent is None
                             and settings.sampler in HISTORY_FREE_SAMPLERS)
        self.worker_window = WORKER_WINDOW if self.queues_ahead else 1
        self._window = settings.max_concurrent or (
            DETERMINISTIC_WINDOW if settings.deterministic
            else max(1, n_workers) * self.worker_window)
        self._storage = storage if storage is not None else open_storage(settings.storage)
        if isinstance(self._storage, GroupCommitJournalStorage):
            self._storage.defer(True)
        self.storage_error: str | None = None
        self.study = self._open_study(seed, stream, resume)
        self._sid = self.study._study_id                   # noqa: SLF001
        self._direct = settings.sampler in DIRECT_SAMPLERS
        self._view = draw_study(self.study, self.study.sampler) if self._direct else None
        self._uniform = draw_study(self.study, RandomSampler())
        self.worker_sampling = (
            self._direct and has_workers and not settings.deterministic
            and settings.sampler in REPLICA_SAMPLERS
            and isinstance(self._storage, GroupCommitJournalStorage)
            and (settings.worker_sampling is True
                 or (settings.worker_sampling is None and settings.sampler != "random")))
        self._proposals: deque[dict] = deque(maxlen=max(2, self._window))
        self._seen: dict[tuple, int] = {}                  # point -> trial number (dedup)
        self._seen_next, self._unsettled = 0, set()        # scan position; trials w/o params
        self._enumerated: list[dict] | None | bool = False   # False: not tried yet
        self.stop_reason: str | None = None
        self._hb_interval, self._stale_after = heartbeat_interval, stale_after
        self._last_hb = -math.inf
        self._trials: dict[int, int] = {}                 # asked, not yet told: number -> id
        self._specs: dict[int, TrialSpec] = {}
        self._reporting: dict[int, optuna.Trial] = {}     # trials that reported (pruning)
        self._running: set[int] = set()                   # no outcome yet
        self._asked: list[int] = []                       # own trial numbers in ask order
        self._released = 0                                # deterministic: told prefix of _asked
        self._buffer: dict[int, TrialOutcome] = {}        # deterministic: outcomes not yet told
        self._records: deque[TrialRecord] = deque()
        self._stopped: str | None = None
        self._frontier, self._prefix = 0, [0]             # budget count of finished trials
        self._open_count = (-1, 0)                        # (trials, count) at _budget_open
        self._finished_counts: dict[int, bool] = {}
        self.heartbeat(force=True)                        # also reaps dead coordinators' trials

    @classmethod
    def from_config(cls, config: HpoConfig, **kwargs: Any) -> "HpoPolicy":
        return cls(config.hpo, config.space, **kwargs)

    # -- study -----------------------------------------------------------------------------
    def _open_study(self, seed: int, stream: int, resume: bool) -> optuna.Study:
        s = self.settings
        try:
            existing = optuna.load_study(study_name=s.study_name, storage=self._storage)
        except KeyError:
            existing = None
        if existing is not None and not resume and existing.get_trials(deepcopy=False):
            raise ResultFileError(
                f"study {s.study_name!r} in {describe(self._storage)} already has trials; "
                "use --resume to continue it (array tasks join with --resume), or choose "
                "another [hpo] study_name or storage")
        study = optuna.create_study(
            study_name=s.study_name, storage=self._storage, direction=s.direction,
            sampler=make_sampler(s, seed, stream), pruner=make_pruner(s), load_if_exists=True)
        flush(self._storage)
        if study.direction.name.lower() != s.direction:
            raise ConfigError(f"the existing study {s.study_name!r} is "
                              f"{study.direction.name.lower()}d, the config says {s.direction}",
                              key="hpo.direction")
        return study

    # -- asking ----------------------------------------------------------------------------
    def ask(self) -> TrialSpec | None:
        """The next trial to start, or None (budget spent, stopped, or at the concurrency
        limit; in deterministic mode also: waiting for an earlier result)."""
        if self.storage_error:
            return None
        with self._guard():
            return self._ask()
        return None

    def _ask(self) -> TrialSpec | None:
        self.heartbeat()
        if self._stopped or self._time_up():
            self._flush_final()
            return None
        if self.settings.deterministic:
            gate = len(self._asked) - self._window      # ask index that must be told first
            if gate >= 0 and not self._release_through(gate):
                return None
        elif len(self._running) >= self._window:
            return None
        if not self._budget_open():
            self._flush_final()
            return None
        created = self._new_trial()
        if created is None:                            # the space is exhausted
            self._flush_final()
            return None
        tid, frozen = created
        number = frozen.number
        storage = self._storage
        if not self._within_budget(number):
            storage.set_trial_user_attr(tid, A_OVER, True)   # a sibling coordinator was faster
            self.study.tell(number, state=TrialState.FAIL)
            return None
        attrs = frozen.user_attrs
        spec = TrialSpec(number=number, params=self.space.decode(frozen.params),
                         attempt=int(attrs.get(A_ATTEMPT, 0)), retry_of=attrs.get(A_RETRY_OF),
                         seed=trial_seed(self.seed, number),
                         timeout=self.settings.trial_timeout,
                         propose_seed=(draw_seed(self.seed, self.stream, number, where=1)
                                       if self.worker_sampling else None),
                         start_by=self._budget_end() if self.queues_ahead else None)
        self._trials[number], self._specs[number] = tid, spec
        self._running.add(number)
        self._asked.append(number)
        return spec

    def _claim_attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {A_OWNER: self.owner}
        if self.result_file:
            attrs[A_FILE] = self.result_file
        return attrs

    def _new_trial(self) -> tuple[int, FrozenTrial] | None:
        """Start a trial in the storage: a queued one (retry, re-run) first, else a new
        point; (trial id, the trial), or None when a discrete space has nothing left."""
        storage = self._storage
        tid = self._pop_waiting()
        if tid is not None:
            frozen = storage.get_trial(tid)
            fixed = frozen.system_attrs.get("fixed_params", {})
            for name, value in fixed.items():
                if name in self.space and name not in frozen.params:
                    dist = self.space[name].distribution()
                    if dist is not None:
                        storage.set_trial_param(tid, name, dist.to_internal_repr(value), dist)
            for key, value in self._claim_attrs().items():
                storage.set_trial_user_attr(tid, key, value)
            return tid, storage.get_trial(tid)
        if not self._direct:
            return self._ask_optuna()
        picked = self._pick()
        if picked is None:
            return None
        params, drawn_on = picked
        distributions = {n: self.space[n].distribution() for n in params}
        user_attrs = {**self._claim_attrs(), A_DRAWN: drawn_on}
        if isinstance(storage, MemoryStorage):
            tid = storage.create_running_trial(self._sid, params, distributions, user_attrs)
        else:
            template = optuna.trial.create_trial(state=TrialState.RUNNING, params=params,
                                                 distributions=distributions,
                                                 user_attrs=user_attrs)
            template.datetime_start = _dt.datetime.now()
            tid = storage.create_new_trial(self._sid, template_trial=template)
        frozen = storage.get_trial(tid)
        self._remember(params, frozen.number)
        return tid, frozen

    def _pop_waiting(self) -> int | None:
        """Claim the oldest WAITING trial (first claim wins across coordinators)."""
        storage = self._storage
        # a WAITING trial is unfinished: at or after the first unfinished one (_budget_count)
        waiting = [t for t in trials_from(storage, self._sid, self._frontier)
                   if t.state == TrialState.WAITING]
        for t in waiting:
            try:
                if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):  # noqa: SLF001
                    return t._trial_id                                                    # noqa: SLF001
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        return None

    def _ask_optuna(self) -> tuple[int, FrozenTrial]:
        """Samplers that need their trial in the storage while drawing (CMA-ES): create,
        reseed from the trial number, suggest; a repeated point is marked and redrawn."""
        storage = self._storage
        for attempt in range(MAX_REDRAWS + 1):
            tid = storage.create_new_trial(self._sid)
            number = storage.get_trial(tid).number
            reseed(self.study.sampler, draw_seed(self.seed, self.stream, number))
            self.study._thread_local.cached_all_trials = None     # noqa: SLF001
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                trial = optuna.Trial(self.study, tid)
                self.space.suggest(trial)
            params = storage.get_trial(tid).params
            if self._is_new(params, number) or attempt == MAX_REDRAWS:
                for key, value in self._claim_attrs().items():
                    storage.set_trial_user_attr(tid, key, value)
                self._remember(params, number)
                return tid, storage.get_trial(tid)
            storage.set_trial_user_attr(tid, A_DUPLICATE, True)
            self.study.tell(number, state=TrialState.FAIL)
        raise AssertionError("unreachable")

    # -- new points ----------------------------------------------------------------------------
    def offer(self, proposal: Any) -> None:
        """A worker's draw for a next trial (kept for the next ask; checked first)."""
        params = checked_params(self.space, proposal)
        if params is None:
            if proposal is not None:
                log.warning("ignoring a worker's proposal outside the search space: %r",
                            proposal)
            return
        self._proposals.append(params)

    def _pick(self) -> tuple[dict[str, Any], str] | None:
        """(Optuna params of a point the study does not hold yet, where it was drawn); see
        the module docstring. None when a discrete space is exhausted."""
        while self._proposals:
            params = self._proposals.pop()             # the newest: drawn on the freshest data
            if self._is_new(params):
                return params, "worker"
        key = self._study_size()
        for attempt in range(MAX_REDRAWS):
            params = draw(self._view, self.space, draw_seed(self.seed, self.stream, key, attempt))
            if self._is_new(params):
                return params, "rank 0"
        for attempt in range(MAX_RANDOM_DRAWS):
            params = draw(self._uniform, self.space,
                          draw_seed(self.seed, self.stream, key, MAX_REDRAWS + attempt))
            if self._is_new(params):
                return params, "rank 0"
        left = self._unevaluated()
        if left is None:                               # continuous or huge: accept it
            log.warning("drew a point the study already holds %d times; running it again",
                        MAX_REDRAWS + MAX_RANDOM_DRAWS)
            return params, "rank 0"
        if not left:
            self.stop_reason = (f"the search space is exhausted: all {len(self._enumerated)} "
                                "parameter sets have been evaluated")
            log.warning(self.stop_reason)
            self._stopped = self.stop_reason
            return None
        rng = np.random.default_rng(draw_seed(self.seed, self.stream, key, 2**20))
        return left[int(rng.integers(len(left)))], "space"

    def _study_size(self) -> int:
        if isinstance(self._storage, GroupCommitJournalStorage):
            return self._storage.n_trials(self._sid)
        return self._frontier + len(trials_from(self._storage, self._sid, self._frontier))

    def _unevaluated(self) -> list[dict] | None:
        """Optuna params of the points of a discrete space that no trial holds; None when
        the space is continuous or too large to enumerate."""
        if self._enumerated is False:
            points = self.space.enumerate(MAX_ENUMERATE)
            self._enumerated = None if points is None else [self.space.encode(p) for p in points]
        if self._enumerated is None:
            return None
        self._scan_seen()
        return [p for p in self._enumerated if _point_key(p) not in self._seen]

    def _is_new(self, params: dict[str, Any], number: int = -1) -> bool:
        """No trial but `number` holds this point."""
        self._scan_seen()
        return self._seen.get(_point_key(params), number) == number

    def _remember(self, params: dict[str, Any], number: int) -> None:
        self._seen[_point_key(params)] = number

    def _scan_seen(self) -> None:
        """Add the points of trials created since the last scan (any coordinator's)."""
        new = trials_from(self._storage, self._sid, self._seen_next)
        self._seen_next += len(new)
        settled = []
        for number in self._unsettled:
            t = self._storage.get_trial(self._storage.get_trial_id_from_study_id_trial_number(
                self._sid, number))
            if t.params or t.state.is_finished():
                settled.append(t)
        self._unsettled.difference_update(t.number for t in settled)
        for t in [*new, *settled]:
            if t.user_attrs.get(A_OVER) or t.user_attrs.get(A_DUPLICATE):
                continue
            params = t.params or t.system_attrs.get("fixed_params") or {}
            if params:
                self._seen.setdefault(_point_key(params), t.number)
            elif not t.state.is_finished():
                self._unsettled.add(t.number)   # a sibling's trial, params not written yet

    def _time_up(self) -> bool:
        budget = self.settings.time_budget
        return budget is not None and self._clock() - self._start >= budget

    def _budget_end(self) -> float | None:
        """The time budget's end as unix time (a worker's clock), or None."""
        budget = self.settings.time_budget
        return None if budget is None else time.time() + budget - (self._clock() - self._start)

    def _budget_open(self) -> bool:
        count, waiting, total = self._budget_count()
        self._open_count = (total, count)
        return waiting or count < self.settings.n_trials

    def _within_budget(self, number: int) -> bool:
        """Does new trial `number` fit the budget, counting the trials before it?"""
        total, count = self._open_count
        if number == total and count < self.settings.n_trials:
            # the trial right after those _budget_open counted (no sibling's in between),
            # which can only have stopped counting since (the marks are only ever added)
            return True
        return self._budget_count(number)[0] <= self.settings.n_trials

    def _budget_count(self, upto: int | None = None) -> tuple[int, bool, int]:
        """(trials using up the budget, numbered <= `upto`; any trial WAITING; trials in
        the study).

        Finished trials never change whether they count, so they are counted once: a
        prefix sum up to the first unfinished trial plus a cache after it. This keeps
        asks O(trials in flight) instead of O(all trials).
        """
        later = trials_from(self._storage, self._sid, self._frontier)
        k = 0
        while k < len(later) and later[k].state.is_finished():
            t = later[k]
            self._prefix.append(self._prefix[-1] + _counts(t))
            self._finished_counts.pop(t.number, None)
            k += 1
        self._frontier += k
        later = later[k:]
        n_total = self._frontier + len(later)
        stop = n_total if upto is None else min(n_total, upto + 1)
        if stop <= self._frontier:
            return self._prefix[stop], False, n_total
        count, waiting = self._prefix[self._frontier], False
        for t in later[:stop - self._frontier]:
            cached = self._finished_counts.get(t.number)
            if cached is None:
                cached = _counts(t)
                if t.state.is_finished():
                    self._finished_counts[t.number] = cached
                else:
                    waiting = waiting or t.state == TrialState.WAITING
            count += cached
        return count, waiting, n_total

    # -- reporting -------------------------------------------------------------------------
    def report(self, number: int, step: int, value: float) -> bool:
        """Record an intermediate value; True when the trial should stop (pruned)."""
        tid = self._trials.get(number)
        if tid is None or number not in self._running or self.storage_error:
            return True                                  # unknown or abandoned: stop it
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"trial {number}: step must be an integer >= 0, got {step!r}")
        value = float(value)
        if not math.isfinite(value):
            return False
        with self._guard():
            trial = self._reporting.get(number)
            if trial is None:
                trial = self._reporting[number] = optuna.Trial(self.study, tid)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # a step reported twice keeps its first value
                trial.report(value, step)
            return trial.should_prune()
        return True

    # -- telling ---------------------------------------------------------------------------
    def tell_result(self, outcome: TrialOutcome) -> list[TrialRecord]:
        """Finish a trial; return the records finalized now (rows for the result file,
        to be written after :meth:`flush`)."""
        n = outcome.number
        if n not in self._running:
            log.warning("ignoring a result for trial %d, which is not in flight", n)
            return self.drain_records()
        if outcome.proposal is not None and not self._stopped:
            self.offer(outcome.proposal)
        self._running.discard(n)
        if self.storage_error:           # nothing can be told: the trial re-runs on resume
            self._trials.pop(n, None), self._specs.pop(n, None), self._reporting.pop(n, None)
            return self.drain_records()
        with self._guard():
            if outcome.interrupted:      # stopped by a signal on its worker: re-run it
                self._abandon(self._trials.pop(n), self._specs.pop(n), outcome.error
                              or "stopped by a signal")
                self._reporting.pop(n, None)
            elif self.settings.deterministic:
                self._buffer[n] = outcome
                self._flush_final()
            else:
                self._records.append(self._finish(outcome))
        return self.drain_records()

    def flush(self) -> bool:
        """Write the storage operations kept so far (group commit); False if the storage
        failed (then :attr:`storage_error` says why and the policy has stopped)."""
        if self.storage_error:
            return False
        with self._guard():
            flush(self._storage)
            return True
        return False

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """A failed storage write (disk full...) stops the policy instead of the job."""
        try:
            yield
        except StorageWriteError as exc:
            from ..store.space import disk_full, is_disk_full
            self.storage_error = str(exc)
            self._stopped = self.stop_reason = f"the study storage failed: {exc}"
            log.error("%s; stopping (finished trials are saved, --resume continues once "
                      "it can be written)", self.stop_reason)
            # the campaign stops as for SIGTERM (exit 3), saying why
            location = self.settings.storage.location or "the study storage"
            if is_disk_full(exc):
                disk_full(location, exc)
            else:
                request_stop(self.stop_reason)

    def drain_records(self) -> list[TrialRecord]:
        """Records finalized since the last call (deterministic mode tells inside ask())."""
        out = list(self._records)
        self._records.clear()
        if self.storage_error:     # told in memory only: they re-run on resume
            return []
        return out

    def _no_more_asks(self) -> bool:
        return bool(self._stopped) or self._time_up() or not self._budget_open()

    def _flush_final(self) -> None:
        """Deterministic mode, no asks left: tell buffered outcomes in ask order, one at a
        time (a retry queued by one of them reopens asking)."""
        while (self._released < len(self._asked) and self._asked[self._released] in self._buffer
               and self._no_more_asks()):
            self._release_through(self._released)

    def _release_through(self, index: int) -> bool:
        """Deterministic mode: tell buffered outcomes in ask order up to ask `index`."""
        while self._released <= index:
            n = self._asked[self._released]
            if n not in self._buffer:
                return False
            self._records.append(self._finish(self._buffer.pop(n)))
            self._released += 1
        return True

    def _finish(self, o: TrialOutcome) -> TrialRecord:
        tid = self._trials.pop(o.number)
        spec = self._specs.pop(o.number)
        state, value, error = o.state, o.value, o.error
        if state == "complete" and (value is None or not math.isfinite(value)):
            state, error = "failed", f"objective returned {value!r}"
        retried = False
        storage = self._storage
        reported = self._reporting.pop(o.number, None) is not None
        current = storage.get_trial(tid)
        if current.state.is_finished():
            log.warning("trial %d was re-queued by another coordinator while it ran here "
                        "(this one looked dead); its result goes to the result file only",
                        o.number)
            return self._record(o, spec, state, value, error, retried, {})
        storage.set_trial_user_attr(tid, A_RUN, {"started": o.started, "duration": o.duration,
                                                 "worker": o.worker})
        storage.set_trial_user_attr(tid, A_DURATION, float(o.duration))
        if o.info:
            storage.set_trial_user_attr(tid, A_INFO, o.info)
        if state == "complete":
            self._tell(o.number, value)
        elif state == "pruned":
            self._tell(o.number, state=TrialState.PRUNED)
        else:
            error = (error or "unknown error")[-_MAX_ERROR:]
            storage.set_trial_user_attr(tid, A_ERROR, error)
            if spec.attempt < self.settings.max_retries:
                retried = True
                # enqueue first, then un-count: a sibling may briefly see one trial too
                # many (and wait), never one too few (and overrun n_trials)
                self.study.enqueue_trial(current.params, user_attrs={
                    A_RETRY_OF: spec.retry_of if spec.retry_of is not None else o.number,
                    A_ATTEMPT: spec.attempt + 1})
                storage.set_trial_user_attr(tid, A_RETRIED, True)
            self._tell(o.number, state=TrialState.FAIL)
        if not reported and state != "pruned":       # nothing more to read back
            return self._record(o, spec, state, value, error, retried, {})
        frozen = storage.get_trial(tid)
        if state == "pruned":
            value = frozen.value
        return self._record(o, spec, state, value, error, retried, frozen.intermediate_values)

    def _tell(self, number: int, value: float | None = None,
              state: TrialState | None = None) -> None:
        """study.tell without the deep copy of the trial it returns (unused here)."""
        _tell_with_warning(self.study, number, value, state, skip_if_finished=True,
                           suppress_warning=True)

    @staticmethod
    def _record(o: TrialOutcome, spec: TrialSpec, state: str, value: float | None,
                error: str | None, retried: bool, intermediate: dict) -> TrialRecord:
        return TrialRecord(
            number=o.number, state=state, value=value if state != "failed" else None,
            params=spec.params, attempt=spec.attempt, retry_of=spec.retry_of, retried=retried,
            error=error if state == "failed" else None, started=o.started,
            duration=o.duration, worker=o.worker,
            intermediate=tuple(sorted(intermediate.items())), info=dict(o.info))

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Ask no more trials (e.g. on SIGUSR1); trials in flight may still finish."""
        self._stopped = reason

    @property
    def n_in_flight(self) -> int:
        """Trials asked and not yet told (running, or buffered in deterministic mode)."""
        return len(self._trials)

    @property
    def in_flight(self) -> list[int]:
        return sorted(self._running)

    @property
    def done(self) -> bool:
        """Nothing in flight and nothing more to ask (drain_records() after it turns True)."""
        if self._running or not self._no_more_asks():
            return False
        self._flush_final()
        return not self._trials

    def close(self, reason: str = "coordinator stopped") -> list[TrialRecord]:
        """End this coordinator and return the last records (written to the storage: call
        nothing else before recording them). Buffered (deterministic) outcomes are told;
        trials still running are told FAIL (``hpcopt_interrupted``, not counted) and their
        params enqueued, so a resumed run or a sibling re-runs them. After a storage
        failure nothing is written and no record is returned."""
        self._stopped = self._stopped or reason
        if self.storage_error:
            return []
        with self._guard():
            for n in list(self._asked[self._released:]):
                if n in self._buffer:
                    self._records.append(self._finish(self._buffer.pop(n)))
            for n in sorted(self._running):
                self._abandon(self._trials.pop(n), self._specs.pop(n), reason)
            self._running.clear()
            self._write_heartbeat(closed=True)
            flush(self._storage)
        return self.drain_records()

    def _abandon(self, tid: int, spec_attempt: Any, why: str) -> None:
        storage = self._storage
        trial = storage.get_trial(tid)
        attempt = spec_attempt.attempt if isinstance(spec_attempt, TrialSpec) else spec_attempt
        retry_of = (spec_attempt.retry_of if isinstance(spec_attempt, TrialSpec)
                    else trial.user_attrs.get(A_RETRY_OF))
        attrs = {A_ATTEMPT: attempt}
        if retry_of is not None:
            attrs[A_RETRY_OF] = retry_of
        params = dict(trial.params) or dict(trial.system_attrs.get("fixed_params", {}))
        if params:
            self.study.enqueue_trial(params, user_attrs=attrs)   # first: see _finish
        storage.set_trial_user_attr(tid, A_INTERRUPTED, True)
        storage.set_trial_user_attr(tid, A_ERROR, f"interrupted: {why}")
        self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)

    # -- heartbeats and stale trials ---------------------------------------------------------
    def heartbeat(self, force: bool = False) -> None:
        """Record that this coordinator is alive and reap trials of dead ones (rate-limited)."""
        now = self._clock()
        if self.storage_error or (not force and now - self._last_hb < self._hb_interval):
            return
        self._last_hb = now
        with self._guard():
            self._write_heartbeat()
            self.reap_stale()

    def _write_heartbeat(self, closed: bool = False) -> None:
        self._storage.set_study_system_attr(
            self._sid, HEARTBEAT_PREFIX + self.owner,
            {"host": HOST, "pid": os.getpid(), "time": time.time(), "closed": closed})

    def reap_stale(self) -> list[int]:
        """Fail and re-enqueue RUNNING trials whose coordinator is gone; return their numbers.

        A coordinator killed between creating a trial and recording itself as the owner
        leaves a RUNNING trial without an owner: it is reaped when no other coordinator of
        the study is alive (nobody can be about to claim it), else once it is stale.
        """
        attrs = self._storage.get_study_system_attrs(self._sid)
        beats = {k[len(HEARTBEAT_PREFIX):]: v for k, v in attrs.items()
                 if k.startswith(HEARTBEAT_PREFIX)}
        siblings_alive = any(o != self.owner and not self._is_dead(b) for o, b in beats.items())
        reaped = []
        for t in self._storage.get_all_trials(self._sid, deepcopy=False,
                                              states=(TrialState.RUNNING,)):
            owner = t.user_attrs.get(A_OWNER)
            if owner == self.owner or t.number in self._trials:
                continue
            if owner is None:
                started = t.datetime_start.timestamp() if t.datetime_start else time.time()
                if siblings_alive and time.time() - started < self._stale_after:
                    continue
                why = "its coordinator stopped before claiming it"
            elif self._is_dead(beats.get(owner)):
                why = f"coordinator {owner} gone"
            else:
                continue
            self._abandon(t._trial_id, int(t.user_attrs.get(A_ATTEMPT, 0)), why)  # noqa: SLF001
            reaped.append(t.number)
        if reaped:
            log.warning("re-queued trials %s of coordinators that stopped", reaped)
        return reaped

    def _is_dead(self, beat: dict | None) -> bool:
        if not isinstance(beat, dict):
            return True
        if beat.get("closed"):
            return True
        if beat.get("host") == HOST and not _pid_alive(beat.get("pid")):
            return True
        return time.time() - float(beat.get("time", 0.0)) > self._stale_after

    # -- views -----------------------------------------------------------------------------
    def finished_records(self, result_file: str | None = None) -> list[TrialRecord]:
        """Finished trials of the study as records (for a resumed result file that missed
        rows written after the storage): over-budget, interrupted and duplicate ones left
        out; with `result_file`, only the trials that file records (array tasks share a
        study, each task's file keeps its own trials)."""
        out = []
        for t in self.study.get_trials(deepcopy=False):
            a = t.user_attrs
            if not t.state.is_finished() or a.get(A_OVER) or a.get(A_INTERRUPTED) \
                    or a.get(A_DUPLICATE):
                continue
            if result_file is not None and a.get(A_FILE) != result_file:
                continue
            out.append(record_from_frozen(t, self.space))
        return out

    def best(self) -> tuple[dict[str, Any], float] | None:
        """(real params, value) of the best complete trial, or None."""
        try:
            t = self.study.best_trial
        except ValueError:
            return None
        return self.space.decode(t.params), float(t.value)


def record_from_frozen(t: FrozenTrial, space: SearchSpace) -> TrialRecord:
    """A TrialRecord rebuilt from the storage alone."""
    state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(t.state, "failed")
    a = t.user_attrs
    run = a.get(A_RUN, {})
    return TrialRecord(
        number=t.number, state=state, value=t.value if state != "failed" else None,
        params=space.decode(t.params), attempt=int(a.get(A_ATTEMPT, 0)),
        retry_of=a.get(A_RETRY_OF), retried=bool(a.get(A_RETRIED, False)),
        error=a.get(A_ERROR) if state == "failed" else None,
        started=float(run.get("started", math.nan)), duration=float(run.get("duration", math.nan)),
        worker=str(run.get("worker", "")),
        intermediate=tuple(sorted(t.intermediate_values.items())),
        info=dict(a.get(A_INFO, {})))


def _point_key(params: dict[str, Any]) -> tuple:
    """A hashable identity of a point (Optuna params): exact values, bool apart from int,
    numpy scalars as the Python numbers they equal."""
    def norm(v: Any) -> tuple:
        if isinstance(v, (bool, np.bool_)):
            return ("bool", bool(v))
        if isinstance(v, (int, np.integer)):
            return ("int", int(v))
        if isinstance(v, (float, np.floating)):
            return ("float", float(v))
        return (type(v).__name__, v)
    return tuple(sorted((name, *norm(v)) for name, v in params.items()))


def _counts(t: FrozenTrial) -> bool:
    """Does trial `t` use up one unit of the n_trials budget?"""
    return not any(map(t.user_attrs.get, _NOT_COUNTED))


def _pid_alive(pid: Any) -> bool:
    from .storage import _pid_alive as alive
    return alive(pid)
