"""The few Linux system calls Python's standard library does not expose.

Owns: ctypes access to libc for ``prctl`` (child subreaper, parent-death
signal) and ``signalfd``, and the process name. Imports only the standard
library; ctypes itself at the first call that needs it, so the lean process
(which gets its signalfd across exec and names itself through /proc) never
loads it: about 0.6 MiB. Nothing else in gsup uses ctypes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ctypes

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

_SFD_NONBLOCK = os.O_NONBLOCK
_SFD_CLOEXEC = 0o2000000  # == O_CLOEXEC on every Linux architecture gsup targets


@functools.cache
def _libc() -> ctypes.CDLL:
    import ctypes

    # dlopen(NULL): the symbols already loaded into the interpreter, libc's among
    # them. (ctypes.util.find_library would run ldconfig or a compiler to look.)
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int) -> int:
    if result == -1:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def prctl(option: int, arg: int) -> int:
    """prctl(2) with one argument; raises OSError on failure."""
    import ctypes

    return _check(_libc().prctl(option, ctypes.c_ulong(arg), 0, 0, 0))


def set_name(name: bytes) -> None:
    """The process name (``comm``: what ps -o comm and top show), 15 bytes at most.

    Written to /proc/self/comm, which is prctl(PR_SET_NAME) without ctypes.
    """
    with open("/proc/self/comm", "wb", buffering=0) as f:
        f.write(name[:15])


def signalfd(signals: Iterable[int]) -> int:
    """A new non-blocking, close-on-exec signalfd(2) for *signals*.

    The signals must also be blocked (pthread_sigmask) for the descriptor to
    receive them instead of their handlers.
    """
    import ctypes

    bits = 8 * ctypes.sizeof(ctypes.c_ulong)
    mask = (ctypes.c_ulong * (1024 // bits))()
    for sig in signals:
        mask[(sig - 1) // bits] |= 1 << ((sig - 1) % bits)
    return _check(_libc().signalfd(-1, ctypes.byref(mask), _SFD_NONBLOCK | _SFD_CLOEXEC))
