"""`botscore top` on a real UDP socket: the components' own client sends, it shows and draws."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from botscore.cli.main import main
from botscore.errors import BotscoreError
from botscore.metrics import Metrics
from botscore.settings import MetricsSettings
from botscore.vocabulary import Component

ROOT = Path(__file__).resolve().parents[3]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _top_while(send: Callable[[threading.Event], None], argv: list[str]) -> int:
    """``botscore top argv`` while ``send`` runs in a thread, told to stop once top has."""
    stop = threading.Event()
    sender = threading.Thread(target=send, args=(stop,))
    sender.start()
    try:
        return main(["top", *argv])
    finally:
        stop.set()
        sender.join()


def test_top_shows_what_the_components_send_and_draws_it(tmp_path, capsys):
    port = free_udp_port()
    png = tmp_path / "top.png"

    def send(stop: threading.Event) -> None:
        metrics = Metrics(MetricsSettings(statsd_port=port), Component.CLASSIFIER)
        while not stop.is_set():
            metrics.count("scored", 500)
            metrics.histogram("predict_seconds", 0.003)
            metrics.flush()
            time.sleep(0.05)
        metrics.close()

    status = _top_while(
        send, ["--port", str(port), "--every", "0.5", "--for", "2", "--png", str(png)]
    )
    out = capsys.readouterr().out
    assert status == 0
    lines = out.splitlines()
    # some screen showed the users scored per second and the model call's p99
    assert any(line.startswith("users scored") and line.endswith("/s") for line in lines), out
    assert any(line.startswith("model call p99") and line.endswith(" 3.0 ms") for line in lines)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_consumer_that_stops_sending_is_shown_silent_past_its_lag_interval(capsys, monkeypatch):
    """The bound comes from ``kafka.lag_interval_ms``: 100 ms makes it 2.2 s, not 12 s."""
    monkeypatch.setenv("BOTSCORE_KAFKA_LAG_INTERVAL_MS", "100")
    port = free_udp_port()

    def send(stop: threading.Event) -> None:  # a second of lag gauges, then a hang
        metrics = Metrics(MetricsSettings(statsd_port=port), Component.ENFORCER)
        for _ in range(20):
            metrics.gauge("lag", 1031, tags=["topic:scores", "partition:0"])
            metrics.flush()
            time.sleep(0.05)
        metrics.close()

    status = _top_while(send, ["--port", str(port), "--every", "0.5", "--for", "4"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    shown = [line.split(maxsplit=2)[2] for line in lines if line.startswith("components silent")]
    assert shown[0] == "-"  # while it sends
    assert re.fullmatch(r"enforcer [23]\.\d s", shown[-1]), shown


def test_a_port_already_taken_is_a_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(BotscoreError, match="is a Datadog agent there"):
            from botscore.cli import top
            from botscore.cli.main import build_parser
            from botscore.settings import Settings

            args = build_parser().parse_args(["top", "--port", str(port), "--for", "1"])
            top.run(Settings(), args)


def test_stopped_by_sigterm_it_still_draws(tmp_path):
    """`make run` stops it with SIGTERM, as it stops the other processes."""
    port = free_udp_port()
    png = tmp_path / "top.png"
    command = ["top", "--port", str(port), "--every", "0.2", "--png", str(png)]
    top = subprocess.Popen(
        [sys.executable, "-m", "botscore.cli", *command],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # its first screen: it is listening, and its SIGTERM handler is in place
        first = top.stdout.readline()
        assert first.startswith("botscore top"), first
        metrics = Metrics(MetricsSettings(statsd_port=port), Component.CLASSIFIER)
        for _ in range(20):  # two seconds of scores: a few screens
            metrics.count("scored", 500)
            metrics.flush()
            time.sleep(0.1)
        top.send_signal(signal.SIGTERM)
        out, _ = top.communicate(timeout=60)
    finally:
        top.kill()
    assert top.returncode == 0, out
    assert "users scored" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--png", "{tmp}/a.png"], "is a folder, not a file to write"),
        (["--every", "1e10"], "must be at most a day"),
        (["--window", "1e308"], "must be at most a day"),
    ],
)
def test_arguments_that_cannot_work_are_refused_before_the_run(tmp_path, capsys, argv, says):
    (tmp_path / "a.png").mkdir()
    with pytest.raises(SystemExit) as stopped:
        main(["top", "--port", "1", *(a.format(tmp=tmp_path) for a in argv)])
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_for_ends_the_run_even_when_nothing_arrives_before_the_next_screen():
    started = time.monotonic()
    assert main(["top", "--port", str(free_udp_port()), "--every", "30", "--for", "1"]) == 0
    assert time.monotonic() - started < 20, "--for 1 waited for the 30 s screen"
