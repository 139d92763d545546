"""A deployment's size for a target load, from the figures the benches kept on this machine.

    PYTHONPATH=src python bench/sizing.py --users-per-minute 1000000 --requests-per-user 3

Each stage's capacity per core is its bench's whole-machine figure divided by the bench
machine's cores (the broker, Redis and the stage shared them: conservative for a stage
alone). A stage needs ``rate / (capacity per core x headroom)`` cores; Redis, one core per
primary, needs its CPU per request (or score) times the rate. Run ``make bench`` first (it
runs this after the benches whose figures it reads); a figure no bench kept is an error,
never a guess.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

from botscore.model.sample_users import sample_users
from botscore.simulator.population import build_population
from botscore.simulator.traffic import TrafficGenerator
from botscore.wire.codec import encode_threat_score, encode_user_features
from botscore.wire.records import ScoreRecord, SourceRef

# A sibling module: run as a script, this directory is on sys.path.
from figures import figures_file, latest_figures


@dataclass(frozen=True)
class Stage:
    name: str
    unit: str  # what its rate counts
    figure: str  # the bench figure of its whole-machine capacity, in units/s
    scales_by: str  # what one more core is


STAGES = (
    Stage("nginx's gate", "requests", "gate_requests_per_s", "gate process (one per core)"),
    Stage("log shipper", "requests", "shipper_lines_per_s", "shipper (one per access log)"),
    Stage("aggregation topology", "requests", "aggregation_web_logs_per_s", "Storm worker core"),
    Stage(
        "publishers",
        "scores",
        "publishing_users_per_s",
        "publisher (`aggregation.publishers`, at most `state_shards`)",
    ),
    Stage("scoring topology", "scores", "scoring_users_per_s", "Storm worker core"),
    Stage("enforcer", "scores", "enforcer_scores_per_s", "`botscore enforce` process"),
)
# Redis's CPU per unit of each rate, by what it serves: (what, rate, figure).
REDIS = {
    "the feature state": (
        ("requests", "feature_store_redis_cpu_us_per_request"),  # stored
        ("scores", "feature_store_redis_cpu_us_per_published_user"),  # read to publish
    ),
    "the decisions": (("scores", "enforcer_redis_cpu_us_per_score"),),
}
# What may run on a Redis Cluster (``aggregation.state_cluster_nodes``): the feature state.
SHARDED = "the feature state"
# From ``state_cluster.py``: a cluster's Redis CPU against one Redis's for the same
# requests, and the busiest of three primaries' share of it.
CLUSTER_COST = "state_cluster_cpu_vs_one_redis"
BUSIEST_SHARE = "state_cluster_busiest_primary_share"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users-per-minute", type=float, default=1_000_000)
    parser.add_argument(
        "--requests-per-user",
        type=float,
        default=3.0,
        help="edge requests per score (a user is scored at most once per publish interval)",
    )
    parser.add_argument(
        "--headroom", type=float, default=0.6, help="share of a core to plan for (default 0.6)"
    )
    options = parser.parse_args()
    path = figures_file()
    if not path.exists():
        sys.exit(f"no bench figures in {path}: run `make bench` first")
    figures = latest_figures(path)
    wanted = [s.figure for s in STAGES] + [f for uses in REDIS.values() for _, f in uses]
    wanted += [CLUSTER_COST, BUSIEST_SHARE]
    missing = [name for name in wanted if name not in figures]
    if missing:
        sys.exit(
            f"{path} lacks {', '.join(missing)}: run `make bench` (or the bench that keeps it)"
        )
    cores = figures["cores"][0]
    scores_s = options.users_per_minute / 60
    rates = {"scores": scores_s, "requests": scores_s * options.requests_per_user}
    print(
        f"target: {options.users_per_minute:,.0f} users scored per minute = {scores_s:,.0f} "
        f"scores/s, {rates['requests']:,.0f} edge requests/s ({options.requests_per_user:g} per "
        f"score); planning each core at {options.headroom:.0%}; figures from a {cores:.0f}-core "
        f"machine ({path})\n"
    )
    print("| stage | load | measured (whole machine) | per core | cores | one more core is |")
    print("|---|---|---|---|---|---|")
    needs = {}
    for stage in STAGES:
        value, _ = figures[stage.figure]
        per_core = value / cores
        need = needs[stage.name] = math.ceil(rates[stage.unit] / (per_core * options.headroom))
        print(
            f"| {stage.name} | {rates[stage.unit]:,.0f} {stage.unit}/s | {value:,.0f}/s "
            f"| {per_core:,.0f}/s | {need} | {stage.scales_by} |"
        )
    print()
    for name, uses in REDIS.items():
        parts = [(rates[unit], *figures[figure], unit) for unit, figure in uses]
        load = sum(rate * us / 1e6 for rate, us, _, _ in parts)
        terms = " + ".join(f"{us:.1f} µs x {rate:,.0f} {unit}/s" for rate, us, _, unit in parts)
        if load <= options.headroom:
            verdict = "one primary"
        elif name == SHARDED:
            # A cluster spends more in all, unevenly: plan for its busiest primary.
            cost, unevenness = figures[CLUSTER_COST][0], figures[BUSIEST_SHARE][0] * 3
            primaries = math.ceil(load * cost * unevenness / options.headroom)
            verdict = (
                f"a Redis Cluster of {primaries} primaries (aggregation.state_cluster_nodes; "
                f"aggregation.state_shards a multiple of {primaries}; measured: {cost:.2f}x "
                f"one Redis's CPU in all, the busiest of 3 at {unevenness:.2f}x an even share)"
            )
        else:
            verdict = (
                f"{math.ceil(load / options.headroom)} primaries: more than it can use "
                "(its keys are not sharded)"
            )
        print(f"Redis for {name}: {terms} = {load:.2f} cores of Redis CPU -> {verdict}")
        # One primary's ceiling, in the target's own terms.
        per_user = sum(
            us * (options.requests_per_user if unit == "requests" else 1)
            for _, us, _, unit in parts
        )
        ceiling = options.headroom * 1e6 / per_user * 60
        print(f"  one primary at {options.headroom:.0%} serves up to {ceiling:,.0f} users/min")
    # Each spout task and enforcer reads whole partitions: no stage can use more of them.
    readers = max(needs["aggregation topology"], needs["scoring topology"], needs["enforcer"])
    partitions = 2 ** math.ceil(math.log2(max(readers, 1)))
    print(f"\nKafka partitions per topic (kafka.topic_partitions): at least {partitions}")
    _kafka(rates)
    kept = sorted({when for _, when in figures.values()})
    print(f"\nfigures kept {kept[0]} to {kept[-1]} (time, commit)")


def _kafka(rates: dict[str, float]) -> None:
    """Bytes per second on each topic, from messages encoded as the pipeline encodes them."""
    logs = list(TrafficGenerator(build_population(200, 0.3, 1), 50, 20, 1, 1_790_000_000_000))
    web_log = sum(len(log.SerializeToString()) for log in logs) / len(logs)
    users = list(sample_users(200, seed=1))
    features = sum(
        len(encode_user_features(u.user_id, 1_790_000_000_000, u.features)) for u in users
    ) / len(users)
    score = len(
        encode_threat_score(
            ScoreRecord("u" * 16, 0.5, "allow", "baseline", "7", 0, 0, SourceRef("t", 0, 0))
        )
    )
    print()
    for topic, unit, size in (
        ("web logs", "requests", web_log),
        ("features", "scores", features),
        ("scores", "scores", score),
    ):
        print(
            f"Kafka {topic}: {size:.0f} bytes a message x {rates[unit]:,.0f}/s = "
            f"{size * rates[unit] / 2**20:.1f} MiB/s before replication"
        )


if __name__ == "__main__":
    main()
