"""Tempering statistics: running accumulators, post-hoc estimators (the record dtypes are
store.dtypes').

Every accumulator is updated from data every rank holds after the round's
allgather, so all ranks carry identical statistics and any rank can write them.
Accumulators count rounds >= burn_in only (the per-round records hold everything).
"""

from __future__ import annotations

import math

import numpy as np

from ..store.dtypes import PAIR_DTYPE, SLOT_DTYPE

# -- round trips -------------------------------------------------------------------------------

class RoundTrips:
    """Counts T_min -> T_max -> T_min round trips of every replica.

    A trip starts when a replica is seen at slot 0 and ends the next time it is
    seen at slot 0 after having been at the top slot; its time is in rounds.
    """

    def __init__(self, n_replicas: int):
        self.n = n_replicas
        self.heading = np.zeros(n_replicas, dtype=np.int8)   # 0 unseen, 1 going up, -1 coming down
        self.start = np.full(n_replicas, -1, dtype=np.int64)
        self.count = np.zeros(n_replicas, dtype=np.int64)
        self.time_sum = np.zeros(n_replicas, dtype=np.int64)

    def observe(self, slot_of_replica: np.ndarray, round_no: int) -> None:
        if self.n < 2:
            return
        for i in np.flatnonzero(slot_of_replica == 0):
            if self.heading[i] == -1:
                self.count[i] += 1
                self.time_sum[i] += round_no - self.start[i]
            self.heading[i], self.start[i] = 1, round_no
        top = slot_of_replica == self.n - 1
        self.heading[top & (self.heading == 1)] = -1

    def mean_time(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.time_sum / np.maximum(self.count, 1), np.nan)

    def state(self) -> dict[str, np.ndarray]:
        return {"trip_heading": self.heading.copy(), "trip_start": self.start.copy(),
                "trip_count": self.count.copy(), "trip_time_sum": self.time_sum.copy()}

    def restore(self, s: dict) -> None:
        self.heading = np.array(s["trip_heading"], dtype=np.int8)
        self.start = np.array(s["trip_start"], dtype=np.int64)
        self.count = np.array(s["trip_count"], dtype=np.int64)
        self.time_sum = np.array(s["trip_time_sum"], dtype=np.int64)


def round_trips_from_slots(slots_by_round: np.ndarray, first_round: int = 0) -> RoundTrips:
    """Post-hoc round-trip counts from the `slot` column of the round records."""
    slots_by_round = np.asarray(slots_by_round)
    trips = RoundTrips(slots_by_round.shape[1])
    for r, slots in enumerate(slots_by_round):
        trips.observe(slots, first_round + r)
    return trips


# -- log Z(T_min) - log Z(T_max) ---------------------------------------------------------------

#: batches of the log Z estimators' errors: between MAX_BATCHES / 2 and MAX_BATCHES full ones
MAX_BATCHES = 64
LOG_Z_METHODS = ("stepping_stone", "thermodynamic_integration")
#: result-file root attributes of each method: (estimate, standard error)
LOG_Z_ATTRS = {"stepping_stone": ("log_z_stepping_stone", "log_z_stepping_stone_error"),
               "thermodynamic_integration": ("log_z_ratio", "log_z_ratio_error")}
LOG_Z_LABELS = {"stepping_stone": "stepping stones",
                "thermodynamic_integration": "thermodynamic integration (trapezoid in ln beta; error "
                                             "without its quadrature bias)"}


def log_z_lines(log_z: dict[str, tuple[float, float]], indent: str = "") -> list[str]:
    """Text lines of the log Z estimates that exist (run summary and `hpcopt report`)."""
    lines = []
    for method in LOG_Z_METHODS:
        value, err = log_z.get(method, (math.nan, math.nan))
        if value is not None and math.isfinite(value):
            pm = f" +- {err:.2g}" if err is not None and math.isfinite(err) else ""
            lines.append(f"{indent}  {value:.6g}{pm} by {LOG_Z_LABELS[method]}")
    return [f"{indent}log Z(T_min) - log Z(T_max):"] + lines if lines else []


class LogZAccumulator:
    """Running sums for two estimates of log Z(T_min) - log Z(T_max), with batch-means errors.

    * stepping stones: Z(beta_k) / Z(beta_k+1) = < exp(-(beta_k - beta_k+1) E) > at
      beta_k+1, so the log ratio is the sum over neighbour pairs of the log of that
      average (no quadrature bias; kept as log-sum-exp sums, so nothing overflows);
    * thermodynamic integration: the mean energy of every slot (trapezoid rule in
      ln beta, see :func:`thermodynamic_integration`).

    Rounds are summed in batches of consecutive rounds: when MAX_BATCHES are full,
    neighbouring batches merge and the batch length doubles.  The layout depends
    only on the number of rounds added, so a campaign extended later accumulates
    exactly as if it had been run to the new length at once.
    """

    def __init__(self, n_slots: int):
        self.n = n_slots
        p = max(n_slots - 1, 0)
        self.batch_rounds = 1          # rounds per batch (a power of two)
        self.n_batches = 0             # batches in use; the last one may be partial
        self.count = np.zeros(MAX_BATCHES, dtype=np.int64)
        self.log_max = np.full((MAX_BATCHES, p), -np.inf)   # per batch and pair: max exponent
        self.exp_sum = np.zeros((MAX_BATCHES, p))           # sum of exp(exponent - log_max)
        self.energy_sum = np.zeros((MAX_BATCHES, n_slots))

    def add(self, energy_by_slot: np.ndarray, betas: np.ndarray) -> None:
        """Account one round: the energy at every slot after its moves, the ladder's betas."""
        if self.n_batches == 0 or self.count[self.n_batches - 1] == self.batch_rounds:
            if self.n_batches == MAX_BATCHES:
                self._merge_pairs()
            self.n_batches += 1
        b = self.n_batches - 1
        exponent = -(betas[:-1] - betas[1:]) * energy_by_slot[1:]
        top = np.maximum(self.log_max[b], exponent)
        self.exp_sum[b] = self.exp_sum[b] * np.exp(self.log_max[b] - top) + np.exp(exponent - top)
        self.log_max[b] = top
        self.energy_sum[b] += energy_by_slot
        self.count[b] += 1

    def _merge_pairs(self) -> None:
        half = MAX_BATCHES // 2
        lo, hi = slice(0, MAX_BATCHES, 2), slice(1, MAX_BATCHES, 2)
        self.count[:half], self.log_max[:half], self.exp_sum[:half] = (
            self.count[lo] + self.count[hi],
            *_merged(self.log_max[lo], self.exp_sum[lo], self.log_max[hi], self.exp_sum[hi]))
        self.energy_sum[:half] = self.energy_sum[lo] + self.energy_sum[hi]
        self.count[half:] = 0
        self.log_max[half:], self.exp_sum[half:], self.energy_sum[half:] = -np.inf, 0.0, 0.0
        self.n_batches, self.batch_rounds = half, 2 * self.batch_rounds

    @property
    def rounds(self) -> int:
        return int(self.count.sum())

    def estimates(self, temperatures: np.ndarray) -> dict[str, tuple[float, float]]:
        """{method: (log Z(T_min) - log Z(T_max), batch-means standard error)}.

        nan without two slots or rounds; the error is nan with fewer than two full batches.
        The error of thermodynamic integration is statistical only (its quadrature bias
        on a coarse ladder is not in it: compare with the stepping stones).
        """
        nan = (math.nan, math.nan)
        n = self.rounds
        if self.n < 2 or n == 0:
            return {m: nan for m in LOG_Z_METHODS}
        used = slice(0, self.n_batches)
        log_max, exp_sum = self.log_max[used], self.exp_sum[used]
        top = log_max.max(axis=0)
        total = (exp_sum * np.exp(log_max - top)).sum(axis=0)
        stones = float(np.sum(np.log(total) + top - math.log(n)))
        ti = thermodynamic_integration(temperatures, self.energy_sum[used].sum(axis=0) / n)[0]
        full = np.flatnonzero(self.count[used] == self.batch_rounds)
        stones_err = ti_err = math.nan
        if full.size >= 2:
            per_batch = np.log(exp_sum[full]) + log_max[full] - np.log(self.count[full])[:, None]
            stones_err = _standard_error(per_batch.sum(axis=1))
            means = self.energy_sum[full] / self.count[full][:, None]
            ti_err = _standard_error(np.array([thermodynamic_integration(temperatures, m)[0]
                                               for m in means]))
        return {"stepping_stone": (stones, stones_err),
                "thermodynamic_integration": (ti, ti_err)}

    _ARRAYS = ("count", "log_max", "exp_sum", "energy_sum")

    def state(self) -> dict[str, np.ndarray]:
        s = {f"logz_{name}": getattr(self, name).copy() for name in self._ARRAYS}
        s["logz_batch_rounds"] = np.int64(self.batch_rounds)
        s["logz_n_batches"] = np.int64(self.n_batches)
        return s

    def restore(self, s: dict) -> None:
        for name in self._ARRAYS:
            current = getattr(self, name)
            value = np.array(s[f"logz_{name}"], dtype=current.dtype)
            if value.shape != current.shape:
                raise ValueError(f"checkpoint logz_{name} has shape {value.shape}, expected "
                                 f"{current.shape}")
            setattr(self, name, value)
        self.batch_rounds = int(s["logz_batch_rounds"])
        self.n_batches = int(s["logz_n_batches"])


def _merged(max_a, sum_a, max_b, sum_b):
    """Two log-sum-exp partial sums as one (max, sum)."""
    top = np.maximum(max_a, max_b)
    with np.errstate(invalid="ignore"):      # -inf - -inf in unused rows: their sums are 0
        wa = np.where(sum_a > 0, np.exp(max_a - top), 0.0)
        wb = np.where(sum_b > 0, np.exp(max_b - top), 0.0)
    return top, sum_a * wa + sum_b * wb


def _standard_error(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(values.size))


def stepping_stones(energy_by_slot: np.ndarray, temperatures) -> float:
    """log Z(T_min) - log Z(T_max) by stepping stones from (rounds, slots) energies."""
    betas = 1.0 / np.asarray(temperatures, dtype=np.float64)
    exponent = -(betas[:-1] - betas[1:]) * np.asarray(energy_by_slot)[:, 1:]
    top = exponent.max(axis=0)
    return float(np.sum(np.log(np.mean(np.exp(exponent - top), axis=0)) + top))


# -- the running accumulators of a campaign ----------------------------------------------------

class TemperStats:
    """Pair acceptance, round trips, per-slot energy moments (Welford), running best."""

    def __init__(self, n_replicas: int, burn_in: int = 0):
        n, p = n_replicas, max(n_replicas - 1, 0)
        self.n, self.burn_in = n, int(burn_in)
        self.pair_attempted = np.zeros(p, dtype=np.int64)
        self.pair_accepted = np.zeros(p, dtype=np.int64)
        self.pair_probability_sum = np.zeros(p)
        self.slot_n = np.zeros(n, dtype=np.int64)
        self.slot_mean = np.zeros(n)
        self.slot_m2 = np.zeros(n)
        self.trips = RoundTrips(n)
        self.log_z = LogZAccumulator(n)
        self.best_energy = math.inf
        self.best_replica = -1
        self.n_samples = 0

    def update(self, round_no: int, slot_of_replica: np.ndarray, energies: np.ndarray,
               best_energies: np.ndarray, exchange=None, betas: np.ndarray | None = None) -> None:
        """Account round `round_no`: slots during its steps, energies after them, its exchange,
        the ladder's betas (slot order) during its steps."""
        i = int(np.argmin(best_energies))  # first replica on ties: identical on every rank
        if best_energies[i] < self.best_energy:
            self.best_energy, self.best_replica = float(best_energies[i]), i
        if round_no < self.burn_in:
            return
        e_slot = np.empty(self.n)
        e_slot[slot_of_replica] = energies
        self.slot_n += 1
        delta = e_slot - self.slot_mean
        self.slot_mean += delta / self.slot_n
        self.slot_m2 += delta * (e_slot - self.slot_mean)
        if betas is not None and self.n > 1:
            self.log_z.add(e_slot, betas)
        self.trips.observe(slot_of_replica, round_no)
        if exchange is not None and self.n > 1:
            self.pair_attempted += exchange.attempted
            self.pair_accepted += exchange.accepted
            self.pair_probability_sum += exchange.probability

    def slot_variance(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.slot_n > 1, self.slot_m2 / np.maximum(self.slot_n - 1, 1), np.nan)

    def pair_table(self, temperatures: np.ndarray) -> np.ndarray:
        rows = np.zeros(max(self.n - 1, 0), dtype=PAIR_DTYPE)
        rows["task_id"] = np.arange(rows.size)
        rows["t_low"], rows["t_high"] = temperatures[:-1], temperatures[1:]
        rows["attempted"], rows["accepted"] = self.pair_attempted, self.pair_accepted
        with np.errstate(invalid="ignore", divide="ignore"):
            rows["acceptance"] = np.where(self.pair_attempted > 0,
                                          self.pair_accepted / np.maximum(self.pair_attempted, 1), np.nan)
            rounds = self.slot_n[0] if self.n else 0
            rows["mean_probability"] = self.pair_probability_sum / rounds if rounds else np.nan
        return rows

    def slot_table(self, temperatures: np.ndarray) -> np.ndarray:
        rows = np.zeros(self.n, dtype=SLOT_DTYPE)
        rows["task_id"] = np.arange(self.n)
        rows["temperature"], rows["n"] = temperatures, self.slot_n
        rows["mean_energy"] = np.where(self.slot_n > 0, self.slot_mean, np.nan)
        rows["var_energy"] = self.slot_variance()
        return rows

    _ARRAYS = ("pair_attempted", "pair_accepted", "pair_probability_sum", "slot_n", "slot_mean",
               "slot_m2")

    def state(self) -> dict[str, np.ndarray]:
        s = {name: getattr(self, name).copy() for name in self._ARRAYS}
        s.update(self.trips.state())
        s.update(self.log_z.state())
        s["best_energy"] = np.float64(self.best_energy)
        s["best_replica"] = np.int64(self.best_replica)
        s["n_samples"] = np.int64(self.n_samples)
        return s

    def restore(self, s: dict) -> None:
        for name in self._ARRAYS:
            current = getattr(self, name)
            value = np.array(s[name], dtype=current.dtype)
            if value.shape != current.shape:
                raise ValueError(f"checkpoint {name} has shape {value.shape}, expected {current.shape}")
            setattr(self, name, value)
        self.trips.restore(s)
        self.log_z.restore(s)
        self.best_energy = float(s["best_energy"])
        self.best_replica = int(s["best_replica"])
        self.n_samples = int(s["n_samples"])


# -- post-hoc estimators -----------------------------------------------------------------------

def energies_by_slot(records: np.ndarray) -> np.ndarray:
    """(n_rounds, R) energies ordered by slot (column 0 = T_min chain) from round records."""
    out = np.empty_like(records["energy"])
    np.put_along_axis(out, records["slot"].astype(np.int64), records["energy"], axis=1)
    return out


def batch_means(series: np.ndarray, n_batches: int = 20, statistic=np.mean) -> tuple[float, float]:
    """(estimate, standard error) of `statistic` from `n_batches` contiguous batches.

    Accounts for autocorrelation shorter than a batch.  `series` may be (n,) or (n, k):
    the statistic is applied along axis 0 of each batch.
    """
    series = np.asarray(series, dtype=np.float64)
    size = series.shape[0] // n_batches
    if size < 1:
        raise ValueError(f"need at least {n_batches} values, got {series.shape[0]}")
    batches = series[: size * n_batches].reshape((n_batches, size) + series.shape[1:])
    values = np.array([statistic(b, axis=0) for b in batches])
    return statistic(series, axis=0), values.std(axis=0, ddof=1) / math.sqrt(n_batches)


def thermodynamic_integration(temperatures, mean_energies, errors=None) -> tuple[float, float]:
    """log Z(T_min) - log Z(T_max) = -integral of <E> d(beta), with standard error.

    d log Z / d beta = -<E>; the integral is taken as the trapezoid rule over
    u = ln beta of beta <E> (smooth for most targets: exact for a Gaussian).
    `errors`: independent standard errors of the mean energies (or None).
    """
    t = np.asarray(temperatures, dtype=np.float64)
    e = np.asarray(mean_energies, dtype=np.float64)
    if t.size < 2 or e.shape != t.shape:
        raise ValueError("need matching temperatures and mean energies, at least two of each")
    beta = 1.0 / t
    u = np.log(beta)
    du = -np.diff(u)                        # > 0: u decreases from the cold end
    w = np.zeros_like(u)
    w[:-1] += du / 2
    w[1:] += du / 2                         # integral over [u_hot, u_cold] = sum w_k f_k
    f = beta * e
    value = -float(np.sum(w * f))
    err = math.nan if errors is None else float(
        np.sqrt(np.sum((w * beta * np.asarray(errors, dtype=np.float64)) ** 2)))
    return value, err
