"""``LogTail``: complete lines from a saved position, across rotations and truncations.

Real files in a temporary folder, written and renamed as nginx and logrotate do.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from botscore.errors import ConfigError
from botscore.web_edge.log_tail import LogTail, Position, load_position, save_position


def _texts(lines: list[tuple[bytes, Position]]) -> list[bytes]:
    return [line for line, _ in lines]


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as out:
        out.write(data)


def test_only_lines_whose_newline_is_written_are_returned(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"one\ntw")
    tail = LogTail(log, None)
    lines = tail.read_lines(100)
    assert _texts(lines) == [b"one"]
    assert lines[0][1] == Position(log.stat().st_ino, 4)
    assert tail.read_lines(100) == []
    _append(log, b"o\nthree\n")
    lines = tail.read_lines(100)
    assert _texts(lines) == [b"two", b"three"]
    assert [p.offset for _, p in lines] == [8, 14]
    assert tail.position.offset == 14


def test_a_batch_stops_at_its_size_and_the_next_goes_on_after_it(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(10)) + b"partial")
    tail = LogTail(log, None)
    assert _texts(tail.read_lines(3)) == [b"line 0", b"line 1", b"line 2"]
    assert _texts(tail.read_lines(100)) == [b"line %d" % i for i in range(3, 10)]
    _append(log, b" line\n")
    assert _texts(tail.read_lines(100)) == [b"partial line"]


def test_a_restart_goes_on_from_the_saved_position(tmp_path: Path) -> None:
    log, saved = tmp_path / "access.log", tmp_path / "access.log.shipped"
    log.write_bytes(b"a\nb\nc\n")
    assert load_position(saved) is None
    first = LogTail(log, None).read_lines(2)
    save_position(saved, first[-1][1])
    assert not (tmp_path / "access.log.shipped.tmp").exists()
    assert _texts(LogTail(log, load_position(saved)).read_lines(100)) == [b"c"]


def test_seek_goes_back_to_a_position_to_read_lines_again(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"a\nb\nc\n")
    tail = LogTail(log, None)
    lines = tail.read_lines(100)
    tail.seek(lines[0][1])
    assert _texts(tail.read_lines(100)) == [b"b", b"c"]
    tail.seek(None)
    assert _texts(tail.read_lines(100)) == [b"a", b"b", b"c"]


def test_a_rotated_log_is_read_to_its_end_before_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"old 1\n")
    tail = LogTail(log, None)
    assert _texts(tail.read_lines(100)) == [b"old 1"]
    _append(log, b"old 2\n")
    os.rename(log, tmp_path / "access.log.1")
    _append(tmp_path / "access.log.1", b"old 3\n")  # written before nginx reopened
    log.write_bytes(b"new 1\n")
    lines = tail.read_lines(100)
    assert _texts(lines) == [b"old 2", b"old 3", b"new 1"]
    assert lines[-1][1] == Position(log.stat().st_ino, 6)


def test_a_restart_finds_the_file_it_was_reading_after_its_rotation(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"old 1\nold 2\n")
    position = LogTail(log, None).read_lines(1)[-1][1]
    os.rename(log, tmp_path / "access.log.1")
    log.write_bytes(b"new 1\n")
    assert _texts(LogTail(log, position).read_lines(100)) == [b"old 2", b"new 1"]


def test_a_file_gone_since_is_reported_and_the_current_one_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"new 1\n")
    gone = Position(inode=log.stat().st_ino + 12345, offset=99)
    with caplog.at_level(logging.WARNING):
        assert _texts(LogTail(log, gone).read_lines(100)) == [b"new 1"]
    assert "is gone: its lines after that, if any, were not shipped" in caplog.text


def test_a_truncated_log_is_read_again_from_its_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"a long first line\n")
    tail = LogTail(log, None)
    tail.read_lines(100)
    with log.open("r+b") as out:  # copytruncate
        out.truncate(0)
    _append(log, b"x\n")
    with caplog.at_level(logging.WARNING):
        assert _texts(tail.read_lines(100)) == [b"x"]
    assert "shorter than the 18 already read" in caplog.text


def test_a_log_not_written_yet_is_read_once_it_is(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    tail = LogTail(log, None)
    assert tail.read_lines(100) == []
    log.write_bytes(b"first\n")
    assert _texts(tail.read_lines(100)) == [b"first"]


def test_a_line_longer_than_a_read_is_assembled(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    long = b"x" * (3 << 20)
    log.write_bytes(long + b"\nshort\n")
    assert _texts(LogTail(log, None).read_lines(100)) == [long, b"short"]


@pytest.mark.parametrize("saved", ["{bad", "{}", '{"inode": "x", "offset": 1}', "[]"])
def test_a_damaged_position_is_a_clear_error_saying_what_to_do(tmp_path: Path, saved) -> None:
    position = tmp_path / "access.log.shipped"
    position.write_text(saved)
    with pytest.raises(ConfigError, match=r"access\.log\.shipped cannot be read .*delete it"):
        load_position(position)
