"""Process look-ups and kills by pid shared by the test suites (standard library only).

Everything here reads /proc: a process's state and start time (a pid alone
can be reused), its children, its command line. Processes are only ever
killed by pid, never by name.

The suites run gsup as PID 1 under ``unshare --pid --fork``: the process a
test starts is ``unshare``, and gsup is its only child.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Optional, Union


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID/stat the tests need, read at one moment."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    start: int  # in clock ticks after boot: with the pid, names one process

    @property
    def alive(self) -> bool:
        """Not a zombie (nor dead) when it was read."""
        return self.state not in "ZX"

    @property
    def proc(self) -> Proc:
        return Proc(self.pid, self.start)


@dataclass(frozen=True)
class Proc:
    """A process identified by host pid and start time (a pid alone can be reused)."""

    pid: int
    start: int

    @property
    def running(self) -> bool:
        """Still there and not a zombie."""
        st = stat(self.pid)
        return st is not None and st.start == self.start and st.alive


def stat(pid: int) -> Optional[Stat]:
    """The fields of /proc/PID/stat the tests need, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return Stat(pid, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))


def alive(pid: int) -> bool:
    """Running, and not a zombie."""
    st = stat(pid)
    return st is not None and st.alive


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def all_stats() -> list[Stat]:
    return [st for st in map(stat, all_pids()) if st is not None]


def descendants(root: int) -> list[Stat]:
    """Every process below *root* in the (host) process tree, parents first, zombies included."""
    children: dict[int, list[Stat]] = {}
    for st in all_stats():
        children.setdefault(st.ppid, []).append(st)
    out, todo = [], [root]
    while todo:
        for st in children.get(todo.pop(), []):
            out.append(st)
            todo.append(st.pid)
    return out


def children_of(pid: int) -> list[int]:
    """Direct children of *pid* (of every thread), zombies included, now; [] if it is gone."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def first_child(pid: int) -> Optional[int]:
    """The first child of *pid* now, if any (gsup, for an ``unshare`` pid)."""
    kids = children_of(pid)
    return kids[0] if kids else None


def wait_first_child(pid: int, timeout: float = 10.0) -> int:
    """The first child of *pid*, waiting for it to appear.

    unshare forks gsup at once; there is no event for a fork to wait on, so
    this looks every 5 ms. Tests call it after gsup has said something, when
    the first look finds it.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child = first_child(pid)
        if child is not None:
            return child
        time.sleep(0.005)
    raise AssertionError("unshare did not start gsup")


def cmdline(pid: int) -> bytes:
    """/proc/PID/cmdline (arguments ended by NUL bytes); b"" if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def carrying(token: str, *, unless: bytes = b"") -> list[Stat]:
    """Every live process (not a zombie) whose command line holds *token* (and not *unless*)."""
    needle = token.encode()
    out = []
    for pid in all_pids():
        line = cmdline(pid)
        if needle in line and not (unless and unless in line):
            st = stat(pid)
            if st is not None and st.alive:
                out.append(st)
    return out


def status_fields(pid: Union[int, str]) -> dict[str, str]:
    """/proc/PID/status as a dict (values stripped); raises if it is gone."""
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}


def cpu_ticks(pid: int) -> int:
    """utime + stime of *pid*, in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid: Union[int, str]) -> int:
    """VmRSS of *pid* in KiB; raises if it is gone (a zombie has none)."""
    return int(status_fields(pid)["VmRSS"].split()[0])


def kill_pid(pid: int) -> None:
    """SIGKILL *pid* if it is still there."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_below(top: int, rounds: int = 50) -> None:
    """SIGKILL, by pid, every live process below *top*, deepest first, until none is left.

    Below first, while *top* still holds the tree together: once it is dead
    its orphans would move to another reaper, out of sight. A fork loop can
    fork past one round; the rounds go on while anything is left.
    """
    for _ in range(rounds):
        live = [st for st in descendants(top) if st.alive]
        if not live:
            return
        for st in reversed(live):
            kill_pid(st.pid)


def kill_carrying(token: str, *, unless: bytes = b"", rounds: int = 100) -> None:
    """SIGKILL, by pid, every process carrying *token* (see ``carrying``) until none is left."""
    for _ in range(rounds):
        left = carrying(token, unless=unless)
        if not left:
            return
        for st in left:
            kill_pid(st.pid)
