"""Readiness probes: is a program ready to serve? (tcp, http, file)

Owns: the probe kinds and their spelling (``tcp=HOST:PORT``, ``http=URL``,
``file=PATH``) and one attempt of each, with a short timeout: in the
caller's thread (``gsup drill --ready``), or beside a loop that must not
block (``Background``: the many-programs loop). Imports the standard library
and ``gsup.errors``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import deque
from typing import NamedTuple, Union

from gsup.errors import UsageError

KINDS = ("tcp", "http", "file")


class Probe(NamedTuple):
    kind: str
    target: str

    @classmethod
    def parse(cls, text: str) -> Probe:
        kind, sep, target = text.partition("=")
        if not sep or kind not in KINDS or not target:
            raise UsageError(f"--ready: {text!r} is not tcp=HOST:PORT, http=URL or file=PATH")
        if kind == "tcp":
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise UsageError(f"--ready: {target!r} is not HOST:PORT (port 1-65535)")
            try:
                host.strip("[]").encode("idna")  # what the connect would do, every attempt
            except UnicodeError:
                raise UsageError(f"--ready: {host!r} is not a host name") from None
        if kind == "http" and not target.startswith(("http://", "https://")):
            raise UsageError(f"--ready: {target!r} is not an http:// or https:// URL")
        return cls(kind, target)

    def __str__(self) -> str:
        return f"{self.kind}={self.target}"

    def attempt(self, timeout: float = 1.0) -> bool:
        """One try: True if the program answers."""
        if self.kind == "file":
            return os.path.exists(self.target)
        if self.kind == "tcp":
            host, _, port = self.target.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                    return True
            except (OSError, ValueError):  # ValueError: a name the resolver refuses
                return False
        return http_ok(self.target, timeout)


class Background:
    """Attempts that run beside a loop, each in a daemon thread; results come back through a pipe.

    An attempt blocks for up to its timeout (a host that drops packets, an
    endpoint that accepts and answers slowly while the app warms up), and
    the loop that waits for signals, reaps and moves output must not. The
    loop polls ``fd`` and, when it is readable, takes ``results()``.

    A thread runs ``Probe.attempt`` and nothing else: it never waits for a
    process, never writes to stdout or stderr, and never touches the
    caller's state; it inherits gsup's blocked signal mask, so every signal
    still arrives through the signalfd. An error it did not expect is handed
    to the loop, which raises it as if the attempt had run inline. Nobody
    joins a thread: one still connecting when gsup ends dies with its
    process (``os._exit``).
    """

    def __init__(self) -> None:
        # Close-on-exec (PEP 446): no program inherits either end.
        self.fd, self._wake = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._wake, False)  # a full pipe holds a wake-up already
        # deque: appends and pops are atomic. The lock only keeps a late
        # attempt from writing into a descriptor number close() gave back
        # (the child a fork makes never takes it).
        self._done: deque[tuple[int, Union[bool, BaseException]]] = deque()
        self._lock = threading.Lock()
        self._closed = False

    def start(self, token: int, probe: Probe, timeout: float) -> None:
        """Begin one attempt of *probe*; its result comes back with *token*."""
        thread = threading.Thread(
            target=self._attempt, args=(token, probe, timeout), name=f"probe-{token}", daemon=True
        )
        thread.start()

    def _attempt(self, token: int, probe: Probe, timeout: float) -> None:
        result: Union[bool, BaseException]
        try:
            result = probe.attempt(timeout)
        except BaseException as e:  # not printed here (the thread owns no stream): the loop raises it
            result = e
        with self._lock:
            if self._closed:
                return  # the supervision is over: nobody waits for this result
            self._done.append((token, result))  # before the wake-up, so the loop finds it
            try:
                os.write(self._wake, b"\0")
            except BlockingIOError:
                pass

    def results(self) -> list[tuple[int, bool]]:
        """The attempts finished since the last call, as (token, ready)."""
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass  # drained
        out: list[tuple[int, bool]] = []
        while self._done:
            token, result = self._done.popleft()
            if isinstance(result, BaseException):
                raise result
            out.append((token, result))
        return out

    def close(self) -> None:
        """Take no more results and free the pipe; attempts still running end unheard."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self.fd)
                os.close(self._wake)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """A GET of *url* answered with a 2xx or 3xx status."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 400
    except urllib.error.HTTPError as e:
        return 200 <= e.code < 400
    except (OSError, ValueError):
        return False
