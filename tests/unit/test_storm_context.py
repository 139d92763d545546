"""A task's place among its component's tasks, from Storm's handshake context."""

import pytest

from botscore.errors import ConfigError
from botscore.storm_context import TaskPlace, task_place


def _context(task, component, tasks):
    return {"taskid": task, "componentid": component, "task->component": tasks}


def test_the_place_is_by_task_id_among_the_components_tasks_only():
    # As Storm sends it: ids as strings, the other components' tasks among them.
    tasks = {"3": "publish", "4": "due", "11": "due", "9": "due", "1": "__acker"}
    places = [task_place(_context(t, "due", tasks)) for t in (4, 9, 11)]
    assert places == [TaskPlace(0, 3), TaskPlace(1, 3), TaskPlace(2, 3)]
    assert task_place(_context(3, "publish", tasks)) == TaskPlace(0, 1)


@pytest.mark.parametrize(
    "context",
    [
        {"taskid": 4},
        _context(5, "due", {"4": "due"}),
        _context(4, "due", {"4": "other"}),
        _context("x", "due", {"4": "due"}),
    ],
)
def test_a_context_without_the_tasks_place_is_refused(context):
    with pytest.raises(ConfigError):
        task_place(context)
