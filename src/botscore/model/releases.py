"""Published models in Redis: every classifier on every worker reads the same store.

A release is a model directory's ``manifest.json`` and pickle, byte for byte, with an
optional HMAC-SHA256 signature. Under ``botscore:models``:

- ``release:<name>/<version>``: a hash (``manifest``, ``pickle``, ``signature``,
  ``published_ms``, ``activated_ms``), never changed once written but for the signature
  and ``activated_ms``: a version names one model;
- ``index``: release ids, scored by when they were first published;
- ``live``: the id every classifier should score with (the champion);
- ``shadow``: the id of a challenger every classifier also scores with, for its own topic
  only (absent: none).

Publishing stores a release and makes it live (or the challenger) in one transaction;
rollback is making an older release live again, and making the challenger live promotes it
(it stops being the challenger). Classifiers poll both (see ``model.release_watch``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import redis

from botscore.errors import ModelError
from botscore.model.features import CATALOG
from botscore.model.registry import (
    MANIFEST_NAME,
    LoadedModel,
    ModelManifest,
    artifact_path,
    check_manifest,
    parse_manifest,
    read_artifact,
    read_manifest,
    unpickle,
)
from botscore.settings import Secret, env_var

__all__ = [
    "KEY_PREFIX",
    "SIGNING_KEY_VARIABLE",
    "PublishedRelease",
    "Release",
    "ReleaseStore",
    "Slot",
    "release_id",
    "signature_of",
]

KEY_PREFIX = "botscore:models"
SIGNING_KEY_VARIABLE = env_var("scoring", "model_signing_key")
# Names what is signed, so a signature made for anything else never verifies here.
_SIGNED_CONTEXT = b"botscore model release v1\n"


class Slot(StrEnum):
    """What a classifier does with a release: its Redis key under ``KEY_PREFIX``."""

    LIVE = "live"  # the champion: its scores are the decisions
    SHADOW = "shadow"  # the challenger: scored beside it, to the shadow topic only


def release_id(manifest: ModelManifest) -> str:
    """``<name>/<version>``, as every ``ThreatScore`` names its model."""
    return f"{manifest.name}/{manifest.version}"


def signature_of(manifest_json: bytes, pickled: bytes, key: Secret) -> str:
    """HMAC-SHA256 over the manifest and the pickle, hex: both bytes, unambiguously framed."""
    if not key:
        raise ModelError(f"no signing key: set {SIGNING_KEY_VARIABLE}")
    mac = hmac.new(key.reveal().encode(), _SIGNED_CONTEXT, hashlib.sha256)
    mac.update(len(manifest_json).to_bytes(8, "big"))
    mac.update(manifest_json)
    mac.update(pickled)
    return mac.hexdigest()


@dataclass(frozen=True)
class Release:
    """A model as published: the manifest's bytes, the pickle's bytes, a signature or ``""``."""

    manifest_json: bytes
    pickled: bytes
    signature: str = ""

    @classmethod
    def from_directory(cls, model_dir: str | Path) -> Release:
        directory = Path(model_dir)
        manifest = read_manifest(directory)
        pickled = read_artifact(artifact_path(directory, manifest.artifact))
        return cls((directory / MANIFEST_NAME).read_bytes(), pickled)

    @property
    def manifest(self) -> ModelManifest:
        return parse_manifest(self.manifest_json, "a published manifest")

    @property
    def id(self) -> str:
        return release_id(self.manifest)

    def signed(self, key: Secret) -> Release:
        return replace(self, signature=signature_of(self.manifest_json, self.pickled, key))

    def verify(
        self,
        signing_key: Secret,
        columns: Sequence[str] | None = None,
        available_features: Iterable[str] = CATALOG,
    ) -> LoadedModel:
        """The model, after every check ``load_model`` makes, and two more.

        With ``signing_key`` set, the signature must be the key's over these bytes.
        ``columns``, when given, is the feature order of the rows the model will score:
        the topology's spout decodes messages into that order, so a model needing other
        features (or another order) can only arrive with a new topology.
        """
        if signing_key:
            if not self.signature:
                raise ModelError("the model is unsigned and a signing key is set")
            expected = signature_of(self.manifest_json, self.pickled, signing_key)
            # As bytes: compare_digest refuses str that is not ASCII, which a stored one may be.
            if not hmac.compare_digest(self.signature.encode(), expected.encode()):
                raise ModelError("the model's signature does not match the signing key")
        manifest = self.manifest
        check_manifest(manifest, available_features)
        if columns is not None and tuple(columns) != manifest.feature_names:
            raise ModelError(
                f"model {self.id} needs features {', '.join(manifest.feature_names)}; the "
                f"topology's rows carry {', '.join(columns)} (other features need a resubmit)"
            )
        return unpickle(manifest, self.pickled, f"release {self.id}")


@dataclass(frozen=True)
class PublishedRelease:
    """One line of ``botscore models list``."""

    id: str
    sha256: str
    signed: bool
    published_ms: int
    activated_ms: int
    live: bool
    shadow: bool = False
    # Why a classifier would refuse it (its stored manifest is unusable); empty when sound.
    problem: str = ""


class ReleaseStore:
    """The releases in one Redis database; ``redis.RedisError`` passes through."""

    def __init__(self, client: redis.Redis, prefix: str = KEY_PREFIX) -> None:
        self._redis = client
        self._prefix = prefix

    def _key(self, *parts: str) -> str:
        return ":".join([self._prefix, *parts])

    def publish(self, release: Release, now_ms: int, slot: Slot = Slot.LIVE) -> bool:
        """Store ``release`` (if new) and put it in ``slot``; True if it was new.

        A version already published with other bytes is refused: scores name the version,
        so one version must always mean one model.
        """
        rid = release.id
        key = self._key("release", rid)
        with self._redis.pipeline() as pipe:
            try:
                pipe.watch(key, *self._slot_keys())  # type: ignore[no-untyped-call]
                stored = _replies(pipe.hmget(key, ["manifest", "pickle"]))
                new = stored[0] is None
                if not new and stored != [release.manifest_json, release.pickled]:
                    raise ModelError(
                        f"{rid} is already published with another manifest or pickle: "
                        f"give the new model a new version"
                    )
                promotes = self._promotes(pipe, slot, rid)
                pipe.multi()
                fields = {"manifest": release.manifest_json, "pickle": release.pickled}
                if new:
                    pipe.hset(key, mapping={**fields, "published_ms": str(now_ms)})
                    pipe.zadd(self._key("index"), {rid: now_ms}, nx=True)
                if release.signature or new:
                    pipe.hset(key, "signature", release.signature)
                self._put(pipe, slot, rid, now_ms, promotes)
                pipe.execute()
            except redis.WatchError:
                raise ModelError(f"{rid} was published by someone else meanwhile; retry") from None
        return new

    def activate(self, rid: str, now_ms: int, slot: Slot = Slot.LIVE) -> None:
        """Put an already published release in ``slot``: live again (a rollback, or the
        challenger promoted), or the challenger."""
        key = self._key("release", rid)
        with self._redis.pipeline() as pipe:
            try:
                pipe.watch(key, *self._slot_keys())  # type: ignore[no-untyped-call]
                if not pipe.exists(key):
                    raise ModelError(f"{rid} is not published (see `botscore models list`)")
                promotes = self._promotes(pipe, slot, rid)
                pipe.multi()
                self._put(pipe, slot, rid, now_ms, promotes)
                pipe.execute()
            except redis.WatchError:
                raise ModelError(f"{rid} changed meanwhile; retry") from None

    def stop_shadow(self) -> str | None:
        """No challenger any more; the one there was, or None."""
        with self._redis.pipeline() as pipe:
            pipe.get(self._key(Slot.SHADOW))
            pipe.delete(self._key(Slot.SHADOW))
            previous, _ = cast("list[bytes | None]", pipe.execute())
        return _text(previous)

    def _slot_keys(self) -> list[str]:
        return [self._key(slot) for slot in Slot]

    def _promotes(self, pipe: redis.client.Pipeline, slot: Slot, rid: str) -> bool:
        """Whether putting ``rid`` in ``slot`` empties the challenger's (read before MULTI).

        A champion is never its own challenger: the live release cannot become the
        challenger, and the challenger made live stops being one.
        """
        live, shadow = (_text(v) for v in _replies(pipe.mget(self._slot_keys())))
        if slot is Slot.SHADOW and live == rid:
            raise ModelError(f"{rid} is live: a challenger must be another release")
        return slot is Slot.LIVE and shadow == rid

    def _put(
        self, pipe: redis.client.Pipeline, slot: Slot, rid: str, now_ms: int, promotes: bool
    ) -> None:
        if slot is Slot.LIVE:
            pipe.hset(self._key("release", rid), "activated_ms", str(now_ms))
        if promotes:
            pipe.delete(self._key(Slot.SHADOW))
        pipe.set(self._key(slot), rid)

    def live_id(self) -> str | None:
        """The release classifiers should score with; None if nothing was ever published."""
        return self.slots()[Slot.LIVE]

    def slots(self) -> dict[Slot, str | None]:
        """The release in each slot (None: empty), read in one round trip."""
        values = _replies(self._redis.mget(self._slot_keys()))
        return {slot: _text(value) for slot, value in zip(Slot, values, strict=True)}

    def fetch(self, rid: str) -> Release | None:
        """The release stored as ``rid``; None if there is none."""
        key = self._key("release", rid)
        manifest_json, pickled, signature = _replies(
            self._redis.hmget(key, ["manifest", "pickle", "signature"])
        )
        if manifest_json is None or pickled is None:
            return None
        return Release(manifest_json, pickled, _text(signature) or "")

    def signature(self, rid: str) -> str | None:
        """The signature stored with ``rid`` (``""``: unsigned); None if there is none."""
        return _text(_replies(self._redis.hmget(self._key("release", rid), ["signature"]))[0])

    def releases(self) -> list[PublishedRelease]:
        """Every published release, oldest first."""
        slots = self.slots()
        found = []
        for raw in cast("list[bytes]", self._redis.zrange(self._key("index"), 0, -1)):
            rid = _text(raw) or ""
            manifest_json, signature, published, activated = _replies(
                self._redis.hmget(
                    self._key("release", rid),
                    ["manifest", "signature", "published_ms", "activated_ms"],
                )
            )
            # One release a classifier would refuse is listed as such, not the end of the list.
            sha256, problem = "", "in the index but not stored"
            if manifest_json is not None:
                try:
                    sha256, problem = Release(manifest_json, b"").manifest.sha256, ""
                except ModelError as exc:
                    problem = str(exc)
            found.append(
                PublishedRelease(
                    id=rid,
                    sha256=sha256,
                    signed=bool(signature),
                    published_ms=_ms(published),
                    activated_ms=_ms(activated),
                    live=rid == slots[Slot.LIVE],
                    shadow=rid == slots[Slot.SHADOW],
                    problem=problem,
                )
            )
        return found


def _replies(reply: Any) -> list[bytes | None]:
    """redis-py types replies as ``Awaitable | Any``; the sync client's HMGET gives this."""
    return cast("list[bytes | None]", reply)


def _ms(value: bytes | None) -> int:
    """A stored time; 0 (shown as the epoch) when absent or not a whole number."""
    return int(value) if value is not None and value.isdigit() else 0


def _text(value: bytes | None) -> str | None:
    """Stored text; bytes that are not UTF-8 (written by something else) become U+FFFD, so a
    release id or signature that cannot be ours is refused, not a crash of its reader."""
    return None if value is None else value.decode(errors="replace")
