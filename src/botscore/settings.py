"""Typed settings, read once from ``config.json`` options and the environment.

Components receive the topology configuration that ``sparse run``/``sparse submit`` build
from the ``options`` of the chosen environment in ``config.json``; the command-line tools
read the same options from the file. Environment variables override both, so an operator
can change a setting without a rebuild; secrets come only from the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from botscore.errors import ConfigError

__all__ = [
    "AggregationSettings",
    "EnforcementSettings",
    "KafkaSettings",
    "MetricsSettings",
    "RedisSettings",
    "ScoringSettings",
    "Secret",
    "Settings",
    "load_project_settings",
    "require_message_timeouts",
]

PREFIX = "botscore."


class Secret(str):
    """A string that never prints: settings objects get logged, passwords must not be."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    __str__ = __repr__

    def reveal(self) -> str:
        return str.__str__(self)


NO_SECRET = Secret("")


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    features_topic: str = "user-features"
    scores_topic: str = "threat-scores"
    consumer_group: str = "botscore-scoring"
    # Where a new consumer group starts: "earliest" scores the retained backlog.
    auto_offset_reset: str = "earliest"
    topic_partitions: int = 4
    # Upper bound on messages a spout has emitted but not yet seen acked.
    max_in_flight: int = 5000
    commit_interval_ms: int = 1000
    producer_linger_ms: int = 5
    # A producer gives up on a record after this long, so the tuple fails (and is
    # replayed) before Storm's topology.message.timeout.secs would time it out.
    producer_delivery_timeout_ms: int = 30_000
    dead_letter_topic: str = "dead-letters"
    # Failed tuples are replayed after first, 2x first, ... up to max; after
    # max_attempts they go to the dead-letter topic (reason retries_exhausted).
    replay_backoff_first_ms: int = 200
    replay_backoff_max_ms: int = 30_000
    max_attempts: int = 10
    # Connection security, passed through to every client. Passwords only from the
    # environment: BOTSCORE_KAFKA_SASL_PASSWORD, BOTSCORE_KAFKA_SSL_PASSWORD.
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: Secret = NO_SECRET
    ssl_password: Secret = NO_SECRET


@dataclass(frozen=True)
class RedisSettings:
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str = ""
    # Only from the environment: BOTSCORE_REDIS_PASSWORD.
    password: Secret = NO_SECRET
    ssl: bool = False
    socket_timeout_s: float = 5.0


@dataclass(frozen=True)
class ScoringSettings:
    model_dir: str = "models/baseline"
    batch_size: int = 256
    # A batch waits at most this long for more users before it is scored.
    max_batch_wait_ms: int = 20
    # Threads per model call. Storm runs one process per executor, so more threads only
    # contend; OpenMP spin-waits made single-row calls 40x slower on 2 cores.
    model_threads: int = 1


@dataclass(frozen=True)
class AggregationSettings:
    web_logs_topic: str = "web-logs"
    consumer_group: str = "botscore-aggregation"
    # A user's features are published at most once per interval, and at the latest one
    # interval after their last request.
    publish_interval_ms: int = 2000
    # Redis forgets a user this long after their last request: the longest window (4 h)
    # plus a margin, so memory follows active users, not history.
    state_ttl_s: int = 4 * 3600 + 900
    batch_size: int = 256
    max_batch_wait_ms: int = 20
    # How often the publisher looks for users whose features are due.
    publish_poll_ms: int = 100


@dataclass(frozen=True)
class EnforcementSettings:
    consumer_group: str = "botscore-edge"
    # How long the edge keeps a decision after the last score that asked for it.
    block_ttl_s: int = 600
    challenge_ttl_s: int = 300


@dataclass(frozen=True)
class MetricsSettings:
    statsd_host: str = "127.0.0.1"
    statsd_port: int = 8125
    namespace: str = "botscore"
    enabled: bool = True


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    aggregation: AggregationSettings = field(default_factory=AggregationSettings)
    enforcement: EnforcementSettings = field(default_factory=EnforcementSettings)

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from flat ``botscore.<section>.<name>`` options.

        ``environ`` (default ``os.environ``) overrides them with
        ``BOTSCORE_<SECTION>_<NAME>`` variables.
        """
        environ = os.environ if environ is None else environ
        known_sections = {f"{PREFIX}{name}." for name in _SECTIONS}
        strays = [
            k for k in options if k.startswith(PREFIX) and not k.startswith(tuple(known_sections))
        ]
        if strays:
            raise ConfigError(f"unknown setting(s) {', '.join(sorted(strays))}")
        return cls(
            **{
                name: _build_section(name, section_cls, options, environ)
                for name, section_cls in _SECTIONS.items()
            }
        )


_SECTIONS: dict[str, type] = {
    "kafka": KafkaSettings,
    "scoring": ScoringSettings,
    "metrics": MetricsSettings,
    "redis": RedisSettings,
    "aggregation": AggregationSettings,
    "enforcement": EnforcementSettings,
}


def _build_section(
    section: str, section_cls: type, options: Mapping[str, Any], environ: Mapping[str, str]
) -> Any:
    values: dict[str, Any] = {}
    for item in fields(section_cls):
        key = f"{PREFIX}{section}.{item.name}"
        env_key = f"BOTSCORE_{section}_{item.name}".upper()
        default = item.default
        if isinstance(default, Secret) and key in options:
            raise ConfigError(f"{key} is a secret: set {env_key} in the environment instead")
        if env_key in environ:
            values[item.name] = _coerce(env_key, environ[env_key], type(default))
        elif key in options:
            values[item.name] = _coerce(key, options[key], type(default))
    unknown = [
        k
        for k in options
        if k.startswith(f"{PREFIX}{section}.")
        and k.removeprefix(f"{PREFIX}{section}.") not in {f.name for f in fields(section_cls)}
    ]
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    return section_cls(**values)


def _coerce(key: str, raw: Any, wanted: type) -> Any:
    if wanted is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in {"1", "true", "yes", "on"}:
            return True
        if str(raw).lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key}: expected a boolean, got {raw!r}")
    try:
        return wanted(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {wanted.__name__}, got {raw!r}") from None


def load_project_settings(
    config_path: str | Path = "config.json",
    env_name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings for command-line tools, from the same ``config.json`` as the topology."""
    path = Path(config_path)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run botscore from the project root") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    envs = config.get("envs", {})
    if env_name is None:
        env_name = os.environ.get("BOTSCORE_ENV") or next(iter(envs), None)
    if env_name not in envs:
        raise ConfigError(f"environment {env_name!r} not in {path} (have: {', '.join(envs)})")
    return Settings.from_options(envs[env_name].get("options", {}), environ)


MESSAGE_TIMEOUTS = "topology.enable.message.timeouts"


def require_message_timeouts(storm_conf: Mapping[str, Any]) -> None:
    """Refuse to run a spout whose lost tuples would never be failed.

    Storm 2's local mode (``sparse run``) turns message timeouts off unless the topology
    asks for them. A spout then waits forever for a tuple lost downstream, and once
    ``topology.max.spout.pending`` of them are lost it stops for good, silently.
    """
    if str(storm_conf.get(MESSAGE_TIMEOUTS, True)).lower() == "false":
        raise ConfigError(
            f"{MESSAGE_TIMEOUTS} is false: a tuple lost downstream would never be replayed "
            f"and would stall the spout; set it to true in the options in config.json"
        )
