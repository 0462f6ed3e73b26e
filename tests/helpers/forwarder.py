"""A wrapper that forwards SIGINT to its command a moment late, as ``timeout --foreground`` does.

    forwarder.py DELAY -- CMD [ARG...]

Runs CMD in its own process group's place (the same group: both get a
Ctrl+C from the terminal), and on each SIGINT sends CMD a copy DELAY seconds
later; exits with CMD's status. ``timeout --foreground`` forwards its copy
within microseconds, so whether the receiver sees one SIGINT or two depends
on the scheduler; this one always makes it two. Standard library only.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> None:
    delay = float(sys.argv[1])
    command = sys.argv[3:] if sys.argv[2] == "--" else sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execvp(command[0], command)

    def forward(*_: object) -> None:
        time.sleep(delay)
        os.kill(pid, signal.SIGINT)

    signal.signal(signal.SIGINT, forward)
    signal.siginterrupt(signal.SIGINT, True)  # else waitpid restarts and the handler waits for the exit
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status) % 256)


if __name__ == "__main__":
    main()
