"""A tiny Redis client (RESP2 over one TCP socket), so the examples need no dependency.

    r = Redis.from_address("127.0.0.1:6379")
    r.command("INCR", "hits")  # -> 1

Enough for the examples (INCR, GET, LPOP, RPUSH, LRANGE...); not a general
client: one connection, one command at a time (share it under a lock).
"""

from __future__ import annotations

import socket
from typing import Union

Reply = Union[None, int, bytes, str, list]  # list of Reply


class RedisError(Exception):
    """An error reply from the server (``-ERR ...``)."""


class Redis:
    """One connection to a Redis server."""

    def __init__(self, host: str = "127.0.0.1", port: int = 6379, timeout: float = 5.0) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file = None

    @classmethod
    def from_address(cls, address: str, timeout: float = 5.0) -> Redis:
        """``HOST:PORT`` (or ``redis://HOST:PORT``)."""
        if address.startswith("redis://"):
            address = address[len("redis://") :]
        host, _, port = address.rstrip("/").rpartition(":")
        return cls(host or "127.0.0.1", int(port or 6379), timeout)

    def connect(self) -> None:
        self.close()
        self._sock = socket.create_connection(self.address, timeout=self.timeout)
        self._file = self._sock.makefile("rb")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def __enter__(self) -> Redis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self, *args: object) -> Reply:
        """Send one command and return its reply (``RedisError`` for an error reply)."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        try:
            self._sock.sendall(b"".join(out))
            return self._read()
        except OSError:
            self.close()  # the next command reconnects
            raise

    def _read(self) -> Reply:
        assert self._file is not None
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("Redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._file.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RedisError(f"unexpected reply {line!r}")
