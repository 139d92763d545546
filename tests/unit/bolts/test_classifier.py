"""The classifier bolt: one batch tuple in, its scores out as one anchored tuple, then an ack."""

import dataclasses
import json
import logging
import math
import os
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from bolts import classifier
from bolts.classifier import ClassifierBolt
from botscore.errors import ModelError
from botscore.model.releases import Release, Slot, release_id
from botscore.model.sample_users import sample_users
from botscore.settings import Settings
from botscore.vocabulary import Component
from botscore.wire.records import FeatureBatch, ScoreBatch
from tests.unit.metrics_fakes import RecordingMetrics
from tests.unit.model.release_fakes import FakeReleaseStore, model_variant
from tests.unit.storm_fakes import start, storm_tuple

NOW_MS = 1_700_000_000_000


@pytest.fixture
def bolt(small_model_dir, monkeypatch):
    monkeypatch.setattr(classifier, "now_ms", lambda: NOW_MS)
    return start(ClassifierBolt, {"botscore.scoring.model_dir": str(small_model_dir)}, monkeypatch)


def _batch(model_dir, n, seed=18):  # seed 18 holds an allow and a challenge
    names = json.loads((model_dir / "manifest.json").read_text())["feature_names"]
    users = list(sample_users(n, seed))
    return FeatureBatch(
        user_ids=[u.user_id for u in users],
        window_end_ms=[1_699_999_990_000 + i for i in range(n)],
        rows=[[u.features[name] for name in names] for u in users],
        schema_versions=[1] * n,
        topic="uf",
        partition=1,
        offsets=list(range(100, 100 + n)),
    )


def _expected_scores(model_dir, batch):
    """Bot probabilities straight from the pickled estimator."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    estimator = classifier.load_model(model_dir).estimator
    bot_column = list(estimator.classes_).index(1)
    return list(estimator.predict_proba(np.array(batch.rows))[:, bot_column]), manifest


def _decision(score, thresholds):
    if score >= thresholds["block"]:
        return "block"
    return "challenge" if score >= thresholds["challenge"] else "allow"


def test_a_batch_is_scored_in_one_tuple_anchored_to_its_input_and_then_acked(bolt, small_model_dir):
    component, link = bolt
    batch = _batch(small_model_dir, 7)
    component.process(storm_tuple("uf/1/100-106", batch.to_values()))

    emit, ack = link.messages()
    assert (emit["command"], emit["anchors"]) == ("emit", ["uf/1/100-106"])
    assert (ack["command"], ack["id"]) == ("ack", "uf/1/100-106")
    scores = ScoreBatch.from_values(emit["tuple"])
    expected, manifest = _expected_scores(small_model_dir, batch)
    assert scores.scores == expected
    assert scores.decisions == [_decision(s, manifest["thresholds"]) for s in expected]
    assert {"allow", "challenge"} <= set(scores.decisions)
    assert scores.user_ids == batch.user_ids
    assert scores.feature_times_ms == batch.window_end_ms
    assert (scores.topic, scores.partition, scores.offsets) == ("uf", 1, batch.offsets)
    assert (scores.model_name, scores.model_version) == (manifest["name"], manifest["version"])
    assert scores.scored_time_ms == NOW_MS


def test_a_batch_counts_decisions_tenths_of_the_score_and_feature_age(bolt, small_model_dir):
    component, _ = bolt
    component.metrics = RecordingMetrics(Component.CLASSIFIER)
    batch = _batch(small_model_dir, 7)
    component.process(storm_tuple("uf/1/100-106", batch.to_values()))

    expected, manifest = _expected_scores(small_model_dir, batch)
    metrics = component.metrics
    assert metrics.counted("scored") == 7
    assert metrics.counted_by("decisions", "decision") == dict(
        Counter(_decision(s, manifest["thresholds"]) for s in expected)
    )
    tenths = Counter(f"{min(math.floor(s * 10), 9) / 10:.1f}" for s in expected)
    assert metrics.counted_by("scores", "bucket") == dict(tenths)
    # scored at NOW_MS; the oldest window ended at 1_699_999_990_000
    ages = [v for kind, what, v, _ in metrics.sent if what == "feature_age_seconds"]
    assert ages == [10.0]


def test_users_past_the_rate_ceiling_are_blocked_and_counted_apart(bolt, small_model_dir):
    component, link = bolt
    component.metrics = RecordingMetrics(Component.CLASSIFIER)
    batch = _batch(small_model_dir, 7)
    column = json.loads((small_model_dir / "manifest.json").read_text())["feature_names"].index(
        "requests_1m"
    )
    ceiling = Settings().scoring.block_requests_1m
    for i, rate in ((0, ceiling + 1), (3, 168_000.0), (5, ceiling)):  # 5: at it, not past
        batch.rows[i][column] = rate
    component.process(storm_tuple("uf/1/100-106", batch.to_values()))

    scores = ScoreBatch.from_values(link.emitted()[0]["tuple"])
    assert [i for i, d in enumerate(scores.decisions) if d == "block"] == [0, 3]
    assert component.metrics.counted("rate_ceiling_blocks") == 2
    component.process(storm_tuple("uf/1/107-113", _batch(small_model_dir, 7).to_values()))
    assert component.metrics.counted("rate_ceiling_blocks") == 2  # none past it: not sent


def test_each_tuple_is_answered_on_its_own(bolt, small_model_dir):
    component, link = bolt
    for i in range(3):
        component.process(storm_tuple(f"in-{i}", _batch(small_model_dir, 2, seed=i).to_values()))
    assert link.commands() == [("emit", None), ("ack", "in-0")] + [
        c for i in (1, 2) for c in [("emit", None), ("ack", f"in-{i}")]
    ]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda v: v[:3], id="too-few-values"),
        pytest.param(lambda v: [v[0][:-1], *v[1:]], id="a-user-id-short"),
        pytest.param(lambda v: [v[0], v[1], [r[:-1] for r in v[2]], *v[3:]], id="narrow-rows"),
        pytest.param(lambda v: [[], [], [], [], *v[4:6], []], id="empty"),
    ],
)
def test_a_malformed_tuple_is_failed_and_nothing_is_emitted(bolt, small_model_dir, damage):
    component, link = bolt
    component.process(storm_tuple("bad", damage(_batch(small_model_dir, 3).to_values())))
    assert link.commands() == [("fail", "bad")]


class _BrokenEstimator:
    classes_ = np.array([0, 1])

    def predict_proba(self, matrix):
        raise ValueError("the model blew up")


def test_a_batch_whose_model_call_raises_is_failed_and_the_bolt_goes_on(bolt, small_model_dir):
    component, link = bolt
    model = component.model
    component.model = dataclasses.replace(model, estimator=_BrokenEstimator())
    component.process(storm_tuple("first", _batch(small_model_dir, 4).to_values()))
    component.model = model
    component.process(storm_tuple("second", _batch(small_model_dir, 4).to_values()))
    assert link.commands() == [("fail", "first"), ("emit", None), ("ack", "second")]


def test_a_model_that_keeps_raising_logs_one_traceback_a_minute_per_kind_of_failure(
    bolt, small_model_dir, caplog
):
    component, link = bolt
    clock = [0.0]
    component.repeats.clock = lambda: clock[0]
    component.model = dataclasses.replace(component.model, estimator=_BrokenEstimator())
    for i in range(5):  # a batch and its halves, failing alike
        component.process(storm_tuple(f"t{i}", _batch(small_model_dir, 4).to_values()))
    clock[0] = 60.0
    component.process(storm_tuple("later", _batch(small_model_dir, 4).to_values()))
    assert link.commands() == [("fail", f"t{i}") for i in range(5)] + [("fail", "later")]
    lines = [r.getMessage() for r in caplog.records if "cannot score" in r.getMessage()]
    assert [line.split(" | ")[0] for line in lines] == [
        "cannot score tuple t0; failing it for a replay",
        "cannot score tuple later; failing it for a replay (and 4 more like it since the "
        "last such line)",
    ]
    assert all(r.exc_info for r in caplog.records if "cannot score" in r.getMessage())


def test_a_model_that_fails_its_check_stops_the_bolt_before_it_scores(
    small_model_dir, tmp_path, monkeypatch
):
    tampered = tmp_path / "model"
    shutil.copytree(small_model_dir, tampered)
    artifact = json.loads((tampered / "manifest.json").read_text())["artifact"]
    with (tampered / artifact).open("ab") as pickle_file:
        pickle_file.write(b"\0")
    with pytest.raises(ModelError, match="SHA-256"):
        start(ClassifierBolt, {"botscore.scoring.model_dir": str(tampered)}, monkeypatch)


@pytest.fixture
def release_store(monkeypatch):
    store = FakeReleaseStore()
    monkeypatch.setattr(classifier, "ReleaseStore", lambda client: store)
    return store


@pytest.fixture
def watching_bolt(small_model_dir, release_store, monkeypatch):
    """A bolt that checks releases; the test runs the poller's checks (the thread waits an hour)."""
    monkeypatch.setattr(classifier, "now_ms", lambda: NOW_MS)

    def start_bolt():
        options = {
            "botscore.scoring.model_dir": str(small_model_dir),
            "botscore.scoring.release_check_s": 3600,
        }
        component, link = start(ClassifierBolt, options, monkeypatch)
        started.append(component)
        return component, link

    started = []
    yield start_bolt
    for component in started:
        component.poller.stop()


def _scored_by(component, link, model_dir, tup_id):
    component.process(storm_tuple(tup_id, _batch(model_dir, 3).to_values()))
    scores = ScoreBatch.from_values(link.emitted()[-1]["tuple"])
    return f"{scores.model_name}/{scores.model_version}"


def _release(small_model_dir, tmp_path, version, **changes):
    directory = model_variant(small_model_dir, tmp_path / version, version=version, **changes)
    return Release.from_directory(directory)


def test_the_live_release_scores_from_the_first_tuple(
    watching_bolt, release_store, small_model_dir, tmp_path
):
    release_store.publish(_release(small_model_dir, tmp_path, "v7"))
    component, link = watching_bolt()
    assert _scored_by(component, link, small_model_dir, "t1") == release_store.live


def test_a_new_release_scores_from_the_next_tuple_on(
    watching_bolt, release_store, small_model_dir, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    component, link = watching_bolt()
    bundled = release_id(component.model.manifest)
    assert _scored_by(component, link, small_model_dir, "t1") == bundled
    release_store.publish(_release(small_model_dir, tmp_path, "v8"))
    component.poller.run_once()
    assert _scored_by(component, link, small_model_dir, "t2") == release_store.live
    assert f"switching from model {bundled} to published {release_store.live}" in caplog.text
    assert link.acked() == ["t1", "t2"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sklearn_version": "0.24.2"}, "pickled with scikit-learn 0.24.2"),
        ({"feature_names": ["requests_1m"]}, "other features need a resubmit"),
        ({"sha256": "0" * 64}, "SHA-256 of release"),
    ],
)
def test_a_refused_release_leaves_the_running_model_and_says_why(
    watching_bolt, release_store, small_model_dir, tmp_path, caplog, changes, reason
):
    component, link = watching_bolt()
    bundled = release_id(component.model.manifest)
    release_store.publish(_release(small_model_dir, tmp_path, "v9", **changes))
    component.poller.run_once()
    assert _scored_by(component, link, small_model_dir, "t1") == bundled
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith(f"refused published model {release_store.live}, still scoring with")
    assert reason in line


def test_a_redis_outage_keeps_scoring_and_is_logged_once(
    watching_bolt, release_store, small_model_dir, caplog
):
    release_store.down = True
    component, link = watching_bolt()
    component.poller.run_once()
    for i in range(3):
        _scored_by(component, link, small_model_dir, f"t{i}")
    assert link.acked() == ["t0", "t1", "t2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "cannot read published models from Redis" in warnings[0]


def test_with_no_redis_listening_the_bundled_model_scores(small_model_dir, monkeypatch, caplog):
    """The real client against a closed port: refused at once, logged once, scoring goes on."""
    options = {
        "botscore.scoring.model_dir": str(small_model_dir),
        "botscore.scoring.release_check_s": 3600,
        "botscore.redis.port": 1,
    }
    component, link = start(ClassifierBolt, options, monkeypatch)
    try:
        bundled = release_id(component.model.manifest)
        assert _scored_by(component, link, small_model_dir, "t1") == bundled
    finally:
        component.poller.stop()
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("cannot read published models from Redis (")
    assert f"scoring with {bundled}, retrying | component=classifier" in warning


def test_the_model_runs_on_the_configured_threads_only(small_model_dir, project_root):
    """In a fresh process, as a worker starts: the limit must come after the model's load,
    which is what loads OpenMP (limited before it, the pool kept a spinning thread per core)."""
    script = (
        "import json, pytest\n"
        "from threadpoolctl import threadpool_info\n"
        "from bolts.classifier import ClassifierBolt\n"
        "from tests.unit.storm_fakes import start\n"
        "options = {'botscore.scoring.model_dir': sys.argv[1],\n"
        "           'botscore.scoring.model_threads': 1}\n"
        "start(ClassifierBolt, options, pytest.MonkeyPatch())\n"
        "pools = [p for p in threadpool_info() if p['user_api'] == 'openmp']\n"
        "print(json.dumps([p['num_threads'] for p in pools]))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{project_root / 'src'}:{project_root}"}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + script, str(small_model_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    threads = json.loads(done.stdout.splitlines()[-1])
    assert threads and set(threads) == {1}, done.stdout


# --- shadow scoring ----------------------------------------------------------------------


def _challenged_bolt(watching_bolt, release_store, small_model_dir, tmp_path, **changes):
    """A bolt whose challenger is a variant of its model (other thresholds by default)."""
    changes = changes or {"thresholds": {"challenge": 0.05, "block": 0.2}}
    release_store.publish(
        _release(small_model_dir, tmp_path, "shadow-1", **changes), slot=Slot.SHADOW
    )
    component, link = watching_bolt()
    component.metrics = RecordingMetrics(Component.CLASSIFIER)
    return component, link


def test_a_challenger_scores_each_batch_on_the_shadow_stream_and_the_champion_is_unchanged(
    watching_bolt, release_store, small_model_dir, tmp_path
):
    batch = _batch(small_model_dir, 7)
    plain, plain_link = watching_bolt()
    plain.process(storm_tuple("t", batch.to_values()))
    component, link = _challenged_bolt(watching_bolt, release_store, small_model_dir, tmp_path)
    component.process(storm_tuple("t", batch.to_values()))

    champion, shadow, ack = link.messages()
    assert champion == plain_link.messages()[0]  # same values, same (default) stream
    assert (shadow["command"], shadow["stream"], shadow["anchors"]) == ("emit", "shadow", ["t"])
    assert (ack["command"], ack["id"]) == ("ack", "t")
    champion_scores = ScoreBatch.from_values(champion["tuple"])
    shadow_scores = ScoreBatch.from_values(shadow["tuple"])
    assert (shadow_scores.model_name, shadow_scores.model_version) == ("baseline", "shadow-1")
    assert shadow_scores.scores == champion_scores.scores  # the same pickle
    assert shadow_scores.decisions == [
        _decision(s, {"challenge": 0.05, "block": 0.2}) for s in shadow_scores.scores
    ]
    assert shadow_scores.decisions != champion_scores.decisions
    assert (shadow_scores.offsets, shadow_scores.user_ids) == (batch.offsets, batch.user_ids)
    assert shadow_scores.scored_time_ms == champion_scores.scored_time_ms
    assert component.metrics.counted_by("shadow_scored", "challenger") == {"baseline:shadow-1": 7}
    assert component.metrics.counted("scored") == 7  # the champion's count alone


def test_a_challenger_that_raises_costs_only_its_own_scores(
    watching_bolt, release_store, small_model_dir, tmp_path, caplog
):
    component, link = _challenged_bolt(watching_bolt, release_store, small_model_dir, tmp_path)
    component.challenger = dataclasses.replace(component.challenger, estimator=_BrokenEstimator())
    component.process(storm_tuple("t", _batch(small_model_dir, 4).to_values()))
    assert link.commands() == [("emit", None), ("ack", "t")]
    assert "stream" not in link.emitted()[0]  # the champion's, on the default stream
    assert component.metrics.counted("shadow_failed") == 4
    assert "challenger baseline/shadow-1 cannot score tuple t" in caplog.text


def test_a_refused_challenger_leaves_shadow_scoring_as_it_was(
    watching_bolt, release_store, small_model_dir, tmp_path, caplog
):
    component, link = _challenged_bolt(watching_bolt, release_store, small_model_dir, tmp_path)
    bad = _release(small_model_dir, tmp_path, "shadow-2", sklearn_version="0.24.2")
    release_store.publish(bad, slot=Slot.SHADOW)
    component.poller.run_once()
    component.process(storm_tuple("t", _batch(small_model_dir, 3).to_values()))
    champion, shadow = (ScoreBatch.from_values(e["tuple"]) for e in link.emitted())
    assert champion.model_version == component.model.manifest.version
    assert shadow.model_version == "shadow-1"
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith(
        f"refused challenger {bad.id}, shadow scoring goes on with baseline/shadow-1: "
    )
    assert "0.24.2" in line
    assert component.metrics.counted("shadow_refused") == 1
    assert component.metrics.counted("model_refused") == 0


def test_shadow_scoring_stops_when_the_challenger_is_taken_away(
    watching_bolt, release_store, small_model_dir, tmp_path
):
    component, link = _challenged_bolt(watching_bolt, release_store, small_model_dir, tmp_path)
    release_store.shadow = None
    component.poller.run_once()
    component.process(storm_tuple("t", _batch(small_model_dir, 3).to_values()))
    assert link.commands() == [("emit", None), ("ack", "t")]
    assert component.challenger is None


def test_a_live_slot_emptied_under_a_published_model_is_logged_and_scoring_goes_on(
    watching_bolt, release_store, small_model_dir, tmp_path, caplog
):
    release_store.publish(_release(small_model_dir, tmp_path, "v7"))
    component, link = watching_bolt()
    published = release_store.live
    release_store.live, release_store.stored = None, {}  # Redis emptied
    component.poller.run_once()
    assert _scored_by(component, link, small_model_dir, "t1") == published
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith("no model is published as live any more (was Redis emptied?)")
    assert f"publish {published} again" in line
