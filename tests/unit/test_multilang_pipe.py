"""Our components' pipe to Storm under stops and continues (SIGSTOP, SIGCONT), as a profiler,
a debugger or job control cause: a real spout process writes large messages through
pystorm's serializer to a real pipe, and every message arrives whole, in order."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from tests.pauses import stop_and_continue

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 600
# What one spout process does: our Spout on stdin and stdout, as streamparse_run builds it,
# sends MESSAGES emits of about 130 KB (two pipe buffers) through its serializer.
CHILD = """
import sys
from botscore.multilang_pipe import Spout
spout = Spout(serializer=sys.argv[1])
for k in range(int(sys.argv[2])):
    values = [f"user-{k}-{i}-" + "x" * 500 for i in range(250)]
    spout.serializer.send_message({"command": "emit", "id": str(k), "tuple": [values, k]})
"""


def _messages(stream, serializer: str) -> Iterator[object]:
    """What the child wrote, message by message, read slowly at times (the pipe fills)."""
    unpacker = msgpack.Unpacker(raw=False)
    pending = b""
    rng = random.Random(3)
    while chunk := os.read(stream.fileno(), 65536):
        if rng.random() < 0.05:
            time.sleep(0.02)
        if serializer == "msgpack":
            unpacker.feed(chunk)
            yield from unpacker
        else:
            *whole, pending = (pending + chunk).split(b"\nend\n")
            yield from (json.loads(text) for text in whole)


@pytest.mark.parametrize("serializer", ["msgpack", "json"])
def test_every_message_arrives_whole_while_the_process_is_stopped_and_continued(serializer):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, serializer, str(MESSAGES)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    done = threading.Event()
    stops: list[int] = []
    pauser = threading.Thread(
        target=lambda: stops.append(stop_and_continue(child.pid, 100_000, done.is_set))
    )
    pauser.start()
    try:
        ids = []
        for message in _messages(child.stdout, serializer):
            assert isinstance(message, dict) and message["tuple"][1] == len(ids), str(message)[:80]
            assert len(message["tuple"][0]) == 250
            ids.append(message["id"])
    finally:
        done.set()
        pauser.join()
        child.kill()
        child.wait()
        child.stdout.close()
    assert ids == [str(k) for k in range(MESSAGES)]
    assert stops[0] >= 20, "too few stops to have cut a write"
