"""Write numbered records as fast as possible until stopped (standard library only).

    flood.py [--writers N] [--on-term finish|ignore] [--split] [--tail TEXT] [--tag TAG]

Each writer (this process and N-1 forked ones: one in a session of its own
when N > 2) writes records alternately to stdout and stderr:

    <writer> <fd> <seq> <payload>\\n

with a sequence number per writer and descriptor and a payload derived from
the three, so that a test can tell a lost, repeated, torn or mixed-up record
from a good one. Each record is one ``write`` (atomic on a pipe) unless
``--split``: then ``<writer> <fd> <seq> `` and the rest are two writes, so that
a kill can fall between them and leave a partial last line.

Before the first record the main writer prints ``flood ready`` on stdout.
``--on-term finish``: at TERM each writer writes ``<writer> <fd> end count=<n>``
on both descriptors (with ``--tail``: then TEXT without a newline on stdout)
and exits 0. ``--on-term ignore``: TERM is ignored; only SIGKILL ends it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal

stop = False


def payload(writer: int, fd: int, seq: int) -> bytes:
    return hashlib.sha256(f"{writer}/{fd}/{seq}".encode()).hexdigest().encode() * 2


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def on_term(_signo: int, _frame: object) -> None:
    global stop
    stop = True


def writer(wid: int, args: argparse.Namespace) -> None:
    seq = {1: 0, 2: 0}
    fd = 1
    while not stop:
        head = f"{wid} {fd} {seq[fd]} ".encode()
        rest = payload(wid, fd, seq[fd]) + b"\n"
        if args.split:
            write_all(fd, head)
            write_all(fd, rest)
        else:
            write_all(fd, head + rest)
        seq[fd] += 1
        fd = 3 - fd
    for fd in (1, 2):
        write_all(fd, f"{wid} {fd} end count={seq[fd]}\n".encode())
    if args.tail and wid == 0:
        write_all(1, args.tail.encode())
    os._exit(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--writers", type=int, default=1)
    p.add_argument("--on-term", choices=["finish", "ignore"], default="finish")
    p.add_argument("--split", action="store_true")
    p.add_argument("--tail", default="")
    p.add_argument("--tag", default="", help="only marks the command line")
    args = p.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, on_term if args.on_term == "finish" else signal.SIG_IGN)
    os.write(1, b"flood ready\n")
    for wid in range(1, args.writers):
        if os.fork() == 0:
            if wid == 2:
                os.setsid()
            writer(wid, args)
    writer(0, args)


if __name__ == "__main__":
    main()
