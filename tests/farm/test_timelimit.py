"""hpcopt.timelimit: SIGALRM in the main thread, a watchdog everywhere, tampering caught."""

import signal
import threading
import time

import pytest

from hpcopt import timelimit
from hpcopt.timelimit import TaskTimeout, TimeLimitTampered, time_limit


@pytest.fixture(autouse=True)
def short_grace(monkeypatch):
    monkeypatch.setattr(timelimit, "WATCHDOG_GRACE", 0.3)
    before = signal.getsignal(signal.SIGALRM)
    timer = signal.getitimer(signal.ITIMER_REAL)[0]        # pytest-timeout may run one
    t0 = time.monotonic()
    yield
    assert signal.getsignal(signal.SIGALRM) == before      # every block restores it...
    left = signal.getitimer(signal.ITIMER_REAL)[0]         # ...and an enclosing timer
    assert (left == 0) if timer == 0 else abs(left - (timer - (time.monotonic() - t0))) < 0.5


def outcome(fn, seconds=0.2):
    t0 = time.monotonic()
    try:
        with time_limit(seconds):
            fn()
        result = "ok"
    except TaskTimeout as exc:
        result = f"timeout: {exc}"
    except TimeLimitTampered as exc:
        result = f"tampered: {exc}"
    return result, time.monotonic() - t0


def spin():
    while True:
        pass


def test_a_block_within_its_limit_is_untouched():
    assert outcome(lambda: time.sleep(0.01))[0] == "ok"
    assert outcome(lambda: None, seconds=None)[0] == "ok"


@pytest.mark.parametrize("fn", [lambda: time.sleep(30), spin], ids=["sleep", "loop"])
def test_sleeps_and_loops_end_at_the_limit(fn):
    result, took = outcome(fn)
    assert result == "timeout: exceeded its time limit of 0.2 s" and 0.19 < took < 0.6


def test_a_replaced_handler_cannot_keep_a_loop_running():
    """Before: the replaced handler ate the alarm and the loop ran forever."""
    def steal_then_loop():
        signal.signal(signal.SIGALRM, lambda s, f: None)
        while True:
            time.sleep(0.005)
    result, took = outcome(steal_then_loop)
    assert result.startswith("timeout") and 0.45 < took < 1.5     # limit + grace


def test_swallowing_the_timeout_does_not_make_the_task_ok():
    def swallow():
        try:
            time.sleep(30)
        except BaseException:
            pass
    assert outcome(swallow)[0].startswith("timeout")


@pytest.mark.parametrize("tamper, what", [
    (lambda: signal.signal(signal.SIGALRM, signal.SIG_IGN), "replaced the SIGALRM handler"),
    (lambda: signal.setitimer(signal.ITIMER_REAL, 0), "cancelled the SIGALRM timer"),
])
def test_a_disabled_timer_fails_the_block(tamper, what):
    """Before: the block ended ok although no limit was in force."""
    result, _ = outcome(tamper)
    assert result.startswith("tampered") and what in result and "isolation" in result


def test_limits_nest():
    def inner_then_sleep():
        with time_limit(10):
            time.sleep(0.01)
        time.sleep(30)                  # the outer limit still holds
    result, took = outcome(inner_then_sleep)
    assert result.startswith("timeout: exceeded its time limit of 0.2 s") and took < 0.6


def test_other_threads_get_the_watchdog():
    results = []
    t = threading.Thread(target=lambda: results.append(outcome(spin)))
    t.start()
    t.join(10)
    result, took = results[0]
    assert result == "timeout: exceeded its time limit of 0.2 s" and took < 0.6
