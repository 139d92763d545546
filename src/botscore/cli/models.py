"""``botscore models``: publish a model to every running classifier, list releases, roll back.

``publish DIR`` makes the same checks a classifier makes (``Release.verify``) before any
classifier sees the model, so a refusal shows here first; ``--sign`` signs it with
``BOTSCORE_SCORING_MODEL_SIGNING_KEY``. ``activate ID`` (or publishing an older directory
again) is a rollback.
"""

from __future__ import annotations

import argparse
import time

from botscore.cli.command import Subparsers
from botscore.clock import now_ms
from botscore.model.registry import read_manifest, resolve_model_dir
from botscore.model.releases import PublishedRelease, Release, ReleaseStore
from botscore.settings import Secret, Settings
from botscore.transport.redis_client import create_redis

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
    activate = actions.add_parser("activate", help="make a published release live again")
    activate.add_argument("release", help="NAME/VERSION, as `botscore models list` shows it")
    actions.add_parser("list", help="published releases; the live one is marked *")
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    store = ReleaseStore(create_redis(settings.redis))
    if args.action == "publish":
        release = Release.from_directory(args.directory)
        # The topology's spout decodes rows in its bundled model's feature order.
        columns = read_manifest(resolve_model_dir(settings.scoring.model_dir)).feature_names
        release.verify(Secret(), columns)  # what every classifier checks, but the signature
        if args.sign:
            release = release.signed(settings.scoring.model_signing_key)
        new = store.publish(release, now_ms())
        state = "published" if new else "already published, made"
        signed = "signed" if release.signature else "unsigned"
        print(f"{release.id} ({signed}) {state} live")
    elif args.action == "activate":
        store.activate(args.release, now_ms())
        print(f"{args.release} live")
    else:
        print(render(store.releases(), settings.scoring.model_dir))
    return 0


def render(releases: list[PublishedRelease], bundled_dir: str) -> str:
    if not releases:
        return f"nothing published: classifiers score with the bundled {bundled_dir}"
    lines = [f"  {'release':<24}{'published (UTC)':<22}{'made live (UTC)':<22}{'signed':<8}sha256"]
    for r in releases:
        lines.append(
            f"{'*' if r.live else ' '} {r.id:<24}{_utc(r.published_ms):<22}"
            f"{_utc(r.activated_ms):<22}{'yes' if r.signed else 'no':<8}{r.sha256[:16]}"
        )
    return "\n".join(lines)


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))
