"""Typed settings, read once from ``config.json`` options and the environment.

Components receive the topology configuration that ``sparse run``/``sparse submit`` build
from the ``options`` of the chosen environment in ``config.json``; the command-line tools
read the same options from the file. Environment variables override both, so an operator
can change a setting without a rebuild; secrets come only from the environment.

Each field declares its type (a ``Literal`` for a closed set of values), its default, a
one-line ``doc`` in its metadata and, for a value that could not work, its ``limits``; its
environment variable is ``env_var(section, name)``. A value of the wrong type or outside its
limits is a ``ConfigError`` naming the setting. ``settings_table`` renders them all as the
README's table, so the two cannot drift apart.

Settings are read for a ``Role`` (the process's: a component's, a command's): then
``env_var(section, name, role)`` (``BOTSCORE_KAFKA_SASL_PASSWORD__SCORING``) overrides the
plain variable, so one environment (a Storm supervisor's) can hold every role's
credentials and each process takes its own; and ``{role}`` in a user name stands for it.
"""

from __future__ import annotations

import difflib
import hmac
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args, get_origin, get_type_hints

from botscore.errors import ConfigError
from botscore.vocabulary import Role

__all__ = [
    "AccessLogFormat",
    "AggregationSettings",
    "EdgeSettings",
    "EnforcementSettings",
    "KafkaSettings",
    "Limits",
    "MetricsSettings",
    "OffsetReset",
    "RedisSettings",
    "SaslMechanism",
    "ScoringSettings",
    "Secret",
    "SecurityProtocol",
    "Settings",
    "env_var",
    "host_port",
    "load_project_settings",
    "project_env",
    "require_message_timeouts",
    "settings_table",
    "unresolved_role",
]

PREFIX = "botscore."

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
OffsetReset = Literal["earliest", "latest"]
AccessLogFormat = Literal["botscore", "combined"]
# The mechanisms that authenticate with a user name and password, the only credentials
# the clients are given.
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Secret:
    """A password that never prints: settings objects get logged, passwords must not be.

    Not a ``str``, so nothing that takes strings (``+``, ``join``, ``json.dumps``, a
    client's config) gets the value by accident: ``reveal()`` is the one way to it. It
    renders as a mask, or as nothing when unset, since "no password" hides nothing.
    """

    __slots__ = ("_value",)
    MASK = "**********"

    def __init__(self, value: str = "") -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def _shown(self) -> str:
        return self.MASK if self._value else ""

    def __repr__(self) -> str:
        return f"Secret({self._shown()!r})"

    def __str__(self) -> str:
        return self._shown()

    def __format__(self, spec: str) -> str:
        return format(self._shown(), spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __add__(self, other: object) -> NoReturn:
        raise TypeError("a Secret does not concatenate: use reveal() where the value is needed")

    __radd__ = __add__


NO_SECRET = Secret("")


@dataclass(frozen=True)
class Limits:
    """The values a setting takes beyond its type, declared as its metadata's ``limits``.

    ``from_options`` checks them for every value it reads, so a value that cannot work stops
    the command or component at start and names the setting, instead of failing later in a
    client; ``settings_table`` lists them. A string of only spaces counts as empty.
    """

    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    not_empty: bool = False

    def admit(self, value: float | str) -> bool:
        if isinstance(value, str):
            return bool(value.strip()) or not self.not_empty
        return (
            (self.at_least is None or value >= self.at_least)
            and (self.above is None or value > self.above)
            and (self.at_most is None or value <= self.at_most)
        )

    def __str__(self) -> str:
        bounds = (("at least", self.at_least), ("more than", self.above), ("at most", self.at_most))
        rules = ["not empty"] if self.not_empty else []
        rules += [f"{words} {bound}" for words, bound in bounds if bound is not None]
        return " and ".join(rules)


# Names botscore cannot do without: brokers, hosts, topics, groups, directories.
NAME = Limits(not_empty=True)
PORT = Limits(at_least=1, at_most=65535)
# Counts, sizes, periods (how often), timeouts and lives that 0 would stall or break.
POSITIVE = Limits(above=0)
# Indexes, and waits, skews and ages for which 0 means none (or "never", as documented).
NOT_NEGATIVE = Limits(at_least=0)
# Seconds a timer or a socket can wait: past a day no one means it, and far past it the
# platform's clocks overflow (a socket timeout of 1e300 raises in every call).
TIMEOUT_S = Limits(above=0, at_most=86_400)
PERIOD_S = Limits(at_least=0, at_most=86_400)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = field(
        default="127.0.0.1:9092", metadata={"doc": "comma-separated Kafka brokers", "limits": NAME}
    )
    features_topic: str = field(
        default="user-features",
        metadata={"doc": "`UserFeatures`, the scoring's input", "limits": NAME},
    )
    scores_topic: str = field(
        default="threat-scores",
        metadata={"doc": "`ThreatScore`s, the scoring's output", "limits": NAME},
    )
    shadow_scores_topic: str = field(
        default="threat-scores-shadow",
        metadata={
            "doc": "a challenger's `ThreatScore`s (`botscore models shadow`); no decisions",
            "limits": NAME,
        },
    )
    # "earliest" scores the retained backlog.
    auto_offset_reset: OffsetReset = field(
        default="earliest",
        metadata={
            "doc": "where a new consumer group starts (a spout whose position falls out of "
            "the log reads on from its start)"
        },
    )
    topic_partitions: int = field(
        default=4, metadata={"doc": "partitions of each topic botscore creates", "limits": POSITIVE}
    )
    # A topic's data survives the loss of replication_factor - 1 brokers; with acks=all a
    # write waits for min_insync_replicas of them, and is refused while fewer are in sync
    # rather than kept on too few.
    replication_factor: int = field(
        default=1,
        metadata={
            "doc": "replicas of each topic botscore creates (3 on a production cluster)",
            "limits": POSITIVE,
        },
    )
    # 0 leaves the broker's own default in force (an operator's cluster-wide 2 stays 2).
    min_insync_replicas: int = field(
        default=0,
        metadata={
            "doc": "replicas that must have a write before it is confirmed, for each topic "
            "botscore creates (2 with 3 replicas; 0: the broker's default; not more than "
            "`kafka.replication_factor`)",
            "limits": NOT_NEGATIVE,
        },
    )
    max_in_flight: int = field(
        default=5000,
        metadata={
            "doc": "a spout stops polling above this many emitted but unacked messages",
            "limits": POSITIVE,
        },
    )
    # A spout keeps each unfinished message's bytes to replay or dead-letter it; near the
    # broker's size limit, 5000 of them would be gigabytes.
    max_in_flight_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata={
            "doc": "a spout stops polling while its unfinished messages hold this many bytes",
            "limits": POSITIVE,
        },
    )
    commit_interval_ms: int = field(
        default=1000,
        metadata={
            "doc": "how often a spout commits the offsets of finished messages",
            "limits": POSITIVE,
        },
    )
    lag_interval_ms: int = field(
        default=5000,
        metadata={
            "doc": "how often spouts and the enforcer read end offsets to send their consumer lag",
            "limits": POSITIVE,
        },
    )
    producer_linger_ms: int = field(
        default=5,
        metadata={"doc": "how long a producer waits to fill a batch", "limits": NOT_NEGATIVE},
    )
    # The tuple then fails (and is replayed) before Storm's topology.message.timeout.secs
    # would time it out.
    producer_delivery_timeout_ms: int = field(
        default=30_000,
        metadata={
            "doc": "a producer gives up on a record after this long and the tuple fails",
            "limits": POSITIVE,
        },
    )
    dead_letter_topic: str = field(
        default="dead-letters",
        metadata={"doc": "where messages that can never be used go", "limits": NAME},
    )
    # Retention is how far back a reader can go: the web logs must cover the feature
    # state's life (a state lost in Redis is rebuilt from them), the features the ranges
    # `botscore backfill` re-scores.
    web_logs_retention_h: int = field(
        default=7 * 24,
        metadata={
            "doc": "hours the web-logs topic keeps a request (at least `aggregation.state_ttl_s`)",
            "limits": POSITIVE,
        },
    )
    features_retention_h: int = field(
        default=7 * 24,
        metadata={
            "doc": "hours the features topic keeps a message (how far back `botscore backfill` "
            "reaches)",
            "limits": POSITIVE,
        },
    )
    scores_retention_h: int = field(
        default=24,
        metadata={
            "doc": "hours the scores and shadow scores topics keep a score",
            "limits": POSITIVE,
        },
    )
    dead_letter_retention_h: int = field(
        default=30 * 24,
        metadata={
            "doc": "hours the dead-letter topic keeps a letter (the time to fix and replay it)",
            "limits": POSITIVE,
        },
    )
    # Replays wait first, 2x first, ... up to max.
    replay_backoff_first_ms: int = field(
        default=200,
        metadata={
            "doc": "wait before a failed tuple's first replay, doubled for each next one (not "
            "more than `kafka.replay_backoff_max_ms`)",
            "limits": NOT_NEGATIVE,
        },
    )
    replay_backoff_max_ms: int = field(
        default=30_000,
        metadata={"doc": "longest wait between replays of a tuple", "limits": NOT_NEGATIVE},
    )
    max_attempts: int = field(
        default=10,
        metadata={
            "doc": "failures of a tuple before it is dead-lettered as `retries_exhausted`, or "
            "halved if it is a batch (the last one counts only if another tuple was acked "
            "since the one before)",
            "limits": POSITIVE,
        },
    )
    # Storm drops acks sent to a worker that died and came back; a lost ack would otherwise
    # hold its partition's commit (and soon the spout) until topology.message.timeout.secs.
    lost_ack_replay_ms: int = field(
        default=5000,
        metadata={
            "doc": "a tuple still unacked this long after a later one of its partition was "
            "acked is emitted again (0: never)",
            "limits": NOT_NEGATIVE,
        },
    )
    session_timeout_ms: int = field(
        default=10_000,
        metadata={
            "doc": "a spout silent this long leaves its group; its partitions move on",
            "limits": POSITIVE,
        },
    )
    static_membership: bool = field(
        default=True,
        metadata={"doc": "a restarted spout task takes its partitions back at once (no rebalance)"},
    )
    # Connection security, passed through to every client.
    security_protocol: SecurityProtocol = field(
        default="PLAINTEXT",
        metadata={"doc": "how every Kafka client connects, with the `ssl_*`/`sasl_*` settings"},
    )
    ssl_cafile: str = field(
        default="",
        metadata={"doc": "CA file of the brokers' certificates (empty: the system's CAs)"},
    )
    ssl_certfile: str = field(
        default="",
        metadata={
            "doc": "client certificate, for brokers that ask for one (its common name is the "
            "principal of a role without SASL); `{role}` stands for the process's role",
            "per_role": True,
        },
    )
    ssl_keyfile: str = field(
        default="",
        metadata={
            "doc": "the client certificate's private key; `{role}` as in `ssl_certfile`",
            "per_role": True,
        },
    )
    ssl_check_hostname: bool = field(
        default=True, metadata={"doc": "require a broker's certificate to name its host"}
    )
    sasl_mechanism: SaslMechanism = field(
        default="PLAIN", metadata={"doc": "how `sasl_username` and `sasl_password` authenticate"}
    )
    sasl_username: str = field(
        default="",
        metadata={
            "doc": "SASL user name; `{role}` stands for the process's role (one principal "
            'per role, see "Least privilege")',
            "per_role": True,
        },
    )
    sasl_password: Secret = field(default=NO_SECRET, metadata={"doc": "SASL password"})
    ssl_password: Secret = field(default=NO_SECRET, metadata={"doc": "password of `ssl_keyfile`"})

    def __post_init__(self) -> None:
        for server in self.bootstrap_servers.split(","):
            _check_broker(server.strip())
        if self.replay_backoff_first_ms > self.replay_backoff_max_ms:
            raise ConfigError(
                f"kafka.replay_backoff_first_ms ({self.replay_backoff_first_ms}) is more than "
                f"kafka.replay_backoff_max_ms ({self.replay_backoff_max_ms})"
            )
        if self.min_insync_replicas > self.replication_factor:
            raise ConfigError(
                f"kafka.min_insync_replicas ({self.min_insync_replicas}) is more than "
                f"kafka.replication_factor ({self.replication_factor}): every write to the "
                "topics botscore creates would be refused"
            )


def host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6 address]:port`` too) as its host and port; None when it is not
    one: no host, a host with spaces, ``/``, ``;`` or ``,``, or no port from 1 to 65535 in
    ASCII digits (``str.isdigit`` also takes superscripts, which ``int`` refuses)."""
    host, colon, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if (
        not colon
        or not host
        or any(c.isspace() or c in "/;," for c in host)
        or not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65_535)
    ):
        return None
    return host, int(port)


def _check_broker(server: str) -> None:
    """A broker as kafka-python takes it: a bad value would otherwise end in a traceback,
    or in half a minute of retries blaming the broker."""
    if host_port(server) is None:
        raise ConfigError(
            f"kafka.bootstrap_servers: {server!r} is not host:port (a port from 1 to 65535; "
            "brokers separated by commas, no scheme)"
        )


@dataclass(frozen=True)
class RedisSettings:
    host: str = field(
        default="127.0.0.1",
        metadata={
            "doc": "Redis: feature state, the edge's decisions, published models",
            "limits": NAME,
        },
    )
    port: int = field(default=6379, metadata={"doc": "Redis port", "limits": PORT})
    db: int = field(default=0, metadata={"doc": "Redis database number", "limits": NOT_NEGATIVE})
    username: str = field(
        default="",
        metadata={
            "doc": "Redis ACL user (empty: the default user); `{role}` stands for the "
            "process's role",
            "per_role": True,
        },
    )
    password: Secret = field(default=NO_SECRET, metadata={"doc": "Redis password"})
    ssl: bool = field(default=False, metadata={"doc": "connect to Redis over TLS"})
    socket_timeout_s: float = field(
        default=5.0,
        metadata={
            "doc": "a Redis connection or call fails after this long without an answer",
            "limits": TIMEOUT_S,
        },
    )


@dataclass(frozen=True)
class ScoringSettings:
    consumer_group: str = field(
        default="botscore-scoring",
        metadata={"doc": "consumer group of the scoring topology's features spout", "limits": NAME},
    )
    model_dir: str = field(
        default="models/baseline",
        metadata={"doc": "model directory (manifest + pickle)", "limits": NAME},
    )
    batch_size: int = field(
        default=500,
        metadata={
            "doc": "most users in one tuple, scored in one model call (one poll's worth)",
            "limits": POSITIVE,
        },
    )
    # Storm runs one process per executor, so more threads only contend; OpenMP
    # spin-waits made single-row calls 40x slower on 2 cores.
    model_threads: int = field(
        default=1,
        metadata={"doc": "threads per model call (one process per executor)", "limits": POSITIVE},
    )
    # Published models (``botscore models publish``) come from Redis; 0 keeps every
    # classifier on ``model_dir`` without ever asking Redis.
    release_check_s: float = field(
        default=5.0,
        metadata={
            "doc": "how often a classifier asks Redis which published model is live "
            "(0: never; `model_dir` only)",
            "limits": PERIOD_S,
        },
    )
    model_signing_key: Secret = field(
        default=NO_SECRET,
        metadata={
            "doc": "HMAC key: when set, classifiers refuse published models it did not sign, "
            "and `botscore models publish --sign` signs with it"
        },
    )
    block_requests_1m: int = field(
        default=1200,
        metadata={
            "doc": "a user with more requests in the last minute than this is blocked whatever "
            "the model's score (20 a second for a whole minute: no one browses so; the busiest "
            "simulated visitor makes 381), by the classifier and `botscore backfill`, with a "
            "model that reads `requests_1m`; 0: no such ceiling",
            "limits": NOT_NEGATIVE,
        },
    )


@dataclass(frozen=True)
class AggregationSettings:
    web_logs_topic: str = field(
        default="web-logs",
        metadata={"doc": "the edge's `WebLog`s, the aggregation's input", "limits": NAME},
    )
    consumer_group: str = field(
        default="botscore-aggregation",
        metadata={"doc": "consumer group of the aggregation's web-logs spout", "limits": NAME},
    )
    publish_interval_ms: int = field(
        default=2000,
        metadata={
            "doc": "at most one `UserFeatures` per user per interval, at the latest one interval "
            "after their last request",
            "limits": NOT_NEGATIVE,
        },
    )
    # The longest window (4 h) plus a margin, so memory follows active users, not history.
    state_ttl_s: int = field(
        default=4 * 3600 + 900,
        metadata={
            "doc": "Redis forgets a user this long after their last request",
            "limits": POSITIVE,
        },
    )
    # Changing either moves every user's keys: the state is rebuilt from the web logs.
    state_shards: int = field(
        default=16,
        metadata={
            "doc": "the feature state's users are spread over this many hash tags, each with "
            "its own pending set and generation; on a Redis Cluster, several per primary",
            "limits": Limits(at_least=1, at_most=1024),
        },
    )
    # Storm starts this many publisher spouts (and feature producers) when the topology is
    # run or submitted: each publishes the users of its own share of the state's shards.
    publishers: int = field(
        default=1,
        metadata={
            "doc": "publisher spouts of the aggregation topology, each publishing the users "
            "of its share of the state's shards (each with a feature producer); at most "
            "`aggregation.state_shards`",
            "limits": Limits(at_least=1, at_most=1024),
        },
    )
    state_cluster_nodes: str = field(
        default="",
        metadata={
            "doc": "`host:port` of some nodes of a Redis Cluster holding the feature state "
            "(comma-separated; `redis`'s user, password and TLS); empty: the state is in `redis`",
        },
    )
    # Redis replicates asynchronously: without waiting, a batch a primary took just
    # before it died can be missing on the replica that takes over, its offsets committed.
    state_replicas: int = field(
        default=0,
        metadata={
            "doc": "replicas of each Redis primary that must have a batch's writes before its "
            "tuple is acked (`WAIT`; a batch they do not confirm is replayed); 0: no wait",
            "limits": NOT_NEGATIVE,
        },
    )
    state_replica_wait_ms: int = field(
        default=1000,
        metadata={
            "doc": "how long a batch waits for `state_replicas` replicas to confirm it; less "
            "than `redis.socket_timeout_s`",
            "limits": POSITIVE,
        },
    )
    batch_size: int = field(
        default=256,
        metadata={
            "doc": "most requests in one tuple, stored in one Redis round trip",
            "limits": POSITIVE,
        },
    )
    state_check_ms: int = field(
        default=1000,
        metadata={
            "doc": "how often the web-logs spouts check that Redis still holds the feature "
            "state, to read the logs again when it lost it; 0: never",
            "limits": NOT_NEGATIVE,
        },
    )
    publish_poll_ms: int = field(
        default=100,
        metadata={
            "doc": "how often the publisher looks for users whose features are due",
            "limits": POSITIVE,
        },
    )
    # Windows end at a user's latest event time, so one request stamped ahead would push
    # the real ones out of every window, and its user's scores ahead of the enforcer's
    # clock. A sped-up simulation needs a larger value.
    max_event_skew_ms: int = field(
        default=60_000,
        metadata={
            "doc": "a `WebLog` stamped further ahead of the aggregation's clock, or a "
            "`UserFeatures` whose window ends further ahead of the scoring spout's, is "
            "dead-lettered as `time_in_future` (and not scored by `botscore backfill`); at "
            "most `enforcement.max_clock_skew_ms`",
            "limits": NOT_NEGATIVE,
        },
    )
    # A request a day old counts in no window a live decision reads: most often a clock
    # never set (1970) or a log file shipped long after. Well past how far back a rebuild
    # reads, so that a rebuild never sets aside what was counted.
    max_event_age_ms: int = field(
        default=24 * 3600 * 1000,
        metadata={
            "doc": "a `WebLog` stamped further before the aggregation's clock is "
            "dead-lettered as `time_too_old`; at least `aggregation.state_ttl_s` (how far "
            "back a lost state is rebuilt from)",
            "limits": POSITIVE,
        },
    )


@dataclass(frozen=True)
class EnforcementSettings:
    consumer_group: str = field(
        default="botscore-edge",
        metadata={
            "doc": "consumer group of the enforcement consumer (`botscore enforce`)",
            "limits": NAME,
        },
    )
    block_ttl_s: int = field(
        default=600,
        metadata={
            "doc": "how long a block lasts, from the feature time of the score that asked for it",
            "limits": NOT_NEGATIVE,
        },
    )
    challenge_ttl_s: int = field(
        default=300,
        metadata={
            "doc": "how long a challenge lasts, from the feature time of the score that asked "
            "for it",
            "limits": NOT_NEGATIVE,
        },
    )
    # A backlog (an outage, a dead-letter replay, a new group reading from the start) must
    # not turn old evidence into fresh decisions, whatever the TTLs are set to.
    max_score_age_ms: int = field(
        default=30 * 60 * 1000,
        metadata={
            "doc": "a score whose features (window end) are older than this by the enforcer's "
            "clock makes no decision",
            "limits": NOT_NEGATIVE,
        },
    )
    # How far apart the clocks of the feature stage, the enforcer and Redis may be. A
    # sped-up simulation stamps events ahead of the wall clock and needs a larger value.
    max_clock_skew_ms: int = field(
        default=60_000,
        metadata={
            "doc": "a score whose features are further ahead of the enforcer's clock makes no "
            "decision",
            "limits": NOT_NEGATIVE,
        },
    )


@dataclass(frozen=True)
class EdgeSettings:
    """A web server in front of a site (``stack/nginx``), its gate and its log shipper."""

    gate_port: int = field(
        default=8181,
        metadata={
            "doc": "loopback port of `botscore edge gate`, which nginx asks about every request",
            "limits": PORT,
        },
    )
    decision_cache_ms: int = field(
        default=1000,
        metadata={
            "doc": "the gate's answers about a user are at most this old (one Redis read per "
            "period for all users seen in it)",
            "limits": POSITIVE,
        },
    )
    redis_timeout_ms: int = field(
        default=200,
        metadata={
            "doc": "the edge's Redis connections and reads fail after this long without an "
            "answer, instead of `redis.socket_timeout_s`: a visitor waits on them (nginx waits "
            "2 s for the gate); the edge then allows, and asks Redis again after "
            "`edge.redis_retry_ms`",
            "limits": POSITIVE,
        },
    )
    redis_retry_ms: int = field(
        default=1000,
        metadata={
            "doc": "after a failed Redis read, the edge allows every user and asks Redis again "
            "only this much later, with one read: a hung Redis costs one visitor one "
            "`edge.redis_timeout_ms` per period, not every visitor",
            "limits": POSITIVE,
        },
    )
    access_log: str = field(
        default="/var/log/nginx/botscore-access.log",
        metadata={
            "doc": "nginx's access log in the `botscore` format, which `botscore edge ship` "
            "sends to `aggregation.web_logs_topic` (its position in `<file>.shipped`)",
            "limits": NAME,
        },
    )
    access_log_format: AccessLogFormat = field(
        default="botscore",
        metadata={
            "doc": "`botscore`: nginx's `botscore` format, with the gate's answers; `combined`: "
            "the common or combined format any web server writes, for a server without the "
            "gate (users named by address and user agent, no JavaScript check)"
        },
    )
    datacenter_networks: str = field(
        default="",
        metadata={"doc": "comma-separated address ranges (CIDR) the edge marks `ip_is_datacenter`"},
    )
    secret: Secret = field(
        default=NO_SECRET,
        metadata={
            "doc": "key of the edge's signed cookies (at least 32 bytes; the same on every "
            "edge server of a site)"
        },
    )

    def __post_init__(self) -> None:
        # Checked here, for every process: the gate would otherwise start on ranges that
        # the shipper, which marks the addresses, refuses.
        for cidr in filter(None, (c.strip() for c in self.datacenter_networks.split(","))):
            try:
                ipaddress.ip_network(cidr)
            except ValueError as exc:
                raise ConfigError(f"edge.datacenter_networks: {exc}") from None


@dataclass(frozen=True)
class MetricsSettings:
    statsd_host: str = field(
        default="127.0.0.1", metadata={"doc": "DogStatsD agent host", "limits": NAME}
    )
    statsd_port: int = field(default=8125, metadata={"doc": "DogStatsD agent port", "limits": PORT})
    namespace: str = field(
        default="botscore",
        metadata={
            "doc": "prefix of every metric name: letters, digits, `_` and `.`, starting with "
            "a letter",
            "limits": NAME,
        },
    )
    enabled: bool = field(default=True, metadata={"doc": "send metrics (`false`: send none)"})

    def __post_init__(self) -> None:
        # A metric line is name:value|type|#tags: a space, `:`, `|` or `#` in the prefix
        # would garble every line, and DogStatsD would drop them all without a word.
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]*", self.namespace):
            raise ConfigError(
                f"metrics.namespace {self.namespace!r}: letters, digits, '_' and '.', "
                "starting with a letter"
            )


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    aggregation: AggregationSettings = field(default_factory=AggregationSettings)
    enforcement: EnforcementSettings = field(default_factory=EnforcementSettings)
    edge: EdgeSettings = field(default_factory=EdgeSettings)

    def __post_init__(self) -> None:
        # A request stamped ahead moves its user's windows, and so every later score of the
        # user, to its time: taken by a laxer feature stage, it would leave the enforcer
        # ignoring that user's scores until the clocks caught up.
        taken, decided = self.aggregation.max_event_skew_ms, self.enforcement.max_clock_skew_ms
        if taken > decided:
            raise ConfigError(
                f"aggregation.max_event_skew_ms ({taken}) is more than "
                f"enforcement.max_clock_skew_ms ({decided}): the enforcer would ignore the "
                "scores of a user with a request stamped that far ahead; raise both together"
            )
        # WAIT answers when its time is up: a socket timeout shorter would fail every
        # batch whose replicas lag instead of saying how many confirmed it.
        waited_ms, timeout_s = self.aggregation.state_replica_wait_ms, self.redis.socket_timeout_s
        if self.aggregation.state_replicas and waited_ms >= timeout_s * 1000:
            raise ConfigError(
                f"aggregation.state_replica_wait_ms ({waited_ms}) is not less than "
                f"redis.socket_timeout_s ({timeout_s:g} s): the connection would time out "
                "before Redis said how many replicas have a batch"
            )
        # A lost state is rebuilt from the web logs of its life (state_ttl_s back, and the
        # skew for requests stamped ahead): a shorter age limit would dead-letter, while
        # rebuilding, requests it had counted. Not the skew itself: a sped-up simulation
        # allows a year of it, its requests all stamped ahead of their logs.
        age_ms, ttl_s = self.aggregation.max_event_age_ms, self.aggregation.state_ttl_s
        if age_ms < ttl_s * 1000:
            raise ConfigError(
                f"aggregation.max_event_age_ms ({age_ms}) is less than aggregation.state_ttl_s "
                f"({ttl_s} s): rebuilding a lost feature state would dead-letter requests it "
                "had counted"
            )
        # Each publisher publishes its share of the shards: one without any would idle.
        publishers, shards = self.aggregation.publishers, self.aggregation.state_shards
        if publishers > shards:
            raise ConfigError(
                f"aggregation.publishers ({publishers}) is more than aggregation.state_shards "
                f"({shards}): each publisher needs a shard of the feature state of its own"
            )
        # The spouts rebuild a feature state Redis lost from the web logs of its life.
        kept_s, state_s = self.kafka.web_logs_retention_h * 3600, self.aggregation.state_ttl_s
        if kept_s < state_s:
            raise ConfigError(
                f"kafka.web_logs_retention_h ({self.kafka.web_logs_retention_h}) keeps the web "
                f"logs for less than aggregation.state_ttl_s ({state_s}): a feature state lost "
                "in Redis could not be rebuilt from them"
            )

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
        role: Role | None = None,
    ) -> Settings:
        """Build settings from flat ``botscore.<section>.<name>`` options.

        ``environ`` (default ``os.environ``) overrides them with
        ``BOTSCORE_<SECTION>_<NAME>`` variables, and for a ``role`` with
        ``BOTSCORE_<SECTION>_<NAME>__<ROLE>`` ones before those.
        """
        environ = os.environ if environ is None else environ
        known_sections = {f"{PREFIX}{name}." for name in _SECTIONS}
        strays = [
            k for k in options if k.startswith(PREFIX) and not k.startswith(tuple(known_sections))
        ]
        if strays:
            raise ConfigError(f"unknown setting(s) {', '.join(sorted(strays))}")
        _refuse_misspelt_prefixes(options)
        _refuse_unknown_variables(environ)
        return cls(
            **{
                name: _build_section(name, section_cls, options, environ, role)
                for name, section_cls in _SECTIONS.items()
            }
        )


# In the order the README's table lists them.
_SECTIONS: dict[str, type[Any]] = {
    "kafka": KafkaSettings,
    "scoring": ScoringSettings,
    "aggregation": AggregationSettings,
    "enforcement": EnforcementSettings,
    "edge": EdgeSettings,
    "redis": RedisSettings,
    "metrics": MetricsSettings,
}


def _refuse_misspelt_prefixes(options: Mapping[str, Any]) -> None:
    """Refuse ``kafka.x`` or ``botsore.kafka.x``: Storm takes every option, so such a typo
    would be passed to it and the setting would keep its default without a word."""
    word = PREFIX.rstrip(".")
    for key in options:
        head, dot, rest = key.partition(".")
        if not dot or head == word:
            continue
        if head in _SECTIONS:
            raise ConfigError(f"setting {key!r} has no {PREFIX!r} prefix: {PREFIX}{key}?")
        if difflib.get_close_matches(head, [word], n=1, cutoff=0.75):
            raise ConfigError(f"setting {key!r}: did you mean {PREFIX}{rest}?")


def _refuse_unknown_variables(environ: Mapping[str, str]) -> None:
    """A variable named like a setting that is none (``BOTSCORE_REDIS_HOTS``, a role that
    does not exist) is refused as config.json's unknown keys are: ignored, a typo would
    leave a production process on the default broker or server without a word."""
    known = {
        env_var(section, item.name, role)
        for section, section_cls in _SECTIONS.items()
        for item in fields(section_cls)
        for role in (None, *Role)
    }
    prefixes = tuple(f"BOTSCORE_{section.upper()}_" for section in _SECTIONS)
    unknown = sorted(k for k in environ if k.startswith(prefixes) and k not in known)
    if unknown:
        guesses = [
            f"{name} (did you mean {close[0]}?)" if close else name
            for name in unknown
            for close in [difflib.get_close_matches(name, known, n=1)]
        ]
        raise ConfigError(f"unknown setting variable(s) {', '.join(guesses)}")


def env_var(section: str, name: str, role: Role | None = None) -> str:
    """The environment variable that overrides ``<section>.<name>`` (for ``role`` only)."""
    plain = f"BOTSCORE_{section}_{name}".upper()
    return f"{plain}__{role.upper()}" if role else plain


ROLE_PLACEHOLDER = "{role}"


def unresolved_role(setting: str, value: str) -> None:
    """Refuse a user name or file still naming ``{role}``: a process that connects has a role."""
    if ROLE_PLACEHOLDER in value:
        raise ConfigError(
            f"{setting} {value!r} names a role, but these settings were read for none"
        )


def _build_section(
    section: str,
    section_cls: type[Any],
    options: Mapping[str, Any],
    environ: Mapping[str, str],
    role: Role | None = None,
) -> Any:
    values: dict[str, Any] = {}
    hints = get_type_hints(section_cls)
    for item in fields(section_cls):
        key = f"{PREFIX}{section}.{item.name}"
        env_key = env_var(section, item.name)
        setting = f"{section}.{item.name}"
        wanted = hints[item.name]
        if wanted is Secret and key in options:
            raise ConfigError(f"{key} is a secret: set {env_key} in the environment instead")
        role_key = env_var(section, item.name, role)
        if role and role_key in environ:
            source, raw = role_key, environ[role_key]
        elif env_key in environ:
            source, raw = env_key, environ[env_key]
        elif key in options:
            source, raw = key, options[key]
        else:
            continue
        value = _coerce(source, raw, wanted, setting)
        if role and item.metadata.get("per_role"):
            value = value.replace(ROLE_PLACEHOLDER, role)
        limits = item.metadata.get("limits")
        if limits is not None and not limits.admit(value):
            raise ConfigError(f"{source}: {value!r} is not a valid {setting} ({limits})")
        values[item.name] = value
    unknown = [
        k
        for k in options
        if k.startswith(f"{PREFIX}{section}.")
        and k.removeprefix(f"{PREFIX}{section}.") not in {f.name for f in fields(section_cls)}
    ]
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    return section_cls(**values)


def _coerce(key: str, raw: Any, wanted: Any, setting: str) -> Any:
    if get_origin(wanted) is Literal:
        allowed = get_args(wanted)
        if raw not in allowed:
            raise ConfigError(
                f"{key}: {raw!r} is not a valid {setting} (one of {', '.join(allowed)})"
            )
        return raw
    parse, expected = _PARSERS[wanted]
    try:
        return parse(raw)
    except (TypeError, ValueError, OverflowError):
        shown = "a value not shown" if wanted is Secret else repr(raw)
        raise ConfigError(f"{key}: expected {expected}, got {shown}") from None


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def _integer(raw: Any) -> int:
    """An int or its digits. Not a bool (``true`` is no count) nor a float: ``3.7`` would be
    cut to 3, and ``3.0`` is refused as ``"3.0"`` from the environment always was."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise TypeError(raw)
    return int(raw)


def _number(raw: Any) -> float:
    """A finite float from a number or its text: NaN and infinity pass every comparison a
    limit makes (or none), and no timer or client can use them."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError(raw)
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _secret(raw: Any) -> Secret:
    """A secret UTF-8 can carry: keys and passwords are hashed or sent as UTF-8, so bytes the
    environment could not decode would fail at each use, not here."""
    secret = Secret(_text(raw))
    secret.reveal().encode()
    return secret


def _text(raw: Any) -> str:
    """A str as given: a list or number in ``config.json`` is a mistake, not text to print."""
    if not isinstance(raw, str):
        raise TypeError(raw)
    return raw


# How a value of each settings type is read, and what an error says was expected. Values
# from the environment are always strings; ``config.json`` may give any JSON value.
_PARSERS: dict[Any, tuple[Callable[[Any], Any], str]] = {
    bool: (_boolean, "a boolean"),
    int: (_integer, "an integer"),
    float: (_number, "a finite number"),
    str: (_text, "a string"),
    Secret: (_secret, "a string UTF-8 can encode"),
}


def settings_table() -> str:
    """The README's table of every setting: name, default and meaning, as markdown.

    Secrets have no default: their cell names the environment variable they come from.
    A setting with a closed set of values lists them after its meaning, as it does limits.
    """
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    for section, section_cls in _SECTIONS.items():
        hints = get_type_hints(section_cls)
        for item in fields(section_cls):
            wanted = hints[item.name]
            if wanted is Secret:
                default = f"environment only: `{env_var(section, item.name)}`"
            else:
                default = _markdown_value(item.default)
            meaning = _doc(section, item)
            if get_origin(wanted) is Literal:
                meaning += "; one of " + ", ".join(f"`{v}`" for v in get_args(wanted))
            if "limits" in item.metadata:
                meaning += f"; {item.metadata['limits']}"
            lines.append(f"| `{section}.{item.name}` | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def _doc(section: str, item: Field[Any]) -> str:
    doc = item.metadata.get("doc", "")
    if not isinstance(doc, str) or not doc or "|" in doc or "\n" in doc:
        raise ConfigError(f"{section}.{item.name} needs a one-line doc without '|'")
    return doc


def _markdown_value(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`" if value else "empty"
    return str(value)


def load_project_settings(
    config_path: str | Path = "config.json",
    env_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    role: Role | None = None,
) -> Settings:
    """Settings for command-line tools, from the same ``config.json`` as the topology."""
    options = project_env(config_path, env_name).get("options", {})
    return Settings.from_options(options, environ, role)


def project_env(
    config_path: str | Path = "config.json", env_name: str | None = None
) -> dict[str, Any]:
    """One environment of ``config.json`` (``BOTSCORE_ENV``, else the first): what streamparse
    uses for it (``nimbus``, ``workers``, ``options``, ...)."""
    path = Path(config_path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run botscore from the project root") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path} nests its JSON too deeply to read") from None
    envs = _json_object(config, f"{path}").get("envs")
    if not envs:
        raise ConfigError(f'{path} defines no environments: add one under "envs"')
    _json_object(envs, f'{path}: "envs"')
    if env_name is None:
        env_name = os.environ.get("BOTSCORE_ENV") or next(iter(envs))
    if env_name not in envs:
        raise ConfigError(f"environment {env_name!r} not in {path} (have: {', '.join(envs)})")
    env = _json_object(envs[env_name], f"{path}: environment {env_name!r}")
    _json_object(env.get("options", {}), f'{path}: "options" of environment {env_name!r}')
    return env


_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _json_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object: what the lookups that follow it need."""
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a JSON object, not {_JSON_TYPES[type(value)]}")
    return value


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
