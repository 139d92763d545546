"""The feature catalog and the step from feature records to a model's input matrix.

``CATALOG`` names every feature the feature stage publishes; a model may use any subset,
in the order its manifest gives. Training and serving both build matrices here, so the
two cannot disagree on column order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from botscore.errors import InvalidMessage
from botscore.vocabulary import DeadLetterReason

__all__ = ["CATALOG", "feature_matrix", "missing_features"]

CATALOG: tuple[str, ...] = (
    "requests_1m",
    "requests_1h",
    "distinct_ips_4h",
    "distinct_user_agents_4h",
    "distinct_paths_1h",
    "error_ratio_1h",
    "head_ratio_1h",
    "datacenter_ip_ratio_4h",
    "interarrival_mean_s",
    "interarrival_cv",
    "js_check_ratio_1h",
    "login_attempts_1h",
    "declared_bot_ua_ratio_1h",
    "tls_contradicts_ua_ratio_1h",
)


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
