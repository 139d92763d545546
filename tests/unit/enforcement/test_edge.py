"""``EdgeDecisions``: the changes it notices, each with the feature time behind it, and how
it answers while Redis fails.

The client is a dict behind ``mget`` (the only call the edge makes), or a real redis-py
client facing a Redis that hangs, refuses or answers (``tcp_redis``); the merge script that
writes these keys is tested against real Redis in ``tests/integration/test_enforcement.py``.
"""

from __future__ import annotations

import socket
import time
from unittest import mock

from botscore.enforcement.decisions import decision_key, latest_key
from botscore.enforcement.edge import EdgeDecisions, NewDecision
from botscore.settings import EdgeSettings, RedisSettings, Settings
from botscore.transport.redis_client import create_edge_redis
from botscore.vocabulary import Decision
from tests.unit.enforcement.tcp_redis import TcpRedis
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


# A Redis that fails: each lookup answers within this once the edge knows (no Redis call).
AT_ONCE_S = 0.05
# The edge's own timeout in these tests; a call to a hung Redis takes that long.
TIMEOUT_MS = 100


def _real_edge(port: int, clock: list[float]) -> EdgeDecisions:
    """An edge on a real redis-py client, built as the edge's, at ``port``."""
    settings = Settings(
        redis=RedisSettings(port=port), edge=EdgeSettings(redis_timeout_ms=TIMEOUT_MS)
    )
    client = create_edge_redis(settings)
    return EdgeDecisions(client, cache_ms=1000, retry_ms=1000, clock=lambda: clock[0])


def _timed(edge: EdgeDecisions, user: str) -> tuple[Decision, float]:
    started = time.monotonic()
    decision = edge.decision_for(user)
    return decision, time.monotonic() - started


def _lookups_meanwhile(edge: EdgeDecisions, clock: list[float], until: float) -> None:
    """Many users, new and seen, looked up before ``until``: each allowed at once."""
    start = clock[0]
    for i in range(100):
        clock[0] = start + (until - start) * i / 100
        decision, took = _timed(edge, f"u{i % 30}")
        assert (decision, took < AT_ONCE_S) == (Decision.ALLOW, True), took


def _connections_settle(server: TcpRedis, expected: int) -> int:
    """The server's count once its accepting thread caught up (the kernel accepts first)."""
    deadline = time.monotonic() + 2
    while server.connections < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # and a call too many would have shown by now
    return server.connections


def test_a_hung_redis_costs_one_short_wait_then_one_call_per_retry_until_it_answers() -> None:
    server, clock = TcpRedis(), [0.0]
    try:
        edge = _real_edge(server.port, clock)
        decision, took = _timed(edge, "u1")  # the edge's timeout, not redis.socket_timeout_s
        assert decision is Decision.ALLOW and TIMEOUT_MS / 1000 <= took < 0.5
        _lookups_meanwhile(edge, clock, until=1.0)
        assert edge.stats() is None  # not asked either: it would wait as long
        assert _connections_settle(server, 1) == 1
        clock[0] = 1.0  # time to ask again: one lookup waits, the others do not
        decision, took = _timed(edge, "u1")
        assert decision is Decision.ALLOW and took < 0.5
        _lookups_meanwhile(edge, clock, until=2.0)
        assert _connections_settle(server, 2) == 2
        server.values[decision_key("u1")] = b"block"
        server.answering.set()
        clock[0] = 2.0
        assert edge.decision_for("u1") is Decision.BLOCK  # back by itself
        assert edge.decision_for("u2") is Decision.ALLOW
    finally:
        server.close()


def test_a_refused_redis_is_asked_once_per_retry_until_it_listens() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]  # free once closed: connections are refused
    clock = [0.0]
    edge = _real_edge(port, clock)
    with mock.patch.object(edge.client, "mget", wraps=edge.client.mget) as mget:
        assert edge.decision_for("u1") is Decision.ALLOW
        _lookups_meanwhile(edge, clock, until=1.0)
        assert mget.call_count == 1
        clock[0] = 1.0
        _lookups_meanwhile(edge, clock, until=2.0)
        assert mget.call_count == 2
        server = TcpRedis(port)
        try:
            server.values[decision_key("u1")] = b"challenge"
            server.answering.set()
            clock[0] = 2.0
            assert edge.decision_for("u1") is Decision.CHALLENGE
            assert edge.decision_for("u2") is Decision.ALLOW
            assert mget.call_count == 4  # the refresh, and the read of u1's change
        finally:
            server.close()
