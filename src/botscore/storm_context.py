"""What a component learns from the context Storm hands it at start-up.

Storm's multilang handshake names the task (``taskid``), its component (``componentid``)
and every task of the topology (``task->component``). Tasks that split work between them
(the publishers, each over its own shards of the feature state) need their place among
their component's tasks, which Storm's Java API offers (``getThisTaskIndex``) and the
handshake does not: it is derived here the way Storm numbers it, by task id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botscore.errors import ConfigError

__all__ = ["TaskPlace", "task_place"]


@dataclass(frozen=True)
class TaskPlace:
    """Task ``index`` of its component's ``count`` tasks (0-based, in task id order)."""

    index: int
    count: int


def task_place(context: Mapping[str, Any]) -> TaskPlace:
    """This task's place among its component's tasks, from Storm's handshake ``context``."""
    try:
        task = int(context["taskid"])
        component = context["componentid"]
        tasks = context["task->component"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"Storm's context lacks the task's place ({exc!r}): {context!r}") from exc
    ids = sorted(int(t) for t, name in tasks.items() if name == component)
    if task not in ids:
        raise ConfigError(f"task {task} is not one of component {component!r}'s tasks {ids}")
    return TaskPlace(ids.index(task), len(ids))
