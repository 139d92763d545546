"""bin/storm stops a local cluster whose bolt subprocess died, as a cluster worker stops."""

from __future__ import annotations

import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DIED = "12:00:00.000 ERROR o.a.s.t.ShellBolt [Thread-45] Halting process: ShellBolt died. x\n"


def _filter(victim: int, ttl_s: int = 600) -> subprocess.Popen[str]:
    """The launcher's output filter, watching over ``victim`` in place of the JVM.

    Sourcing bin/storm defines its functions (and its shell options) without running it.
    """
    script = (
        f"source {shlex.quote(str(ROOT / 'bin' / 'storm'))}\n"
        f"stop_when_a_bolt_subprocess_dies {victim} {ttl_s}\n"
    )
    return subprocess.Popen(
        ["bash", "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def jvm() -> Iterator[subprocess.Popen[bytes]]:
    """A live process standing in for the LocalCluster JVM."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def _alive(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> bool:
    time.sleep(0.2)
    return process.poll() is None


def test_output_passes_through_and_a_dead_bolt_stops_the_cluster(
    jvm: subprocess.Popen[bytes],
) -> None:
    watcher = _filter(jvm.pid)
    out, err = watcher.communicate("first\nsecond\n" + DIED + "last, no newline", timeout=10)
    assert out == "first\nsecond\n" + DIED + "last, no newline\n"
    assert "a bolt subprocess died" in err
    assert jvm.wait(5) == -signal.SIGKILL


def test_a_cluster_that_is_being_stopped_is_left_to_stop(jvm: subprocess.Popen[bytes]) -> None:
    watcher = _filter(jvm.pid)
    assert _alive(watcher)
    watcher.send_signal(signal.SIGTERM)  # Ctrl-C or kill of the process group
    assert _alive(watcher), "the filter must outlive the signal to pass on the last lines"
    out, err = watcher.communicate(DIED, timeout=10)
    assert out == DIED and err == ""
    assert _alive(jvm)


def test_bolts_dying_at_the_end_of_the_ttl_are_the_cluster_stopping(
    jvm: subprocess.Popen[bytes],
) -> None:
    watcher = _filter(jvm.pid, ttl_s=1)
    time.sleep(1.5)
    out, err = watcher.communicate(DIED, timeout=10)
    assert out == DIED and err == ""
    assert _alive(jvm)
