"""The edge's side of the loop: threat scores become allow/challenge/block decisions.

Decisions live in Redis as ``bs:edge:decision:{user_id}`` = ``block`` | ``challenge`` with
an expiry; no key means allow. A Lua script applies each score atomically. It is a merge,
so replayed or reordered scores leave the same decisions: a decision expires at its
score's ``scored_time`` plus the TTL, expiries only grow, a challenge never replaces a
block, an allow only lets decisions run out, and a score whose decision would already have
expired changes nothing. ``bs:edge:stats`` counts transitions (a user newly blocked or
challenged) and distinct users scored, so it is idempotent too.

Delivery (at least once): a polled batch goes to Redis in one MULTI pipeline and its
offsets are committed only after Redis accepted it and Kafka confirmed its dead letters.
While Redis is down the same batch is retried with backoff and nothing is committed; a
crash replays the uncommitted batch, which the merge makes harmless. A retry longer than
the consumer's ``max_poll_interval_ms`` (5 min) costs the group membership: the commit
then fails, is logged, and the partitions' next owner replays from the last commit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.future import Future
from kafka.structs import OffsetAndMetadata, TopicPartition

from botscore.codec import decode_threat_score
from botscore.dead_letters import DeadLetterRecord, send_dead_letter
from botscore.delivery import Backoff
from botscore.errors import InvalidMessage
from botscore.kafka_clients import create_consumer, create_producer, poll_group, wait_for_topic
from botscore.metrics import Metrics
from botscore.records import ScoreRecord, SourceRef
from botscore.redis_client import create_redis
from botscore.settings import EnforcementSettings, Settings

__all__ = [
    "COMPONENT",
    "DECISION_PREFIX",
    "SCORED_USERS_KEY",
    "STATS_KEY",
    "DecisionWriter",
    "EdgeDecisions",
    "decision_key",
    "parse_score",
    "read_stats",
    "run_enforcer",
    "ttl_ms",
]

DECISION_PREFIX = "bs:edge:decision:"
STATS_KEY = "bs:edge:stats"
# A HyperLogLog of the users ever scored: ``users_scored`` is replay-safe and the key stays
# at 12 KB however many users pass (the count is within about 1%).
SCORED_USERS_KEY = "bs:edge:scored_users"
COMPONENT = "enforcement"
# What a decision key can hold; no key means allow.
_STORED = frozenset({"block", "challenge"})

log = logging.getLogger(__name__)

# KEYS: decision, stats hash, scored-users HyperLogLog. ARGV: user id, decision, scored ms, TTL ms.
# Returns what happened: allow, stale, kept, block or challenge (newly set or extended).
_APPLY_SCORE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('PFADD', KEYS[3], ARGV[1])
local decision = ARGV[2]
if decision == 'allow' then
  return 'allow'
end
local ttl = tonumber(ARGV[4])
-- A scorer clock running ahead must not stretch a decision past one TTL from now.
local expire_at = math.min(tonumber(ARGV[3]) + ttl, now + ttl)
if expire_at <= now then
  return 'stale'
end
local current = redis.call('GET', KEYS[1])
if current == 'block' and decision == 'challenge' then
  return 'kept'
end
if current == decision and now + redis.call('PTTL', KEYS[1]) >= expire_at then
  return 'kept'
end
redis.call('SET', KEYS[1], decision, 'PXAT', expire_at)
if current ~= decision then
  redis.call('HINCRBY', KEYS[2], decision == 'block' and 'blocks' or 'challenges', 1)
end
return decision
"""


def decision_key(user_id: str) -> str:
    return DECISION_PREFIX + user_id


def parse_score(payload: bytes | None) -> ScoreRecord:
    """Decode a ``ThreatScore`` the edge can act on, or raise ``InvalidMessage``."""
    if not payload:
        raise InvalidMessage("empty_payload")
    score = decode_threat_score(payload)
    if not score.user_id:
        raise InvalidMessage("missing_user_id")
    if score.decision == "unspecified":  # the codec's name for a missing or unknown enum
        raise InvalidMessage("unknown_decision")
    if score.scored_time_ms <= 0:
        # The decision's expiry counts from it; without it a replay could not be undone.
        raise InvalidMessage("missing_scored_time")
    return score


def ttl_ms(decision: str, settings: EnforcementSettings) -> int:
    """How long the edge keeps ``decision`` after its score (0: nothing to keep)."""
    if decision == "block":
        return settings.block_ttl_s * 1000
    if decision == "challenge":
        return settings.challenge_ttl_s * 1000
    return 0


class DecisionWriter:
    """Applies scores to Redis: one MULTI pipeline per batch, one script call per score."""

    def __init__(self, client: redis.Redis, settings: EnforcementSettings) -> None:
        self.client = client
        self.settings = settings
        self._apply = client.register_script(_APPLY_SCORE)

    def write(self, scores: list[ScoreRecord]) -> list[str]:
        """Apply ``scores`` all or none; return the script's outcome for each."""
        if not scores:
            return []
        pipe = self.client.pipeline(transaction=True)
        for score in scores:
            self._apply(
                keys=[decision_key(score.user_id), STATS_KEY, SCORED_USERS_KEY],
                args=[
                    score.user_id,
                    score.decision,
                    score.scored_time_ms,
                    ttl_ms(score.decision, self.settings),
                ],
                client=pipe,
            )
        return [r.decode() for r in pipe.execute()]


class EdgeDecisions:
    """What an edge does with a user; no answer is older than ``cache_ms`` of wall time.

    Edges cache because a GET per request at thousands per second is wasteful: answers
    hold for one period, and the first lookup after it refreshes, in one MGET per 1000,
    every user looked up during it; a user new in a period costs one round trip. Fails
    open: while Redis is unreachable users are allowed (the site keeps serving), and the
    outage is logged once, not per request.
    """

    def __init__(
        self,
        client: redis.Redis,
        cache_ms: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._cache_s = cache_ms / 1000
        self._clock = clock
        self._cache: dict[str, str] = {}
        self._used: set[str] = set()
        self._expires = clock() + self._cache_s
        self._failing = False

    def decision_for(self, user_id: str) -> str:
        now = self._clock()
        if now >= self._expires:
            # Users idle for a whole period are dropped: memory follows active users.
            users = list(self._used)
            self._cache = dict(zip(users, self._fetch(users), strict=True))
            self._used = set()
            self._expires = now + self._cache_s
        self._used.add(user_id)
        decision = self._cache.get(user_id)
        if decision is None:
            decision = self._cache[user_id] = self._fetch([user_id])[0]
        return decision

    def _fetch(self, users: list[str]) -> list[str]:
        values: list[bytes | None] = []
        try:
            for i in range(0, len(users), 1000):
                values += self.client.mget([decision_key(u) for u in users[i : i + 1000]])
        except redis.RedisError as exc:
            if not self._failing:
                log.warning("edge decisions unavailable, allowing everyone meanwhile: %s", exc)
                self._failing = True
            return ["allow"] * len(users)
        if self._failing:
            log.warning("edge decisions available again")
            self._failing = False
        return [v.decode() if v is not None and v.decode() in _STORED else "allow" for v in values]

    def stats(self) -> dict[str, int] | None:
        """The enforcer's counters (``users_scored``, ``blocks``, ...); None if unreachable."""
        return read_stats(self.client)


def read_stats(client: redis.Redis) -> dict[str, int] | None:
    """``bs:edge:stats`` plus ``users_scored`` (approximate); None if Redis is unreachable."""
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(STATS_KEY)
        pipe.pfcount(SCORED_USERS_KEY)
        raw, scored = pipe.execute()
    except redis.RedisError:
        return None
    return {**{k.decode(): int(v) for k, v in raw.items()}, "users_scored": scored}


class _DeadLetters:
    """Dead letters sent but not yet confirmed by Kafka; a batch commits only without any."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.pending: list[tuple[DeadLetterRecord, Future | None]] = []

    def add(self, letter: DeadLetterRecord) -> None:
        self.pending.append((letter, self._send(letter)))

    def _send(self, letter: DeadLetterRecord) -> Future | None:
        try:
            return send_dead_letter(self.producer, self.topic, letter)
        except KafkaError as exc:
            log.warning("dead letter for %s not sent, will retry: %s", letter.source, exc)
            return None

    def confirm(self) -> None:
        """Return once Kafka confirmed every letter; else resend the failed ones and raise."""
        if not self.pending:
            return
        with contextlib.suppress(KafkaError):  # the futures say which are still out
            self.producer.flush(timeout=2)
        waiting = []
        for letter, future in self.pending:
            if future is None or (future.is_done and future.failed()):
                waiting.append((letter, self._send(letter)))
            elif not future.is_done:
                waiting.append((letter, future))
        self.pending = waiting
        if waiting:
            raise KafkaError(f"{len(waiting)} dead letters not yet confirmed by Kafka")


def _until_done(stop: threading.Event, what: str, action: Callable[[], Any]) -> bool:
    """Run ``action`` until it succeeds (True) or ``stop`` is set (False), with backoff."""
    backoff = Backoff(first_s=0.2, max_s=5.0)
    attempt, first_failure = 0, 0.0
    while not stop.is_set():
        try:
            action()
        except (redis.RedisError, KafkaError) as exc:
            attempt += 1
            first_failure = first_failure or time.monotonic()
            delay = backoff.delay(attempt)
            log.error(
                "%s failed (attempt %d), offsets not committed, retrying in %.1f s: %s",
                what,
                attempt,
                delay,
                exc,
            )
            stop.wait(delay)
            continue
        if attempt:
            log.warning(
                "%s succeeded after %d failed attempts over %.1f s",
                what,
                attempt,
                time.monotonic() - first_failure,
            )
        return True
    return False


def run_enforcer(settings: Settings, stop: threading.Event | None = None) -> None:
    """Apply threat scores to the edge's decisions until ``stop`` is set.

    Never raises for an unreachable Redis or Kafka: it logs and retries the same batch.
    Returns within about a second of ``stop`` (at most a Redis socket timeout more).
    """
    stop = stop or threading.Event()
    kafka, topic = settings.kafka, settings.kafka.scores_topic
    group = settings.enforcement.consumer_group
    consumer = create_consumer(kafka, client_id="botscore-enforcer", group_id=group)
    producer = create_producer(kafka, client_id="botscore-enforcer-dlq")
    client = create_redis(settings.redis)
    writer = DecisionWriter(client, settings.enforcement)
    metrics = Metrics(settings.metrics, "enforcer")
    try:
        if not consumer.partitions_for_topic(topic):
            log.warning("waiting for topic %s (create it with `botscore topics`)", topic)
        wait_for_topic(consumer, topic, stop.is_set, stop.wait)
        consumer.subscribe([topic])
        log.info("applying %s as group %s to Redis db %d", topic, group, settings.redis.db)
        while not stop.is_set():
            polled = poll_group(consumer, timeout_ms=500)
            if not polled:
                if not consumer.assignment():
                    stop.wait(0.1)  # poll returns at once without partitions
                continue
            letters = _DeadLetters(producer, kafka.dead_letter_topic)
            if not _apply_batch(polled, writer, letters, stop, metrics):
                break
            _commit(consumer, polled)
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=5)
        client.close()
        metrics.close()
        log.info("enforcer stopped")


def _apply_batch(
    polled: dict[TopicPartition, list[Any]],
    writer: DecisionWriter,
    letters: _DeadLetters,
    stop: threading.Event,
    metrics: Metrics,
) -> bool:
    """Write one polled batch; False when stopped before it was safely done."""
    scores: list[ScoreRecord] = []
    for records in polled.values():
        for record in records:
            source = SourceRef(record.topic, record.partition, record.offset)
            try:
                scores.append(parse_score(record.value))
            except InvalidMessage as exc:
                log.warning("dead-lettering score at %s: %s", source.tuple_id(), exc)
                metrics.count("dead_lettered", tags=[f"reason:{exc.reason}"])
                letters.add(
                    DeadLetterRecord(
                        record.value or b"",
                        record.key or b"",
                        exc.reason,
                        exc.detail,
                        COMPONENT,
                        source,
                        int(time.time() * 1000),
                    )
                )
    outcomes: list[str] = []
    written = _until_done(
        stop,
        f"writing {len(scores)} decisions to Redis",
        lambda: outcomes.extend(writer.write(scores)),
    )
    if not written or not _until_done(stop, "dead letters", letters.confirm):
        return False
    for outcome, n in Counter(outcomes).items():
        metrics.count("scores", n, tags=[f"outcome:{outcome}"])
    return True


def _commit(consumer: KafkaConsumer, polled: dict[TopicPartition, list[Any]]) -> None:
    positions = {
        tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in polled.items()
    }
    try:
        consumer.commit(positions, timeout_ms=2000)
    except KafkaError as exc:
        # Safe: whoever owns the partitions next replays them, and replays change nothing.
        log.warning("offset commit failed, the batch will be replayed: %s", exc)
