"""Aggregation: edge requests from Kafka -> per-user state in Redis -> features to Kafka."""

from streamparse import Grouping, Topology

from bolts.aggregate import AggregateBolt
from bolts.feature_producer import FeatureProducerBolt
from botscore.multilang import storm_options
from spouts.due_features import DueFeaturesSpout
from spouts.kafka_web_logs import KafkaWebLogsSpout


# streamparse ships no types: its Topology is Any to mypy.
class Aggregation(Topology):  # type: ignore[misc]
    config = storm_options()
    web_logs = KafkaWebLogsSpout.spec(par=1)
    # A user's requests share a partition (keyed by user): one task stores them all, in order.
    aggregate = AggregateBolt.spec(inputs={web_logs: Grouping.fields("partition")}, par=1)
    due_features = DueFeaturesSpout.spec(par=1)
    publish = FeatureProducerBolt.spec(inputs={due_features: Grouping.fields("user_id")}, par=1)
