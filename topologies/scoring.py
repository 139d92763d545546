"""Scoring: features from Kafka -> classifier -> threat scores to Kafka."""

from streamparse import Grouping, Topology

from bolts.classifier import ClassifierBolt
from bolts.score_producer import ScoreProducerBolt
from spouts.kafka_features import KafkaFeaturesSpout


class Scoring(Topology):
    features = KafkaFeaturesSpout.spec(par=1)
    classifier = ClassifierBolt.spec(inputs={features: Grouping.fields("user_id")}, par=1)
    producer = ScoreProducerBolt.spec(inputs={classifier: Grouping.fields("user_id")}, par=1)
