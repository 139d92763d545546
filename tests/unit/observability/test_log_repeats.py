"""Repeated library log lines: the first shown, copies dropped for a window, then counted."""

from __future__ import annotations

import logging

from botscore.observability.log_repeats import RepeatBudget, RepeatsFilter, quiet_repeats


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, *args: object, level: int = logging.ERROR, name: str = "kafka.x"):
    return logging.LogRecord(name, level, __file__, 1, msg, args or None, None)


def _shown(f: RepeatsFilter, record: logging.LogRecord) -> str | None:
    return record.getMessage() if f.filter(record) else None


def test_copies_are_dropped_for_the_window_then_counted_on_the_next_line():
    clock = Clock()
    f = RepeatsFilter(window_s=60, clock=clock)
    topic = "Topic %s not found in cluster metadata"
    assert _shown(f, _record(topic, "t1")) == "Topic t1 not found in cluster metadata"
    for step in range(1, 500):
        clock.now = step * 0.1
        assert _shown(f, _record(topic, "t1")) is None
    clock.now = 60.5
    assert _shown(f, _record(topic, "t1")) == (
        "Topic t1 not found in cluster metadata (and 499 more like it in the last 60 s)"
    )
    # A new window starts there; a line after a quiet window carries no count.
    clock.now = 200.0
    assert _shown(f, _record(topic, "t1")) == "Topic t1 not found in cluster metadata"


def test_other_arguments_levels_and_loggers_are_other_lines():
    f = RepeatsFilter(window_s=60, clock=Clock())
    assert _shown(f, _record("Topic %s gone", "t1")) is not None
    assert _shown(f, _record("Topic %s gone", "t2")) is not None
    assert _shown(f, _record("Topic %s gone", "t1", level=logging.WARNING)) is not None
    assert _shown(f, _record("Topic %s gone", "t1", name="kafka.y")) is not None
    assert _shown(f, _record("Topic %s gone", "t1")) is None


def test_unhashable_arguments_compare_by_text():
    f = RepeatsFilter(window_s=60, clock=Clock())
    assert _shown(f, _record("partitions %s", ["p0"])) == "partitions ['p0']"
    assert _shown(f, _record("partitions %s", ["p0"])) is None
    assert _shown(f, _record("partitions %s", ["p1"])) == "partitions ['p1']"


def test_memory_stays_bounded_however_many_messages_differ():
    f = RepeatsFilter(window_s=60, clock=Clock())
    for i in range(5000):
        f.filter(_record("offset %d", i))
    assert len(f.budget.seen) <= 1000


def test_every_logger_of_the_package_gets_one_filter():
    logging.getLogger("botscore-test-pkg.a.b")
    quiet_repeats("botscore-test-pkg")
    quiet_repeats("botscore-test-pkg")
    for name in ("botscore-test-pkg", "botscore-test-pkg.a.b"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(x, RepeatsFilter) for x in filters) == 1, name
    assert not logging.getLogger("botscore-test-pkgx").filters


def test_a_budget_lets_one_line_per_key_and_window_through_and_counts_the_rest():
    clock = Clock()
    budget = RepeatBudget(window_s=60, clock=clock)
    assert [budget.due("a"), budget.due("a"), budget.due("b"), budget.due("a")] == [
        0,
        None,
        0,
        None,
    ]
    clock.now = 59.9
    assert budget.due("a") is None
    clock.now = 60.0
    assert budget.due("a") == 3
    assert budget.held_note(3) == " (and 3 more like it since the last such line)"
    assert budget.held_note(0) == ""
    clock.now = 200.0
    assert budget.due("a") == 0  # nothing held back since
