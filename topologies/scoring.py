"""Scoring: features from Kafka -> classifier -> threat scores to Kafka, a batch per tuple.

Batches of one partition stay on one classifier and one producer task, in order; a
challenger's scores (the classifier's shadow stream) have a producer of their own.
"""

from streamparse import Grouping, Topology

from bolts.classifier import SHADOW_STREAM, ClassifierBolt
from bolts.score_producer import ScoreProducerBolt, ShadowProducerBolt
from botscore.multilang import storm_options
from spouts.kafka_features import KafkaFeaturesSpout


# streamparse ships no types: its Topology is Any to mypy.
class Scoring(Topology):  # type: ignore[misc]
    config = storm_options()
    features = KafkaFeaturesSpout.spec(par=1)
    classifier = ClassifierBolt.spec(inputs={features: Grouping.fields("partition")}, par=1)
    producer = ScoreProducerBolt.spec(inputs={classifier: Grouping.fields("partition")}, par=1)
    shadow_producer = ShadowProducerBolt.spec(
        inputs={classifier[SHADOW_STREAM]: Grouping.fields("partition")}, par=1
    )
