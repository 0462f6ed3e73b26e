"""Fill the process table: N zombie children, held until stdin closes (standard library only).

    crowd.py N

Forks N children that exit at once and leaves them unreaped, so /proc lists
N more processes for as long as it runs; prints ``crowd n=N`` when they are
all there, reaps them when stdin reaches EOF, then exits 0.
Used to show that gsup's timing does not depend on how many processes the
machine runs.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    n = int(sys.argv[1])
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        pids.append(pid)
    for pid in pids:  # each is a zombie once it has exited: wait for that, not reap
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    os.write(1, f"crowd n={n}\n".encode())
    try:
        sys.stdin.buffer.read()
    finally:
        for pid in pids:
            os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
