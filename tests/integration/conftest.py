"""Fixtures that drive the real local stack: the Kafka broker and `sparse run` on Storm.

Plain helpers live in ``harness.py``; a missing service fails the test with the command
that starts it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from botscore.settings import KafkaSettings

from .harness import BOOTSTRAP, stack_env


@pytest.fixture(scope="session")
def kafka_settings() -> KafkaSettings:
    host, port = BOOTSTRAP.split(",")[0].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"no Kafka broker at {BOOTSTRAP} ({exc}): start the stack with `make up`")
    return KafkaSettings(bootstrap_servers=BOOTSTRAP)


@pytest.fixture(scope="session")
def storm_on_path() -> None:
    env = stack_env()
    if (
        shutil.which("storm", path=env["PATH"]) is None
        or shutil.which("sparse", path=env["PATH"]) is None
    ):
        pytest.fail("storm or sparse not on PATH: run `make up` (installs Storm and the venv)")
    version = subprocess.run(["storm", "version"], env=env, capture_output=True, text=True)
    if version.returncode != 0:
        pytest.fail(f"`storm version` failed: {version.stderr[-2000:]}\nrun `make up`")
