"""A TCP server that accepts connections and never answers (standard library only).

It stands for the health endpoint of an app that is warming up: the
connection is accepted, the request is read, no response comes. It reports
on its stdout, one line per event, stamped with ``time.monotonic()`` (the
clock of gsup's JSON events and of the test)::

    @listening port=PORT                 bound to 127.0.0.1 (port 0: one the kernel picked)
    @accepted n=N t=T                    connection N arrived; it is held open
    @closed n=N t=T                      the peer closed connection N

It runs until it is killed. ``--token`` only marks its command line, so the
test can find it in /proc.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import time


def log(event: str, **fields: object) -> None:
    line = " ".join([f"@{event}", *(f"{k}={v}" for k, v in fields.items())]) + "\n"
    os.write(1, line.encode())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", default="")
    a = p.parse_args()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", a.port))
    listener.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, 0)
    log("listening", port=listener.getsockname()[1])
    count = 0
    while True:
        for key, _ in sel.select():
            if key.data == 0:
                conn, _ = listener.accept()
                count += 1
                log("accepted", n=count, t=f"{time.monotonic():.6f}")
                sel.register(conn, selectors.EVENT_READ, count)
                continue
            conn = key.fileobj  # type: ignore[assignment]
            try:
                data = conn.recv(65536)  # the request: read, never answered
            except OSError:
                data = b""
            if not data:
                log("closed", n=key.data, t=f"{time.monotonic():.6f}")
                sel.unregister(conn)
                conn.close()


if __name__ == "__main__":
    main()
