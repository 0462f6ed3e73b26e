"""A program that finishes its jobs after Ctrl+C, writing each line in two pieces (standard library only).

    jobs.py N

Prints ``ready`` and waits; on SIGINT (or SIGTERM) it writes N lines
``job I done``, each as ``job I `` and, 20 ms later, ``done\\n``, 50 ms
apart, then exits 0. A line drawn at the cursor by someone else in the
meantime lands in the middle of one of them.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> None:
    n = int(sys.argv[1])
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    os.write(1, b"ready\n")
    while not stop:
        signal.pause()
    for i in range(n):
        os.write(1, f"job {i} ".encode())
        time.sleep(0.02)
        os.write(1, b"done\n")
        time.sleep(0.03)
    os.write(1, b"all jobs done\n")


if __name__ == "__main__":
    main()
