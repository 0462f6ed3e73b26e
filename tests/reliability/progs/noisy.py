"""Write a lot to stderr, then one line to stdout, then wait to be stopped (standard library only).

    noisy.py LINES [TAG]

Writes LINES lines of 61 bytes to stderr, then ``stderr done`` to stdout, then
sleeps until a signal ends it (default dispositions: TERM kills it).
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    line = b"x" * 60 + b"\n"
    for _ in range(int(sys.argv[1])):
        os.write(2, line)
    os.write(1, b"stderr done\n")
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
