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

from botscore.model.registry import load_model
from botscore.model.sample_users import sample_users
from botscore.model.scoring import score_batch
from botscore.wire.codec import decode_user_features, encode_threat_score, encode_user_features
from botscore.wire.records import FeatureRecord, SourceRef

ROOT = Path(__file__).resolve().parents[1]
USERS = 20_000


def report(step: str, seconds: float, users: int) -> None:
    print(f"{step:<26}{seconds / users * 1e6:8.2f} µs/user")


def _json_message(framed: str) -> dict[str, Any]:
    """A message as pystorm's JSONSerializer reads it: its lines up to "end", then simplejson."""
    return simplejson.loads(framed.removesuffix("\nend\n"))


def main() -> None:
    threadpool_limits(limits=1)  # as in the classifier bolt
    model = load_model(ROOT / "models" / "baseline")
    users = list(sample_users(USERS, seed=5))
    payloads = [encode_user_features(u.user_id, 0, u.features) for u in users]

    started = time.perf_counter()
    records = [decode_user_features(p, SourceRef("t", 0, i)) for i, p in enumerate(payloads)]
    report("decode UserFeatures", time.perf_counter() - started, USERS)

    # What pystorm does per tuple on each side of a hop: encode the emit message with its
    # serializer, decode the message Storm hands on (the same tuple).
    for name, serializer, decode in (
        ("json", JSONSerializer(io.BytesIO(), io.BytesIO(), None, None), _json_message),
        ("msgpack", MsgpackSerializer(None, None, None, None), msgpack.unpackb),
    ):
        started = time.perf_counter()
        for r in records:
            emit = {"command": "emit", "tuple": r.to_values(), "anchors": [r.source.tuple_id()]}
            FeatureRecord.from_values(decode(serializer.serialize_dict(emit))["tuple"])
        report(f"tuple in {name}, round", time.perf_counter() - started, USERS)

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
