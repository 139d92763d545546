"""The evaluation's figures against values computed by hand on a few rows."""

import numpy as np
import pytest

from botscore.errors import ModelError
from botscore.model.detection_metrics import (
    detection,
    share_at_or_above,
    threshold_for_human_rate,
)

# Four humans and three bots; one bot (0.35) scores below a human (0.4).
HUMANS = [0.1, 0.2, 0.3, 0.4]
BOTS = [0.35, 0.5, 0.9]
SCORES = np.array(HUMANS + BOTS)
IS_BOT = np.array([False] * 4 + [True] * 3)


def test_figures_of_a_few_rows():
    d = detection(SCORES, IS_BOT, challenge=0.5, block=0.9, human_rate=0.25)
    assert (d.bot_rows, d.human_rows) == (3, 4)
    # ROC AUC: of the 12 bot-human pairs, the bot scores higher in all but 0.35 < 0.4.
    assert d.roc_auc == pytest.approx(11 / 12)
    # Highest first: bot, bot, human, bot; precision at each bot 1, 1, 3/4.
    assert d.pr_auc == pytest.approx((1 + 1 + 3 / 4) / 3)
    assert d.bots_challenged == pytest.approx(2 / 3)  # 0.5 and 0.9: at or above counts
    assert d.bots_blocked == pytest.approx(1 / 3)
    # 25% of four humans: one may be challenged, so the threshold is just above 0.3.
    assert 0.3 < d.human_rate_threshold < 0.3 + 1e-12
    assert d.bots_at_human_rate == 1.0
    assert d.humans_challenged == 0.0
    assert d.humans_blocked == 0.0


def test_a_human_rate_that_allows_no_human_lies_above_the_highest_human():
    threshold = threshold_for_human_rate(np.array(HUMANS), 0.1)
    assert 0.4 < threshold < 0.4 + 1e-12
    assert share_at_or_above(np.array(BOTS), threshold) == pytest.approx(2 / 3)


def test_tied_human_scores_are_all_on_one_side_of_the_threshold():
    # Two of five may be challenged, but the second and third highest tie: only one can be.
    humans = np.array([0.9, 0.7, 0.7, 0.2, 0.1])
    threshold = threshold_for_human_rate(humans, 0.4)
    assert share_at_or_above(humans, threshold) == pytest.approx(1 / 5)
    assert 0.7 < threshold < 0.7 + 1e-12


def test_the_human_rate_is_counted_in_whole_rows():
    # 0.1% of 3000 rows is 3 rows, even though 0.001 * 3000 is 3.0000000000000004 in floats
    humans = np.arange(3000, dtype=np.float64) / 3000
    threshold = threshold_for_human_rate(humans, 0.001)
    assert share_at_or_above(humans, threshold) == pytest.approx(3 / 3000)
    # and 29% of 100 rows is 29, although 0.29 * 100 is 28.999999999999996
    hundred = np.arange(100, dtype=np.float64)
    assert share_at_or_above(hundred, threshold_for_human_rate(hundred, 0.29)) == 0.29


@pytest.mark.parametrize(
    ("scores", "is_bot", "message"),
    [
        (np.array(BOTS), np.array([True] * 3), "0 human rows"),
        (np.array(HUMANS), np.array([False] * 4), "0 bot"),
    ],
)
def test_rows_of_one_side_only_are_refused(scores, is_bot, message):
    with pytest.raises(ModelError, match=message):
        detection(scores, is_bot, 0.5, 0.9, 0.001)


def test_impossible_rates_and_empty_rows_are_refused():
    with pytest.raises(ModelError, match="within"):
        threshold_for_human_rate(np.array(HUMANS), 1.0)
    with pytest.raises(ModelError, match="no human rows"):
        threshold_for_human_rate(np.array([]), 0.01)
    with pytest.raises(ModelError, match="no rows"):
        share_at_or_above(np.array([]), 0.5)
