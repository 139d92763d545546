"""Champion against challenger: joining by scored message, agreement, quantiles, kinds."""

import pytest

from botscore.model.shadow_report import QUANTILES, compare, join, render
from botscore.wire.records import ScoreRecord, SourceRef


def score(offset, value, decision, *, version="2", partition=0, user=None, scored_ms=1000):
    return ScoreRecord(
        user_id=user or f"u{offset}",
        score=value,
        decision=decision,
        model_name="m",
        model_version=version,
        feature_time_ms=500,
        scored_time_ms=scored_ms,
        source=SourceRef("features", partition, offset),
    )


def test_scores_pair_by_the_message_they_scored_not_by_order_or_user():
    champion = [score(1, 0.1, "allow"), score(2, 0.2, "allow"), score(1, 0.3, "allow", partition=1)]
    challenger = [
        score(1, 0.9, "block", version="3", partition=1),
        score(1, 0.8, "block", version="3"),
        score(7, 0.5, "challenge", version="3"),
    ]
    joined = join(champion, challenger)
    assert [(p.champion.score, p.challenger.score) for p in joined.pairs] == [
        (0.3, 0.9),
        (0.1, 0.8),
    ]
    assert (joined.champion_only, joined.challenger_only) == (1, 1)


def test_a_replayed_score_counts_once_the_last_scored_one():
    champion = [score(1, 0.1, "allow", scored_ms=1), score(1, 0.95, "block", scored_ms=2)]
    challenger = [score(1, 0.2, "allow", version="3")] * 3
    c = compare(champion, challenger)
    assert (c.joined, c.agreed, c.champion_only, c.challenger_only) == (1, 0, 0, 0)
    assert c.transitions == {("block", "allow"): 1}


def test_agreement_transitions_and_quantiles():
    champion = [score(i, i / 100, "allow" if i < 50 else "block") for i in range(100)]
    # The challenger challenges 40..49 and blocks from 60 on: 20 decisions change.
    challenger = [
        score(
            i,
            i / 100 + 0.005,
            "allow" if i < 40 else "challenge" if i < 60 else "block",
            version="3",
        )
        for i in range(100)
    ]
    c = compare(champion, challenger)
    assert (c.joined, c.agreed) == (100, 80)
    assert c.transitions == {
        ("allow", "allow"): 40,
        ("allow", "challenge"): 10,
        ("block", "challenge"): 10,
        ("block", "block"): 40,
    }
    assert (c.champion_models, c.challenger_models) == (("m/2",), ("m/3",))
    assert len(c.champion_quantiles) == len(QUANTILES)
    assert c.champion_quantiles[1] == pytest.approx(0.495)  # the median of 0.00 .. 0.99
    assert c.challenger_quantiles[1] == pytest.approx(0.5)
    assert c.champion_quantiles[-1] == pytest.approx(0.9801)
    assert c.by_kind == ()


def test_per_kind_with_labels_and_the_unlabelled_apart():
    champion = [
        score(0, 0.9, "block", user="bot-1"),
        score(1, 0.6, "challenge", user="bot-1"),
        score(2, 0.1, "allow", user="human-1"),
        score(3, 0.1, "allow", user="stranger"),
    ]
    challenger = [
        score(0, 0.9, "block", user="bot-1", version="3"),
        score(1, 0.6, "block", user="bot-1", version="3"),
        score(2, 0.6, "challenge", user="human-1", version="3"),
        score(3, 0.1, "allow", user="stranger", version="3"),
    ]
    labels = {"bot-1": ("scraper", True), "human-1": ("human", False)}
    kinds = {k.kind: k for k in compare(champion, challenger, labels).by_kind}
    assert list(kinds) == ["(unlabelled)", "human", "scraper"]
    scraper = kinds["scraper"]
    assert (scraper.messages, scraper.agreed) == (2, 1)
    assert scraper.champion == {"block": 1, "challenge": 1}
    assert scraper.challenger == {"block": 2}
    assert (kinds["human"].agreed, kinds["human"].challenger) == (0, {"challenge": 1})
    assert kinds["(unlabelled)"].messages == 1


def test_the_report_names_the_models_counts_and_changed_decisions():
    champion = [score(i, 0.1 * i, "allow" if i < 5 else "block", user=f"b{i}") for i in range(10)]
    challenger = [
        score(i, 0.1 * i, "allow" if i < 3 else "block", user=f"b{i}", version="3")
        for i in range(10)
    ]
    text = render(compare(champion, challenger[:8], {f"b{i}": ("bot", True) for i in range(10)}))
    lines = text.splitlines()
    assert lines[0] == "champion m/2; challenger m/3"
    assert lines[1] == (
        "joined 8 messages scored by both (only the champion's: 2, only the challenger's: 0)"
    )
    assert lines[2] == "decisions agree: 6 of 8 (75.0%)"
    assert lines[4].split() == ["score", "quantiles", "p10", "p50", "p90", "p99"]
    transitions = [line.split() for line in lines if "->" in line][1:]
    assert transitions == [
        ["allow", "->", "allow", "3", "(37.5%)"],
        ["allow", "->", "block", "2", "(25.0%)", "changed"],
        ["block", "->", "block", "3", "(37.5%)"],
    ]
    [bots] = [line.split() for line in lines if line.startswith("  bot ")]
    assert bots == ["bot", "8", "75.0%", "0.0%", "/", "37.5%", "0.0%", "/", "62.5%"]


def test_nothing_joined_says_so():
    text = render(compare([score(1, 0.1, "allow")], []))
    assert text.startswith("no message scored by both models (champion only: 1, ")
    assert "botscore models shadow NAME/VERSION" in text
