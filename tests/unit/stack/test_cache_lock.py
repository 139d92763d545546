"""stack/lib.sh's lock on the shared download cache: two checkouts installing into one
cache take turns, a stuck holder is named rather than waited on for good, and a daemon
started after an install does not hold the lock for its whole life."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LIB = ROOT / "stack" / "lib.sh"


def _bash(script: str, cache: Path, **env: str) -> subprocess.Popen[str]:
    """``script`` run by bash after sourcing stack/lib.sh, with ``cache`` as the cache."""
    return subprocess.Popen(
        ["bash", "-c", f"source {shlex.quote(str(LIB))}\nlog_name=test\n{script}"],
        env={**os.environ, "BOTSCORE_CACHE": str(cache), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _holding(cache: Path, then: str = "sleep 3") -> subprocess.Popen[str]:
    holder = _bash(f"lock_cache storm-1\necho locked\n{then}", cache)
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_second_install_waits_for_the_first(tmp_path):
    holder = _holding(tmp_path)
    started = time.monotonic()
    second = _bash("lock_cache storm-1\necho got it", tmp_path)
    out, err = second.communicate(timeout=30)
    waited = time.monotonic() - started
    holder.wait(30)
    assert (second.returncode, out) == (0, "got it\n"), err
    assert "waiting for another checkout's install" in err
    assert waited > 2, f"the lock was taken after {waited:.1f} s, while the first held it"


def test_a_lock_held_too_long_is_an_error_naming_the_lock(tmp_path):
    holder = _holding(tmp_path, then="sleep 30")
    try:
        second = _bash("lock_cache storm-1\necho got it", tmp_path, BOTSCORE_CACHE_LOCK_TIMEOUT="1")
        out, err = second.communicate(timeout=30)
        assert second.returncode == 1 and out == ""
        assert f"{tmp_path}/storm-1.lock still held after 1 s" in err
    finally:
        holder.kill()
        holder.wait(30)


def test_other_names_and_released_locks_do_not_wait(tmp_path):
    holder = _holding(tmp_path, then="sleep 30")
    try:
        other = _bash("lock_cache kafka-1\necho got it", tmp_path)
        assert other.communicate(timeout=5) == ("got it\n", "")
    finally:
        holder.kill()
        holder.wait(30)
    # A daemon started after unlock_cache, as kafka.sh start does after its install, outlives
    # the script without keeping the lock.
    daemon_starter = _bash(
        "lock_cache kafka-1\nunlock_cache\nsleep 30 >/dev/null 2>&1 &\necho $!", tmp_path
    )
    out, _ = daemon_starter.communicate(timeout=10)
    try:
        after = _bash("lock_cache kafka-1\necho got it", tmp_path)
        assert after.communicate(timeout=5) == ("got it\n", "")
    finally:
        os.kill(int(out), 9)
