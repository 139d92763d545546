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


def _start(tmp_path: Path, command: str) -> subprocess.Popen[str]:
    """keep-running.sh on ``command`` (bash), its log in ``tmp_path``, in its own group."""
    return subprocess.Popen(
        [str(KEEP_RUNNING), "stand-in", str(tmp_path / "stand-in.log"), "bash", "-c", command],
        env={**os.environ, "BOTSCORE_RESTART_DELAY_S": "0.1"},
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
