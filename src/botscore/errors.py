"""Errors raised by the botscore library, each saying what to fix.

One base class, ``BotscoreError``, so a command can report every error the project raises
on purpose in one line; small subclasses name the concern.
"""

from __future__ import annotations

from botscore.vocabulary import DeadLetterReason

__all__ = [
    "BotscoreError",
    "ConfigError",
    "InvalidMessage",
    "ModelError",
    "SendNotConfirmed",
    "SimulationSpecError",
    "StateLost",
    "StateNotReplicated",
    "TopicMissing",
    "UnreadableLine",
]


class BotscoreError(Exception):
    """Base class of every error botscore raises on purpose."""


class ConfigError(BotscoreError):
    """A setting is missing or has a value that cannot work."""


class ModelError(BotscoreError):
    """A model artifact is missing, corrupt, or does not fit the feature messages."""


class InvalidMessage(BotscoreError):
    """A message cannot be used; ``reason`` says why, and goes into its dead letter."""

    def __init__(self, reason: DeadLetterReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TopicMissing(BotscoreError):
    """A Kafka topic the command needs does not exist (``botscore topics`` creates them)."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic} does not exist: run `botscore topics`")
        self.topic = topic


class SendNotConfirmed(BotscoreError):
    """Kafka has not (yet) confirmed messages that must be on it before offsets move on."""


class StateLost(BotscoreError):
    """A batch was read under another generation of the state than Redis holds: Redis
    lost the state since, and its reader must read the batch again for the new one."""


class StateNotReplicated(BotscoreError):
    """Fewer replicas than required confirmed a batch's writes in time: the primary has
    them, but a failover now could lose them, so the batch is replayed (its dedup marks
    make that harmless) rather than acked."""


class SimulationSpecError(BotscoreError):
    """A simulation's parameters cannot produce the traffic asked for."""


class UnreadableLine(BotscoreError):
    """An access-log line that is not one of the edge's requests; ``reason`` is a short tag."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
