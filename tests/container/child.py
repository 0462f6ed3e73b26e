"""The supervised child in the container tests; it reports to the test through a FIFO.

    child.py FIFO exit CODE        report "ready", exit with CODE
    child.py FIFO signals          report "signal SIGxxx" for each signal; a stop
                                   signal (TERM, INT, QUIT) ends it with 100 + signo
    child.py FIFO ignore-term      ignore SIGTERM, report "ready", wait forever
    child.py FIFO orphans N        leave N orphans that exit once orphaned, watch
                                   /proc until they are reaped, report
                                   "orphans N reaped R zombies Z after S"

The FIFO lives in a directory mounted into the container; the test holds it
open for reading, so opening it here never blocks and each line (shorter
than PIPE_BUF) arrives whole.
"""

from __future__ import annotations

import os
import signal
import sys
import time

STOP = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
REPORTED = (*sorted(STOP), signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


class Events:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY)

    def emit(self, line: str) -> None:
        os.write(self.fd, f"{line} pid={os.getpid()}\n".encode())


def signals(events: Events) -> None:
    def on_signal(signum: int, _frame: object) -> None:
        events.emit(f"signal {signal.Signals(signum).name}")
        if signum in STOP:
            sys.exit(100 + signum)

    for sig in REPORTED:
        signal.signal(sig, on_signal)
    events.emit("ready")
    while True:
        signal.pause()


def ignore_term(events: Events) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    events.emit("ready")
    while True:
        signal.pause()


def _proc_state(pid: int) -> str:
    """The state letter in /proc/PID/stat ('Z' for a zombie), or '' once reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return ""


def orphans(events: Events, n: int) -> None:
    gate_r, gate_w = os.pipe()  # held open by the middle process only
    report_r, report_w = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(report_r)
        pids = []
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                os.close(gate_w)
                os.close(report_w)
                os.read(gate_r, 1)  # EOF once the middle process is gone: orphaned now
                os._exit(0)
            pids.append(pid)
        os.write(report_w, " ".join(map(str, pids)).encode())
        os._exit(0)
    os.close(gate_w)
    os.close(gate_r)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as f:
        pids = [int(p) for p in f.read().split()]
    os.waitpid(middle, 0)  # the middle process is ours to reap; its children are not
    start = time.monotonic()
    states = {pid: _proc_state(pid) for pid in pids}
    # Watch /proc until every orphan is reaped (gone), or 1.5 s have passed.
    while any(states.values()) and time.monotonic() - start < 1.5:
        time.sleep(0.005)
        states = {pid: _proc_state(pid) for pid in pids}
    zombies = sum(1 for s in states.values() if s == "Z")
    reaped = sum(1 for s in states.values() if not s)
    events.emit(f"orphans {n} reaped {reaped} zombies {zombies} after {time.monotonic() - start:.3f}")


def main() -> int:
    events = Events(sys.argv[1])
    command, args = sys.argv[2], sys.argv[3:]
    if command == "exit":
        events.emit("ready")
        return int(args[0])
    if command == "signals":
        signals(events)
    elif command == "ignore-term":
        ignore_term(events)
    elif command == "orphans":
        orphans(events, int(args[0]))
        return 0
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main())
