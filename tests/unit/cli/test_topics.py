"""`botscore topics`: which topics it ensures and what it prints."""

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
    assert capsys.readouterr().out == "topics ready: w, f, s, c, d; created: ['s']\n"


def test_says_none_when_every_topic_existed(monkeypatch, capsys):
    monkeypatch.setattr(topics, "ensure_topics", lambda settings, names: [])
    topics.run(SETTINGS, build_parser().parse_args(["topics"]))
    assert capsys.readouterr().out.endswith("; created: none\n")
