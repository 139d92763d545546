"""The aggregation topology under `sparse run`, against the real broker and real Redis.

Recorded WebLogs from the seeded simulator go in; the features the topology publishes
must equal what the offline feature code computes from the same logs. The first tests
share one run (``replay``), whose stream also carries every kind of unusable WebLog, one
stamped a day ahead, and one user's oversized strings; and Redis holds, before it starts,
another program's values in two users' keys and in the pending set.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from botscore.access.redis_users import redis_rules
from botscore.aggregation.offline import FeatureSnapshot, final_features
from botscore.aggregation.redis_state import DEFAULT_SHARDS, STATE_PREFIX
from botscore.aggregation.state_shards import ShardLayout
from botscore.clock import now_ms
from botscore.settings import KafkaSettings
from botscore.simulator.spec import SimulationSpec
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import Role
from botscore.wire.dead_letters import DeadLetterRecord, decode_dead_letter, truncations
from botscore.wire.records import SourceRef
from tests.pauses import stop_and_continue
from tests.statsd import StatsdListener

from .aggregation_stream import (
    DAY_MS,
    INTERVAL_MS,
    START_MS,
    AggTopics,
    FeatureCollector,
    agg_topics_of_a_run,
    aggregation_topology,
    explainer,
    feature_state,
    feed,
    feed_paced,
    mid_stream,
    pending_users,
    project_memory,
    published_features,
    recorded_logs,
    wait_nothing_pending,
)
from .faults import redis_down, stack_redis
from .harness import (
    DELETED_BEFORE_READ,
    PAST_THE_END,
    ROOT,
    committed_offsets,
    empty_redis_db,
    new_run_id,
    only_line,
    plant_position_faults,
    read_topic,
    refused_dead_letter,
    sparse_run,
    stack_env,
    wait_committed_to_end,
)
from .stream import GroupMember, SupervisedTopology, produce
from .wire_proofs import assert_failure_metrics_sent

pytestmark = [pytest.mark.integration, pytest.mark.aggregation]

REDIS_DB = 2  # the stack's Redis, a database of these tests' own

AHEAD_USER = "u-ahead"  # one WebLog a day ahead, then a minute of normal requests
HUGE_IP_USER = "u-huge-ip"  # HUGE_ADDRESSES distinct addresses of HUGE_BYTES each
HUGE_TEXT_USER = "u-huge-text"  # HUGE_TEXTS requests, user agent and path of HUGE_BYTES
HUGE_BYTES = 500_000
HUGE_ADDRESSES = 500
HUGE_TEXTS = 200
# The README's bound on one user's Redis state (paths 2.0 MB, dedup marks 1.0 MB, the rest).
USER_BOUND_BYTES = 3_200_000
ROBOT = "\N{ROBOT FACE}"  # four bytes in UTF-8: the most bytes a cut to characters keeps
# Before the run, another program's values: a string where this user's recent requests go
# (the user then sends requests), and a meta hash that is not a number for a user who
# sends none, pending since the epoch, beside a pending member that is not UTF-8.
WRONG_TYPE_USER = "u-wrong-type"
BAD_META_USER = "u-bad-meta"
NOT_UTF8_MEMBER = b"\xff\xfe"

Letter = tuple[str, bytes, int, str]  # reason, original key, original size, its SHA-256


@pytest.fixture
def agg_redis() -> Iterator[redis.Redis]:
    with empty_redis_db(REDIS_DB) as client:
        yield client


@pytest.fixture
def agg_topics(kafka_settings: KafkaSettings) -> Iterator[AggTopics]:
    with agg_topics_of_a_run(kafka_settings, REDIS_DB) as topics:
        yield topics


def malformed_payloads() -> list[tuple[bytes, bytes, str]]:
    """(key, value, expected reason) for each way a WebLog can be unusable."""
    good = WebLog(
        time_unix_ms=START_MS,
        user_id="u-bad",
        request_id="r1",
        schema_version=1,
        ip="192.0.2.1",
        method="GET",
        path="/",
        status=200,
    )

    def variant(**changes: object) -> bytes:
        message = WebLog()
        message.CopyFrom(good)
        for name, value in changes.items():
            if value is None:
                message.ClearField(name)
            else:
                setattr(message, name, value)
        return message.SerializeToString()

    long_id = "\N{LATIN SMALL LETTER E WITH ACUTE}" * 129  # 129 characters, 258 bytes
    return [
        (b"u-bad", b"\xff\xfe not protobuf", "undecodable"),
        (b"u-bad", b"", "empty_payload"),
        (b"u-bad", variant(user_id=""), "missing_user_id"),
        (b"u-bad", variant(schema_version=None), "missing_schema_version"),
        (b"u-bad", variant(schema_version=99), "unsupported_schema_version"),
        (b"u-bad", variant(time_unix_ms=0), "missing_time"),
        (b"u-bad", variant(time_unix_ms=-1), "out_of_range"),  # present, before 1970
        (b"u-bad", variant(request_id=""), "missing_request_id"),
        (b"u-other", variant(), "key_mismatch"),
        (b"", variant(), "key_mismatch"),
        (b"u-bad", variant(time_unix_ms=now_ms() + DAY_MS), "time_in_future"),
        (b"u-bad", variant(time_unix_ms=2**63 - 1), "time_in_future"),
        (b"u-bad", variant(time_unix_ms=1), "time_too_old"),  # a clock never set
        (b"u-bad", variant(time_unix_ms=now_ms() - 2 * DAY_MS), "time_too_old"),
        (long_id.encode(), variant(user_id=long_id), "field_too_long"),
        (b"u-bad", variant(request_id="r" * 129), "field_too_long"),
        # Too large for its dead letter to carry whole: the letter names its size and digest.
        (b"u-bad", variant(request_id="r" * 1_040_000), "field_too_long"),
        (b"u-bad", variant(ip="not-an-address"), "invalid_ip"),
        (b"u-bad", variant(ip="256.0.0.1"), "invalid_ip"),
        (b"u-bad", variant(ip=""), "invalid_ip"),
        (b"u-bad", variant(ip="1" * 46), "invalid_ip"),
        (b"u-bad", variant(status=600), "out_of_range"),
        (b"u-bad", variant(status=None), "out_of_range"),
        (b"u-bad", variant(response_bytes=2**53), "out_of_range"),
    ]


def a_day_ahead() -> tuple[WebLog, list[WebLog]]:
    """A WebLog stamped a day ahead of the aggregation's clock, and the minute of normal
    requests from 40 addresses its user sends after it."""
    start = now_ms() - 60_000

    def request(request_id: str, time_ms: int, ip: str) -> WebLog:
        return WebLog(
            time_unix_ms=time_ms,
            user_id=AHEAD_USER,
            request_id=request_id,
            schema_version=1,
            ip=ip,
            method="GET",
            path="/",
            status=200,
            user_agent="Mozilla/5.0",
        )

    ahead = request("ahead", start + DAY_MS, "203.0.113.1")
    normal = [request(f"n{i}", start + i * 500, f"198.51.100.{i % 40}") for i in range(120)]
    return ahead, normal


def huge_addresses() -> Iterator[tuple[bytes, bytes]]:
    """WebLogs of one user, each with a distinct address string of HUGE_BYTES."""
    for i in range(HUGE_ADDRESSES):
        yield (
            HUGE_IP_USER.encode(),
            WebLog(
                time_unix_ms=START_MS + i * 1000,
                user_id=HUGE_IP_USER,
                request_id=f"h{i}",
                schema_version=1,
                ip=f"{i}:".ljust(HUGE_BYTES, "0"),
                method="GET",
                path="/",
                status=200,
            ).SerializeToString(),
        )


def huge_texts() -> Iterator[WebLog]:
    """Requests of one user, each with a distinct user agent and path of HUGE_BYTES,
    distinct within the part the aggregation keeps, in characters of four bytes."""
    for i in range(HUGE_TEXTS):
        yield WebLog(
            time_unix_ms=START_MS + i * 1000,
            user_id=HUGE_TEXT_USER,
            request_id=f"t{i}",
            schema_version=1,
            ip="192.0.2.7",
            method="GET",
            path=f"/{i}/".ljust(HUGE_BYTES // 4, ROBOT),
            status=200,
            user_agent=f"bot/{i} ".ljust(HUGE_BYTES // 4, ROBOT),
        )


def wrong_type_user_logs() -> list[WebLog]:
    return [
        WebLog(
            time_unix_ms=START_MS + i * 2000,
            user_id=WRONG_TYPE_USER,
            request_id=f"w{i}",
            schema_version=1,
            ip=f"198.51.100.{i}",
            method="GET",
            path=f"/w/{i}",
            status=200,
            user_agent="Mozilla/5.0",
        )
        for i in range(12)
    ]


def plant_another_programs_values(client: redis.Redis) -> None:
    state = feature_state(client)  # the generation and epoch the topology will find
    client.set(f"{state.user_base(WRONG_TYPE_USER)}:t", "another program's value")
    meta = f"{state.user_base(BAD_META_USER)}:m"
    client.hset(meta, mapping={"last": "yesterday", "version": "1"})
    pending = state.pending_key(BAD_META_USER)
    client.zadd(pending, {BAD_META_USER: 0, NOT_UTF8_MEMBER: 0})


def letter_of(key: bytes, value: bytes, reason: str) -> Letter:
    return reason, key, len(value), hashlib.sha256(value).hexdigest()


def as_sent(letter: DeadLetterRecord) -> Letter:
    """A dead letter as the message it set aside: a cut original by its recorded size and
    digest, a whole one by its own."""
    cut = [t for t in truncations(letter) if t.part == "value"]
    if cut:
        return letter.reason, letter.original_key, cut[0].original_size, cut[0].sha256
    return letter_of(letter.original_key, letter.original_value, letter.reason)


@dataclass(frozen=True)
class Replay:
    """One `sparse run` of the aggregation over the whole stream, read once all of it was
    committed and every user's features published."""

    sent: int  # WebLogs sent
    elapsed_s: float  # from `sparse run` to all committed and published
    expected: dict[str, FeatureSnapshot]  # offline features of the usable WebLogs
    features: FeatureCollector
    ahead: Letter
    after_ahead: list[WebLog]
    expected_letters: Counter[Letter]
    letters: Counter[Letter]
    memory: dict[str, tuple[int, int]]  # user -> bytes held by their keys, keys
    pending: int
    ttls: list[int]
    log: str  # `sparse run`'s output
    received: dict[str, set[str]]  # metric -> its tags, from the DogStatsD datagrams


@pytest.fixture(scope="module")
def replay(kafka_settings, storm_on_path, tmp_path_factory) -> Replay:
    logs = recorded_logs(users=400, rate=25, duration_s=1200, seed=21)
    ahead, normal = a_day_ahead()
    bad = malformed_payloads()
    wrong_type = wrong_type_user_logs()
    expected = final_features(itertools.chain(logs, normal, huge_texts(), wrong_type))
    ahead_letter = letter_of(AHEAD_USER.encode(), ahead.SerializeToString(), "time_in_future")
    expected_letters = Counter(
        [
            *(letter_of(key, value, reason) for key, value, reason in bad),
            ahead_letter,
            *(letter_of(key, value, "invalid_ip") for key, value in huge_addresses()),
        ]
    )
    log_path = tmp_path_factory.mktemp("replay") / "sparse-run.log"
    with (
        agg_topics_of_a_run(kafka_settings, REDIS_DB) as topics,
        empty_redis_db(REDIS_DB) as client,
        StatsdListener() as metrics,
    ):
        plant_another_programs_values(client)
        plant_position_faults(topics.kafka, topics.web_logs, topics.group)
        # Unusable and oversized messages in the middle of the stream must not stall it.
        half = len(logs) // 2
        feed(topics, logs[:half])
        feed(topics, wrong_type)
        produce(topics.kafka, [(k, v) for k, v, _ in bad], topic=topics.web_logs)
        feed(topics, [ahead, *normal])
        produce(topics.kafka, huge_addresses(), topic=topics.web_logs)
        feed(topics, huge_texts())
        feed(topics, logs[half:])
        started = time.monotonic()
        with sparse_run(
            topics.kafka,
            log_path,
            topology="aggregation",
            **topics.env(),
            BOTSCORE_METRICS_STATSD_PORT=str(metrics.port),
        ) as process:
            wait_committed_to_end(topics.kafka, topics.group, topics.web_logs, 420, process)
            wait_nothing_pending(client, 60, process)
            elapsed = time.monotonic() - started
        letters = Counter(
            as_sent(decode_dead_letter(record.value))
            for record in read_topic(topics.kafka, topics.kafka.dead_letter_topic)
        )
        return Replay(
            sent=len(logs) + len(normal) + HUGE_TEXTS + sum(expected_letters.values()),
            elapsed_s=elapsed,
            expected=expected,
            features=published_features(topics.kafka),
            ahead=ahead_letter,
            after_ahead=normal,
            expected_letters=expected_letters,
            letters=letters,
            memory={user: project_memory(client, user) for user in (HUGE_IP_USER, HUGE_TEXT_USER)},
            pending=pending_users(client),
            ttls=[client.ttl(k) for k in client.scan_iter(f"{STATE_PREFIX}:{{*}}:*:*")],
            log=log_path.read_text(errors="replace"),
            received=metrics.tags_by_metric(),
        )


def _alive(process: subprocess.Popen, log_path: Path) -> Callable[[], None]:
    """A check that fails the test with the log's end once ``sparse run`` has exited."""

    def check() -> None:
        assert process.poll() is None, log_path.read_text()[-3000:]

    return check


def test_replayed_logs_give_exactly_the_offline_features(replay, report_figure):
    report_figure(
        f"aggregation replay: {replay.sent} WebLogs ({sum(replay.letters.values())} unusable) "
        f"from {len(replay.expected)} users -> all committed and every user's features "
        f"published in {replay.elapsed_s:.1f} s from `sparse run` "
        f"({replay.sent / replay.elapsed_s:.0f} WebLogs/s incl. start-up); "
        f"{replay.features.total} publications"
    )
    latest = replay.features.latest
    differ = sorted(
        u for u in replay.expected.keys() | latest.keys() if latest.get(u) != replay.expected.get(u)
    )
    assert not differ, (
        f"{len(differ)} of {len(replay.expected)} users differ from the offline features; "
        f"e.g. {differ[0]}:\n  topology {latest.get(differ[0])}\n"
        f"  offline  {replay.expected.get(differ[0])}"
    )
    # At most one publication per user per interval (Kafka timestamps are send times).
    for user, times in replay.features.sent_ms.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= INTERVAL_MS for g in gaps), f"{user} published {gaps} ms apart"
    # Nothing left pending, and every user key has an expiry.
    assert replay.pending == 0
    assert replay.ttls and all(t > 0 for t in replay.ttls)


def test_every_unusable_weblog_is_dead_lettered_with_its_reason(replay):
    missing = replay.expected_letters - replay.letters
    extra = replay.letters - replay.expected_letters
    assert not missing and not extra, (
        f"not dead-lettered as expected: {sorted(missing.items())[:5]}; "
        f"unexpected letters: {sorted(extra.items())[:5]}"
    )


def test_a_weblog_a_day_ahead_leaves_its_user_to_the_normal_requests(replay):
    assert replay.features.latest.get(AHEAD_USER) == final_features(replay.after_ahead)[AHEAD_USER]
    assert replay.letters[replay.ahead] == 1, "the WebLog a day ahead was not time_in_future"


def test_another_programs_values_in_the_state_are_deleted_logged_and_counted(replay):
    # The user's requests came after the reset: its features are all of them, as offline.
    assert replay.features.latest.get(WRONG_TYPE_USER) == replay.expected[WRONG_TYPE_USER]
    assert BAD_META_USER not in replay.features.latest
    # Nothing left of them (no key without expiry, nothing pending: the replay's own test).
    assert "deleted the unusable feature state of user 'u-wrong-type': WRONGTYPE" in replay.log
    assert "deleted the unreadable feature state of user 'u-bad-meta' (ValueError" in replay.log
    assert "removed 1 pending users that are not UTF-8" in replay.log
    assert_failure_metrics_sent(
        "test_another_programs_values_in_the_state_are_deleted_logged_and_counted",
        replay.received,
    )


def test_web_logs_kafka_deleted_or_moved_back_are_reported_and_read_on(replay):
    """Partition 0's first messages were deleted before the group read them, partition 1's
    commit lay past its end: the spout said so once each and read on (every usable WebLog
    counted, as the replay's first test shows)."""
    deleted = f"/0: offsets 0-{DELETED_BEFORE_READ - 1} were deleted (retention) before"
    moved_back = f"/1: Kafka returned offset 0 where {PAST_THE_END} was next"
    assert replay.log.count(deleted) == 1 and replay.log.count(moved_back) == 1
    assert_failure_metrics_sent(
        "test_web_logs_kafka_deleted_or_moved_back_are_reported_and_read_on", replay.received
    )


def test_huge_strings_grow_redis_by_a_bounded_amount(replay, report_figure):
    (ip_bytes, ip_keys), (text_bytes, text_keys) = (
        replay.memory[HUGE_IP_USER],
        replay.memory[HUGE_TEXT_USER],
    )
    report_figure(
        f"aggregation, oversized strings: {HUGE_ADDRESSES} WebLogs of one user with distinct "
        f"{HUGE_BYTES:,}-byte addresses (invalid_ip) leave {ip_bytes:,} bytes in Redis "
        f"({ip_keys} keys); {HUGE_TEXTS} of another with distinct {HUGE_BYTES:,}-byte user "
        f"agents and paths (accepted, cut) hold "
        f"{text_bytes:,} bytes ({text_keys} keys); bound {USER_BOUND_BYTES:,} per user"
    )
    invalid = sum(
        n
        for (reason, key, *_), n in replay.letters.items()
        if key == HUGE_IP_USER.encode() and reason == "invalid_ip"
    )
    assert invalid == HUGE_ADDRESSES
    # The cut strings count as distinct values, exactly as offline.
    assert replay.features.latest.get(HUGE_TEXT_USER) == replay.expected[HUGE_TEXT_USER]
    assert ip_bytes < USER_BOUND_BYTES
    assert 0 < text_bytes < USER_BOUND_BYTES


def test_redis_killed_mid_stream_loses_nothing(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    logs = recorded_logs(users=600, rate=40, duration_s=1500, seed=22)
    expected = final_features(logs)
    feed(agg_topics, logs)
    log_path = tmp_path / "sparse-run.log"
    # Two attempts (0.2 s of backoff) and 5 s down: the outage outlasts every tuple's
    # attempts, which wait at their last one instead of being dead-lettered.
    with aggregation_topology(agg_topics, log_path, BOTSCORE_KAFKA_MAX_ATTEMPTS="2") as (
        metrics,
        features,
        process,
    ):
        deadline = time.monotonic() + 180
        while features.total < 200:
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no features published before the fault"
            time.sleep(0.2)
        applied_before = sum(1 for _ in agg_redis.scan_iter(f"{STATE_PREFIX}:{{*}}:*:u:*:m"))
        with redis_down(stack_redis()):
            time.sleep(5)
        took = features.wait_until_equal(expected, 420, process, explainer(agg_topics, agg_redis))
        wait_committed_to_end(agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process)
        logs_text = log_path.read_text(errors="replace")
        received = metrics.tags_by_metric()

    report_figure(
        f"aggregation, Redis kill -9: killed after {applied_before} users had state; "
        f"Redis down 5 s; all "
        f"{len(expected)} users' features equal offline {took + 5:.0f} s after the kill "
        f"({len(logs)} WebLogs, 0 lost)",
    )
    assert "Redis did not take" in logs_text, "the fault never reached the aggregation bolt"
    assert "Redis takes updates again after" in logs_text
    assert logs_text.count("Redis did not take") <= 3, "a line per failed tuple"
    assert "not dead-lettered" in logs_text
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]
    assert_failure_metrics_sent("test_redis_killed_mid_stream_loses_nothing", received)


def test_a_shard_redis_refuses_dead_letters_only_its_users_requests(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """Redis refuses one shard's keys (its ACL, as a Redis Cluster refuses the slots of a
    primary that is away) for longer than a tuple's attempts, while the other shards take
    their requests. A batch fails for that shard's users alone; once other batches are
    acked it is halved, and halved again, down to the requests that fail alone, which are
    dead-lettered (``retries_exhausted``). Every other request is applied: each user's
    features equal offline on every request but the dead-lettered ones."""
    logs = recorded_logs(users=600, rate=40, duration_s=600, seed=23)
    layout = ShardLayout(STATE_PREFIX, DEFAULT_SHARDS)
    refused = 0  # the shard whose keys Redis refuses
    user, password = f"it-shard-{new_run_id()}", secrets.token_hex(16)
    keys, *commands = redis_rules(Role.AGGREGATION)
    assert keys == f"~{STATE_PREFIX}:*"
    # The tests' own database needs SELECT, which no role's commands include.
    grant = ["reset", "on", f">{password}", *commands, "+select"]
    agg_redis.execute_command("ACL", "SETUSER", user, *grant, keys)
    others = [f"~{STATE_PREFIX}:{{{tag}}}:*" for i, tag in enumerate(layout.tags) if i != refused]
    first, rest = logs[: len(logs) // 3], logs[len(logs) // 3 :]
    feed(agg_topics, first)
    log_path = tmp_path / "sparse-run.log"
    try:
        with aggregation_topology(
            agg_topics,
            log_path,
            BOTSCORE_REDIS_USERNAME=user,
            BOTSCORE_REDIS_PASSWORD=password,
            BOTSCORE_KAFKA_MAX_ATTEMPTS="2",
            # Batches of 8 requests: most touch no user of the refused shard (15/16 ** 8),
            # and are acked, which tells the spout the others fail for their own requests.
            BOTSCORE_AGGREGATION_BATCH_SIZE="8",
        ) as (metrics, features, process):
            deadline = time.monotonic() + 180
            while features.total < 100:  # the state's generation is known by now
                assert process.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no features published before the fault"
                time.sleep(0.2)
            agg_redis.execute_command("ACL", "SETUSER", user, "resetkeys", *others)
            feed(agg_topics, rest)
            # Committed to the end while the shard is refused: every request was applied
            # or dead-lettered.
            wait_committed_to_end(
                agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 300, process
            )
            agg_redis.execute_command("ACL", "SETUSER", user, "resetkeys", keys)
            letters = [
                decode_dead_letter(r.value)
                for r in read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
            ]
            lettered = [WebLog.FromString(d.original_value) for d in letters]
            dead = {log.request_id for log in lettered}
            expected = final_features([log for log in logs if log.request_id not in dead])
            took = features.wait_until_equal(
                expected, 300, process, explainer(agg_topics, agg_redis)
            )
            logs_text = log_path.read_text(errors="replace")
            received = metrics.tags_by_metric()
    finally:
        agg_redis.execute_command("ACL", "DELUSER", user)
    on_refused = [log for log in logs if layout.shard_of(log.user_id) == refused]
    report_figure(
        f"aggregation, one shard of {DEFAULT_SHARDS} refused by Redis: {len(letters)} of its "
        f"{len(on_refused)} requests dead-lettered, none of the other shards' "
        f"{len(logs) - len(on_refused)}; all {len(expected)} users' features equal offline "
        f"on the rest {took:.0f} s after the shard came back"
    )
    assert letters, "no request of the refused shard was dead-lettered"
    assert {d.reason for d in letters} == {"retries_exhausted"}
    assert all(d.detail.startswith("failed downstream") for d in letters)
    assert {layout.shard_of(log.user_id) for log in lettered} == {refused}
    assert len(dead) == len(letters), "a request was dead-lettered twice"
    assert "to find the messages at fault" in logs_text
    assert_failure_metrics_sent(
        "test_a_shard_redis_refuses_dead_letters_only_its_users_requests", received
    )


@pytest.mark.soak
def test_redis_memory_stays_bounded_over_ten_minutes(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """Ten wall minutes at a steady rate, 60x sped up: ten simulated hours, so every window
    (4 h at most) turns over more than twice; the state TTL is scaled by the same factor."""
    speedup, minutes = 60, 10
    ttl_s = (4 * 3600 + 900) // speedup
    lead_ms = SimulationSpec(duration_s=minutes * 60 * speedup, speedup=speedup).clock_lead_ms
    env = {
        **agg_topics.env(),
        "BOTSCORE_AGGREGATION_STATE_TTL_S": str(ttl_s),
        # simulated time outruns the wall clock by up to this much
        "BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS": str(lead_ms + 60_000),
        "BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS": str(lead_ms + 60_000),
    }
    log_path = tmp_path / "sparse-run.log"
    samples: list[tuple[float, int, int]] = []  # (wall s, bytes held by our keys, keys)
    with sparse_run(agg_topics.kafka, log_path, topology="aggregation", **env) as process:
        simulator = subprocess.Popen(
            [
                "botscore",
                "simulate",
                "--rate",
                "10",
                "--speedup",
                str(speedup),
                "--duration",
                str(minutes * 60 * speedup),
                "--users",
                "3000",
                "--seed",
                "31",
                "--labels",
                str(tmp_path / "labels.csv"),
                "--topic",
                agg_topics.web_logs,
                "--no-progress",
            ],
            cwd=ROOT,
            env=stack_env(
                **env, BOTSCORE_KAFKA_BOOTSTRAP_SERVERS=agg_topics.kafka.bootstrap_servers
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        started = time.monotonic()
        try:
            while simulator.poll() is None:
                assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
                samples.append((time.monotonic() - started, *project_memory(agg_redis)))
                time.sleep(10)  # the sampling period
        finally:
            if simulator.poll() is None:
                simulator.kill()
            output = simulator.communicate(timeout=30)[0].decode(errors="replace")
        assert simulator.returncode == 0, output[-3000:]
        # Every request the simulator sent was applied before the last sample.
        committed = wait_committed_to_end(
            agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 300, process
        )
        samples.append((time.monotonic() - started, *project_memory(agg_redis)))

    def at(minute: float) -> int:
        return max(m for t, m, _ in samples if t <= minute * 60)

    half = at(minutes / 2)
    peak_late = max(m for t, m, _ in samples if t > minutes / 2 * 60)
    figures = ", ".join(f"{m} min {at(m) / 2**20:.1f} MiB" for m in range(2, minutes + 1, 2))
    report_figure(
        f"Redis memory of the aggregation's keys, {minutes} min at 600 requests/s "
        f"({speedup}x: {minutes * speedup // 60} simulated hours, 3000 users, "
        f"{sum(committed.values())} WebLogs applied): {figures}; keys at end {samples[-1][2]}"
    )
    assert sum(committed.values()) > minutes * 60 * 10 * speedup * 0.9, "traffic not processed"
    assert half > 0, "no aggregation state at half time"
    # Requests keep coming at the same rate; the state does not keep growing with them.
    assert peak_late <= half * 1.25, f"memory grew from {half} to {peak_late} bytes"


@pytest.mark.faults
def test_a_member_joining_and_leaving_while_redis_is_down_loses_nothing(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """Redis down for 20 s mid-stream; meanwhile another member joins the aggregation's
    group, reads without committing, and leaves: two rebalances while every write fails."""
    logs = recorded_logs(users=500, rate=40, duration_s=1500, seed=23)
    expected = final_features(logs)
    feed(agg_topics, logs)
    log_path = tmp_path / "sparse-run.log"
    member = GroupMember(agg_topics.kafka, agg_topics.group, agg_topics.web_logs)
    with (
        FeatureCollector(agg_topics.kafka) as features,
        sparse_run(
            agg_topics.kafka, log_path, topology="aggregation", **agg_topics.env()
        ) as process,
    ):
        committed = mid_stream(agg_topics, features, len(logs), _alive(process, log_path))
        with redis_down(stack_redis()):
            down_at = time.monotonic()
            member.start_joining()
            taken = member.wait_assigned(60)
            member.leave()
            left_after = time.monotonic() - down_at
            time.sleep(max(0.0, 20 - left_after))  # the rest of the 20 s outage
        took = features.wait_until_equal(expected, 420, process, explainer(agg_topics, agg_redis))
        ends = wait_committed_to_end(
            agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process
        )
        logs_text = log_path.read_text(errors="replace")

    report_figure(
        f"aggregation, Redis down 20 s with {sum(committed.values())} of {len(logs)} committed; "
        f"a member joined, took partitions {taken} ({member.read} WebLogs read, none committed) "
        f"and left {left_after:.1f} s into the outage; all {len(expected)} users' features "
        f"equal offline {took:.0f} s after Redis returned"
    )
    assert sum(ends.values()) == len(logs)
    # The member took partitions, so the spout gave them up: revoked in the rebalance, or lost
    # when the group expelled it for missing that rebalance; afterwards it owns them all again.
    gave_up = re.search(r"partitions (revoked|lost): \[\d", logs_text)
    assert gave_up, "the spout never gave partitions up"
    assignments = re.findall(r"partitions assigned: (\[[\d, ]*\])", logs_text[gave_up.start() :])
    assert assignments and assignments[-1] == str(sorted(ends)), assignments
    assert "Redis did not take" in logs_text, "the fault never reached the aggregation bolt"
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]


@pytest.mark.faults
def test_a_killed_aggregation_worker_loses_nothing_and_counts_each_request_once(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """kill -9 of the aggregation bolt mid-stream ends its worker; started again, it reads
    from the last commit, so requests it had applied since come again: the dedup marks
    count each once (the features equal offline) and the bolt counts them as duplicates."""
    logs = recorded_logs(users=500, rate=40, duration_s=1500, seed=25)
    expected = final_features(logs)
    feed(agg_topics, logs)
    with (
        StatsdListener() as metrics,
        FeatureCollector(agg_topics.kafka) as features,
        SupervisedTopology(
            agg_topics.kafka,
            tmp_path,
            "aggregation",
            **agg_topics.env(),
            BOTSCORE_METRICS_STATSD_PORT=str(metrics.port),
        ) as topology,
    ):
        committed = mid_stream(agg_topics, features, len(logs))
        [pid] = topology.component_pids("bolts.aggregate.AggregateBolt")
        os.kill(pid, signal.SIGKILL)
        took = features.wait_until_equal(expected, 420, None, explainer(agg_topics, agg_redis))
        ends = wait_committed_to_end(agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120)
        restarts = topology.unplanned_exits
        received = metrics.tags_by_metric()
        duplicates = sum(p.value for p in metrics.points("botscore.aggregate.duplicates"))

    report_figure(
        f"aggregation, kill -9 of the aggregation bolt with {sum(committed.values())} of "
        f"{len(logs)} committed: {duplicates:.0f} requests read again and counted once; all "
        f"{len(expected)} users' features equal offline {took:.0f} s after the kill"
    )
    assert restarts == 1, f"the worker exited {restarts} times; the kill should end it once"
    assert sum(ends.values()) == len(logs)
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]
    assert_failure_metrics_sent(
        "test_a_killed_aggregation_worker_loses_nothing_and_counts_each_request_once", received
    )


@pytest.mark.faults
def test_a_spout_stopped_and_continued_mid_stream_stays_up_and_loses_nothing(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """The web-logs spout stopped and continued 100 times mid-stream, as py-spy, a debugger
    or job control does, while it emits tuples larger than a pipe holds (long user agents):
    a stop that cut a write to Storm short lost the rest of the message, and the worker died
    on the next one, before ``botscore.multilang_pipe``. No exit, every feature exact."""
    logs = recorded_logs(users=300, rate=40, duration_s=1500, seed=26)
    for log in logs:
        log.user_agent = f"{log.user_agent} {'x' * 400}"
    expected = final_features(logs)
    feed(agg_topics, logs)
    with (
        FeatureCollector(agg_topics.kafka) as features,
        SupervisedTopology(
            agg_topics.kafka, tmp_path, "aggregation", **agg_topics.env()
        ) as topology,
    ):
        committed = mid_stream(agg_topics, features, len(logs))
        [spout] = topology.component_pids("spouts.kafka_web_logs.KafkaWebLogsSpout")
        stops = stop_and_continue(spout, 100)
        took = features.wait_until_equal(expected, 420, None, explainer(agg_topics, agg_redis))
        ends = wait_committed_to_end(agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120)
        exits, deaths = topology.unplanned_exits, topology.deaths

    report_figure(
        f"aggregation, its spout stopped and continued {stops} times with "
        f"{sum(committed.values())} of {len(logs)} requests committed: no exit, all "
        f"{len(expected)} users' features equal offline {took:.0f} s later"
    )
    assert stops == 100
    assert exits == 0, f"the worker died:\n{deaths}"
    assert sum(ends.values()) == len(logs)
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]


@pytest.mark.faults
def test_a_broker_outage_delays_the_features_but_loses_none(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """The broker down for 25 s mid-stream, longer than the feature producer's delivery
    timeout (10 s): the publications it could not send are failed and published again,
    and no user's features on the topic go back in time (a publication made again must
    not overtake what its producer still holds). Kafka refuses another message for good
    before: the dead letter of an unusable WebLog, over its topic's limit; the spout goes
    on past it."""
    logs = recorded_logs(users=500, rate=40, duration_s=1500, seed=24)
    expected = final_features(logs)
    refused = refused_dead_letter(agg_topics.kafka)
    [(partition, offset)] = produce(
        agg_topics.kafka, [(b"u-refused", refused)], agg_topics.web_logs
    )
    feed(agg_topics, logs)
    log_path = tmp_path / "sparse-run.log"
    kafka = [str(ROOT / "stack/kafka/kafka.sh")]
    with aggregation_topology(
        agg_topics, log_path, BOTSCORE_KAFKA_PRODUCER_DELIVERY_TIMEOUT_MS="10000"
    ) as (metrics, features, process):
        committed = mid_stream(agg_topics, features, len(logs), _alive(process, log_path))
        subprocess.run([*kafka, "stop"], check=True, capture_output=True, timeout=180)
        time.sleep(25)  # the outage itself, not a synchronisation
        subprocess.run([*kafka, "start"], check=True, capture_output=True, timeout=180)
        took = features.wait_until_equal(expected, 420, process, explainer(agg_topics, agg_redis))
        ends = wait_committed_to_end(
            agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process
        )
        logs_text = log_path.read_text(errors="replace")
        received = metrics.tags_by_metric()
        failed = sum(p.value for p in metrics.points("botscore.publisher.failed"))
        assert process.poll() is None, "the topology died instead of riding out the outage"

    report_figure(
        f"aggregation, broker down 25 s with {sum(committed.values())} of {len(logs)} "
        f"committed: {failed:.0f} publications failed and made again; all {len(expected)} "
        f"users' features equal offline {took:.0f} s after the broker returned"
    )
    assert sum(ends.values()) == len(logs) + 1
    assert "not delivered" in logs_text, "no send failed: the outage never reached the producer"
    assert features.regressions == [], "(user, window end, after a later one)"
    source = SourceRef(agg_topics.web_logs, partition, offset)
    line = only_line(logs_text, f"dead letter for {source}")
    assert "can never be sent, dropped" in line
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]
    assert_failure_metrics_sent("test_a_broker_outage_delays_the_features_but_loses_none", received)


@pytest.mark.faults
def test_redis_back_empty_the_feature_state_is_rebuilt_from_the_logs(
    agg_topics, agg_redis, storm_on_path, tmp_path, report_figure
):
    """Redis loses the feature state twice: flushed while the topology runs (with requests
    arriving, so tuples read before the loss reach the bolt after it), then while it is
    stopped. Each time the spouts read the web logs again, and every user's features equal
    offline, though most users have requests on both sides of each loss."""
    logs = recorded_logs(users=500, rate=40, duration_s=1500, seed=26)
    cut = len(logs) // 3
    parts = [logs[:cut], logs[cut : 2 * cut], logs[2 * cut :]]
    users = [{log.user_id for log in part} for part in parts]
    feed(agg_topics, parts[0])
    runs = [tmp_path / "sparse-run-1.log", tmp_path / "sparse-run-2.log"]
    with StatsdListener() as metrics, FeatureCollector(agg_topics.kafka) as features:

        def aggregation(log_path):
            env = {
                **agg_topics.env(),
                "BOTSCORE_METRICS_STATSD_PORT": str(metrics.port),
                # The spout checks the state's generation when it opens, then every 30 s:
                # the flush (a few seconds in) is noticed some 25 s later, so batches read
                # under the lost generation keep reaching the bolt meanwhile. With checks a
                # second or 3 s apart, the flush twice fell just before one: the spout
                # noticed it before emitting any such batch, and there was no refusal to see.
                "BOTSCORE_AGGREGATION_STATE_CHECK_MS": "30000",
            }
            return sparse_run(agg_topics.kafka, log_path, topology="aggregation", **env)

        with aggregation(runs[0]) as process:
            deadline = time.monotonic() + 180
            while features.total < 200:
                assert process.poll() is None, runs[0].read_text()[-3000:]
                assert time.monotonic() < deadline, "no features published before the loss"
                time.sleep(0.2)
            sender = threading.Thread(target=feed_paced, args=(agg_topics, parts[1]))
            sender.start()
            time.sleep(1.0)  # the second third is arriving
            committed = committed_offsets(agg_topics.kafka, agg_topics.group, agg_topics.web_logs)
            agg_redis.flushdb()
            flushed = time.monotonic()
            sender.join()
            features.wait_until_equal(
                final_features(parts[0] + parts[1]),
                420,
                process,
                explainer(agg_topics, agg_redis),
            )
            took_live = time.monotonic() - flushed
            wait_committed_to_end(
                agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process
            )
        agg_redis.flushdb()
        feed(agg_topics, parts[2])
        started = time.monotonic()
        with aggregation(runs[1]) as process:
            features.wait_until_equal(
                final_features(logs), 420, process, explainer(agg_topics, agg_redis)
            )
            took_stopped = time.monotonic() - started
            ends = wait_committed_to_end(
                agg_topics.kafka, agg_topics.group, agg_topics.web_logs, 120, process
            )
        received = metrics.tags_by_metric()
    live_log, stopped_log = (path.read_text(errors="replace") for path in runs)

    report_figure(
        f"aggregation, Redis flushed while running ({sum(committed.values())} of {cut} "
        f"committed; {len(users[0] & users[1])} users with requests on both sides): all "
        f"{len(users[0] | users[1])} users' features equal offline {took_live:.0f} s after the "
        f"flush (the second third of the logs arriving meanwhile); "
        f"flushed while stopped: all {len(set().union(*users))} users' features equal offline "
        f"{took_stopped:.0f} s after `sparse run` ({len(logs)} WebLogs, read again twice)"
    )
    # Without a rebuild these users' features would count only the requests after a loss.
    assert users[0] & users[1] and users[1] & users[2]
    assert sum(ends.values()) == len(logs)
    assert "the state downstream was lost (generation " in live_log
    assert "refusing tuples read before Redis lost the state" in live_log
    assert "to rebuild the state, lost while this spout read it" in live_log
    assert "to rebuild the state, lost since the commit (made under generation " in stopped_log
    letters = read_topic(agg_topics.kafka, agg_topics.kafka.dead_letter_topic)
    assert letters == [], [decode_dead_letter(r.value).reason for r in letters]
    assert_failure_metrics_sent(
        "test_redis_back_empty_the_feature_state_is_rebuilt_from_the_logs", received
    )
