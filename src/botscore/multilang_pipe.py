"""Storm's pipe from our Python components: every message written whole.

pystorm writes a message with one ``write`` of the stream it was given and ignores the
count returned. CPython's buffered stdout can return a short count: a write to a full pipe
that a stop and continue (SIGSTOP and SIGCONT, as ``py-spy``, a debugger or a shell's job
control cause) interrupts part way returns what went through. The rest of the message is
then lost, Storm reads the next message from its middle, and the worker dies, or worse,
takes a tuple whose values are shifted. ``Spout`` and ``Bolt`` here are streamparse's, with
their pipe to Storm replaced by ``WholeWrites``, which writes until every byte is out.
"""

from __future__ import annotations

import os
import select
from typing import IO, Any

from streamparse import Bolt as _Bolt
from streamparse import Spout as _Spout

__all__ = ["Bolt", "Spout", "WholeWrites"]


class WholeWrites:
    """A stream for a pystorm serializer: ``write`` returns only once all of its message
    (bytes, or text written as UTF-8) is in the pipe, or raises ``OSError``."""

    def __init__(self, stream: IO[Any]) -> None:
        # Kept: a text wrapper closes its file descriptor when it is collected.
        self._stream = stream
        self._stream.flush()
        try:
            self._fd: int | None = stream.fileno()
        except OSError:  # io.UnsupportedOperation: in memory, as in tests
            self._fd = None

    def write(self, message: bytes | str) -> int:
        if self._fd is None:  # an in-memory stream takes every write whole
            self._stream.write(message)
            self._stream.flush()
            return len(message)
        data = message.encode("utf-8") if isinstance(message, str) else message
        rest = memoryview(data)
        while rest:
            try:
                written = os.write(self._fd, rest)
            except BlockingIOError:  # a pipe another program left non-blocking
                select.select([], [self._fd], [])
                continue
            rest = rest[written:]
        return len(message)

    def flush(self) -> None:
        """Nothing is held here: ``write`` wrote it all."""


def _write_whole(component: Any) -> None:
    component.serializer.output_stream = WholeWrites(component.serializer.output_stream)


# streamparse ships no types: its classes are Any to mypy.
class Spout(_Spout):  # type: ignore[misc]
    """streamparse's ``Spout``, whose messages reach Storm whole (``WholeWrites``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _write_whole(self)


class Bolt(_Bolt):  # type: ignore[misc]
    """streamparse's ``Bolt``, whose messages reach Storm whole (``WholeWrites``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _write_whole(self)
