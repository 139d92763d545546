"""`botscore dead-letters list|replay` as an operator runs it, against the real broker.

The README says: `list` shows each letter (optionally by reason); `replay` sends each
letter's original bytes back to the topic it came from, once: a second replay resumes
after what the first committed and sends nothing again; a truncated letter is reported,
never replayed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from botscore.settings import KafkaSettings
from botscore.wire.dead_letters import DeadLetterRecord, encode_dead_letter, fit_dead_letter
from botscore.wire.records import SourceRef

from .harness import (
    botscore_cli,
    delete_topics,
    fresh_topics,
    new_run_id,
    read_topic,
    run_topics,
)
from .stream import produce

pytestmark = pytest.mark.integration


@pytest.fixture
def letters_topics(kafka_settings: KafkaSettings) -> Iterator[tuple[KafkaSettings, str]]:
    run = new_run_id()
    web_logs = f"it-dl-web-logs-{run}"
    settings = fresh_topics(kafka_settings, prefix="it-dl", run=run, also=(web_logs,))
    yield settings, web_logs
    delete_topics(settings, [*run_topics(settings), web_logs])


def _letter(value: bytes, reason: str, topic: str, offset: int) -> DeadLetterRecord:
    return DeadLetterRecord(
        value, b"key-" + value[:4], reason, "test", "features_spout", SourceRef(topic, 0, offset), 1
    )


def _botscore(settings: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return botscore_cli(settings, "dead-letters", *args)


def test_list_then_replay_sends_each_original_home_once(letters_topics):
    settings, web_logs = letters_topics
    features = settings.features_topic
    letters = [
        _letter(b"feature-bytes-1", "undecodable", features, 10),
        _letter(b"weblog-bytes-1", "missing_time", web_logs, 11),
        _letter(b"feature-bytes-2", "undecodable", features, 12),
        # cut to fit: only a prefix of the original survives, so it must not be replayed
        fit_dead_letter(_letter(b"x" * 40_000, "undecodable", features, 13), 20_000),
    ]
    produce(
        settings,
        [(b"", encode_dead_letter(letter)) for letter in letters],
        topic=settings.dead_letter_topic,
    )

    listed = _botscore(settings, "list", "--reason", "undecodable")
    assert listed.returncode == 0, listed.stderr
    shown = listed.stdout.splitlines()
    assert len(shown) == 3 and all(line.startswith("undecodable") for line in shown)
    assert f"from={features}/0/10" in shown[0] and f"from={features}/0/13" in shown[2]
    assert "3 dead letters" in listed.stderr

    first = _botscore(settings, "replay")
    assert first.returncode == 0, first.stderr
    assert "truncated dead letter" in first.stdout + first.stderr
    home = {
        topic: [(r.key, r.value) for r in read_topic(settings, topic)]
        for topic in (features, web_logs)
    }
    assert home == {
        features: [(b"key-feat", b"feature-bytes-1"), (b"key-feat", b"feature-bytes-2")],
        web_logs: [(b"key-webl", b"weblog-bytes-1")],
    }

    second = _botscore(settings, "replay")
    assert second.returncode == 0, second.stderr
    again = {topic: len(read_topic(settings, topic)) for topic in (features, web_logs)}
    assert again == {features: 2, web_logs: 1}, "a second replay sent letters again"
