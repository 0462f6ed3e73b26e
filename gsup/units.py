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
            raise UsageError(f"invalid duration {text!r}: use e.g. 500ms, 25, 25s, 1m30s")
    if not math.isfinite(value):
        raise UsageError(f"invalid duration {text!r}: too large")
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
            raise UsageError(f"invalid signal {text!r}: no signal has number {s}") from None
    name = s if s.startswith("SIG") else "SIG" + s
    try:
        return signal.Signals[name]
    except KeyError:
        raise UsageError(f"invalid signal {text!r}: use a name like TERM or a number like 15") from None


def signal_name(sig: int) -> str:
    """``SIGTERM`` for 15; the number as text for a signal Python cannot name."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
