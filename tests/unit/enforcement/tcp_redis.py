"""A Redis as a real redis-py client sees one over TCP: hung (SIGSTOPped), or answering.

While hung it accepts connections and keeps them, but never replies, as a stopped Redis
whose kernel still completes the handshakes; once ``answering`` it speaks enough RESP for
an edge: MGET from ``values``, ``+OK`` to anything else (the client's ``CLIENT SETINFO``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import BinaryIO


class TcpRedis:
    def __init__(self, port: int = 0) -> None:
        self.values: dict[str, bytes] = {}
        self.answering = threading.Event()
        self.connections = 0  # accepted so far: each is one call of a client that gave up
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        """Answer a hung Redis's connection never; an answering one's for as long as it lasts."""
        with conn, conn.makefile("rb") as reader:
            try:
                while (command := _read_command(reader)) is not None:
                    self.answering.wait()
                    conn.sendall(self._reply(command))
            except OSError:
                return

    def _reply(self, command: list[bytes]) -> bytes:
        if command[0].upper() != b"MGET":
            return b"+OK\r\n"
        found = [self.values.get(key.decode()) for key in command[1:]]
        items = [b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v) for v in found]
        return b"*%d\r\n" % len(found) + b"".join(items)

    def close(self) -> None:
        """Stop listening and drop every connection (shutdown wakes the blocked threads)."""
        self.answering.set()
        for sock in [self._listener, *self._open]:
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _read_command(reader: BinaryIO) -> list[bytes] | None:
    """One command (a RESP array of bulk strings); None once the client closed."""
    header = reader.readline()
    if not header:
        return None
    args = []
    for _ in range(int(header[1:])):
        length = int(reader.readline()[1:])
        args.append(reader.read(length + 2)[:-2])
    return args
