"""The enforcement loop's pure parts: which scores the edge can act on, and for how long.

The merge itself runs as a Lua script inside Redis; tests/integration/test_enforcement.py
drives it against the real server.
"""

import pytest

from botscore.enforcement.decisions import decision_key, parse_score, ttl_ms
from botscore.errors import InvalidMessage
from botscore.settings import EnforcementSettings
from botscore.v1.threat_score_pb2 import ThreatScore
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreRecord, SourceRef

SCORED_MS = 1_790_000_000_000


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


@pytest.mark.parametrize("decision", ["allow", "challenge", "block"])
def test_a_score_round_trips(decision):
    record = _score(decision=decision)
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


def test_each_decision_is_kept_for_its_own_ttl():
    settings = EnforcementSettings(block_ttl_s=600, challenge_ttl_s=300)
    assert ttl_ms("block", settings) == 600_000
    assert ttl_ms("challenge", settings) == 300_000
    assert ttl_ms("allow", settings) == 0


def test_decision_keys_are_per_user_under_the_edge_prefix():
    assert decision_key("c-00ff") == "bs:edge:decision:c-00ff"
