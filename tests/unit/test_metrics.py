"""Metrics cross a network boundary (UDP to the DogStatsD agent): read the real datagrams."""

import socket

import pytest

from botscore import metrics as metrics_module
from botscore.metrics import Metrics, storm_tags
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


def test_an_agent_given_by_name_is_looked_up_once_and_gets_the_datagrams(
    statsd_socket, monkeypatch
):
    port = statsd_socket.getsockname()[1]
    lookups = []
    real = socket.getaddrinfo

    def counting(*args, **kwargs):
        lookups.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    metrics = Metrics(MetricsSettings(statsd_host="localhost", statsd_port=port), "classifier")
    for _ in range(2000):  # many datagrams' worth
        metrics.histogram("batch_size", 500)
    metrics.close()
    # the name once; the client's own lookups are of the numeric address, once per socket
    assert lookups.count("localhost") == 1
    assert len(lookups) <= 2, lookups
    assert "botscore.classifier.batch_size:500|h|#component:classifier" in _receive(
        statsd_socket, 1
    )


def test_an_agent_name_that_does_not_resolve_turns_metrics_off_then_is_retried(monkeypatch, caplog):
    lookups = []
    real = socket.getaddrinfo

    def counting(*args, **kwargs):
        lookups.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    clock = [1000.0]
    monkeypatch.setattr(metrics_module.time, "monotonic", lambda: clock[0])
    # .invalid never resolves (RFC 6761)
    metrics = Metrics(MetricsSettings(statsd_host="agent.invalid"), "classifier")
    for _ in range(2000):
        metrics.count("scored", 500)
    assert lookups == ["agent.invalid"]
    assert "agent.invalid:8125 does not resolve" in caplog.text
    clock[0] += 59.9
    metrics.count("scored", 500)
    assert lookups == ["agent.invalid"]  # a minute between lookups
    clock[0] += 0.1
    metrics.count("scored", 500)
    assert lookups == ["agent.invalid", "agent.invalid"]
    metrics.close()


def test_storm_components_say_their_topology_and_task():
    assert storm_tags({"topology.name": "scoring-1a2b"}, {"taskid": 7}) == [
        "topology:scoring-1a2b",
        "task:7",
    ]
