"""Storm's end of the multilang protocol, for testing spouts and bolts without Storm.

``start`` builds a component on in-memory streams and runs its ``initialize`` with the
given ``botscore.*`` options (and no ``BOTSCORE_*`` environment, so the test alone decides
the settings). ``StormLink`` reads back what the component wrote to Storm: the JSON
messages themselves, so a test sees the ids, anchors and values Storm would get, after
JSON, in the order they were sent.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import pytest
from streamparse import Tuple

from botscore.settings import MESSAGE_TIMEOUTS


class StormLink:
    def __init__(self) -> None:
        self.stream = io.BytesIO()

    def messages(self) -> list[dict[str, Any]]:
        text = self.stream.getvalue().decode()
        return [json.loads(chunk) for chunk in text.split("\nend\n") if chunk]

    def commands(self) -> list[tuple[str, Any]]:
        """(command, tuple id) in the order sent; an emit's id is its own (spouts only)."""
        return [(m["command"], m.get("id")) for m in self.messages()]

    def acked(self) -> list[Any]:
        return [m["id"] for m in self.messages() if m["command"] == "ack"]

    def failed(self) -> list[Any]:
        return [m["id"] for m in self.messages() if m["command"] == "fail"]

    def emitted(self) -> list[dict[str, Any]]:
        return [m for m in self.messages() if m["command"] == "emit"]


def start(
    component_class: type[Any],
    options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    *,
    task_id: int = 7,
    tasks: Sequence[int] = (),
) -> tuple[Any, StormLink]:
    """A component of ``component_class`` after ``initialize``, and its link to Storm:
    task ``task_id`` of its component's ``tasks`` (by default the only one), among an
    upstream component's tasks 1 and 2."""
    for name in list(os.environ):
        if name.startswith("BOTSCORE_"):
            monkeypatch.delenv(name)
    link = StormLink()
    component = component_class(
        input_stream=io.BytesIO(), output_stream=link.stream, rdb_signal=None
    )
    component.logger = logging.getLogger(f"tests.storm.{component_class.__name__}")
    # No published-model or feature-state checks unless a test asks: unit tests never reach
    # the stack's Redis.
    storm_conf = {
        MESSAGE_TIMEOUTS: True,
        "botscore.metrics.enabled": False,
        "botscore.scoring.release_check_s": 0,
        "botscore.aggregation.state_check_ms": 0,
        **options,
    }
    peers = {str(t): "component" for t in (tasks or [task_id])}
    context = {
        "taskid": task_id,
        "componentid": "component",
        "task->component": {"1": "upstream", "2": "upstream", **peers},
    }
    component.initialize(storm_conf, context)
    return component, link


def storm_tuple(tup_id: str, values: list[Any]) -> Tuple:
    """An input tuple as Storm hands it to a bolt: its values after a JSON round trip."""
    return Tuple(
        id=tup_id,
        component="upstream",
        stream="default",
        task=1,
        values=json.loads(json.dumps(values)),
    )
