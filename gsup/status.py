"""The exit-status rules of SPEC §6, in one place.

Owns: which number gsup exits with for a given ending. Pure: imports the
standard library and ``gsup.model`` only.

    what happened                                         exit status
    child exited with N                                   N
    child killed by signal S (not gsup's SIGKILL)         128+S
    gsup was asked to stop, status in --success-code      0
    gsup was asked to stop, --success-on-stop, and the
      child ended by that very signal (killed, or 128+S)  0
    grace ran out (or 2nd Ctrl+C), gsup sent SIGKILL      137
    command not found / not executable                    127 / 126  (errors.py)
    invalid options or config                             2          (errors.py)
    gsup failed internally                                125        (errors.py)
"""

from __future__ import annotations

from collections.abc import Collection

from gsup.model import ChildStatus

EXIT_FORCE_KILLED = 128 + 9


def exit_status(
    status: ChildStatus,
    *,
    force_killed: bool,
    stop_requested: bool,
    stop_signals: Collection[int] = (),
    success_codes: Collection[int] = (),
    success_on_stop: bool = False,
) -> int:
    """The exit status for a child that ended with *status*.

    *stop_signals*: the signal gsup received and the one it sent (they differ
    with --stop-signal or --rewrite); either counts as "that very signal".
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
