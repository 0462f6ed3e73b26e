"""Readiness probes: is a program ready to serve? (tcp, http, file, command)

Owns: the probe kinds and their spelling (``tcp=HOST:PORT``, ``http=URL``,
``file=PATH``), what one attempt checks and what it reports having seen
("connection refused", "HTTP 503"), and how an attempt runs beside the loop:
as a short-lived child process that the one reaper collects, never a thread.

Why a child process: an attempt can block for its whole timeout (a host
that drops packets, an endpoint that accepts and answers slowly, a name
server that does not answer), and the loop that forwards signals and moves
output must not. A thread would do, but gsup forks programs while it runs,
and a thread that holds a lock at fork time can deadlock the child between
fork and exec. So a tcp, http or file attempt is a ``fork`` of gsup (no
exec: the supervising process has no thread, so forking it is safe) that
makes the attempt, writes what it saw into a pipe and exits 0 (ready) or 1;
a command probe is the command, started like a program. The loop kills an
attempt that outlives its time (``Attempt.deadline``).

Imports: the standard library, ``gsup.errors``, ``gsup.model``, ``gsup.units``; ``gsup.spawn``
for command probes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import NamedTuple, Optional

from gsup.errors import UsageError
from gsup.model import LivenessSpec, ReadySpec
from gsup.units import quote

KINDS = ("tcp", "http", "file")
#: How long one attempt may take at most (its interval, if shorter).
ATTEMPT_TIMEOUT = 1.0
#: The shortest interval between attempts: a probe must never spin the CPU.
MIN_INTERVAL = 0.01
#: What the loop allows an attempt beyond its own timeout before it kills it
#: (a name lookup is not bound by the socket's timeout).
GRACE_FOR_ATTEMPT = 0.5


class Probe(NamedTuple):
    kind: str
    target: str

    @classmethod
    def parse(cls, text: str, *, log: bool = False) -> Probe:
        """``KIND=TARGET``; with *log*, also ``log=REGEX`` (a line of the program's own output:
        the loop matches it, no attempt is made)."""
        kind, sep, target = text.partition("=")
        if log and kind == "log" and sep:
            import re

            try:
                re.compile(target)
            except re.error as e:
                raise UsageError(f"--ready: {quote(target)} is not a regular expression: {e}") from None
            if not target:
                raise UsageError("--ready: log= needs a regular expression")
            return cls(kind, target)
        if not sep or kind not in KINDS or not target:
            also = ", log=REGEX" if log else ""
            raise UsageError(f"--ready: {quote(text)} is not tcp=HOST:PORT, http=URL, file=PATH{also}")
        if kind == "tcp":
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise UsageError(f"--ready: {quote(target)} is not HOST:PORT (port 1-65535)")
            try:
                host.strip("[]").encode("idna")  # what the connect would do, every attempt
            except UnicodeError:
                raise UsageError(f"--ready: {quote(host)} is not a host name") from None
        if kind == "http" and not target.startswith(("http://", "https://")):
            raise UsageError(f"--ready: {quote(target)} is not an http:// or https:// URL")
        return cls(kind, target)

    def __str__(self) -> str:
        return f"{self.kind}={self.target}"

    def attempt(self, timeout: float = ATTEMPT_TIMEOUT) -> tuple[bool, str]:
        """One try, in this process: (ready, what it saw)."""
        if self.kind == "file":
            return (True, "the file exists") if os.path.exists(self.target) else (False, "no such file")
        if self.kind == "tcp":
            host, _, port = self.target.rpartition(":")
            try:
                with connect(host.strip("[]"), int(port), timeout):
                    return True, "connected"
            except OSError as e:
                return False, describe_error(e)
            except ValueError:  # UnicodeError: a name the resolver refuses to even look up
                return False, "not a host name the resolver takes"
        return http_check(self.target, timeout)


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection that another process accepted.

    On a free port of the ephemeral range a connect can reach its own socket
    (TCP's simultaneous open): the local and the peer address are then the
    same, and nothing listens. That is refused, not counted as ready.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        refuse_self_connection(sock)
    except OSError:
        sock.close()
        raise
    return sock


def refuse_self_connection(sock: socket.socket) -> None:
    """Raise ConnectionRefusedError if *sock* is connected to itself."""
    if sock.getsockname() == sock.getpeername():
        raise ConnectionRefusedError(0, "connected to itself: nothing listens")


def describe_error(e: OSError) -> str:
    if isinstance(e, socket.timeout):
        return "timed out"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve the host ({e.strerror})"
    if isinstance(e, ConnectionRefusedError):
        return e.strerror if e.errno == 0 and e.strerror else "connection refused"
    return e.strerror or type(e).__name__


def http_check(url: str, timeout: float = ATTEMPT_TIMEOUT) -> tuple[bool, str]:
    """GET *url* directly (never through ``http_proxy``: the probe is about this
    container); ready on a 2xx or 3xx status."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        return False, "bad port in the URL"
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        sock = connect(host, port, timeout)
        with sock:
            if tls:
                import ssl

                # Readiness, not trust: a local service's self-signed certificate is fine.
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(sock, server_hostname=host)
            netloc = parts.netloc.rpartition("@")[2]
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: gsup\r\nConnection: close\r\n\r\n"
            )
            sock.sendall(request.encode("latin-1", errors="replace"))
            head = b""
            while b"\r\n" not in head and len(head) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError as e:
        return False, describe_error(e)
    except ValueError:  # UnicodeError: a name the resolver refuses to even look up
        return False, "not a host name the resolver takes"
    words = head.split(b"\r\n", 1)[0].split()
    if len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
        return False, "no HTTP answer" if not head else "not an HTTP answer"
    code = int(words[1])
    return 200 <= code < 400, f"HTTP {code}"


# -- an attempt beside the loop --------------------------------------------------------


class Attempt(NamedTuple):
    """One attempt under way: a child process of gsup's, and where its report comes from."""

    pid: int
    #: The read end of the pipe it writes what it saw into; -1 for a command
    #: (its exit status says it).
    fd: int
    #: When the loop kills it if it has not exited (monotonic seconds).
    deadline: float


def attempt_timeout(check: ReadySpec | LivenessSpec) -> float:
    """How long one attempt of *check* may take: a readiness attempt at most 1 s (or its
    interval, if shorter); a liveness attempt its own timeout."""
    if isinstance(check, LivenessSpec):
        return check.timeout
    return min(ATTEMPT_TIMEOUT, max(0.05, check.interval))


def start_attempt(check: ReadySpec | LivenessSpec, env: Mapping[bytes, bytes], now: float) -> Attempt:
    """Begin one attempt of *check* in a child process, in a process group of its own.

    Raises ``GsupError`` when a command probe cannot be started (its child
    then has exited already and must still be collected: ``error.pid``).
    """
    timeout = attempt_timeout(check)
    deadline = now + timeout + GRACE_FOR_ATTEMPT
    if check.kind == "command":
        from gsup import spawn
        from gsup.model import ProgramSpec

        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            pid = spawn.spawn(
                ProgramSpec(argv=check.argv, name="check"),
                own_group=True,
                env=env,
                stdio=(devnull, devnull, 2),
            )
        finally:
            os.close(devnull)
        return Attempt(pid, -1, deadline)
    probe = Probe(check.kind, check.target)
    read_end, write_end = os.pipe()  # close-on-exec, not that anything execs
    pid = os.fork()
    if pid == 0:  # the attempt: no exec, so nothing of gsup's may run here but this
        code = 1
        try:
            os.close(read_end)
            os.setpgid(0, 0)  # its own group: the loop kills it whole, never a program's
            ok, saw = probe.attempt(timeout)
            code = 0 if ok else 1
            os.write(write_end, saw.encode(errors="replace")[:512])
        except BaseException:
            code = 2
        finally:
            os._exit(code)  # no atexit handlers, no flush of gsup's buffers
    os.close(write_end)
    os.set_blocking(read_end, False)
    return Attempt(pid, read_end, deadline)


def finish_attempt(attempt: Attempt, code: Optional[int], describe: str) -> tuple[bool, str]:
    """The result of an attempt that was reaped with exit status *code* (None:
    killed at its deadline); *describe*: how its status reads. Closes its pipe."""
    saw = ""
    if attempt.fd >= 0:
        try:
            saw = os.read(attempt.fd, 512).decode(errors="replace")
        except OSError:
            pass
        os.close(attempt.fd)
    if code is None:
        return False, "timed out"
    if attempt.fd < 0:  # a command probe
        return code == 0, describe
    if code == 2:  # a bug in the attempt, not an answer: gsup fails, as if it had run inline
        raise RuntimeError(f"a readiness attempt failed unexpectedly ({describe})")
    return code == 0, saw or describe
