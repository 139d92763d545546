"""A ``ReleaseStore`` in memory, for the logic that reads it (watcher, classifier bolt).

The Redis one is checked against the real server in tests/integration/test_model_releases.py.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import redis

from botscore.model.releases import Release, Slot


class FakeReleaseStore:
    def __init__(self) -> None:
        self.stored: dict[str, Release] = {}
        self.live: str | None = None
        self.shadow: str | None = None
        self.down = False
        self.fetched: list[str] = []

    def publish(self, release: Release, slot: Slot = Slot.LIVE) -> None:
        self.stored[release.id] = release
        if slot is Slot.LIVE:
            self.live = release.id
        else:
            self.shadow = release.id

    def slots(self) -> dict[Slot, str | None]:
        if self.down:
            raise redis.ConnectionError("Connection refused")
        return {Slot.LIVE: self.live, Slot.SHADOW: self.shadow}

    def fetch(self, rid: str) -> Release | None:
        if self.down:
            raise redis.ConnectionError("Connection refused")
        self.fetched.append(rid)
        return self.stored.get(rid)

    def signature(self, rid: str) -> str | None:
        if self.down:
            raise redis.ConnectionError("Connection refused")
        release = self.stored.get(rid)
        return None if release is None else release.signature


def model_variant(source: Path, target: Path, **manifest_changes: object) -> Path:
    """A copy of the model directory ``source`` with manifest fields changed."""
    shutil.copytree(source, target)
    path = target / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(manifest_changes)
    path.write_text(json.dumps(manifest))
    return target


def repickled(source: Path, target: Path, estimator: object) -> Path:
    """A copy of the model directory ``source`` whose pickle holds ``estimator``, hash updated."""
    pickled = pickle.dumps(estimator)
    model_variant(source, target, sha256=hashlib.sha256(pickled).hexdigest())
    (target / "model.pkl").write_bytes(pickled)
    return target
