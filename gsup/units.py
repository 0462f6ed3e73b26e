"""Parsing of the two kinds of value a user types: durations and signals.

Owns: the accepted spellings (``500ms``, ``25``, ``1m30s``; ``TERM``,
``SIGTERM``, ``15``) and their error messages. Pure: imports only the
standard library and ``gsup.errors``; no I/O.
"""

from __future__ import annotations

import math
import re
import signal

from gsup.errors import UsageError

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|us|h|m|s)")
_BARE = re.compile(r"\d+(?:\.\d+)?|\.\d+")

#: Signals that can be neither caught nor blocked, so never forwarded.
UNCATCHABLE = frozenset({signal.SIGKILL, signal.SIGSTOP})

#: The longest duration gsup takes (7 days). A stop that takes longer is a
#: mistake, and every deadline must fit the kernel's timeouts: ``poll`` takes
#: at most 2**31 - 1 ms (about 596 h), and gsup adds a drain to a grace.
MAX_DURATION = 7 * 24 * 3600.0

#: Signals that cannot end a process that does not handle them, so the stop
#: would always end in SIGKILL at the grace: why each cannot be a stop signal.
CANNOT_STOP = {
    signal.SIGSTOP: "suspends a process instead of ending it",
    signal.SIGTSTP: "suspends a process instead of ending it",
    signal.SIGTTIN: "suspends a process instead of ending it",
    signal.SIGTTOU: "suspends a process instead of ending it",
    signal.SIGCHLD: "is ignored by a process that does not handle it",
    signal.SIGCONT: "is ignored by a process that does not handle it",
    signal.SIGWINCH: "is ignored by a process that does not handle it",
    signal.SIGURG: "is ignored by a process that does not handle it",
}


def quote(text: str) -> str:
    """*text* quoted for a message, as the user typed it.

    Like ``repr``, but a byte that was not UTF-8 (held as a lone surrogate
    by ``os.fsdecode``) shows as ``\\xff``, not as ``\\udcff``.
    """
    out = []
    for c in text:
        if "\udc80" <= c <= "\udcff":
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        elif c == "'":
            out.append("\\'")
        else:
            out.append(repr(c)[1:-1])
    return "'" + "".join(out) + "'"


def parse_duration(text: str) -> float:
    """Return the duration *text* in seconds.

    A bare number is seconds; otherwise one or more ``<number><unit>`` parts
    with units h, m, s, ms, us (``1m30s``, ``1.5s``, ``500ms``).
    """
    s = text.strip().lower()
    if _BARE.fullmatch(s):
        value = float(s)
    else:
        pos, value, units_seen = 0, 0.0, set()
        for m in _PART.finditer(s):
            if m.start() != pos or m.group(2) in units_seen:
                break
            units_seen.add(m.group(2))
            value += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(s) or not s:
            raise UsageError(f"invalid duration {quote(text)}: use e.g. 500ms, 25, 25s, 1m30s")
    if not math.isfinite(value) or value > MAX_DURATION:
        raise UsageError(f"invalid duration {quote(text)}: at most {MAX_DURATION / 3600:.0f}h")
    return value


def format_duration(seconds: float) -> str:
    """Render *seconds* compactly for messages (``27s``, ``1.5s``, ``250ms``)."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:.0f}ms"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.1f}s"


def parse_signal(text: str) -> signal.Signals:
    """Return the signal named by *text*: ``TERM``, ``sigterm`` or ``15``."""
    s = text.strip().upper()
    if s.isdigit():
        try:
            return signal.Signals(int(s))
        except ValueError:
            raise UsageError(f"invalid signal {quote(text)}: no signal has number {s}") from None
    name = s if s.startswith("SIG") else "SIG" + s
    try:
        return signal.Signals[name]
    except KeyError:
        raise UsageError(f"invalid signal {quote(text)}: use a name like TERM or a number like 15") from None


def parse_stop_signal(text: str) -> signal.Signals:
    """The signal *text* names, if it can stop a process (``--stop-signal``, ``stop_signal``)."""
    sig = parse_signal(text)
    if sig in CANNOT_STOP:
        raise UsageError(
            f"{sig.name} cannot be a stop signal: it {CANNOT_STOP[sig]}, so every stop would end in SIGKILL"
        )
    return sig


#: Each signal's name by number, made once: a signal's log line is built on the way to its send.
_NAMES = {int(s): s.name for s in signal.Signals}


def signal_name(sig: int) -> str:
    """``SIGTERM`` for 15; the number as text for a signal Python cannot name."""
    return _NAMES.get(sig) or str(sig)
