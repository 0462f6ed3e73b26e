"""gsup's own messages on stderr, as plain text or JSON lines.

Owns: how events and the final report are written as text lines or JSON
objects, ``--quiet`` and ``--verbose``, and writing that never holds up
supervision. What the report says comes from ``report``; the rich
rendering for a terminal lives in ``ui``. Imports: the standard library,
``gsup.model`` and ``gsup.report``; ``gsup.ui`` (rich) only on a terminal.
"""

from __future__ import annotations

import math
import os
import select
import sys
import time
from collections import deque
from typing import IO, Callable, Optional

from gsup.model import Outcome, Sink, TextStream
from gsup.report import VERBOSE_KINDS, report_fields, report_rows


class _Writer:
    """Writes that never hold up supervision: a closed or full stderr must not.

    On a real descriptor (gsup's stderr) a message is written only as far as
    the descriptor takes it now; the rest waits, in order, for the next
    message, and the final report waits at most ``FINAL_WAIT``. A log reader
    that stops reading thus loses gsup's last words, never the SIGKILL at the
    deadline. Anything else (a queue in many-programs mode, a test's buffer)
    is written as it is.

    What is held back is dropped by whole messages, oldest first, never the
    one being written: a JSON line is written whole or not at all.
    """

    #: The most gsup holds back for a stuck stderr (but the message being written).
    LIMIT = 1024 * 1024

    def __init__(self, stream: Optional[TextStream]) -> None:
        self.stream = stream
        self.pending = bytearray()  # the message being written, what of it is left
        self.queue: deque[bytes] = deque()  # whole messages after it
        self.queued = 0
        self.fd: Optional[int] = None
        fileno = getattr(stream, "fileno", None)
        if fileno is not None:
            try:
                self.fd = fileno()
            except (OSError, ValueError):
                self.fd = None

    def write(self, text: str, *, wait: float = 0.0) -> None:
        if self.stream is None:
            return
        if self.fd is None:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                self.stream = None  # EPIPE, EBADF, closed: stop writing, keep supervising
            return
        data = text.encode(errors="replace")
        self.queue.append(data)
        self.queued += len(data)
        while self.queued > self.LIMIT and len(self.queue) > 1:
            self.queued -= len(self.queue.popleft())
        self._push(wait)

    def _push(self, wait: float) -> None:
        assert self.fd is not None and self.stream is not None  # checked by write()
        try:
            self.stream.flush()  # whatever Python itself buffered goes first
        except (OSError, ValueError):
            pass
        deadline = time.monotonic() + wait
        poller = select.poll()  # not select(): the descriptor's number may pass FD_SETSIZE
        poller.register(self.fd, select.POLLOUT)
        while self.pending or self.queue:
            if not self.pending:
                self.pending = bytearray(self.queue.popleft())
                self.queued -= len(self.pending)
            left = max(0.0, deadline - time.monotonic())
            if not poller.poll(math.ceil(left * 1000)):
                return  # not now: the rest goes with the next message
            try:
                n = os.write(self.fd, self.pending[:4096])  # PIPE_BUF: never blocks after poll
            except BlockingIOError:
                continue
            except OSError:
                self.stream, self.pending = None, bytearray()
                self.queue.clear()
                return
            del self.pending[:n]

    def finish(self) -> None:
        """The report is out, or given up on after ``FINAL_WAIT``."""
        if self.fd is not None and self.stream is not None:
            self._push(FINAL_WAIT)


#: How long gsup waits, at most, for a stuck stderr to take its final report.
FINAL_WAIT = 0.25


class TextSink:
    """One short line per event; the report as aligned rows."""

    def __init__(
        self, stream: Optional[IO[str]] = None, *, quiet: bool = False, verbose: bool = False
    ) -> None:
        self.out = _Writer(stream if stream is not None else sys.stderr)
        self.quiet, self.verbose = quiet, verbose

    def use_stream(self, stream: TextStream) -> None:
        self.out = _Writer(stream)

    def event(self, kind: str, message: str, **fields: object) -> None:
        if self.quiet or (kind in VERBOSE_KINDS and not self.verbose):
            return
        self.out.write(f"gsup: {message}\n")

    def countdown(self, remaining: float, total: float, label: str, hint: str = "") -> Optional[float]:
        return None  # logs get the grace_started line; no redraws

    def report(self, outcome: Outcome) -> None:
        rows = report_rows(outcome)
        width = max(len(label) for label, _ in rows)
        self.out.write("".join(f"gsup: {label:<{width}}  {text}\n" for label, text in rows))
        self.out.finish()

    def error(self, message: str) -> None:
        self.out.write(f"gsup: error: {message}\n")
        self.out.finish()


class JsonSink:
    """One JSON object per line and per event, with a monotonic timestamp."""

    def __init__(
        self,
        stream: Optional[IO[str]] = None,
        *,
        quiet: bool = False,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = _Writer(stream if stream is not None else sys.stderr)
        self.quiet, self.verbose, self.clock = quiet, verbose, clock

    def use_stream(self, stream: TextStream) -> None:
        self.out = _Writer(stream)

    def _emit(self, kind: str, fields: dict[str, object]) -> None:
        import json  # here: a text log does not pay for it

        record = {"ts": round(self.clock(), 6), "gsup_pid": os.getpid(), "event": kind, **fields}
        self.out.write(json.dumps(record, default=str) + "\n")

    def event(self, kind: str, message: str, **fields: object) -> None:
        if self.quiet or (kind in VERBOSE_KINDS and not self.verbose):
            return
        self._emit(kind, {"message": message, **fields})

    def countdown(self, remaining: float, total: float, label: str, hint: str = "") -> Optional[float]:
        return None

    def report(self, outcome: Outcome) -> None:
        self._emit("exit", report_fields(outcome))
        self.out.finish()

    def error(self, message: str) -> None:
        self._emit("error", {"message": message})
        self.out.finish()


def make_sink(log_format: str, *, quiet: bool, verbose: bool) -> Sink:
    """JSON lines, the rich rendering on a terminal, or plain text lines."""
    if log_format == "json":
        return JsonSink(quiet=quiet, verbose=verbose)
    if sys.stderr is not None and sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        from gsup.ui import TerminalSink  # rich itself is imported at the first message

        return TerminalSink(quiet=quiet, verbose=verbose)
    return TextSink(quiet=quiet, verbose=verbose)
