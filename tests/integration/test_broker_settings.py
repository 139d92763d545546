"""kafka.sh against the running broker: one started from other settings than the script's
is called out by ``start`` and ``status`` (and left running), not reported up to date."""

from __future__ import annotations

import subprocess

import pytest

from .harness import ROOT, stack_env

pytestmark = pytest.mark.integration

KAFKA_SH = str(ROOT / "stack/kafka/kafka.sh")


def _kafka_sh(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KAFKA_SH, command],
        capture_output=True,
        text=True,
        env=stack_env(**env),
        timeout=120,
        check=False,
    )


def test_a_broker_started_from_other_settings_is_called_out(kafka_settings):
    # The settings make up started the broker with: nothing to say.
    status = _kafka_sh("status")
    assert status.returncode == 0 and "other settings" not in status.stdout, status
    start = _kafka_sh("start")
    assert start.returncode == 0 and "WARNING" not in start.stderr, start
    assert "already up" in start.stderr

    # Other JVM options than the running broker's, as after an edit of the script's inputs.
    other = {"KAFKA_HEAP_OPTS": "-Xms256m -Xmx640m"}
    status = _kafka_sh("status", **other)
    assert status.returncode == 0, status
    assert "started from other settings than these" in status.stdout
    start = _kafka_sh("start", **other)
    assert start.returncode == 0, start
    assert "was started from other settings than these" in start.stderr
    assert "kafka.sh stop && kafka.sh start" in start.stderr
    # Left running for whatever uses it.
    assert "up (pid" in _kafka_sh("status").stdout
