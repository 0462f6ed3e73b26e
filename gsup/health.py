"""The health endpoint: ``GET /livez`` and ``GET /readyz`` served from the loop's own poll.

Owns: the address (``HOST:PORT``, ``:PORT``, ``unix:/PATH``), the listening
socket, every connection to it, the HTTP it speaks and the body it sends.
No thread, no blocking call: the loop polls ``fds()`` and calls
``handle`` for what is ready; ``expire`` drops what outlived its time.

Bounded so it can never keep gsup from stopping in time:

* at most ``MAX_CONNECTIONS`` at once; when one more comes, the oldest
  connection that has not yet been answered is dropped for it (a flood of
  idle clients keeps nothing but the kernel's backlog, and cannot keep a
  load balancer's check from its answer for long);
* a request may be at most ``MAX_REQUEST`` bytes and must be whole within
  ``CLIENT_TIMEOUT`` of its connection, or the connection is dropped (a
  client that sends nothing, or sends slowly);
* a response is a few hundred bytes, written without blocking; what the
  socket does not take within the same time is dropped with it;
* each wake-up accepts and reads a bounded amount.

Only GET and HEAD; ``/livez`` is 200 while gsup supervises; ``/readyz`` is
200 only when every long-running program is ready and no stop was asked
for, 503 from the stop request on. Both carry a small JSON body: each
program's state and the time left before gsup's SIGKILL. A request for
another path is 404, another method 405, anything that is not a request
line 400.

Imports: the standard library and ``gsup.errors``.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Mapping
from typing import Callable, NamedTuple, Optional

from gsup.errors import UsageError

MAX_CONNECTIONS = 8
MAX_REQUEST = 4096
CLIENT_TIMEOUT = 1.0
_ACCEPTS_PER_WAKE = 16


class Address(NamedTuple):
    """Where the endpoint listens: a TCP host and port, or a Unix socket's path."""

    host: Optional[str]  # None: a Unix socket
    port: int
    path: Optional[str]

    @classmethod
    def parse(cls, text: str) -> Address:
        """``127.0.0.1:8081``, ``:8081`` (every address), ``[::1]:8081``, or ``unix:/run/gsup.sock``."""
        if text.startswith("unix:"):
            path = text[len("unix:") :]
            if not path:
                raise UsageError(f"{text!r} names no socket path (unix:/run/gsup.sock)")
            return cls(None, 0, path)
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"{text!r} is not HOST:PORT, :PORT or unix:PATH (port 1-65535)")
        return cls(host.strip("[]") or "0.0.0.0", int(port), None)

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"

    def connect(self, timeout: float) -> socket.socket:
        """A client connection (``gsup status``)."""
        if self.path is not None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(self.path)
            except OSError:
                s.close()
                raise
            return s
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return socket.create_connection((host, self.port), timeout=timeout)


class _Conn:
    """One client: what it sent so far, what is left to send, when it must be done."""

    __slots__ = ("deadline", "inbox", "outbox", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.inbox = b""
        self.outbox = b""


#: What the loop tells the endpoint when it answers: (ready, body as data).
State = Callable[[], tuple[bool, Mapping[str, object]]]


def listen(address: Address) -> socket.socket:
    """The listening socket, non-blocking; a ``UsageError`` if it cannot be had (before anything starts)."""
    if address.path is not None:
        try:
            os.unlink(address.path)  # a socket left by an earlier gsup
        except FileNotFoundError:
            pass
        except OSError as e:
            raise UsageError(f"--health {address}: cannot listen: {e.strerror}") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = address.path
    else:
        family = socket.AF_INET6 if address.host and ":" in address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        target = (address.host, address.port)
    try:
        sock.bind(target)  # type: ignore[arg-type]
        sock.listen(64)
    except OSError as e:
        sock.close()
        raise UsageError(f"--health {address}: cannot listen: {e.strerror}") from None
    sock.setblocking(False)
    return sock


class Endpoint:
    """The listening socket and its connections."""

    def __init__(self, address: Address, listener: socket.socket) -> None:
        self.address = address
        self.listener = listener
        self.conns: dict[int, _Conn] = {}

    # -- what the loop polls ----------------------------------------------------------

    @property
    def fd(self) -> int:
        return self.listener.fileno()

    def wants(self) -> dict[int, bool]:
        """Each connection's descriptor, and whether it has something to write."""
        return {fd: bool(c.outbox) for fd, c in self.conns.items()}

    def deadline(self) -> Optional[float]:
        return min((c.deadline for c in self.conns.values()), default=None)

    def expire(self, now: float) -> None:
        """Drop every connection past its time: a slow client, or one that sends nothing."""
        for fd in [fd for fd, c in self.conns.items() if now >= c.deadline]:
            self._drop(fd)

    # -- events ----------------------------------------------------------------------

    def accept(self, now: float) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    return  # out of descriptors: the backlog waits, supervision goes on
                return
            if len(self.conns) >= MAX_CONNECTIONS:
                # Full: the oldest connection that has not asked anything yet makes room.
                # A flood of idle clients then keeps no newcomer out for long, and a
                # load balancer's check still gets its answer.
                idle = [fd for fd, c in self.conns.items() if not c.outbox]
                if not idle:
                    sock.close()
                    continue
                self._drop(min(idle, key=lambda fd: self.conns[fd].deadline))
            sock.setblocking(False)
            self.conns[sock.fileno()] = _Conn(sock, now + CLIENT_TIMEOUT)

    def handle(self, fd: int, now: float, state: State) -> bool:
        """Connection *fd* is readable or writable; True when it was a /readyz just answered."""
        conn = self.conns.get(fd)
        if conn is None:
            return False
        if conn.outbox:
            self._send(fd, conn)
            return False
        try:
            data = conn.sock.recv(MAX_REQUEST + 1 - len(conn.inbox))
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._drop(fd)
            return False
        conn.inbox += data
        if b"\r\n\r\n" not in conn.inbox and b"\n\n" not in conn.inbox:
            if len(conn.inbox) > MAX_REQUEST:
                conn.outbox = _response(400, "request too long", {}, head=False)
                self._send(fd, conn)
            return False
        conn.outbox, polled = self._answer(conn.inbox, state)
        self._send(fd, conn)
        return polled

    def _answer(self, request: bytes, state: State) -> tuple[bytes, bool]:
        """The response, and whether it answered /readyz."""
        line = request.split(b"\n", 1)[0].rstrip(b"\r")
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return _response(400, "not an HTTP request", {}, head=False), False
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        head = method == b"HEAD"
        if method not in (b"GET", b"HEAD"):
            return _response(405, "only GET and HEAD", {}, head=False, extra="Allow: GET, HEAD\r\n"), False
        if target not in (b"/livez", b"/readyz"):
            return _response(404, "no such path: /livez or /readyz", {}, head=head), False
        ready, body = state()
        if target == b"/livez":
            return _response(200, "supervising", body, head=head), False
        code = 200 if ready else 503
        return _response(code, "ready" if ready else "not ready", body, head=head), True

    def _send(self, fd: int, conn: _Conn) -> None:
        try:
            n = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(fd)
            return
        conn.outbox = conn.outbox[n:]
        if not conn.outbox:
            self._drop(fd)  # one request per connection (Connection: close)

    def _drop(self, fd: int) -> None:
        conn = self.conns.pop(fd, None)
        if conn is not None:
            conn.sock.close()

    def close(self) -> None:
        for fd in list(self.conns):
            self._drop(fd)
        self.listener.close()
        if self.address.path is not None:
            try:
                os.unlink(self.address.path)
            except OSError:
                pass


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


def _response(code: int, what: str, body: Mapping[str, object], *, head: bool, extra: str = "") -> bytes:
    payload = json.dumps({"status": what, **body}).encode() + b"\n"
    top = (
        f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nCache-Control: no-store\r\nConnection: close\r\n{extra}\r\n"
    ).encode()
    return top if head else top + payload


# -- gsup status: the client ----------------------------------------------------------------

EXIT_READY, EXIT_NOT_READY, EXIT_UNREACHABLE = 0, 1, 2
STATUS_TIMEOUT = 2.0


def query(address: Address, timeout: float = STATUS_TIMEOUT) -> tuple[int, dict[str, object]]:
    """GET /readyz of the gsup at *address*: (HTTP status, body). Raises OSError or ValueError
    when nothing answers there as gsup would."""
    with address.connect(timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: gsup\r\nConnection: close\r\n\r\n")
        data = b""
        while len(data) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    words = head.split(b"\r\n", 1)[0].split()
    if len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
        raise ValueError("not an HTTP answer")
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise ValueError("not gsup's answer")
    return int(words[1]), body


def print_status(address_text: Optional[str], *, as_json: bool) -> int:
    """``gsup status``: print the programs and the budget; exit 0 ready, 1 not, 2 unreachable."""
    if address_text is None:
        raise UsageError("gsup status: no endpoint to ask: give --health ADDR (or GSUP_HEALTH)")
    address = Address.parse(address_text)
    try:
        code, body = query(address)
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        if as_json:
            print(json.dumps({"reachable": False, "address": str(address), "error": reason}))
        else:
            print(f"gsup status: unreachable at {address}: {reason}")
        return EXIT_UNREACHABLE
    ready = code == 200
    if as_json:
        print(json.dumps({"reachable": True, "address": str(address), "ready": ready, **body}))
        return EXIT_READY if ready else EXIT_NOT_READY
    state = "ready" if ready else ("stopping" if body.get("stopping") else "not ready")
    lines = [f"gsup status: {state} ({address})"]
    programs = body.get("programs")
    for p in programs if isinstance(programs, list) else []:
        if isinstance(p, dict):
            extra = f" ({p['status']})" if p.get("status") else ""
            pid = f"pid {p['pid']}" if p.get("pid") else "no pid"
            lines.append(f"  {p.get('name')}  {p.get('state')}{extra}  {pid}")
    left = body.get("sigkill_in")
    budget = f"grace {body.get('grace')}s" + ("" if left is None else f", SIGKILL in {left}s")
    lines.append(f"  budget: {budget}")
    print("\n".join(lines))
    return EXIT_READY if ready else EXIT_NOT_READY
