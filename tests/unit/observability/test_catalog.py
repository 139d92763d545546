import pytest

from botscore.metrics import Metrics
from botscore.observability.catalog import CATALOG, Kind, metric_for, queryable_names, spec_for
from botscore.settings import MetricsSettings
from botscore.vocabulary import Component


def test_histograms_are_queried_by_their_aggregates_and_counters_by_name():
    names = queryable_names()
    assert "botscore.classifier.scored" in names
    assert "botscore.classifier.predict_seconds" not in names
    assert {
        "botscore.classifier.predict_seconds.95percentile",
        "botscore.aggregate.redis_seconds.max",
    } <= names


def test_a_declared_metric_of_another_kind_is_refused():
    assert spec_for(Component.CLASSIFIER, "scored", Kind.COUNT).kind is Kind.COUNT
    with pytest.raises(
        ValueError, match=r"histogram classifier\.scored is not in the metric catalogue"
    ):
        spec_for(Component.CLASSIFIER, "scored", Kind.HISTOGRAM)


@pytest.mark.parametrize("enabled", [True, False], ids=["sending", "disabled"])
def test_metrics_refuse_an_undeclared_name_whether_or_not_they_send(enabled):
    metrics = Metrics(MetricsSettings(enabled=enabled, statsd_port=9), Component.CLASSIFIER)
    metrics.count("scored", 3)
    with pytest.raises(ValueError, match=r"classifier\.scord"):
        metrics.count("scord")
    with pytest.raises(ValueError, match=r"gauge classifier\.batch_size"):
        metrics.gauge("batch_size", 1.0)
    metrics.close()


def test_components_without_metrics_declare_none():
    assert Component.SIMULATOR not in CATALOG
    with pytest.raises(ValueError):
        Metrics(MetricsSettings(enabled=False), Component.SIMULATOR).count("in")


def test_metric_for_finds_a_counter_and_a_histogram_aggregate():
    assert metric_for("botscore.classifier.scored")[:2] == (Component.CLASSIFIER, "scored")
    component, what, spec = metric_for("botscore.aggregate.redis_seconds.95percentile")
    assert (component, what, spec.kind) == (Component.AGGREGATE, "redis_seconds", Kind.HISTOGRAM)
    with pytest.raises(KeyError):
        metric_for("botscore.aggregate.redis_seconds.p42")
