"""The few Linux system calls Python's standard library does not expose.

Owns: ctypes access to libc for ``prctl`` (child subreaper, parent-death
signal) and ``signalfd``. Imports only the standard library. Nothing else in
gsup uses ctypes.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

_SFD_NONBLOCK = os.O_NONBLOCK
_SFD_CLOEXEC = 0o2000000  # == O_CLOEXEC on every Linux architecture gsup targets
_SIGSET_WORDS = 1024 // (8 * ctypes.sizeof(ctypes.c_ulong))

# dlopen(NULL): the symbols already loaded into the interpreter, libc's among
# them. (ctypes.util.find_library would run ldconfig or a compiler to look.)
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def prctl(option: int, arg: int) -> int:
    """prctl(2) with one argument; raises OSError on failure."""
    return _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0))


def set_name(name: bytes) -> None:
    """The process name (``comm``: what ps -o comm and top show), 15 bytes at most."""
    _check(_libc.prctl(PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0))


def signalfd(signals: Iterable[int]) -> int:
    """A new non-blocking, close-on-exec signalfd(2) for *signals*.

    The signals must also be blocked (pthread_sigmask) for the descriptor to
    receive them instead of their handlers.
    """
    mask = (ctypes.c_ulong * _SIGSET_WORDS)()
    bits = 8 * ctypes.sizeof(ctypes.c_ulong)
    for sig in signals:
        mask[(sig - 1) // bits] |= 1 << ((sig - 1) % bits)
    return _check(_libc.signalfd(-1, ctypes.byref(mask), _SFD_NONBLOCK | _SFD_CLOEXEC))
