import random

import numpy as np
import pytest
from scipy.stats import beta

from botscore.aggregation.offline import FeatureSnapshot
from botscore.errors import ModelError
from botscore.model.registry import EarlyBlock, Thresholds
from botscore.model.visitor_policy import (
    ALLOW,
    BLOCK,
    CHALLENGE,
    VisitorRequests,
    allowed_challenged,
    choose_thresholds,
    choose_thresholds_for_each,
    combined,
    decisions,
    highest,
    raise_blocks,
    summarize,
    visitor_requests,
)
from botscore.settings import EnforcementSettings
from botscore.simulator.visits import Visit, summarize_visits
from botscore.v1.web_log_pb2 import WebLog

T0 = 1_767_225_600_000
TTLS = EnforcementSettings(block_ttl_s=60, challenge_ttl_s=30)
KINDS = {"h1": "human", "h2": "human", "b1": "scraper"}
BOTS = frozenset({"scraper"})


def log(user: str, s: float) -> WebLog:
    return WebLog(user_id=user, time_unix_ms=T0 + int(s * 1000))


def snap(user: str, s: float) -> FeatureSnapshot:
    return FeatureSnapshot(user, T0 + int(s * 1000), {})


def test_a_score_is_in_force_from_its_feature_time_plus_the_latency_until_a_newer_one():
    logs = [log("b1", t) for t in (0, 1, 2.9, 3, 4, 9)] + [log("h1", 5)]
    snaps = [snap("b1", 0), snap("b1", 4)]
    requests = visitor_requests(logs, snaps, np.array([0.7, 0.2]), KINDS, BOTS, latency_s=3)
    b1 = requests.user == 0  # users are indexed in sorted order: b1, h1
    np.testing.assert_array_equal(requests.score[b1], [np.nan, np.nan, np.nan, 0.7, 0.7, 0.2])
    np.testing.assert_array_equal(requests.age_s[b1][3:], [3, 4, 5])
    assert np.isnan(requests.score[~b1]).all()
    np.testing.assert_array_equal(requests.is_bot, [True, False])
    np.testing.assert_array_equal(requests.kinds, ["scraper", "human"])


def test_decisions_follow_the_thresholds_and_lapse_after_their_ttl():
    logs = [log("h1", t) for t in (0, 10, 29, 31, 59, 61)]
    thresholds = Thresholds(challenge=0.5, block=0.9)
    for value, lasting in ((0.6, CHALLENGE), (0.95, BLOCK)):
        requests = visitor_requests(logs, [snap("h1", 0)], np.array([value]), KINDS, BOTS, 0)
        expected = [
            lasting if t < (30 if lasting == CHALLENGE else 60) else ALLOW
            for t in (0, 10, 29, 31, 59, 61)
        ]
        np.testing.assert_array_equal(decisions(requests, thresholds, TTLS), expected)
    requests = visitor_requests(logs, [snap("h1", 0)], np.array([0.49]), KINDS, BOTS, 0)
    assert (decisions(requests, thresholds, TTLS) == ALLOW).all()


def test_the_summary_equals_the_live_simulators_over_the_same_decisions():
    rng = random.Random(3)
    users = [f"u{i}" for i in range(40)]
    kinds = {u: ("scraper" if i % 3 == 0 else "human") for i, u in enumerate(users)}
    logs = sorted(
        (log(u, rng.uniform(0, 300)) for u in users for _ in range(rng.randint(1, 30))),
        key=lambda w: w.time_unix_ms,
    )
    snaps = [snap(w.user_id, (w.time_unix_ms - T0) / 1000) for w in logs[::3]]
    scores = np.array([rng.random() for _ in snaps])
    requests = visitor_requests(logs, snaps, scores, kinds, BOTS, latency_s=2)
    decided = decisions(requests, Thresholds(0.6, 0.85), TTLS)

    visits: dict[str, Visit] = {}
    names = ["allow", "challenge", "block"]
    start_ms = logs[0].time_unix_ms
    for w, u, d in zip(logs, requests.user, decided, strict=True):
        t = (w.time_unix_ms - start_ms) / 1000
        visit = visits.setdefault(str(u), Visit(bool(requests.is_bot[u]), t, requests.kinds[u]))
        visit.record(t, names[d])
    assert summarize(requests, decided) == summarize_visits(visits)
    for kind in ("scraper", "human"):
        assert summarize(requests, decided, kind) == summarize_visits(visits, kind=kind)


def test_chosen_thresholds_block_no_human_and_challenge_the_target_share_at_most():
    rng = np.random.default_rng(5)
    users = [f"h{i:03d}" for i in range(200)] + [f"b{i:03d}" for i in range(50)]
    kinds = {u: ("human" if u[0] == "h" else "scraper") for u in users}
    logs = [log(u, t) for t in range(0, 100, 5) for u in users]
    snaps = [snap(u, t) for t in range(0, 100, 10) for u in users]
    scores = np.array([rng.beta(1, 30) if s.user_id[0] == "h" else rng.beta(8, 1) for s in snaps])
    requests = visitor_requests(logs, snaps, scores, kinds, BOTS, latency_s=1)
    ttls = EnforcementSettings(block_ttl_s=600, challenge_ttl_s=300)
    chosen = choose_thresholds(requests, ttls, humans_challenged=0.02, confidence=0)
    figures = summarize(requests, decisions(requests, chosen, ttls))
    assert figures.humans_blocked == 0
    assert figures.humans_challenged == pytest.approx(4 / 200)
    assert figures.bots_blocked > 0.5
    # The lowest such thresholds: any lower block threshold blocks a human, any lower
    # challenge threshold challenges one human more.
    lower_block = Thresholds(chosen.challenge, float(np.nextafter(chosen.block, 0)))
    assert summarize(requests, decisions(requests, lower_block, ttls)).humans_blocked > 0
    lower = Thresholds(float(np.nextafter(chosen.challenge, 0)), chosen.block)
    assert summarize(requests, decisions(requests, lower, ttls)).humans_challenged > 0.02


def staged_snap(user: str, s: float, requests_1h: int) -> FeatureSnapshot:
    return FeatureSnapshot(user, T0 + int(s * 1000), {"requests_1h": float(requests_1h)})


def test_early_stages_get_block_thresholds_of_their_own_from_the_humans_rows_in_them():
    """Humans' first rows score up to 0.6, later ones up to 0.95: a bot's first row at 0.8 is
    blocked under the early stage, and no human is, whichever row of theirs is in force."""
    kinds = {"h1": "human", "h2": "human", "b1": "scraper", "b2": "scraper"}
    logs = [log(u, t) for u in kinds for t in range(0, 60, 2)]
    snaps, scores = [], []
    for user, first, later in (("h1", 0.6, 0.95), ("h2", 0.3, 0.5), ("b1", 0.8, 0.9)):
        snaps += [staged_snap(user, 0, 1), staged_snap(user, 10, 5)]
        scores += [first, later]
    snaps.append(staged_snap("b2", 0, 2))  # a row past the first stage
    scores.append(0.8)
    requests = visitor_requests(logs, snaps, np.array(scores), kinds, BOTS, latency_s=1)
    ttls = EnforcementSettings(block_ttl_s=600, challenge_ttl_s=300)
    chosen = choose_thresholds(requests, ttls, 0.5, confidence=0, early_stages=(1,))
    assert chosen.block == float(np.nextafter(0.95, 1))
    assert chosen.early_block == (EarlyBlock(1, float(np.nextafter(0.6, 1))),)
    decided = decisions(requests, chosen, ttls)
    # Users are indexed in sorted order: b1, b2, h1, h2.
    assert [BLOCK in decided[requests.user == u] for u in range(4)] == [True, False, False, False]
    # The same rows judged with one block threshold block no bot at all.
    single = choose_thresholds(requests, ttls, 0.5, confidence=0)
    assert single.early_block == () and single.block == chosen.block
    assert not (decisions(requests, single, ttls) == BLOCK).any()
    # A stage no calibration human reached gets the general threshold.
    unseen = choose_thresholds(requests, ttls, 0.5, confidence=0, early_stages=(1, 3))
    assert unseen.early_block[1] == EarlyBlock(3, chosen.block)


def test_thresholds_of_several_populations_merge_stage_by_stage():
    a = Thresholds(0.5, 0.9, (EarlyBlock(1, 0.7),))
    b = Thresholds(0.6, 0.8, (EarlyBlock(1, 0.75),))
    assert highest([a, b]) == Thresholds(0.6, 0.9, (EarlyBlock(1, 0.75),))
    with pytest.raises(ModelError, match="different early stages"):
        highest([a, Thresholds(0.5, 0.9)])


def test_the_margin_allows_as_many_humans_challenged_as_the_bound_keeps_under_the_target():
    # Clopper-Pearson, one-sided: none of 598 shows at most 0.5% with 95% confidence
    # (1 - 0.05 ** (1 / 598) < 0.005), none of 597 does not.
    assert allowed_challenged(598, 0.005) == 0
    assert allowed_challenged(597, 0.005) == -1
    for humans in (1000, 2000, 6000, 20000):
        k = allowed_challenged(humans, 0.005)
        assert 0 <= k < 0.005 * humans
        assert beta.ppf(0.95, k + 1, humans - k) <= 0.005 < beta.ppf(0.95, k + 2, humans - k - 1)
    # More calibration humans, a smaller margin.
    shares = [allowed_challenged(n, 0.005) / n for n in (2000, 6000, 20000)]
    assert shares == sorted(shares) and shares[-1] > 0.004
    assert allowed_challenged(0, 0.005) == -1
    assert allowed_challenged(1000, 0.005, confidence=0.99) < allowed_challenged(1000, 0.005)


def test_with_confidence_the_thresholds_challenge_fewer_humans_than_the_target():
    rng = np.random.default_rng(7)
    users = [f"h{i:04d}" for i in range(2000)] + [f"b{i:03d}" for i in range(100)]
    kinds = {u: ("human" if u[0] == "h" else "scraper") for u in users}
    logs = [log(u, t) for t in range(0, 40, 10) for u in users]
    snaps = [snap(u, t) for t in range(0, 40, 20) for u in users]
    scores = np.array([rng.beta(1, 30) if s.user_id[0] == "h" else rng.beta(8, 1) for s in snaps])
    requests = visitor_requests(logs, snaps, scores, kinds, BOTS, latency_s=1)
    ttls = EnforcementSettings(block_ttl_s=600, challenge_ttl_s=300)
    sure = choose_thresholds(requests, ttls, humans_challenged=0.01)
    as_seen = choose_thresholds(requests, ttls, humans_challenged=0.01, confidence=0)
    challenged = summarize(requests, decisions(requests, sure, ttls)).humans_challenged
    assert challenged * 2000 == allowed_challenged(2000, 0.01) < 20
    assert summarize(requests, decisions(requests, as_seen, ttls)).humans_challenged == 0.01
    assert sure.challenge > as_seen.challenge and sure.block == as_seen.block
    with pytest.raises(
        ModelError,
        match=r"^2000 calibration humans cannot show that at most 0\.10% are challenged with "
        r"95% confidence: simulate more of them$",
    ):
        choose_thresholds(requests, ttls, humans_challenged=0.001)
    with pytest.raises(ModelError, match=r"confidence must be in \[0, 1\)"):
        choose_thresholds(requests, ttls, confidence=1.0)


def test_thresholds_for_each_population_hold_in_the_one_that_needs_the_highest():
    rng = np.random.default_rng(11)

    def population(spread: float) -> VisitorRequests:
        users = [f"h{i:04d}" for i in range(1000)] + [f"b{i:03d}" for i in range(50)]
        kinds = {u: ("human" if u[0] == "h" else "scraper") for u in users}
        snaps = [snap(u, t) for t in (0, 20) for u in users]
        scores = np.array(
            [rng.beta(1, spread) if s.user_id[0] == "h" else rng.beta(8, 1) for s in snaps]
        )
        return visitor_requests(
            [log(u, t) for t in (0, 10, 30) for u in users], snaps, scores, kinds, BOTS, 1
        )

    calm, wild = population(60), population(10)
    ttls = EnforcementSettings(block_ttl_s=600, challenge_ttl_s=300)
    both = choose_thresholds_for_each([calm, wild], ttls, humans_challenged=0.01)
    assert both == choose_thresholds(wild, ttls, humans_challenged=0.01)
    assert both.challenge > choose_thresholds(combined([calm, wild]), ttls, 0.01).challenge
    for part in (calm, wild):
        share = summarize(part, decisions(part, both, ttls)).humans_challenged
        assert share * 1000 <= allowed_challenged(1000, 0.01)
    with pytest.raises(ModelError, match="no calibration population"):
        choose_thresholds_for_each([], ttls)


def test_bad_inputs_are_refused():
    with pytest.raises(ModelError, match="2 scores for 1 snapshots"):
        visitor_requests([log("h1", 0)], [snap("h1", 0)], np.array([0.1, 0.2]), KINDS, BOTS)
    with pytest.raises(ModelError, match="no requests"):
        visitor_requests([], [], np.array([]), KINDS, BOTS)
    unscored = visitor_requests([log("h1", 0)], [], np.array([]), KINDS, BOTS)
    with pytest.raises(ModelError, match="no human request has a score"):
        choose_thresholds(unscored, TTLS)
    with pytest.raises(ModelError, match=r"in \[0, 1\)"):
        choose_thresholds(unscored, TTLS, humans_challenged=1.0)


def test_combined_simulations_keep_their_users_apart():
    one = visitor_requests(
        [log("h1", 0), log("b1", 1)], [snap("b1", 1)], np.array([0.95]), KINDS, BOTS, 0
    )
    two = visitor_requests([log("h1", 5)], [snap("h1", 5)], np.array([0.95]), KINDS, BOTS, 0)
    both = combined([one, two])
    np.testing.assert_array_equal(both.user, [1, 0, 2])
    np.testing.assert_array_equal(both.kinds, ["scraper", "human", "human"])
    figures = summarize(both, decisions(both, Thresholds(0.5, 0.9), TTLS))
    assert (figures.humans, figures.humans_blocked, figures.bots, figures.bots_blocked) == (
        2,
        0.5,
        1,
        1.0,
    )
    with pytest.raises(ModelError, match="no requests to combine"):
        combined([])


def test_the_shares_the_readme_gives_for_its_calibration_hours():
    """README: at most 4 of 2,040 humans challenged, 21 of 6,113."""
    assert allowed_challenged(2040, 0.005) == 4
    assert allowed_challenged(6113, 0.005) == 21


def test_raised_blocks_keep_the_challenge_threshold_chosen_with_them():
    chosen = Thresholds(challenge=0.5, block=0.9)
    larger = [Thresholds(challenge=0.8, block=0.95), Thresholds(challenge=0.3, block=0.92)]
    assert raise_blocks(chosen, larger) == Thresholds(challenge=0.5, block=0.95)


def test_a_negative_latency_is_refused_with_its_value():
    with pytest.raises(ModelError, match=r"latency must be >= 0 s, got -1"):
        visitor_requests([log("h1", 0)], [], np.array([]), KINDS, BOTS, latency_s=-1)


def test_a_decision_lapses_exactly_at_its_ttl():
    """A challenge held at 29 s is gone at 30 s, a block held at 59 s is gone at 60 s."""
    logs = [log("h1", t) for t in (0, 29, 30, 59, 60)]
    thresholds = Thresholds(challenge=0.5, block=0.9)
    for value, expected in (
        (0.6, [CHALLENGE, CHALLENGE, ALLOW, ALLOW, ALLOW]),
        (0.95, [BLOCK, BLOCK, BLOCK, BLOCK, ALLOW]),
    ):
        requests = visitor_requests(logs, [snap("h1", 0)], np.array([value]), KINDS, BOTS, 0)
        np.testing.assert_array_equal(decisions(requests, thresholds, TTLS), expected)


def test_a_lapsed_block_does_not_become_a_challenge_when_challenges_last_longer():
    """As at the edge: a block score asked for a block, and once that lapses, nothing holds."""
    ttls = EnforcementSettings(block_ttl_s=60, challenge_ttl_s=120)
    logs = [log("h1", t) for t in (0, 90)]
    requests = visitor_requests(logs, [snap("h1", 0)], np.array([0.9]), KINDS, BOTS, 0)
    decided = decisions(requests, Thresholds(challenge=0.5, block=0.9), ttls)
    np.testing.assert_array_equal(decided, [BLOCK, ALLOW])


def test_a_bot_could_be_blocked_within_10_s_when_its_second_request_came_by_then():
    """The same boundary as ``simulator.visits``: exactly 10 s is in time."""
    kinds = {"b1": "scraper", "b2": "scraper", "b3": "scraper"}
    logs = [log("b1", 0), log("b1", 10), log("b2", 0), log("b2", 10.5), log("b3", 0)]
    requests = visitor_requests(logs, [], np.array([]), kinds, BOTS)
    figures = summarize(requests, decisions(requests, Thresholds(0.5, 0.9), TTLS))
    assert figures.bots_blockable_within_10s == pytest.approx(1 / 3)


def test_combined_simulations_keep_each_rows_requests_in_the_last_hour():
    """Early block thresholds apply to the combined rows as to each simulation's own."""
    first = visitor_requests(
        [log("b1", 0), log("b1", 5)], [staged_snap("b1", 0, 1)], np.array([0.7]), KINDS, BOTS, 0
    )
    second = visitor_requests(
        [log("b1", 0), log("b1", 5)], [staged_snap("b1", 0, 9)], np.array([0.7]), KINDS, BOTS, 0
    )
    both = combined([first, second])
    np.testing.assert_array_equal(both.requests_1h, [1, 1, 9, 9])
    staged = Thresholds(0.5, 0.9, (EarlyBlock(1, 0.6),))
    np.testing.assert_array_equal(
        decisions(both, staged, TTLS), [BLOCK, BLOCK, CHALLENGE, CHALLENGE]
    )


def test_one_calibration_human_may_be_challenged_when_the_bound_equals_the_target():
    """Beta(1, 1)'s median is 0.5: 0 of 1 challenged shows at most 50% with 50% confidence."""
    assert allowed_challenged(1, 0.5, confidence=0.5) == 0
    assert allowed_challenged(1, 0.49, confidence=0.5) == -1


def test_scores_in_force_exactly_at_their_ttl_do_not_set_the_thresholds():
    """A block lapses at its TTL and a challenge at its own, so a human's score that old
    harms nobody and must not raise a threshold: only the scores still in force do."""
    ttls = EnforcementSettings(block_ttl_s=60, challenge_ttl_s=30)
    kinds = {"h1": "human", "h2": "human", "h3": "human"}
    logs = [log("h1", 0), log("h1", 61), log("h2", 0), log("h2", 31), log("h3", 0), log("h3", 6)]
    snaps = [snap("h1", 1), snap("h2", 1), snap("h3", 1)]
    # h1's 0.9 only at age 60 (block TTL), h2's 0.7 at age 30 (challenge TTL), h3's 0.2 at 5.
    requests = visitor_requests(logs, snaps, np.array([0.9, 0.7, 0.2]), kinds, BOTS, 0)
    chosen = choose_thresholds(requests, ttls, humans_challenged=0.0, confidence=0)
    assert chosen == Thresholds(
        challenge=float(np.nextafter(0.2, 1)), block=float(np.nextafter(0.7, 1))
    )


def test_a_target_of_no_human_challenged_challenges_none_of_them():
    rng = np.random.default_rng(13)
    users = [f"h{i:02d}" for i in range(50)]
    kinds = dict.fromkeys(users, "human")
    logs = [log(u, t) for t in (0, 10) for u in users]
    scores = rng.beta(1, 30, size=len(users))
    requests = visitor_requests(logs, [snap(u, 0) for u in users], scores, kinds, BOTS, 1)
    chosen = choose_thresholds(requests, TTLS, humans_challenged=0.0, confidence=0)
    assert summarize(requests, decisions(requests, chosen, TTLS)).humans_challenged == 0
    assert chosen.challenge == float(np.nextafter(scores.max(), 1))


def test_a_human_scoring_1_gets_the_highest_threshold_there_is():
    """No threshold can be above 1.0: the thresholds stay valid, though that human is blocked."""
    requests = visitor_requests([log("h1", 0)], [snap("h1", 0)], np.array([1.0]), KINDS, BOTS, 0)
    assert choose_thresholds(requests, TTLS, 0.5, confidence=0) == Thresholds(1.0, 1.0)


def test_with_no_human_past_the_last_stage_no_block_threshold_is_chosen():
    """The lowest block threshold that blocks no calibration human there would be 0, which
    blocks every visitor past the stage: refused, not written into a manifest."""
    kinds = {"h1": "human", "b1": "scraper"}
    logs = [log(u, t) for u in kinds for t in (0, 5)]
    snaps = [staged_snap("h1", 0, 1), staged_snap("b1", 0, 4)]
    requests = visitor_requests(logs, snaps, np.array([0.3, 0.1]), kinds, BOTS, 0)
    with pytest.raises(ModelError, match="past 1 requests in the last hour"):
        choose_thresholds(requests, TTLS, 0.5, confidence=0, early_stages=(1,))
    chosen = choose_thresholds(requests, TTLS, 0.5, confidence=0)
    assert chosen.block == float(np.nextafter(0.3, 1))


def test_with_no_human_score_in_force_no_block_threshold_is_chosen():
    """Every human score had lapsed when the human's next request came: nothing to go by."""
    kinds = {"h1": "human", "b1": "scraper"}
    lapsed = TTLS.block_ttl_s + 1
    logs = [log(u, t) for u in kinds for t in (0, lapsed)]
    snaps = [staged_snap("h1", 0, 1), staged_snap("b1", 0, 1)]
    requests = visitor_requests(logs, snaps, np.array([0.3, 0.1]), kinds, BOTS, latency_s=1)
    with pytest.raises(ModelError, match="no calibration human has a score in force to set"):
        choose_thresholds(requests, TTLS, 0.5, confidence=0)


def test_there_is_no_highest_of_no_thresholds():
    with pytest.raises(ModelError, match="no thresholds to take the highest of"):
        highest([])
