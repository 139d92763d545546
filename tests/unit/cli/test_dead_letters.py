"""`botscore dead-letters list|replay`: what it prints and its exit status, over fakes."""

import pytest

from botscore.cli import dead_letters
from botscore.cli.main import build_parser
from botscore.errors import InvalidMessage
from botscore.settings import KafkaSettings, Settings
from botscore.transport.dead_letter_replay import ReplayResult, Truncated, Undecodable
from botscore.vocabulary import Component, DeadLetterReason
from botscore.wire.dead_letters import DeadLetterRecord
from botscore.wire.records import SourceRef

SETTINGS = Settings(kafka=KafkaSettings(dead_letter_topic="dlt", features_topic="features"))
LETTER = DeadLetterRecord(
    original_value=b"12345",
    original_key=b"u-1",
    reason=DeadLetterReason.MISSING_FEATURE,
    detail="no rpm",
    component=Component.CLASSIFIER,
    source=SourceRef("features", 2, 40),
    dead_lettered_ms=0,
)
BAD = Undecodable(0, 7, InvalidMessage(DeadLetterReason.UNDECODABLE, "truncated"))


def test_list_prints_each_letter_and_counts_them(monkeypatch, capsys):
    asked = []

    def list_dead_letters(settings, reason):
        asked.append((settings, reason))
        yield LETTER
        yield BAD
        yield LETTER

    monkeypatch.setattr(dead_letters, "list_dead_letters", list_dead_letters)
    args = build_parser().parse_args(["dead-letters", "list", "--reason", "missing_feature"])
    assert dead_letters.run(SETTINGS, args) == 0
    assert asked == [(SETTINGS.kafka, "missing_feature")]
    described = "missing_feature            from=features/2/40 by=classifier bytes=5 no rpm"
    out = capsys.readouterr()
    assert out.out.splitlines() == [
        described,
        "! not a dead letter at 0@7: undecodable: truncated",
        described,
    ]
    assert out.err == "2 dead letters\n"


def test_list_without_a_reason_asks_for_all(monkeypatch, capsys):
    asked = []

    def list_dead_letters(settings, reason):
        asked.append(reason)
        yield from ()

    monkeypatch.setattr(dead_letters, "list_dead_letters", list_dead_letters)
    dead_letters.run(SETTINGS, build_parser().parse_args(["dead-letters", "list"]))
    assert asked == [None]
    assert capsys.readouterr().err == "0 dead letters\n"


def test_replay_reports_what_the_replay_did(monkeypatch, capsys):
    asked = []

    def replay_dead_letters(settings, reason, to_topic):
        asked.append((settings, reason, to_topic))
        return ReplayResult(target="other", replayed=3, skipped=1, undecodable=(BAD,))

    monkeypatch.setattr(dead_letters, "replay_dead_letters", replay_dead_letters)
    args = build_parser().parse_args(
        ["dead-letters", "replay", "--reason", "undecodable", "--to", "other"]
    )
    assert dead_letters.run(SETTINGS, args) == 0
    assert asked == [(SETTINGS.kafka, "undecodable", "other")]
    out = capsys.readouterr()
    assert out.out == "! not a dead letter at 0@7: undecodable: truncated\n"
    assert out.err == "replayed 3 dead letters into other\n"


def test_replay_defaults_to_every_reason_and_the_library_default_topic(monkeypatch, capsys):
    asked = []

    def replay_dead_letters(settings, reason, to_topic):
        asked.append((reason, to_topic))
        return ReplayResult(target="features", replayed=0, skipped=0, undecodable=())

    monkeypatch.setattr(dead_letters, "replay_dead_letters", replay_dead_letters)
    dead_letters.run(SETTINGS, build_parser().parse_args(["dead-letters", "replay"]))
    assert asked == [(None, None)]
    assert capsys.readouterr().err == "replayed 0 dead letters into features\n"


def test_replay_into_source_topics_says_where_each_went(monkeypatch, capsys):
    def replay_dead_letters(settings, reason, to_topic):
        return ReplayResult(
            target=None,
            replayed=5,
            skipped=0,
            undecodable=(),
            topics=(("user-features", 3), ("web-logs", 2)),
        )

    monkeypatch.setattr(dead_letters, "replay_dead_letters", replay_dead_letters)
    assert dead_letters.run(SETTINGS, build_parser().parse_args(["dead-letters", "replay"])) == 0
    assert capsys.readouterr().err == (
        "replayed 5 dead letters into their source topics (user-features: 3, web-logs: 2)\n"
    )


def test_replay_with_failed_sends_exits_1_with_one_line(monkeypatch, capsys):
    def replay_dead_letters(settings, reason, to_topic):
        return ReplayResult(
            target=None,
            replayed=4,
            skipped=0,
            undecodable=(),
            failed=2,
            first_error="KafkaTimeoutError: Expiring 1 record(s)",
            held_back=3,
            topics=(("web-logs", 4),),
        )

    monkeypatch.setattr(dead_letters, "replay_dead_letters", replay_dead_letters)
    assert dead_letters.run(SETTINGS, build_parser().parse_args(["dead-letters", "replay"])) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1
    assert out.err.startswith("replay incomplete: 2 dead letters not confirmed by Kafka (first: ")
    assert "KafkaTimeoutError: Expiring 1 record(s)" in out.err
    assert "3 held back" in out.err and "4 replayed" in out.err


def test_replay_reports_truncated_letters_it_did_not_send(monkeypatch, capsys):
    def replay_dead_letters(settings, reason, to_topic):
        return ReplayResult(
            target="web-logs",
            replayed=0,
            skipped=0,
            undecodable=(),
            truncated=(Truncated(1, 9, SourceRef("web-logs", 2, 41)),),
        )

    monkeypatch.setattr(dead_letters, "replay_dead_letters", replay_dead_letters)
    args = build_parser().parse_args(["dead-letters", "replay", "--to", "web-logs"])
    assert dead_letters.run(SETTINGS, args) == 0
    out = capsys.readouterr()
    assert out.out == (
        "! truncated dead letter at 1@9 (from web-logs/2/41) not replayed: "
        "it holds only a prefix of the original\n"
    )
    assert out.err == "replayed 0 dead letters into web-logs\n"


def test_replay_help_names_the_default_topic(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dead-letters", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: each letter's source topic" in help_text


def test_a_reason_that_is_none_is_refused_naming_the_reasons(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dead-letters", "list", "--reason", "missing_feture"])
    assert "invalid choice: 'missing_feture'" in capsys.readouterr().err
