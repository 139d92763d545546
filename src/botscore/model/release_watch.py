"""Which model a classifier should score with, checked against the published releases.

``ReleaseWatcher.check`` asks the store once and says what changed, as a value: a model to
switch to, a release refused (the running model stays), or the store out of reach. It
never raises for those, so a caller's scoring never depends on Redis. ``Poller`` runs the
checks on a thread of their own and hands outcomes over a queue: the classifier applies
them between tuples, so one batch is always scored by exactly one model.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import redis

from botscore.errors import ModelError
from botscore.model.registry import LoadedModel
from botscore.model.releases import ReleaseStore
from botscore.settings import Secret

__all__ = [
    "Outcome",
    "Poller",
    "Reachable",
    "Refused",
    "ReleaseWatcher",
    "Switched",
    "Unreachable",
    "wanted_release",
]


@dataclass(frozen=True)
class Switched:
    release_id: str
    model: LoadedModel


@dataclass(frozen=True)
class Refused:
    release_id: str
    reason: str


@dataclass(frozen=True)
class Unreachable:
    error: str


@dataclass(frozen=True)
class Reachable:
    """The store answered again after ``Unreachable``."""


Outcome = Switched | Refused | Unreachable | Reachable


def wanted_release(live_id: str | None, current_id: str, refused: Collection[str]) -> str | None:
    """The release to load now, or None to keep the current model.

    Nothing published keeps the current model (the bundled one at first); a release once
    refused is not fetched again, since a published version never changes.
    """
    if live_id is None or live_id == current_id or live_id in refused:
        return None
    return live_id


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
        self.current_id = current_id
        self.refused: set[str] = set()
        self._unreachable = False

    def check(self) -> list[Outcome]:
        """One look at the live release: what changed since the last look, oldest first."""
        try:
            live = self._store.live_id()
            wanted = wanted_release(live, self.current_id, self.refused)
            release = None if wanted is None else self._store.fetch(wanted)
        except redis.RedisError as exc:
            if self._unreachable:
                return []
            self._unreachable = True
            return [Unreachable(str(exc) or type(exc).__name__)]
        outcomes: list[Outcome] = []
        if self._unreachable:
            self._unreachable = False
            outcomes.append(Reachable())
        if wanted is None:
            return outcomes
        try:
            if release is None:
                raise ModelError(f"release {wanted} is live but not stored")
            model = release.verify(self._signing_key, self._columns)
        # The release is outside input: whatever its checks raise refuses it.
        except Exception as exc:
            reason = str(exc) if isinstance(exc, ModelError) else f"cannot verify it: {exc!r}"
            self.refused.add(wanted)
            outcomes.append(Refused(wanted, reason))
            return outcomes
        self.current_id = wanted
        outcomes.append(Switched(wanted, model))
        return outcomes


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
        for outcome in self._check():
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
