"""The exit-status rules of SPEC §6, in one place.

Owns: which number gsup exits with for a given ending, and so where 137 and
the many-programs rule come from. Pure: imports the standard library and
``gsup.model`` only.

    what happened                                         exit status
    one program's ending (``exit_status``):
      it exited with N                                    N
      it was killed by signal S (not gsup's SIGKILL)      128+S
      gsup stopped it, status in its success codes        0
      (on its own, 0 or a success code "succeeded": a
      oneshot's dependents start, on-failure does not
      restart it; its status stays its own)
      gsup stopped it, --success-on-stop, and it ended
        by that very signal (killed, or 128+S)            0
      grace ran out (or 2nd Ctrl+C), gsup sent SIGKILL    137
    gsup's status (``plan_status``):
      a program failed on its own (exited non-zero
        before any stop, could not start: 126/127, not
        ready in time: 1, gave up restarting)             that status (the first)
      else a single command                               its status, as above
      else many programs: any force-killed                137
      else                                                0
    command not found / not executable                    127 / 126  (errors.py)
    invalid options or config                             2          (errors.py)
    gsup failed internally                                125        (errors.py)
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Optional

from gsup.model import ChildStatus

EXIT_FORCE_KILLED = 128 + 9
#: A program that did not become ready in time, or exited before it was.
EXIT_NOT_READY = 1


def exit_status(
    status: ChildStatus,
    *,
    force_killed: bool,
    stop_requested: bool,
    stop_signals: Collection[int] = (),
    success_codes: Collection[int] = (),
    success_on_stop: bool = False,
) -> int:
    """The status one program's ending stands for.

    *stop_requested*: gsup was stopping when it ended. *stop_signals*: the
    signal gsup received and the one it sent (they differ with
    --stop-signal or --rewrite); either counts as "that very signal".
    """
    if force_killed:
        return EXIT_FORCE_KILLED
    code = status.shell_code
    if stop_requested:
        if code in success_codes:
            return 0
        if success_on_stop and code - 128 in stop_signals:
            return 0
    return code


def succeeded(status: ChildStatus, success_codes: Collection[int] = ()) -> bool:
    """A program that ended by itself "exited successfully": 0, or one of its success codes."""
    return status.shell_code == 0 or status.shell_code in success_codes


def plan_status(*, failed: Optional[int], single: Optional[int], force_killed: bool) -> int:
    """gsup's own exit status.

    *failed*: the status of the first program that failed on its own, if
    one did. *single*: a single command's status (``exit_status``), which is
    gsup's; None for many programs, where a program that gsup stopped never
    fails the whole (*force_killed*: gsup's SIGKILL ended one of them).
    """
    if failed is not None:
        return failed
    if single is not None:
        return single
    return EXIT_FORCE_KILLED if force_killed else 0
