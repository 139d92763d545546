"""Consumer lag per partition as the consumer itself sees it: end offset minus its commit.

The end offsets cost one broker round trip (ListOffsets: about 1.4 ms for 4 partitions on
loopback), so they are read at most once per ``kafka.lag_interval_ms``, never per message.
The fetch responses' high watermark (``consumer.highwater``) would cost nothing, but it stops
moving while a partition is paused: exactly when a spout waits on a hung bolt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from botscore.metrics import Metrics
from botscore.transport.offsets import PartitionKey

__all__ = ["LagGauges"]

# Longest a lag read may block its consumer's thread (a spout must answer Storm meanwhile).
_END_OFFSETS_TIMEOUT_MS = 1000


class LagGauges:
    """Sends ``lag`` and ``committed_offset`` gauges per partition, once per interval.

    A broker that does not answer costs one logged warning and one ``lag_read_failed``
    count per interval; the caller goes on as if nothing was due.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        metrics: Metrics,
        interval_s: float,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.metrics = metrics
        self.interval_s = interval_s
        self.logger = logger
        self.clock = clock
        self.next_read = clock() + interval_s

    def report(self, committed: Callable[[], Mapping[PartitionKey, int]]) -> None:
        """Send the gauges of each partition ``committed()`` returns, if an interval has passed.

        ``committed`` (called only when due) maps the partitions the consumer owns to the
        next offset it committed for each.
        """
        now = self.clock()
        if now < self.next_read:
            return
        self.next_read = now + self.interval_s
        positions = committed()
        if not positions:
            return
        partitions = [TopicPartition(*key) for key in sorted(positions)]
        try:
            ends = self.consumer.end_offsets(partitions, timeout_ms=_END_OFFSETS_TIMEOUT_MS)
        except KafkaError as exc:
            self.metrics.count("lag_read_failed")
            self.logger.warning("end offsets unknown, no lag sent this time: %s", exc)
            return
        for tp, end in ends.items():
            position = positions[(tp.topic, tp.partition)]
            tags = [f"topic:{tp.topic}", f"partition:{tp.partition}"]
            self.metrics.gauge("committed_offset", position, tags)
            # A commit ahead of a cached end offset is not negative lag.
            self.metrics.gauge("lag", max(0, end - position), tags)
