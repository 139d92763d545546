"""Aggregation: edge requests from Kafka -> per-user state in Redis -> features to Kafka."""

from streamparse import Grouping, Topology

from bolts.aggregate import AggregateBolt
from bolts.feature_producer import FeatureProducerBolt
from botscore.multilang import storm_options
from botscore.parallelism import per_environment
from spouts.due_features import DueFeaturesSpout
from spouts.kafka_web_logs import KafkaWebLogsSpout

# aggregation.publishers: each publisher spout has its share of the state's shards.
PUBLISHERS = per_environment(lambda settings: settings.aggregation.publishers)


# streamparse ships no types: its Topology is Any to mypy.
class Aggregation(Topology):  # type: ignore[misc]
    config = storm_options()
    web_logs = KafkaWebLogsSpout.spec(par=1)
    # A user's requests share a partition (keyed by user): one task stores them all, in order.
    aggregate = AggregateBolt.spec(inputs={web_logs: Grouping.fields("partition")}, par=1)
    due_features = DueFeaturesSpout.spec(par=PUBLISHERS)
    # Each publisher's tuples go to one producer: a publication failed by Storm while its
    # producer still holds some of its messages is made again behind them, not beside them.
    publish = FeatureProducerBolt.spec(
        inputs={due_features: Grouping.fields("publisher")}, par=PUBLISHERS
    )
