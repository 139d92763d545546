"""The ``botscore`` command: tools around the topology (topics, sample feed, watch, train)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence

import redis
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from botscore.cli.dead_letters import list_dead_letters, replay_dead_letters
from botscore.clock import now_ms
from botscore.enforcement.consumer import run_enforcer
from botscore.enforcement.edge import EdgeDecisions
from botscore.errors import BotscoreError, InvalidMessage
from botscore.model.sample_users import sample_users
from botscore.model.training import SimulatedTraffic, train_model
from botscore.settings import Settings, load_project_settings
from botscore.simulator.run import simulate
from botscore.transport.kafka_clients import create_producer, ensure_topics
from botscore.transport.redis_client import create_redis
from botscore.vocabulary import Component
from botscore.wire.codec import decode_threat_score, encode_user_features


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="botscore", description=__doc__)
    parser.add_argument(
        "--config", default="config.json", help="project config (default: %(default)s)"
    )
    parser.add_argument(
        "-e", "--environment", help="environment in config.json (default: the first)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("topics", help="create the pipeline's topics if missing")

    feed = commands.add_parser("feed", help="produce sample UserFeatures messages")
    feed.add_argument(
        "--users", type=int, default=1000, help="how many messages (default: %(default)s)"
    )
    feed.add_argument("--seed", type=int, default=1, help="seed of the sample population")
    feed.add_argument(
        "--rate", type=float, default=0, help="messages per second, 0 = as fast as possible"
    )
    feed.add_argument(
        "--loop", action="store_true", help="start over with the next seed until Ctrl-C"
    )

    watch = commands.add_parser(
        "watch", help="print threat scores as they arrive, one line per user"
    )
    watch.add_argument(
        "--from-beginning", action="store_true", help="also show scores already on the topic"
    )
    watch.add_argument("--max", type=int, default=0, help="stop after this many scores (0 = never)")

    sim = commands.add_parser("simulate", help="produce simulated edge WebLogs (humans and bots)")
    sim.add_argument(
        "--rate", type=float, default=100.0, help="requests per simulated second (%(default)s)"
    )
    sim.add_argument(
        "--duration", type=float, default=600.0, help="simulated seconds (default: %(default)s)"
    )
    sim.add_argument(
        "--speedup", type=float, default=1.0, help="simulated seconds per wall second (%(default)s)"
    )
    sim.add_argument("--users", type=int, default=2000, help="population (default: %(default)s)")
    sim.add_argument("--bot-share", type=float, default=0.3, help="share of users that are bots")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--labels", default="simulation-labels.csv", help="ground-truth CSV path")
    sim.add_argument("--topic", help="default: the aggregation's web-logs topic")
    sim.add_argument(
        "--enforce", action="store_true", help="apply the edge's decisions from Redis to requests"
    )
    sim.add_argument(
        "--edge-cache-ms", type=int, default=1000, help="how long the edge caches a decision"
    )
    sim.add_argument("--no-progress", action="store_true", help="no live status line")

    commands.add_parser(
        "enforce", help="turn threat scores into the edge's decisions in Redis, until Ctrl-C"
    )

    letters = commands.add_parser("dead-letters", help="list or replay dead-lettered messages")
    letters.add_argument("action", choices=["list", "replay"])
    letters.add_argument("--reason", help="only letters with this reason")
    letters.add_argument("--to", help="replay into this topic (default: the features topic)")

    train = commands.add_parser(
        "train", help="train the model on simulated traffic, through the feature stage's code"
    )
    train.add_argument(
        "--out", default="models/baseline", help="model directory (default: %(default)s)"
    )
    defaults = SimulatedTraffic()
    train.add_argument("--users", type=int, default=defaults.users)
    train.add_argument("--rate", type=float, default=defaults.rate, help="requests/s simulated")
    train.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--holdout-seed", type=int, default=8)

    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        settings = load_project_settings(args.config, args.environment)
    except BotscoreError as exc:
        print(f"botscore: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "topics":
            return _topics(settings)
        if args.command == "feed":
            return _feed(settings, args.users, args.seed, args.rate, args.loop)
        if args.command == "simulate":
            return _simulate(settings, args)
        if args.command == "enforce":
            return _enforce(settings)
        if args.command == "dead-letters":
            if args.action == "list":
                return list_dead_letters(settings, args.reason)
            return replay_dead_letters(settings, args.reason, args.to)
        return _watch(settings, args.from_beginning, args.max)
    except BotscoreError as exc:
        print(f"botscore: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(
            f"botscore: Kafka at {settings.kafka.bootstrap_servers}: {exc!r} (is it up? make up)",
            file=sys.stderr,
        )
        return 2
    except redis.RedisError as exc:
        print(
            f"botscore: Redis at {settings.redis.host}:{settings.redis.port}: {exc} "
            "(is it up? make up)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


def _train(args: argparse.Namespace) -> int:
    traffic = SimulatedTraffic(
        users=args.users, rate=args.rate, duration_s=args.duration, seed=args.seed
    )
    manifest, report = train_model(args.out, traffic, holdout_seed=args.holdout_seed)
    print(f"wrote {args.out}: {manifest.name} {manifest.version}, {report.rows} rows")
    print(
        f"held-out seed {args.holdout_seed}: {report.holdout_rows} rows, "
        f"AUC {report.holdout_auc:.4f}"
    )
    for kind in report.challenged:
        print(
            f"  {kind:<20} challenged {report.challenged[kind]:6.1%}  "
            f"blocked {report.blocked[kind]:6.1%}"
        )
    return 0


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    edge = None
    if args.enforce:
        edge = EdgeDecisions(create_redis(settings.redis), args.edge_cache_ms)
    try:
        stats = simulate(
            settings,
            args.rate,
            args.duration,
            args.seed,
            args.labels,
            args.users,
            args.bot_share,
            not args.no_progress,
            topic=args.topic,
            speedup=args.speedup,
            edge=edge,
        )
    except ValueError as exc:  # e.g. a rate the population cannot reach
        raise BotscoreError(str(exc)) from None
    finally:
        if edge is not None:
            edge.client.close()
    print(
        f"sent {stats.sent}, blocked {stats.blocked}, by kind {stats.sent_by_kind}", file=sys.stderr
    )
    if stats.first_scores_s is not None:
        before = stats.bot_allowed_share(end_s=stats.first_scores_s)
        after = stats.bot_allowed_share(start_s=stats.first_scores_s)
        print(
            f"first scores at simulated {stats.first_scores_s:.0f} s; bot requests allowed "
            f"before: {_share(before)}, after: {_share(after)} (whole minutes)",
            file=sys.stderr,
        )
    return 0


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _enforce(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # The client's own connection chatter; its warnings and errors still show.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: give up on a clean stop
            raise KeyboardInterrupt
        logging.getLogger(__name__).info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    run_enforcer(settings, stop)
    return 0


def _topics(settings: Settings) -> int:
    k = settings.kafka
    topics = [
        settings.aggregation.web_logs_topic,
        k.features_topic,
        k.scores_topic,
        k.dead_letter_topic,
    ]
    created = ensure_topics(k, topics)
    print(f"topics ready: {', '.join(topics)}; created: {created or 'none'}")
    return 0


def _feed(settings: Settings, users: int, seed: int, rate: float, loop: bool) -> int:
    producer = create_producer(settings.kafka, client_id=f"botscore-{Component.FEED}")
    interval = 1 / rate if rate > 0 else 0.0
    sent = 0
    try:
        while True:
            started = time.monotonic()
            for i, user in enumerate(sample_users(users, seed)):
                payload = encode_user_features(user.user_id, now_ms(), user.features)
                producer.send(
                    settings.kafka.features_topic, key=user.user_id.encode(), value=payload
                )
                sent += 1
                if interval:
                    time.sleep(max(0.0, started + (i + 1) * interval - time.monotonic()))
            producer.flush()
            print(
                f"fed {sent} users to {settings.kafka.features_topic} (seed {seed})",
                file=sys.stderr,
            )
            if not loop:
                return 0
            seed += 1
    finally:
        producer.close()


def _watch(settings: Settings, from_beginning: bool, limit: int) -> int:
    k = settings.kafka
    consumer = KafkaConsumer(
        bootstrap_servers=k.bootstrap_servers.split(","), enable_auto_commit=False
    )
    partitions = consumer.partitions_for_topic(k.scores_topic)
    if not partitions:
        raise BotscoreError(f"topic {k.scores_topic} does not exist: run `botscore topics`")
    assigned = [TopicPartition(k.scores_topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    if from_beginning:
        consumer.seek_to_beginning(*assigned)
    else:
        consumer.seek_to_end(*assigned)
    print(f"watching {k.scores_topic} (Ctrl-C to stop)", file=sys.stderr)
    shown = 0
    try:
        for message in consumer:
            try:
                score = decode_threat_score(message.value)
            except InvalidMessage as exc:
                print(f"! undecodable score at {message.partition}@{message.offset}: {exc}")
                continue
            latency_ms = score.scored_time_ms - score.feature_time_ms
            print(
                f"{score.user_id:<22} score={score.score:.3f} {score.decision:<9} "
                f"model={score.model_name}/{score.model_version} "
                f"from={score.source.partition}@{score.source.offset} "
                f"feature->score={latency_ms}ms",
                flush=True,
            )
            shown += 1
            if limit and shown >= limit:
                return 0
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
