"""``botscore models``: publish a model to every running classifier, list releases, roll back,
shadow-score a challenger and compare it with the champion.

``publish DIR`` makes the same checks a classifier makes (``Release.verify``) before any
classifier sees the model, so a refusal shows here first; ``--sign`` signs it with
``BOTSCORE_SCORING_MODEL_SIGNING_KEY``. ``activate ID`` (or publishing an older directory
again) is a rollback. ``publish --shadow`` and ``shadow ID`` make a release the challenger
instead (``shadow --off`` stops it); ``compare`` reads both score topics to their ends.
"""

from __future__ import annotations

import argparse
import time

from kafka import KafkaConsumer

from botscore.cli.command import Subparsers, at_least_one
from botscore.clock import now_ms
from botscore.errors import InvalidMessage
from botscore.model import shadow_report
from botscore.model.registry import read_manifest, resolve_model_dir
from botscore.model.releases import PublishedRelease, Release, ReleaseStore, Slot
from botscore.settings import KafkaSettings, Secret, Settings
from botscore.simulator.labels import read_labels
from botscore.transport.kafka_clients import connection_config
from botscore.transport.redis_client import create_redis
from botscore.transport.topic_reader import read_to_end
from botscore.vocabulary import Role
from botscore.wire.codec import decode_threat_score
from botscore.wire.records import ScoreRecord

__all__ = ["add_parser", "render", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="publish models to the running classifiers, list them, roll back"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    publish = actions.add_parser("publish", help="check a model directory and make it live")
    publish.add_argument("directory", help="model directory (manifest.json + pickle)")
    publish.add_argument(
        "--sign",
        action="store_true",
        help="sign it with the key in BOTSCORE_SCORING_MODEL_SIGNING_KEY",
    )
    publish.add_argument(
        "--shadow", action="store_true", help="make it the challenger instead of live"
    )
    activate = actions.add_parser("activate", help="make a published release live again")
    activate.add_argument("release", help="NAME/VERSION, as `botscore models list` shows it")
    shadow = actions.add_parser(
        "shadow", help="score a published release beside the live one, to its own topic"
    )
    which = shadow.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "release", nargs="?", help="NAME/VERSION, as `botscore models list` shows it"
    )
    which.add_argument("--off", action="store_true", help="stop shadow scoring")
    actions.add_parser("list", help="published releases; * marks the live one, ~ the challenger")
    comparison = actions.add_parser(
        "compare", help="the challenger's shadow scores against the champion's live ones"
    )
    comparison.add_argument(
        "--last",
        type=at_least_one,
        metavar="N",
        help="only the last N scores of each partition of both topics (default: all retained)",
    )
    comparison.add_argument(
        "--labels",
        metavar="CSV",
        help="a simulation's labels (botscore simulate --labels), for figures per kind",
    )
    parser.set_defaults(run=run, role=Role.MODELS)


def run(settings: Settings, args: argparse.Namespace) -> int:
    store = ReleaseStore(create_redis(settings.redis))
    if args.action == "publish":
        release = Release.from_directory(args.directory)
        # The topology's spout decodes rows in its bundled model's feature order.
        columns = read_manifest(resolve_model_dir(settings.scoring.model_dir)).feature_names
        release.verify(Secret(), columns)  # what every classifier checks, but the signature
        if args.sign:
            release = release.signed(settings.scoring.model_signing_key)
        slot = Slot.SHADOW if args.shadow else Slot.LIVE
        new = store.publish(release, now_ms(), slot)
        state = "published" if new else "already published, made"
        signed = "signed" if release.signature else "unsigned"
        print(f"{release.id} ({signed}) {state} {_named(slot)}")
    elif args.action == "activate":
        store.activate(args.release, now_ms())
        print(f"{args.release} live")
    elif args.action == "shadow" and args.off:
        stopped = store.stop_shadow()
        print(f"shadow scoring with {stopped} stopped" if stopped else "no challenger was set")
    elif args.action == "shadow":
        store.activate(args.release, now_ms(), Slot.SHADOW)
        print(f"{args.release} {_named(Slot.SHADOW)}")
    elif args.action == "compare":
        print(_compare(settings.kafka, args.last, args.labels))
    else:
        print(render(store.releases(), settings.scoring.model_dir))
    return 0


def _named(slot: Slot) -> str:
    return "live" if slot is Slot.LIVE else "the challenger (shadow scoring)"


def _compare(settings: KafkaSettings, last: int | None, labels_path: str | None) -> str:
    labels = None if labels_path is None else read_labels(labels_path)
    champion, champion_bad = _read_scores(settings, settings.scores_topic, last)
    challenger, challenger_bad = _read_scores(settings, settings.shadow_scores_topic, last)
    report = shadow_report.render(shadow_report.compare(champion, challenger, labels))
    header = f"{settings.scores_topic} against {settings.shadow_scores_topic}"
    if champion_bad or challenger_bad:
        header += f" (undecodable, left out: {champion_bad} and {challenger_bad})"
    return f"{header}\n{report}"


def _read_scores(
    settings: KafkaSettings, topic: str, last: int | None
) -> tuple[list[ScoreRecord], int]:
    """The scores on ``topic`` up to its end offsets now, and how many were undecodable."""
    # A position retention moves out of the log goes to its start, not past what is left.
    consumer = KafkaConsumer(
        **connection_config(settings), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    scores, bad = [], 0
    try:
        for record in read_to_end(consumer, topic, last=last):
            try:
                scores.append(decode_threat_score(record.value))
            except InvalidMessage:
                bad += 1
    finally:
        consumer.close()
    return scores, bad


def render(releases: list[PublishedRelease], bundled_dir: str) -> str:
    if not releases:
        return (
            f"nothing published: classifiers started from now on score with the bundled "
            f"{bundled_dir} (a running one keeps the model it has)"
        )
    lines = [f"  {'release':<24}{'published (UTC)':<22}{'made live (UTC)':<22}{'signed':<8}sha256"]
    for r in releases:
        mark = "*" if r.live else "~" if r.shadow else " "
        lines.append(
            f"{mark} {r.id:<24}{_utc(r.published_ms):<22}"
            f"{_utc(r.activated_ms):<22}{'yes' if r.signed else 'no':<8}"
            + (f"unusable: {r.problem}" if r.problem else r.sha256[:16])
        )
    return "\n".join(lines)


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))
