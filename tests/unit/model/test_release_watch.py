"""Which model a classifier should score with: version selection, refusals, outages."""

import pytest

from botscore.model.features import CATALOG
from botscore.model.release_watch import (
    Poller,
    Reachable,
    Refused,
    ReleaseWatcher,
    ShadowStopped,
    Switched,
    Unpublished,
    Unreachable,
    wanted_release,
)
from botscore.model.releases import Release, Slot
from botscore.settings import Secret
from tests.unit.model.release_fakes import FakeReleaseStore, model_variant

BUNDLED = "bundled/1"


@pytest.mark.parametrize(
    ("live", "refused", "wanted"),
    [
        (None, set(), None),  # nothing published: the bundled model stays
        (BUNDLED, set(), None),  # already scoring with it
        ("m/2", set(), "m/2"),
        ("m/2", {"m/2"}, None),  # refused once: never fetched again
        ("m/1", {"m/2"}, "m/1"),  # a rollback past a refused release
    ],
)
def test_wanted_release(live, refused, wanted):
    assert wanted_release(live, BUNDLED, refused) == wanted


@pytest.fixture
def store():
    return FakeReleaseStore()


@pytest.fixture
def watcher(store):
    return ReleaseWatcher(store, Secret(), CATALOG, BUNDLED)


def _variant(small_model_dir, tmp_path, version, **changes) -> Release:
    path = model_variant(small_model_dir, tmp_path / version, version=version, **changes)
    return Release.from_directory(path)


def test_nothing_published_reports_nothing(watcher, store):
    assert watcher.check() == []
    assert store.fetched == []


def test_a_published_release_is_switched_to_once(watcher, store, small_model_dir, tmp_path):
    store.publish(_variant(small_model_dir, tmp_path, "v2"))
    [outcome] = watcher.check()
    assert isinstance(outcome, Switched)
    assert outcome.release_id == store.live
    assert outcome.model.manifest.version == "v2"
    assert watcher.check() == []
    assert store.fetched == [store.live]


def test_a_refused_release_is_reported_once_and_a_rollback_still_works(
    watcher, store, small_model_dir, tmp_path
):
    good = _variant(small_model_dir, tmp_path, "v2")
    store.publish(good)
    watcher.check()
    store.publish(_variant(small_model_dir, tmp_path, "v3", sklearn_version="0.24.2"))
    [refused] = watcher.check()
    assert isinstance(refused, Refused)
    assert refused.release_id.endswith("/v3") and "0.24.2" in refused.reason
    assert watcher.check() == []
    assert watcher.current_id == good.id
    store.live = good.id  # rolled back to the running release: nothing to do
    assert watcher.check() == []


def test_a_live_id_without_its_release_is_refused_once_and_taken_when_stored(
    watcher, store, small_model_dir, tmp_path
):
    release = _variant(small_model_dir, tmp_path, "v9")
    store.live = release.id
    [refused] = watcher.check()
    assert refused == Refused(release.id, f"release {release.id} is live but not stored")
    assert watcher.check() == []  # said once
    store.publish(release)  # its hash written after the live slot (or written again)
    [switched] = watcher.check()
    assert isinstance(switched, Switched) and switched.release_id == release.id


def test_a_live_slot_emptied_under_a_published_model_is_reported_once(
    watcher, store, small_model_dir, tmp_path
):
    published = _variant(small_model_dir, tmp_path, "v2")
    store.publish(published)
    [switched] = watcher.check()
    store.live, store.stored = None, {}  # FLUSHALL
    assert watcher.check() == [Unpublished(switched.release_id)]
    assert watcher.check() == []
    assert watcher.current_id == switched.release_id  # the running model stays
    store.publish(published)
    assert watcher.check() == []  # published again: nothing to switch
    store.live = None
    assert watcher.check() == [Unpublished(switched.release_id)]  # a second time, reported again


def test_nothing_published_under_the_bundled_model_is_not_reported(watcher, store):
    store.live = None
    assert watcher.check() == [] and watcher.check() == []


def test_an_outage_is_reported_once_and_its_end_once(watcher, store, small_model_dir, tmp_path):
    store.down = True
    [outage] = watcher.check()
    assert isinstance(outage, Unreachable) and "refused" in outage.error
    assert watcher.check() == []
    store.publish(_variant(small_model_dir, tmp_path, "v2"))
    store.down = False
    back, switched = watcher.check()
    assert isinstance(back, Reachable)
    assert isinstance(switched, Switched) and switched.model.manifest.version == "v2"


def test_with_a_signing_key_an_unsigned_release_is_refused_until_it_is_signed(
    store, small_model_dir, tmp_path
):
    """A release never changes but for its signature: ``publish --sign`` of one refused as
    unsigned must not leave it refused until the worker restarts."""
    key = Secret("secret")
    watcher = ReleaseWatcher(store, key, CATALOG, BUNDLED)
    unsigned = _variant(small_model_dir, tmp_path, "v2")
    store.publish(unsigned)
    [refused] = watcher.check()
    assert isinstance(refused, Refused) and "unsigned" in refused.reason
    assert watcher.check() == []
    assert store.fetched == [unsigned.id]  # refused: not fetched again
    store.publish(unsigned.signed(Secret("another key")))
    [wrong] = watcher.check()
    assert isinstance(wrong, Refused) and "does not match" in wrong.reason
    store.publish(unsigned.signed(key))
    [switched] = watcher.check()
    assert isinstance(switched, Switched) and switched.release_id == unsigned.id
    store.publish(_variant(small_model_dir, tmp_path, "v3").signed(key))
    [newer] = watcher.check()
    assert isinstance(newer, Switched) and watcher.current_id == newer.release_id != unsigned.id


def test_a_challenger_is_loaded_beside_the_live_model_and_stopped(
    watcher, store, small_model_dir, tmp_path
):
    store.publish(_variant(small_model_dir, tmp_path, "v2"))
    store.publish(_variant(small_model_dir, tmp_path, "c1"), slot=Slot.SHADOW)
    live, shadow = watcher.check()
    assert isinstance(live, Switched) and (live.release_id, live.slot) == (store.live, Slot.LIVE)
    assert isinstance(shadow, Switched) and shadow.slot is Slot.SHADOW
    assert (shadow.release_id, shadow.model.manifest.version) == (store.shadow, "c1")
    assert watcher.check() == []
    assert watcher.current == {Slot.LIVE: store.live, Slot.SHADOW: store.shadow}
    stopped = store.shadow
    store.shadow = None
    assert watcher.check() == [ShadowStopped(stopped)]
    assert watcher.check() == []
    assert watcher.current == {Slot.LIVE: store.live, Slot.SHADOW: None}


def test_a_refused_challenger_keeps_the_running_one_and_the_live_model(
    watcher, store, small_model_dir, tmp_path
):
    good = _variant(small_model_dir, tmp_path, "c1")
    store.publish(good, slot=Slot.SHADOW)
    watcher.check()
    store.publish(_variant(small_model_dir, tmp_path, "c2", sklearn_version="0.24.2"), Slot.SHADOW)
    [refused] = watcher.check()
    assert isinstance(refused, Refused) and refused.slot is Slot.SHADOW
    assert refused.release_id.endswith("/c2") and "0.24.2" in refused.reason
    assert watcher.check() == []
    assert watcher.current == {Slot.LIVE: BUNDLED, Slot.SHADOW: good.id}
    # The same release is refused as a champion without being fetched again.
    store.live = refused.release_id
    fetched = list(store.fetched)
    assert watcher.check() == []
    assert store.fetched == fetched


def test_the_poller_thread_hands_over_each_outcome():
    outcomes = iter([[Unreachable("down")], [], [Reachable()]])
    poller = Poller(lambda: next(outcomes, []), interval_s=0.01)
    poller.start()
    try:
        assert poller.outcomes.get(timeout=10) == Unreachable("down")
        assert poller.outcomes.get(timeout=10) == Reachable()
    finally:
        poller.stop()
    assert poller.pending() == []


def test_the_poller_thread_outlives_a_check_that_raises():
    # Whatever the store holds, a dead thread would leave the bolt deaf to every release.
    def check():
        calls.append(None)
        if len(calls) == 1:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return [Reachable()] if len(calls) == 2 else []

    calls: list[None] = []
    poller = Poller(check, interval_s=0.01)
    poller.start()
    try:
        failed = poller.outcomes.get(timeout=10)
        assert isinstance(failed, Unreachable) and "UnicodeDecodeError" in failed.error
        assert poller.outcomes.get(timeout=10) == Reachable()
    finally:
        poller.stop()
