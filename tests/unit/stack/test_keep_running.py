"""stack/keep-running.sh, which keeps `make run`'s processes up: a command that dies is
started again, one that keeps dying is given up on by name, and a SIGTERM to its process
group (`make run`'s clean-up) ends it quietly. The commands are small shell stand-ins."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
KEEP_RUNNING = ROOT / "stack" / "keep-running.sh"


def _start(
    tmp_path: Path, command: str, name: str = "stand-in", **env: str
) -> subprocess.Popen[str]:
    """keep-running.sh on ``command`` (bash), its log in ``tmp_path``, in its own group."""
    return subprocess.Popen(
        [str(KEEP_RUNNING), name, str(tmp_path / f"{name}.log"), "bash", "-c", command],
        env={**os.environ, "BOTSCORE_RESTART_DELAY_S": "0.1", **env},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(path: Path, text: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never in {path}"
        time.sleep(0.05)


def test_a_command_that_dies_is_started_again_and_a_sigterm_ends_it_quietly(tmp_path):
    runs = tmp_path / "runs"
    # dies twice, then stays up
    command = f'echo run >> {runs}; [ "$(wc -l < {runs})" -ge 3 ] && exec sleep 60; exit 3'
    process = _start(tmp_path, command)
    _wait_for(runs, "run\nrun\nrun\n")
    time.sleep(0.2)
    assert process.poll() is None
    os.killpg(process.pid, signal.SIGTERM)  # as make run's clean-up does
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    restarts = [line for line in err.splitlines() if "starting it again" in line]
    assert len(restarts) == 2, err
    assert restarts[0].startswith("run-local: stand-in: stopped (exit 3); starting it again")
    assert (tmp_path / "stand-in.log").read_text().count("=== ") == 3


def test_a_command_that_keeps_dying_is_given_up_on_with_its_status(tmp_path):
    process = _start(tmp_path, "exit 7")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 7
    assert err.count("starting it again") == 5
    assert "stopped (exit 7) for the 6th time in 10 minutes: giving up" in err


def test_commands_sharing_a_start_lock_start_in_turn_each_until_it_says_it_started(tmp_path):
    """As two topologies must, each rebuilding _build/ as it starts: both start at once,
    and both die together after starting, and each start waits for the other's."""
    events = tmp_path / "events"
    lock = {
        "BOTSCORE_START_LOCK": str(tmp_path / "build.lock"),
        "BOTSCORE_STARTED_PATTERN": "reading .* as group",
    }
    processes = []
    for name in ("a", "b"):
        # started (after building for a while), then dies once it has run a little
        command = (
            f"echo '{name} building' >> {events}; sleep 0.6; echo '{name} built' >> {events}; "
            f"echo 'reading web-logs as group g'; "
            f"[ $(grep -c '{name} building' {events}) -ge 3 ] && exec sleep 60; sleep 0.3; exit 3"
        )
        processes.append(_start(tmp_path, command, name, **lock))
    try:
        _wait_for(events, "built", timeout_s=30)
        deadline = time.monotonic() + 30
        while events.read_text().count("built") < 6:
            assert time.monotonic() < deadline, events.read_text()
            time.sleep(0.05)
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        process.communicate(timeout=20)
        assert process.returncode == 0
    lines = events.read_text().splitlines()
    # Never two builds at once: each "building" is followed by its own "built".
    assert all(
        lines[i].split()[0] == lines[i + 1].split()[0] and lines[i + 1].endswith("built")
        for i in range(0, len(lines) - 1, 2)
    ), lines
