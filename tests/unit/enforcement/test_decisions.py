"""The enforcement merge's pure parts: which scores count, their place, lives and arguments.

The merge itself runs as a Lua script inside Redis; tests/integration/test_enforcement.py
drives it against the real server, with a property test over shuffled arrival orders. Here
``DecisionWriter`` and ``read_stats`` run against a fake client that records what they ask.
"""

from dataclasses import replace
from typing import Any

import pytest
import redis

from botscore.enforcement import decisions
from botscore.enforcement.decisions import (
    BLOCKED_USERS_KEY,
    CHALLENGED_USERS_KEY,
    FUTURE,
    GENERATION_KEY,
    MAX_LIFE_MS,
    MAX_SCRIPT_INT,
    SCORED_USERS_KEY,
    STALE,
    DecisionWriter,
    Written,
    decision_key,
    latest_key,
    parse_score,
    read_stats,
    score_effect,
    ttl_ms,
    untimely,
)
from botscore.errors import ConfigError, InvalidMessage
from botscore.settings import EnforcementSettings
from botscore.transport import redis_generation
from botscore.v1.threat_score_pb2 import ThreatScore
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreRecord, SourceRef

SCORED_MS = 1_790_000_000_000
NOW = SCORED_MS + 60
SETTINGS = EnforcementSettings(
    block_ttl_s=600, challenge_ttl_s=300, max_score_age_ms=1_800_000, max_clock_skew_ms=60_000
)
CLOCK_SKEW_MS = SETTINGS.max_clock_skew_ms


def _score(**changes) -> ScoreRecord:
    fields = {
        "user_id": "c-00ff",
        "score": 0.97,
        "decision": "block",
        "model_name": "baseline",
        "model_version": "2",
        "feature_time_ms": SCORED_MS - 40,
        "scored_time_ms": SCORED_MS,
        "source": SourceRef("user-features", 1, 7),
    }
    return ScoreRecord(**{**fields, **changes})


# ------------------------------------------------------------------ parsing --


@pytest.mark.parametrize("decision", ["allow", "challenge", "block"])
def test_a_score_round_trips(decision):
    record = _score(decision=decision)
    assert parse_score(encode_threat_score(record)) == record


def test_any_positive_scored_time_is_a_time():
    record = _score(scored_time_ms=1)
    assert parse_score(encode_threat_score(record)) == record


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(b"", "empty_payload", id="empty"),
        pytest.param(None, "empty_payload", id="none"),
        pytest.param(b"\xff\xff\xff\xff", "undecodable", id="garbage"),
        pytest.param(encode_threat_score(_score(user_id="")), "missing_user_id", id="no-user"),
        pytest.param(
            ThreatScore(user_id="c-1", scored_time_unix_ms=SCORED_MS).SerializeToString(),
            "unknown_decision",
            id="no-decision",
        ),
        pytest.param(
            ThreatScore(
                user_id="c-1", decision=7, scored_time_unix_ms=SCORED_MS
            ).SerializeToString(),
            "unknown_decision",
            id="future-decision",
        ),
        pytest.param(
            encode_threat_score(_score(scored_time_ms=0)), "missing_scored_time", id="no-time"
        ),
    ],
)
def test_scores_the_edge_cannot_act_on_are_rejected_with_a_reason(payload, reason):
    with pytest.raises(InvalidMessage) as caught:
        parse_score(payload)
    assert caught.value.reason == reason


# ---------------------------------------------------------- what counts when --


def test_each_decision_is_kept_for_its_own_ttl():
    assert ttl_ms("block", SETTINGS) == 600_000
    assert ttl_ms("challenge", SETTINGS) == 300_000
    assert ttl_ms("allow", SETTINGS) == 0


def test_keys_are_per_user_under_the_edge_prefix():
    assert decision_key("c-00ff") == "bs:edge:decision:c-00ff"
    assert latest_key("c-00ff") == "bs:edge:latest:c-00ff"


@pytest.mark.parametrize(
    ("feature_time_ms", "verdict"),
    [
        pytest.param(NOW - 7_200_000, STALE, id="two-hours-old"),
        pytest.param(NOW - 1_800_001, STALE, id="just-past-max-age"),
        pytest.param(NOW - 1_800_000, None, id="exactly-max-age"),
        pytest.param(0, STALE, id="no-feature-time"),
        pytest.param(NOW, None, id="now"),
        pytest.param(NOW + CLOCK_SKEW_MS, None, id="ahead-within-skew"),
        pytest.param(NOW + CLOCK_SKEW_MS + 1, FUTURE, id="ahead-past-skew"),
        pytest.param(2**63 - 1, FUTURE, id="int64-max"),
    ],
)
def test_a_score_counts_only_while_its_features_are_recent(feature_time_ms, verdict):
    assert untimely(feature_time_ms, NOW, SETTINGS) == verdict


def test_the_allowed_clock_skew_is_a_setting():
    """A sped-up simulation stamps features hours ahead; its enforcer must still apply them."""
    hours_ahead = NOW + 3 * 3_600_000
    assert untimely(hours_ahead, NOW, SETTINGS) == FUTURE
    assert untimely(hours_ahead, NOW, replace(SETTINGS, max_clock_skew_ms=4 * 3_600_000)) is None


@pytest.mark.parametrize(
    ("decision", "life_ms"), [("block", 600_000), ("challenge", 300_000), ("allow", 0)]
)
def test_a_decision_lives_from_its_feature_time_not_from_when_it_was_scored(decision, life_ms):
    feature_ms = NOW - 90_000
    late = _score(decision=decision, feature_time_ms=feature_ms, scored_time_ms=NOW)
    effect = score_effect(late, NOW, SETTINGS)
    assert effect.decision == decision
    assert effect.feature_time_ms == feature_ms
    assert effect.expires_at_ms == feature_ms + life_ms
    assert effect.now_ms == NOW


def test_the_latest_key_outlives_every_older_score_that_could_still_count():
    effect = score_effect(_score(feature_time_ms=NOW - 5), NOW, SETTINGS)
    # An older score is fresh at most max age after its (earlier) feature time.
    assert effect.remembered_until_ms == NOW - 5 + 1_800_000 + CLOCK_SKEW_MS


@pytest.mark.parametrize(
    ("source", "partition", "offset"),
    [
        pytest.param(SourceRef("f", 3, 99), 3, 99, id="kafka"),
        pytest.param(SourceRef("f", -1, -5), 0, 0, id="negative"),
        pytest.param(SourceRef("f", 2**31 - 1, 2**63 - 1), 2**31 - 1, MAX_SCRIPT_INT, id="huge"),
    ],
)
def test_the_source_breaks_ties_within_the_range_the_script_accepts(source, partition, offset):
    effect = score_effect(_score(source=source), NOW, SETTINGS)
    assert (effect.partition, effect.offset) == (partition, offset)


def test_script_arguments_are_in_the_order_the_script_reads_them():
    effect = score_effect(
        _score(decision="challenge", feature_time_ms=NOW - 10, source=SourceRef("f", 2, 41)),
        NOW,
        SETTINGS,
    )
    assert effect.script_args("c-1") == [
        "c-1",
        "challenge",
        NOW - 10,
        2,
        41,
        NOW - 10 + 300_000,
        NOW - 10 + 1_800_000 + CLOCK_SKEW_MS,
        NOW,
    ]


@pytest.mark.parametrize(
    ("now_ms", "feature_time_ms"),
    [
        pytest.param(1_000, -5, id="negative"),
        pytest.param(MAX_SCRIPT_INT, MAX_SCRIPT_INT, id="past-2**53"),
    ],
)
def test_arguments_the_script_would_refuse_are_refused_before_redis(now_ms, feature_time_ms):
    effect = score_effect(_score(feature_time_ms=feature_time_ms), now_ms, SETTINGS)
    with pytest.raises(ValueError, match="out of range"):
        effect.script_args("c-1")


def test_the_bounds_of_what_the_script_accepts_pass():
    top = MAX_SCRIPT_INT - 1_800_000 - CLOCK_SKEW_MS
    effect = score_effect(
        _score(decision="allow", feature_time_ms=top, source=SourceRef("f", 0, 0)), top, SETTINGS
    )
    assert effect.script_args("c-1")[3:] == [0, 0, top, MAX_SCRIPT_INT, top]


# ------------------------------------------------------------ Redis, faked --


class _FakePipeline:
    def __init__(self, transaction: bool, replies: list[Any]) -> None:
        self.transaction = transaction
        self.replies = replies
        self.queued: list[tuple[Any, ...]] = []
        self.executed = 0

    def pfcount(self, key: str) -> None:
        self.queued.append(("pfcount", key))

    def execute(self) -> list[Any]:
        self.executed += 1
        if isinstance(self.replies, Exception):
            raise self.replies
        return self.replies


class _FakeRedis:
    """Queues script calls on its pipelines and answers ``execute`` with ``replies``."""

    def __init__(self, replies: Any = ()) -> None:
        self.replies = replies if isinstance(replies, Exception) else list(replies)
        self.pipelines: list[_FakePipeline] = []
        self.scripts: list[str] = []

    def register_script(self, text: str):
        self.scripts.append(text)

        def call(keys: list[str], client: _FakePipeline, args: list[Any] = ()) -> None:
            client.queued.append(("script", keys, list(args)))

        return call

    def pipeline(self, transaction: bool) -> _FakePipeline:
        self.pipelines.append(_FakePipeline(transaction, self.replies))
        return self.pipelines[-1]


def test_a_batch_is_one_transaction_of_one_script_call_per_timely_score():
    client = _FakeRedis([b"g1", b"block", b"kept"])  # the decisions' generation
    writer = DecisionWriter(client, SETTINGS)
    batch = [
        _score(user_id="c-old", feature_time_ms=NOW - 7_200_000),
        _score(user_id="c-1", feature_time_ms=NOW - 10),
        _score(user_id="c-ahead", feature_time_ms=NOW + 86_400_000),
        _score(user_id="c-2", decision="challenge", feature_time_ms=NOW - 20),
    ]
    assert writer.write(batch, NOW) == Written([STALE, "block", FUTURE, "kept"], [])
    (pipe,) = client.pipelines
    assert pipe.transaction is True and pipe.executed == 1
    [(_, keys, [proposed])] = pipe.queued[:1]  # a new generation, should there be none
    assert keys == [GENERATION_KEY] and len(proposed) == 32
    assert pipe.queued[1:] == [
        (
            "script",
            [
                "bs:edge:decision:" + user,
                "bs:edge:latest:" + user,
                SCORED_USERS_KEY,
                BLOCKED_USERS_KEY,
                CHALLENGED_USERS_KEY,
            ],
            score_effect(score, NOW, SETTINGS).script_args(user),
        )
        for user, score in (("c-1", batch[1]), ("c-2", batch[3]))
    ]


def test_keys_the_script_replaced_come_back_with_the_outcome():
    replaced = [b"block", b"bs:edge:latest:c-1", b"bs:edge:scored_users"]
    writer = DecisionWriter(_FakeRedis([b"g1", replaced, b"kept"]), SETTINGS)
    batch = [_score(user_id="c-1", feature_time_ms=NOW - 10), _score(feature_time_ms=NOW - 5)]
    assert writer.write(batch, NOW) == Written(
        ["block", "kept"], ["bs:edge:latest:c-1", "bs:edge:scored_users"]
    )


def test_the_decisions_are_lost_when_their_generation_changes_after_it_was_seen():
    client = _FakeRedis([b"g1", b"block"])  # the first look: nothing to compare with
    writer = DecisionWriter(client, SETTINGS)
    timely = [_score(feature_time_ms=NOW - 10)]
    assert writer.write(timely, NOW).lost is False
    assert writer.write(timely, NOW).lost is False
    assert writer.write([_score(feature_time_ms=1)], NOW).lost is False  # nothing asked
    client.replies[0] = b"g2"  # set since by a batch that found none: Redis lost the rest
    assert writer.write(timely, NOW) == Written(["block"], [], lost=True)
    assert writer.write(timely, NOW).lost is False


class _Generation:
    """The generation key: ``value`` read alone; queued in a batch's pipeline, whose
    replies then say what the batch read."""

    def __init__(self, value: bytes) -> None:
        self.value = value

    def read(self, pipe: Any = None) -> bytes | None:
        if pipe is None:
            return self.value
        pipe.queued.append(("script", [GENERATION_KEY], []))
        return None


def test_a_generation_read_between_batches_is_what_the_next_batch_compares_with():
    client = _FakeRedis([b"g2", b"block"])
    writer = DecisionWriter(client, SETTINGS)
    assert writer.generation == ""
    writer._generation = _Generation(b"g2")
    assert writer.read_generation() == "g2" == writer.generation
    timely = [_score(feature_time_ms=NOW - 10)]
    assert writer.write(timely, NOW).lost is False


def test_a_change_found_between_batches_is_reported_by_the_next_batch():
    """A generation read for a new partition must not hide a loss from the others."""
    client = _FakeRedis([b"g1", b"block"])
    writer = DecisionWriter(client, SETTINGS)
    timely = [_score(feature_time_ms=NOW - 10)]
    writer.write(timely, NOW)
    writer._generation = _Generation(b"g2")
    assert writer.read_generation() == "g2"
    client.replies[0] = b"g2"
    assert writer.write(timely, NOW).lost is True
    assert writer.write(timely, NOW).lost is False


def test_a_batch_with_nothing_timely_never_reaches_redis():
    client = _FakeRedis(redis.ConnectionError("down"))
    writer = DecisionWriter(client, SETTINGS)
    assert writer.write([_score(feature_time_ms=1)], NOW) == Written([STALE], [])
    assert writer.write([], NOW) == Written([], [])
    assert all(pipe.executed == 0 for pipe in client.pipelines)


YEAR_S = MAX_LIFE_MS // 1000


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        (EnforcementSettings(block_ttl_s=YEAR_S + 1), "block_ttl_s"),
        (EnforcementSettings(challenge_ttl_s=YEAR_S + 1), "challenge_ttl_s"),
        (EnforcementSettings(challenge_ttl_s=-1), "challenge_ttl_s"),
        (EnforcementSettings(max_score_age_ms=MAX_LIFE_MS + 1), "max_score_age_ms"),
        (EnforcementSettings(max_score_age_ms=-1), "max_score_age_ms"),
        (EnforcementSettings(max_clock_skew_ms=MAX_LIFE_MS + 1), "max_clock_skew_ms"),
        (EnforcementSettings(max_clock_skew_ms=-1), "max_clock_skew_ms"),
    ],
)
def test_lives_that_could_overflow_the_script_are_refused_at_start(settings, name):
    with pytest.raises(ConfigError, match=f"enforcement.{name} must be between 0 and a year"):
        DecisionWriter(_FakeRedis(), settings)


@pytest.mark.parametrize(("life_s", "age_ms"), [(0, 0), (YEAR_S, MAX_LIFE_MS)])
def test_lives_from_none_to_a_year_are_accepted_and_the_merge_script_is_registered(life_s, age_ms):
    client = _FakeRedis()
    DecisionWriter(
        client,
        EnforcementSettings(block_ttl_s=life_s, challenge_ttl_s=life_s, max_score_age_ms=age_ms),
    )
    assert client.scripts == [decisions._APPLY_SCORE, redis_generation._GET_OR_SET]


def test_stats_are_the_three_user_counts_in_one_round_trip():
    client = _FakeRedis([40, 12, 9])
    assert read_stats(client) == {"users_scored": 40, "users_blocked": 12, "users_challenged": 9}
    (pipe,) = client.pipelines
    assert pipe.transaction is False
    assert pipe.queued == [
        ("pfcount", SCORED_USERS_KEY),
        ("pfcount", BLOCKED_USERS_KEY),
        ("pfcount", CHALLENGED_USERS_KEY),
    ]


def test_stats_are_none_while_redis_is_unreachable():
    assert read_stats(_FakeRedis(redis.ConnectionError("refused"))) is None
