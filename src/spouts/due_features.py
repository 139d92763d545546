"""Publisher spout: emits the features of users whose publication is due.

The aggregation bolt marks a user pending in Redis; this spout reads due users, computes
their features from the stored state, and emits them, the users of one poll in one tuple
(``PublicationBatch``: one tuple per user cost Storm's acker and both multilang hops more
than the publishing itself). Delivery: when the producer acks the tuple (Kafka confirmed
each of its users), its users leave the pending set unless newer requests arrived, which
makes them due one interval later (recorded at the next poll, for all the users confirmed
since, in one round trip); a failed tuple leaves its users pending, so they are retried. A
user is published at most once per ``publish_interval_ms``. Each of the component's tasks
publishes the users of its own share of the state's shards (``ShardLayout.share``), so a
user has one publisher however many run; the first task also sends the state's size and
sweeps old epochs, for all of them. Its tuples carry its index, and the topology sends all
of them to one producer: a tuple Storm failed while its producer still held some of its
messages is made again behind those, so a user's newer features never precede its older.

A user whose stored state cannot be read (another program wrote into its keys) would be
the oldest due user at every poll: its state is deleted instead, logged and counted as
``state_reset``, and publishing goes on with the others.

After Redis lost some of the state, the keys the rest still holds of the old epoch are
deleted a step per poll (``swept_keys``) rather than left to expire hours later beside the
rebuilt state.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import redis

from botscore.aggregation.definitions import compute_features
from botscore.aggregation.redis_state import Publication, UnusableState, feature_store
from botscore.clock import now_ms
from botscore.errors import ConfigError
from botscore.metrics import Metrics, storm_tags
from botscore.model.features import CATALOG
from botscore.multilang_pipe import Spout
from botscore.observability.tagged_logs import tag_logs
from botscore.settings import Settings, require_message_timeouts
from botscore.storm_context import task_place
from botscore.vocabulary import Component
from botscore.wire.records import PublicationBatch

# Users read per poll, and so per tuple: bounds one next_tuple call, so acks are not held
# up for long. A full poll is followed by the next at once: a backlog goes out as fast as
# the publisher can read it.
_BATCH = 500
# Users emitted and not yet confirmed: past it, polls wait for confirmations (Storm's
# topology.max.spout.pending counts tuples, each of up to _BATCH users).
_MAX_IN_FLIGHT = 10 * _BATCH
# After a Redis error, wait this long before asking again.
_REDIS_RETRY_S = 1.0
# How often the size of the feature state is sent (three O(1) Redis calls).
_STATE_SIZE_EVERY_S = 10.0
# How often to look for a superseded epoch to delete, and the keys each node scans per poll
# while deleting one (some milliseconds: publishing waits for it).
_SWEEP_CHECK_EVERY_S = 10.0
_SWEEP_SCAN_COUNT = 1000


class DueFeaturesSpout(Spout):
    outputs = PublicationBatch.FIELDS

    def initialize(self, storm_conf: dict[str, Any], context: dict[str, Any]) -> None:
        require_message_timeouts(storm_conf)
        settings = Settings.from_options(storm_conf, role=Component.PUBLISHER.role)
        agg = settings.aggregation
        self.store = feature_store(settings)
        place = task_place(context)
        self.shards = self.store.layout.share(place.index, place.count)
        if not self.shards:
            raise ConfigError(
                f"publisher {place.index + 1} of {place.count} has no shard of the feature "
                f"state's {self.store.layout.count} (aggregation.state_shards): run at most "
                "that many publishers"
            )
        self.place = place.index
        self.leader = place.index == 0  # sends the state's size and sweeps, for every shard
        self.interval_ms = agg.publish_interval_ms
        self.poll_s = agg.publish_poll_ms / 1000
        self.metrics = Metrics(
            settings.metrics, Component.PUBLISHER, tags=storm_tags(storm_conf, context)
        )
        tag_logs(self.logger, self.metrics.tags)
        self.in_flight: dict[str, int] = {}  # user -> version emitted, until recorded
        self.batches: dict[str, list[Publication]] = {}  # tuple id -> its publications
        self.sequence = itertools.count(1)
        self.confirmed: list[Publication] = []  # acked, not yet recorded in Redis
        self.next_poll = 0.0
        self.next_size = 0.0
        self.next_sweep = 0.0

    def next_tuple(self) -> None:
        wait = self.next_poll - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.next_poll = time.monotonic() + self.poll_s
        if self.confirmed:
            self._record_confirmed()
        now = now_ms()
        try:
            if self.leader and self.next_poll >= self.next_size:
                self._send_state_size()
            if self.leader and (self.store.sweeping or self.next_poll >= self.next_sweep):
                self._sweep()
            if len(self.in_flight) >= _MAX_IN_FLIGHT:
                return  # Kafka confirms what is out first
            due = self.store.due(now, _BATCH, self.shards, held=self.in_flight)
            if due.foreign:
                self.logger.error("removed %d pending users that are not UTF-8", due.foreign)
                self.metrics.count("state_reset", due.foreign)
            candidates = self.store.read(due.users) if due.users else []
            batch: list[Publication] = []
            rows: list[list[float]] = []
            ends: list[int] = []
            for user_id, candidate in zip(due.users, candidates, strict=True):
                if candidate is None:  # expired: nothing left to say about this user
                    self.store.drop_pending(user_id)
                elif isinstance(candidate, UnusableState):
                    self.store.reset(user_id)
                    self.logger.error(
                        "deleted the unreadable feature state of user %r (%s); "
                        "its next request starts it again",
                        user_id,
                        candidate.reason,
                    )
                    self.metrics.count("state_reset")
                elif now - candidate.published_ms < self.interval_ms:
                    self.store.postpone(user_id, candidate.published_ms + self.interval_ms)
                else:
                    features = compute_features(candidate.state)
                    batch.append((user_id, candidate.born, candidate.version))
                    rows.append([features[name] for name in CATALOG])
                    ends.append(candidate.state.last_ms)
            if batch:
                self._emit(batch, ends, rows)
            if len(due.users) == _BATCH:  # a backlog: the next call polls at once
                self.next_poll = time.monotonic()
        except redis.RedisError as exc:
            self.logger.warning("Redis failed, publishing paused: %s", exc)
            self.next_poll = time.monotonic() + _REDIS_RETRY_S

    def _emit(self, batch: list[Publication], ends: list[int], rows: list[list[float]]) -> None:
        tup_id = f"p{next(self.sequence)}"
        users = [user_id for user_id, _, _ in batch]
        tup = PublicationBatch(self.place, users, ends, list(CATALOG), rows)
        self.emit(tup.to_values(), tup_id=tup_id)
        self.batches[tup_id] = batch
        for user_id, _, version in batch:
            self.in_flight[user_id] = version
        self.metrics.count("emitted", len(batch))

    def _send_state_size(self) -> None:
        size = self.store.size()
        self.next_size = self.next_poll + _STATE_SIZE_EVERY_S
        self.metrics.gauge("pending_users", size.pending_users)
        self.metrics.gauge("state_keys", size.keys)
        self.metrics.gauge("redis_memory_bytes", size.memory_bytes)

    def _sweep(self) -> None:
        """A step of deleting the keys of an epoch the state left (Redis lost some of it)."""
        swept = self.store.sweep(_SWEEP_SCAN_COUNT)
        if not self.store.sweeping:
            self.next_sweep = self.next_poll + _SWEEP_CHECK_EVERY_S
        if swept.deleted:
            self.metrics.count("swept_keys", swept.deleted)
        if swept.finished:
            self.logger.info(
                "deleted the %d keys left of the feature state's old epoch %s",
                swept.total,
                swept.finished,
            )

    def ack(self, tup_id: str) -> None:
        """Kafka confirmed the tuple's users' features: recorded in Redis at the next poll,
        with the others confirmed meanwhile (they stay in flight until then, so that the
        poll cannot publish them again first)."""
        self.confirmed += self.batches.pop(tup_id, [])

    def _record_confirmed(self) -> None:
        """Record the publications Kafka confirmed since the last poll, in one round trip."""
        confirmed, self.confirmed = self.confirmed, []
        try:
            self.store.published(confirmed, now_ms(), self.interval_ms)
        except redis.RedisError as exc:
            # The users stay pending and are published again: duplicates, not a loss.
            self.logger.warning(
                "could not record the publication of %d users (published again): %s",
                len(confirmed),
                exc,
            )
        finally:
            for user_id, _, _ in confirmed:
                self.in_flight.pop(user_id, None)

    def fail(self, tup_id: str) -> None:
        batch = self.batches.pop(tup_id, [])
        for user_id, _, _ in batch:
            self.in_flight.pop(user_id, None)
        self.metrics.count("failed", len(batch))
