"""gsup's own messages on stderr, as plain text or JSON lines.

Owns: the words and fields of every event line and of the final report,
``--quiet`` and ``--verbose``. The rich rendering for a terminal lives in
``ui`` and reuses ``report_rows``. Imports: the standard library and
``gsup.model``; never rich.
"""

from __future__ import annotations

import os
import select
import sys
import time
from typing import IO, Callable, Optional

from gsup.model import Outcome, Sink, TextStream
from gsup.units import format_duration, signal_name

#: Events shown only with --verbose.
VERBOSE_KINDS = frozenset({"orphan_reaped"})


def report_fields(o: Outcome) -> dict[str, object]:
    """The final report as data (the JSON ``exit`` event)."""
    return {
        "exit_code": o.exit_code,
        "cause": o.cause.value,
        "program": o.program.name,
        "command": o.program.display,
        "pid": o.pid,
        "status": o.status.describe() if o.status else None,
        "stop_signal_received": signal_name(o.stop_signal_received) if o.stop_signal_received else None,
        "stop_signal_sender": o.stop_signal_sender,
        "stop_signal_sent": signal_name(o.stop_signal_sent) if o.stop_signal_sent else None,
        "stop_seconds": None if o.stop_seconds is None else round(o.stop_seconds, 6),
        "ran_seconds": round(o.ran_seconds, 6),
        "grace": o.grace,
        "force_killed": o.force_killed,
        "escalation": o.escalation,
        "leftovers_signalled": o.leftovers_signalled,
        "leftovers_killed": o.leftovers_killed,
        "leftovers_surviving": o.leftovers_surviving,
        "orphans_reaped": o.orphans_reaped,
        "error": o.error,
        "reason": o.reason,
        "programs": [
            {
                "name": p.name,
                "pid": p.pid,
                "status": p.status.describe() if p.status else None,
                "code": p.status.shell_code if p.status else None,
                "stop_signal": signal_name(p.stop_signal) if p.stop_signal else None,
                "stop_seconds": None if p.stop_seconds is None else round(p.stop_seconds, 6),
                "force_killed": p.force_killed,
                "escalation": p.escalation,
                "restarts": p.restarts,
                "failure": p.failure,
                "started": p.started,
            }
            for p in o.programs
        ],
    }


def report_rows(o: Outcome) -> list[tuple[str, str]]:
    """The final report as (label, text) rows, for people."""
    rows: list[tuple[str, str]] = []
    if o.error:
        rows.append(("failed", o.error))
    if o.programs:
        return _fleet_rows(o, rows)
    if o.stop_signal_received:
        sender = f" from pid {o.stop_signal_sender}" if o.stop_signal_sender else ""
        rows.append(("stopped by", f"{signal_name(o.stop_signal_received)}{sender}"))
    elif o.status is not None:
        rows.append(("stopped by", "the child's own exit"))
    if o.status is not None:
        rows.append(("child", f"pid {o.pid} ({o.program.display}) {o.status.describe()}"))
    if o.stop_seconds is not None:
        sent = f"{signal_name(o.stop_signal_sent)} sent, " if o.stop_signal_sent else ""
        if o.force_killed:
            verdict = f"force-killed: SIGKILL sent ({o.escalation or 'grace ran out'})"
        else:
            verdict = "exited within the grace"
        took = f"took {o.stop_seconds:.3f}s of a {format_duration(o.grace)} grace"
        rows.append(("stop", f"{sent}{took}; {verdict}"))
    left = []
    if o.leftovers_signalled:
        left.append(f"{o.leftovers_signalled} signalled")
    if o.leftovers_killed:
        left.append(f"{o.leftovers_killed} killed")
    if o.leftovers_surviving:
        left.append(f"{o.leftovers_surviving} survived SIGKILL")
    rows.append(("leftovers", ", ".join(left) if left else "none"))
    if o.orphans_reaped:
        rows.append(("orphans", f"{o.orphans_reaped} reaped"))
    rows.append(("exit", str(o.exit_code)))
    return rows


def _fleet_rows(o: Outcome, rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if o.stop_signal_received:
        sender = f" from pid {o.stop_signal_sender}" if o.stop_signal_sender else ""
        rows.append(("stopped by", f"{signal_name(o.stop_signal_received)}{sender}"))
    elif o.reason:
        rows.append(("stopped by", o.reason))
    for p in o.programs:
        if not p.started:
            text = "never started" + (f": {p.failure}" if p.failure else " (stopped before its turn)")
        else:
            text = f"pid {p.pid} {p.status.describe() if p.status else 'still running'}"
            if p.stop_seconds is not None and p.stop_signal:
                text += f", {p.stop_seconds:.3f}s after {signal_name(p.stop_signal)}"
            if p.force_killed:
                text += f"; force-killed: SIGKILL ({p.escalation or 'grace ran out'})"
            if p.restarts:
                text += f"; restarted {p.restarts} time(s)"
            if p.failure:
                text += f"; FAILED: {p.failure}"
        rows.append((p.name, text))
    if o.stop_seconds is not None:
        rows.append(("stop", f"took {o.stop_seconds:.3f}s of a {format_duration(o.grace)} grace"))
    rows.append(("leftovers", f"{o.leftovers_killed} killed" if o.leftovers_killed else "none"))
    if o.orphans_reaped:
        rows.append(("orphans", f"{o.orphans_reaped} reaped"))
    rows.append(("exit", str(o.exit_code)))
    return rows


class _Writer:
    """Writes that never hold up supervision: a closed or full stderr must not.

    On a real descriptor (gsup's stderr) a message is written only as far as
    the descriptor takes it now; the rest waits, in order, for the next
    message, and the final report waits at most ``FINAL_WAIT``. A log reader
    that stops reading thus loses gsup's last words, never the SIGKILL at the
    deadline. Anything else (a queue in many-programs mode, a test's buffer)
    is written as it is.
    """

    #: The most gsup holds back for a stuck stderr; older text is dropped first.
    LIMIT = 1024 * 1024

    def __init__(self, stream: Optional[TextStream]) -> None:
        self.stream = stream
        self.pending = bytearray()
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
        self.pending += text.encode(errors="replace")
        if len(self.pending) > self.LIMIT:
            del self.pending[: len(self.pending) - self.LIMIT]
        self._push(wait)

    def _push(self, wait: float) -> None:
        assert self.fd is not None and self.stream is not None  # checked by write()
        try:
            self.stream.flush()  # whatever Python itself buffered goes first
        except (OSError, ValueError):
            pass
        deadline = time.monotonic() + wait
        while self.pending:
            left = max(0.0, deadline - time.monotonic())
            if not select.select([], [self.fd], [], left)[1]:
                return  # not now: the rest goes with the next message
            try:
                n = os.write(self.fd, self.pending[:4096])  # PIPE_BUF: never blocks after poll
            except BlockingIOError:
                continue
            except OSError:
                self.stream, self.pending = None, bytearray()
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

    def countdown(self, remaining: float, total: float, label: str) -> Optional[float]:
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

    def countdown(self, remaining: float, total: float, label: str) -> Optional[float]:
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
