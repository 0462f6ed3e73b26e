"""The one reaper: the only caller of ``os.waitpid`` in gsup.

Why one reaper, and why ``waitpid(-1)``:

* As PID 1, or as a child subreaper, gsup inherits every orphan of the
  process tree; each must be waited for, or it stays a zombie. Waiting for
  ``-1`` collects all of them, whoever their first parent was.
* There must be only one waiter. A second one (``Popen.wait``, ``psutil``'s
  ``wait``, ``subprocess.run``) would steal statuses: CPython turns a stolen
  status (ECHILD) into returncode 0, so a crash would read as success.
* SIGCHLD is a standard signal and coalesces: one notification may stand for
  many exits, so every wake-up drains ``waitpid`` until it returns 0 (children
  left, none exited) or ECHILD (no children at all). That second answer also
  tells gsup, without scanning /proc, whether any descendant is still alive:
  as a subreaper every orphan becomes gsup's own child.

Imports: the standard library and ``gsup.linux``.
"""

from __future__ import annotations

import math
import os
import select

from gsup import linux


def become_subreaper() -> None:
    """Have orphaned descendants reparented to gsup instead of to PID 1.

    PID 1 is already the reaper of its namespace; anywhere else (a terminal,
    ``docker run`` without ``--init``, a systemd service) this is what lets
    gsup reap, count and kill the grandchildren that double-forked away.
    """
    if os.getpid() != 1:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)


def reap() -> tuple[list[tuple[int, int]], bool]:
    """Collect every exited child without blocking.

    Returns the ``(pid, wait status)`` pairs collected, and whether any child
    (running, or a descendant reparented to gsup) is still there.
    """
    exited: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return exited, False
        if pid == 0:
            return exited, True
        exited.append((pid, status))


def collect(pid: int) -> None:
    """Wait for *pid*, a child known to be exiting (a failed exec)."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def exits_within(pid: int, timeout: float) -> bool:
    """Whether child *pid* exits within *timeout* seconds; its status stays uncollected.

    A pidfd becomes readable when the process exits, so this waits for that
    event, not a number of polls; without pidfds (Linux < 5.3) it only looks
    (waitid with WNOWAIT).
    """
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        try:
            return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True
    try:
        poller = select.poll()  # not select(): the pidfd's number may pass FD_SETSIZE
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(math.ceil(timeout * 1000)))
    finally:
        os.close(fd)
