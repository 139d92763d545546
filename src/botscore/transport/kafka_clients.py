"""Kafka clients built from settings, with the delivery options the pipeline relies on."""

from __future__ import annotations

import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (
    InvalidReplicationFactorError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)
from kafka.structs import OffsetAndMetadata, TopicPartition

from botscore.errors import ConfigError
from botscore.observability.log_repeats import quiet_repeats
from botscore.settings import KafkaSettings, Secret, env_var, unresolved_role
from botscore.transport.producer_ids import recover_producer_ids
from botscore.vocabulary import Component

__all__ = [
    "MaskPasswords",
    "commit_positions",
    "connection_config",
    "create_consumer",
    "create_producer",
    "ensure_topics",
    "poll_group",
    "retry_unreachable",
    "wait_for_topic",
]

log = logging.getLogger(__name__)

# A partition as (topic, partition): a plain tuple or kafka's TopicPartition.
_Partition = TypeVar("_Partition", bound=tuple[str, int])
_T = TypeVar("_T")


class MaskPasswords(logging.Filter):
    """Masks every ``*password*`` value of a configuration dict logged as an argument.

    KafkaAdminClient logs all its keyword arguments at DEBUG ("Starting KafkaAdminClient
    with configuration: %s"), ``sasl_plain_password`` and ``ssl_password`` included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # logging unwraps a lone dict argument into ``record.args`` itself.
        if isinstance(record.args, Mapping):
            record.args = _masked(record.args)
        elif isinstance(record.args, tuple):
            record.args = tuple(_masked(a) if isinstance(a, Mapping) else a for a in record.args)
        return True


def _masked(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: Secret.MASK if "password" in str(key).lower() and value else value
        for key, value in config.items()
    }


_PASSWORD_MASK = MaskPasswords()


def _guard_admin_logs() -> None:
    """Mask passwords in the admin client's records; a logger's filter sees only its own."""
    logging.getLogger(KafkaAdminClient.__module__).addFilter(_PASSWORD_MASK)  # idempotent


# Any admin client built in a process that uses these clients, even directly from
# ``connection_config``, logs through the guarded logger.
_guard_admin_logs()


def connection_config(settings: KafkaSettings) -> dict[str, Any]:
    """Brokers and security options shared by every client we create."""
    # kafka-python repeats some errors on every retry (a missing topic: ten a second).
    quiet_repeats("kafka")
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.security_protocol,
        # After a broker restart, reconnect within seconds, not the default 30 s.
        "reconnect_backoff_max_ms": 2000,
    }
    if "SSL" in settings.security_protocol:
        config["ssl_check_hostname"] = settings.ssl_check_hostname
        optional = {
            "ssl_cafile": settings.ssl_cafile,
            "ssl_certfile": settings.ssl_certfile,
            "ssl_keyfile": settings.ssl_keyfile,
            "ssl_password": settings.ssl_password.reveal(),
        }
        config.update({k: v for k, v in optional.items() if v})
        if settings.ssl_cafile:
            # Likewise: kafka-python would retry a CA it cannot read for half a minute,
            # naming neither the file nor the setting, and then blame the broker.
            try:
                ssl.create_default_context(cafile=settings.ssl_cafile)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot load the CA certificates kafka.ssl_cafile "
                    f"{settings.ssl_cafile!r}: {exc}"
                ) from None
        if settings.ssl_certfile:
            unresolved_role("kafka.ssl_certfile", settings.ssl_certfile)
            unresolved_role("kafka.ssl_keyfile", settings.ssl_keyfile)
            # Checked here: kafka-python would retry a key it cannot load until its bootstrap
            # timeout, saying "PEM lib", and OpenSSL prompts on the terminal for a missing
            # password ("" never prompts).
            try:
                ssl.create_default_context().load_cert_chain(
                    settings.ssl_certfile,
                    settings.ssl_keyfile or None,
                    settings.ssl_password.reveal(),
                )
            except OSError as exc:
                password = env_var("kafka", "ssl_password")
                raise ConfigError(
                    f"cannot load the client certificate kafka.ssl_certfile "
                    f"{settings.ssl_certfile!r} with its key kafka.ssl_keyfile "
                    f"{settings.ssl_keyfile!r}: {exc}; if the key is encrypted, {password} must "
                    f"hold its password (it is {'set' if settings.ssl_password else 'not set'})"
                ) from None
    if "SASL" in settings.security_protocol:
        unresolved_role("kafka.sasl_username", settings.sasl_username)
        # Without both the broker only drops the connection, and the client retries until
        # its bootstrap timeout without saying why.
        if not settings.sasl_username or not settings.sasl_password:
            raise ConfigError(
                f"kafka.security_protocol {settings.security_protocol} needs kafka.sasl_username "
                f"(it is {settings.sasl_username or 'not set'!r}) and "
                f"{env_var('kafka', 'sasl_password')} or its role's "
                f"{env_var('kafka', 'sasl_password')}__<ROLE> "
                f"(it is {'set' if settings.sasl_password else 'not set'})"
            )
        config["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        config["sasl_plain_username"] = settings.sasl_username
        config["sasl_plain_password"] = settings.sasl_password.reveal()
    return config


def create_consumer(
    settings: KafkaSettings,
    client_id: str,
    group_id: str,
    instance: str | None = None,
    **overrides: Any,
) -> KafkaConsumer:
    """A consumer that never commits on its own: offsets are committed after acks.

    ``instance`` names a member that keeps its place in the group across restarts (static
    membership, with ``kafka.static_membership``): a worker Storm restarts gets its
    partitions back at once instead of waiting ``session_timeout_ms`` for a rebalance.
    Only one running consumer may use a given name.
    """
    static = instance if settings.static_membership else None
    config: dict[str, Any] = {
        **connection_config(settings),
        "client_id": client_id,
        "group_id": group_id,
        "group_instance_id": static,
        "session_timeout_ms": settings.session_timeout_ms,
        "auto_offset_reset": settings.auto_offset_reset,
        "enable_auto_commit": False,
        "max_poll_records": 500,
        # A topic created (or grown) after the consumer joined is only noticed on the
        # next metadata refresh; the 5-minute default left a new spout idle that long.
        "metadata_max_age_ms": 5000,
    }
    config.update(overrides)
    return KafkaConsumer(**config)


def wait_for_topic(
    consumer: KafkaConsumer,
    topic: str,
    give_up: Callable[[], bool],
    pause: Callable[[float], object] = time.sleep,
) -> bool:
    """Know the topic's partitions before joining its group; False if ``give_up`` first.

    kafka-python 3.0 sometimes joins with no metadata for the topic yet, gets no
    partitions, and does not always rejoin when the metadata arrives.
    """
    while not consumer.partitions_for_topic(topic):
        if give_up():
            return False
        pause(0.5)
    return True


def poll_group(consumer: KafkaConsumer, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
    """``consumer.poll``, working around two ways kafka-python 3.0 stops reading a partition.

    A poll that raises ``KafkaError`` returns nothing after its time. Parked records
    (``_release_parked_records``) are handed back before the poll. Then:
    kafka-python 3.0 rejoins when the group leader sees the topic's metadata change (it
    does so once at almost every start-up). The rejoin first revokes the partitions; if
    its JoinGroup/SyncGroup ends after ``poll`` stopped waiting, the leader's new
    assignment already matches the metadata, so ``need_rejoin()`` turns False and no later
    poll collects the result: the consumer keeps its partitions "pending revocation",
    fetches nothing and never recovers. Asking for a fresh rejoin brings it back within
    one poll. ``tests/integration/test_group_rejoin.py`` provokes exactly this.
    """
    _release_parked_records(consumer)
    try:
        records: dict[TopicPartition, list[Any]] = consumer.poll(timeout_ms=timeout_ms)
    except KafkaError as exc:
        # While the broker is away, kafka-python 3.0 can raise out of poll() a metadata
        # refresh that failed in its background loop (it shares the refresh's outcome):
        # nothing was read, so waiting out the poll's time and polling again loses nothing.
        log.warning("poll failed, polling again in %d ms: %s", timeout_ms, exc)
        time.sleep(timeout_ms / 1000)
        return {}
    coordinator = consumer._coordinator  # no public API exposes the join state
    if coordinator.rejoining and not coordinator.need_rejoin():
        log.warning("group rejoin was abandoned by the client; rejoining again")
        coordinator.request_rejoin()
    return records


def _release_parked_records(consumer: KafkaConsumer) -> None:
    """Let kafka-python restore the records it parked for a partition paused mid-way.

    Records fetched but not yet returned for a partition that gets paused are parked, and
    a later poll restores them only while the fetcher's in-line slot is empty (``None``).
    Once another partition's records have passed through the slot it keeps their drained
    remains, so the parked records stay parked and the fetcher, which skips a partition
    with parked records, never fetches that partition again: the partition stalls with no
    error. A drained slot holds nothing; emptying it is all the fetcher needs.
    ``tests/integration/test_paused_partitions.py`` provokes this on the real broker.
    """
    fetcher = consumer._fetcher  # no public API reaches the parked records
    inline = fetcher._next_partition_records
    if inline is not None and not inline and fetcher._paused_partition_records:
        fetcher._next_partition_records = None


def commit_positions(
    positions: Mapping[_Partition, int], metadata: str = ""
) -> dict[TopicPartition, OffsetAndMetadata]:
    """``consumer.commit``'s argument for the given next-offsets-to-read per partition,
    each with ``metadata`` (what the commit was made under)."""
    return {
        TopicPartition(topic, partition): OffsetAndMetadata(position, metadata, -1)
        for (topic, partition), position in positions.items()
    }


def create_producer(settings: KafkaSettings, client_id: str, **overrides: Any) -> KafkaProducer:
    """A producer whose send only succeeds once every in-sync replica has the record, and
    whose retries the broker writes once (idempotent: see ``producer_ids``)."""
    config: dict[str, Any] = {
        **connection_config(settings),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 1,
        "linger_ms": settings.producer_linger_ms,
        "retries": 2147483647,
        "delivery_timeout_ms": settings.producer_delivery_timeout_ms,
        # Must leave room for retries inside the delivery timeout.
        "request_timeout_ms": min(15_000, settings.producer_delivery_timeout_ms // 2),
        # send() blocks while the broker is unknown; a bolt blocked past Storm's
        # subprocess heartbeat timeout is killed, so fail fast and let Storm replay.
        "max_block_ms": 5000,
    }
    config.update(overrides)
    producer = KafkaProducer(**config)
    recover_producer_ids(producer)
    return producer


def admin_client(settings: KafkaSettings) -> KafkaAdminClient:
    """An admin client named for botscore's admin role."""
    _guard_admin_logs()  # again, in case logging was reconfigured since the import
    return KafkaAdminClient(**connection_config(settings), client_id=f"botscore-{Component.ADMIN}")


def ensure_topics(
    settings: KafkaSettings,
    topics: list[str],
    timeout_s: float = 30.0,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Create missing topics; return once every topic has leaders for all its partitions.

    Returning earlier lets a consumer join before the topic's metadata is visible, and it
    then sits with no partitions until its next metadata refresh. New topics get
    ``settings.replication_factor`` replicas (and ``min_insync_replicas``, when set) and
    their ``configs`` (``topic_plan``'s); a topic that exists with fewer replicas is logged,
    since adding replicas is a partition reassignment only an operator should start.
    """
    deadline = time.monotonic() + timeout_s
    admin = admin_client(settings)
    try:
        existing = set(retry_unreachable(admin.list_topics, deadline))
        created = []
        for name in topics:
            if name in existing:
                continue
            try:
                retry_unreachable(
                    partial(
                        admin.create_topics,
                        [_new_topic(settings, name, (configs or {}).get(name, {}))],
                    ),
                    deadline,
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
            except InvalidReplicationFactorError as exc:
                # The broker says why (fewer brokers than replicas) inside a long repr.
                why = re.search(r"error_message='([^']*)'", str(exc))
                raise ConfigError(
                    f"topic {name} cannot be created with kafka.replication_factor "
                    f"{settings.replication_factor}: {why[1] if why else exc}"
                ) from exc
        described = _wait_for_leaders(admin, topics, timeout_s)
        for name, replicas in short_of_replicas(described, settings.replication_factor).items():
            log.warning(
                "topic %s has %d replica(s) where kafka.replication_factor asks for %d: it "
                "can lose data with one broker; add replicas with a partition reassignment",
                name,
                replicas,
                settings.replication_factor,
            )
        return created
    finally:
        admin.close()


def _new_topic(settings: KafkaSettings, name: str, planned: Mapping[str, str]) -> NewTopic:
    configs = dict(planned)
    if settings.min_insync_replicas:
        configs["min.insync.replicas"] = str(settings.min_insync_replicas)
    return NewTopic(
        name,
        num_partitions=settings.topic_partitions,
        replication_factor=settings.replication_factor,
        topic_configs=configs,
    )


def short_of_replicas(described: list[dict[str, Any]], wanted: int) -> dict[str, int]:
    """The topics of ``describe_topics``' answer with fewer than ``wanted`` replicas in some
    partition, and that fewest count."""
    short = {}
    for topic in described:
        fewest = min((len(p["replica_nodes"]) for p in topic["partitions"]), default=wanted)
        if fewest < wanted:
            short[topic["name"]] = fewest
    return short


def retry_unreachable(call: Callable[[], _T], deadline: float) -> _T:
    """``call()``, an admin client's request, made again while it cannot reach its broker,
    until ``time.monotonic()`` passes ``deadline``.

    kafka-python's admin client sends a request to one broker and raises
    ``KafkaConnectionError`` when that one is down, without trying another: with one
    broker of three killed, about one new client in five failed its first request so.
    """
    while True:
        try:
            return call()
        except KafkaConnectionError as exc:
            if time.monotonic() > deadline:
                raise
            log.info("admin request failed, trying again: %r", exc)
            time.sleep(0.2)


def _wait_for_leaders(
    admin: KafkaAdminClient, topics: list[str], timeout_s: float
) -> list[dict[str, Any]]:
    """``describe_topics`` of ``topics`` once every partition of each has a leader."""
    deadline = time.monotonic() + timeout_s
    while True:
        described: list[dict[str, Any]] = retry_unreachable(
            partial(admin.describe_topics, topics), deadline
        )
        ready = [
            t["name"]
            for t in described
            if not t["error_code"]
            and t["partitions"]
            and all(p["leader_id"] >= 0 for p in t["partitions"])
        ]
        if len(ready) == len(topics):
            return described
        if time.monotonic() > deadline:
            missing = sorted(set(topics) - set(ready))
            raise KafkaTimeoutError(f"topics without leaders after {timeout_s:.0f} s: {missing}")
        time.sleep(0.2)
