"""Errors raised by the botscore library, each saying what to fix."""

from __future__ import annotations

from botscore.vocabulary import DeadLetterReason

__all__ = ["BotscoreError", "ConfigError", "InvalidMessage", "ModelError"]


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
