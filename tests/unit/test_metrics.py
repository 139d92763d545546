"""Metrics cross a network boundary (UDP to the DogStatsD agent): read the real datagrams."""

import socket

import pytest

from botscore.metrics import Metrics
from botscore.settings import MetricsSettings
from botscore.vocabulary import Component


@pytest.fixture
def statsd_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def _receive(sock, count):
    lines = []
    while len(lines) < count:
        lines.extend(sock.recv(65535).decode().splitlines())
    return lines


def test_metrics_carry_namespace_component_and_tags(statsd_socket):
    port = statsd_socket.getsockname()[1]
    metrics = Metrics(MetricsSettings(statsd_port=port), "classifier", tags=["model:baseline:1"])
    metrics.count("scored", 5)
    metrics.histogram("batch_size", 128, tags=["reason:full"])
    metrics.close()
    lines = _receive(statsd_socket, 2)
    assert "botscore.classifier.scored:5|c|#component:classifier,model:baseline:1" in lines
    assert (
        "botscore.classifier.batch_size:128|h|#reason:full,component:classifier,model:baseline:1"
        in lines
    )


def test_disabled_metrics_send_nothing(statsd_socket):
    port = statsd_socket.getsockname()[1]
    metrics = Metrics(MetricsSettings(statsd_port=port, enabled=False), Component.FEATURES_SPOUT)
    metrics.count("in")
    metrics.close()
    statsd_socket.settimeout(0.5)
    with pytest.raises(TimeoutError):
        statsd_socket.recv(65535)
