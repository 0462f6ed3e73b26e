"""Processes gsup started: finding them, signalling them, killing them.

Owns: the walk of gsup's process tree, and every signal gsup sends to a
process: ``send`` for a signal, ``kill`` for SIGKILL.
``kill`` is the only place gsup sends SIGKILL. Never waits for a process:
``reaper`` does that.

Imports: the standard library; psutil only where the kernel cannot list a
process's children.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from typing import Optional

_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def descendants(root: Optional[int] = None) -> list[int]:
    """The pids of every live or unreaped descendant of *root* (default: gsup).

    Walks /proc/PID/task/TID/children from *root* down: it reads only the
    tree, so its cost does not grow with the other processes on the host (a
    scan of every process, as psutil's ``children()`` does, took 0.76 s with
    10,000 of them, all of it after the deadline). It is complete for gsup:
    as PID 1 or a subreaper every orphan of the tree is reparented to gsup.
    Where the kernel lacks that file, psutil finds them instead.
    """
    if not _PROC_CHILDREN:
        return _descendants_psutil(root)
    found: list[int] = []
    stack = [os.getpid() if root is None else root]
    while stack:
        pid = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone meanwhile
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            stack += kids
    return found


def _descendants_psutil(root: Optional[int]) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return []


def group_of(pid: int) -> int:
    """The process group of *pid*, or -1 if it is gone."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


def group_alive(pgid: int) -> bool:
    """Some process (a zombie included) is still in group *pgid*."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; it runs as another user


def stopped(pid: int) -> bool:
    """*pid* is stopped (SIGSTOP, Ctrl+Z) or traced: it cannot handle a signal until SIGCONT."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # The state follows the command name, which is in parentheses and may hold any byte.
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] in (b"T", b"t")


def send(target: int, sig: int, *, group: bool = False) -> bool:
    """Signal one process, or with *group* a whole process group at once;
    False if it is gone (the group is empty)."""
    try:
        if group:
            os.killpg(target, sig)
        else:
            os.kill(target, sig)
        return True
    except ProcessLookupError:
        return False


def kill(*, groups: Iterable[int] = (), pids: Iterable[int] = (), below: Iterable[int] = ()) -> set[int]:
    """SIGKILL: the whole of *groups*, the *pids*, and every descendant of the
    processes in *below* (``0``: of gsup); return the pids killed one by one.

    The groups first: one syscall each, that reaches every member at once,
    so a forking job cannot outrun it and the timing does not depend on how
    long a /proc scan takes. Then the descendants still found (those that
    left their group with ``setsid``), in rounds that repeat while new ones
    appear, since a process may fork between the scan and the kill. Processes
    already dead but not yet reaped are counted too: the group kill got them.
    """
    for pgid in groups:
        send(pgid, signal.SIGKILL, group=True)
    killed: set[int] = set()
    for pid in pids:
        if send(pid, signal.SIGKILL):
            killed.add(pid)
    roots = [None if r == 0 else r for r in below]
    for _ in range(100):
        fresh = [pid for root in roots for pid in descendants(root) if pid not in killed]
        if not fresh:
            break
        for pid in fresh:
            killed.add(pid)
            send(pid, signal.SIGKILL)
    return killed
