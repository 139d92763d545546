"""The publisher spout's rhythm: at most once per interval, again one interval after news.

The spout runs against an in-memory store that keeps ``RedisFeatureStore``'s publishing
contract (``redis_state.py``: pending users with a due time, versions, ``published``)
and a clock that moves only when the spout sleeps; Kafka's confirmations are acks
scheduled on that clock. So every publication time below is exact.
"""

import heapq
import itertools
from dataclasses import dataclass, field

import pytest
import redis

from botscore.aggregation.definitions import UserState
from botscore.aggregation.redis_state import (
    DueUsers,
    PublishCandidate,
    StateSize,
    Swept,
    UnusableState,
)
from botscore.aggregation.state_shards import ShardLayout
from botscore.errors import ConfigError
from botscore.model.features import CATALOG
from botscore.settings import MESSAGE_TIMEOUTS
from botscore.wire.records import PublicationBatch
from spouts import due_features
from spouts.due_features import DueFeaturesSpout
from tests.unit.metrics_fakes import RecordingMetrics
from tests.unit.storm_fakes import start

WALL_MS = 1_700_000_000_000  # wall-clock time when the clock reads 0
INTERVAL_MS = 2000
POLL_MS = 100
SHARDS = 4


class _Clock:
    """``time`` and ``now_ms`` for the spout; ``at`` schedules what happens meanwhile."""

    def __init__(self):
        self.ms = 0
        self.sleeps = []
        self._events = []
        self._order = itertools.count()

    def monotonic(self):
        return self.ms / 1000

    def now_ms(self):
        return WALL_MS + self.ms

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds):
        until = self.ms + round(seconds * 1000)
        while self._events and self._events[0][0] <= until:
            self.ms, _, action = heapq.heappop(self._events)
            action()
        self.ms = until

    def at(self, ms, action):
        heapq.heappush(self._events, (ms, next(self._order), action))


@dataclass
class _User:
    born: int
    times: list = field(default_factory=list)
    version: int = 0
    published_ms: int = 0


class _Store:
    """``RedisFeatureStore``'s publishing side in memory; ``request`` is the bolt's apply.

    While ``error`` is set every call raises it, as a store whose Redis is down.
    """

    def __init__(self, clock):
        self.clock = clock
        self.users = {}
        self.pending = {}  # user -> due, wall ms
        self.error = None
        self.published_calls = []
        self.published_batches = []  # publications per call
        self.unusable = set()  # users whose stored state cannot be read
        self.foreign = 0  # pending members that are not UTF-8, until the next due()
        self.births = itertools.count(7001)  # each new state's ``born``
        self.old_keys = {}  # superseded epoch -> its keys left in Redis
        self.sweeps = []  # the clock's ms at each sweep call
        self._sweep = None  # (epoch, keys deleted so far) while one is swept
        self.layout = ShardLayout("test", SHARDS)
        self.due_shards = []  # the shards each due() asked for

    def request(self, user_id, time_ms=None):
        if user_id not in self.users:
            self.users[user_id] = _User(born=next(self.births))
        user = self.users[user_id]
        user.times.append(self.clock.now_ms() if time_ms is None else time_ms)
        user.version += 1
        self.pending.setdefault(user_id, self.clock.now_ms())  # ZADD NX

    def _reachable(self):
        if self.error is not None:
            raise self.error

    def due(self, now_ms, limit, shards=None, held=()):
        self._reachable()
        self.due_shards.append(shards)
        ready = sorted(
            (due, user)
            for user, due in self.pending.items()
            if due <= now_ms
            and user not in held
            and (shards is None or self.layout.shard_of(user) in shards)
        )
        foreign, self.foreign = self.foreign, 0
        return DueUsers([user for _, user in ready[:limit]], foreign)

    def read(self, user_ids):
        self._reachable()
        candidates = []
        for user_id in user_ids:
            user = self.users.get(user_id)
            if user_id in self.unusable:
                candidates.append(UnusableState(user_id, "WRONGTYPE"))
                continue
            if user is None:
                candidates.append(None)
                continue
            state = UserState(
                last_ms=max(user.times),
                counters={},
                distinct={},
                recent_ms=tuple(sorted(user.times)),
            )
            candidates.append(
                PublishCandidate(user_id, state, user.born, user.version, user.published_ms)
            )
        return candidates

    def published(self, publications, now_ms, interval_ms):
        self._reachable()
        self.published_batches.append(len(publications))
        for user_id, born, version in publications:
            self.published_calls.append((user_id, born, version, now_ms))
            user = self.users.get(user_id)
            if user is None:
                self.pending.pop(user_id, None)
                continue
            if user.born != born:  # another state's publication: this one stays due
                continue
            user.published_ms = now_ms
            if user.version == version:
                self.pending.pop(user_id, None)
            elif user_id in self.pending:  # ZADD XX
                self.pending[user_id] = now_ms + interval_ms

    def postpone(self, user_id, due_ms):
        self._reachable()
        if user_id in self.pending:
            self.pending[user_id] = due_ms

    def drop_pending(self, user_id):
        self._reachable()
        self.pending.pop(user_id, None)

    def reset(self, user_id):
        self._reachable()
        self.users.pop(user_id, None)
        self.pending.pop(user_id, None)
        self.unusable.discard(user_id)

    def size(self):
        self._reachable()
        return StateSize(len(self.pending), 4 * len(self.users), 1000 * len(self.users))

    @property
    def sweeping(self):
        return self._sweep is not None

    def sweep(self, count):
        """Deletes ``count`` keys of the oldest superseded epoch a call, as SCAN steps."""
        self._reachable()
        self.sweeps.append(self.clock.ms)
        if self._sweep is None:
            if not self.old_keys:
                return Swept(0)
            self._sweep = (min(self.old_keys), 0)
        epoch, total = self._sweep
        deleted = min(count, self.old_keys[epoch])
        self.old_keys[epoch] -= deleted
        if self.old_keys[epoch]:
            self._sweep = (epoch, total + deleted)
            return Swept(deleted)
        del self.old_keys[epoch]
        self._sweep = None
        return Swept(deleted, epoch, total + deleted)


@pytest.fixture
def clock(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(due_features, "time", clock)
    monkeypatch.setattr(due_features, "now_ms", clock.now_ms)
    return clock


@pytest.fixture
def store(clock, monkeypatch):
    store = _Store(clock)
    monkeypatch.setattr(due_features, "feature_store", lambda settings: store)
    return store


@pytest.fixture
def spout(store, monkeypatch):
    options = {
        "botscore.aggregation.publish_interval_ms": INTERVAL_MS,
        "botscore.aggregation.publish_poll_ms": POLL_MS,
    }
    return start(DueFeaturesSpout, options, monkeypatch)


@dataclass(frozen=True)
class _Published:
    """One user's publication, from the tuple of its poll; ``born`` and ``version`` name the
    state published, as the spout keeps them for its confirmation."""

    tuple_id: str
    user: str
    window_end_ms: int
    features: dict
    born: int
    version: int

    @property
    def state(self):
        return f"{self.born}:{self.version}#{self.user}"


def _run(spout, clock, until_ms, confirm_after_ms=None):
    """Storm's spout loop until ``until_ms``: (time, ``_Published``) of each publication.

    With ``confirm_after_ms``, Kafka confirms each tuple that long after its emit and the
    producer bolt's ack reaches the spout then.
    """
    component, link = spout
    publications = []
    for _ in range(2 * until_ms // POLL_MS + 10):
        if clock.ms >= until_ms:
            return publications
        seen = len(link.emitted())
        component.next_tuple()
        for message in link.emitted()[seen:]:
            batch = PublicationBatch.from_values(message["tuple"])
            states = component.batches[message["id"]]
            for user, end, row, (_, born, version) in zip(
                batch.user_ids, batch.window_end_ms, batch.rows, states, strict=True
            ):
                features = dict(zip(batch.feature_names, row, strict=True))
                published = _Published(message["id"], user, end, features, born, version)
                publications.append((clock.ms, published))
            if confirm_after_ms is not None:
                clock.at(clock.ms + confirm_after_ms, lambda i=message["id"]: component.ack(i))
    raise AssertionError(f"next_tuple no longer waits between polls (clock at {clock.ms} ms)")


def _summary(publications):
    """(emitted at, window end relative to the clock's 0, version) of each publication."""
    return [(at, p.window_end_ms - WALL_MS, p.version) for at, p in publications]


def test_a_user_is_published_at_most_once_per_interval_and_one_interval_after_news(
    spout, clock, store
):
    for at in (50, 1500, 2150, 2250):
        clock.at(at, lambda: store.request("u"))
    publications = _run(spout, clock, until_ms=10_000, confirm_after_ms=30)

    # 100: the first poll after the first request. 1500 is news within the interval after
    # the confirmation at 130, so it waits until 2130 (first poll: 2200), and 2150 rides
    # along. 2250 came after the confirmation at 2230: due at 4230, polled at 4300.
    assert _summary(publications) == [(100, 50, 1), (2200, 2150, 3), (4300, 2250, 4)]
    times = [at for at, _ in publications]
    assert all(b - a >= INTERVAL_MS for a, b in itertools.pairwise(times))
    assert times[-1] <= 2250 + INTERVAL_MS + POLL_MS
    assert store.pending == {}


def test_a_publication_carries_the_users_features_and_its_version_in_the_tuple_id(
    spout, clock, store
):
    for at in (0, 1000, 3000):
        store.request("user-7", time_ms=WALL_MS + at)
    [(_, published)] = _run(spout, clock, until_ms=POLL_MS)
    assert (published.user, published.window_end_ms) == ("user-7", WALL_MS + 3000)
    assert published.state == "7001:3#user-7"
    features = published.features
    assert list(features) == list(CATALOG)
    assert features["interarrival_mean_s"] == 1.5  # gaps of 1 s and 2 s
    assert features["interarrival_cv"] == pytest.approx(0.5 / 1.5)


def test_news_while_a_publication_is_in_flight_is_published_one_interval_after_it(
    spout, clock, store
):
    component, _ = spout
    clock.at(50, lambda: store.request("u"))
    clock.at(150, lambda: store.request("u"))  # news while version 1 is in flight
    clock.at(520, lambda: component.ack("p1"))  # Kafka confirms version 1 late
    publications = _run(spout, clock, until_ms=6000)

    assert _summary(publications) == [(100, 50, 1), (2600, 150, 2)]
    # recorded at the first poll after the confirmation
    assert store.published_calls == [("u", 7001, 1, WALL_MS + 600)]


def test_confirmations_between_two_polls_are_recorded_in_one_call_and_not_published_again(
    spout, clock, store
):
    component, _ = spout
    for user in ("a", "b", "c"):
        store.request(user)
    first = _run(spout, clock, until_ms=POLL_MS)
    assert sorted(p.user for _, p in first) == ["a", "b", "c"]
    assert len({p.tuple_id for _, p in first}) == 1  # one poll, one tuple
    component.ack(first[0][1].tuple_id)
    assert store.published_calls == []  # not yet: at the next poll, all at once
    again = _run(spout, clock, until_ms=10 * POLL_MS)
    assert again == []
    assert store.published_batches == [3]
    assert store.pending == {}


def test_a_failed_publication_leaves_the_user_pending_and_is_published_again(spout, clock, store):
    component, _ = spout
    clock.at(50, lambda: store.request("u"))
    clock.at(130, lambda: component.fail("p1"))
    publications = _run(spout, clock, until_ms=250)

    assert _summary(publications) == [(100, 50, 1), (200, 50, 1)]
    assert [p.state for _, p in publications] == ["7001:1#u", "7001:1#u"]
    assert [p.tuple_id for _, p in publications] == ["p1", "p2"]
    assert store.published_calls == []
    assert "u" in store.pending


def test_a_publication_whose_confirmation_redis_missed_is_published_again(spout, clock, store):
    component, _ = spout
    store.request("u")
    [(_, first)] = _run(spout, clock, until_ms=POLL_MS)
    component.ack(first.tuple_id)
    store.error = redis.ConnectionError("Connection refused")
    _run(spout, clock, until_ms=2 * POLL_MS)  # must not raise: the user just stays pending
    store.error = None
    again = _run(spout, clock, until_ms=2 * POLL_MS + 2000)
    assert [p.state for _, p in again] == ["7001:1#u"]
    assert store.published_calls == []


def test_the_confirmation_of_a_state_gone_since_leaves_the_new_state_due(spout, clock, store):
    """The user's state expired (or was reset) while its publication was in flight, and a
    new request began another at the same version: only the new one's publication is done."""
    component, _ = spout
    store.request("u")
    [(_, first)] = _run(spout, clock, until_ms=POLL_MS)
    del store.users["u"]
    store.request("u")
    component.ack(first.tuple_id)
    assert list(store.pending) == ["u"]
    again = _run(spout, clock, until_ms=2 * POLL_MS)
    assert [p.state for _, p in again] == ["7002:1#u"]


def test_an_expired_user_leaves_the_pending_set_unpublished(spout, clock, store):
    store.request("gone")
    del store.users["gone"]  # its keys expired
    assert _run(spout, clock, until_ms=3 * POLL_MS) == []
    assert store.pending == {}


def test_an_unreadable_user_is_reset_logged_and_counted_and_the_others_published(
    store, clock, monkeypatch, caplog
):
    created = []
    monkeypatch.setattr(
        due_features,
        "Metrics",
        lambda *a, **k: created.append(RecordingMetrics(a[1])) or created[-1],
    )
    spout = start(
        DueFeaturesSpout,
        {
            "botscore.aggregation.publish_interval_ms": INTERVAL_MS,
            "botscore.aggregation.publish_poll_ms": POLL_MS,
        },
        monkeypatch,
    )
    store.request("broken")  # the oldest due user, every poll until something is done
    clock.advance(0.01)
    store.request("fine")
    store.unusable.add("broken")
    store.foreign = 2
    published = _run(spout, clock, until_ms=3 * POLL_MS)
    assert [p.state for _, p in published] == ["7002:1#fine"]
    assert "broken" not in store.pending and "broken" not in store.users
    assert created[0].counted("state_reset") == 3  # the unreadable user, two foreign members
    logged = caplog.text
    assert "'broken'" in logged and "WRONGTYPE" in logged and "2 pending users" in logged


def test_polls_are_one_poll_interval_apart_and_a_late_call_does_not_wait(spout, clock):
    component, _ = spout
    for _ in range(3):
        component.next_tuple()
    assert clock.sleeps == [pytest.approx(POLL_MS / 1000)] * 2
    clock.advance(5 * POLL_MS / 1000)  # Storm was busy elsewhere
    component.next_tuple()
    assert len(clock.sleeps) == 2


def test_publishing_pauses_a_second_while_redis_is_down(spout, clock, store):
    component, link = spout
    store.request("u")
    store.error = redis.ConnectionError("Connection refused")
    component.next_tuple()
    assert link.emitted() == []

    store.error = None
    component.next_tuple()
    assert clock.sleeps == [pytest.approx(1.0)]
    [emitted] = link.emitted()
    assert PublicationBatch.from_values(emitted["tuple"]).user_ids == ["u"]


def test_a_full_poll_is_followed_by_the_next_at_once_until_the_backlog_is_out(spout, clock, store):
    users = [f"user-{i:04d}" for i in range(due_features._BATCH + 100)]
    for user in users:
        store.request(user)
    component, link = spout
    component.next_tuple()
    component.next_tuple()  # the first poll was full: this one does not wait
    assert clock.sleeps == []
    component.next_tuple()  # the second was not: this one waits a poll interval
    assert clock.sleeps == [pytest.approx(POLL_MS / 1000)]
    batches = [PublicationBatch.from_values(m["tuple"]) for m in link.emitted()]
    assert [len(b.user_ids) for b in batches] == [due_features._BATCH, 100]
    assert sorted(u for b in batches for u in b.user_ids) == users


def test_the_spout_refuses_to_run_without_message_timeouts(store, monkeypatch):
    with pytest.raises(ConfigError, match=MESSAGE_TIMEOUTS):
        start(DueFeaturesSpout, {MESSAGE_TIMEOUTS: False}, monkeypatch)


def _spout_with_metrics(monkeypatch):
    """The spout, and the metrics it sends (``RecordingMetrics.sent``)."""
    created = []

    def metrics(settings, component, tags=()):
        created.append(RecordingMetrics(component))
        return created[-1]

    monkeypatch.setattr(due_features, "Metrics", metrics)
    spout = start(
        DueFeaturesSpout,
        {
            "botscore.aggregation.publish_interval_ms": INTERVAL_MS,
            "botscore.aggregation.publish_poll_ms": POLL_MS,
        },
        monkeypatch,
    )
    [sent] = created
    return spout, sent


def test_the_state_size_is_sent_every_ten_seconds_and_survives_redis_outages(
    store, clock, monkeypatch
):
    spout, sent = _spout_with_metrics(monkeypatch)
    for user in ("a", "b", "c"):
        store.request(user)
    _run(spout, clock, until_ms=1000, confirm_after_ms=30)  # then nothing is pending

    def sizes():
        return [(what, value) for kind, what, value, _ in sent.sent if kind == "gauge"]

    assert sizes() == [  # the first poll, before publishing
        ("pending_users", 3),
        ("state_keys", 12),
        ("redis_memory_bytes", 3000),
    ]
    store.error = redis.ConnectionError("down")
    _run(spout, clock, until_ms=12_000)  # due at 10.1 s, Redis down: not sent
    assert len(sizes()) == 3
    store.error = None
    store.request("d")
    _run(spout, clock, until_ms=13_000)
    assert sizes()[3:] == [("pending_users", 1), ("state_keys", 16), ("redis_memory_bytes", 4000)]


def test_an_old_epochs_keys_are_deleted_a_step_per_poll_then_looked_for_every_ten_seconds(
    store, clock, monkeypatch, caplog
):
    spout, sent = _spout_with_metrics(monkeypatch)
    caplog.set_level("INFO")
    store.request("a")
    _run(spout, clock, until_ms=5000, confirm_after_ms=30)
    assert store.sweeps == [0], "looked for an old epoch more than once in 10 s"

    store.old_keys = {"0ld3p0ch": 2500}  # Redis lost some of the state meanwhile
    store.request("b")
    publications = _run(spout, clock, until_ms=10_500, confirm_after_ms=30)
    # Looked for at 10 s, then a step of 1000 keys at each poll until none is left.
    assert store.sweeps == [0, 10_000, 10_100, 10_200]
    assert store.old_keys == {}
    assert [value for kind, what, value, _ in sent.sent if what == "swept_keys"] == [
        1000,
        1000,
        500,
    ]
    assert "deleted the 2500 keys left of the feature state's old epoch 0ld3p0ch" in caplog.text
    assert [p.user for _, p in publications] == ["b"], "publishing stopped meanwhile"

    store.error = redis.ConnectionError("down")
    _run(spout, clock, until_ms=21_000)  # due at 20.2 s, Redis down
    store.error = None
    store.old_keys = {"0ld3p0c2": 10}
    _run(spout, clock, until_ms=24_000)  # the next poll, a second after the failed one
    assert len(store.sweeps) == 5 and 21_000 < store.sweeps[4] < 23_000
    assert store.old_keys == {}


def _publishers(monkeypatch, count):
    """``count`` publisher tasks (ids 10, 11, ...) over ``store``: (spout, link) each."""
    options = {
        "botscore.aggregation.publish_interval_ms": INTERVAL_MS,
        "botscore.aggregation.publish_poll_ms": POLL_MS,
        "botscore.aggregation.state_shards": SHARDS,
    }
    tasks = [10 + i for i in range(count)]
    return [start(DueFeaturesSpout, options, monkeypatch, task_id=t, tasks=tasks) for t in tasks]


@pytest.mark.parametrize("count", [2, 3, SHARDS])
def test_publishers_share_the_shards_and_each_user_is_published_by_exactly_one(
    store, clock, monkeypatch, count
):
    spouts = _publishers(monkeypatch, count)
    users = [f"user-{i}" for i in range(200)]
    for user in users:
        store.request(user)
    published, shares = [], []
    for index, spout in enumerate(spouts):
        store.due_shards.clear()
        published.append([p.user for _, p in _run(spout, clock, until_ms=clock.ms + 1)])
        [share] = set(store.due_shards)
        shares.append(set(share))
        # Its tuples name it: the topology groups them on it, to one producer.
        tuples = [PublicationBatch.from_values(m["tuple"]) for m in spout[1].emitted()]
        assert tuples and {t.publisher for t in tuples} == {index}
    # Every user once, by the publisher of its shard; the shards split with none left out.
    assert sorted(u for by_one in published for u in by_one) == sorted(users)
    assert sorted(s for share in shares for s in share) == list(range(SHARDS))
    for by_one, share in zip(published, shares, strict=True):
        assert by_one and {store.layout.shard_of(u) for u in by_one} <= share


def test_only_the_first_publisher_sends_the_state_size_and_sweeps(store, clock, monkeypatch):
    created = []

    def metrics(settings, component, tags=()):
        created.append(RecordingMetrics(component))
        return created[-1]

    monkeypatch.setattr(due_features, "Metrics", metrics)
    spouts = _publishers(monkeypatch, 2)
    store.old_keys = {"0ld3p0ch": 10}
    for spout in spouts:
        _run(spout, clock, until_ms=clock.ms + 1)
    gauges = [[s for s in sent.sent if s[0] == "gauge"] for sent in created]
    assert len(gauges[0]) == 3 and gauges[1] == []
    assert len(store.sweeps) == 1 and store.old_keys == {}


def test_more_publishers_than_shards_is_refused_at_start(store, monkeypatch):
    with pytest.raises(ConfigError, match=f"publisher {SHARDS + 1} of {SHARDS + 1} has no shard"):
        _publishers(monkeypatch, SHARDS + 1)


def test_unconfirmed_publications_are_capped_and_polling_resumes_with_confirmations(
    spout, clock, store
):
    component, _ = spout
    cap = due_features._MAX_IN_FLIGHT
    for i in range(cap + 700):
        store.request(f"user-{i:05d}")
    out = _run(spout, clock, until_ms=20 * POLL_MS)  # Kafka confirms nothing meanwhile
    assert len(out) == cap and len({p.user for _, p in out}) == cap
    assert {p.tuple_id for _, p in out} == {f"p{i}" for i in range(1, cap // 500 + 1)}
    component.ack("p1")  # 500 confirmed: recorded at the next poll, then 500 more go out
    more = _run(spout, clock, until_ms=23 * POLL_MS)
    assert len(more) == 500 and not {p.user for _, p in more} & {p.user for _, p in out}
    component.fail("p2")  # its 500 users are pending still, and go out again
    again = _run(spout, clock, until_ms=26 * POLL_MS)
    assert {p.user for _, p in again} == {p.user for _, p in out if p.tuple_id == "p2"}
