"""`botscore feed`: what reaches the producer and what it prints."""

import pytest

from botscore.cli import feed
from botscore.cli.main import build_parser
from botscore.settings import KafkaSettings, Settings

SETTINGS = Settings(kafka=KafkaSettings(features_topic="features-x"))


class Producer:
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def producer(monkeypatch) -> Producer:
    made = Producer()
    created = []

    def create_producer(settings, client_id):
        created.append((settings, client_id))
        return made

    monkeypatch.setattr(feed, "create_producer", create_producer)
    made.created = created
    return made


def test_feeds_once_with_the_arguments_given(monkeypatch, producer, capsys):
    calls = []

    def feed_sample_users(producer, topic, users, seed, rate):
        calls.append((producer, topic, users, seed, rate))
        return users

    monkeypatch.setattr(feed, "feed_sample_users", feed_sample_users)
    args = build_parser().parse_args(["feed", "--users", "7", "--seed", "4", "--rate", "2.5"])
    assert feed.run(SETTINGS, args) == 0
    assert calls == [(producer, "features-x", 7, 4, 2.5)]
    assert producer.created == [(SETTINGS.kafka, "botscore-feed")]
    assert producer.closed
    captured = capsys.readouterr()
    assert captured.err == "fed 7 users to features-x (seed 4)\n"
    assert captured.out == ""


def test_defaults_are_a_thousand_users_of_seed_one_unpaced(monkeypatch, producer):
    calls = []

    def feed_sample_users(producer, topic, users, seed, rate):
        calls.append((users, seed, rate))
        return users

    monkeypatch.setattr(feed, "feed_sample_users", feed_sample_users)
    feed.run(SETTINGS, build_parser().parse_args(["feed"]))
    assert calls == [(1000, 1, 0)]


def test_loop_moves_to_the_next_seed_until_interrupted(monkeypatch, producer, capsys):
    seeds = []

    def feed_sample_users(producer, topic, users, seed, rate):
        if len(seeds) == 3:
            raise KeyboardInterrupt
        seeds.append(seed)
        return users

    monkeypatch.setattr(feed, "feed_sample_users", feed_sample_users)
    args = build_parser().parse_args(["feed", "--users", "5", "--loop"])
    with pytest.raises(KeyboardInterrupt):
        feed.run(SETTINGS, args)
    assert seeds == [1, 2, 3]
    assert producer.closed
    assert capsys.readouterr().err.splitlines() == [
        "fed 5 users to features-x (seed 1)",
        "fed 10 users to features-x (seed 2)",
        "fed 15 users to features-x (seed 3)",
    ]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--rate", "-5"], "--rate: must be 0 or from 1/86400 up"),
        (["--rate", "nan"], "--rate: must be 0 or from 1/86400 up"),
        (["--rate", "1e-300"], "--rate: must be 0 or from 1/86400 up"),
        (["--seed", "-1"], "--seed: must be 0 or more"),
    ],
)
def test_rates_and_seeds_that_cannot_work_are_refused(argv, says, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["feed", *argv])
    assert says in capsys.readouterr().err
