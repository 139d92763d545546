"""The edge's enforcement loop against the real broker and real Redis.

ThreatScores go onto a scores topic of the test's own through our producer; the enforcer
turns them into decisions in Redis database 3 (flushed around each test). The fault tests
use a redis-server of their own on a free port, so killing it never disturbs other suites.
The merge's property test (any arrival order gives the same decisions) and its argument
checks need Redis only: database 13 of the Redis that ``BOTSCORE_REDIS_HOST`` and
``BOTSCORE_REDIS_PORT`` name (by default the stack's).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
import redis
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, TopicPartition

from botscore.clock import now_ms
from botscore.enforcement.consumer import run_enforcer
from botscore.enforcement.decisions import (
    BLOCKED_USERS_KEY,
    CHALLENGED_USERS_KEY,
    DECISION_PREFIX,
    GENERATION_KEY,
    SCORED_USERS_KEY,
    DecisionWriter,
    decision_key,
    latest_key,
    read_stats,
)
from botscore.enforcement.edge import EdgeDecisions
from botscore.settings import (
    EnforcementSettings,
    MetricsSettings,
    Settings,
)
from botscore.simulator.population import build_population
from botscore.simulator.run import simulate
from botscore.simulator.spec import SimulationSpec
from botscore.transport.kafka_clients import connection_config
from botscore.transport.redis_client import create_redis
from botscore.v1.web_log_pb2 import WebLog
from botscore.wire.codec import encode_threat_score
from botscore.wire.dead_letters import decode_dead_letter
from botscore.wire.records import ScoreRecord, SourceRef
from tests.statsd import StatsdListener

from .faults import RedisServer, free_port, unreachable_redis_settings
from .harness import (
    ROOT,
    consume_all,
    delete_topics,
    empty_redis_db,
    fresh_topics,
    run_topics,
    stack_env,
    stack_redis_db,
)
from .stream import produce
from .wire_proofs import assert_failure_metrics_sent

pytestmark = [pytest.mark.integration, pytest.mark.aggregation]

REDIS_DB = 3  # the stack's Redis, a database of these tests' own
MERGE_DB = 13  # the merge property's own database, of the Redis the environment names
BLOCK_MS = EnforcementSettings().block_ttl_s * 1000
CHALLENGE_MS = EnforcementSettings().challenge_ttl_s * 1000


# ------------------------------------------------------------------ fixtures --


@pytest.fixture
def edge_redis() -> Iterator[redis.Redis]:
    with empty_redis_db(REDIS_DB) as client:
        yield client


@pytest.fixture
def settings(kafka_settings) -> Iterator[Settings]:
    topics = fresh_topics(kafka_settings)
    yield Settings(
        kafka=topics,
        redis=stack_redis_db(REDIS_DB),
        enforcement=EnforcementSettings(consumer_group=f"it-edge-{uuid.uuid4().hex[:8]}"),
        metrics=MetricsSettings(enabled=False),
    )
    delete_topics(topics, run_topics(topics))


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    """A redis-server of the test's own on a free port, run by the stack's script."""
    server = RedisServer(tmp_path / "own-redis", free_port())
    server.start()
    yield server
    server.stop()


# ------------------------------------------------------------------- helpers --


def _score(
    user_id: str, decision: str, feature_ms: int, offset: int = 0, partition: int = 0
) -> ScoreRecord:
    return ScoreRecord(
        user_id=user_id,
        score={"allow": 0.1, "challenge": 0.6, "block": 0.95}[decision],
        decision=decision,
        model_name="baseline",
        model_version="it",
        feature_time_ms=feature_ms,
        scored_time_ms=feature_ms + 50,
        source=SourceRef("it-features", partition, offset),
    )


def _produce_scores(settings: Settings, scores: list[ScoreRecord]) -> dict[int, int]:
    """Produce in order; return the end offset of each partition written to."""
    return _produce(settings, [(s.user_id.encode(), encode_threat_score(s)) for s in scores])


def _produce(settings: Settings, payloads: list[tuple[bytes, bytes]]) -> dict[int, int]:
    placed = produce(settings.kafka, payloads, topic=settings.kafka.scores_topic)
    ends: dict[int, int] = {}
    for partition, offset in placed:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


def _committed(settings: Settings) -> dict[int, int]:
    consumer = KafkaConsumer(
        **connection_config(settings.kafka),
        group_id=settings.enforcement.consumer_group,
        enable_auto_commit=False,
    )
    try:
        topic = settings.kafka.scores_topic
        positions = {
            p: consumer.committed(TopicPartition(topic, p))
            for p in consumer.partitions_for_topic(topic)
        }
    finally:
        consumer.close()
    return {p: pos for p, pos in positions.items() if pos is not None}


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def _wait_committed(settings: Settings, ends: dict[int, int], timeout_s: float = 60) -> None:
    _wait(
        lambda: all(_committed(settings).get(p, 0) >= end for p, end in ends.items()),
        timeout_s,
        f"offsets {ends} committed",
    )


@contextmanager
def enforcer(settings: Settings) -> Iterator[threading.Event]:
    """``run_enforcer`` on a thread; it must not raise, and must stop within seconds."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            run_enforcer(settings, stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive(), "the enforcer did not stop within 15 s"
    assert not errors, f"the enforcer raised {errors[0]!r}"


def _decisions(client: redis.Redis) -> dict[str, tuple[str, int]]:
    """user id -> (decision, absolute expiry in ms)."""
    return {
        key.decode().removeprefix(DECISION_PREFIX): (
            client.get(key).decode(),
            client.pexpiretime(key),
        )
        for key in client.scan_iter(f"{DECISION_PREFIX}*")
    }


def _stats(client: redis.Redis) -> dict[str, int]:
    stats = read_stats(client)
    assert stats is not None
    return stats


# --------------------------------------------------------------------- tests --


def test_scores_become_decisions_with_their_ttls_and_offsets_are_committed(settings, edge_redis):
    now = now_ms() - 1000
    scores = [
        _score("c-block", "block", now),
        _score("c-challenge", "challenge", now + 1),
        _score("c-allow", "allow", now + 2),
        _score("c-block-then-challenge", "block", now + 3),
        _score("c-block-then-challenge", "challenge", now + 4),
        _score("c-challenge-then-block", "challenge", now + 5),
        _score("c-challenge-then-block", "block", now + 6),
        _score("c-block-then-allow", "block", now + 7),
        _score("c-block-then-allow", "allow", now + 8),
        _score("c-block", "block", now),  # a replay
    ]
    ends = _produce_scores(settings, scores)
    with enforcer(settings):
        _wait_committed(settings, ends)

    # The newest score per user decides, for its TTL from its feature time.
    assert _decisions(edge_redis) == {
        "c-block": ("block", now + BLOCK_MS),
        "c-challenge": ("challenge", now + 1 + CHALLENGE_MS),
        "c-block-then-challenge": ("challenge", now + 4 + CHALLENGE_MS),
        "c-challenge-then-block": ("block", now + 6 + BLOCK_MS),
    }
    assert _stats(edge_redis) == {"users_scored": 6, "users_blocked": 4, "users_challenged": 3}
    assert _committed(settings) == ends


def test_stale_features_make_no_decision(edge_redis):
    writer = DecisionWriter(edge_redis, EnforcementSettings())
    now = now_ms()
    two_hours_ago = now - 2 * 3600 * 1000
    backlog = [_score("c-backlog", "block", two_hours_ago + i, offset=i) for i in range(3)]
    assert writer.write(backlog, now).outcomes == ["stale"] * 3
    assert edge_redis.keys("*") == []
    assert _stats(edge_redis) == {"users_scored": 0, "users_blocked": 0, "users_challenged": 0}


def test_a_challenge_scored_after_a_block_is_what_the_edge_then_sees(edge_redis):
    writer = DecisionWriter(edge_redis, EnforcementSettings())
    edge = EdgeDecisions(edge_redis, cache_ms=0)
    now = now_ms()
    assert writer.write([_score("c-1", "block", now - 60_000, offset=1)], now).outcomes == ["block"]
    assert edge.decision_for("c-1") == "block"
    assert writer.write([_score("c-1", "challenge", now - 1000, offset=2)], now).outcomes == [
        "challenge"
    ]
    assert edge.decision_for("c-1") == "challenge"
    assert _decisions(edge_redis) == {"c-1": ("challenge", now - 1000 + CHALLENGE_MS)}

    # The block again, late (a replay): older, so the challenge stays.
    assert writer.write([_score("c-1", "block", now - 60_000, offset=1)], now).outcomes == ["kept"]
    assert edge.decision_for("c-1") == "challenge"
    # A newer allow lifts the decision.
    assert writer.write([_score("c-1", "allow", now - 500, offset=3)], now).outcomes == ["allow"]
    assert edge.decision_for("c-1") == "allow"


def test_a_feature_time_ahead_of_the_clock_lives_from_itself_only_within_the_skew(edge_redis):
    writer = DecisionWriter(edge_redis, EnforcementSettings())
    now, skew = now_ms(), EnforcementSettings().max_clock_skew_ms
    ahead = [
        _score("c-day-ahead", "block", now + 86_400_000),
        _score("c-int64-ahead", "block", 2**63 - 1),
        _score("c-skewed", "block", now + skew),
    ]
    assert writer.write(ahead, now).outcomes == ["future", "future", "block"]
    assert _decisions(edge_redis) == {"c-skewed": ("block", now + skew + BLOCK_MS)}


# ------------------------------------------------- the merge, order-independent --


@pytest.fixture(scope="module")
def merge_redis() -> Iterator[redis.Redis]:
    """Database ``MERGE_DB`` of the Redis the environment names, emptied before and after."""
    named = replace(Settings.from_options({}).redis, db=MERGE_DB)
    client = create_redis(named)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis at {named.host}:{named.port} ({exc}): start it with `make up`")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


MERGE_SETTINGS = EnforcementSettings(
    block_ttl_s=600, challenge_ttl_s=300, max_score_age_ms=30 * 60 * 1000, max_clock_skew_ms=60_000
)
SEVERITY = {"allow": 0, "challenge": 1, "block": 2}
TTL_MS = {"allow": 0, "challenge": 300_000, "block": 600_000}
# Feature times relative to the clock, on whole minutes plus 30 s, so that no expiry Redis
# keeps falls within 30 s of the test's own clock: stale, timely with every decision over,
# only a block live, both live, just past, just ahead within the skew, too far ahead.
AGES_MS = [m * 60_000 + 30_000 for m in (-32, -30, -10, -5, -1, 0, 1)]
HLL_KEYS = {SCORED_USERS_KEY, BLOCKED_USERS_KEY, CHALLENGED_USERS_KEY}


def scores_strategy() -> st.SearchStrategy[list[tuple[str, str, int, int, int]]]:
    """(user, decision, age, partition, offset): few values of each, so ties are common."""
    return st.lists(
        st.tuples(
            st.sampled_from(["c-a", "c-b", "c-c"]),
            st.sampled_from(list(SEVERITY)),
            st.sampled_from(AGES_MS),
            st.integers(0, 1),
            st.integers(0, 2),
        ),
        min_size=1,
        max_size=25,
    )


def merge_state(client: redis.Redis) -> dict[str, tuple[object, ...]]:
    """Every key: a string's value and absolute expiry, a HyperLogLog's count; the
    generation marker, written by the first batch whatever it holds, aside."""
    state: dict[str, tuple[object, ...]] = {}
    for raw in client.scan_iter("*"):
        key = raw.decode()
        if key == GENERATION_KEY:
            continue
        if key in HLL_KEYS:
            state[key] = ("users", client.pfcount(key))
        else:
            state[key] = (client.get(key).decode(), client.pexpiretime(key))
    return state


def expected_state(scores: list[ScoreRecord], now: int) -> dict[str, tuple[object, ...]]:
    """The merge as a function of the set: per user, the greatest key among timely scores."""
    oldest, latest = now - MERGE_SETTINGS.max_score_age_ms, now + MERGE_SETTINGS.max_clock_skew_ms
    timely = [s for s in scores if oldest <= s.feature_time_ms <= latest]
    state: dict[str, tuple[object, ...]] = {}
    for key, decisions in (
        (SCORED_USERS_KEY, set(SEVERITY)),
        (BLOCKED_USERS_KEY, {"block"}),
        (CHALLENGED_USERS_KEY, {"challenge"}),
    ):
        users = {s.user_id for s in timely if s.decision in decisions}
        if users:
            state[key] = ("users", len(users))
    for user in {s.user_id for s in timely}:
        newest = max(
            (
                (s.feature_time_ms, s.source.partition, s.source.offset, SEVERITY[s.decision]),
                s.decision,
            )
            for s in timely
            if s.user_id == user
        )
        (feature_ms, partition, offset, severity), decision = newest
        state[latest_key(user)] = (
            f"{feature_ms} {partition} {offset} {severity}",
            feature_ms + MERGE_SETTINGS.max_score_age_ms + MERGE_SETTINGS.max_clock_skew_ms,
        )
        expires = feature_ms + TTL_MS[decision]
        if decision != "allow" and expires > now:
            state[decision_key(user)] = (decision, expires)
    return state


@hypothesis_settings(max_examples=200, deadline=None)
@given(drawn=scores_strategy(), data=st.data())
def test_any_arrival_order_of_the_same_scores_leaves_the_same_decisions_and_counts(
    merge_redis: redis.Redis, drawn: list[tuple[str, str, int, int, int]], data: st.DataObject
) -> None:
    now = now_ms()
    scores = [_score(u, d, now + age, offset, partition) for u, d, age, partition, offset in drawn]
    writer = DecisionWriter(merge_redis, MERGE_SETTINGS)

    merge_redis.flushdb()
    writer.write(scores, now)
    in_order = merge_state(merge_redis)
    assert in_order == expected_state(scores, now)

    # Another order, with replays, in batches of any size.
    arrivals = data.draw(st.permutations(scores)) + data.draw(
        st.lists(st.sampled_from(scores), max_size=8)
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(arrivals)), max_size=4)))
    merge_redis.flushdb()
    for start, end in zip([0, *cuts], [*cuts, len(arrivals)], strict=True):
        writer.write(arrivals[start:end], now)
    assert merge_state(merge_redis) == in_order


@pytest.mark.parametrize(
    ("argv", "refused"),
    [
        pytest.param({2: 2**53}, "argument 3", id="feature-time-past-2**53"),
        pytest.param({3: -1}, "argument 4", id="negative-partition"),
        pytest.param({4: "1.5"}, "argument 5", id="fractional-offset"),
        pytest.param({5: "soon"}, "argument 6", id="expiry-not-a-number"),
        pytest.param({6: "inf"}, "argument 7", id="infinite-latest-expiry"),
        pytest.param({7: "nan"}, "argument 8", id="nan-clock"),
        pytest.param({1: "maybe"}, "unknown decision", id="decision"),
    ],
)
def test_the_script_refuses_arguments_out_of_range_and_changes_nothing(merge_redis, argv, refused):
    merge_redis.flushdb()
    writer = DecisionWriter(merge_redis, MERGE_SETTINGS)
    now = now_ms()
    args = ["c-1", "block", now, 0, 0, now + 60_000, now + 120_000, now]
    for index, value in argv.items():
        args[index] = value
    keys = [
        decision_key("c-1"),
        latest_key("c-1"),
        SCORED_USERS_KEY,
        BLOCKED_USERS_KEY,
        CHALLENGED_USERS_KEY,
    ]
    with pytest.raises(redis.ResponseError, match=refused):
        writer._apply(keys=keys, args=args)
    assert merge_redis.keys("*") == []


def test_undecodable_scores_are_dead_lettered_with_their_reason(settings, edge_redis):
    now = now_ms()
    bad = [
        (b"c-bad", b"\xff\xfe not protobuf", "undecodable"),
        (b"c-bad", encode_threat_score(_score("", "block", now)), "missing_user_id"),
        (b"c-bad", b"", "empty_payload"),
    ]
    payloads = [(k, v) for k, v, _ in bad] + [
        (b"c-good", encode_threat_score(_score("c-good", "block", now)))
    ]
    ends = _produce(settings, payloads)
    with enforcer(settings):
        _wait_committed(settings, ends)
        records = consume_all(settings.kafka, settings.kafka.dead_letter_topic, len(bad), 30)

    letters = sorted((decode_dead_letter(r.value) for r in records), key=lambda x: x.source.offset)
    assert [(x.reason, x.original_value, x.component) for x in letters] == [
        (reason, value, "enforcer") for _, value, reason in bad
    ]
    assert all(x.original_key == b"c-bad" for x in letters)
    assert all(x.source.topic == settings.kafka.scores_topic for x in letters)
    assert _decisions(edge_redis) == {"c-good": ("block", now + BLOCK_MS)}


def test_stopping_while_redis_is_down_commits_nothing_and_loses_nothing(
    settings, edge_redis, caplog
):
    now = now_ms()
    scores = [_score(f"c-{i}", "block", now) for i in range(50)]
    ends = _produce_scores(settings, scores)
    nowhere = replace(settings, redis=unreachable_redis_settings())
    caplog.set_level(logging.ERROR, logger="botscore.enforcement")
    with enforcer(nowhere) as stop:
        _wait(
            lambda: any("offsets not committed" in r.getMessage() for r in caplog.records),
            60,
            "the enforcer to report Redis down",
        )
        stop.set()
        stopped = time.monotonic()
    assert time.monotonic() - stopped < 5, "shutdown hung while Redis was down"
    assert _committed(settings) == {}

    with enforcer(settings):
        _wait_committed(settings, ends)
    assert set(_decisions(edge_redis)) == {s.user_id for s in scores}


@pytest.mark.faults
def test_redis_killed_mid_stream_loses_no_decision(settings, own_redis, report_figure):
    with StatsdListener() as listener:
        metrics = MetricsSettings(statsd_port=listener.port)
        _kill_redis_mid_stream(replace(settings, metrics=metrics), own_redis, report_figure)
        received = listener.tags_by_metric()
    assert_failure_metrics_sent("test_redis_killed_mid_stream_loses_no_decision", received)


def _kill_redis_mid_stream(settings, own_redis, report_figure):
    """Redis killed while a stream of scores arrives: nothing committed meanwhile, every
    decision written once it is back."""
    settings = replace(settings, redis=own_redis.settings())
    now = now_ms()
    scores = [_score(f"c-{i:05d}", "block", now) for i in range(3000)]
    ends: dict[int, int] = {}

    feeder_errors: list[BaseException] = []

    def feed() -> None:  # a stream, so that the kill lands in the middle of it
        try:
            for i in range(0, len(scores), 100):
                for partition, end in _produce_scores(settings, scores[i : i + 100]).items():
                    ends[partition] = max(end, ends.get(partition, 0))
        except BaseException as exc:  # the test fails on it below, not as a thread warning
            feeder_errors.append(exc)

    feeder = threading.Thread(target=feed)
    client = own_redis.client()
    with enforcer(settings) as stop:
        feeder.start()
        _wait(lambda: client.pfcount(SCORED_USERS_KEY) >= 300, 60, "300 decisions written")
        own_redis.kill()
        killed = time.monotonic()
        time.sleep(1)
        committed_in_outage = _committed(settings)
        feeder.join(120)
        assert not feeder.is_alive(), "the feeder did not finish in 120 s"
        assert not feeder_errors, f"the feeder failed: {feeder_errors[0]!r}"
        time.sleep(1)
        assert _committed(settings) == committed_in_outage, "committed while Redis was down"
        stop.set()  # and stop during the outage: must neither hang nor commit

    client.close()
    own_redis.start()
    client = own_redis.client()  # the old connection died with the server
    kept = len(_decisions(client))
    committed = sum(committed_in_outage.values())
    # Every committed score is in Redis (each user is scored once: one decision each).
    assert committed <= kept < len(scores), (committed, kept)

    with enforcer(settings):
        restarted = time.monotonic()
        _wait_committed(settings, ends, timeout_s=120)
        recovery_s = time.monotonic() - restarted
    decisions = _decisions(client)
    stats = _stats(client)
    client.close()
    report_figure(
        f"enforcer, Redis kill -9 mid-stream: {committed} of {len(scores)} scores committed, "
        f"{kept} in Redis after restart, {len(decisions)} decisions at the end, caught up "
        f"{recovery_s:.1f} s after restart (outage {restarted - killed:.1f} s)"
    )
    assert set(decisions) == {s.user_id for s in scores}
    assert {d for d, _ in decisions.values()} == {"block"}
    assert stats["users_blocked"] == pytest.approx(len(scores), rel=0.02)
    assert stats["users_scored"] == pytest.approx(len(scores), rel=0.02)  # a HyperLogLog


def test_keys_of_another_type_are_replaced_and_decisions_go_on(settings, edge_redis, caplog):
    """Another program's values where the merge keeps its own: one user's latest score,
    and two of the counters; without the replacement every batch would be retried for good."""
    edge_redis.hset(latest_key("c-00"), "another", "program")
    edge_redis.set(SCORED_USERS_KEY, "not a HyperLogLog")
    edge_redis.rpush(BLOCKED_USERS_KEY, "a", "list")
    now = now_ms()
    scores = [_score(f"c-{i:02d}", "block", now) for i in range(20)]
    ends = _produce_scores(settings, scores)
    with StatsdListener() as listener:
        with enforcer(replace(settings, metrics=MetricsSettings(statsd_port=listener.port))):
            _wait_committed(settings, ends)
        received = listener.tags_by_metric()
    assert set(_decisions(edge_redis)) == {s.user_id for s in scores}
    stats = _stats(edge_redis)
    # counted again from the first score (a HyperLogLog: exact this small)
    assert stats["users_scored"] == stats["users_blocked"] == 20
    [line] = [r.getMessage() for r in caplog.records if "another type" in r.getMessage()]
    for key in (latest_key("c-00"), SCORED_USERS_KEY, BLOCKED_USERS_KEY):
        assert key in line
    assert_failure_metrics_sent(
        "test_keys_of_another_type_are_replaced_and_decisions_go_on", received
    )


def test_decisions_redis_lost_are_applied_again_from_the_scores(settings, edge_redis, caplog):
    """Redis flushed under a running enforcer: the next batch notices, and every score that
    may still decide is read and applied again, so the decisions in force come back."""
    now = now_ms()
    # within the block's life (10 min): every one of them a decision in force
    before = [_score(f"c-{i:02d}", "block", now - 20_000 * i) for i in range(20)]
    stale = _score("c-stale", "block", now - EnforcementSettings().max_score_age_ms - 120_000)
    ends = _produce_scores(settings, [stale, *before])
    with StatsdListener() as listener:
        with enforcer(replace(settings, metrics=MetricsSettings(statsd_port=listener.port))):
            _wait_committed(settings, ends)
            expected = _decisions(edge_redis)
            assert set(expected) == {s.user_id for s in before}
            edge_redis.flushdb()  # what a Redis restarted without its data holds
            after = _produce_scores(settings, [_score("c-after", "allow", now_ms())])
            _wait(
                lambda: set(_decisions(edge_redis)) == set(expected),
                60,
                "the lost decisions applied again",
            )
            _wait_committed(settings, after)
        received = listener.tags_by_metric()
    assert _decisions(edge_redis) == expected  # the same decisions, the same expiries
    assert "Redis lost the decisions" in caplog.text
    assert_failure_metrics_sent(
        "test_decisions_redis_lost_are_applied_again_from_the_scores", received
    )


def test_decisions_redis_lost_while_no_enforcer_ran_are_applied_again(settings, edge_redis, caplog):
    """Redis flushed between two enforcer runs: the second finds its partitions committed
    under another generation of the decisions and reads them again before going on."""
    now = now_ms()
    scores = [_score(f"s-{i:02d}", "challenge", now - 15_000 * i) for i in range(20)]
    ends = _produce_scores(settings, scores)
    with enforcer(settings):
        _wait_committed(settings, ends)
    expected = _decisions(edge_redis)
    assert set(expected) == {s.user_id for s in scores}
    edge_redis.flushdb()
    with enforcer(settings):
        _wait(
            lambda: _decisions(edge_redis) == expected,
            60,
            "the decisions lost while no enforcer ran applied again",
        )
    assert "Redis lost the decisions while no enforcer read" in caplog.text


@pytest.mark.faults
def test_decisions_lost_while_no_enforcer_ran_are_noticed_with_redis_down_at_the_start(
    settings, own_redis, caplog
):
    """Redis killed and started without its data between two enforcer runs, with scores
    arriving meanwhile on every partition: the second enforcer, started while Redis is
    down, compares each partition's commit with the decisions' generation before applying
    any of it, so the loss is noticed and every decision comes back."""
    settings = replace(settings, redis=own_redis.settings())
    client = own_redis.client()
    now = now_ms()
    before = [_score(f"b-{i:02d}", "challenge", now - 15_000 * i) for i in range(20)]
    with enforcer(settings):
        _wait_committed(settings, _produce_scores(settings, before))
    own_redis.kill()
    own_redis.lose_data()
    meanwhile = [_score(f"m-{i:02d}", "block", now_ms()) for i in range(40)]
    ends = _produce_scores(settings, meanwhile)
    committed = set(_committed(settings))
    assert committed <= set(ends), f"scores reached {sorted(ends)}, commits {sorted(committed)}"
    caplog.set_level(logging.WARNING, logger="botscore.enforcement")
    with enforcer(settings):
        _wait(
            lambda: "offsets not committed" in caplog.text,
            60,
            "the enforcer to find Redis down",
        )
        own_redis.start()
        _wait(
            lambda: set(_decisions(client)) == {s.user_id for s in before + meanwhile},
            60,
            "every decision applied again after Redis came back empty",
        )
    assert "Redis lost the decisions while no enforcer read" in caplog.text


def test_edge_caches_answers_and_refreshes_them_in_bulk(edge_redis):
    clock = [100.0]
    edge = EdgeDecisions(edge_redis, cache_ms=500, clock=lambda: clock[0])
    edge_redis.set(decision_key("c-1"), "block", px=60_000)
    assert edge.decision_for("c-1") == "block"
    edge_redis.delete(decision_key("c-1"))
    assert edge.decision_for("c-1") == "block"  # cached
    clock[0] += 0.5
    assert edge.decision_for("c-1") == "allow"

    users = [f"c-{i}" for i in range(300)]
    edge_redis.set(decision_key("c-7"), "challenge", px=60_000)
    for user in users:
        edge.decision_for(user)
    clock[0] += 0.5
    calls = _command_calls(edge_redis)
    answers = {user: edge.decision_for(user) for user in users}
    after = _command_calls(edge_redis)
    assert answers == {u: "challenge" if u == "c-7" else "allow" for u in users}
    assert (after["mget"] - calls["mget"], after["get"] - calls["get"]) == (1, 0)


def test_edge_allows_a_user_whose_stored_decision_is_not_one(edge_redis):
    """Values another writer left under the decision keys: not UTF-8, or no decision."""
    edge = EdgeDecisions(edge_redis, cache_ms=0)
    edge_redis.set(decision_key("g-1"), b"\xff\xfe", px=60_000)
    edge_redis.set(decision_key("g-2"), "deny", px=60_000)
    edge_redis.set(decision_key("g-3"), "block", px=60_000)
    assert [edge.decision_for(u) for u in ("g-1", "g-2", "g-3")] == ["allow", "allow", "block"]


def _command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("get", "mget")}


def test_edge_allows_everyone_while_redis_is_down_and_says_so_once(caplog):
    client = create_redis(unreachable_redis_settings())
    clock = [0.0]
    edge = EdgeDecisions(client, cache_ms=100, clock=lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="botscore.enforcement")
    for i in range(20):
        clock[0] += 0.05
        assert edge.decision_for(f"c-{i % 3}") == "allow"
    assert edge.stats() is None
    assert sum("unavailable" in r.getMessage() for r in caplog.records) == 1


def test_simulator_with_enforce_stops_blocked_users(settings, edge_redis, tmp_path):
    seed, start_ms = 21, 1_790_000_000_000
    population = build_population(300, 0.3, seed)
    kind = {u.user_id: u.kind for u in population.users}
    now = now_ms()
    # Through the whole edge: scores on Kafka, the enforcer, decisions in Redis.
    ends = _produce_scores(
        settings,
        [_score(u, "block", now) for u, k in kind.items() if k == "scraper"]
        + [_score(u, "challenge", now) for u, k in kind.items() if k == "human"],
    )
    with enforcer(settings):
        _wait_committed(settings, ends)

    spoofers = {u for u, k in kind.items() if k == "spoofer"}

    def block_spoofers() -> None:
        client = create_redis(settings.redis)
        scored = now_ms()
        try:
            DecisionWriter(client, settings.enforcement).write(
                [_score(u, "block", scored) for u in spoofers], scored
            )
        finally:
            client.close()

    blocker = threading.Timer(6.0, block_spoofers)
    web_logs = f"it-edge-web-logs-{uuid.uuid4().hex[:8]}"
    edge = EdgeDecisions(create_redis(settings.redis), cache_ms=200)
    blocker.start()
    try:
        stats = simulate(
            settings,
            SimulationSpec(
                users=len(population.users),
                bot_share=0.3,
                rate=50,
                duration_s=60,
                seed=seed,
                speedup=4,
            ),
            tmp_path / "labels.csv",
            topic=web_logs,
            edge=edge,
            start_unix_ms=start_ms,
        )
    finally:
        blocker.join()
        edge.client.close()
    try:
        records = consume_all(settings.kafka, web_logs, stats.sent, 60)
    finally:
        delete_topics(settings.kafka, [web_logs])
    events = [WebLog.FromString(r.value) for r in records]
    assert len(events) == stats.sent

    assert not any(kind[e.user_id] == "scraper" for e in events)
    assert stats.sent_by_kind["scraper"] == 0 < stats.blocked_by_kind["scraper"]
    humans = [e for e in events if kind[e.user_id] == "human"]
    assert humans and all(e.status == 403 for e in humans if not e.js_check_passed)
    assert stats.humans.challenged == stats.humans.requests == len(humans)

    # The spoofers were blocked mid-run, when the edge first saw new users scored.
    assert stats.first_scores_s is not None
    spoofed = [(e.time_unix_ms - start_ms) / 1000 for e in events if kind[e.user_id] == "spoofer"]
    assert any(t < stats.first_scores_s - 5 for t in spoofed)
    assert not any(t > stats.first_scores_s + 1 for t in spoofed)
    assert stats.blocked_by_kind["spoofer"] > 0 and spoofers & stats.bots_blocked


def test_botscore_enforce_runs_until_sigterm_or_ctrl_c(settings, edge_redis, tmp_path):
    env = stack_env(
        BOTSCORE_KAFKA_SCORES_TOPIC=settings.kafka.scores_topic,
        BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=settings.kafka.dead_letter_topic,
        BOTSCORE_ENFORCEMENT_CONSUMER_GROUP=settings.enforcement.consumer_group,
        BOTSCORE_REDIS_DB=str(REDIS_DB),
        BOTSCORE_METRICS_ENABLED="false",
    )
    now = now_ms()
    for round_, sig in enumerate((signal.SIGTERM, signal.SIGINT)):
        users = [f"c-{sig.name}-{i}" for i in range(5)]
        _produce_scores(settings, [_score(u, "block", now) for u in users])
        log_path = tmp_path / f"enforce-{round_}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(ROOT / "bin/botscore"), "enforce"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait(
                lambda users=users: all(edge_redis.exists(decision_key(u)) for u in users),
                60,
                f"decisions from `botscore enforce` (log: {log_path})",
            )
            process.send_signal(sig)
            assert process.wait(10) == 0, log_path.read_text(errors="replace")[-3000:]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        assert "enforcer stopped" in log_path.read_text(errors="replace")
