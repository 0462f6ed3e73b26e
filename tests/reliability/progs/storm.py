"""Send a storm of signals to one process (standard library only).

    storm.py PID COUNT SIG[,SIG...]

Opens a pidfd on PID (so a recycled pid can never be hit), prints
``armed``, waits for one line on stdin (so that several senders start
together), then sends COUNT signals, cycling through the list, as fast as
it can, and prints ``sent n=N`` (fewer than COUNT if the target is gone).
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    pid, count = int(sys.argv[1]), int(sys.argv[2])
    sigs = [signal.Signals["SIG" + name.upper()] for name in sys.argv[3].split(",")]
    fd = os.pidfd_open(pid)
    os.write(1, b"armed\n")
    sys.stdin.readline()
    sent = 0
    try:
        for i in range(count):
            signal.pidfd_send_signal(fd, sigs[i % len(sigs)])
            sent += 1
    except ProcessLookupError:
        pass
    os.write(1, f"sent n={sent}\n".encode())


if __name__ == "__main__":
    main()
