"""``EdgeDecisions``: the changes it notices, each with the feature time behind it.

The client is a dict behind ``mget`` (the only call the edge makes); the merge script that
writes these keys is tested against real Redis in ``tests/integration/test_enforcement.py``.
"""

from __future__ import annotations

from botscore.enforcement.decisions import decision_key, latest_key
from botscore.enforcement.edge import EdgeDecisions, NewDecision
from botscore.vocabulary import Decision
from tests.unit.redis_fakes import KeyStore


class _Keys(KeyStore):
    def decide(self, user: str, decision: str | None, latest: str) -> None:
        """What the merge leaves: the decision key (none for allow) and the latest score."""
        if decision is None:
            self.values.pop(decision_key(user), None)
        else:
            self.values[decision_key(user)] = decision.encode()
        self.values[latest_key(user)] = latest.encode()


def _edge(keys: _Keys, clock: list[float]) -> EdgeDecisions:
    return EdgeDecisions(keys, cache_ms=1000, clock=lambda: clock[0])  # type: ignore[arg-type]


def test_a_changed_decision_is_kept_with_its_score_s_feature_time_and_when_it_was_seen() -> None:
    keys, clock = _Keys(), [0.0]
    edge = _edge(keys, clock)
    assert edge.decision_for("u1") is Decision.ALLOW  # first sight: nothing changed
    assert edge.decision_for("u2") is Decision.ALLOW
    keys.decide("u1", "block", "1790000004000 2 17 2")
    clock[0] = 1.5
    assert edge.decision_for("u2") is Decision.ALLOW  # the refresh reads u1 and u2
    assert edge.take_new_decisions() == [NewDecision("u1", Decision.BLOCK, 1_790_000_004_000, 1.5)]
    assert edge.take_new_decisions() == []  # taken once
    # a newer challenge replaces the block; then an allow lifts it
    keys.decide("u1", "challenge", "1790000009000 2 30 1")
    edge.decision_for("u1")
    clock[0] = 3.0
    edge.decision_for("u1")
    keys.decide("u1", None, "1790000012000 1 5 0")
    clock[0] = 4.5
    edge.decision_for("u1")
    assert [(n.decision, n.feature_time_ms) for n in edge.take_new_decisions()] == [
        (Decision.CHALLENGE, 1_790_000_009_000),
        (Decision.ALLOW, 1_790_000_012_000),
    ]


def test_a_decision_that_lapsed_is_no_new_decision() -> None:
    keys, clock = _Keys(), [0.0]
    keys.decide("u1", "block", "1790000004000 2 17 2")
    edge = _edge(keys, clock)
    assert edge.decision_for("u1") is Decision.BLOCK
    keys.values.pop(decision_key("u1"))  # the block's life ended; its score is the newest
    clock[0] = 1.0
    assert edge.decision_for("u1") is Decision.ALLOW
    assert edge.take_new_decisions() == []


def test_unreadable_feature_times_and_outages_keep_nothing() -> None:
    keys, clock = _Keys(), [0.0]
    edge = _edge(keys, clock)
    edge.decision_for("u1")
    keys.values[decision_key("u1")] = b"block"  # no latest key (or a mangled one)
    keys.values[latest_key("u1")] = b"not numbers"
    clock[0] = 1.0
    assert edge.decision_for("u1") is Decision.BLOCK
    assert edge.take_new_decisions() == []
    keys.down = True  # failing open: allow, and no change recorded from nothing
    clock[0] = 2.0
    assert edge.decision_for("u1") is Decision.ALLOW
    assert edge.take_new_decisions() == []
