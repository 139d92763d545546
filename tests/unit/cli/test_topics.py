"""`botscore topics`: which topics it plans and what it prints (the broker's side is
``tests/integration/test_topic_plan.py``)."""

from dataclasses import replace

from botscore.cli import topics
from botscore.cli.main import build_parser
from botscore.settings import AggregationSettings, KafkaSettings, Settings
from botscore.transport.topic_plan import ConfigChange

SETTINGS = Settings(
    kafka=KafkaSettings(
        features_topic="f", scores_topic="s", shadow_scores_topic="c", dead_letter_topic="d"
    ),
    aggregation=AggregationSettings(web_logs_topic="w"),
)


def _applying(monkeypatch, created, changes=(), drift=()):
    calls = []

    def apply_topic_plans(settings):
        calls.append(settings)
        return list(created), list(changes), list(drift)

    monkeypatch.setattr(topics, "apply_topic_plans", apply_topic_plans)
    return calls


def test_plans_the_five_pipeline_topics_and_says_which_were_new(monkeypatch, capsys):
    calls = _applying(monkeypatch, ["s"])
    args = build_parser().parse_args(["topics"])
    assert args.run is topics.run
    assert topics.run(SETTINGS, args) == 0
    assert calls == [SETTINGS]
    assert capsys.readouterr().out == (
        "topics ready: w, f, s, c, d; created: ['s'], 1 replica(s) each, min.insync.replicas "
        "the broker's default\n"
        "retention: w 168 h, f 168 h, s 24 h, c 24 h, d 720 h\n"
    )


def test_says_how_many_replicas_the_new_topics_have(monkeypatch, capsys):
    _applying(monkeypatch, ["w"])
    replicated = replace(
        SETTINGS, kafka=replace(SETTINGS.kafka, replication_factor=3, min_insync_replicas=2)
    )
    topics.run(replicated, build_parser().parse_args(["topics"]))
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("created: ['w'], 3 replica(s) each, min.insync.replicas 2")


def test_says_none_when_every_topic_existed(monkeypatch, capsys):
    _applying(monkeypatch, [])
    topics.run(SETTINGS, build_parser().parse_args(["topics"]))
    assert capsys.readouterr().out.splitlines()[0].endswith("; created: none")


def test_prints_each_config_changed_and_warns_of_the_drift_it_left(monkeypatch, capsys):
    changes = [ConfigChange("s", "retention.ms", "3600000", "86400000")]
    _applying(monkeypatch, [], changes, ["s has 2 partitions where ..."])
    assert topics.run(SETTINGS, build_parser().parse_args(["topics"])) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "changed s retention.ms: 3600000 -> 86400000"
    assert err == "botscore: WARNING: s has 2 partitions where ...\n"
