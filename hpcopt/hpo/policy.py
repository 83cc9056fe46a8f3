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
* Deterministic mode: with window w (``max_concurrent``, else the number of workers),
  the k-th ask happens after results 0..k-w are told, in ask order, and before any later
  one: the sampler sees the same history whatever the timing. (Pruning decisions still
  depend on when reports arrive.)
* Resume / shared studies: each coordinator writes a heartbeat to the study; RUNNING
  trials whose coordinator is gone (closed, its pid dead on this host, or silent for
  ``stale_after`` s) are told FAIL (``hpcopt_interrupted``) and their params enqueued.
  Call :meth:`heartbeat` at least every few seconds while waiting for messages.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
import warnings
from collections import deque
from typing import Any, Callable

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..errors import ConfigError, ResultFileError
from .config import HpoConfig, HpoSettings
from .samplers import make_pruner, make_sampler
from .space import SearchSpace
from .storage import HOST, describe, open_storage
from .trials import TrialOutcome, TrialRecord, TrialSpec, trial_seed

log = logging.getLogger(__name__)

# trial user attrs written by hpcopt (visible in optuna-dashboard)
A_OWNER, A_ERROR, A_RETRIED = "hpcopt_owner", "hpcopt_error", "hpcopt_retried"
A_RETRY_OF, A_ATTEMPT, A_INFO = "hpcopt_retry_of", "hpcopt_attempt", "hpcopt_info"
A_OVER, A_INTERRUPTED = "hpcopt_over_budget", "hpcopt_interrupted"
A_RUN = "hpcopt_run"          # {"started": unix time, "duration": s, "worker": "..."}
HEARTBEAT_PREFIX = "hpcopt:heartbeat:"       # study system attr per coordinator
# heartbeat period and the silence after which a coordinator on another host is gone (s);
# the variables are a test hook: seconds instead of minutes on a test cluster
HEARTBEAT_INTERVAL = float(os.environ.get("HPCOPT_HPO_HEARTBEAT", "30"))
STALE_AFTER = float(os.environ.get("HPCOPT_HPO_STALE_AFTER", "300"))
_NOT_COUNTED = (A_OVER, A_INTERRUPTED, A_RETRIED)
_MAX_ERROR = 4000


class HpoPolicy:
    """Ask/tell/report around one Optuna study (see the module docstring)."""

    def __init__(self, settings: HpoSettings, space: SearchSpace, *, seed: int = 0,
                 stream: int = 0, n_workers: int = 1, resume: bool = False,
                 storage: BaseStorage | None = None,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL,
                 stale_after: float = STALE_AFTER, clock: Callable[[], float] = time.monotonic):
        optuna.logging.set_verbosity(optuna.logging.WARNING)   # no line per trial on stderr
        self.settings, self.space, self.seed = settings, space, seed
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._start = clock()
        self._window = settings.max_concurrent or max(1, n_workers)
        self._static = space.static_distributions()
        self._storage = storage if storage is not None else open_storage(settings.storage)
        self.study = self._open_study(seed, stream, resume)
        self._hb_interval, self._stale_after = heartbeat_interval, stale_after
        self._last_hb = -math.inf
        self._trials: dict[int, optuna.Trial] = {}       # asked, not yet told
        self._specs: dict[int, TrialSpec] = {}
        self._running: set[int] = set()                   # no outcome yet
        self._asked: list[int] = []                       # own trial numbers in ask order
        self._released = 0                                # deterministic: told prefix of _asked
        self._buffer: dict[int, TrialOutcome] = {}        # deterministic: outcomes not yet told
        self._records: deque[TrialRecord] = deque()
        self._stopped: str | None = None
        self._frontier, self._prefix = 0, [0]             # budget count of finished trials
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
        if study.direction.name.lower() != s.direction:
            raise ConfigError(f"the existing study {s.study_name!r} is "
                              f"{study.direction.name.lower()}d, the config says {s.direction}",
                              key="hpo.direction")
        return study

    # -- asking ----------------------------------------------------------------------------
    def ask(self) -> TrialSpec | None:
        """The next trial to start, or None (budget spent, stopped, or at the concurrency
        limit; in deterministic mode also: waiting for an earlier result)."""
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask(fixed_distributions=self._static)
        if self._counted_through(trial.number) > self.settings.n_trials:
            trial.set_user_attr(A_OVER, True)          # a sibling coordinator was faster
            self.study.tell(trial, state=TrialState.FAIL)
            return None
        trial.set_user_attr(A_OWNER, self.owner)
        params = (self.space.decode(trial.params) if self._static is not None
                  else self.space.suggest(trial))
        attrs = trial.user_attrs
        spec = TrialSpec(number=trial.number, params=params,
                         attempt=int(attrs.get(A_ATTEMPT, 0)), retry_of=attrs.get(A_RETRY_OF),
                         seed=trial_seed(self.seed, trial.number),
                         timeout=self.settings.trial_timeout)
        self._trials[trial.number], self._specs[trial.number] = trial, spec
        self._running.add(trial.number)
        self._asked.append(trial.number)
        return spec

    def _time_up(self) -> bool:
        budget = self.settings.time_budget
        return budget is not None and self._clock() - self._start >= budget

    def _budget_open(self) -> bool:
        count, waiting = self._budget_count()
        return waiting or count < self.settings.n_trials

    def _counted_through(self, number: int) -> int:
        return self._budget_count(number)[0]

    def _budget_count(self, upto: int | None = None) -> tuple[int, bool]:
        """(trials using up the budget, numbered <= `upto`; any trial WAITING).

        Finished trials never change whether they count, so they are counted once: a
        prefix sum up to the first unfinished trial plus a cache after it. This keeps
        asks O(trials in flight) instead of O(all trials).
        """
        trials = self.study.get_trials(deepcopy=False)
        while self._frontier < len(trials) and trials[self._frontier].state.is_finished():
            t = trials[self._frontier]
            self._prefix.append(self._prefix[-1] + _counts(t))
            self._finished_counts.pop(t.number, None)
            self._frontier += 1
        stop = len(trials) if upto is None else min(len(trials), upto + 1)
        if stop <= self._frontier:
            return self._prefix[stop], False
        count, waiting = self._prefix[self._frontier], False
        for t in trials[self._frontier:stop]:
            cached = self._finished_counts.get(t.number)
            if cached is None:
                cached = _counts(t)
                if t.state.is_finished():
                    self._finished_counts[t.number] = cached
                else:
                    waiting = waiting or t.state == TrialState.WAITING
            count += cached
        return count, waiting

    # -- reporting -------------------------------------------------------------------------
    def report(self, number: int, step: int, value: float) -> bool:
        """Record an intermediate value; True when the trial should stop (pruned)."""
        trial = self._trials.get(number)
        if trial is None or number not in self._running:
            return True                                  # unknown or abandoned: stop it
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"trial {number}: step must be an integer >= 0, got {step!r}")
        value = float(value)
        if not math.isfinite(value):
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")       # a step reported twice keeps its first value
            trial.report(value, step)
        return trial.should_prune()

    # -- telling ---------------------------------------------------------------------------
    def tell_result(self, outcome: TrialOutcome) -> list[TrialRecord]:
        """Finish a trial; return the records finalized now (rows for the result file)."""
        n = outcome.number
        if n not in self._running:
            log.warning("ignoring a result for trial %d, which is not in flight", n)
            return self.drain_records()
        self._running.discard(n)
        if self.settings.deterministic:
            self._buffer[n] = outcome
            self._flush_final()
        else:
            self._records.append(self._finish(outcome))
        return self.drain_records()

    def drain_records(self) -> list[TrialRecord]:
        """Records finalized since the last call (deterministic mode tells inside ask())."""
        out = list(self._records)
        self._records.clear()
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
        trial = self._trials.pop(o.number)
        spec = self._specs.pop(o.number)
        state, value, error = o.state, o.value, o.error
        if state == "complete" and (value is None or not math.isfinite(value)):
            state, error = "failed", f"objective returned {value!r}"
        retried = False
        storage, tid = self.study._storage, trial._trial_id   # noqa: SLF001
        if storage.get_trial(tid).state.is_finished():
            log.warning("trial %d was re-queued by another coordinator while it ran here "
                        "(this one looked dead); its result goes to the result file only",
                        o.number)
            return self._record(o, spec, state, value, error, retried, {})
        trial.set_user_attr(A_RUN, {"started": o.started, "duration": o.duration,
                                    "worker": o.worker})
        if o.info:
            trial.set_user_attr(A_INFO, o.info)
        if state == "complete":
            self.study.tell(trial, value, skip_if_finished=True)
        elif state == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            error = (error or "unknown error")[-_MAX_ERROR:]
            trial.set_user_attr(A_ERROR, error)
            if spec.attempt < self.settings.max_retries:
                retried = True
                # enqueue first, then un-count: a sibling may briefly see one trial too
                # many (and wait), never one too few (and overrun n_trials)
                self.study.enqueue_trial(trial.params, user_attrs={
                    A_RETRY_OF: spec.retry_of if spec.retry_of is not None else o.number,
                    A_ATTEMPT: spec.attempt + 1})
                trial.set_user_attr(A_RETRIED, True)
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        frozen = storage.get_trial(tid)
        if state == "pruned":
            value = frozen.value
        return self._record(o, spec, state, value, error, retried, frozen.intermediate_values)

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
        """End this coordinator and return the last records. Buffered (deterministic)
        outcomes are told; trials still running are told FAIL (``hpcopt_interrupted``,
        not counted) and their params enqueued, so a resumed run or a sibling re-runs them."""
        self._stopped = self._stopped or reason
        for n in list(self._asked[self._released:]):
            if n in self._buffer:
                self._records.append(self._finish(self._buffer.pop(n)))
        for n in sorted(self._running):
            self._abandon(self._trials.pop(n), self._specs.pop(n), reason)
        self._running.clear()
        self._write_heartbeat(closed=True)
        return self.drain_records()

    def _abandon(self, trial: optuna.Trial | FrozenTrial, spec_attempt: Any, why: str) -> None:
        attempt = spec_attempt.attempt if isinstance(spec_attempt, TrialSpec) else spec_attempt
        retry_of = (spec_attempt.retry_of if isinstance(spec_attempt, TrialSpec)
                    else trial.user_attrs.get(A_RETRY_OF))
        storage, tid = self.study._storage, trial._trial_id   # noqa: SLF001
        attrs = {A_ATTEMPT: attempt}
        if retry_of is not None:
            attrs[A_RETRY_OF] = retry_of
        self.study.enqueue_trial(dict(trial.params), user_attrs=attrs)   # first: see _finish
        storage.set_trial_user_attr(tid, A_INTERRUPTED, True)
        storage.set_trial_user_attr(tid, A_ERROR, f"interrupted: {why}")
        self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)

    # -- heartbeats and stale trials ---------------------------------------------------------
    def heartbeat(self, force: bool = False) -> None:
        """Record that this coordinator is alive and reap trials of dead ones (rate-limited)."""
        now = self._clock()
        if not force and now - self._last_hb < self._hb_interval:
            return
        self._last_hb = now
        self._write_heartbeat()
        self.reap_stale()

    def _write_heartbeat(self, closed: bool = False) -> None:
        self.study._storage.set_study_system_attr(   # noqa: SLF001
            self.study._study_id, HEARTBEAT_PREFIX + self.owner,
            {"host": HOST, "pid": os.getpid(), "time": time.time(), "closed": closed})

    def reap_stale(self) -> list[int]:
        """Fail and re-enqueue RUNNING trials whose coordinator is gone; return their numbers.

        A coordinator killed between Optuna's ask and recording itself as the owner leaves
        a RUNNING trial without an owner: it is reaped when no other coordinator of the
        study is alive (nobody can be about to claim it), else once it is stale.
        """
        attrs = self.study._storage.get_study_system_attrs(self.study._study_id)  # noqa: SLF001
        beats = {k[len(HEARTBEAT_PREFIX):]: v for k, v in attrs.items()
                 if k.startswith(HEARTBEAT_PREFIX)}
        siblings_alive = any(o != self.owner and not self._is_dead(b) for o, b in beats.items())
        reaped = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
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
            self._abandon(t, int(t.user_attrs.get(A_ATTEMPT, 0)), why)
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
    def finished_records(self) -> list[TrialRecord]:
        """Every finished trial in the study as records (for a resumed result file that
        missed rows written after the storage): over-budget and interrupted ones left out."""
        out = []
        for t in self.study.get_trials(deepcopy=False):
            if not t.state.is_finished() or t.user_attrs.get(A_OVER) \
                    or t.user_attrs.get(A_INTERRUPTED):
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


def _counts(t: FrozenTrial) -> bool:
    """Does trial `t` use up one unit of the n_trials budget?"""
    return not any(t.user_attrs.get(a) for a in _NOT_COUNTED)


def _pid_alive(pid: Any) -> bool:
    from .storage import _pid_alive as alive
    return alive(pid)
