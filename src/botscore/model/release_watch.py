"""Which models a classifier should score with, checked against the published releases.

``ReleaseWatcher.check`` asks the store once and says what changed, as values, each for a
slot (the live champion, or the shadow challenger): a model to switch to, a release
refused (the running model of that slot stays), the challenger stopped, or the store out
of reach. It never raises for those, so a caller's scoring never depends on Redis.
``Poller`` runs the checks on a thread of their own and hands outcomes over a queue: the
classifier applies them between tuples, so one batch is always scored by exactly one
champion (and at most one challenger).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import redis

from botscore.errors import ModelError
from botscore.model.registry import LoadedModel
from botscore.model.releases import Release, ReleaseStore, Slot
from botscore.settings import Secret

__all__ = [
    "Outcome",
    "Poller",
    "Reachable",
    "Refused",
    "ReleaseWatcher",
    "ShadowStopped",
    "Switched",
    "Unpublished",
    "Unreachable",
    "wanted_release",
]


@dataclass(frozen=True)
class Switched:
    release_id: str
    model: LoadedModel
    slot: Slot = Slot.LIVE


@dataclass(frozen=True)
class Refused:
    release_id: str
    reason: str
    slot: Slot = Slot.LIVE


@dataclass(frozen=True)
class ShadowStopped:
    """The challenger ``release_id`` was taken out of the shadow slot."""

    release_id: str


@dataclass(frozen=True)
class Unpublished:
    """The live slot was emptied (Redis lost its data?) while ``release_id`` scores.

    The running model stays; a classifier started from now on scores with the bundled one.
    """

    release_id: str


@dataclass(frozen=True)
class Unreachable:
    error: str


@dataclass(frozen=True)
class Reachable:
    """The store answered again after ``Unreachable``."""


Outcome = Switched | Refused | ShadowStopped | Unpublished | Unreachable | Reachable


def wanted_release(
    slot_id: str | None, current_id: str | None, refused: Collection[str]
) -> str | None:
    """The release to load now into a slot, or None to keep its current model.

    An empty slot keeps the current model (the bundled one at first, for the live slot);
    a release in ``refused`` is not fetched again (one named but not stored is not refused:
    it is looked for at every check).
    """
    if slot_id is None or slot_id == current_id or slot_id in refused:
        return None
    return slot_id


class ReleaseWatcher:
    def __init__(
        self,
        store: ReleaseStore,
        signing_key: Secret,
        columns: Sequence[str],
        current_id: str,
    ) -> None:
        self._store = store
        self._signing_key = signing_key
        self._columns = tuple(columns)
        # The release each slot scores with; None: no challenger.
        self.current: dict[Slot, str | None] = {Slot.LIVE: current_id, Slot.SHADOW: None}
        # Refused for either slot (the checks are the same), with the signature it had: a
        # release never changes but for its signature (``publish --sign`` of a release
        # refused as unsigned), and a new one is checked anew.
        self.refused: dict[str, str] = {}
        # Named by a slot but not stored (yet, or any more): reported once, looked for again.
        self.missing: set[str] = set()
        self._bundled = current_id
        self._unpublished_reported = False
        self._unreachable = False

    @property
    def current_id(self) -> str | None:
        return self.current[Slot.LIVE]

    def check(self) -> list[Outcome]:
        """One look at both slots: what changed since the last look, oldest first."""
        try:
            slots = self._store.slots()
            for named in {r for r in slots.values() if r in self.refused}:
                if self._store.signature(named) != self.refused[named]:
                    del self.refused[named]
            wanted = {
                slot: wanted_release(slots[slot], self.current[slot], self.refused) for slot in Slot
            }
            releases = {rid: self._store.fetch(rid) for rid in wanted.values() if rid}
        except redis.RedisError as exc:
            if self._unreachable:
                return []
            self._unreachable = True
            return [Unreachable(str(exc) or type(exc).__name__)]
        outcomes: list[Outcome] = []
        if self._unreachable:
            self._unreachable = False
            outcomes.append(Reachable())
        stopped = self.current[Slot.SHADOW]
        if slots[Slot.SHADOW] is None and stopped is not None:
            self.current[Slot.SHADOW] = None
            outcomes.append(ShadowStopped(stopped))
        running = self.current[Slot.LIVE]
        if slots[Slot.LIVE] is not None:
            self._unpublished_reported = False
        elif running not in (None, self._bundled) and not self._unpublished_reported:
            self._unpublished_reported = True
            outcomes.append(Unpublished(running))
        for slot, rid in wanted.items():
            if rid is not None:
                loaded = self._load(slot, rid, releases[rid])
                if loaded is not None:
                    outcomes.append(loaded)
        return outcomes

    def _load(self, slot: Slot, rid: str, release: Release | None) -> Switched | Refused | None:
        """The release ``rid`` verified for ``slot``, or why not; None: already said."""
        if release is None:
            if rid in self.missing:
                return None
            self.missing.add(rid)
            return Refused(rid, f"release {rid} is {slot} but not stored", slot)
        self.missing.discard(rid)
        try:
            model = release.verify(self._signing_key, self._columns)
        # The release is outside input: whatever its checks raise refuses it.
        except Exception as exc:
            reason = str(exc) if isinstance(exc, ModelError) else f"cannot verify it: {exc!r}"
            self.refused[rid] = release.signature
            return Refused(rid, reason, slot)
        self.current[slot] = rid
        return Switched(rid, model, slot)


class Poller:
    """Calls ``check`` every ``interval_s`` on a daemon thread; outcomes wait in ``outcomes``."""

    def __init__(self, check: Callable[[], list[Outcome]], interval_s: float) -> None:
        self._check = check
        self._interval_s = interval_s
        self.outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="release-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def run_once(self) -> None:
        try:
            found = self._check()
        # The thread must outlive whatever the store holds: scoring goes on with the models
        # loaded, and the bolt logs and counts this as it does an unreachable store.
        except Exception as exc:
            found = [Unreachable(f"the check failed: {exc!r}")]
        for outcome in found:
            self.outcomes.put(outcome)

    def pending(self) -> list[Outcome]:
        """Every outcome not yet taken, oldest first."""
        taken = []
        while True:
            try:
                taken.append(self.outcomes.get_nowait())
            except queue.Empty:
                return taken

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.run_once()
