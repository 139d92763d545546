"""Per-user cost of each Python step on the scoring path, and batch-size effects.

Prints figures only; no assertions. Run with `make bench`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from botscore.model.registry import load_model
from botscore.model.sample_users import sample_users
from botscore.model.scoring import score_batch
from botscore.wire.codec import decode_user_features, encode_threat_score, encode_user_features
from botscore.wire.records import FeatureRecord, SourceRef

ROOT = Path(__file__).resolve().parents[1]
USERS = 20_000


def report(step: str, seconds: float, users: int) -> None:
    print(f"{step:<26}{seconds / users * 1e6:8.2f} µs/user")


def main() -> None:
    threadpool_limits(limits=1)  # as in the classifier bolt
    model = load_model(ROOT / "models" / "baseline")
    users = list(sample_users(USERS, seed=5))
    payloads = [encode_user_features(u.user_id, 0, u.features) for u in users]

    started = time.perf_counter()
    records = [decode_user_features(p, SourceRef("t", 0, i)) for i, p in enumerate(payloads)]
    report("decode UserFeatures", time.perf_counter() - started, USERS)

    started = time.perf_counter()
    values = [json.dumps(r.to_values()) for r in records]
    records = [FeatureRecord.from_values(json.loads(v)) for v in values]
    report("tuple values JSON round", time.perf_counter() - started, USERS)

    for batch in (1, 16, 64, 256, 1024):
        n = min(USERS, batch * 50)
        started = time.perf_counter()
        scored = []
        for i in range(0, n, batch):
            scored.extend(score_batch(model, records[i : i + batch], 0).scored)
        elapsed = time.perf_counter() - started
        report(f"score, batch of {batch}", elapsed, n)

    scores = [s for _, s in score_batch(model, records, 0).scored]
    started = time.perf_counter()
    for s in scores:
        encode_threat_score(s)
    report("encode ThreatScore", time.perf_counter() - started, USERS)


if __name__ == "__main__":
    main()
