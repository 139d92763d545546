"""The feature catalog and the step from feature records to a model's input matrix.

``CATALOG`` names every feature the feature stage publishes; a model may use any subset,
in the order its manifest gives. Training and serving both build matrices here, so the
two cannot disagree on column order. ``DOMAINS`` gives each its values: the scoring spout
refuses one outside them, which no feature stage publishes and a model would score with a
confident-looking guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from botscore.errors import InvalidMessage
from botscore.vocabulary import DeadLetterReason

__all__ = ["CATALOG", "DOMAINS", "Domain", "feature_matrix", "missing_features"]


@dataclass(frozen=True)
class Domain:
    """The values a feature can take: ``low`` to ``high``, both included."""

    low: float
    high: float = math.inf

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{self.low:g} or more"
        return f"{self.low:g}..{self.high:g}"


# A count need not be whole (`botscore feed`'s sample users are not), and has no upper
# bound: a huge rate is what the rate ceiling (scoring.block_requests_1m) is for.
COUNT = Domain(0.0)
# A count over the count of all requests in the same buckets; a division of whole numbers
# is correctly rounded, so it never passes 1.
RATIO = Domain(0.0, 1.0)
# Gaps between request times, sorted ascending: 0 when they share a millisecond.
GAPS = Domain(0.0)

# In the catalogue's order (``CATALOG``); see ``aggregation.definitions.compute_features``.
DOMAINS: dict[str, Domain] = {
    "requests_1m": COUNT,
    "requests_1h": COUNT,
    "distinct_ips_4h": COUNT,
    "distinct_user_agents_4h": COUNT,
    "distinct_paths_1h": COUNT,
    "error_ratio_1h": RATIO,
    "head_ratio_1h": RATIO,
    "datacenter_ip_ratio_4h": RATIO,
    "interarrival_mean_s": GAPS,  # seconds
    "interarrival_cv": GAPS,  # their standard deviation over their mean
    "js_check_ratio_1h": RATIO,
    "login_attempts_1h": COUNT,
    "declared_bot_ua_ratio_1h": RATIO,
    "tls_contradicts_ua_ratio_1h": RATIO,
}
CATALOG: tuple[str, ...] = tuple(DOMAINS)


def missing_features(features: Mapping[str, float], names: Sequence[str]) -> list[str]:
    return [name for name in names if name not in features]


def feature_matrix(rows: Sequence[Mapping[str, float]], names: Sequence[str]) -> np.ndarray:
    """Stack feature mappings into a float64 matrix with columns in ``names`` order.

    Raises ``InvalidMessage`` (``missing_feature``) naming the first incomplete row's gaps;
    callers that must keep going filter rows with ``missing_features`` first.
    """
    matrix = np.empty((len(rows), len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        try:
            matrix[i] = [row[name] for name in names]
        except KeyError:
            raise InvalidMessage(
                DeadLetterReason.MISSING_FEATURE, ",".join(missing_features(row, names))
            ) from None
    return matrix
