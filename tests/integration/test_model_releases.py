"""Published models against the stack's Redis, and a switch under a steady stream.

The command (`botscore models publish/list/activate/shadow`) and the classifier's check
(``ReleaseWatcher``) run against a Redis database of this module's own; the last tests
publish to a running scoring topology (`sparse run`) while users stream in, with a
challenger shadow-scoring beside the champion from the start (`botscore models compare`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer

from botscore.model.features import CATALOG
from botscore.model.registry import Thresholds, load_model
from botscore.model.release_watch import Refused, ReleaseWatcher, Switched
from botscore.model.releases import KEY_PREFIX, Release, ReleaseStore, Slot, release_id
from botscore.model.sample_users import sample_users
from botscore.settings import KafkaSettings, Secret
from botscore.simulator.labels import HEADER
from botscore.transport.kafka_clients import connection_config, create_producer
from botscore.transport.topic_reader import StartAt, assign_topic
from botscore.wire.codec import decode_threat_score, encode_user_features
from botscore.wire.records import ScoreRecord
from tests.statsd import StatsdListener

from .faults import redis_down, stack_redis
from .harness import (
    ROOT,
    delete_topics,
    empty_redis_db,
    fresh_topics,
    only_line,
    read_topic,
    run_topics,
    scoring_group,
    sparse_run,
    stack_env,
    topology_env,
    wait_committed_to_end,
    wait_until_reading,
)
from .wire_proofs import RELEASE_METRICS, assert_failure_metrics_sent, missing_from

pytestmark = [pytest.mark.integration, pytest.mark.models]

REDIS_DB = 12  # the stack's Redis, a database of these tests' own
BASELINE = ROOT / "models" / "baseline"
BUNDLED_ID = release_id(load_model(BASELINE).manifest)
KEY = "it-signing-key-0123456789"


@pytest.fixture
def store() -> Iterator[ReleaseStore]:
    with empty_redis_db(REDIS_DB) as client:
        yield ReleaseStore(client)


def variant(target: Path, version: str, **changes: object) -> Path:
    """The committed baseline model under another version (and other manifest fields)."""
    shutil.copytree(BASELINE, target)
    path = target / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(version=version, **changes)
    path.write_text(json.dumps(manifest))
    return target


def tampered(target: Path, version: str) -> Path:
    """A variant whose pickle has one byte changed; its manifest keeps the original hash."""
    directory = variant(target, version)
    pickle_path = directory / "model.pkl"
    data = bytearray(pickle_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    pickle_path.write_bytes(bytes(data))
    return directory


def botscore(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["botscore", "models", *args],
        cwd=ROOT,
        env=stack_env(BOTSCORE_REDIS_DB=str(REDIS_DB), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def live_marked(listing: str, mark: str = "*") -> list[str]:
    return [line.split()[1] for line in listing.splitlines() if line.startswith(f"{mark} ")]


def test_publish_list_and_roll_back_with_the_command(store, tmp_path):
    assert "nothing published" in botscore("list").stdout
    first, second = variant(tmp_path / "a", "it-a"), variant(tmp_path / "b", "it-b")
    published = botscore("publish", str(first))
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip() == "baseline/it-a (unsigned) published live"
    assert botscore("publish", str(second)).returncode == 0
    listing = botscore("list").stdout
    assert [line[2:].split()[0] for line in listing.splitlines()[1:]] == [
        "baseline/it-a",
        "baseline/it-b",
    ]
    assert live_marked(listing) == ["baseline/it-b"] == [store.live_id()]

    # Rollback: activate the older release, or publish its directory again.
    assert botscore("activate", "baseline/it-a").stdout.strip() == "baseline/it-a live"
    assert live_marked(botscore("list").stdout) == ["baseline/it-a"]
    assert botscore("publish", str(second)).stdout.strip() == (
        "baseline/it-b (unsigned) already published, made live"
    )
    assert store.live_id() == "baseline/it-b"

    # A version names one model: other bytes under a published version are refused.
    other = variant(tmp_path / "c", "it-a", thresholds={"challenge": 0.4, "block": 0.9})
    refused = botscore("publish", str(other))
    assert refused.returncode == 1
    assert "baseline/it-a is already published with another manifest or pickle" in refused.stderr
    unknown = botscore("activate", "baseline/nope")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1,
        "botscore: baseline/nope is not published (see `botscore models list`)",
    )
    assert store.live_id() == "baseline/it-b"


def test_a_challenger_is_set_listed_promoted_and_stopped_with_the_command(store, tmp_path):
    champion, challenger = variant(tmp_path / "a", "it-a"), variant(tmp_path / "b", "it-b")
    store.publish(Release.from_directory(champion), 1)
    shadowed = botscore("publish", str(challenger), "--shadow")
    assert shadowed.stdout.strip() == (
        "baseline/it-b (unsigned) published the challenger (shadow scoring)"
    ), shadowed.stderr
    listing = botscore("list").stdout
    assert (live_marked(listing), live_marked(listing, "~")) == (
        ["baseline/it-a"],
        ["baseline/it-b"],
    )
    assert store.slots() == {Slot.LIVE: "baseline/it-a", Slot.SHADOW: "baseline/it-b"}

    # The champion cannot be its own challenger; the challenger made live stops being one.
    refused = botscore("shadow", "baseline/it-a")
    assert (refused.returncode, refused.stderr.strip()) == (
        1,
        "botscore: baseline/it-a is live: a challenger must be another release",
    )
    assert botscore("activate", "baseline/it-b").returncode == 0
    assert store.slots() == {Slot.LIVE: "baseline/it-b", Slot.SHADOW: None}
    assert botscore("shadow", "baseline/it-a").stdout.strip() == (
        "baseline/it-a the challenger (shadow scoring)"
    )
    assert botscore("shadow", "--off").stdout.strip() == "shadow scoring with baseline/it-a stopped"
    assert store.slots() == {Slot.LIVE: "baseline/it-b", Slot.SHADOW: None}


BAD_MODELS = {
    "tampered-pickle": (lambda path: tampered(path, "it-tampered"), "SHA-256 of release"),
    "other-features": (
        lambda path: variant(path, "it-features", feature_names=[*CATALOG[:-1], "mouse_entropy"]),
        "needs features the messages do not carry: mouse_entropy",
    ),
    "other-sklearn": (
        lambda path: variant(path, "it-sklearn", sklearn_version="1.5.0"),
        "was pickled with scikit-learn 1.5.0",
    ),
}


@pytest.mark.parametrize("kind", BAD_MODELS)
def test_bad_models_are_refused_by_the_command_and_by_a_classifier(store, tmp_path, kind):
    make, reason = BAD_MODELS[kind]
    directory = make(tmp_path / kind)
    published = botscore("publish", str(directory))
    assert published.returncode == 1
    assert published.stderr.startswith("botscore: ") and reason in published.stderr
    assert store.releases() == [] and store.live_id() is None

    # Stored behind the command's back, a classifier's check still refuses it.
    release = Release.from_directory(directory)
    store.publish(release, 1)
    watcher = ReleaseWatcher(store, Secret(), CATALOG, BUNDLED_ID)
    [outcome] = watcher.check()
    assert isinstance(outcome, Refused) and outcome.release_id == release.id
    assert reason in outcome.reason
    assert watcher.current_id == BUNDLED_ID


def test_with_a_signing_key_only_models_it_signed_go_live(store, tmp_path):
    unsigned = botscore("publish", str(variant(tmp_path / "u", "it-unsigned")))
    assert unsigned.returncode == 0, unsigned.stderr
    keyed = ReleaseWatcher(store, Secret(KEY), CATALOG, BUNDLED_ID)
    [refused] = keyed.check()
    assert refused == Refused(
        "baseline/it-unsigned", "the model is unsigned and a signing key is set"
    )
    assert keyed.check() == []
    # The same release signed afterwards is checked again, and taken.
    resigned = botscore(
        "publish", str(tmp_path / "u"), "--sign", BOTSCORE_SCORING_MODEL_SIGNING_KEY=KEY
    )
    assert resigned.stdout.strip() == (
        "baseline/it-unsigned (signed) already published, made live"
    ), resigned.stderr
    [taken] = keyed.check()
    assert isinstance(taken, Switched) and taken.release_id == "baseline/it-unsigned"

    signed = botscore(
        "publish",
        str(variant(tmp_path / "s", "it-signed")),
        "--sign",
        BOTSCORE_SCORING_MODEL_SIGNING_KEY=KEY,
    )
    assert signed.stdout.strip() == "baseline/it-signed (signed) published live", signed.stderr
    [switched] = keyed.check()
    assert isinstance(switched, Switched) and switched.release_id == "baseline/it-signed"
    [wrong] = ReleaseWatcher(store, Secret("another key"), CATALOG, BUNDLED_ID).check()
    assert isinstance(wrong, Refused) and "signature does not match" in wrong.reason
    # Without a key, a classifier takes signed and unsigned models alike.
    [unkeyed] = ReleaseWatcher(store, Secret(), CATALOG, BUNDLED_ID).check()
    assert isinstance(unkeyed, Switched)
    assert "yes" in botscore("list").stdout.splitlines()[2]


def test_release_keys_that_are_not_text_are_refused_not_crashed_on(tmp_path):
    """Bytes that are not UTF-8, written by something other than `botscore models`: a live
    slot naming no release, a signature field. The check refuses them and keeps its model."""
    with empty_redis_db(REDIS_DB) as client:
        store = ReleaseStore(client)
        client.set(f"{KEY_PREFIX}:live", b"\xff\xfe")
        [refused] = ReleaseWatcher(store, Secret(KEY), CATALOG, BUNDLED_ID).check()
        assert isinstance(refused, Refused) and "not stored" in refused.reason

        signed = botscore(
            "publish",
            str(variant(tmp_path / "s", "it-garbled")),
            "--sign",
            BOTSCORE_SCORING_MODEL_SIGNING_KEY=KEY,
        )
        assert signed.returncode == 0, signed.stderr
        client.hset(f"{KEY_PREFIX}:release:baseline/it-garbled", "signature", b"\xff\xfe")
        watcher = ReleaseWatcher(store, Secret(KEY), CATALOG, BUNDLED_ID)
        [garbled] = watcher.check()
        assert isinstance(garbled, Refused) and "signature does not match" in garbled.reason
        assert watcher.current_id == BUNDLED_ID
        # A manifest that is no longer usable is listed as such, with the others.
        client.zadd(f"{KEY_PREFIX}:index", {"x/1": 1, "x/2": 2})
        client.hset(f"{KEY_PREFIX}:release:x/1", mapping={"manifest": b"[]", "pickle": b""})
        listing = botscore("list")
        assert listing.returncode == 0, listing.stderr
        lines = {line[2:].split()[0]: line for line in listing.stdout.splitlines()[1:]}
        assert lines.keys() == {"baseline/it-garbled", "x/1", "x/2"}
        assert "unusable: " in lines["x/1"] and "not a JSON object" in lines["x/1"]
        assert lines["x/2"].endswith("unusable: in the index but not stored")


# --- a running scoring topology -------------------------------------------------------

RATE_PER_S = 200  # users fed per second, in bursts of a tenth of that


class Feed:
    """Sends sample users to the features topic at a steady rate on a thread of its own."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.sent: set[tuple[int, int]] = set()
        self.is_bot: dict[str, bool] = {}  # the simulation's labels, user id -> is a bot
        self.requests_1h: dict[str, float] = {}  # user id -> its row's stage feature
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run_guarded, daemon=True)

    def __enter__(self) -> Feed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        if self.error is not None:
            raise AssertionError(f"the feed failed: {self.error!r}")

    def _run_guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        producer = create_producer(self.settings, client_id="it-model-feed")
        users = iter(sample_users(10**6, seed=1515))
        burst = RATE_PER_S // 10
        i = 0
        while not self._stop.wait(0.1):
            futures = []
            for _ in range(burst):
                user = next(users)
                self.is_bot[user.user_id] = user.is_bot
                self.requests_1h[user.user_id] = user.features["requests_1h"]
                payload = encode_user_features(user.user_id, 1_790_000_000_000 + i, user.features)
                futures.append(
                    producer.send(
                        self.settings.features_topic, key=user.user_id.encode(), value=payload
                    )
                )
                i += 1
            producer.flush()
            for future in futures:
                meta = future.get(30)
                self.sent.add((meta.partition, meta.offset))
        producer.close()


class Scores:
    """The scores topic read as it fills: versions seen, for waiting on a switch."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._consumer = KafkaConsumer(**connection_config(settings), enable_auto_commit=False)
        assign_topic(self._consumer, settings.scores_topic, start=StartAt.BEGINNING)
        self.read: list[ScoreRecord] = []

    def wait_for(self, release: str, timeout_s: float, after_ms: int = 0) -> ScoreRecord:
        """The first score by ``release`` scored at or after ``after_ms``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for score in self.read:
                named = f"{score.model_name}/{score.model_version}"
                if named == release and score.scored_time_ms >= after_ms:
                    return score
            for records in self._consumer.poll(timeout_ms=500).values():
                self.read.extend(decode_threat_score(r.value) for r in records)
        seen = sorted({f"{s.model_name}/{s.model_version}" for s in self.read})
        raise AssertionError(f"no score by {release} after {timeout_s} s; seen {seen}")

    def close(self) -> None:
        self._consumer.close()


def log_lines(log_path: Path) -> list[str]:
    return log_path.read_text(errors="replace").splitlines()


def wait_for_log(log_path: Path, text: str, timeout_s: float, after: int = 0) -> None:
    """Wait until a line of the log past its first ``after`` contains ``text``."""
    deadline = time.monotonic() + timeout_s
    while not any(text in line for line in log_lines(log_path)[after:]):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in {log_path} after {timeout_s} s")
        time.sleep(0.2)


@dataclass
class SwitchRun:
    settings: KafkaSettings
    sent: set[tuple[int, int]]
    scores: list[ScoreRecord]
    shadow: list[ScoreRecord]  # the challenger's, from the shadow scores topic
    labels: Path  # the fed users' kinds, as `botscore simulate` writes them
    bots: set[str]  # the fed bots' user ids
    requests_1h: dict[str, float]  # user id -> requests_1h fed (which block threshold applies)
    log: str
    outage_from: int  # the first line of ``log`` logged since the test's Redis outage began
    refused: dict[str, str]  # release id -> the reason it was refused for
    new_id: str
    live_ms: dict[str, int]  # release id -> when it was made live (by Redis' store)
    metrics: dict[str, set[str]]  # what the topology sent: name -> tags


CHALLENGER_ID = "baseline/it-strict"
# The baseline's pickle with other thresholds: it challenges everyone it does not block.
STRICT = Thresholds(challenge=0.0, block=0.95)


@pytest.fixture(scope="module")
def switch_run(
    kafka_settings, storm_on_path, tmp_path_factory, report_figure
) -> Iterator[SwitchRun]:
    """One topology start: refusals, a switch to a new version, Redis down, and a rollback,
    under load, with a challenger shadow-scoring from the first tuple on."""
    settings = fresh_topics(kafka_settings, prefix="it-models")
    work = tmp_path_factory.mktemp("releases")
    log_path = work / "sparse-run.log"
    new = variant(work / "new", "it-new")
    strict = {"challenge": STRICT.challenge, "block": STRICT.block}
    challenger = variant(work / "challenger", "it-strict", thresholds=strict)
    refused: dict[str, str] = {}
    live_ms: dict[str, int] = {}
    with (
        StatsdListener() as metrics,
        empty_redis_db(REDIS_DB) as client,
        _shadowing(challenger),
        sparse_run(
            settings,
            log_path,
            BOTSCORE_REDIS_DB=str(REDIS_DB),
            BOTSCORE_METRICS_STATSD_PORT=str(metrics.port),
        ) as process,
    ):
        store = ReleaseStore(client)
        wait_until_reading(process, log_path)
        scores = Scores(settings)
        try:
            with Feed(settings) as feed:
                scores.wait_for(BUNDLED_ID, 300)
                # Bad models pushed behind the command's back, each refused in turn.
                for kind, (make, reason) in BAD_MODELS.items():
                    release = Release.from_directory(make(work / kind))
                    store.publish(release, int(time.time() * 1000))
                    wait_for_log(log_path, f"refused published model {release.id}", 60)
                    refused[release.id] = reason
                # A bad challenger likewise: the running one goes on.
                bad = Release.from_directory(tampered(work / "bad-challenger", "it-bad-strict"))
                store.publish(bad, int(time.time() * 1000), Slot.SHADOW)
                wait_for_log(log_path, f"refused challenger {bad.id}", 60)
                published = botscore("publish", str(new))
                assert published.returncode == 0, published.stderr
                live_ms["baseline/it-new"] = _made_live(client, "baseline/it-new")
                scores.wait_for("baseline/it-new", 60)
                # Redis killed until a release check failed; the rollback's switch then
                # shows the checks working again.
                # A stalled machine may time a Redis read out before: only later lines count.
                outage_from = len(log_lines(log_path))
                with redis_down(stack_redis()):
                    wait_for_log(
                        log_path, "cannot read published models from Redis", 60, outage_from
                    )
                # Rollback: the bundled model published as a release.
                assert botscore("publish", str(BASELINE)).returncode == 0
                live_ms[BUNDLED_ID] = _made_live(client, BUNDLED_ID)
                back = scores.wait_for(BUNDLED_ID, 60, after_ms=live_ms[BUNDLED_ID])
                scores.wait_for(BUNDLED_ID, 30, after_ms=back.scored_time_ms + 2000)
            wait_committed_to_end(settings, scoring_group(settings), settings.features_topic, 120)
        finally:
            scores.close()
        records = read_topic(settings, settings.scores_topic)
        shadow = read_topic(settings, settings.shadow_scores_topic)
        received = metrics.tags_by_metric()
    decoded = [decode_threat_score(r.value) for r in records]
    labels = work / "labels.csv"
    labels.write_text(
        "".join(
            f"{line}\n"
            for line in [
                ",".join(HEADER),
                *(f"{u},{'bot' if b else 'human'},{int(b)}" for u, b in feed.is_bot.items()),
            ]
        )
    )
    first_new = min(s.scored_time_ms for s in decoded if _named(s) == "baseline/it-new")
    switch_s = (first_new - live_ms["baseline/it-new"]) / 1000
    back_s = (back.scored_time_ms - live_ms[BUNDLED_ID]) / 1000
    report_figure(
        f"model release under {RATE_PER_S} users/s ({len(decoded)} scores): first score by "
        f"the new version {switch_s:.2f} s after it was published, by the rolled-back one "
        f"{back_s:.2f} s after (release check every 5 s)"
    )
    yield SwitchRun(
        settings=settings,
        sent=feed.sent,
        scores=decoded,
        shadow=[decode_threat_score(r.value) for r in shadow],
        labels=labels,
        bots={user for user, bot in feed.is_bot.items() if bot},
        requests_1h=feed.requests_1h,
        log=log_path.read_text(errors="replace"),
        outage_from=outage_from,
        refused=refused,
        new_id="baseline/it-new",
        live_ms=live_ms,
        metrics=received,
    )
    delete_topics(settings, run_topics(settings))


@contextmanager
def _shadowing(challenger: Path) -> Iterator[None]:
    """The challenger set with the command before the topology starts, so that its first
    batch is shadow-scored too."""
    shadowed = botscore("publish", str(challenger), "--shadow")
    assert shadowed.returncode == 0, shadowed.stderr
    yield


def _made_live(client: redis.Redis, rid: str) -> int:
    return int(client.hget(f"botscore:models:release:{rid}", "activated_ms"))


def _named(score: ScoreRecord) -> str:
    return f"{score.model_name}/{score.model_version}"


def test_refused_models_are_logged_and_scoring_goes_on_with_the_running_one(switch_run):
    for rid, reason in switch_run.refused.items():
        line = only_line(switch_run.log, f"refused published model {rid},")
        assert f"still scoring with {BUNDLED_ID}" in line and reason in line
    assert {_named(s) for s in switch_run.scores} == {BUNDLED_ID, switch_run.new_id}
    assert "switching from model" in switch_run.log
    assert_failure_metrics_sent(
        "test_refused_models_are_logged_and_scoring_goes_on_with_the_running_one",
        switch_run.metrics,
    )


def test_a_redis_outage_is_logged_once_and_the_running_model_scores_on(switch_run):
    since = "\n".join(switch_run.log.splitlines()[switch_run.outage_from :])
    line = only_line(since, "cannot read published models from Redis")
    assert f"scoring with {switch_run.new_id}, retrying" in line
    assert "Redis answers again" in since
    assert_failure_metrics_sent(
        "test_a_redis_outage_is_logged_once_and_the_running_model_scores_on", switch_run.metrics
    )


def _group_losses(log: str) -> str:
    """The spout's log lines that say its group dropped it: the input it had not committed
    is read again (at least once), so a duplicate's likely cause goes in the failure message."""
    lines = [
        line
        for line in log.splitlines()
        if "partitions lost" in line or "member_id was not recognized" in line
    ]
    return "; ".join(lines[-4:]) or "the spout's group never dropped it"


def test_every_offset_is_scored_once_across_the_switches(switch_run):
    sources = [(s.source.partition, s.source.offset) for s in switch_run.scores]
    assert len(sources) == len(set(sources)), (
        f"a message was scored twice; {_group_losses(switch_run.log)}"
    )
    assert set(sources) == switch_run.sent


def test_scores_name_the_old_version_before_each_switch_and_the_new_one_after(switch_run):
    """One classifier task: in the order it scored, the versions change exactly twice."""
    by_time = sorted(switch_run.scores, key=lambda s: (s.scored_time_ms, s.source.offset))
    runs = [_named(by_time[0])]
    for score in by_time[1:]:
        if _named(score) != runs[-1]:
            runs.append(_named(score))
    assert runs == [BUNDLED_ID, switch_run.new_id, BUNDLED_ID]
    # And in each partition, in offset order: the same two switches at most.
    partitions = {s.source.partition for s in switch_run.scores}
    for partition in partitions:
        in_order = sorted(
            (s for s in switch_run.scores if s.source.partition == partition),
            key=lambda s: s.source.offset,
        )
        names = [_named(s) for s in in_order]
        changes = [i for i in range(1, len(names)) if names[i] != names[i - 1]]
        assert len(changes) <= 2, f"partition {partition} changed model at offsets {changes}"
    new_scores = [s for s in switch_run.scores if _named(s) == switch_run.new_id]
    assert min(s.scored_time_ms for s in new_scores) >= switch_run.live_ms[switch_run.new_id]


# --- shadow scoring, in the same run ----------------------------------------------------


def _by_source(scores: list[ScoreRecord]) -> dict[tuple[int, int], ScoreRecord]:
    return {(s.source.partition, s.source.offset): s for s in scores}


def test_shadow_scores_arrive_on_their_own_topic_one_per_user_message(switch_run):
    sources = [(s.source.partition, s.source.offset) for s in switch_run.shadow]
    assert len(sources) == len(set(sources)), (
        f"a message was shadow-scored twice; {_group_losses(switch_run.log)}"
    )
    assert set(sources) == switch_run.sent, (
        f"{len(switch_run.sent - set(sources))} messages without a shadow score"
    )
    assert {_named(s) for s in switch_run.shadow} == {CHALLENGER_ID}
    # The champion's scores are the champion's: never named by the challenger, decided by
    # the champion's thresholds; the challenger's are the same pickle's, by its own.
    champion = _by_source(switch_run.scores)
    baseline = load_model(BASELINE).manifest.thresholds
    for source, shadow in _by_source(switch_run.shadow).items():
        live = champion[source]
        assert _named(live) != CHALLENGER_ID
        assert (shadow.user_id, shadow.feature_time_ms) == (live.user_id, live.feature_time_ms)
        assert shadow.score == live.score
        assert live.decision == baseline.decide(live.score, switch_run.requests_1h[live.user_id])
        assert shadow.decision == STRICT.decide(shadow.score)


def test_a_refused_challenger_is_logged_and_shadow_scoring_goes_on(switch_run):
    line = only_line(switch_run.log, "refused challenger baseline/it-bad-strict,")
    assert f"shadow scoring goes on with {CHALLENGER_ID}" in line
    assert "SHA-256 of release" in line
    assert f"shadow scoring with challenger {CHALLENGER_ID}" in switch_run.log
    assert_failure_metrics_sent(
        "test_a_refused_challenger_is_logged_and_shadow_scoring_goes_on", switch_run.metrics
    )
    assert any(
        tag == f"challenger:{CHALLENGER_ID.replace('/', ':')}"
        for tag in switch_run.metrics["botscore.classifier.shadow_scored"]
    )


def test_the_release_and_shadow_metrics_the_dashboards_graph_arrive(switch_run):
    assert missing_from(switch_run.metrics, RELEASE_METRICS) == []


def test_the_comparison_report_counts_agreement_and_changed_decisions(switch_run):
    done = botscore(
        "compare", "--labels", str(switch_run.labels), **topology_env(switch_run.settings)
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    n = len(switch_run.sent)
    champion = _by_source(switch_run.scores)
    transitions = Counter(
        (champion[source].decision, shadow.decision)
        for source, shadow in _by_source(switch_run.shadow).items()
    )
    agreed = sum(count for (a, b), count in transitions.items() if a == b)
    assert transitions[("allow", "challenge")] > 0, "the challenger should challenge humans"
    assert lines[0] == (
        f"{switch_run.settings.scores_topic} against {switch_run.settings.shadow_scores_topic}"
    )
    champions = ", ".join(sorted({BUNDLED_ID, switch_run.new_id}))
    assert lines[1] == f"champion {champions}; challenger {CHALLENGER_ID}"
    assert lines[2] == (
        f"joined {n} messages scored by both (only the champion's: 0, only the challenger's: 0)"
    )
    assert lines[3] == f"decisions agree: {agreed} of {n} ({100 * agreed / n:.1f}%)"
    reported = {
        (parts[0], parts[2]): int(parts[3])
        for parts in (line.split() for line in lines if line.startswith("  ") and "->" in line)
    }
    assert reported == dict(transitions)
    # Per kind, from the labels: each kind's messages, and the challenger's challenges.
    is_bot = {s.user_id: s.user_id in switch_run.bots for s in switch_run.shadow}
    per_kind = {
        line.split()[0]: line.split() for line in lines if line.startswith(("  bot ", "  human "))
    }
    for kind, bot in (("bot", True), ("human", False)):
        shadows = [s for s in switch_run.shadow if is_bot[s.user_id] == bot]
        challenged = sum(s.decision == "challenge" for s in shadows)
        assert per_kind[kind][1] == str(len(shadows))
        assert per_kind[kind][6] == f"{100 * challenged / len(shadows):.1f}%"
