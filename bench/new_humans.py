"""How often a model blocks or challenges a human it has never seen, over many new hours.

Prints figures only; no assertions; needs no services. The block threshold sits just above
the highest-scoring calibration human, so a new human passes it about once in
(calibration humans + 1), if the calibration hours are like the new ones: this counts it.
Each hour is the training traffic (3,000 users, 80 requests/s) from a seed no calibration
used, judged per visitor with the manifest's thresholds, as ``botscore evaluate`` does.
About 30 s per hour on 2 cores.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from botscore.model.registry import load_model
from botscore.model.training import TRAINING_TRAFFIC, simulate
from botscore.model.visitor_policy import decisions, summarize, visitor_requests
from botscore.settings import EnforcementSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/baseline")
    parser.add_argument("--mix", choices=("classic", "wide"), default="classic")
    parser.add_argument("--first-seed", type=int, default=301)
    parser.add_argument("--hours", type=int, default=20)
    args = parser.parse_args()

    model = load_model(args.model)
    thresholds = model.manifest.thresholds
    enforcement = EnforcementSettings()
    humans = blocked = challenged = 0
    for seed in range(args.first_seed, args.first_seed + args.hours):
        run = simulate(replace(TRAINING_TRAFFIC, seed=seed, mix=args.mix))
        x, y, _ = run.rows()
        scores = model.predict_scores(x)
        requests = visitor_requests(run.logs, run.snapshots, scores, run.kind_of, run.bot_kinds)
        summary = summarize(requests, decisions(requests, thresholds, enforcement))
        hour_blocked = round(summary.humans_blocked * summary.humans)
        hour_challenged = round(summary.humans_challenged * summary.humans)
        humans += summary.humans
        blocked += hour_blocked
        challenged += hour_challenged
        print(
            f"seed {seed} ({args.mix}): {summary.humans:,} humans, {hour_blocked} blocked, "
            f"{summary.humans_challenged:.2%} ever challenged; highest human row "
            f"{scores[np.flatnonzero(y == 0)].max():.6f}; bots blocked within 10 s "
            f"{summary.bots_blocked_within_10s:.1%}",
            flush=True,
        )
    print(
        f"{args.hours} hours, {humans:,} humans: {blocked} blocked (1 in {humans / blocked:,.0f})"
        if blocked
        else f"{args.hours} hours, {humans:,} humans: none blocked",
        f"; {challenged / humans:.2%} ever challenged; block threshold {thresholds.block:.6f}",
        sep="",
    )


if __name__ == "__main__":
    main()
