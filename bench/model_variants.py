"""The shipped model's recipe beside the alternatives evaluated and not taken, per visitor.

Prints figures only; no assertions; needs no services. Each candidate is fitted on the
training traffic (seed 7, wide mix), its thresholds chosen as ``botscore train`` chooses
them, and it is judged on held-out hours of both mixes (seeds 101 and 102):

- ``block on calibration humans only``: ``fit_classifier``'s parameters, both thresholds
  on calibration seeds 8-10 (version 5's recipe);
- ``one block threshold``: the same model, its block threshold also above every human of
  two 12,000-user hours (seeds 11 and 12, ``BLOCK_CALIBRATION_SEEDS``): a human above the
  threshold is rarer the more humans chose it, and bots wait for a higher score (version 6);
- ``shipped``: as that, with a block threshold of its own for a user's first row
  (``EARLY_BLOCK_STAGES``), chosen on the humans' first rows alone;
- ``stages 1, 2 and 3``: the second and third rows get thresholds of their own too;
- ``monotone + L2``: scores that never fall as a bot-like feature rises (``MONOTONE``),
  L2 regularisation 10 and leaves of at least 100 rows, thresholds on seeds 8-10.

About 15 minutes on 2 cores, most of it simulating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from botscore.model.features import CATALOG
from botscore.model.registry import Thresholds
from botscore.model.training import (
    BLOCK_CALIBRATION_SCALE,
    BLOCK_CALIBRATION_SEEDS,
    CALIBRATION_SEEDS,
    EARLY_BLOCK_STAGES,
    TRAINING_TRAFFIC,
    Simulated,
    bot_scores,
    fit_classifier,
    simulate,
)
from botscore.model.visitor_policy import (
    VisitorRequests,
    choose_thresholds,
    choose_thresholds_for_each,
    combined,
    decisions,
    raise_blocks,
    summarize,
    visitor_requests,
)
from botscore.settings import EnforcementSettings

# +1: more of it never makes a user look less like a bot; -1: never more. Others are free.
MONOTONE = {
    "distinct_ips_4h": 1,
    "distinct_user_agents_4h": 1,
    "error_ratio_1h": 1,
    "head_ratio_1h": 1,
    "datacenter_ip_ratio_4h": 1,
    "interarrival_cv": -1,
    "js_check_ratio_1h": -1,
    "login_attempts_1h": 1,
    "declared_bot_ua_ratio_1h": 1,
    "tls_contradicts_ua_ratio_1h": 1,
}
REGULARISED: dict[str, Any] = {
    "monotonic_cst": [MONOTONE.get(name, 0) for name in CATALOG],
    "l2_regularization": 10.0,
    "min_samples_leaf": 100,
}
HELD_OUT_SEEDS = (101, 102)
KINDS_SHOWN = ("crawler", "scraper", "spoofer", "credential_stuffer", "stealth")


def judged(runs: Sequence[Simulated], model: Any) -> VisitorRequests:
    parts = []
    for run in runs:
        x, _, _ = run.rows()
        scores = bot_scores(model, x)
        parts.append(visitor_requests(run.logs, run.snapshots, scores, run.kind_of, run.bot_kinds))
    return combined(parts)


def highest_humans(label: str, runs: Sequence[Simulated], model: Any) -> None:
    """Each run's highest-scoring human row: its score, kind and requests in the last hour."""
    column = CATALOG.index("requests_1h")
    for seed, run in zip(label.split(","), runs, strict=True):
        x, y, kinds = run.rows()
        scores = bot_scores(model, x)
        humans = np.flatnonzero(y == 0)
        top = humans[np.argmax(scores[humans])]
        print(
            f"  highest human, seed {seed}: {scores[top]:.5f}, {kinds[top]}, "
            f"{x[top, column]:.0f} requests in the last hour"
        )


def report(name: str, model: Any, thresholds: Thresholds, held_out: dict[str, Any]) -> None:
    enforcement = EnforcementSettings()
    early = "".join(
        f", {e.block:.6f} up to {e.max_requests_1h} requests" for e in thresholds.early_block
    )
    print(f"{name}: challenge {thresholds.challenge:.6f}, block {thresholds.block:.6f}{early}")
    for mix, runs in held_out.items():
        requests = judged(runs, model)
        decided = decisions(requests, thresholds, enforcement)
        print(f"  {mix}: {summarize(requests, decided).text()}")
        within = ", ".join(
            f"{kind} {summarize(requests, decided, kind).bots_blocked_within_10s:.0%}"
            for kind in KINDS_SHOWN
        )
        print(f"    within 10 s: {within}")


def main() -> None:
    enforcement = EnforcementSettings()
    print("simulating: training, calibration, held-out and two 12,000-user hours")
    x, y, _ = simulate(TRAINING_TRAFFIC).rows()
    calibration = [simulate(replace(TRAINING_TRAFFIC, seed=s)) for s in CALIBRATION_SEEDS]
    big = [
        simulate(
            replace(
                TRAINING_TRAFFIC,
                seed=s,
                users=TRAINING_TRAFFIC.users * BLOCK_CALIBRATION_SCALE,
                rate=TRAINING_TRAFFIC.rate * BLOCK_CALIBRATION_SCALE,
            )
        )
        for s in BLOCK_CALIBRATION_SEEDS
    ]
    held_out = {
        mix: [simulate(replace(TRAINING_TRAFFIC, seed=s, mix=mix)) for s in HELD_OUT_SEEDS]
        for mix in ("wide", "classic")
    }

    shipped = fit_classifier(x, y, TRAINING_TRAFFIC.seed)
    chosen = choose_thresholds_for_each([judged([r], shipped) for r in calibration], enforcement)
    report("block on calibration humans only", shipped, chosen, held_out)
    highest_humans(",".join(map(str, CALIBRATION_SEEDS)), calibration, shipped)
    for mix, runs in held_out.items():
        highest_humans(",".join(f"{s} {mix}" for s in HELD_OUT_SEEDS), runs, shipped)
    calibration_requests = [judged([r], shipped) for r in calibration]
    big_requests = [judged([r], shipped) for r in big]
    humans = sum(int((~r.is_bot).sum()) for r in big_requests)
    for label, stages in (
        ("one block threshold", ()),
        ("shipped: the first row's own", EARLY_BLOCK_STAGES),
        ("stages 1, 2 and 3", (1, 2, 3)),
    ):
        each = choose_thresholds_for_each(calibration_requests, enforcement, early_stages=stages)
        larger = [choose_thresholds(r, enforcement, 0, 0, stages) for r in big_requests]
        thresholds = raise_blocks(each, larger)
        report(f"{label}, block also on {humans:,} more humans", shipped, thresholds, held_out)

    regularised = fit_classifier(x, y, TRAINING_TRAFFIC.seed, **REGULARISED)
    report(
        "monotone + L2",
        regularised,
        choose_thresholds_for_each([judged([r], regularised) for r in calibration], enforcement),
        held_out,
    )


if __name__ == "__main__":
    main()
