"""Per-user cost of each Python step on the scoring path, and batch-size effects.

Prints figures only; no assertions. Run with `make bench`.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import msgpack
import simplejson
from pystorm.serializers.json_serializer import JSONSerializer
from pystorm.serializers.msgpack_serializer import MsgpackSerializer
from threadpoolctl import threadpool_limits

from botscore.clock import now_ms
from botscore.model.registry import load_model
from botscore.model.sample_users import sample_users
from botscore.model.scoring import score_batch
from botscore.settings import AggregationSettings
from botscore.wire.codec import decode_feature_row, encode_threat_score, encode_user_features
from botscore.wire.records import FeatureBatch

ROOT = Path(__file__).resolve().parents[1]
USERS = 20_000


def report(step: str, seconds: float, users: int) -> None:
    print(f"{step:<30}{seconds / users * 1e6:8.2f} µs/user")


def _json_message(framed: str) -> dict[str, Any]:
    """A message as pystorm's JSONSerializer reads it: its lines up to "end", then simplejson."""
    return simplejson.loads(framed.removesuffix("\nend\n"))


def main() -> None:
    model = load_model(ROOT / "models" / "baseline")
    threadpool_limits(limits=1)  # as in the classifier bolt: after the load that loads OpenMP
    users = list(sample_users(USERS, seed=5))
    now, skew = now_ms(), AggregationSettings().max_event_skew_ms
    payloads = [
        (u.user_id.encode(), encode_user_features(u.user_id, now, u.features)) for u in users
    ]

    names = model.manifest.feature_names
    started = time.perf_counter()
    rows = [decode_feature_row(value, key, names, now, skew) for key, value in payloads]
    report("decode UserFeatures row", time.perf_counter() - started, USERS)

    def batch_of(first: int, size: int) -> FeatureBatch:
        part = rows[first : first + size]
        return FeatureBatch(
            user_ids=[row.user_id for row in part],
            window_end_ms=[row.window_end_ms for row in part],
            rows=[row.values for row in part],
            schema_versions=[row.schema_version for row in part],
            topic="t",
            partition=0,
            offsets=list(range(first, first + len(part))),
        )

    serializers = (
        ("json", JSONSerializer(io.BytesIO(), io.BytesIO(), None, None), _json_message),
        ("msgpack", MsgpackSerializer(None, None, None, None), msgpack.unpackb),
    )
    for batch in (1, 16, 64, 256, 500, 1024):
        n = min(USERS, batch * 50)
        batches = [batch_of(i, batch) for i in range(0, n, batch)]
        # What pystorm does per tuple on each side of a hop: encode the emit message with
        # its serializer, decode the message Storm hands on (the same tuple).
        for name, serializer, decode in serializers:
            started = time.perf_counter()
            for b in batches:
                emit = {"command": "emit", "tuple": b.to_values(), "anchors": ["t/0/0-1"]}
                FeatureBatch.from_values(decode(serializer.serialize_dict(emit))["tuple"])
            report(f"tuple {name} round, {batch}", time.perf_counter() - started, n)
        started = time.perf_counter()
        for b in batches:
            score_batch(model, b, 0)
        report(f"score, batch of {batch}", time.perf_counter() - started, n)

    scores = list(score_batch(model, batch_of(0, USERS), 0).records())
    started = time.perf_counter()
    for s in scores:
        encode_threat_score(s)
    report("encode ThreatScore", time.perf_counter() - started, USERS)


if __name__ == "__main__":
    main()
