"""`botscore topics`: which topics it ensures and what it prints."""

from dataclasses import replace

from botscore.cli import topics
from botscore.cli.main import build_parser
from botscore.settings import AggregationSettings, KafkaSettings, Settings

SETTINGS = Settings(
    kafka=KafkaSettings(
        features_topic="f", scores_topic="s", shadow_scores_topic="c", dead_letter_topic="d"
    ),
    aggregation=AggregationSettings(web_logs_topic="w"),
)


def test_creates_the_five_pipeline_topics_and_says_which_were_new(monkeypatch, capsys):
    calls = []

    def ensure_topics(settings, names):
        calls.append((settings, names))
        return ["s"]

    monkeypatch.setattr(topics, "ensure_topics", ensure_topics)
    args = build_parser().parse_args(["topics"])
    assert args.run is topics.run
    assert topics.run(SETTINGS, args) == 0
    assert calls == [(SETTINGS.kafka, ["w", "f", "s", "c", "d"])]
    assert capsys.readouterr().out == (
        "topics ready: w, f, s, c, d; created: ['s'], 1 replica(s) each, min.insync.replicas "
        "the broker's default\n"
    )


def test_says_how_many_replicas_the_new_topics_have(monkeypatch, capsys):
    monkeypatch.setattr(topics, "ensure_topics", lambda settings, names: ["w"])
    replicated = replace(
        SETTINGS, kafka=replace(SETTINGS.kafka, replication_factor=3, min_insync_replicas=2)
    )
    topics.run(replicated, build_parser().parse_args(["topics"]))
    assert capsys.readouterr().out.endswith(
        "created: ['w'], 3 replica(s) each, min.insync.replicas 2\n"
    )


def test_says_none_when_every_topic_existed(monkeypatch, capsys):
    monkeypatch.setattr(topics, "ensure_topics", lambda settings, names: [])
    topics.run(SETTINGS, build_parser().parse_args(["topics"]))
    assert capsys.readouterr().out.endswith("; created: none\n")
