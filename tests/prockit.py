"""Process-tree look-ups shared by the test suites (standard library only).

The suites run gsup as PID 1 under ``unshare --pid --fork``: the process a
test starts is ``unshare``, and gsup is its only child. These read the tree
from /proc/PID/task/TID/children.
"""

from __future__ import annotations

import os
import time
from typing import Optional


def children_of(pid: int) -> list[int]:
    """Direct children of *pid* (of every thread), now; [] if it is gone."""
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
