"""The project's closed sets of names: decisions, dead-letter reasons, components, roles.

They are ``StrEnum``s, so each member is also its plain string on the wire, in Redis, in
metric tags and in logs; code compares and stores members, never loose strings.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Component", "DeadLetterReason", "Decision", "ReplayCause", "Role"]


class Decision(StrEnum):
    """What the edge does with a user. No decision stored for a user means ``ALLOW``."""

    ALLOW = "allow"
    CHALLENGE = "challenge"
    BLOCK = "block"


class DeadLetterReason(StrEnum):
    """Why a message was set aside on the dead-letter topic (operators count by these)."""

    UNDECODABLE = "undecodable"
    EMPTY_PAYLOAD = "empty_payload"
    MISSING_USER_ID = "missing_user_id"
    MISSING_SCHEMA_VERSION = "missing_schema_version"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    NON_FINITE_FEATURE = "non_finite_feature"
    MISSING_FEATURE = "missing_feature"
    MISSING_TIME = "missing_time"
    MISSING_REQUEST_ID = "missing_request_id"
    TIME_IN_FUTURE = "time_in_future"
    TIME_TOO_OLD = "time_too_old"
    KEY_MISMATCH = "key_mismatch"
    FIELD_TOO_LONG = "field_too_long"
    INVALID_IP = "invalid_ip"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_DECISION = "unknown_decision"
    MISSING_SCORED_TIME = "missing_scored_time"
    RETRIES_EXHAUSTED = "retries_exhausted"


class ReplayCause(StrEnum):
    """Why a spout emitted a tuple again (the ``cause`` tag of its ``replayed`` count)."""

    FAILED = "failed"  # failed downstream, or timed out by Storm
    LOST_ACK = "lost_ack"  # later tuples of its partition were acked, its ack never came


class Component(StrEnum):
    """A process or Storm component: names its metrics, Kafka client ids and dead letters."""

    WEB_LOGS_SPOUT = "web_logs_spout"
    AGGREGATE = "aggregate"
    PUBLISHER = "publisher"
    FEATURE_PRODUCER = "feature_producer"
    FEATURES_SPOUT = "features_spout"
    CLASSIFIER = "classifier"
    SCORE_PRODUCER = "score_producer"
    SHADOW_PRODUCER = "shadow_producer"
    ENFORCER = "enforcer"
    EDGE = "edge"  # where decisions are applied: the simulator, or nginx's gate (`botscore edge`)
    LOG_SHIPPER = "log_shipper"  # nginx's access log onto the web-logs topic
    STORM = "storm"  # `botscore storm --send`: Nimbus's figures, for want of the Storm UI
    SIMULATOR = "simulator"
    FEED = "feed"
    DEAD_LETTER_REPLAY = "dead_letter_replay"
    ADMIN = "admin"

    @property
    def role(self) -> Role:
        """The role whose credentials this component uses (see ``Role``)."""
        return _ROLE_OF[self]


class Role(StrEnum):
    """Who a process acts as on Kafka and Redis: each role is its own principal there, with
    only the access its job needs (``botscore.access``). ``ADMIN`` administers the broker
    and Redis (topics, ACLs, users) and reads whatever an operator's tools read."""

    EDGE = "edge"  # writes web logs, reads the edge's decisions
    AGGREGATION = "aggregation"  # web logs in, features out, the feature state
    SCORING = "scoring"  # features in, scores out, reads the published models
    ENFORCER = "enforcer"  # scores in, the edge's decisions out
    MODELS = "models"  # data scientists: publish models, compare the challenger's scores
    ADMIN = "admin"


_ROLE_OF: dict[Component, Role] = {
    Component.WEB_LOGS_SPOUT: Role.AGGREGATION,
    Component.AGGREGATE: Role.AGGREGATION,
    Component.PUBLISHER: Role.AGGREGATION,
    Component.FEATURE_PRODUCER: Role.AGGREGATION,
    # `botscore feed` stands in for the feature stage.
    Component.FEED: Role.AGGREGATION,
    Component.FEATURES_SPOUT: Role.SCORING,
    Component.CLASSIFIER: Role.SCORING,
    Component.SCORE_PRODUCER: Role.SCORING,
    Component.SHADOW_PRODUCER: Role.SCORING,
    Component.ENFORCER: Role.ENFORCER,
    Component.EDGE: Role.EDGE,
    Component.LOG_SHIPPER: Role.EDGE,
    Component.SIMULATOR: Role.EDGE,
    Component.STORM: Role.ADMIN,
    Component.DEAD_LETTER_REPLAY: Role.ADMIN,
    Component.ADMIN: Role.ADMIN,
}
