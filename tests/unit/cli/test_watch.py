"""`botscore watch`: one line per score, from the configured connection."""

from pathlib import Path

import pytest

from botscore.cli import watch
from botscore.cli.main import build_parser
from botscore.errors import TopicMissing
from botscore.settings import KafkaSettings, Settings
from botscore.wire.codec import encode_threat_score
from botscore.wire.records import ScoreRecord, SourceRef
from tests.unit.transport.kafka_fakes import FakeConsumer

# A CA certificate to load (its key was thrown away; loading ignores its expiry).
CAFILE = str(Path(__file__).with_name("ca.pem"))
SETTINGS = Settings(
    kafka=KafkaSettings(
        bootstrap_servers="k1:9093,k2:9093",
        scores_topic="scores-x",
        security_protocol="SSL",
        ssl_cafile=CAFILE,
    )
)


def score(user: str, offset: int) -> ScoreRecord:
    return ScoreRecord(
        user_id=user,
        score=0.91234,
        decision="block",
        model_name="baseline",
        model_version="2",
        feature_time_ms=1000,
        scored_time_ms=1250,
        source=SourceRef("features", 3, offset),
    )


def line(user: str, offset: int) -> str:
    return (
        f"{user}{' ' * (23 - len(user))}score=0.912 block     model=baseline/2 "
        f"from=3@{offset} feature->score=250ms"
    )


@pytest.fixture
def consumer(monkeypatch):
    made = FakeConsumer(
        {
            "scores-x": {
                0: [
                    encode_threat_score(score("u-1", 10)),
                    b"\xff garbage",
                    encode_threat_score(score("u-2", 11)),
                    encode_threat_score(score("u-3", 12)),
                ]
            }
        }
    )
    made.config = None

    def kafka_consumer(**config):
        made.config = config
        return made

    monkeypatch.setattr(watch, "KafkaConsumer", kafka_consumer)
    return made


def test_prints_one_line_per_score_and_stops_at_max(consumer, capsys):
    args = build_parser().parse_args(["watch", "--from-beginning", "--max", "2"])
    assert watch.run(SETTINGS, args) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0] == line("u-1", 10)
    assert lines[1].startswith("! undecodable score at 0@1: ")
    assert lines[2] == line("u-2", 11)
    assert len(lines) == 3
    assert out.err == "watching scores-x (Ctrl-C to stop)\n"
    assert consumer.closed


def test_uses_the_shared_connection_settings(consumer):
    watch.run(SETTINGS, build_parser().parse_args(["watch", "--from-beginning", "--max", "1"]))
    assert consumer.config["bootstrap_servers"] == ["k1:9093", "k2:9093"]
    assert consumer.config["security_protocol"] == "SSL"
    assert consumer.config["ssl_cafile"] == CAFILE
    assert consumer.config["enable_auto_commit"] is False
    assert "group_id" not in consumer.config


def test_by_default_starts_at_the_end(consumer, capsys):
    assert watch.run(SETTINGS, build_parser().parse_args(["watch"])) == 0
    assert [e[0] for e in consumer.events] == ["assign", "seek_to_end"]
    assert capsys.readouterr().out == ""


def test_a_missing_topic_is_reported_and_the_consumer_closed(consumer):
    missing = Settings(kafka=KafkaSettings(scores_topic="absent"))
    with pytest.raises(TopicMissing):
        watch.run(missing, build_parser().parse_args(["watch"]))
    assert consumer.closed
