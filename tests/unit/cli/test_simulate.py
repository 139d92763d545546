"""`botscore simulate`: the spec it builds and the summary it prints."""

import pytest

from botscore.cli import simulate
from botscore.cli.main import build_parser
from botscore.errors import SimulationSpecError
from botscore.settings import EdgeSettings, RedisSettings, Settings
from botscore.simulator.spec import SimulationSpec
from botscore.simulator.stats import SimulationStats
from botscore.vocabulary import Decision

SETTINGS = Settings(
    redis=RedisSettings(host="redis-x", port=6390), edge=EdgeSettings(redis_retry_ms=4000)
)


def stats_with_first_scores() -> SimulationStats:
    stats = SimulationStats(sent=10, blocked=2, sent_by_kind={"human": 6, "scraper": 4})
    for t in (1.0, 2.0, 61.0):  # minutes 0 and 1: before the first scores
        stats.record(t, "bot-1", "scraper", True, Decision.ALLOW)
    stats.record(130.0, "bot-1", "scraper", True, Decision.BLOCK)  # minute 2: after
    stats.record(131.0, "bot-2", "scraper", True, Decision.ALLOW)
    stats.record(140.0, "bot-3", "scraper", True, Decision.ALLOW)
    stats.record(145.0, "bot-3", "scraper", True, Decision.BLOCK)
    stats.record(150.0, "human-1", "human", False, Decision.ALLOW)
    stats.unscored_until_s, stats.first_scores_s = 110.0, 120.0
    return stats


class Recorder:
    def __init__(self, result=None, error=None) -> None:
        self.calls = []
        self.result = result or SimulationStats()
        self.error = error

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return self.result


def test_defaults_reach_the_simulator(monkeypatch, capsys):
    recorder = Recorder(SimulationStats(sent=3, blocked=0, sent_by_kind={"human": 3}))
    monkeypatch.setattr(simulate, "simulate", recorder)
    assert simulate.run(SETTINGS, build_parser().parse_args(["simulate"])) == 0
    assert recorder.calls == [
        (
            (SETTINGS, SimulationSpec(), "simulation-labels.csv"),
            {"progress": True, "topic": None, "edge": None},
        )
    ]
    assert capsys.readouterr().err == "sent 3, blocked 0, by kind {'human': 3}\n"


def test_the_wide_mix_is_asked_for_by_name(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(simulate, "simulate", recorder)
    simulate.run(SETTINGS, build_parser().parse_args(["simulate", "--mix", "wide"]))
    assert recorder.calls[0][0][1] == SimulationSpec(mix="wide")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--mix", "everything"])


def test_reports_bot_requests_allowed_before_and_after_the_first_scores(monkeypatch, capsys):
    monkeypatch.setattr(simulate, "simulate", Recorder(stats_with_first_scores()))
    args = build_parser().parse_args(
        ["simulate", "--rate", "5", "--topic", "logs", "--speedup", "60", "--no-progress"]
    )
    simulate.run(SETTINGS, args)
    assert capsys.readouterr().err.splitlines() == [
        # 600 simulated seconds at 60x take 10 wall seconds: the last is stamped 590 s ahead
        "speedup 60: requests are stamped up to 590000 ms ahead of the clock; the feature "
        "stage and the enforcer must allow that much (BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS, "
        "BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS)",
        "sent 10, blocked 2, by kind {'human': 6, 'scraper': 4}",
        "first scores at simulated 120 s; bot requests allowed before: 100.0%, "
        "after: 50.0% (whole minutes)",
        # bot-1 arrived before the first scores: the visitors after them are bot-2 and bot-3
        "visitors who arrived after that: 1 humans: 0.00% ever challenged, 0.00% ever "
        "blocked, 0.00% of their requests affected; 2 bots: 50.0% blocked, 50.0% within "
        "10 s (at most 50.0% could be: the others sent one request in their first 10 s); "
        "within 5, 10, 30, 60, 300 s: 50.0%, 50.0%, 50.0%, 50.0%, 50.0%; "
        "first request to block p50 5.0 s, p90 5.0 s, max 5.0 s (simulated seconds, 60x)",
        # then per kind, in the profiles' order, each with the figures of its side
        "  human                1 humans: 0.00% ever challenged, 0.00% ever blocked, 0.00% "
        "of their requests affected",
        "  scraper              2 bots: 50.0% blocked, 50.0% within 10 s (at most 50.0% "
        "could be: the others sent one request in their first 10 s); within 5, 10, 30, 60, "
        "300 s: 50.0%, 50.0%, 50.0%, 50.0%, 50.0%; first request to block "
        "p50 5.0 s, p90 5.0 s, max 5.0 s (simulated seconds, 60x)",
    ]


class FakeRedis:
    closed = False

    def close(self) -> None:
        self.closed = True


class FakeEdge:
    def __init__(self, client, cache_ms, retry_ms) -> None:
        self.client = client
        self.cache_ms = cache_ms
        self.retry_ms = retry_ms


@pytest.fixture
def redis_client(monkeypatch) -> FakeRedis:
    client = FakeRedis()
    made_with = []

    def create_edge_redis(settings):
        made_with.append(settings)
        return client

    monkeypatch.setattr(simulate, "create_edge_redis", create_edge_redis)
    monkeypatch.setattr(simulate, "EdgeDecisions", FakeEdge)
    client.made_with = made_with
    return client


def test_enforce_gives_the_simulator_an_edge_on_redis_and_closes_it(monkeypatch, redis_client):
    recorder = Recorder()
    monkeypatch.setattr(simulate, "simulate", recorder)
    args = build_parser().parse_args(["simulate", "--enforce", "--edge-cache-ms", "250"])
    simulate.run(SETTINGS, args)
    edge = recorder.calls[0][1]["edge"]
    assert (edge.client, edge.cache_ms, edge.retry_ms) == (redis_client, 250, 4000)
    assert redis_client.made_with == [SETTINGS]
    assert redis_client.closed


def test_a_bad_spec_is_raised_for_main_to_report_and_redis_is_closed(monkeypatch, redis_client):
    monkeypatch.setattr(simulate, "simulate", Recorder(error=SimulationSpecError("rate too high")))
    with pytest.raises(SimulationSpecError):
        simulate.run(SETTINGS, build_parser().parse_args(["simulate", "--enforce"]))
    assert redis_client.closed
