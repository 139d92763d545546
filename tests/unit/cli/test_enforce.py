"""`botscore enforce`: signals stop the loop cleanly."""

import logging
import signal

import pytest

from botscore.cli import enforce
from botscore.cli.main import build_parser
from botscore.settings import Settings

SETTINGS = Settings()


@pytest.fixture
def handlers(monkeypatch) -> dict:
    registered: dict = {}
    monkeypatch.setattr(
        signal, "signal", lambda signum, handler: registered.update({signum: handler})
    )
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    yield registered
    kafka_log.setLevel(level)


def test_runs_the_enforcer_until_a_signal_asks_it_to_stop(monkeypatch, handlers):
    seen = []

    def run_enforcer(settings, stop):
        assert not stop.is_set()
        handlers[signal.SIGTERM](signal.SIGTERM, None)
        seen.append((settings, stop.is_set()))

    monkeypatch.setattr(enforce, "run_enforcer", run_enforcer)
    assert enforce.run(SETTINGS, build_parser().parse_args(["enforce"])) == 0
    assert seen == [(SETTINGS, True)]
    assert set(handlers) == {signal.SIGINT, signal.SIGTERM}
    assert logging.getLogger("kafka").level == logging.WARNING


def test_a_second_ctrl_c_gives_up_on_a_clean_stop(monkeypatch, handlers):
    def run_enforcer(settings, stop):
        handlers[signal.SIGINT](signal.SIGINT, None)
        handlers[signal.SIGINT](signal.SIGINT, None)

    monkeypatch.setattr(enforce, "run_enforcer", run_enforcer)
    with pytest.raises(KeyboardInterrupt):
        enforce.run(SETTINGS, build_parser().parse_args(["enforce"]))
