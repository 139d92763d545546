import logging
import threading

import redis

from botscore.enforcement import consumer

FAILURES = 5_000


class _InstantStop(threading.Event):
    """A stop event whose waits return at once, remembering what was asked."""

    def __init__(self):
        super().__init__()
        self.waits = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return self.is_set()


def _failing(times):
    calls = []

    def action():
        calls.append(None)
        if len(calls) <= times:
            raise redis.RedisError("connection refused")

    return action, calls


def test_the_retry_loop_survives_five_thousand_failures_and_logs_sparingly(caplog):
    caplog.set_level(logging.INFO, logger=consumer.__name__)
    stop = _InstantStop()
    action, calls = _failing(FAILURES)
    assert consumer._until_done(stop, "writing decisions", action) is True
    assert len(calls) == FAILURES + 1
    assert len(stop.waits) == FAILURES
    assert all(0 < wait <= consumer._RETRY_BACKOFF.max_s for wait in stop.waits)
    assert stop.waits[-1] == consumer._RETRY_BACKOFF.max_s

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    logged_attempts = [r.args[1] for r in errors]
    powers_of_two = [2**n for n in range(2, 13)]  # 4 .. 4096
    every_120th = list(range(120, FAILURES + 1, 120))
    assert logged_attempts == sorted({1, 2, 3, *powers_of_two, *every_120th})
    assert len(errors) == 55
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"after {FAILURES} failed attempts" in warnings[0].getMessage()


def test_the_retry_loop_gives_up_when_stopped():
    stop = _InstantStop()
    action, calls = _failing(10)
    stop.set()
    assert consumer._until_done(stop, "writing decisions", action) is False
    assert calls == []
