"""Complete lines of a growing log file, from a saved position, across rotations.

A position is the file's inode and a byte offset, so a restart goes on where the last
confirmed line ended, in the same file even after it was renamed. Rotation as logrotate
does it (``access.log`` renamed ``access.log.1``, nginx reopening a new ``access.log``)
is followed: the renamed file is read to its end before the new one is started. A file
cut shorter than the position (``copytruncate``) is read again from its start, and a
saved file that is gone entirely is reported: either way lines may have been lost, and the
log says so. A line is only returned once its newline is written: nginx may be half-way.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from botscore.errors import ConfigError

__all__ = ["LogTail", "Position", "load_position", "save_position"]

log = logging.getLogger(__name__)

# The name logrotate gives a rotated file (without compression, which waits a cycle).
ROTATED_SUFFIX = ".1"
# Bytes read at a time; a longer line is assembled over several reads.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Position:
    inode: int
    offset: int


def load_position(path: Path) -> Position | None:
    """The position saved at ``path``; None when there is none yet."""
    try:
        saved = json.loads(path.read_text())
        return Position(int(saved["inode"]), int(saved["offset"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ValueError: JSON's too
        raise ConfigError(
            f"the shipped position {path} cannot be read ({type(exc).__name__}: {exc}); "
            "delete it to ship the log from its start again (its requests are deduplicated "
            "by id downstream), or restore it"
        ) from None


def save_position(path: Path, position: Position) -> None:
    """Replace the saved position atomically: a crash leaves the old one or the new one."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w") as out:
        json.dump(asdict(position), out)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


class LogTail:
    def __init__(self, path: Path, start: Position | None) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self._inode = -1
        self._offset = 0
        self._partial = b""
        self.seek(start)

    @property
    def position(self) -> Position:
        """Where the next line starts."""
        return Position(self._inode, self._offset)

    def unread_bytes(self) -> int:
        """Bytes written to the log but not returned yet (the rest of a rotated file
        being finished, and all of the new one)."""
        behind = 0
        if self._file is not None:
            behind = os.fstat(self._file.fileno()).st_size - self._offset
        current = _inode(self.path)
        if current is not None and current != self._inode:
            behind += self.path.stat().st_size
        return max(0, behind)

    def seek(self, position: Position | None) -> None:
        """Go back (or on) to ``position``; None is the current file's start."""
        self._close()
        if position is None:
            self._open(self.path, 0)
            return
        for candidate in (self.path, self.path.with_name(self.path.name + ROTATED_SUFFIX)):
            if _inode(candidate) == position.inode:
                self._open(candidate, position.offset)
                return
        log.warning(
            "%s: the file last read (inode %d, at byte %d) is gone: its lines after that, if "
            "any, were not shipped; reading the current file from its start",
            self.path,
            position.inode,
            position.offset,
        )
        self._open(self.path, 0)

    def _open(self, path: Path, offset: int) -> None:
        try:
            file = path.open("rb")
        except FileNotFoundError:
            return  # not written yet: read_lines tries again
        size = os.fstat(file.fileno()).st_size
        if offset > size:
            log.warning(
                "%s is %d bytes, shorter than the %d already read (truncated?): reading it "
                "again from its start",
                path,
                size,
                offset,
            )
            offset = 0
        file.seek(offset)
        self._file, self._inode, self._offset, self._partial = file, _fstat_inode(file), offset, b""

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None

    def read_lines(self, max_lines: int) -> list[tuple[bytes, Position]]:
        """Up to ``max_lines`` complete lines (without their newline), each with the
        position after it."""
        if self._file is None:
            self._open(self.path, 0)
            if self._file is None:
                return []
        lines: list[tuple[bytes, Position]] = []
        while len(lines) < max_lines:
            chunk = self._file.read(_CHUNK)
            if chunk:
                self._take(chunk, lines, max_lines)
                continue
            if not self._moved_on():
                break
        return lines

    def _take(self, chunk: bytes, lines: list[tuple[bytes, Position]], max_lines: int) -> None:
        """Split ``chunk`` into lines; what is past ``max_lines`` is read again next time."""
        data = self._partial + chunk
        start = 0
        while len(lines) < max_lines:
            end = data.find(b"\n", start)
            if end < 0:
                break
            # Offsets count from the file's start: the partial line began at _offset.
            self._offset += end + 1 - start
            lines.append((data[start:end], Position(self._inode, self._offset)))
            start = end + 1
        rest = data[start:]
        if len(lines) >= max_lines and rest:
            assert self._file is not None
            self._file.seek(self._offset)
            rest = b""
        self._partial = rest

    def _moved_on(self) -> bool:
        """At the end of the open file: switch to the next one if the log was rotated or
        truncated; True when there is more to read."""
        assert self._file is not None
        current = _inode(self.path)
        if current is not None and current != self._inode:
            if self._partial:
                log.warning(
                    "%s: the rotated file ends without a newline; its last %d bytes are not a "
                    "line and were not shipped",
                    self.path,
                    len(self._partial),
                )
            self._close()
            self._open(self.path, 0)
            return self._file is not None
        size = os.fstat(self._file.fileno()).st_size
        if size < self._offset:
            self._close()
            self._open(self.path, self._offset)  # warns, and starts from 0
            return True
        return False


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _fstat_inode(file: BinaryIO) -> int:
    return os.fstat(file.fileno()).st_ino
