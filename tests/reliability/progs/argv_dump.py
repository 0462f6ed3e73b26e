"""Write this program's arguments, byte-exact, to a file (standard library only).

    argv_dump.py OUTFILE [ARG...]

Each ARG (after OUTFILE) is written as its length (8 bytes, big-endian) and
its bytes as the kernel gave them (``os.fsencode`` undoes the decoding), so
empty arguments, newlines and non-UTF-8 bytes survive the comparison.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    out = bytearray()
    for arg in sys.argv[2:]:
        raw = os.fsencode(arg)
        out += len(raw).to_bytes(8, "big") + raw
    with open(sys.argv[1], "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
