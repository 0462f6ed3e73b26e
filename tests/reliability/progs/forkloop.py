"""A fork loop, held down only by a limit on processes (standard library only).

    python3 forkloop.py TAG [CGROUP_DIR]

Every process ignores every catchable signal and forks again and again; a
fork refused by the limit (EAGAIN) is retried after 2 ms. One in four new
processes starts a session of its own (setsid), and every process but the
first exits after three forks, orphaning its children: the population churns
at the limit, the way a runaway worker pool does. The first process prints
``ready`` and, at its first refused fork, ``limit reached``.

With CGROUP_DIR the process first moves itself into that pids cgroup (v1 or
v2 ``cgroup.procs``). TAG only marks the command line of every process.
The tests pass this file's text with ``python3 -c`` so that it can run as an
unprivileged user that may not read the checkout.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> None:
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (OSError, ValueError):
                pass
    if len(sys.argv) > 2 and sys.argv[2]:
        with open(os.path.join(sys.argv[2], "cgroup.procs"), "w") as f:
            f.write("0")
    os.write(1, b"ready\n")
    root = os.getpid()
    told = False
    made = 0
    while True:
        try:
            pid = os.fork()
        except OSError:
            if not told and os.getpid() == root:
                os.write(1, b"limit reached\n")
                told = True
            time.sleep(0.002)
            continue
        if pid == 0:
            made = 0
            if os.getpid() % 4 == 0:
                os.setsid()
            continue
        made += 1
        if made >= 3 and os.getpid() != root:
            os._exit(0)


if __name__ == "__main__":
    main()
