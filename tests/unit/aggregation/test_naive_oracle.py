"""The offline feature store against the naive oracle, on random request sequences.

``naive_features`` recomputes every feature from the whole request list; the store runs the
shared ``update_for``/``compute_features`` with its buckets, trimmed sets and capped recent
times. Requests arrive in random order, so late and out-of-order requests are covered too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from hypothesis import given, settings

from botscore.aggregation import definitions, offline
from botscore.aggregation.offline import final_features
from botscore.model.features import CATALOG
from botscore.v1.web_log_pb2 import WebLog

from .naive_features import USER, assert_same_features, naive_features, request_sequences

# Caps small enough for a few dozen requests from small pools to overflow them, so the
# stores' eviction order is exercised; the real caps are checked by value in
# test_feature_oracles.py.
SMALL_CAPS = {"ip": 3, "ua": 2, "path": 4}
SMALL_RECENT = 5


@contextmanager
def small_caps() -> Iterator[None]:
    """The code under test with ``SMALL_CAPS`` and ``SMALL_RECENT`` in place of its own."""
    sets = tuple(dataclasses.replace(s, cap=SMALL_CAPS[s.name]) for s in definitions.DISTINCT_SETS)
    with (
        mock.patch.object(definitions, "DISTINCT_SETS", sets),
        mock.patch.object(offline, "RECENT_REQUESTS", SMALL_RECENT),
    ):
        yield


def offline_features(logs: list[WebLog]) -> dict[str, float]:
    return final_features(logs)[USER].features


def test_the_oracle_covers_the_catalog() -> None:
    logs = [WebLog(time_unix_ms=1, user_id=USER, request_id="r", schema_version=1)]
    assert tuple(naive_features(logs)) == CATALOG


@settings(max_examples=200, deadline=None)
@given(request_sequences())
def test_offline_store_equals_the_naive_oracle(logs: list[WebLog]) -> None:
    assert_same_features(offline_features(logs), naive_features(logs))


@settings(max_examples=200, deadline=None)
@given(request_sequences(max_size=40))
def test_offline_store_equals_the_naive_oracle_past_small_caps(logs: list[WebLog]) -> None:
    with small_caps():
        got = offline_features(logs)
    assert_same_features(got, naive_features(logs, caps=SMALL_CAPS, recent=SMALL_RECENT))
