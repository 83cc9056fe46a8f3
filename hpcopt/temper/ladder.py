"""Temperature ladders: geometric, explicit, and adaptive (then frozen).

Slot 0 is the coldest temperature.  The adaptive ladder follows Vousden, Farr and
Mandel (MNRAS 455, 1919, 2016): the log-gaps s_k = log(log T_{k+1} - log T_k)
move by kappa(t) * A_k, where A_k is the acceptance probability of the pair
(k, k+1), with the decaying rate kappa(t) = 1 / (adapt_time * (1 + t / adapt_lag)).
Here both ends stay fixed: the gaps are rescaled to span log(T_max / T_min) after
each update, which subtracts a common term from every s_k, so the fixed point is
the ladder with equal neighbour acceptance (as in the paper, where the hottest
gap absorbs the difference).  Adapting breaks detailed balance, so the ladder
freezes after `adapt_rounds` rounds (burn-in by default).
"""

from __future__ import annotations

import numpy as np


def geometric_ladder(t_min: float, t_max: float, n: int) -> np.ndarray:
    """`n` temperatures from t_min to t_max with a constant ratio (ends exact)."""
    if n < 1 or not 0 < t_min <= t_max or (n > 1 and not t_max > t_min):
        raise ValueError(f"need n >= 1 and 0 < t_min < t_max, got {n}, {t_min}, {t_max}")
    if n == 1:
        return np.array([float(t_min)])
    temps = t_min * (t_max / t_min) ** (np.arange(n) / (n - 1))
    temps[0], temps[-1] = t_min, t_max
    return temps


def check_ladder(temperatures) -> np.ndarray:
    """A float64 copy of `temperatures`, checked positive, finite and strictly increasing."""
    t = np.array(temperatures, dtype=np.float64)
    if t.ndim != 1 or t.size < 1 or not np.all(np.isfinite(t)) or not np.all(t > 0) \
            or not np.all(np.diff(t) > 0):
        raise ValueError(f"a ladder needs positive finite strictly increasing temperatures, got {t}")
    return t


class Ladder:
    """The slot temperatures of a campaign; adapts while `adapting(round)` is true."""

    def __init__(self, temperatures, *, adaptive: bool = False, adapt_rounds: int = 0,
                 adapt_lag: float = 100.0, adapt_time: float = 10.0):
        self._t = check_ladder(temperatures)
        self.adaptive = bool(adaptive)
        self.adapt_rounds = int(adapt_rounds)
        self.adapt_lag = float(adapt_lag)
        self.adapt_time = float(adapt_time)
        if self.adaptive and not (self.adapt_lag > 0 and self.adapt_time > 0):
            raise ValueError("adapt_lag and adapt_time must be > 0")

    @classmethod
    def from_spec(cls, spec) -> "Ladder":
        """From a config.LadderSpec."""
        return cls(spec.temperatures, adaptive=spec.kind == "adaptive",
                   adapt_rounds=spec.adapt_rounds, adapt_lag=spec.adapt_lag,
                   adapt_time=spec.adapt_time)

    @property
    def temperatures(self) -> np.ndarray:
        return self._t.copy()

    @property
    def betas(self) -> np.ndarray:
        return 1.0 / self._t

    def __len__(self) -> int:
        return self._t.size

    def adapting(self, round_no: int) -> bool:
        return self.adaptive and round_no < self.adapt_rounds and self._t.size > 2

    def rate(self, round_no: int) -> float:
        """kappa(t) = 1 / (adapt_time * (1 + t / adapt_lag))."""
        return 1.0 / (self.adapt_time * (1.0 + round_no / self.adapt_lag))

    def update(self, round_no: int, acceptance: np.ndarray) -> None:
        """Move the inner temperatures after round `round_no` (no-op when not adapting).

        `acceptance[k]` estimates the swap acceptance of slots (k, k+1); the campaign
        passes min(1, exp(dbeta * dE)) of the current configuration for every pair.
        """
        if not self.adapting(round_no):
            return
        acceptance = np.asarray(acceptance, dtype=np.float64)
        if acceptance.shape != (self._t.size - 1,) or not np.all(np.isfinite(acceptance)):
            raise ValueError(f"need {self._t.size - 1} finite acceptance values")
        log_t = np.log(self._t)
        span = log_t[-1] - log_t[0]
        gaps = np.exp(np.log(np.diff(log_t)) + self.rate(round_no) * acceptance)
        gaps *= span / gaps.sum()
        new_log_t = log_t[0] + np.concatenate(([0.0], np.cumsum(gaps)))
        new = np.exp(new_log_t)
        new[0], new[-1] = self._t[0], self._t[-1]
        if np.all(np.diff(new) > 0):  # always true in exact arithmetic; keep the ladder valid
            self._t = new

    def state(self) -> dict[str, np.ndarray]:
        return {"temperatures": self._t.copy()}

    def restore(self, state: dict) -> None:
        t = check_ladder(state["temperatures"])
        if t.size != self._t.size:
            raise ValueError(f"checkpoint ladder has {t.size} temperatures, config {self._t.size}")
        self._t = t
