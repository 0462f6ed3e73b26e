"""The exception tree: every error gsup reports on purpose, with its exit code.

Owns: which failure maps to which exit status *before* the child runs
(usage/config 2, not found 127, not executable 126) and the internal-failure
code 125; and how gsup's process ends with its status. Imports nothing from gsup.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn, Optional

EXIT_USAGE = 2
EXIT_INTERNAL = 125
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


class GsupError(Exception):
    """An error with a one-line message and the exit status it implies."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, pid: Optional[int] = None) -> None:
        # One line, whatever the input held (a program name with a newline, a command
        # named by a vertical tab...): every character str.splitlines breaks at, escaped.
        message = "".join(repr(c)[1:-1] if c in _LINE_BREAKS else c for c in message)
        super().__init__(message)
        self.message = message
        #: A child that was forked for this attempt and must still be reaped.
        self.pid = pid


class UsageError(GsupError):
    """Invalid option, value or configuration: nothing was started."""

    exit_code = EXIT_USAGE


class CommandNotFound(GsupError):
    """The command does not exist (or is not on PATH)."""

    exit_code = EXIT_NOT_FOUND


class CommandNotExecutable(GsupError):
    """The command exists but cannot be executed."""

    exit_code = EXIT_NOT_EXECUTABLE


class SpawnFailed(GsupError):
    """The child could not be set up (user switch, working directory, ...)."""

    exit_code = EXIT_NOT_EXECUTABLE


def exit_now(code: int) -> NoReturn:
    """End gsup's process with *code* once its own output is flushed.

    Everything gsup started has been reaped and every message written by
    then, so the interpreter's teardown (freeing every module, running the
    garbage collector) has nothing to do but delay the exit status the
    platform is waiting for: by about 15 ms of `gsup -- true`.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
