"""bin/storm stops a local cluster whose bolt subprocess died, as a cluster worker stops."""

from __future__ import annotations

import select
import shlex
import signal
import subprocess
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


def _echoed(watcher: subprocess.Popen[str], line: str) -> bool:
    """Whether the filter passes ``line`` on: it is running its loop (its trap set)."""
    assert watcher.stdin is not None and watcher.stdout is not None
    watcher.stdin.write(line + "\n")
    watcher.stdin.flush()
    if not select.select([watcher.stdout], [], [], 10)[0]:
        return False
    return watcher.stdout.readline() == line + "\n"


def _was_not_killed(jvm: subprocess.Popen[bytes]) -> bool:
    """Whether the filter left ``jvm`` alone; call it once the filter has exited.

    The filter kills before it exits, so a SIGKILL from it is already pending and wins.
    """
    jvm.terminate()
    return jvm.wait(5) == -signal.SIGTERM


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
    assert _echoed(watcher, "first")
    watcher.send_signal(signal.SIGTERM)  # Ctrl-C or kill of the process group
    assert _echoed(watcher, "second"), "the filter must outlive the signal to pass on lines"
    out, err = watcher.communicate(DIED, timeout=10)
    assert out == DIED and err == ""
    assert _was_not_killed(jvm)


def test_bolts_dying_at_the_end_of_the_ttl_are_the_cluster_stopping(
    jvm: subprocess.Popen[bytes],
) -> None:
    watcher = _filter(jvm.pid, ttl_s=0)  # the TTL is over from the start
    out, err = watcher.communicate(DIED, timeout=10)
    assert out == DIED and err == ""
    assert _was_not_killed(jvm)


def test_each_local_cluster_gets_a_temporary_dir_and_those_of_gone_ones_are_deleted(
    tmp_path: Path,
) -> None:
    """Storm leaves a killed local cluster's temporary files (75 MB a run) behind: the
    launcher gives each JVM a directory named by its pid and deletes those of JVMs that
    are gone (a pid now another program's counts as gone)."""
    root = tmp_path / "storm-local"
    gone = subprocess.Popen(["true"])
    gone.wait()
    other = subprocess.Popen(["sleep", "60"])
    cluster = subprocess.Popen(["bash", "-c", "exec -a org.apache.storm.LocalCluster sleep 60"])
    try:
        for pid in (gone.pid, other.pid, cluster.pid):
            (root / str(pid) / "storm_rocks").mkdir(parents=True)
        (root / "not-a-pid").mkdir()
        script = f"source {shlex.quote(str(ROOT / 'bin' / 'storm'))}\nlocal_tmp_dir; echo $$\n"
        done = subprocess.run(
            ["bash", "-c", script],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BOTSCORE_STATE": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        made, shell = done.stdout.split()
        assert made == str(root / shell)
        assert sorted(p.name for p in root.iterdir()) == sorted([str(cluster.pid), shell])
        assert (root / str(cluster.pid) / "storm_rocks").is_dir()
    finally:
        for process in (other, cluster):
            process.kill()
            process.wait()
